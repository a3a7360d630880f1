/* reserve.c — in-memory reservations per level key (see reserve.h). */
#include "ledger/reserve.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"

#define RESERVE_BUCKETS 1024

struct reserve_entry {
	struct reserve_entry *next;
	int64_t amount;
	int64_t inflight;
	char key[];
};

struct reserve_table {
	pthread_mutex_t lock;      /* the admission lock; also guards the table */
	struct reserve_entry *b[RESERVE_BUCKETS];
};

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h % RESERVE_BUCKETS;
}

struct reserve_table *reserve_new(void)
{
	struct reserve_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&t->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	return t;
}

void reserve_free(struct reserve_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < RESERVE_BUCKETS; i++)
		for (struct reserve_entry *e = t->b[i], *n; e; e = n) {
			n = e->next;
			free(e);
		}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static struct reserve_entry *find(struct reserve_table *t, const char *key, bool create)
{
	size_t h = hash(key);
	for (struct reserve_entry *e = t->b[h]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	if (!create)
		return NULL;
	size_t n = strlen(key);
	struct reserve_entry *e = calloc(1, sizeof *e + n + 1);
	if (!e)
		return NULL;
	memcpy(e->key, key, n + 1);
	e->next = t->b[h];
	t->b[h] = e;
	return e;
}

int64_t reserve_amount(struct reserve_table *t, const char *key)
{
	pthread_mutex_lock(&t->lock);
	struct reserve_entry *e = find(t, key, false);
	int64_t v = e ? e->amount : 0;
	pthread_mutex_unlock(&t->lock);
	return v;
}

int64_t reserve_inflight(struct reserve_table *t, const char *key)
{
	pthread_mutex_lock(&t->lock);
	struct reserve_entry *e = find(t, key, false);
	int64_t v = e ? e->inflight : 0;
	pthread_mutex_unlock(&t->lock);
	return v;
}

void reserve_lock(struct reserve_table *t) { pthread_mutex_lock(&t->lock); }
void reserve_unlock(struct reserve_table *t) { pthread_mutex_unlock(&t->lock); }

bool reserve_add_locked(struct reserve_table *t, const char *const *keys, size_t n,
			int64_t amount)
{
	struct reserve_entry *es[QUOTA_MAX_LEVELS + 1];
	int64_t sums[QUOTA_MAX_LEVELS + 1];
	if (n > QUOTA_MAX_LEVELS + 1 || amount < 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!(es[i] = find(t, keys[i], true)))
			return false;
		/* Checked before anything changes: a key may repeat (each
		 * occurrence adds once more). */
		int64_t base = es[i]->amount;
		for (size_t k = 0; k < i; k++)
			if (es[k] == es[i])
				base = sums[k];
		if (money_add(base, amount, &sums[i]))
			return false;
	}
	for (size_t i = 0; i < n; i++) {
		es[i]->amount = sums[i];
		es[i]->inflight++;
	}
	return true;
}

void reserve_release(struct reserve_table *t, const char *const *keys, size_t n,
		     int64_t amount)
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < n; i++) {
		struct reserve_entry *e = find(t, keys[i], false);
		if (e) {
			e->amount -= amount;
			e->inflight--;
		}
	}
	pthread_mutex_unlock(&t->lock);
}

bool reserve_hold_locked(struct reserve_table *t, const char *const *keys, size_t n,
			 int64_t amount)
{
	struct reserve_entry *es[QUOTA_MAX_LEVELS + 1];
	if (n > QUOTA_MAX_LEVELS + 1)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(es[i] = find(t, keys[i], true)))
			return false;
	for (size_t i = 0; i < n; i++)
		es[i]->amount += amount;
	return true;
}
