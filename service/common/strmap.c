/* strmap.c — string-keyed map (common/strmap.h). */
#include "common/strmap.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct strmap_entry {
	struct strmap_entry *next;
	alignas(max_align_t) unsigned char value[]; /* value_size bytes, then the key */
};

struct strmap {
	size_t mask;           /* nbuckets - 1 */
	size_t vsize;          /* value_size: the key follows the value */
	size_t n;
	struct strmap_entry **b;
};

/* FNV-1a, 64 bits. */
static size_t strmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)h;
}

static const char *entry_key(const struct strmap *m, const struct strmap_entry *e)
{
	return (const char *)e->value + m->vsize;
}

struct strmap *strmap_new(size_t nbuckets, size_t value_size)
{
	if (nbuckets == 0 || (nbuckets & (nbuckets - 1)) != 0)
		return NULL;
	struct strmap *m = calloc(1, sizeof *m);
	if (!m || !(m->b = calloc(nbuckets, sizeof *m->b))) {
		free(m);
		return NULL;
	}
	m->mask = nbuckets - 1;
	m->vsize = value_size;
	return m;
}

void strmap_clear(struct strmap *m)
{
	for (size_t i = 0; i <= m->mask; i++) {
		for (struct strmap_entry *e = m->b[i], *n; e; e = n) {
			n = e->next;
			free(e);
		}
		m->b[i] = NULL;
	}
	m->n = 0;
}

void strmap_free(struct strmap *m)
{
	if (!m)
		return;
	strmap_clear(m);
	free(m->b);
	free(m);
}

void *strmap_get(const struct strmap *m, const char *key)
{
	for (struct strmap_entry *e = m->b[strmap_hash(key) & m->mask]; e; e = e->next)
		if (strcmp(entry_key(m, e), key) == 0)
			return e->value;
	return NULL;
}

void *strmap_put(struct strmap *m, const char *key)
{
	size_t h = strmap_hash(key) & m->mask;
	for (struct strmap_entry *e = m->b[h]; e; e = e->next)
		if (strcmp(entry_key(m, e), key) == 0)
			return e->value;
	size_t n = strlen(key);
	struct strmap_entry *e = calloc(1, sizeof *e + m->vsize + n + 1);
	if (!e)
		return NULL;
	memcpy(e->value + m->vsize, key, n + 1);
	e->next = m->b[h];
	m->b[h] = e;
	m->n++;
	return e->value;
}

size_t strmap_count(const struct strmap *m)
{
	return m->n;
}

void strmap_remove_if(struct strmap *m, bool (*drop)(void *ctx, const char *key, void *value),
		      void *ctx)
{
	for (size_t i = 0; i <= m->mask; i++)
		for (struct strmap_entry **pp = &m->b[i], *e; (e = *pp);) {
			if (drop(ctx, entry_key(m, e), e->value)) {
				*pp = e->next;
				free(e);
				m->n--;
			} else {
				pp = &e->next;
			}
		}
}
