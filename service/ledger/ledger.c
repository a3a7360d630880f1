/* ledger.c — checking, pricing and booking usage records. */
#include "ledger/ledger.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>


#include "common/buf.h"
#include "common/json.h"
#include "common/metrics.h"
#include "common/money.h"
#include "crypto/ed25519.h"
#include "common/timeutil.h"
#include "ledger/events.h"
#include "ledger/period.h"
#include "ledger/quota.h"
#include "common/tz.h"
#include "ledger/vpool.h"

/* Keys of one provider parsed once per batch (any further keys are tried
 * the slow way). */
#define CHARTER_MAX_VERIFIERS 16

enum outcome { OUT_ACCEPTED, OUT_DUPLICATE, OUT_CONFLICT, OUT_REJECTED, OUT_ERROR };

static const char *outcome_name(enum outcome o)
{
	static const char *const n[] = {"accepted", "duplicate", "conflict", "rejected", "error"};
	return n[o];
}

/* Which period closes a record: the institution's allocation period. */
static bool record_is_late(const struct charter *c, const struct charter_institution *inst,
			   int64_t end_us, int64_t now)
{
	if (inst->allocation.period == CHARTER_PERIOD_TOTAL)
		return false;
	/* The last period found on this thread (a batch's records mostly share
	 * one), keyed by charter version and period kind. */
	static _Thread_local struct {
		int64_t version, ps, pe;
		int kind;
	} last;
	if (last.version == c->version && last.kind == (int)inst->allocation.period &&
	    end_us >= last.ps && end_us < last.pe)
		return now >= last.pe + c->late_grace_us;
	char err[TZ_ERR_MAX];
	tz *z = NULL;
	if (tz_load(c->timezone, &z, err))
		return false;
	static const period_kind map[] = {PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH,
					  PERIOD_QUARTER, PERIOD_YEAR, PERIOD_TOTAL};
	int64_t ps, pe;
	bool late = false;
	if (period_bounds(z, map[inst->allocation.period], end_us, &ps, &pe) == ALLOT_OK) {
		late = now >= pe + c->late_grace_us;
		last.version = c->version;
		last.kind = (int)inst->allocation.period;
		last.ps = ps;
		last.pe = pe;
	}
	tz_free(z);
	return late;
}

/* ---- overage within a group transaction ----------------------------------
 * Judging overage needs each level's used sum for the record's period.
 * Inside the ledger transaction the store's sum cache cannot serve it (the
 * group's own rows are not committed), so the leader keeps its own map for
 * the group: (level key, period start) -> {limit, used}, filled once from
 * quota_levels and advanced by each booked charge.  It is only touched by
 * the group's leader (one at a time), and dropped when the group ends or an
 * item rolls back. */

#define OVER_BUCKETS 1024
#define OVER_MAX 65536

struct over_entry {
	struct over_entry *next;
	int64_t period_start;
	int64_t limit, used;
	int64_t version; /* the charter version whose allocation set limit */
	bool filled;
	char key[];
};

/* Level keys of recent (charter version, institution, project, member),
 * valid for book_us in [lo, hi) where every level's period is the same: a
 * group books many records of a few members in the same periods. */
#define OVER_KEYS 8

struct over_keys {
	int64_t version; /* 0: empty */
	int64_t lo, hi;
	char inst[STORE_ID_MAX], proj[STORE_ID_MAX], member[STORE_MEMBER_MAX];
	struct quota_level lv[QUOTA_MAX_LEVELS];
	size_t n;
};

struct over_map {
	struct over_entry *b[OVER_BUCKETS];
	size_t n;
	struct over_keys keys[OVER_KEYS];
	size_t next_key;
};

static void over_clear(struct over_map *over)
{
	for (size_t i = 0; i < OVER_BUCKETS; i++) {
		for (struct over_entry *e = over->b[i], *nx; e; e = nx) {
			nx = e->next;
			free(e);
		}
		over->b[i] = NULL;
	}
	over->n = 0;
	for (size_t i = 0; i < OVER_KEYS; i++)
		over->keys[i].version = 0;
}

/* The levels of r at book_us from the cache, or computed and cached. */
static allot_err over_levels(struct over_map *over, const struct charter *c,
			     const struct usage_record *r, int64_t book_us,
			     struct quota_level lv[QUOTA_MAX_LEVELS], size_t *n)
{
	for (size_t i = 0; i < OVER_KEYS; i++) {
		const struct over_keys *k = &over->keys[i];
		if (k->version == c->version && book_us >= k->lo && book_us < k->hi &&
		    strcmp(k->member, r->member) == 0 && strcmp(k->proj, r->project) == 0 &&
		    strcmp(k->inst, r->institution) == 0) {
			memcpy(lv, k->lv, k->n * sizeof *lv);
			*n = k->n;
			return ALLOT_OK;
		}
	}
	allot_err e = quota_level_keys(c, r->institution, r->project,
				       r->member[0] ? r->member : NULL, book_us, lv, n);
	if (e || c->version == 0)
		return e;
	struct over_keys *k = &over->keys[over->next_key++ % OVER_KEYS];
	k->lo = INT64_MIN;
	k->hi = INT64_MAX;
	for (size_t i = 0; i < *n; i++) {
		if (lv[i].period_start > k->lo)
			k->lo = lv[i].period_start;
		if (lv[i].period_end < k->hi)
			k->hi = lv[i].period_end;
	}
	if (book_us < k->lo || book_us >= k->hi) {
		k->version = 0; /* periods that do not hold book_us: do not cache */
		return ALLOT_OK;
	}
	k->version = c->version;
	snprintf(k->inst, sizeof k->inst, "%s", r->institution);
	snprintf(k->proj, sizeof k->proj, "%s", r->project);
	snprintf(k->member, sizeof k->member, "%s", r->member);
	memcpy(k->lv, lv, *n * sizeof *lv);
	k->n = *n;
	return ALLOT_OK;
}

static struct over_entry *over_find(struct over_map *over, const char *key, int64_t period_start,
				    bool create)
{
	size_t h = (size_t)period_start * 31;
	for (const char *p = key; *p; p++)
		h = h * 33 + (unsigned char)*p;
	h %= OVER_BUCKETS;
	for (struct over_entry *e = over->b[h]; e; e = e->next)
		if (e->period_start == period_start && strcmp(e->key, key) == 0)
			return e;
	if (!create || over->n >= OVER_MAX)
		return NULL;
	size_t n = strlen(key);
	struct over_entry *e = calloc(1, sizeof *e + n + 1);
	if (!e)
		return NULL;
	memcpy(e->key, key, n + 1);
	e->period_start = period_start;
	e->next = over->b[h];
	over->b[h] = e;
	over->n++;
	return e;
}

struct group_item;

/* One per app (its store): the queue and the leader's overage map. */
struct ledger_group {
	pthread_mutex_t mu;            /* guards head, tail and leading */
	struct group_item *head, **tail;
	bool leading;
	struct over_map over;          /* the leader's alone */
	struct vpool *verify;          /* signature checks; started by the first batch */
	bool verify_started;
};

struct ledger_group *ledger_group_new(void)
{
	struct ledger_group *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	pthread_mutex_init(&g->mu, NULL);
	g->tail = &g->head;
	return g;
}

void ledger_group_free(struct ledger_group *g)
{
	if (!g)
		return;
	over_clear(&g->over);
	vpool_free(g->verify);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* What a booking does to a level (for its webhook events, ledger/events.h). */
struct level_move {
	struct quota_level q;
	int64_t before, limit;
};

/* Is any level past its allocation once charge is added?  Also counts the
 * charge in the group's map (the caller books the record right after).
 * OUT: moves[*nmoves]: each level's use before the charge, when the
 * charter has webhooks (else *nmoves is 0). */
static bool record_overage(struct app *app, const struct charter *c, const struct usage_record *r,
			   int64_t book_us, int64_t charge, struct level_move *moves,
			   size_t *nmoves)
{
	*nmoves = 0;
	struct quota_level lv[QUOTA_MAX_LEVELS];
	struct over_entry *es[QUOTA_MAX_LEVELS];
	size_t n = 0;
	const char *member = r->member[0] ? r->member : NULL;
	if (charge == 0 || over_levels(&app->ledger_group->over, c, r, book_us, lv, &n))
		return false;
	bool fill = false, mapped = true;
	for (size_t i = 0; i < n; i++) {
		es[i] = over_find(&app->ledger_group->over, lv[i].key, lv[i].period_start, true);
		/* A record priced under another charter version is judged by that
		 * version's allocation: refill the limit. */
		if (es[i] && es[i]->filled && es[i]->version != c->version)
			es[i]->filled = false;
		mapped &= es[i] != NULL;
		fill |= es[i] && !es[i]->filled;
	}
	if (fill || !mapped) {
		/* First use of a level in this group: its sums, with every row
		 * the group has booked so far (they are in the transaction). */
		if (quota_levels(app->store, c, r->institution, r->project, member, book_us, NULL,
				 NULL, lv, &n))
			return false;
	}
	bool over_limit = false;
	for (size_t i = 0; i < n; i++) {
		/* Saturating: the sums fit in int64 (the store's bounds), what is
		 * derived from them may not. */
		int64_t limit = money_add_sat(lv[i].allocation, lv[i].rollover);
		if (c->nwebhooks)
			moves[(*nmoves)++] = (struct level_move){lv[i], es[i] && es[i]->filled
							     ? es[i]->used : lv[i].used,
							     es[i] && es[i]->filled ? es[i]->limit
										    : limit};
		if (!es[i]) {
			over_limit |= charge > 0 && money_add_sat(lv[i].used, charge) > limit;
			continue;
		}
		if (!es[i]->filled) {
			es[i]->limit = limit;
			es[i]->used = lv[i].used;
			es[i]->version = c->version;
			es[i]->filled = true;
		}
		es[i]->used = money_add_sat(es[i]->used, charge);
		over_limit |= charge > 0 && es[i]->used > es[i]->limit;
		/* The next period's rollover depends on this one's use: a limit
		 * the group holds for it is stale now (refilled on its next use,
		 * from the transaction, which has this record's row by then). */
		struct over_entry *nx = over_find(&app->ledger_group->over, lv[i].key,
						  lv[i].period_end, false);
		if (nx)
			nx->filled = false;
	}
	return over_limit;
}

/* Checks r against the charters and the ledger, prices it and books it.
 * Must run inside a ledger transaction.  row->rec is r (borrowed).
 * gate: NULL for a provider's record; for a gate settlement, its options:
 * the charter it was admitted under (a request is admitted and settled
 * under one version, SPEC section 2; NULL: the one in force at `end`). */
static enum outcome book_one(struct app *app, struct usage_record *r,
			     const struct ledger_settle_opts *gate, int64_t now,
			     struct ledger_row *row, char *reason, size_t rsz)
{
	struct ledger_row prev;
	const bool from_gate = gate != NULL;
	const struct charter *priced_by = gate ? gate->charter : NULL;
	/* A gate settlement's id is new by construction (the gate's start
	 * time and a sequence number, gate/gate.c): no earlier record to find,
	 * except on a retry from the queue (an earlier attempt may have been
	 * booked after all: then it is a duplicate, booked once).  Were one
	 * there, the unique (provider, record_id) index would refuse the
	 * insert, and the settlement would fail rather than double. */
	allot_err e = from_gate && !gate->retry
			      ? ALLOT_E_NOT_FOUND
			      : store_ledger_find_q(app->store, r->provider, r->record_id, &prev);
	if (e == ALLOT_OK) {
		bool same = memcmp(prev.rec.sha256, r->sha256, 32) == 0;
		record_release(&prev.rec);
		if (!same) {
			snprintf(reason, rsz, "record_id \"%s\" was already used by provider \"%s\" "
					      "for a record with different content", r->record_id, r->provider);
			return OUT_CONFLICT;
		}
		*row = prev;
		row->rec = *r;
		return OUT_DUPLICATE;
	}
	if (e != ALLOT_E_NOT_FOUND) {
		snprintf(reason, rsz, "the ledger could not be read");
		return OUT_ERROR;
	}
	if (r->end_us > now + RECORD_FUTURE_SKEW_US) {
		snprintf(reason, rsz, "\"end\" is more than 5 minutes in the future");
		return OUT_REJECTED;
	}
	const struct active_charter *ac = priced_by ? NULL : app_charter_at(app, r->end_us);
	if (!priced_by && !ac) {
		snprintf(reason, rsz, "no charter was in force at \"end\"");
		return OUT_REJECTED;
	}
	const struct charter *c = priced_by ? priced_by : ac->c;
	const struct charter_institution *inst = charter_institution(c, r->institution);
	const struct charter_project *proj = inst ? charter_project(inst, r->project) : NULL;
	if (!inst) {
		snprintf(reason, rsz, "unknown institution \"%s\" (charter version %lld)",
			 r->institution, (long long)c->version);
		return OUT_REJECTED;
	}
	if (!proj) {
		snprintf(reason, rsz, "unknown project \"%s\" of institution \"%s\"", r->project,
			 r->institution);
		return OUT_REJECTED;
	}
	if (r->member[0] && !charter_member(proj, r->member)) {
		snprintf(reason, rsz, "\"%s\" is not a member of project \"%s/%s\"", r->member,
			 r->institution, r->project);
		return OUT_REJECTED;
	}
	const struct charter_provider *p = charter_provider(c, r->provider);
	if (!p || !charter_provider_may_report(c, p, r->resource, r->model)) {
		snprintf(reason, rsz, "provider \"%s\" may not report resource \"%s\"", r->provider,
			 r->resource);
		return OUT_REJECTED;
	}
	if (r->model[0]) {
		const struct charter_model *m = charter_model(c, r->model);
		if (!m) {
			snprintf(reason, rsz, "unknown model \"%s\"", r->model);
			return OUT_REJECTED;
		}
		if (strcmp(m->provider_id, r->provider)) { /* SPEC section 6 */
			snprintf(reason, rsz, "model \"%s\" is served by provider \"%s\", not \"%s\"",
				 r->model, m->provider_id, r->provider);
			return OUT_REJECTED;
		}
	}
	int64_t rate = 0, charge = 0;
	if (r->kind == RECORD_USAGE) {
		const struct charter_rate *cr = charter_rate_for(c, r->resource,
								 r->model[0] ? r->model : NULL,
								 r->cls[0] ? r->cls : NULL);
		if (!cr) {
			snprintf(reason, rsz, "no rate for resource \"%s\"%s%s%s%s in charter version %lld",
				 r->resource, r->model[0] ? " model " : "", r->model,
				 r->cls[0] ? " class " : "", r->cls, (long long)c->version);
			return OUT_REJECTED;
		}
		rate = cr->credits;
		if (money_mul(r->quantity, rate, &charge) || charge > MONEY_MAX) {
			snprintf(reason, rsz, "charge out of range");
			return OUT_REJECTED;
		}
	} else {
		/* Corrections: against an earlier usage record of the same provider,
		 * at that record's rate, never below zero net. */
		struct ledger_row orig;
		e = store_ledger_find_q(app->store, r->provider, r->supersedes, &orig);
		if (e == ALLOT_E_NOT_FOUND) {
			snprintf(reason, rsz, "supersedes \"%s\": no such record of provider \"%s\"",
				 r->supersedes, r->provider);
			return OUT_REJECTED;
		}
		if (e) {
			snprintf(reason, rsz, "the ledger could not be read");
			return OUT_ERROR;
		}
		record_release(&orig.rec);
		if (orig.rec.kind != RECORD_USAGE) {
			snprintf(reason, rsz, "supersedes \"%s\": it is a%s %s, not a usage record",
				 r->supersedes, orig.rec.kind == RECORD_ADJUSTMENT ? "n" : "",
				 record_kind_name(orig.rec.kind));
			return OUT_REJECTED;
		}
		if (strcmp(orig.rec.institution, r->institution) || strcmp(orig.rec.project, r->project) ||
		    strcmp(orig.rec.member, r->member) || strcmp(orig.rec.resource, r->resource) ||
		    strcmp(orig.rec.model, r->model) || strcmp(orig.rec.cls, r->cls)) {
			snprintf(reason, rsz, "a correction must name the same institution, project, "
					      "member, resource, model and class as \"%s\"", r->supersedes);
			return OUT_REJECTED;
		}
		int64_t net;
		bool voided;
		if (store_ledger_net_q(app->store, r->provider, r->supersedes, &net, &voided)) {
			snprintf(reason, rsz, "the ledger could not be read");
			return OUT_ERROR;
		}
		if (voided) {
			snprintf(reason, rsz, "supersedes \"%s\": that record is void", r->supersedes);
			return OUT_REJECTED;
		}
		rate = orig.rate_micro;
		if (r->kind == RECORD_VOID) {
			if (r->quantity != orig.rec.quantity) {
				snprintf(reason, rsz, "a void must repeat the quantity of \"%s\" (%lld)",
					 r->supersedes, (long long)orig.rec.quantity);
				return OUT_REJECTED;
			}
			charge = -net;
		} else {
			if (money_mul(r->quantity, rate, &charge) || charge > MONEY_MAX) {
				snprintf(reason, rsz, "charge out of range");
				return OUT_REJECTED;
			}
			if (r->adjustment != ADJ_DEBIT) {
				if (charge > net) {
					char a[MONEY_FMT_MAX], b[MONEY_FMT_MAX];
					snprintf(reason, rsz, "a %s of %s would take \"%s\" below zero (net %s)",
						 record_adjustment_name(r->adjustment), money_format(charge, a),
						 r->supersedes, money_format(net, b));
					return OUT_REJECTED;
				}
				charge = -charge;
			}
		}
	}
	memset(row, 0, sizeof *row);
	row->rec = *r;
	row->received_us = now;
	row->late = record_is_late(c, inst, r->end_us, now);
	row->book_us = row->late ? now : r->end_us;
	row->charter_version = c->version;
	row->rate_micro = rate;
	row->charge_micro = charge;
	row->from_gate = from_gate;
	struct level_move moves[QUOTA_MAX_LEVELS];
	size_t nmoves = 0;
	row->overage = record_overage(app, c, r, row->book_us, charge, moves, &nmoves);
	if ((e = store_ledger_insert_q(app->store, row)) == ALLOT_E_TOO_LARGE) {
		/* SPEC 2, "Bounds": nothing of it was stored.  The group's map
		 * counted its charge: start it over from the ledger. */
		over_clear(&app->ledger_group->over);
		snprintf(reason, rsz, "%s", app->store->errmsg);
		return OUT_REJECTED;
	}
	if (e) {
		snprintf(reason, rsz, "the ledger could not be written");
		return OUT_ERROR;
	}
	/* Alerts and overage, in the booking's transaction (at least once:
	 * no event, no booking). */
	for (size_t i = 0; i < nmoves; i++)
		if (events_level_booked(app->store, c, &moves[i].q, moves[i].before, charge,
					moves[i].limit, r->record_id, r->provider, now)) {
			snprintf(reason, rsz, "the webhook outbox could not be written");
			return OUT_ERROR;
		}
	return OUT_ACCEPTED;
}

static json_t *outcome_json(enum outcome o, const struct usage_record *r,
			    const struct ledger_row *row, const char *reason)
{
	json_t *j = json_pack("{s:s,s:s}", "record_id", r->record_id[0] ? r->record_id : "",
			      "status", outcome_name(o));
	if (o == OUT_ACCEPTED || o == OUT_DUPLICATE) {
		char b[MONEY_FMT_MAX];
		json_object_set_new(j, "charge", json_string(money_format(row->charge_micro, b)));
		json_object_set_new(j, "charter_version", json_integer(row->charter_version));
		json_object_set_new(j, "overage", json_boolean(row->overage));
		json_object_set_new(j, "late", json_boolean(row->late));
	} else {
		json_object_set_new(j, "reason", json_string(reason));
	}
	return j;
}

/* ---- group commit ------------------------------------------------------------
 * Writers queue their work; the first to find no leader becomes the leader,
 * takes the whole queue, runs every item inside one transaction (each in its
 * own savepoint, so one item's store failure does not undo the others) and
 * commits once: one fsync for all the batches and settlements that arrived
 * meanwhile.  A lone writer leads at once, so nothing waits for company.
 *
 * Durability class of a group: FULL (fsynced before anyone is answered) if
 * it holds any provider batch: an acknowledged POST /v1/usage survives power
 * loss (SPEC 6).  A group of gate settlements only commits DEFERRED: in the
 * write-ahead log before the answer (a crash of the process loses nothing),
 * on disk within the store's flush interval (docs/LEDGER.md, "Durability"). */

typedef allot_err (*group_work_fn)(struct app *app, void *arg, int64_t now);

/* An item's state word: its writer sleeps on it (a futex) until the
 * leader of its group sets DONE, or the leader before hands it LEAD. */
enum { ITEM_WAIT, ITEM_LEAD, ITEM_DONE };

struct group_item {
	group_work_fn work;
	void *arg;
	allot_err result;
	bool durable;          /* needs a FULL commit (a provider batch) */
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


static void group_lead(struct app *app, struct group_item *items)
{
	int64_t now = time_now_us();
	size_t nitems = 0;
	for (const struct group_item *it = items; it; it = it->next)
		nitems++;
	metrics_observe(MH_GROUP_SIZE, (int64_t)nitems);
	struct over_map *over = &app->ledger_group->over;
	over_clear(over);
	allot_err e = store_ledger_begin_sync(app->store, group_sync(items));
	if (!e && !items->next) {
		/* A lone item needs no savepoint: its failure rolls back the
		 * transaction, which holds nothing else. */
		if ((items->result = items->work(app, items->arg, now)))
			store_ledger_rollback(app->store);
		else if ((e = store_ledger_commit(app->store)))
			items->result = e;
		over_clear(over);
		return;
	}
	for (struct group_item *it = items; it; it = it->next) {
		if (e) {
			it->result = e;
			continue;
		}
		if ((it->result = store_ledger_savepoint_q(app->store, STORE_SP_BEGIN)))
			continue;
		it->result = it->work(app, it->arg, now);
		store_ledger_savepoint_q(app->store, it->result ? STORE_SP_ROLLBACK : STORE_SP_RELEASE);
		if (it->result)
			over_clear(over); /* its charges were counted in the map */
	}
	over_clear(over);
	if (!e && (e = store_ledger_commit(app->store)))
		for (struct group_item *it = items; it; it = it->next)
			it->result = e; /* nothing of the group was stored */
}

size_t ledger_group_queued(struct app *app)
{
	struct ledger_group *group = app->ledger_group;
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
static allot_err group_run(struct app *app, group_work_fn work, void *arg, bool durable)
{
	struct group_item me = {.work = work, .arg = arg, .durable = durable, .state = ITEM_WAIT};
	struct ledger_group *group = app->ledger_group;
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
	group_lead(app, items);
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

/* ---- provider batches ------------------------------------------------------------ */

struct ingest_item {
	struct usage_record r;
	struct ledger_row row;
	enum outcome o;
	char reason[320];
};

struct ingest_batch {
	struct ingest_item *items;
	size_t n;
};

static allot_err ingest_work(struct app *app, void *arg, int64_t now)
{
	struct ingest_batch *b = arg;
	for (size_t i = 0; i < b->n; i++) {
		struct ingest_item *it = &b->items[i];
		if (it->o != OUT_ACCEPTED)
			continue; /* refused before the transaction */
		it->o = book_one(app, &it->r, NULL, now, &it->row, it->reason, sizeof it->reason);
		if (it->o == OUT_ERROR)
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
		struct ingest_item *it = &v->b->items[i];
		if (it->o != OUT_ACCEPTED)
			continue;
		if (strcmp(it->r.provider, v->provider) != 0) {
			it->o = OUT_REJECTED;
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
			it->o = OUT_REJECTED;
			snprintf(it->reason, sizeof it->reason, "signature does not verify with "
				 "any key of provider \"%s\"", v->provider);
		}
	}
}

static struct vpool *verify_pool(struct ledger_group *g)
{
	pthread_mutex_lock(&g->mu);
	if (!g->verify_started) {
		g->verify_started = true;
		g->verify = vpool_new(0);
	}
	struct vpool *p = g->verify;
	pthread_mutex_unlock(&g->mu);
	return p;
}

/* Provider and signature of every parsed item (o == OUT_ACCEPTED so far),
 * outside the transaction: this is the CPU-heavy part.  It runs on the
 * request's thread and the verification pool, so the CPUs stay busy while
 * other requests book their records or wait for their fsync. */
static void ingest_verify(struct app *app, const struct charter *c, const char *provider,
			  struct ingest_batch *b)
{
	struct verify_ctx v = {.b = b, .provider = provider, .prov = charter_provider(c, provider)};
	/* The provider's keys, parsed once for the whole batch. */
	for (size_t k = 0; v.prov && k < v.prov->nkeys && v.nver < CHARTER_MAX_VERIFIERS; k++)
		if (ed25519_verifier_new(v.prov->keys[k].pub, &v.ver[v.nver]) == ALLOT_OK)
			v.nver++;
	vpool_run(verify_pool(app->ledger_group), b->n, VERIFY_CHUNK, verify_range, &v);
	for (size_t k = 0; k < v.nver; k++)
		ed25519_verifier_free(v.ver[k]);
}

static void ingest_count(const struct ingest_batch *b, struct ledger_counts *counts)
{
	memset(counts, 0, sizeof *counts);
	for (size_t i = 0; i < b->n; i++) {
		switch (b->items[i].o) {
		case OUT_ACCEPTED: counts->accepted++; break;
		case OUT_DUPLICATE: counts->duplicate++; break;
		case OUT_CONFLICT: counts->conflict++; break;
		default: counts->rejected++; break;
		}
	}
}

static void ingest_free(struct ingest_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		record_release(&b->items[i].r);
	free(b->items);
}

static size_t ingest_rejected(const struct ingest_batch *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		n += b->items[i].o == OUT_REJECTED;
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
	ingest_count(b, &c);
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
static allot_err ingest_run(struct app *app, struct active_charter *cur, const char *provider,
			    struct ingest_batch *b, char *msg, size_t msgsz)
{
	size_t malformed = ingest_rejected(b);
	ingest_verify(app, cur->c, provider, b);
	size_t unsigned_ = ingest_rejected(b) - malformed;
	app_charter_put(app, cur);
	allot_err e = group_run(app, ingest_work, b, true);
	ingest_metrics(b, malformed, unsigned_, e);
	if (e)
		snprintf(msg, msgsz, "the ledger could not be written; nothing of this batch was stored");
	return e;
}

allot_err ledger_ingest(struct app *app, const char *provider, const json_t *records,
			json_t **outcomes, struct ledger_counts *counts, char *msg,
			size_t msgsz)
{
	size_t n = json_array_size(records);
	memset(counts, 0, sizeof *counts);
	if (!json_is_array(records) || n == 0 || n > LEDGER_BATCH_MAX) {
		snprintf(msg, msgsz, "\"records\" must be an array of 1..%d records", LEDGER_BATCH_MAX);
		return ALLOT_E_INVALID;
	}
	struct active_charter *cur = app_charter_get(app);
	if (!cur) {
		snprintf(msg, msgsz, "no charter has been applied");
		return ALLOT_E_UNAVAILABLE;
	}
	struct ingest_batch b = {.items = calloc(n, sizeof *b.items), .n = n};
	if (!b.items) {
		app_charter_put(app, cur);
		snprintf(msg, msgsz, "out of memory");
		return ALLOT_E_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct ingest_item *it = &b.items[i];
		it->o = record_parse(json_array_get(records, i), true, &it->r, it->reason,
				     sizeof it->reason) ? OUT_REJECTED : OUT_ACCEPTED;
	}
	allot_err e = ingest_run(app, cur, provider, &b, msg, msgsz);
	json_t *out = e ? NULL : json_array();
	for (size_t i = 0; out && i < n; i++) {
		struct ingest_item *it = &b.items[i];
		json_array_append_new(out, outcome_json(it->o, &it->r, &it->row, it->reason));
	}
	if (!e)
		ingest_count(&b, counts);
	ingest_free(&b);
	if (e)
		return e;
	*outcomes = out;
	return ALLOT_OK;
}

/* ---- POST /v1/usage bodies as text ---------------------------------------------------
 * The body {"records":[...]} read without building a jansson tree: each
 * record goes through record_parse_text, the answer is written straight
 * into the buffer, byte for byte what json_dumps makes of the tree built by
 * ledger_ingest.  A body that is not plain JSON in the sense of
 * record_parse_text (escapes, non-ASCII, nesting, floats, other top-level
 * fields, a repeated key, too many records) takes the jansson path. */

static const char *body_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Parses the plain body into b; false: not plain, b released. */
static bool ingest_parse_text(const char *body, size_t len, struct ingest_batch *b)
{
	static const char head[] = "\"records\"";
	const char *p = body_ws(body, body + len), *end = body + len;
	size_t cap = 0;
	memset(b, 0, sizeof *b);
	if (p >= end || *p != '{')
		return false;
	p = body_ws(p + 1, end);
	if ((size_t)(end - p) < sizeof head || memcmp(p, head, sizeof head - 1))
		return false;
	p = body_ws(p + sizeof head - 1, end);
	if (p >= end || *p != ':')
		return false;
	p = body_ws(p + 1, end);
	if (p >= end || *p != '[')
		return false;
	p = body_ws(p + 1, end);
	/* A record is at least 150 bytes: a first guess of the count. */
	cap = len / 128 + 1;
	if (cap > LEDGER_BATCH_MAX)
		cap = LEDGER_BATCH_MAX;
	b->items = malloc(cap * sizeof *b->items);
	if (!b->items)
		return false;
	while (p < end && *p != ']') {
		if (b->n == LEDGER_BATCH_MAX)
			goto fail; /* the jansson path says how many are allowed */
		if (b->n == cap) {
			size_t nc = cap * 2 > LEDGER_BATCH_MAX ? LEDGER_BATCH_MAX : cap * 2;
			struct ingest_item *ni = realloc(b->items, nc * sizeof *ni);
			if (!ni)
				goto fail;
			b->items = ni;
			cap = nc;
		}
		struct ingest_item *it = &b->items[b->n];
		bool plain;
		it->reason[0] = '\0';
		allot_err e = record_parse_text(&p, end, true, &it->r, &plain, it->reason,
						sizeof it->reason);
		if (!plain) {
			record_release(&it->r);
			goto fail;
		}
		b->n++;
		it->o = e ? OUT_REJECTED : OUT_ACCEPTED;
		p = body_ws(p, end);
		if (p < end && *p == ',') {
			p = body_ws(p + 1, end);
			if (p < end && *p == ']')
				goto fail; /* a trailing comma: malformed */
		} else if (p >= end || *p != ']') {
			goto fail;
		}
	}
	if (p >= end || b->n == 0)
		goto fail;
	p = body_ws(p + 1, end);
	if (p >= end || *p != '}')
		goto fail;
	if (body_ws(p + 1, end) != end)
		goto fail;
	return true;
fail:
	ingest_free(b);
	memset(b, 0, sizeof *b);
	return false;
}

/* outcome_json's object, written directly. */
static void outcome_write(struct buf *out, enum outcome o, const struct usage_record *r,
			  const struct ledger_row *row, const char *reason)
{
	buf_puts(out, "{\"record_id\":");
	json_write_str(out, r->record_id, strlen(r->record_id));
	buf_puts(out, ",\"status\":\"");
	buf_puts(out, outcome_name(o));
	if (o == OUT_ACCEPTED || o == OUT_DUPLICATE) {
		char m[MONEY_FMT_MAX];
		buf_puts(out, "\",\"charge\":\"");
		buf_puts(out, money_format(row->charge_micro, m));
		buf_puts(out, "\",\"charter_version\":");
		buf_put_int(out, row->charter_version);
		buf_puts(out, row->overage ? ",\"overage\":true" : ",\"overage\":false");
		buf_puts(out, row->late ? ",\"late\":true}" : ",\"late\":false}");
		return;
	}
	buf_putc(out, '"');
	size_t n = strlen(reason);
	if (json_utf8_ok(reason, n)) { /* else json_string() fails: no "reason" */
		buf_puts(out, ",\"reason\":");
		json_write_str(out, reason, n);
	}
	buf_putc(out, '}');
}

/* The answer as api_usage_submit sends it, from the jansson path. */
static allot_err answer_json(struct buf *out, const struct ledger_counts *n, json_t *outcomes,
			     char *msg, size_t msgsz)
{
	json_t *j = json_pack("{s:{s:I,s:I,s:I,s:I},s:o}", "summary", "accepted",
			      (json_int_t)n->accepted, "duplicate", (json_int_t)n->duplicate,
			      "conflict", (json_int_t)n->conflict, "rejected",
			      (json_int_t)n->rejected, "results", outcomes);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(j);
	if (!s) {
		snprintf(msg, msgsz, "out of memory");
		return ALLOT_E_NOMEM;
	}
	buf_puts(out, s);
	buf_putc(out, '\n');
	free(s);
	return ALLOT_OK;
}

static allot_err ingest_body_json(struct app *app, const char *provider, const char *body,
				  size_t len, struct buf *out, char *msg, size_t msgsz)
{
	static const char *const fields[] = {"records", NULL};
	json_t *j = NULL, *outcomes = NULL;
	struct ledger_counts n;
	allot_err e = json_parse(body, len, false, &j, msg, msgsz);
	if (e)
		return e;
	if (!(e = json_only_fields(j, fields, msg, msgsz)))
		e = ledger_ingest(app, provider, json_object_get(j, "records"), &outcomes, &n, msg,
				  msgsz);
	json_decref(j);
	return e ? e : answer_json(out, &n, outcomes, msg, msgsz);
}

allot_err ledger_ingest_body(struct app *app, const char *provider, const char *body,
			     size_t len, bool text, struct buf *out, char *msg, size_t msgsz)
{
	struct ingest_batch b;
	buf_reset(out);
	if (!body)
		body = "";
	if (!text || !ingest_parse_text(body, len, &b))
		return ingest_body_json(app, provider, body, len, out, msg, msgsz);
	struct active_charter *cur = app_charter_get(app);
	if (!cur) {
		ingest_free(&b);
		snprintf(msg, msgsz, "no charter has been applied");
		return ALLOT_E_UNAVAILABLE;
	}
	allot_err e = ingest_run(app, cur, provider, &b, msg, msgsz);
	if (!e) {
		struct ledger_counts n;
		ingest_count(&b, &n);
		buf_printf(out, "{\"summary\":{\"accepted\":%zu,\"duplicate\":%zu,\"conflict\":%zu,"
				"\"rejected\":%zu},\"results\":[", n.accepted, n.duplicate, n.conflict,
			   n.rejected);
		for (size_t i = 0; i < b.n; i++) {
			struct ingest_item *it = &b.items[i];
			if (i)
				buf_putc(out, ',');
			outcome_write(out, it->o, &it->r, &it->row, it->reason);
		}
		buf_puts(out, "]}\n");
		if (out->oom) {
			snprintf(msg, msgsz, "out of memory");
			e = ALLOT_E_NOMEM;
		}
	}
	ingest_free(&b);
	return e;
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

static allot_err settle_work(struct app *app, void *arg, int64_t now)
{
	struct settle_batch *b = arg;
	allot_err e = ALLOT_OK;
	b->total = 0;
	app->store->ops->ledger_hold(app->store, b->opts->hold);
	for (size_t i = 0; i < b->n && !e; i++) {
		struct ledger_row row;
		enum outcome o = book_one(app, &b->recs[i], b->opts, now, &row, b->reason,
					  b->reasonsz);
		if (o != OUT_ACCEPTED && o != OUT_DUPLICATE) {
			b->refused = o != OUT_ERROR;
			e = o == OUT_ERROR ? ALLOT_E_STORE : ALLOT_E_INVALID;
		} else if (money_add(b->total, row.charge_micro, &b->total)) {
			snprintf(b->reason, b->reasonsz, "the settlement's charge is out of range");
			b->refused = true;
			e = ALLOT_E_INVALID;
		}
	}
	if (!e && b->opts->queue_id && store_settleq_delete(app->store, b->opts->queue_id)) {
		snprintf(b->reason, b->reasonsz, "the retry queue could not be written");
		e = ALLOT_E_STORE;
	}
	app->store->ops->ledger_hold(app->store, 0);
	return e;
}

allot_err ledger_settle_many(struct app *app, struct usage_record *recs, size_t n,
			     int64_t *charge, char *reason, size_t reasonsz)
{
	const struct ledger_settle_opts o = {0};
	return ledger_settle(app, &o, recs, n, charge, reason, reasonsz);
}

allot_err ledger_settle(struct app *app, const struct ledger_settle_opts *o,
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
	allot_err e = group_run(app, settle_work, &b, false);
	if (e) {
		if (!b.refused && !reason[0])
			snprintf(reason, reasonsz, "the ledger could not be written");
		return e;
	}
	*charge = b.total;
	return ALLOT_OK;
}
