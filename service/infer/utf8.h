/* utf8.h — UTF-8 helpers: decoding one character, and a streaming filter
 * that never splits a character across emitted chunks.
 *
 * utf8_stream: bytes go in as tokens are detokenized; only complete, valid
 * characters come out.  An invalid byte (a stray continuation byte, an
 * overlong form, a surrogate, a sequence cut short by a non-continuation
 * byte) comes out as U+FFFD, so every emitted chunk is valid UTF-8.  An
 * incomplete character at the end is held until more bytes arrive or
 * utf8_stream_flush() (which turns it into U+FFFD).  No allocation.
 */
#ifndef ALLOT_INFER_UTF8_H
#define ALLOT_INFER_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Length of the valid character at s[0..n), 0 if invalid, or -k when the
 * bytes so far are a valid prefix needing k more. cp receives the value. */
int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Encodes cp (< 0x110000) into out[4]; returns its length. */
int utf8_encode(uint32_t cp, char *out);
/* Whether s[0..n) is entirely valid UTF-8. */
bool utf8_valid(const char *s, size_t n);

struct utf8_stream {
	unsigned char pend[4];
	int npend;
};

#define UTF8_STREAM_INIT {{0}, 0}

/* Appends the complete characters of held bytes + s[0..n) to out. */
void utf8_stream_push(struct utf8_stream *st, const char *s, size_t n, struct buf *out);
/* Appends U+FFFD for held bytes of an unfinished character. */
void utf8_stream_flush(struct utf8_stream *st, struct buf *out);

#endif
