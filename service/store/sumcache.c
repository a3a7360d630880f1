/* sumcache.c — cached charge sums per level (see sumcache.h). */
#include "store/sumcache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/money.h"
#include "common/strmap.h"

#define SC_BUCKETS 4096

struct sc_range {
	int64_t from, to, sum;
};

struct sc_level {
	struct sc_range r[SUMCACHE_RANGES];
	size_t n, oldest;
};

struct sc_delta {
	char inst[STORE_ID_MAX], proj[STORE_ID_MAX], member[STORE_MEMBER_MAX];
	int64_t bucket, charge;
	uint64_t tag;
};

struct sc_list {
	struct sc_delta *d;
	size_t n, cap;
};

struct sumcache {
	pthread_mutex_t mu;           /* guards levels and held */
	struct strmap *levels;        /* level key -> struct sc_level */
	struct sc_list pending;       /* rows of the open transaction */
	struct sc_list held;          /* committed rows not yet visible */
};

static struct sc_delta *sc_push(struct sc_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct sc_delta *p = realloc(l->d, cap * sizeof *p);
		if (!p)
			return NULL;
		l->d = p;
		l->cap = cap;
	}
	return &l->d[l->n++];
}

struct sumcache *sumcache_new(void)
{
	struct sumcache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if (!(c->levels = strmap_new(SC_BUCKETS, sizeof(struct sc_level)))) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

static void sc_clear(struct sumcache *c)
{
	strmap_clear(c->levels);
}

void sumcache_free(struct sumcache *c)
{
	if (!c)
		return;
	strmap_free(c->levels);
	free(c->pending.d);
	free(c->held.d);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* "inst\x1fproj\x1fmember", with "\x1e" for an absent part. */
static void sc_key(char *out, size_t sz, const char *inst, const char *proj, const char *member)
{
	snprintf(out, sz, "%s\x1f%s\x1f%s", inst ? inst : "\x1e", proj ? proj : "\x1e",
		 member ? member : "\x1e");
}

static struct sc_level *sc_find(struct sumcache *c, const char *key, bool create)
{
	struct sc_level *l = strmap_get(c->levels, key);
	if (l || !create)
		return l;
	if (strmap_count(c->levels) >= SUMCACHE_MAX_LEVELS)
		sc_clear(c);
	return strmap_put(c->levels, key);
}

bool sumcache_get(struct sumcache *c, const char *inst, const char *proj, const char *member,
		  int64_t from_b, int64_t to_b, int64_t *sum)
{
	char key[STORE_ID_MAX * 2 + STORE_MEMBER_MAX + 8];
	bool hit = false;
	sc_key(key, sizeof key, inst, proj, member);
	pthread_mutex_lock(&c->mu);
	struct sc_level *l = sc_find(c, key, false);
	for (size_t i = 0; l && i < l->n; i++)
		if (l->r[i].from == from_b && l->r[i].to == to_b) {
			*sum = l->r[i].sum;
			hit = true;
			break;
		}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

/* Does a row of (inst, proj, member) count at the level (I, P, M)? */
static bool sc_counts(const struct sc_delta *d, const char *I, const char *P, const char *M)
{
	return !I || (strcmp(I, d->inst) == 0 &&
		      (!P || (strcmp(P, d->proj) == 0 && (!M || strcmp(M, d->member) == 0))));
}

void sumcache_put(struct sumcache *c, const char *inst, const char *proj, const char *member,
		  int64_t from_b, int64_t to_b, int64_t *sump)
{
	int64_t sum = *sump;
	bool fits = true;
	pthread_mutex_lock(&c->mu);
	/* The database already holds the held rows; they become visible only
	 * at sumcache_release. */
	for (size_t i = 0; i < c->held.n; i++) {
		const struct sc_delta *d = &c->held.d[i];
		if (from_b <= d->bucket && d->bucket < to_b && sc_counts(d, inst, proj, member)) {
			int64_t next;
			if (money_sub(sum, d->charge, &next)) {
				fits = false; /* cannot happen under the ledger's bounds */
				next = money_sub_sat(sum, d->charge);
			}
			sum = next;
		}
	}
	*sump = sum;
	if (!fits) {
		pthread_mutex_unlock(&c->mu);
		return; /* a saturated figure is never cached */
	}
	char key[STORE_ID_MAX * 2 + STORE_MEMBER_MAX + 8];
	sc_key(key, sizeof key, inst, proj, member);
	struct sc_level *l = sc_find(c, key, true);
	if (l) {
		size_t i = l->n < SUMCACHE_RANGES ? l->n++ : (l->oldest++ % SUMCACHE_RANGES);
		l->r[i] = (struct sc_range){from_b, to_b, sum};
	}
	pthread_mutex_unlock(&c->mu);
}

void sumcache_pending(struct sumcache *c, const char *inst, const char *proj,
		      const char *member, int64_t bucket, int64_t charge, uint64_t tag)
{
	struct sc_delta *d = sc_push(&c->pending);
	if (!d) {
		/* Cannot remember the delta: forget every sum instead. */
		pthread_mutex_lock(&c->mu);
		sc_clear(c);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	snprintf(d->inst, sizeof d->inst, "%s", inst);
	snprintf(d->proj, sizeof d->proj, "%s", proj);
	snprintf(d->member, sizeof d->member, "%s", member);
	d->bucket = bucket;
	d->charge = charge;
	d->tag = tag;
}

size_t sumcache_pending_mark(struct sumcache *c) { return c->pending.n; }

void sumcache_pending_truncate(struct sumcache *c, size_t mark)
{
	if (mark < c->pending.n)
		c->pending.n = mark;
}

static void sc_apply(struct sumcache *c, const char *inst, const char *proj, const char *member,
		     int64_t bucket, int64_t charge)
{
	char key[STORE_ID_MAX * 2 + STORE_MEMBER_MAX + 8];
	sc_key(key, sizeof key, inst, proj, member);
	struct sc_level *l = sc_find(c, key, false);
	for (size_t i = 0; l && i < l->n;) {
		struct sc_range *r = &l->r[i];
		if (r->from <= bucket && bucket < r->to && money_add(r->sum, charge, &r->sum)) {
			/* Would wrap (cannot under the ledger's bounds): forget the
			 * range, the next read asks the database. */
			*r = l->r[--l->n];
			l->oldest = 0;
			continue;
		}
		i++;
	}
}

static void sc_apply_delta(struct sumcache *c, const struct sc_delta *d)
{
	sc_apply(c, NULL, NULL, NULL, d->bucket, d->charge);
	sc_apply(c, d->inst, NULL, NULL, d->bucket, d->charge);
	sc_apply(c, d->inst, d->proj, NULL, d->bucket, d->charge);
	sc_apply(c, d->inst, d->proj, d->member, d->bucket, d->charge);
}

void sumcache_commit(struct sumcache *c)
{
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->pending.n; i++) {
		const struct sc_delta *d = &c->pending.d[i];
		if (d->tag) {
			struct sc_delta *h = sc_push(&c->held);
			if (h) {
				*h = *d;
				continue;
			}
			/* no room to hold it: make it visible now (conservative) */
		}
		sc_apply_delta(c, d);
	}
	c->pending.n = 0;
	pthread_mutex_unlock(&c->mu);
}

void sumcache_release(struct sumcache *c, uint64_t tag)
{
	size_t k = 0;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->held.n; i++) {
		if (c->held.d[i].tag == tag)
			sc_apply_delta(c, &c->held.d[i]);
		else
			c->held.d[k++] = c->held.d[i];
	}
	c->held.n = k;
	pthread_mutex_unlock(&c->mu);
}

void sumcache_rollback(struct sumcache *c) { c->pending.n = 0; }
