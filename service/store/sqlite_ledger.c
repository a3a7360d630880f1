/* sqlite_ledger.c — the usage ledger's writes, lookups and sums for the
 * SQLite backend (listing and reports: sqlite_ledger_read.c). */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/money.h"

#define S(st_) ((struct sqlite_store *)(st_))

/* ---- bucket deltas -------------------------------------------------------------
 * Each booked record adds its charge to its (institution, project, member,
 * 15-minute bucket) row of usage_buckets.  Instead of one upsert per record,
 * the open transaction sums the charges per key (and hold tag) in s->bk and
 * writes each key once: before a savepoint begins or ends, before a sum is
 * read inside the transaction, when the table is full, and at commit — so
 * every reader inside the transaction, and everything committed, sees the
 * same rows as with an upsert per record.  A rollback drops them with the
 * rows they belong to.  If writing them fails, the transaction cannot
 * commit (bk_failed). */

static const char q_bucket[] =
	"INSERT INTO usage_buckets(institution, project, member, bucket, charge) "
	"VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(institution, project, member, bucket) "
	"DO UPDATE SET charge = charge + excluded.charge";

static allot_err bk_flush(struct sqlite_store *s)
{
	allot_err e = ALLOT_OK;
	for (size_t i = 0; i < s->nbk && !e; i++) {
		const struct sq_bucket_delta *d = &s->bk[i];
		sqlite3_stmt *q = sq_prep(s, q_bucket);
		if (!q) {
			e = ALLOT_E_STORE;
			break;
		}
		sqlite3_bind_text(q, 1, d->inst, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, d->proj, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, d->member, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 4, d->bucket);
		sqlite3_bind_int64(q, 5, d->charge);
		int rc = sqlite3_step(q);
		sqlite3_reset(q);
		if (rc != SQLITE_DONE) {
			e = sq_fail(s, "bucket update");
			break;
		}
		if (s->sums)
			sumcache_pending(s->sums, d->inst, d->proj, d->member, d->bucket, d->charge, d->tag);
	}
	if (e)
		s->bk_failed = true;
	s->nbk = 0;
	return e;
}

static allot_err bk_add(struct sqlite_store *s, const struct usage_record *r, int64_t bucket,
			int64_t charge)
{
	for (size_t i = s->nbk; i-- > 0;) {
		struct sq_bucket_delta *d = &s->bk[i];
		if (d->bucket == bucket && d->tag == s->hold_tag && strcmp(d->member, r->member) == 0 &&
		    strcmp(d->proj, r->project) == 0 && strcmp(d->inst, r->institution) == 0) {
			/* Cannot overflow under the bounds below; were it to, the
			 * record fails rather than a bucket wrapping. */
			if (money_add(d->charge, charge, &d->charge))
				return ALLOT_E_TOO_LARGE;
			return ALLOT_OK;
		}
	}
	if (s->nbk == SQ_BUCKET_DELTAS && bk_flush(s))
		return ALLOT_E_STORE;
	struct sq_bucket_delta *d = &s->bk[s->nbk++];
	d->bucket = bucket;
	d->charge = charge;
	d->tag = s->hold_tag;
	snprintf(d->inst, sizeof d->inst, "%s", r->institution);
	snprintf(d->proj, sizeof d->proj, "%s", r->project);
	snprintf(d->member, sizeof d->member, "%s", r->member);
	return ALLOT_OK;
}

static void bk_drop(struct sqlite_store *s)
{
	s->nbk = 0;
}

/* ---- bounds ---------------------------------------------------------------------
 * SPEC 2, "Bounds": every sum at every level fits in int64.  A level's sum
 * over a period, a bucket, a report's group, the sum cache and the gate's
 * token spend are all sums of some of the ledger's rows, added in some
 * order; each partial sum of them lies within [-P, P] where P is the total
 * of every positive charge (a correction never takes its record below zero
 * net, so the negative charges total at most P).  The store keeps P and the
 * total of every quantity in ledger_bounds and refuses, before writing
 * anything, a record that would take either past INT64_MAX: then no sum of
 * any rows can overflow, in SQL (sum() raises, `+` goes REAL) or in C.
 * The totals of the open transaction follow its savepoints.  The table
 * holds the totals of the rows up to its `upto` id and is written by a
 * committing transaction only every LB_WRITE_ROWS rows (not one more page
 * per commit for the gate's settlements); loading adds the rows after
 * `upto` (at most that many, more after a crash), read by rowid. */

#define LB_WRITE_ROWS 1024

static const char q_bounds_get[] =
	"SELECT charge_pos, quantity, upto FROM ledger_bounds WHERE id = 1";
static const char q_bounds_tail[] =
	"SELECT coalesce(sum(charge_micro) FILTER (WHERE charge_micro > 0), 0), "
	"coalesce(sum(quantity), 0), count(*) FROM usage_records WHERE id > ?1";
static const char q_bounds_set[] =
	"UPDATE ledger_bounds SET charge_pos = ?1, quantity = ?2, "
	"upto = (SELECT coalesce(max(id), 0) FROM usage_records) WHERE id = 1";

/* The rows after the table's upto, added to the loaded totals. */
static allot_err lb_tail(struct sqlite_store *s, int64_t upto)
{
	struct sq_bounds *b = &s->bounds;
	sqlite3_stmt *q = sq_prep(s, q_bounds_tail);
	if (!q)
		return ALLOT_E_STORE;
	sqlite3_bind_int64(q, 1, upto);
	int rc = sqlite3_step(q);
	bool ok = rc == SQLITE_ROW && !money_add(b->charge, sqlite3_column_int64(q, 0), &b->charge) &&
		  !money_add(b->quantity, sqlite3_column_int64(q, 1), &b->quantity);
	if (ok)
		b->unwritten = sqlite3_column_int64(q, 2);
	sqlite3_reset(q);
	if (!ok) {
		if (rc == SQLITE_ROW)
			snprintf(s->base.errmsg, sizeof s->base.errmsg, "the ledger's totals overflow");
		else
			sq_fail(s, "ledger bounds");
		return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

static allot_err lb_load(struct sqlite_store *s)
{
	struct sq_bounds *b = &s->bounds;
	if (b->loaded)
		return ALLOT_OK;
	sqlite3_stmt *q = sq_prep(s, q_bounds_get);
	if (!q)
		return ALLOT_E_STORE;
	int rc = sqlite3_step(q);
	bool have = rc == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_INTEGER &&
		    sqlite3_column_type(q, 1) == SQLITE_INTEGER;
	int64_t upto = have ? sqlite3_column_int64(q, 2) : 0;
	if (have) {
		b->charge = sqlite3_column_int64(q, 0);
		b->quantity = sqlite3_column_int64(q, 1);
	}
	sqlite3_reset(q);
	if (!have) {
		if (rc == SQLITE_ROW || rc == SQLITE_DONE)
			snprintf(s->base.errmsg, sizeof s->base.errmsg, "ledger_bounds has no row");
		else
			sq_fail(s, "ledger bounds");
		return ALLOT_E_STORE;
	}
	allot_err e = lb_tail(s, upto);
	b->loaded = e == ALLOT_OK;
	return e;
}

static int64_t lb_positive(int64_t charge) { return charge > 0 ? charge : 0; }

/* ALLOT_E_TOO_LARGE (reason in errmsg) if row would take a total past
 * INT64_MAX.  Every term is >= 0, so a sum that fits has partial sums
 * that fit. */
static allot_err lb_check(struct sqlite_store *s, const struct ledger_row *row)
{
	const struct sq_bounds *b = &s->bounds;
	int64_t t;
	if (money_add(b->charge, b->tx_charge, &t) ||
	    money_add(t, lb_positive(row->charge_micro), &t)) {
		char c[MONEY_FMT_MAX];
		snprintf(s->base.errmsg, sizeof s->base.errmsg,
			 "booking this record would take the ledger's total of charges past %s credits, "
			 "the bound of every sum (int64 micro-credits)", money_format(INT64_MAX, c));
		return ALLOT_E_TOO_LARGE;
	}
	if (money_add(b->quantity, b->tx_quantity, &t) ||
	    money_add(t, row->rec.quantity, &t)) {
		snprintf(s->base.errmsg, sizeof s->base.errmsg,
			 "booking this record would take the ledger's total of quantities past %lld, "
			 "the bound of every sum (int64)", (long long)INT64_MAX);
		return ALLOT_E_TOO_LARGE;
	}
	return ALLOT_OK;
}

static void lb_add(struct sqlite_store *s, const struct ledger_row *row)
{
	s->bounds.tx_charge += lb_positive(row->charge_micro); /* checked by lb_check */
	s->bounds.tx_quantity += row->rec.quantity;
	s->bounds.tx_rows++;
}

static void lb_begin(struct sqlite_store *s)
{
	struct sq_bounds *b = &s->bounds;
	b->tx_charge = b->tx_quantity = b->sp_charge = b->sp_quantity = 0;
	b->tx_rows = b->sp_rows = 0;
	b->tx_written = false;
}

/* Inside the transaction, before its commit: the new totals, when due
 * (force: whenever the transaction added rows). */
static allot_err lb_write(struct sqlite_store *s, bool force)
{
	struct sq_bounds *b = &s->bounds;
	if (!b->tx_rows || (!force && b->unwritten + b->tx_rows < LB_WRITE_ROWS))
		return ALLOT_OK;
	sqlite3_stmt *q = sq_prep(s, q_bounds_set);
	if (!q)
		return ALLOT_E_STORE;
	sqlite3_bind_int64(q, 1, b->charge + b->tx_charge);
	sqlite3_bind_int64(q, 2, b->quantity + b->tx_quantity);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE || sqlite3_changes(s->db) != 1)
		return sq_fail(s, "ledger bounds update");
	b->tx_written = true;
	return ALLOT_OK;
}

/* After the transaction ended: committed or not. */
static void lb_end(struct sqlite_store *s, bool committed)
{
	struct sq_bounds *b = &s->bounds;
	if (committed) {
		b->charge += b->tx_charge;
		b->quantity += b->tx_quantity;
		b->unwritten = b->tx_written ? 0 : b->unwritten + b->tx_rows;
	}
	lb_begin(s);
}

allot_err sq_ledger_begin(struct store *st)
{
	return sq_ledger_begin_sync(st, STORE_SYNC_FULL);
}

allot_err sq_ledger_begin_sync(struct store *st, enum store_sync sync)
{
	struct sqlite_store *s = S(st);
	pthread_mutex_lock(&s->lock);
	s->nbk = 0;
	s->bk_failed = false;
	lb_begin(s);
	allot_err e = sq_begin_sync(s, sync);
	if (e)
		pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_ledger_commit(struct store *st)
{
	struct sqlite_store *s = S(st);
	allot_err e = s->nbk ? bk_flush(s) : ALLOT_OK;
	if (!e && s->bk_failed)
		e = ALLOT_E_STORE; /* some deltas were not written */
	if (!e)
		e = lb_write(s, false);
	if (!e)
		e = sq_commit(s);
	if (e) {
		bk_drop(s);
		sq_rollback(s);
	}
	lb_end(s, !e);
	pthread_mutex_unlock(&s->lock);
	return e;
}

void sq_ledger_rollback(struct store *st)
{
	struct sqlite_store *s = S(st);
	bk_drop(s);
	sq_rollback(s);
	lb_end(s, false);
	pthread_mutex_unlock(&s->lock);
}

allot_err sq_ledger_savepoint(struct store *st, int op)
{
	struct sqlite_store *s = S(st);
	static const char sp[] = "SAVEPOINT ledger_item", rel[] = "RELEASE ledger_item",
			  back[] = "ROLLBACK TO ledger_item";
	switch (op) {
	case STORE_SP_BEGIN:
		if (s->nbk && bk_flush(s)) /* deltas from before belong before the mark */
			return ALLOT_E_STORE;
		s->sp_mark = s->sums ? sumcache_pending_mark(s->sums) : 0;
		s->bounds.sp_charge = s->bounds.tx_charge;
		s->bounds.sp_quantity = s->bounds.tx_quantity;
		s->bounds.sp_rows = s->bounds.tx_rows;
		sq_tlog_savepoint(s, op); /* the log's tree state follows the savepoint */
		return sq_exec_cached(s, sp);
	case STORE_SP_RELEASE:
		if (s->nbk && bk_flush(s))
			return ALLOT_E_STORE; /* bk_failed: the commit fails */
		return sq_exec_cached(s, rel);
	default:
		bk_drop(s); /* the rows they belong to are rolled back */
		if (s->sums)
			sumcache_pending_truncate(s->sums, s->sp_mark);
		s->bounds.tx_charge = s->bounds.sp_charge;
		s->bounds.tx_quantity = s->bounds.sp_quantity;
		s->bounds.tx_rows = s->bounds.sp_rows;
		if (sq_exec_cached(s, back))
			return ALLOT_E_STORE;
		sq_tlog_savepoint(s, op);
		return sq_exec_cached(s, rel);
	}
}

void sq_ledger_hold(struct store *st, uint64_t tag)
{
	struct sqlite_store *s = S(st);
	pthread_mutex_lock(&s->lock);
	s->hold_tag = tag;
	pthread_mutex_unlock(&s->lock);
}

void sq_ledger_release(struct store *st, uint64_t tag)
{
	struct sqlite_store *s = S(st);
	if (s->sums)
		sumcache_release(s->sums, tag); /* the cache's own lock */
}

static enum record_kind kind_parse(const char *k)
{
	return !k ? RECORD_USAGE
	       : strcmp(k, "adjustment") == 0 ? RECORD_ADJUSTMENT
	       : strcmp(k, "void") == 0 ? RECORD_VOID : RECORD_USAGE;
}

static enum record_adjustment adjustment_parse(const char *a)
{
	return !a ? ADJ_NONE
	       : strcmp(a, "credit") == 0 ? ADJ_CREDIT
	       : strcmp(a, "refund") == 0 ? ADJ_REFUND : ADJ_DEBIT;
}

allot_err sq_usage_row(sqlite3_stmt *q, struct ledger_row *out)
{
	memset(out, 0, sizeof *out);
	struct usage_record *r = &out->rec;
	out->row_id = sqlite3_column_int64(q, 0);
	sq_copy_text(q, 1, r->provider, sizeof r->provider);
	sq_copy_text(q, 2, r->record_id, sizeof r->record_id);
	r->has_seq = sqlite3_column_type(q, 3) != SQLITE_NULL;
	r->seq = sqlite3_column_int64(q, 3);
	r->kind = kind_parse((const char *)sqlite3_column_text(q, 4));
	r->adjustment = adjustment_parse((const char *)sqlite3_column_text(q, 5));
	sq_copy_text(q, 6, r->supersedes, sizeof r->supersedes);
	sq_copy_text(q, 7, r->institution, sizeof r->institution);
	sq_copy_text(q, 8, r->project, sizeof r->project);
	sq_copy_text(q, 9, r->member, sizeof r->member);
	sq_copy_text(q, 10, r->resource, sizeof r->resource);
	sq_copy_text(q, 11, r->cls, sizeof r->cls);
	sq_copy_text(q, 12, r->model, sizeof r->model);
	r->quantity = sqlite3_column_int64(q, 13);
	r->start_us = sqlite3_column_int64(q, 14);
	r->end_us = sqlite3_column_int64(q, 15);
	out->received_us = sqlite3_column_int64(q, 16);
	out->book_us = sqlite3_column_int64(q, 17);
	out->late = sqlite3_column_int(q, 18);
	out->charter_version = sqlite3_column_int64(q, 19);
	out->rate_micro = sqlite3_column_int64(q, 20);
	out->charge_micro = sqlite3_column_int64(q, 21);
	out->overage = sqlite3_column_int(q, 22);
	const char *src = (const char *)sqlite3_column_text(q, 23);
	out->from_gate = src && strcmp(src, "gate") == 0;
	if (sqlite3_column_bytes(q, 25) == 32)
		memcpy(r->sha256, sqlite3_column_blob(q, 25), 32);
	/* none stored: the sealed spelling, rebuilt from the fields above */
	const void *canon = sqlite3_column_blob(q, 24);
	return record_canonical_load(r, canon, canon ? (size_t)sqlite3_column_bytes(q, 24) : 0);
}

allot_err sq_ledger_find(struct store *st, const char *provider, const char *record_id,
			 struct ledger_row *out)
{
	struct sqlite_store *s = S(st);
	static const char sql[] =
		"SELECT " SQ_USAGE_COLS " FROM usage_records WHERE provider = ?1 AND record_id = ?2";
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q)
		goto out;
	sqlite3_bind_text(q, 1, provider, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 2, record_id, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_DONE) {
		e = ALLOT_E_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		sq_fail(s, "ledger find");
		goto out;
	}
	e = sq_usage_row(q, out);
out:
	if (q)
		sqlite3_reset(q);
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_ledger_insert(struct store *st, struct ledger_row *row)
{
	struct sqlite_store *s = S(st);
	static const char ins[] =
		"INSERT INTO usage_records(provider, record_id, seq, kind, adjustment, supersedes, "
		"institution, project, member, resource, class, model, quantity, start_us, end_us, "
		"received_us, book_us, late, charter_version, rate_micro, charge_micro, overage, "
		"source, canonical, sha256, leaf_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
		"?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)";
	const struct usage_record *r = &row->rec;
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	/* Refused before anything is written (see "bounds"). */
	if ((e = lb_load(s)) || (e = lb_check(s, row)))
		goto out;
	e = ALLOT_E_STORE;
	sqlite3_stmt *q = sq_prep(s, ins);
	if (!q)
		goto out;
	sqlite3_bind_text(q, 1, r->provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, r->record_id, -1, SQLITE_STATIC);
	if (r->has_seq)
		sqlite3_bind_int64(q, 3, r->seq);
	sqlite3_bind_text(q, 4, record_kind_name(r->kind), -1, SQLITE_STATIC);
	if (r->adjustment != ADJ_NONE)
		sqlite3_bind_text(q, 5, record_adjustment_name(r->adjustment), -1, SQLITE_STATIC);
	sq_bind_text(q, 6, r->supersedes);
	sqlite3_bind_text(q, 7, r->institution, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, r->project, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 9, r->member, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 10, r->resource, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 11, r->cls, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 12, r->model, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 13, r->quantity);
	sqlite3_bind_int64(q, 14, r->start_us);
	sqlite3_bind_int64(q, 15, r->end_us);
	sqlite3_bind_int64(q, 16, row->received_us);
	sqlite3_bind_int64(q, 17, row->book_us);
	sqlite3_bind_int(q, 18, row->late);
	sqlite3_bind_int64(q, 19, row->charter_version);
	sqlite3_bind_int64(q, 20, row->rate_micro);
	sqlite3_bind_int64(q, 21, row->charge_micro);
	sqlite3_bind_int(q, 22, row->overage);
	sqlite3_bind_text(q, 23, row->from_gate ? "gate" : "provider", -1, SQLITE_STATIC);
	/* the sealed spelling is kept as no bytes (docs/LEDGER.md, "Storage") */
	if (record_canonical_rebuilds(r))
		sqlite3_bind_zeroblob(q, 24, 0);
	else
		sqlite3_bind_blob(q, 24, r->canonical, (int)r->canonical_len, SQLITE_STATIC);
	sqlite3_bind_blob(q, 25, r->sha256, 32, SQLITE_STATIC);
	int64_t leaf = sq_tlog_next_index(s); /* the record's leaf, appended below */
	if (leaf >= 0)
		sqlite3_bind_int64(q, 26, leaf);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc == SQLITE_CONSTRAINT) {
		e = ALLOT_E_CONFLICT;
		goto out;
	}
	if (rc != SQLITE_DONE) {
		sq_fail(s, "ledger insert");
		goto out;
	}
	row->row_id = sqlite3_last_insert_rowid(s->db);
	if (sq_tlog_append_usage(s, row)) /* the record's log leaf, same transaction */
		goto out;
	int64_t b = row->book_us / LEDGER_BUCKET_US;
	if (row->book_us < 0 && row->book_us % LEDGER_BUCKET_US)
		b -= 1;
	if (bk_add(s, r, b, row->charge_micro)) /* written before anything reads it */
		goto out;
	lb_add(s, row);
	if (sqlite3_get_autocommit(s->db)) { /* outside a transaction: the row is stored */
		e = lb_write(s, true);
		lb_end(s, !e);
		goto out;
	}
	e = ALLOT_OK;
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}

static int64_t bucket_of(int64_t us)
{
	int64_t b = us / LEDGER_BUCKET_US;
	if (us < 0 && us % LEDGER_BUCKET_US)
		b -= 1;
	return b;
}

allot_err sq_ledger_sum(struct store *st, const struct ledger_level *lv, int64_t from_us,
			int64_t to_us, int64_t *sum)
{
	struct sqlite_store *s = S(st);
	static const char q_pool[] =
		"SELECT coalesce(sum(charge), 0) FROM usage_buckets WHERE bucket >= ?1 AND bucket < ?2";
	static const char q_inst[] =
		"SELECT coalesce(sum(charge), 0) FROM usage_buckets WHERE institution = ?3 "
		"AND bucket >= ?1 AND bucket < ?2";
	static const char q_proj[] =
		"SELECT coalesce(sum(charge), 0) FROM usage_buckets WHERE institution = ?3 "
		"AND project = ?4 AND bucket >= ?1 AND bucket < ?2";
	static const char q_mem[] =
		"SELECT coalesce(sum(charge), 0) FROM usage_buckets WHERE institution = ?3 "
		"AND project = ?4 AND member = ?5 AND bucket >= ?1 AND bucket < ?2";
	const char *sql = !lv->institution ? q_pool : !lv->project ? q_inst
			  : !lv->member ? q_proj : q_mem;
	allot_err e = ALLOT_E_STORE;
	int64_t fb = bucket_of(from_us), tb = to_us == INT64_MAX ? INT64_MAX : bucket_of(to_us);
	/* A hit needs only the cache's lock, not the connection a group commit
	 * may be holding across its fsync (see sumcache.h). */
	if (s->sums && !sq_in_tx() &&
	    sumcache_get(s->sums, lv->institution, lv->project, lv->member, fb, tb, sum))
		return ALLOT_OK;
	pthread_mutex_lock(&s->lock);
	/* Outside a transaction the cache is exact (see sumcache.h). */
	bool cacheable = s->sums && sqlite3_get_autocommit(s->db);
	if (cacheable && sumcache_get(s->sums, lv->institution, lv->project, lv->member, fb, tb, sum)) {
		pthread_mutex_unlock(&s->lock);
		return ALLOT_OK;
	}
	if (s->nbk && bk_flush(s)) /* this transaction's charges first */
		goto out;
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q)
		goto out;
	sqlite3_bind_int64(q, 1, fb);
	sqlite3_bind_int64(q, 2, tb);
	if (lv->institution)
		sqlite3_bind_text(q, 3, lv->institution, -1, SQLITE_STATIC);
	if (lv->project)
		sqlite3_bind_text(q, 4, lv->project, -1, SQLITE_STATIC);
	if (lv->member)
		sqlite3_bind_text(q, 5, lv->member, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_ROW) {
		sq_fail(s, "ledger sum");
		sqlite3_reset(q);
		goto out;
	}
	*sum = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	if (cacheable)
		sumcache_put(s->sums, lv->institution, lv->project, lv->member, fb, tb, sum);
	e = ALLOT_OK;
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_ledger_net(struct store *st, const char *provider, const char *record_id,
			int64_t *net, bool *voided)
{
	struct sqlite_store *s = S(st);
	static const char sql[] =
		"SELECT coalesce(sum(charge_micro), 0), coalesce(max(kind = 'void'), 0) "
		"FROM usage_records WHERE provider = ?1 AND (record_id = ?2 OR supersedes = ?2)";
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q)
		goto out;
	sqlite3_bind_text(q, 1, provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, record_id, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_ROW) {
		sq_fail(s, "ledger net");
		sqlite3_reset(q);
		goto out;
	}
	*net = sqlite3_column_int64(q, 0);
	*voided = sqlite3_column_int(q, 1);
	sqlite3_reset(q);
	e = ALLOT_OK;
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}
