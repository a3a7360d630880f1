/* book.c — checking, pricing and booking one usage record inside the
 * group's transaction, and judging its overage (ledger/ledger_int.h). */
#include "ledger/ledger_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "ledger/events.h"
#include "common/timeutil.h"
#include "common/tz.h"
#include "ledger/period.h"
#include "ledger/quota.h"

const char *ledger_outcome_name(enum ledger_outcome o)
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

void ledger_over_clear(struct over_map *over)
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

/* Not common/strmap: the key is a (level key, period start) pair, and
 * folding the period into a string would format an integer for every
 * level of every record inside the group commit. */
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

/* What a booking does to a level (for its webhook events, ledger/events.h). */
struct level_move {
	struct quota_level q;
	int64_t before, limit;
};

/* Is any level past its allocation once charge is added?  Also counts the
 * charge in the group's map (the caller books the record right after).
 * OUT: moves[*nmoves]: each level's use before the charge, when the
 * charter has webhooks (else *nmoves is 0). */
static bool record_overage(struct ledger *led, const struct charter *c, const struct usage_record *r,
			   int64_t book_us, int64_t charge, struct level_move *moves,
			   size_t *nmoves)
{
	*nmoves = 0;
	struct quota_level lv[QUOTA_MAX_LEVELS];
	struct over_entry *es[QUOTA_MAX_LEVELS];
	size_t n = 0;
	const char *member = r->member[0] ? r->member : NULL;
	if (charge == 0 || over_levels(&led->over, c, r, book_us, lv, &n))
		return false;
	bool fill = false, mapped = true;
	for (size_t i = 0; i < n; i++) {
		es[i] = over_find(&led->over, lv[i].key, lv[i].period_start, true);
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
		if (quota_levels(led->store, c, r->institution, r->project, member, book_us, NULL,
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
		struct over_entry *nx = over_find(&led->over, lv[i].key,
						  lv[i].period_end, false);
		if (nx)
			nx->filled = false;
	}
	return over_limit;
}

/* Who a record is for and who reports it, as the charter c knows them
 * (SPEC section 6).  LEDGER_OUT_ACCEPTED with *inst_out, or the refusal. */
static enum ledger_outcome check_parties(const struct charter *c, const struct usage_record *r,
					 const struct charter_institution **inst_out, char *reason,
					 size_t rsz)
{
	*inst_out = NULL;
	const struct charter_institution *inst = charter_institution(c, r->institution);
	const struct charter_project *proj = inst ? charter_project(inst, r->project) : NULL;
	if (!inst) {
		snprintf(reason, rsz, "unknown institution \"%s\" (charter version %lld)",
			 r->institution, (long long)c->version);
		return LEDGER_OUT_REJECTED;
	}
	if (!proj) {
		snprintf(reason, rsz, "unknown project \"%s\" of institution \"%s\"", r->project,
			 r->institution);
		return LEDGER_OUT_REJECTED;
	}
	if (r->member[0] && !charter_member(proj, r->member)) {
		snprintf(reason, rsz, "\"%s\" is not a member of project \"%s/%s\"", r->member,
			 r->institution, r->project);
		return LEDGER_OUT_REJECTED;
	}
	const struct charter_provider *p = charter_provider(c, r->provider);
	if (!p || !charter_provider_may_report(c, p, r->resource, r->model)) {
		snprintf(reason, rsz, "provider \"%s\" may not report resource \"%s\"", r->provider,
			 r->resource);
		return LEDGER_OUT_REJECTED;
	}
	if (r->model[0]) {
		const struct charter_model *m = charter_model(c, r->model);
		if (!m) {
			snprintf(reason, rsz, "unknown model \"%s\"", r->model);
			return LEDGER_OUT_REJECTED;
		}
		if (strcmp(m->provider_id, r->provider)) { /* SPEC section 6 */
			snprintf(reason, rsz, "model \"%s\" is served by provider \"%s\", not \"%s\"",
				 r->model, m->provider_id, r->provider);
			return LEDGER_OUT_REJECTED;
		}
	}
	*inst_out = inst;
	return LEDGER_OUT_ACCEPTED;
}

/* Prices a correction (an adjustment or a void): against an earlier usage
 * record of the same provider, at that record's rate, never below zero
 * net.  LEDGER_OUT_ACCEPTED with *rate and *charge, or the refusal. */
static enum ledger_outcome price_correction(struct ledger *led, const struct usage_record *r,
					    int64_t *rate, int64_t *charge, char *reason, size_t rsz)
{
	struct ledger_row orig;
	allot_err e = store_ledger_find_q(led->store, r->provider, r->supersedes, &orig);
	if (e == ALLOT_E_NOT_FOUND) {
		snprintf(reason, rsz, "supersedes \"%s\": no such record of provider \"%s\"",
			 r->supersedes, r->provider);
		return LEDGER_OUT_REJECTED;
	}
	if (e) {
		snprintf(reason, rsz, "the ledger could not be read");
		return LEDGER_OUT_ERROR;
	}
	record_release(&orig.rec);
	if (orig.rec.kind != RECORD_USAGE) {
		snprintf(reason, rsz, "supersedes \"%s\": it is a%s %s, not a usage record",
			 r->supersedes, orig.rec.kind == RECORD_ADJUSTMENT ? "n" : "",
			 record_kind_name(orig.rec.kind));
		return LEDGER_OUT_REJECTED;
	}
	if (strcmp(orig.rec.institution, r->institution) || strcmp(orig.rec.project, r->project) ||
	    strcmp(orig.rec.member, r->member) || strcmp(orig.rec.resource, r->resource) ||
	    strcmp(orig.rec.model, r->model) || strcmp(orig.rec.cls, r->cls)) {
		snprintf(reason, rsz, "a correction must name the same institution, project, "
				      "member, resource, model and class as \"%s\"", r->supersedes);
		return LEDGER_OUT_REJECTED;
	}
	int64_t net;
	bool voided;
	if (store_ledger_net_q(led->store, r->provider, r->supersedes, &net, &voided)) {
		snprintf(reason, rsz, "the ledger could not be read");
		return LEDGER_OUT_ERROR;
	}
	if (voided) {
		snprintf(reason, rsz, "supersedes \"%s\": that record is void", r->supersedes);
		return LEDGER_OUT_REJECTED;
	}
	*rate = orig.rate_micro;
	if (r->kind == RECORD_VOID) {
		if (r->quantity != orig.rec.quantity) {
			snprintf(reason, rsz, "a void must repeat the quantity of \"%s\" (%lld)",
				 r->supersedes, (long long)orig.rec.quantity);
			return LEDGER_OUT_REJECTED;
		}
		*charge = -net;
	} else {
		if (money_mul(r->quantity, *rate, charge) || *charge > MONEY_MAX) {
			snprintf(reason, rsz, "charge out of range");
			return LEDGER_OUT_REJECTED;
		}
		if (r->adjustment != ADJ_DEBIT) {
			if (*charge > net) {
				char a[MONEY_FMT_MAX], b[MONEY_FMT_MAX];
				snprintf(reason, rsz, "a %s of %s would take \"%s\" below zero (net %s)",
					 record_adjustment_name(r->adjustment), money_format(*charge, a),
					 r->supersedes, money_format(net, b));
				return LEDGER_OUT_REJECTED;
			}
			*charge = -*charge;
		}
	}
	return LEDGER_OUT_ACCEPTED;
}

/* A record booked before under r's (provider, record_id): the same content
 * is a duplicate (*row: the stored one, with r), other content a conflict.
 * LEDGER_OUT_ACCEPTED: none is stored (go on and decide it). */
static enum ledger_outcome book_stored_before(struct ledger *led, const struct usage_record *r,
					      struct ledger_row *row, char *reason, size_t rsz)
{
	struct ledger_row prev;
	allot_err e = store_ledger_find_q(led->store, r->provider, r->record_id, &prev);
	if (e == ALLOT_E_NOT_FOUND)
		return LEDGER_OUT_ACCEPTED;
	if (e) {
		snprintf(reason, rsz, "the ledger could not be read");
		return LEDGER_OUT_ERROR;
	}
	bool same = memcmp(prev.rec.sha256, r->sha256, 32) == 0;
	record_release(&prev.rec);
	if (!same) {
		snprintf(reason, rsz, "record_id \"%s\" was already used by provider \"%s\" "
				      "for a record with different content", r->record_id, r->provider);
		return LEDGER_OUT_CONFLICT;
	}
	*row = prev;
	row->rec = *r;
	return LEDGER_OUT_DUPLICATE;
}

/* Checks r against the charters and the ledger, prices it and books it.
 * Must run inside a ledger transaction.  row->rec is r (borrowed).
 * gate: NULL for a provider's record; for a gate settlement, its options:
 * the charter it was admitted under (a request is admitted and settled
 * under one version, SPEC section 2; NULL: the one in force at `end`). */
static enum ledger_outcome book_decide(struct ledger *led, struct usage_record *r,
				       const struct ledger_settle_opts *gate, int64_t now,
				       struct ledger_row *row, char *reason, size_t rsz)
{
	const bool from_gate = gate != NULL;
	const struct charter *priced_by = gate ? gate->charter : NULL;
	/* A gate settlement's id is new by construction (the gate's start
	 * time and a sequence number, gate/gate.c): no earlier record to find,
	 * except on a retry from the queue (an earlier attempt may have been
	 * booked after all: then it is a duplicate, booked once).  Were one
	 * there, the unique (provider, record_id) index would refuse the
	 * insert, and the settlement would fail rather than double. */
	if (!from_gate || gate->retry) {
		enum ledger_outcome o = book_stored_before(led, r, row, reason, rsz);
		if (o != LEDGER_OUT_ACCEPTED)
			return o;
	}
	if (r->end_us > now + RECORD_FUTURE_SKEW_US) {
		snprintf(reason, rsz, "\"end\" is more than 5 minutes in the future");
		return LEDGER_OUT_REJECTED;
	}
	const struct active_charter *ac = priced_by ? NULL : chist_at(led->charters, r->end_us);
	if (!priced_by && !ac) {
		snprintf(reason, rsz, "no charter was in force at \"end\"");
		return LEDGER_OUT_REJECTED;
	}
	const struct charter *c = priced_by ? priced_by : ac->c;
	const struct charter_institution *inst;
	enum ledger_outcome o = check_parties(c, r, &inst, reason, rsz);
	if (o != LEDGER_OUT_ACCEPTED)
		return o;
	int64_t rate = 0, charge = 0;
	if (r->kind == RECORD_USAGE) {
		const struct charter_rate *cr = charter_rate_for(c, r->resource,
								 r->model[0] ? r->model : NULL,
								 r->cls[0] ? r->cls : NULL);
		if (!cr) {
			snprintf(reason, rsz, "no rate for resource \"%s\"%s%s%s%s in charter version %lld",
				 r->resource, r->model[0] ? " model " : "", r->model,
				 r->cls[0] ? " class " : "", r->cls, (long long)c->version);
			return LEDGER_OUT_REJECTED;
		}
		rate = cr->credits;
		if (money_mul(r->quantity, rate, &charge) || charge > MONEY_MAX) {
			snprintf(reason, rsz, "charge out of range");
			return LEDGER_OUT_REJECTED;
		}
	} else {
		o = price_correction(led, r, &rate, &charge, reason, rsz);
		if (o != LEDGER_OUT_ACCEPTED)
			return o;
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
	row->overage = record_overage(led, c, r, row->book_us, charge, moves, &nmoves);
	allot_err e = store_ledger_insert_q(led->store, row);
	if (e == ALLOT_E_TOO_LARGE) {
		/* SPEC 2, "Bounds": nothing of it was stored.  The group's map
		 * counted its charge: start it over from the ledger. */
		ledger_over_clear(&led->over);
		snprintf(reason, rsz, "%s", led->store->errmsg);
		return LEDGER_OUT_REJECTED;
	}
	if (e == ALLOT_E_CONFLICT && (!from_gate || gate->retry)) {
		/* Booked meanwhile by another node (PostgreSQL: our lookup ran
		 * before its commit, the unique index waited for it and
		 * refused ours; nothing of ours was written, the transaction
		 * goes on).  The same answer as had it been found first; the
		 * group's map counted the charge: start it over. */
		ledger_over_clear(&led->over);
		o = book_stored_before(led, r, row, reason, rsz);
		if (o != LEDGER_OUT_ACCEPTED)
			return o;
		snprintf(reason, rsz, "the ledger could not be written");
		return LEDGER_OUT_ERROR;
	}
	if (e) {
		snprintf(reason, rsz, "the ledger could not be written");
		return LEDGER_OUT_ERROR;
	}
	/* Alerts and overage, in the booking's transaction (at least once:
	 * no event, no booking). */
	for (size_t i = 0; i < nmoves; i++)
		if (events_level_booked(led->store, c, &moves[i].q, moves[i].before, charge,
					moves[i].limit, r->record_id, r->provider, now)) {
			snprintf(reason, rsz, "the webhook outbox could not be written");
			return LEDGER_OUT_ERROR;
		}
	return LEDGER_OUT_ACCEPTED;
}

/* A provider's record that was refused before (migration 0013): the same
 * record gets the same answer, other content under its id is a conflict.
 * LEDGER_OUT_ACCEPTED: not refused before (go on and decide it). */
static enum ledger_outcome book_refused_before(struct ledger *led,
					       const struct usage_record *r, char *reason,
					       size_t rsz)
{
	struct ledger_rejection prev;
	allot_err e = store_reject_find(led->store, r->provider, r->record_id, &prev);
	if (e == ALLOT_E_NOT_FOUND)
		return LEDGER_OUT_ACCEPTED;
	if (e) {
		snprintf(reason, rsz, "the ledger could not be read");
		return LEDGER_OUT_ERROR;
	}
	if (memcmp(prev.sha256, r->sha256, 32) != 0) {
		snprintf(reason, rsz, "record_id \"%s\" was already used by provider \"%s\" "
				      "for a record with different content (rejected: %s)",
			 r->record_id, r->provider, prev.reason);
		return LEDGER_OUT_CONFLICT;
	}
	snprintf(reason, rsz, "%s", prev.reason);
	return LEDGER_OUT_REJECTED;
}

/* Books r (book_decide).  A provider's record refused here is a decision
 * about that record, kept in the batch's own transaction, so that a retry
 * of the batch gets the same answer whatever the ledger holds by then
 * (SPEC section 6; docs/LEDGER.md, "Rejections are final").  A gate
 * settlement's refusals go to its retry queue instead (gate/settleq.c). */
enum ledger_outcome ledger_book_one(struct ledger *led, struct usage_record *r,
				    const struct ledger_settle_opts *gate, int64_t now,
				    struct ledger_row *row, char *reason, size_t rsz)
{
	if (gate)
		return book_decide(led, r, gate, now, row, reason, rsz);
	enum ledger_outcome o = book_refused_before(led, r, reason, rsz);
	if (o != LEDGER_OUT_ACCEPTED)
		return o;
	o = book_decide(led, r, NULL, now, row, reason, rsz);
	if (o != LEDGER_OUT_REJECTED)
		return o;
	struct ledger_rejection rj = {.has_seq = r->has_seq, .seq = r->seq, .received_us = now};
	snprintf(rj.provider, sizeof rj.provider, "%s", r->provider);
	snprintf(rj.record_id, sizeof rj.record_id, "%s", r->record_id);
	snprintf(rj.reason, sizeof rj.reason, "%s", reason);
	memcpy(rj.sha256, r->sha256, 32);
	allot_err e = store_reject_insert(led->store, &rj);
	if (e == ALLOT_E_CONFLICT) {
		/* Refused meanwhile by another node (store.h): the decision
		 * stored first is the one that stands. */
		o = book_refused_before(led, r, reason, rsz);
		if (o != LEDGER_OUT_ACCEPTED)
			return o;
	}
	if (e) {
		snprintf(reason, rsz, "the ledger could not be written");
		return LEDGER_OUT_ERROR;
	}
	return LEDGER_OUT_REJECTED;
}
