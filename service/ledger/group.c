/* group.c — the ledger's group commit (ledger/group.h).
 *
 * Writers queue their work; the first to find no leader becomes the leader,
 * takes the whole queue, runs every item inside one transaction (each in its
 * own savepoint, so one item's store failure does not undo the others) and
 * commits once: one fsync for all the batches and settlements that arrived
 * meanwhile.  A lone writer leads at once, so nothing waits for company.
 * On a store with batch transactions (PostgreSQL), a group whose items may
 * run again (gate settlements) first runs without savepoints, its records
 * written together; only if anything of it fails is it rolled back and run
 * the way above (docs/POSTGRES.md, "Settlements in few round trips").
 *
 * Durability class of a group: FULL (fsynced before anyone is answered) if
 * it holds any provider batch: an acknowledged POST /v1/usage survives power
 * loss (SPEC 6).  A group of gate settlements only commits DEFERRED: in the
 * write-ahead log before the answer (a crash of the process loses nothing),
 * on disk within the store's flush interval (docs/LEDGER.md, "Durability"). */
#include "ledger/group.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/metrics.h"
#include "common/timeutil.h"

/* An item's state word: its writer sleeps on it (a futex) until the
 * leader of its group sets DONE, or the leader before hands it LEAD. */
enum { ITEM_WAIT, ITEM_LEAD, ITEM_DONE };

struct group_item {
	lgroup_work_fn work;
	void *arg;
	allot_err result;
	bool durable;          /* needs a FULL commit (a provider batch) */
	bool rerun;            /* work may run again after its first run rolled back */
	uint32_t state;        /* ITEM_*: atomic */
	struct group_item *next;
};

/* FULL if any item needs it, else DEFERRED. */
static enum store_sync group_sync(const struct group_item *items)
{
	for (const struct group_item *it = items; it; it = it->next)
		if (it->durable)
			return STORE_SYNC_FULL;
	return STORE_SYNC_DEFERRED;
}


struct lgroup {
	pthread_mutex_t mu;            /* guards head, tail and leading */
	struct group_item *head, **tail;
	bool leading;
	struct store *store;           /* not owned */
	void *owner;
	void (*reset)(void *owner);
};

struct lgroup *lgroup_new(struct store *st, void *owner, void (*reset)(void *owner))
{
	struct lgroup *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	pthread_mutex_init(&g->mu, NULL);
	g->tail = &g->head;
	g->store = st;
	g->owner = owner;
	g->reset = reset;
	return g;
}

void lgroup_free(struct lgroup *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* The first try of a group whose items may all run again, on a store that
 * offers it (store_ops.ledger_begin_batch): every item in one transaction
 * without savepoints, their records written together.  true: done (each
 * item's result set); false: nothing of it was stored, run it again the
 * careful way (an item failed, or the commit did and may be retried). */
static bool group_batch(struct lgroup *g, struct group_item *items, int64_t now)
{
	for (const struct group_item *it = items; it; it = it->next)
		if (!it->rerun)
			return false;
	allot_err e = store_ledger_begin_batch(g->store, group_sync(items));
	for (struct group_item *it = items; it && !e; it = it->next)
		e = it->work(g->owner, it->arg, now);
	if (e) {
		store_ledger_rollback(g->store);
		g->reset(g->owner);
		return false;
	}
	/* Writers queued meanwhile: their group's transaction may open as this
	 * one commits (store_ops.ledger_follow); its leader is posted below. */
	pthread_mutex_lock(&g->mu);
	bool follow = g->head != NULL;
	pthread_mutex_unlock(&g->mu);
	if (follow)
		store_ledger_follow(g->store);
	e = store_ledger_commit(g->store);
	g->reset(g->owner);
	/* A commit whose outcome is unknown (the connection broke) is not
	 * tried again: its records may be stored. */
	if (e && e != ALLOT_E_UNAVAILABLE)
		return false;
	for (struct group_item *it = items; it; it = it->next)
		it->result = e;
	return true;
}

static void group_lead(struct lgroup *g, struct group_item *items)
{
	int64_t now = time_now_us();
	size_t nitems = 0;
	for (const struct group_item *it = items; it; it = it->next)
		nitems++;
	metrics_observe(MH_GROUP_SIZE, (int64_t)nitems);
	g->reset(g->owner);
	if (store_has_ledger_batch(g->store) && group_batch(g, items, now))
		return;
	allot_err e = store_ledger_begin_sync(g->store, group_sync(items));
	if (!e && !items->next) {
		/* A lone item needs no savepoint: its failure rolls back the
		 * transaction, which holds nothing else. */
		if ((items->result = items->work(g->owner, items->arg, now)))
			store_ledger_rollback(g->store);
		else if ((e = store_ledger_commit(g->store)))
			items->result = e;
		g->reset(g->owner);
		return;
	}
	for (struct group_item *it = items; it; it = it->next) {
		if (e) {
			it->result = e;
			continue;
		}
		if ((it->result = store_ledger_savepoint_q(g->store, STORE_SP_BEGIN)))
			continue;
		it->result = it->work(g->owner, it->arg, now);
		store_ledger_savepoint_q(g->store, it->result ? STORE_SP_ROLLBACK : STORE_SP_RELEASE);
		if (it->result)
			g->reset(g->owner); /* its charges were counted in the map */
	}
	g->reset(g->owner);
	if (!e && (e = store_ledger_commit(g->store)))
		for (struct group_item *it = items; it; it = it->next)
			it->result = e; /* nothing of the group was stored */
}

size_t lgroup_queued(struct lgroup *group)
{
	size_t n = 0;
	pthread_mutex_lock(&group->mu);
	for (const struct group_item *it = group->head; it; it = it->next)
		n++;
	pthread_mutex_unlock(&group->mu);
	return n;
}

static void item_wait(struct group_item *it)
{
	while (__atomic_load_n(&it->state, __ATOMIC_ACQUIRE) == ITEM_WAIT)
		syscall(SYS_futex, &it->state, FUTEX_WAIT_PRIVATE, ITEM_WAIT, NULL, NULL, 0);
}

/* Sets an item's state and wakes its writer.  The writer may return (and
 * its item go) as soon as it sees the store: nothing of the item is read
 * after it, and a wake-up on a stale address is harmless (every futex
 * waiter re-checks its word). */
static void item_post(struct group_item *it, uint32_t state)
{
	__atomic_store_n(&it->state, state, __ATOMIC_RELEASE);
	syscall(SYS_futex, &it->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Each writer sleeps on its own item, so a commit wakes exactly its own
 * writers and the next leader: no broadcast that wakes the queued writers
 * of the next group only to send them back to sleep. */
allot_err lgroup_run(struct lgroup *group, lgroup_work_fn work, void *arg, bool durable,
		     bool rerun)
{
	struct group_item me = {.work = work, .arg = arg, .durable = durable, .rerun = rerun,
				.state = ITEM_WAIT};
	pthread_mutex_lock(&group->mu);
	*group->tail = &me;
	group->tail = &me.next;
	if (!group->leading) {
		group->leading = true;
		me.state = ITEM_LEAD;
	}
	pthread_mutex_unlock(&group->mu);
	item_wait(&me);
	if (__atomic_load_n(&me.state, __ATOMIC_ACQUIRE) == ITEM_DONE)
		return me.result;
	/* Leading: the queue holds this item first, and whatever came since. */
	pthread_mutex_lock(&group->mu);
	struct group_item *items = group->head;
	group->head = NULL;
	group->tail = &group->head;
	pthread_mutex_unlock(&group->mu);
	group_lead(group, items);
	pthread_mutex_lock(&group->mu);
	struct group_item *next_leader = group->head;
	if (!next_leader)
		group->leading = false;
	pthread_mutex_unlock(&group->mu);
	for (struct group_item *it = items, *next; it; it = next) {
		next = it->next;
		if (it != &me)
			item_post(it, ITEM_DONE);
	}
	if (next_leader)
		item_post(next_leader, ITEM_LEAD);
	return me.result;
}
