/* chist.c — the charter history (ledger/chist.h). */
#include "ledger/chist.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/timeutil.h"

struct chist {
	pthread_mutex_t lock;
	struct active_charter *latest; /* NULL until a charter is applied */
	/* Every applied version, oldest first; each holds a reference. */
	struct active_charter **versions;
	size_t nversions;
};

struct chist *chist_new(void)
{
	struct chist *h = calloc(1, sizeof *h);
	if (h)
		pthread_mutex_init(&h->lock, NULL);
	return h;
}

void chist_free(struct chist *h)
{
	if (!h)
		return;
	chist_put(h, h->latest);
	h->latest = NULL;
	for (size_t i = 0; i < h->nversions; i++)
		chist_put(h, h->versions[i]);
	free(h->versions);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* The version in force at t (lock held): the newest whose `effective` is
 * <= t.  `effective` never moves back from one version to the next
 * (charter_check_successor), so the newest such is found first from the
 * end, and in the usual case (nothing scheduled) at once. */
static struct active_charter *find_locked(struct chist *h, int64_t t)
{
	for (size_t i = h->nversions; i-- > 0;)
		if (h->versions[i]->c->effective_us <= t)
			return h->versions[i];
	/* Not listed (out of memory at install): the newest applied one, if
	 * it is in force. */
	if (h->latest && h->latest->c->effective_us <= t)
		return h->latest;
	return NULL;
}

struct active_charter *chist_in_force(struct chist *h, int64_t t)
{
	pthread_mutex_lock(&h->lock);
	struct active_charter *ac = find_locked(h, t);
	if (ac)
		ac->refs++;
	pthread_mutex_unlock(&h->lock);
	return ac;
}

struct active_charter *chist_get(struct chist *h)
{
	return chist_in_force(h, time_now_us());
}

struct active_charter *chist_latest(struct chist *h)
{
	pthread_mutex_lock(&h->lock);
	struct active_charter *ac = h->latest;
	if (ac)
		ac->refs++;
	pthread_mutex_unlock(&h->lock);
	return ac;
}

struct active_charter *chist_next(struct chist *h, int64_t version)
{
	struct active_charter *ac = NULL;
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->nversions && !ac; i++)
		if (h->versions[i]->row.version > version)
			ac = h->versions[i];
	if (ac)
		ac->refs++;
	pthread_mutex_unlock(&h->lock);
	return ac;
}

void chist_entry_free(struct active_charter *ac)
{
	if (!ac)
		return;
	charter_free(ac->c);
	free(ac->row.text);
	free(ac);
}

void chist_put(struct chist *h, struct active_charter *ac)
{
	if (!ac)
		return;
	pthread_mutex_lock(&h->lock);
	bool last = --ac->refs == 0;
	pthread_mutex_unlock(&h->lock);
	if (last)
		chist_entry_free(ac);
}

void chist_install(struct chist *h, struct active_charter *ac)
{
	ac->refs = 2; /* the "latest" slot's reference and the version list's */
	pthread_mutex_lock(&h->lock);
	/* Versions are installed oldest first and `effective` never moves back,
	 * so the first one's is where the ledger begins. */
	ac->c->ledger_start_us = h->nversions ? h->versions[0]->c->effective_us
					      : ac->c->effective_us;
	struct active_charter **v = realloc(h->versions, (h->nversions + 1) * sizeof *v);
	if (v) {
		h->versions = v;
		h->versions[h->nversions++] = ac;
	} else {
		ac->refs = 1; /* not listed: pricing falls back to older versions */
	}
	struct active_charter *old = h->latest;
	h->latest = ac;
	pthread_mutex_unlock(&h->lock);
	chist_put(h, old);
}

const struct active_charter *chist_at(struct chist *h, int64_t t)
{
	pthread_mutex_lock(&h->lock);
	const struct active_charter *best = find_locked(h, t);
	pthread_mutex_unlock(&h->lock);
	return best;
}

const struct active_charter *chist_version(struct chist *h, int64_t version)
{
	const struct active_charter *found = NULL;
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->nversions && !found; i++)
		if (h->versions[i]->row.version == version)
			found = h->versions[i];
	pthread_mutex_unlock(&h->lock);
	return found;
}
