/* buf.h — a growable byte buffer, always NUL-terminated (git's strbuf idea).
 *
 *   struct buf b = BUF_INIT;  buf_append(&b, p, n);  ...  buf_release(&b);
 *
 * Allocation failure is sticky: once an append fails, b.oom is set, later
 * appends do nothing, and the caller checks b.oom once at the end.
 */
#ifndef ALLOT_COMMON_BUF_H
#define ALLOT_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data;   /* from malloc(); NULL until the first append */
	size_t len;   /* bytes used, excluding the terminating NUL */
	size_t cap;   /* bytes allocated */
	bool oom;     /* an allocation failed; contents are incomplete */
};

#define BUF_INIT {NULL, 0, 0, false}

void buf_append(struct buf *b, const void *p, size_t n);
void buf_reserve(struct buf *b, size_t n);  /* room for n more bytes, one allocation */
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_put_int(struct buf *b, int64_t v); /* decimal, as "%lld" */
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);              /* len = 0, keeps memory */
void buf_release(struct buf *b);            /* frees, back to BUF_INIT */
/* Hands the storage to the caller ("you now own it"); b is reset. */
char *buf_detach(struct buf *b, size_t *len);
/* A C string "" when empty, never NULL. */
const char *buf_str(const struct buf *b);

#endif
