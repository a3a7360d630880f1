/* strmap.h — a map from NUL-terminated strings to fixed-size values.
 *
 * Separate chaining over a fixed power-of-two number of buckets (chosen at
 * creation: the tables it serves are bounded by their owners), FNV-1a
 * hashing, one allocation per entry holding the value and then a copy of
 * the key.  A value stays at its address until its entry is removed, so a
 * caller may keep the pointer strmap_put or strmap_get gave it.  Values
 * start zeroed and are plain data (the map frees an entry's memory and
 * nothing else).
 *
 * Thread-safety: none; the owner locks.
 */
#ifndef ALLOT_COMMON_STRMAP_H
#define ALLOT_COMMON_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap;

/* nbuckets: a power of two.  NULL when out of memory or nbuckets is not. */
struct strmap *strmap_new(size_t nbuckets, size_t value_size);
/* NULL: nothing. */
void strmap_free(struct strmap *m);

/* The value of key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/* The value of key, added (zeroed) when absent; NULL when out of memory. */
void *strmap_put(struct strmap *m, const char *key);
/* Entries now. */
size_t strmap_count(const struct strmap *m);
/* Removes every entry. */
void strmap_clear(struct strmap *m);
/* Calls drop(ctx, key, value) for every entry and removes those for which
 * it returns true. */
void strmap_remove_if(struct strmap *m, bool (*drop)(void *ctx, const char *key, void *value),
		      void *ctx);

#endif
