/* ledger.c — the ledger object, provider batches (struct ledger_item,
 * parsed and answered by api/usage_wire.c) and the gate's settlements;
 * booking one record is in book.c, the group commit in group.c. */
#include "ledger/ledger_int.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "common/money.h"
#include "crypto/ed25519.h"
#include "ledger/quota.h"
#include "ledger/vpool.h"

/* Keys of one provider parsed once per batch (any further keys are tried
 * the slow way). */
#define CHARTER_MAX_VERIFIERS 16

static void ledger_group_reset(void *owner)
{
	struct ledger *led = owner;
	ledger_over_clear(&led->over);
}

allot_err ledger_open(struct store *st, struct ledger **out)
{
	struct ledger *led = calloc(1, sizeof *led);
	if (!led)
		return ALLOT_E_NOMEM;
	led->store = st;
	pthread_mutex_init(&led->verify_mu, NULL);
	if (!(led->charters = chist_new()) || !(led->reserve = reserve_new()) ||
	    !(led->group = lgroup_new(st, led, ledger_group_reset))) {
		ledger_free(led);
		return ALLOT_E_NOMEM;
	}
	*out = led;
	return ALLOT_OK;
}

void ledger_free(struct ledger *led)
{
	if (!led)
		return;
	lgroup_free(led->group);
	ledger_over_clear(&led->over);
	vpool_free(led->verify);
	pthread_mutex_destroy(&led->verify_mu);
	reserve_free(led->reserve);
	chist_free(led->charters);
	free(led);
}

struct store *ledger_store(struct ledger *led)
{
	return led->store;
}

struct chist *ledger_charters(struct ledger *led)
{
	return led->charters;
}

struct reserve_table *ledger_reserve(struct ledger *led)
{
	return led->reserve;
}

size_t ledger_group_queued(struct ledger *led)
{
	return lgroup_queued(led->group);
}

/* ---- provider batches ------------------------------------------------------------ */

struct ingest_batch {
	struct ledger_item *items;
	size_t n;
};

/* The store's one look-up of the batch's records and rejections (where it
 * has one: store_ledger_prefetch), for the items still to decide. */
static allot_err ingest_prefetch(struct ledger *led, const struct ingest_batch *b)
{
	const char *provider = NULL;
	const char **ids = malloc(b->n * sizeof *ids);
	if (!ids)
		return ALLOT_E_NOMEM;
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct ledger_item *it = &b->items[i];
		if (it->o != LEDGER_OUT_ACCEPTED)
			continue;
		if (!provider)
			provider = it->r.provider;
		if (strcmp(it->r.provider, provider) == 0) /* verified: always */
			ids[n++] = it->r.record_id;
	}
	allot_err e = n ? store_ledger_prefetch(led->store, provider, ids, n) : ALLOT_OK;
	free(ids);
	return e;
}

static allot_err ingest_work(void *owner, void *arg, int64_t now)
{
	struct ledger *led = owner;
	struct ingest_batch *b = arg;
	if (ingest_prefetch(led, b))
		return ALLOT_E_STORE;
	for (size_t i = 0; i < b->n; i++) {
		struct ledger_item *it = &b->items[i];
		if (it->o != LEDGER_OUT_ACCEPTED)
			continue; /* refused before the transaction */
		it->o = ledger_book_one(led, &it->r, NULL, now, &it->row, it->reason, sizeof it->reason);
		if (it->o == LEDGER_OUT_ERROR)
			return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

/* Signatures are checked in ranges of this many records, spread over the
 * request's thread and the pool (about 3 ms of work each). */
#define VERIFY_CHUNK 32

struct verify_ctx {
	struct ingest_batch *b;
	const char *provider;
	const struct charter_provider *prov;
	struct ed25519_verifier *ver[CHARTER_MAX_VERIFIERS];
	size_t nver;
};

static void verify_range(void *arg, size_t from, size_t to)
{
	struct verify_ctx *v = arg;
	for (size_t i = from; i < to; i++) {
		struct ledger_item *it = &v->b->items[i];
		if (it->o != LEDGER_OUT_ACCEPTED)
			continue;
		if (strcmp(it->r.provider, v->provider) != 0) {
			it->o = LEDGER_OUT_REJECTED;
			snprintf(it->reason, sizeof it->reason, "record is for provider \"%s\" but the "
				 "key belongs to provider \"%s\"", it->r.provider, v->provider);
			continue;
		}
		bool sig_ok = false;
		for (size_t k = 0; k < v->nver && !sig_ok; k++)
			sig_ok = it->r.has_sig &&
				 ed25519_verifier_check(v->ver[k], it->r.canonical, it->r.canonical_len,
							it->r.sig, 64) == ALLOT_OK;
		for (size_t k = CHARTER_MAX_VERIFIERS; v->prov && k < v->prov->nkeys && !sig_ok; k++)
			sig_ok = record_sig_ok(&it->r, v->prov->keys[k].pub);
		if (!sig_ok) {
			it->o = LEDGER_OUT_REJECTED;
			snprintf(it->reason, sizeof it->reason, "signature does not verify with "
				 "any key of provider \"%s\"", v->provider);
		}
	}
}

static struct vpool *verify_pool(struct ledger *led)
{
	pthread_mutex_lock(&led->verify_mu);
	if (!led->verify_started) {
		led->verify_started = true;
		led->verify = vpool_new(0);
	}
	struct vpool *p = led->verify;
	pthread_mutex_unlock(&led->verify_mu);
	return p;
}

/* Provider and signature of every parsed item (o == LEDGER_OUT_ACCEPTED so
 * far), outside the transaction: this is the CPU-heavy part.  It runs on the
 * request's thread and the verification pool, so the CPUs stay busy while
 * other requests book their records or wait for their fsync. */
static void ingest_verify(struct ledger *led, const struct charter *c, const char *provider,
			  struct ingest_batch *b)
{
	struct verify_ctx v = {.b = b, .provider = provider, .prov = charter_provider(c, provider)};
	/* The provider's keys, parsed once for the whole batch. */
	for (size_t k = 0; v.prov && k < v.prov->nkeys && v.nver < CHARTER_MAX_VERIFIERS; k++)
		if (ed25519_verifier_new(v.prov->keys[k].pub, &v.ver[v.nver]) == ALLOT_OK)
			v.nver++;
	vpool_run(verify_pool(led), b->n, VERIFY_CHUNK, verify_range, &v);
	for (size_t k = 0; k < v.nver; k++)
		ed25519_verifier_free(v.ver[k]);
}

void ledger_count(const struct ledger_item *items, size_t n, struct ledger_counts *counts)
{
	memset(counts, 0, sizeof *counts);
	for (size_t i = 0; i < n; i++) {
		switch (items[i].o) {
		case LEDGER_OUT_ACCEPTED: counts->accepted++; break;
		case LEDGER_OUT_DUPLICATE: counts->duplicate++; break;
		case LEDGER_OUT_CONFLICT: counts->conflict++; break;
		default: counts->rejected++; break;
		}
	}
}

static size_t ingest_rejected(const struct ingest_batch *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		n += b->items[i].o == LEDGER_OUT_REJECTED;
	return n;
}

/* allot_ledger_records_total and _rejected_total: malformed ones were
 * refused before verifying, signature ones by it, the rest by the rules. */
static void ingest_metrics(const struct ingest_batch *b, size_t malformed, size_t unsigned_,
			   allot_err e)
{
	if (e) {
		metrics_add(MC_LEDGER_ERROR, b->n);
		return;
	}
	struct ledger_counts c;
	ledger_count(b->items, b->n, &c);
	size_t rejected = ingest_rejected(b);
	metrics_add(MC_LEDGER_ACCEPTED, c.accepted);
	metrics_add(MC_LEDGER_DUPLICATE, c.duplicate);
	metrics_add(MC_LEDGER_CONFLICT, c.conflict);
	metrics_add(MC_LEDGER_REJECTED, rejected);
	metrics_add(MC_LEDGER_ERROR, c.rejected - rejected);
	metrics_add(MC_REJECT_MALFORMED, malformed);
	metrics_add(MC_REJECT_SIGNATURE, unsigned_);
	metrics_add(MC_REJECT_CHARTER, rejected - malformed - unsigned_);
}

/* Verifies the parsed batch and books it in a group transaction. */
static allot_err ingest_run(struct ledger *led, struct active_charter *cur, const char *provider,
			    struct ingest_batch *b, char *msg, size_t msgsz)
{
	size_t malformed = ingest_rejected(b);
	ingest_verify(led, cur->c, provider, b);
	size_t unsigned_ = ingest_rejected(b) - malformed;
	chist_put(led->charters, cur);
	allot_err e = lgroup_run(led->group, ingest_work, b, true, false);
	ingest_metrics(b, malformed, unsigned_, e);
	if (e)
		snprintf(msg, msgsz, "the ledger could not be written; nothing of this batch was stored");
	return e;
}

allot_err ledger_ingest(struct ledger *led, const char *provider, struct ledger_item *items,
			size_t n, char *msg, size_t msgsz)
{
	if (n == 0 || n > LEDGER_BATCH_MAX) {
		snprintf(msg, msgsz, "a batch holds 1..%d records", LEDGER_BATCH_MAX);
		return ALLOT_E_INVALID;
	}
	struct active_charter *cur = chist_get(led->charters);
	if (!cur) {
		snprintf(msg, msgsz, "no charter has been applied");
		return ALLOT_E_UNAVAILABLE;
	}
	struct ingest_batch b = {.items = items, .n = n};
	return ingest_run(led, cur, provider, &b, msg, msgsz);
}

struct settle_batch {
	const struct ledger_settle_opts *opts;
	struct usage_record *recs;
	size_t n;
	int64_t total;
	char *reason;
	size_t reasonsz;
	bool refused;
};

static allot_err settle_work(void *owner, void *arg, int64_t now)
{
	struct ledger *led = owner;
	struct settle_batch *b = arg;
	allot_err e = ALLOT_OK;
	/* May run twice (lgroup_run's rerun): nothing of a first run stays. */
	b->total = 0;
	b->refused = false;
	if (b->reasonsz)
		b->reason[0] = '\0';
	store_ledger_hold(led->store, b->opts->hold);
	for (size_t i = 0; i < b->n && !e; i++) {
		struct ledger_row row;
		enum ledger_outcome o = ledger_book_one(led, &b->recs[i], b->opts, now, &row, b->reason,
					  b->reasonsz);
		if (o != LEDGER_OUT_ACCEPTED && o != LEDGER_OUT_DUPLICATE) {
			b->refused = o != LEDGER_OUT_ERROR;
			e = o == LEDGER_OUT_ERROR ? ALLOT_E_STORE : ALLOT_E_INVALID;
		} else if (money_add(b->total, row.charge_micro, &b->total)) {
			snprintf(b->reason, b->reasonsz, "the settlement's charge is out of range");
			b->refused = true;
			e = ALLOT_E_INVALID;
		}
	}
	if (!e && b->opts->queue_id && store_settleq_delete(led->store, b->opts->queue_id)) {
		snprintf(b->reason, b->reasonsz, "the retry queue could not be written");
		e = ALLOT_E_STORE;
	}
	if (!e && b->opts->budget_id && store_has_budgets(led->store) &&
	    store_budget_settle(led->store, b->opts->budget_id, b->total)) {
		snprintf(b->reason, b->reasonsz, "the budgets could not be written");
		e = ALLOT_E_STORE;
	}
	for (size_t i = 0; !e && i < b->opts->nleases; i++)
		if (store_lease_settle(led->store, b->opts->leases[i].id, b->opts->leases[i].epoch,
				       b->total)) {
			snprintf(b->reason, b->reasonsz, "the leases could not be written");
			e = ALLOT_E_STORE;
		}
	store_ledger_hold(led->store, 0);
	return e;
}

allot_err ledger_settle_many(struct ledger *led, struct usage_record *recs, size_t n,
			     int64_t *charge, char *reason, size_t reasonsz)
{
	const struct ledger_settle_opts o = {0};
	return ledger_settle(led, &o, recs, n, charge, reason, reasonsz);
}

allot_err ledger_settle(struct ledger *led, const struct ledger_settle_opts *o,
			struct usage_record *recs, size_t n, int64_t *charge, char *reason,
			size_t reasonsz)
{
	for (size_t i = 0; i < n; i++)
		if (record_seal(&recs[i])) {
			snprintf(reason, reasonsz, "out of memory");
			return ALLOT_E_NOMEM;
		}
	struct settle_batch b = {.opts = o, .recs = recs, .n = n, .reason = reason,
				 .reasonsz = reasonsz};
	allot_err e = lgroup_run(led->group, settle_work, &b, false, true);
	if (e) {
		if (!b.refused && !reason[0])
			snprintf(reason, reasonsz, "the ledger could not be written");
		return e;
	}
	*charge = b.total;
	return ALLOT_OK;
}
