/* settleq.c — the gate's durable retry queue; see settleq.h. */
#include "gate/settleq.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ledger/ledger.h"
#include "ledger/reserve.h"

/* Backoff between rounds of retries: from the first to the last, doubling
 * after each round in which nothing could be booked. */
#define SETTLEQ_BACKOFF_MIN_MS 50
#define SETTLEQ_BACKOFF_MAX_MS 5000

struct sq_item {
	struct sq_item *next;
	struct settle_pending p;
	char keys[QUOTA_MAX_LEVELS + 1][STORE_ID_MAX * 2 + STORE_MEMBER_MAX + 8];
	size_t nkeys;
	int64_t held;              /* reserved at each key until booked */
	uint64_t hold_tag;         /* sums hold tag while booking (0: none) */
	char jti[STORE_ID_MAX];    /* "" unless the token has max_credits */
	bool tried;                /* tried in the current round */
};

struct settleq {
	struct ledger *led;        /* not owned */
	struct store *store;       /* the ledger's */
	struct reserve_table *reserve; /* the ledger's */
	settleq_booked_fn booked;
	void *ctx;
	pthread_mutex_t mu;        /* the list, the counters, the thread's state */
	pthread_mutex_t round_mu;  /* one round of retries at a time */
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stop, kick;
	struct sq_item *head, **tail;
	uint64_t next_tag;
	int backoff_min_ms, backoff_max_ms;
	struct settleq_stats st;
};

size_t settleq_records(const struct settle_pending *p, struct usage_record recs[2])
{
	const int64_t qty[2] = {p->tokens_in, p->tokens_out};
	static const char *const res[2] = {"tokens_in", "tokens_out"};
	size_t n = 0;
	for (int k = 0; k < 2; k++) {
		if (qty[k] <= 0)
			continue;
		struct usage_record *r = &recs[n++];
		memset(r, 0, sizeof *r);
		snprintf(r->record_id, sizeof r->record_id, "%s-%s", p->record_base,
			 k ? "out" : "in");
		snprintf(r->provider, sizeof r->provider, "%s", p->provider);
		snprintf(r->institution, sizeof r->institution, "%s", p->institution);
		snprintf(r->project, sizeof r->project, "%s", p->project);
		snprintf(r->member, sizeof r->member, "%s", p->member);
		snprintf(r->resource, sizeof r->resource, "%s", res[k]);
		snprintf(r->model, sizeof r->model, "%s", p->model);
		r->quantity = qty[k];
		r->start_us = p->start_us;
		r->end_us = p->end_us;
		r->kind = RECORD_USAGE;
	}
	return n;
}

/* ---- one attempt ------------------------------------------------------------ */

/* Books it inside one ledger transaction with the deletion of its queue
 * row; then, under the admission lock, makes its charge visible in the
 * sums in the same step as its reservation goes.  Returns true when booked
 * (or found booked). */
static bool item_try(struct settleq *q, struct sq_item *it)
{
	const struct active_charter *ac = chist_version(ledger_charters(q->led),
							it->p.charter_version);
	struct ledger_settle_opts o = {.charter = ac ? ac->c : NULL, .hold = it->hold_tag,
				       .retry = true, .queue_id = it->p.id,
				       /* the store's budgets: its reservation, if still held */
				       .budget_id = store_has_budgets(q->store) ? it->p.record_base
										  : NULL};
	struct usage_record recs[2];
	size_t n = settleq_records(&it->p, recs);
	char reason[256] = "";
	int64_t charge = 0;
	allot_err e = n ? ledger_settle(q->led, &o, recs, n, &charge, reason, sizeof reason)
			: (it->p.id ? store_settleq_delete(q->store, it->p.id) : ALLOT_OK);
	for (size_t i = 0; i < n; i++)
		record_release(&recs[i]);
	pthread_mutex_lock(&q->mu);
	q->st.attempts++;
	pthread_mutex_unlock(&q->mu);
	if (e) {
		snprintf(it->p.reason, sizeof it->p.reason, "%s", reason[0] ? reason : "store error");
		return false;
	}
	const char *keys[QUOTA_MAX_LEVELS + 1];
	for (size_t i = 0; i < it->nkeys; i++)
		keys[i] = it->keys[i];
	reserve_lock(q->reserve);
	if (it->hold_tag)
		store_ledger_release(q->store, it->hold_tag);
	if (it->held)
		reserve_hold_locked(q->reserve, keys, it->nkeys, -it->held);
	if (it->jti[0] && q->booked)
		q->booked(q->ctx, it->jti, charge);
	reserve_unlock(q->reserve);
	log_info("gate: queued settlement %s booked (%lld in, %lld out)", it->p.record_base,
		 (long long)it->p.tokens_in, (long long)it->p.tokens_out);
	return true;
}

/* Stores an item that is only in memory; true when it is stored. */
static bool item_store(struct settleq *q, struct sq_item *it)
{
	if (it->p.id)
		return true;
	struct settle_pending p = it->p;
	allot_err e = store_settleq_put(q->store, &p);
	if (e) {
		if (e == ALLOT_E_CONFLICT)
			log_warnx("gate: settlement %s is in the retry queue twice", p.record_base);
		return false;
	}
	pthread_mutex_lock(&q->mu);
	it->p.id = p.id;
	pthread_mutex_unlock(&q->mu);
	return true;
}

/* One round (rounds run one at a time, under round_mu): each item is tried
 * once; one that fails and is only in memory is stored.  Returns how many
 * were booked. */
static size_t round_run(struct settleq *q)
{
	size_t booked = 0;
	pthread_mutex_lock(&q->round_mu);
	for (;;) {
		pthread_mutex_lock(&q->mu);
		struct sq_item *it = q->head;
		while (it && it->tried)
			it = it->next;
		if (it)
			it->tried = true;
		pthread_mutex_unlock(&q->mu);
		if (!it)
			break;
		if (!item_try(q, it)) {
			item_store(q, it);
			continue;
		}
		pthread_mutex_lock(&q->mu);
		struct sq_item **pp = &q->head;
		while (*pp != it)
			pp = &(*pp)->next;
		*pp = it->next;
		if (q->tail == &it->next)
			q->tail = pp;
		q->st.queued--;
		q->st.booked++;
		pthread_mutex_unlock(&q->mu);
		free(it);
		booked++;
	}
	pthread_mutex_lock(&q->mu);
	for (struct sq_item *it = q->head; it; it = it->next)
		it->tried = false;
	pthread_mutex_unlock(&q->mu);
	pthread_mutex_unlock(&q->round_mu);
	return booked;
}

void settleq_set_backoff(struct settleq *q, int min_ms, int max_ms)
{
	pthread_mutex_lock(&q->mu);
	q->backoff_min_ms = min_ms > 0 ? min_ms : 1;
	q->backoff_max_ms = max_ms > q->backoff_min_ms ? max_ms : q->backoff_min_ms;
	q->kick = true; /* the thread starts its next wait with these */
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

size_t settleq_retry_now(struct settleq *q)
{
	round_run(q);
	struct settleq_stats st;
	settleq_stats(q, &st);
	return (size_t)st.queued;
}

/* ---- the thread ----------------------------------------------------------------- */

static void *settleq_main(void *arg)
{
	struct settleq *q = arg;
	pthread_mutex_lock(&q->mu);
	int backoff = q->backoff_min_ms;
	while (!q->stop) {
		if (!q->head) {
			backoff = q->backoff_min_ms;
			while (!q->stop && !q->kick)
				pthread_cond_wait(&q->cv, &q->mu);
		} else {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += backoff / 1000;
			ts.tv_nsec += (long)(backoff % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			while (!q->stop && !q->kick &&
			       pthread_cond_timedwait(&q->cv, &q->mu, &ts) != ETIMEDOUT)
				;
		}
		bool kicked = q->kick;
		q->kick = false;
		if (q->stop)
			break;
		pthread_mutex_unlock(&q->mu);
		/* A new failure waits one backoff before its first retry. */
		size_t booked = kicked ? 0 : round_run(q);
		pthread_mutex_lock(&q->mu);
		if (kicked)
			continue;
		if (booked || !q->head)
			backoff = q->backoff_min_ms;
		else if ((backoff *= 2) > q->backoff_max_ms)
			backoff = q->backoff_max_ms;
		if (backoff < q->backoff_min_ms)
			backoff = q->backoff_min_ms;
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* ---- the interface ------------------------------------------------------------- */

static void item_append(struct settleq *q, struct sq_item *it)
{
	*q->tail = it;
	q->tail = &it->next;
	q->st.queued++;
}

void settleq_add(struct settleq *q, const struct settle_pending *p, const char *const *keys,
		 size_t nkeys, int64_t held, const char *jti)
{
	struct sq_item *it = calloc(1, sizeof *it);
	if (!it) {
		/* Nothing left to keep it in: the loudest trace there is. */
		log_warnx("gate: OUT OF MEMORY: settlement %s (%s/%s/%s, %lld in, %lld out, "
			  "charter %lld) is lost", p->record_base, p->institution, p->project,
			  p->member, (long long)p->tokens_in, (long long)p->tokens_out,
			  (long long)p->charter_version);
		return;
	}
	it->p = *p;
	it->p.id = 0;
	for (size_t i = 0; i < nkeys && i < QUOTA_MAX_LEVELS + 1; i++) {
		snprintf(it->keys[i], sizeof it->keys[i], "%s", keys[i]);
		it->nkeys++;
	}
	it->held = held;
	if (jti)
		snprintf(it->jti, sizeof it->jti, "%s", jti);
	/* Stored before it is listed: from then on only a retry round
	 * touches it. */
	if (!item_store(q, it))
		log_warnx("gate: settlement %s could not be stored in the retry queue either; "
			  "kept in memory and retried", p->record_base);
	pthread_mutex_lock(&q->mu);
	it->hold_tag = ++q->next_tag | (1ULL << 63); /* apart from the gate's own tags */
	item_append(q, it);
	q->st.failures++;
	q->kick = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	log_warnx("gate: settlement %s (%s/%s/%s, %lld in, %lld out) queued for retry: %s",
		  p->record_base, p->institution, p->project, p->member,
		  (long long)p->tokens_in, (long long)p->tokens_out, p->reason);
}

void settleq_stats(struct settleq *q, struct settleq_stats *out)
{
	pthread_mutex_lock(&q->mu);
	*out = q->st;
	out->unstored = 0;
	for (const struct sq_item *it = q->head; it; it = it->next)
		out->unstored += it->p.id == 0;
	pthread_mutex_unlock(&q->mu);
}

static void load_one(void *ctx, const struct settle_pending *p)
{
	struct settleq *q = ctx;
	struct sq_item *it = calloc(1, sizeof *it);
	if (!it)
		return; /* stays in the table: the next start finds it */
	it->p = *p;
	item_append(q, it);
}

allot_err settleq_open(struct ledger *led, settleq_booked_fn booked, void *ctx,
		       struct settleq **out, char *msg, size_t msgsz)
{
	struct settleq *q = calloc(1, sizeof *q);
	if (!q)
		return ALLOT_E_NOMEM;
	q->led = led;
	q->store = ledger_store(led);
	q->reserve = ledger_reserve(led);
	q->booked = booked;
	q->ctx = ctx;
	q->tail = &q->head;
	q->backoff_min_ms = SETTLEQ_BACKOFF_MIN_MS;
	q->backoff_max_ms = SETTLEQ_BACKOFF_MAX_MS;
	pthread_mutex_init(&q->mu, NULL);
	pthread_mutex_init(&q->round_mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	allot_err e = store_settleq_list(q->store, load_one, q);
	if (e) {
		snprintf(msg, msgsz, "cannot read the settlement retry queue: %s", q->store->errmsg);
		settleq_close(q);
		return e;
	}
	if (q->head) {
		size_t n = (size_t)q->st.queued;
		size_t left = settleq_retry_now(q);
		log_info("gate: %zu queued settlement%s from before the start: %zu booked, %zu "
			 "still waiting", n, n == 1 ? "" : "s", n - left, left);
	}
	if (pthread_create(&q->thread, NULL, settleq_main, q) != 0) {
		snprintf(msg, msgsz, "cannot start the settlement retry thread");
		settleq_close(q);
		return ALLOT_E_INTERNAL;
	}
	q->running = true;
	*out = q;
	return ALLOT_OK;
}

void settleq_close(struct settleq *q)
{
	if (!q)
		return;
	if (q->running) {
		pthread_mutex_lock(&q->mu);
		q->stop = true;
		pthread_cond_signal(&q->cv);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->thread, NULL);
	}
	for (struct sq_item *it = q->head, *n; it; it = n) {
		n = it->next;
		if (!it->p.id && q->running && !item_store(q, it))
			log_warnx("gate: settlement %s (%s/%s/%s, %lld in, %lld out) was never "
				  "stored and is lost at exit", it->p.record_base, it->p.institution,
				  it->p.project, it->p.member, (long long)it->p.tokens_in,
				  (long long)it->p.tokens_out);
		free(it);
	}
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->round_mu);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
