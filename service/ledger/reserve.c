/* reserve.c — in-memory reservations per level key (see reserve.h). */
#include "ledger/reserve.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "common/strmap.h"

#define RESERVE_BUCKETS 1024

struct reserve_entry {
	int64_t amount;
	int64_t inflight;
};

struct reserve_table {
	pthread_mutex_t lock;      /* the admission lock; also guards the map */
	struct strmap *map;        /* level key -> struct reserve_entry */
};

struct reserve_table *reserve_new(void)
{
	struct reserve_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	if (!(t->map = strmap_new(RESERVE_BUCKETS, sizeof(struct reserve_entry)))) {
		free(t);
		return NULL;
	}
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
	strmap_free(t->map);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static struct reserve_entry *find(struct reserve_table *t, const char *key, bool create)
{
	return create ? strmap_put(t->map, key) : strmap_get(t->map, key);
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
