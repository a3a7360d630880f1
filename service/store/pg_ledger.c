/* pg_ledger.c — the usage ledger's transactions, writes, lookups and sums
 * in the PostgreSQL store, with the same meaning as SQLite's
 * (store/sqlite_ledger.c; listing and reports: pg_ledger_read.c;
 * durability: pg_ledger_sync.c).
 *
 * A ledger transaction belongs to the calling thread: it holds one pooled
 * connection (pg_txn_set, so the plain operations called inside it, a
 * rejection or an outbox event, run in it too) and its state here (bucket
 * charges not yet written, the bounds, the sums to apply at commit) lives
 * in a thread-local struct until it ends.  Unlike SQLite, several threads
 * may hold ledger transactions at once; the ones that book records are
 * serialised on the ledger_bounds row, taken FOR UPDATE before the first
 * record (then on the log head, store/pg_tlog.c), always in that order. */
#include "store/pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "store/sumcache.h"

#define PS(st_) ((struct pg_store *)(st_))

/* A batch transaction's opening statements sent on c (BEGIN, the
 * durability class, the bounds row and the log head taken, the guessed
 * sums), their n answers not read yet (docs/POSTGRES.md, "The next group
 * opened with the commit"). */
struct pl_open {
	PGconn *c;                 /* NULL: none */
	bool deferred, head, pre;
	int n;
	char *key[PG_SUMS_ARRAYS]; /* the sums asked, with pre */
};

struct pg_ledger {
	/* Guards the sum cache's pending list (sumcache.h: it belongs to one
	 * writer; here the committing thread, under mu). */
	pthread_mutex_t mu;
	/* Taken exclusively by a commit that changes sums, from its COMMIT to
	 * the cache's update; shared by a sum read from the database for the
	 * cache (see "the sum cache across threads"). */
	pthread_rwlock_t rw;
	struct sumcache *sums;     /* one node per database for now (pgstore's owner lock) */
	bool nocache;              /* sums from the database (always: several nodes) */
	struct pg_sync *sync;
	struct pg_sumpre *pre;     /* the next group's sums, guessed (pg_sumpre.c) */
	struct pl_open next;       /* under mu: a batch opened as the last committed */
};

#define PL_DELTAS 64

/* The calling thread's ledger transaction. */
struct pl_tx {
	struct pg_store *ps;
	PGconn *c;
	enum store_sync sync;
	size_t nbk;                  /* unwritten charges, summed per key and tag */
	struct pg_delta bk[PL_DELTAS];
	struct pg_delta *done;       /* written ones, for the sum cache at commit */
	size_t ndone, capdone, sp_done;
	bool bk_failed;              /* writing some failed: the commit must fail */
	/* Bounds (docs/LEDGER.md, "Bounds"): the committed totals read under
	 * the bounds row's lock, and what this transaction adds. */
	bool b_locked, sp_b_locked;
	int64_t b_charge, b_quantity;
	int64_t tx_charge, tx_quantity, tx_rows;
	int64_t sp_charge, sp_quantity, sp_rows;
	/* Reservations to settle at commit (store_ops.budget_settle). */
	struct pg_settle *settles;
	size_t nset, capset, sp_nset;
	/* A batch's records whose insert cannot conflict, kept for one
	 * statement (pg_ledger_rows.c); a failed write fails the commit. */
	struct pg_rowbuf *rows;
	bool rows_failed;
	/* ledger_begin_batch: every record is kept (a taken id fails the
	 * commit; the group runs again with savepoints). */
	bool batch;
	/* A batch's sums read in its opening round trip, and what they ask
	 * (pg_sumpre.c); NULL once used or when not read. */
	PGresult *pre;
	char *pre_key[PG_SUMS_ARRAYS];
	/* store_ops.ledger_follow: another group follows; its opening
	 * statements go on this connection once this one commits. */
	bool follow;
	bool c_kept;                 /* c holds the next group's opening: not pooled */
};
/* Kept records are written at the latest when this many wait, or this many
 * bytes of their text (about 1,000 records of a few hundred bytes: one
 * batch in one statement). */
#define PL_KEEP_ROWS 1024
#define PL_KEEP_BYTES (8u << 20)
static _Thread_local struct pl_tx *tx;
/* store_ops.ledger_hold: rows this thread inserts carry it. */
static _Thread_local uint64_t hold_tag;

static struct pl_tx *tx_of(const struct pg_store *ps)
{
	return tx && tx->ps == ps ? tx : NULL;
}

static allot_err rows_flush(struct pl_tx *t)
{
	if (!pg_rows_count(t->rows))
		return ALLOT_OK;
	allot_err e = pg_rows_flush(t->ps, t->c, t->rows);
	if (e)
		t->rows_failed = true;
	return e;
}

allot_err pg_ledger_flush_rows(struct pg_store *ps)
{
	struct pl_tx *t = tx_of(ps);
	return t ? rows_flush(t) : ALLOT_OK;
}

bool pg_col_i64_strict(const PGresult *r, int row, int col, int64_t *out)
{
	if (PQgetisnull(r, row, col))
		return false;
	const char *v = PQgetvalue(r, row, col);
	char *end = NULL;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		return false;
	*out = x;
	return true;
}

/* Runs a statement whose result is not needed. */
static allot_err pl_exec(struct pg_store *ps, PGconn *c, const char *sql, int n,
			 const char *const *v)
{
	allot_err e = ALLOT_OK;
	PGresult *r = pg_run(ps, c, sql, n, v, &e);
	PQclear(r);
	return r ? ALLOT_OK : e;
}

/* ---- bucket charges ---------------------------------------------------------------
 * As on SQLite: summed per (institution, project, member, bucket, hold tag)
 * and written once per key before a savepoint begins or ends, before a sum
 * is read inside the transaction, when the table is full, and at commit. */

/* The text of n values of one field of t->bk, as an array parameter. */
static char *bk_array(const struct pl_tx *t, int field)
{
	const char *v[PL_DELTAS];
	char num[PL_DELTAS][24];
	for (size_t i = 0; i < t->nbk; i++) {
		const struct pg_delta *d = &t->bk[i];
		v[i] = field == 0 ? d->inst : field == 1 ? d->proj : field == 2 ? d->member
		       : pg_i64(num[i], field == 3 ? d->bucket : d->charge);
	}
	return pgs_text_array(v, t->nbk);
}

/* Every unwritten charge in one statement (summed per row: two hold tags
 * may name one key). */
static allot_err bk_flush(struct pl_tx *t)
{
	static const char q[] =
		"INSERT INTO usage_buckets(institution, project, member, bucket, charge) "
		"SELECT i, p, m, b, sum(c)::bigint FROM unnest($1::text[], $2::text[], $3::text[], "
		"$4::bigint[], $5::bigint[]) AS d(i, p, m, b, c) GROUP BY i, p, m, b "
		"ON CONFLICT (institution, project, member, bucket) "
		"DO UPDATE SET charge = usage_buckets.charge + excluded.charge";
	allot_err e = ALLOT_OK;
	if (!t->nbk)
		return ALLOT_OK;
	char *a[5] = {NULL};
	for (int f = 0; f < 5 && !e; f++)
		if (!(a[f] = bk_array(t, f)))
			e = ALLOT_E_NOMEM;
	if (!e && t->ndone + t->nbk > t->capdone) {
		size_t cap = t->capdone ? t->capdone : 64;
		while (cap < t->ndone + t->nbk)
			cap *= 2;
		struct pg_delta *p = realloc(t->done, cap * sizeof *p);
		if (!p)
			e = ALLOT_E_NOMEM;
		else {
			t->done = p;
			t->capdone = cap;
		}
	}
	if (!e)
		e = pl_exec(t->ps, t->c, q, 5, (const char *const *)a);
	for (int f = 0; f < 5; f++)
		free(a[f]);
	if (!e) {
		memcpy(t->done + t->ndone, t->bk, t->nbk * sizeof *t->bk);
		t->ndone += t->nbk;
	} else {
		t->bk_failed = true;
	}
	t->nbk = 0;
	return e;
}

static allot_err bk_add(struct pl_tx *t, const struct usage_record *r, int64_t bucket,
			int64_t charge)
{
	for (size_t i = t->nbk; i-- > 0;) {
		struct pg_delta *d = &t->bk[i];
		if (d->bucket == bucket && d->tag == hold_tag && strcmp(d->member, r->member) == 0 &&
		    strcmp(d->proj, r->project) == 0 && strcmp(d->inst, r->institution) == 0)
			return money_add(d->charge, charge, &d->charge) ? ALLOT_E_TOO_LARGE : ALLOT_OK;
	}
	if (t->nbk == PL_DELTAS && bk_flush(t))
		return ALLOT_E_STORE;
	struct pg_delta *d = &t->bk[t->nbk++];
	d->bucket = bucket;
	d->charge = charge;
	d->tag = hold_tag;
	snprintf(d->inst, sizeof d->inst, "%s", r->institution);
	snprintf(d->proj, sizeof d->proj, "%s", r->project);
	snprintf(d->member, sizeof d->member, "%s", r->member);
	return ALLOT_OK;
}

/* ---- bounds ------------------------------------------------------------------------
 * SPEC 2, "Bounds", as on SQLite (store/sqlite_ledger.c): the ledger's
 * totals of positive charges and of quantities stay within int64, so no
 * sum of any rows can overflow.  Here the totals are read in the booking
 * transaction itself, under the bounds row's lock (so two nodes or threads
 * cannot both fit the last room), and written back by every transaction
 * that added rows; `upto` is then the last row, and the rows after it
 * (none, unless rows came in another way) are added when read. */

static int64_t lb_positive(int64_t charge) { return charge > 0 ? charge : 0; }

/* The bounds row locked, then read with the rows after its upto (a
 * statement of its own: its snapshot is taken once the lock is held), by a
 * function whose plans the session keeps (migration 0008). */
#define LB_LOCK_SQL "SELECT * FROM allot_ledger_bounds_take()"

/* The totals from LB_LOCK_SQL's result r (consumed). */
static allot_err lb_from(struct pl_tx *t, PGresult *r)
{
	struct pg_store *ps = t->ps;
	int64_t charge = 0, quantity = 0, tc = 0, tq = 0;
	bool have = PQntuples(r) == 1;
	bool ok = have && pg_col_i64_strict(r, 0, 0, &charge) &&
		  pg_col_i64_strict(r, 0, 1, &quantity) && pg_col_i64_strict(r, 0, 2, &tc) &&
		  pg_col_i64_strict(r, 0, 3, &tq) && !money_add(charge, tc, &charge) &&
		  !money_add(quantity, tq, &quantity);
	PQclear(r);
	if (!ok) {
		pgs_fail(ps, ALLOT_E_STORE, have ? "the ledger's totals overflow"
						 : "ledger_bounds has no row");
		return ALLOT_E_STORE;
	}
	t->b_charge = charge;
	t->b_quantity = quantity;
	t->b_locked = true;
	return ALLOT_OK;
}

static allot_err lb_lock(struct pl_tx *t)
{
	if (t->b_locked)
		return ALLOT_OK;
	PGresult *r[1];
	allot_err e = pg_run_multi(t->ps, t->c, LB_LOCK_SQL, r, 1);
	if (e)
		return e;
	return lb_from(t, r[0]);
}

allot_err pg_ledger_lock_bounds(struct pg_store *ps)
{
	struct pl_tx *t = tx_of(ps);
	if (!t) {
		pgs_fail(ps, ALLOT_E_STORE, "the ledger's bounds outside a ledger transaction");
		return ALLOT_E_INTERNAL;
	}
	return lb_lock(t);
}

/* ALLOT_E_TOO_LARGE (reason in errmsg, the same as SQLite's) if row would
 * take a total past INT64_MAX. */
static allot_err lb_check(struct pl_tx *t, const struct ledger_row *row)
{
	struct pg_store *ps = t->ps;
	int64_t s;
	if (money_add(t->b_charge, t->tx_charge, &s) ||
	    money_add(s, lb_positive(row->charge_micro), &s)) {
		char c[MONEY_FMT_MAX];
		snprintf(ps->base.errmsg, sizeof ps->base.errmsg,
			 "booking this record would take the ledger's total of charges past %s credits, "
			 "the bound of every sum (int64 micro-credits)", money_format(INT64_MAX, c));
		return ALLOT_E_TOO_LARGE;
	}
	if (money_add(t->b_quantity, t->tx_quantity, &s) || money_add(s, row->rec.quantity, &s)) {
		snprintf(ps->base.errmsg, sizeof ps->base.errmsg,
			 "booking this record would take the ledger's total of quantities past %lld, "
			 "the bound of every sum (int64)", (long long)INT64_MAX);
		return ALLOT_E_TOO_LARGE;
	}
	return ALLOT_OK;
}

static void lb_add(struct pl_tx *t, const struct ledger_row *row)
{
	t->tx_charge += lb_positive(row->charge_micro); /* checked by lb_check */
	t->tx_quantity += row->rec.quantity;
	t->tx_rows++;
}

static allot_err lb_write(struct pl_tx *t)
{
	static const char q[] =
		"UPDATE ledger_bounds SET charge_pos = $1, quantity = $2, "
		"upto = (SELECT coalesce(max(id), 0) FROM usage_records) WHERE id = 1";
	if (!t->tx_rows)
		return ALLOT_OK;
	char a[24], b[24];
	const char *v[] = {pg_i64(a, t->b_charge + t->tx_charge),
			   pg_i64(b, t->b_quantity + t->tx_quantity)};
	return pl_exec(t->ps, t->c, q, 2, v);
}

/* ---- the sum cache across threads ---------------------------------------------------
 * On SQLite a commit and the cache's update happen under the store's lock,
 * which a sum read from the database also takes.  Here transactions commit
 * on connections of their own, so a commit that changes sums holds the
 * ledger's rwlock exclusively from its COMMIT until its charges are in the
 * cache, and a sum read from the database holds it shared (after taking
 * its connection: never waiting for the pool while holding it): such a
 * read sees every commit the cache holds and none it does not, so it can
 * be cached, and no reader sees a sum go back (a commit visible in the
 * database but not yet in the cache). */

static void cache_commit_begin(struct pg_ledger *pl, const struct pl_tx *t)
{
	if (t->ndone)
		pthread_rwlock_wrlock(&pl->rw);
}

/* committed: applied; unknown: the cache is switched off for good. */
static void cache_commit_end(struct pg_ledger *pl, const struct pl_tx *t, bool committed,
			     bool unknown)
{
	if (!t->ndone)
		return;
	pthread_mutex_lock(&pl->mu);
	if (committed && pl->sums) {
		for (size_t i = 0; i < t->ndone; i++) {
			const struct pg_delta *d = &t->done[i];
			sumcache_pending(pl->sums, d->inst, d->proj, d->member, d->bucket, d->charge,
					 d->tag);
		}
		sumcache_commit(pl->sums);
	}
	if (unknown)
		__atomic_store_n(&pl->nocache, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&pl->mu);
	pthread_rwlock_unlock(&pl->rw);
}

/* ---- transactions ---------------------------------------------------------------------- */

/* ROLLBACK unless the transaction already ended (a failed COMMIT): a
 * ROLLBACK outside one draws a warning from the server. */
static void tx_abort(struct pg_store *ps, PGconn *c)
{
	PGTransactionStatusType s = PQtransactionStatus(c);
	if (s == PQTRANS_INTRANS || s == PQTRANS_INERROR)
		pg_rollback(ps, c);
}

static void tx_end(struct pg_store *ps, bool committed)
{
	struct pl_tx *t = tx;
	pgp_clear(ps);
	pg_tlog_txn_end(ps, committed);
	pg_txn_set(ps, NULL);
	if (!t->c_kept)
		pg_put(ps, t->c, PQtransactionStatus(t->c) != PQTRANS_IDLE);
	free(t->done);
	free(t->settles);
	pg_rows_free(t->rows);
	PQclear(t->pre);
	pg_sums_arrays_free(t->pre_key);
	free(t);
	tx = NULL;
}

allot_err pg_ledger_begin(struct store *st)
{
	return pg_ledger_begin_sync(st, STORE_SYNC_FULL);
}

/* ledger_begin_batch's first round trip: BEGIN, the durability class, the
 * bounds row and (with the log on) the log head, in the order every
 * booking takes them.  The batch's statements (prepared, store/pg_store.c)
 * keep their generic plans for the transaction: their custom plans over
 * array parameters cost a planning each time and plan the same primary-key
 * look-ups (docs/BENCH_PG.md, "Where the CPU goes"). */
#define Q_GENERIC "SET LOCAL plan_cache_mode = force_generic_plan; "
static const char *const q_batch[2][3] = {
	{"BEGIN; " Q_GENERIC, LB_LOCK_SQL, "; " PG_TLOG_HEAD_LOCK_SQL},
	{"BEGIN; " Q_GENERIC "SELECT set_config('synchronous_commit', 'off', true); ",
	 LB_LOCK_SQL, "; " PG_TLOG_HEAD_LOCK_SQL},
};

/* What the opening's answers are called in an error message. */
#define OPEN_WHAT "(a booking group's opening statements)"

/* A batch's opening statements sent on c, not awaited; *o says what
 * answers they give (its key: the sums asked, owned by o). */
static allot_err open_send(struct pg_store *ps, PGconn *c, bool deferred, struct pl_open *o)
{
	*o = (struct pl_open){.c = c, .deferred = deferred, .head = pg_tlog_enabled(ps)};
	char sql[1024];
	snprintf(sql, sizeof sql, "%s%s%s", q_batch[deferred][0], q_batch[deferred][1],
		 o->head ? q_batch[deferred][2] : "");
	/* the sums the last group read, last (after the locks) */
	char *full = pg_sumpre_sql(ps->ledger->pre, c, sql, o->key);
	o->pre = full != NULL;
	o->n = 3 + deferred + o->head + o->pre;
	allot_err e = pg_multi_send(ps, c, full ? full : sql);
	free(full);
	if (e)
		pg_sums_arrays_free(o->key);
	return e;
}

/* The answers of o's statements (on t->c) into t: the bounds, the head,
 * the sums (o's key moves to t). */
static allot_err open_read(struct pl_tx *t, struct pl_open *o)
{
	struct pg_store *ps = t->ps;
	for (int f = 0; f < PG_SUMS_ARRAYS; f++) {
		t->pre_key[f] = o->key[f];
		o->key[f] = NULL;
	}
	PGresult *r[6];
	int n = o->n, pre = o->pre, d = o->deferred;
	allot_err e = pg_multi_read(ps, t->c, OPEN_WHAT, r, n);
	if (e)
		return e;
	for (int i = 0; i < d + 2; i++)
		PQclear(r[i]); /* BEGIN, SET LOCAL and set_config */
	if (pre)
		t->pre = r[n - 1];
	e = lb_from(t, r[d + 2]);
	if (!e)
		e = pg_tlog_txn_begin(ps, t->c);
	if (o->head) {
		if (!e)
			e = pg_tlog_txn_taken(ps, r[n - 1 - pre]);
		else
			PQclear(r[n - 1 - pre]);
	}
	return e;
}

/* The opening sent with the last commit, if any (the caller owns it). */
static bool next_take(struct pg_ledger *pl, struct pl_open *o)
{
	pthread_mutex_lock(&pl->mu);
	*o = pl->next;
	pl->next = (struct pl_open){.c = NULL};
	pthread_mutex_unlock(&pl->mu);
	return o->c != NULL;
}

/* An opening nobody takes: its answers read and dropped, its transaction
 * rolled back, its connection pooled again. */
static void next_drop(struct pg_store *ps, struct pl_open *o)
{
	PGresult *r[6];
	if (!pg_multi_read(ps, o->c, OPEN_WHAT, r, o->n))
		for (int i = 0; i < o->n; i++)
			PQclear(r[i]);
	pg_sums_arrays_free(o->key);
	PGTransactionStatusType st = PQtransactionStatus(o->c);
	if (st == PQTRANS_INTRANS || st == PQTRANS_INERROR)
		pg_rollback(ps, o->c);
	pg_put(ps, o->c, PQtransactionStatus(o->c) != PQTRANS_IDLE);
	o->c = NULL;
}

/* BEGIN and the durability class, then the bounds and the head at once
 * (batch: one round trip). */
static allot_err tx_start(struct pl_tx *t, bool batch)
{
	static const char q_async[] = "SELECT set_config('synchronous_commit', 'off', true)";
	struct pg_store *ps = t->ps;
	bool deferred = t->sync == STORE_SYNC_DEFERRED;
	if (!batch) {
		allot_err e = pg_begin(ps, t->c);
		if (!e && deferred)
			e = pl_exec(ps, t->c, q_async, 0, NULL);
		return e ? e : pg_tlog_txn_begin(ps, t->c);
	}
	struct pl_open o;
	allot_err e = open_send(ps, t->c, deferred, &o);
	return e ? e : open_read(t, &o);
}

static allot_err tx_open(struct store *st, enum store_sync sync, bool batch)
{
	struct pg_store *ps = PS(st);
	if (ps->readonly) {
		pgs_fail(ps, ALLOT_E_STORE, "the store is open read-only");
		return ALLOT_E_STORE;
	}
	/* The opening the last commit sent, for a batch of the same class;
	 * any other transaction drops it first (it holds the bounds row and
	 * the head that this one would wait for), and so does a refusal. */
	struct pl_open o;
	bool next = next_take(ps->ledger, &o);
	if (tx || pg_txn(ps)) {
		if (next)
			next_drop(ps, &o);
		pgs_fail(ps, ALLOT_E_STORE,
			 "a transaction is already open on this thread");
		return ALLOT_E_INTERNAL;
	}
	if (sync == STORE_SYNC_DEFERRED && !pg_sync_deferred_ok(ps->ledger->sync))
		sync = STORE_SYNC_FULL;
	if (next && (!batch || o.deferred != (sync == STORE_SYNC_DEFERRED))) {
		next_drop(ps, &o);
		next = false;
	}
	struct pl_tx *t = calloc(1, sizeof *t);
	if (!t) {
		if (next)
			next_drop(ps, &o);
		return ALLOT_E_NOMEM;
	}
	PGconn *c = next ? o.c : NULL;
	bool own = false;
	allot_err e = next ? ALLOT_OK : pg_get(ps, &c, &own);
	if (e) {
		free(t);
		return e;
	}
	t->ps = ps;
	t->c = c;
	t->sync = sync;
	t->batch = batch;
	/* DEFERRED: the COMMIT returns once its WAL is written, not flushed
	 * (pg_ledger_sync.c flushes it within the interval). */
	if ((e = next ? open_read(t, &o) : tx_start(t, batch))) {
		pg_tlog_txn_end(ps, false);
		tx_abort(ps, c);
		pg_put(ps, c, PQtransactionStatus(c) != PQTRANS_IDLE);
		PQclear(t->pre);
		pg_sums_arrays_free(t->pre_key);
		free(t);
		return e;
	}
	tx = t;
	pg_txn_set(ps, c);
	return ALLOT_OK;
}

allot_err pg_ledger_begin_sync(struct store *st, enum store_sync sync)
{
	return tx_open(st, sync, false);
}

allot_err pg_ledger_begin_batch(struct store *st, enum store_sync sync)
{
	return tx_open(st, sync, true);
}

/* What the commit writes before its COMMIT (t's records, charges, budgets,
 * bounds and log). */
static allot_err commit_writes(struct pl_tx *t)
{
	struct pg_store *ps = t->ps;
	allot_err e = rows_flush(t);
	if (!e && t->rows_failed)
		e = ALLOT_E_STORE; /* some records were not written */
	if (!e && t->nbk)
		e = bk_flush(t);
	if (!e && t->bk_failed)
		e = ALLOT_E_STORE; /* some charges were not written */
	if (!e && (t->nset || t->ndone))
		e = pg_budget_commit(ps, t->c, t->settles, t->nset, t->done, t->ndone);
	if (!e)
		e = lb_write(t);
	if (!e)
		e = pg_tlog_txn_precommit(ps, t->c);
	return e;
}

/* Another group follows this one (store_ops.ledger_follow): its opening
 * statements are sent on this connection now that the commit is done, and
 * the connection kept for it (tx_open takes it).  The server takes the
 * bounds row and the head for it at once, while this group's writers are
 * answered and the next leader wakes: one round trip fewer on the path of
 * a busy node's groups.  Nothing is sent if the connection is not idle. */
static void next_keep(struct pg_store *ps, struct pl_tx *t)
{
	struct pg_ledger *pl = ps->ledger;
	struct pl_open o;
	if (PQtransactionStatus(t->c) != PQTRANS_IDLE || open_send(ps, t->c, true, &o))
		return;
	pthread_mutex_lock(&pl->mu);
	bool kept = pl->next.c == NULL;
	if (kept)
		pl->next = o;
	pthread_mutex_unlock(&pl->mu);
	if (kept)
		t->c_kept = true;
	else
		next_drop(ps, &o);
}

void pg_ledger_follow(struct store *st)
{
	struct pl_tx *t = tx_of(PS(st));
	if (t)
		t->follow = true;
}

allot_err pg_ledger_commit(struct store *st)
{
	struct pg_store *ps = PS(st);
	struct pl_tx *t = tx_of(ps);
	if (!t) {
		pgs_fail(ps, ALLOT_E_STORE, "no ledger transaction to commit");
		return ALLOT_E_INTERNAL;
	}
	/* A failed statement left the transaction aborted: COMMIT would answer
	 * ROLLBACK without an error. */
	allot_err e = ALLOT_OK;
	if (PQtransactionStatus(t->c) != PQTRANS_INTRANS) {
		pgs_fail(ps, ALLOT_E_STORE,
			 "the ledger transaction failed earlier and was rolled back");
		e = ALLOT_E_STORE;
	}
	/* A batch's writes and its COMMIT go in one pipeline (one round trip). */
	bool pipe = !e && t->batch && !(e = pg_pipe_begin(ps, t->c));
	if (!e)
		e = commit_writes(t);
	bool sent = false;
	int64_t t0 = 0;
	if (!e) {
		cache_commit_begin(ps->ledger, t);
		t0 = time_mono_us();
		e = pg_commit(ps, t->c);
		sent = true;
	}
	if (pipe) {
		allot_err pe = pg_pipe_end(ps, t->c);
		if (!e)
			e = pe;
	}
	if (sent) {
		/* A FULL commit returns once the server flushed its WAL: its time
		 * is the store's fsync, as SQLite's FULL COMMIT (docs/METRICS.md). */
		if (!e && t->sync == STORE_SYNC_FULL)
			metrics_observe(MH_FSYNC_SECONDS, time_mono_us() - t0);
		cache_commit_end(ps->ledger, t, !e, e == ALLOT_E_UNAVAILABLE);
		if (!e)
			pg_sync_committed(ps->ledger->sync, t->sync);
		if (!e && t->follow && t->batch && t->sync == STORE_SYNC_DEFERRED)
			next_keep(ps, t);
	}
	if (e)
		tx_abort(ps, t->c);
	tx_end(ps, !e);
	return e;
}

void pg_ledger_rollback(struct store *st)
{
	struct pg_store *ps = PS(st);
	struct pl_tx *t = tx_of(ps);
	if (!t)
		return;
	tx_abort(ps, t->c);
	tx_end(ps, false);
}

allot_err pg_ledger_savepoint(struct store *st, int op)
{
	static const char sp[] = "SAVEPOINT ledger_item", rel[] = "RELEASE ledger_item",
			  back[] = "ROLLBACK TO ledger_item";
	struct pg_store *ps = PS(st);
	struct pl_tx *t = tx_of(ps);
	if (!t) {
		pgs_fail(ps, ALLOT_E_STORE, "a savepoint outside a transaction");
		return ALLOT_E_INTERNAL;
	}
	pgp_clear(ps); /* a batch's look-up holds for its own savepoint only */
	switch (op) {
	case STORE_SP_BEGIN:
		if (rows_flush(t)) /* records from before belong before the mark */
			return ALLOT_E_STORE;
		if (t->nbk && bk_flush(t)) /* so do charges */
			return ALLOT_E_STORE;
		if (pg_tlog_txn_flush(ps)) /* so do log nodes */
			return ALLOT_E_STORE;
		t->sp_done = t->ndone;
		t->sp_b_locked = t->b_locked;
		t->sp_charge = t->tx_charge;
		t->sp_quantity = t->tx_quantity;
		t->sp_rows = t->tx_rows;
		t->sp_nset = t->nset;
		pg_tlog_txn_savepoint(ps, op);
		return pl_exec(ps, t->c, sp, 0, NULL);
	case STORE_SP_RELEASE:
		if (rows_flush(t))
			return ALLOT_E_STORE; /* rows_failed: the commit fails */
		if (t->nbk && bk_flush(t))
			return ALLOT_E_STORE; /* bk_failed: the commit fails */
		if (pg_tlog_txn_flush(ps))
			return ALLOT_E_STORE; /* nodes_failed: so does it */
		pg_tlog_txn_savepoint(ps, op);
		return pl_exec(ps, t->c, rel, 0, NULL);
	default:
		pg_rows_drop(t->rows); /* kept since the mark (written at its start) */
		t->nbk = 0; /* the rows they belong to are rolled back */
		t->ndone = t->sp_done;
		/* A lock taken after the savepoint is given back with it. */
		t->b_locked = t->sp_b_locked;
		t->tx_charge = t->sp_charge;
		t->tx_quantity = t->sp_quantity;
		t->tx_rows = t->sp_rows;
		t->nset = t->sp_nset;
		if (pl_exec(ps, t->c, back, 0, NULL))
			return ALLOT_E_STORE;
		pg_tlog_txn_savepoint(ps, op);
		return pl_exec(ps, t->c, rel, 0, NULL);
	}
}

allot_err pg_ledger_defer_settle(struct pg_store *ps, const char *id, int64_t actual)
{
	struct pl_tx *t = tx_of(ps);
	if (!t)
		return ALLOT_E_NOT_FOUND;
	if (strlen(id) >= sizeof t->settles[0].id) {
		pgs_fail(ps, ALLOT_E_INVALID, "reservation id too long");
		return ALLOT_E_INVALID;
	}
	if (t->nset == t->capset) {
		size_t cap = t->capset ? 2 * t->capset : 8;
		struct pg_settle *p = realloc(t->settles, cap * sizeof *p);
		if (!p)
			return ALLOT_E_NOMEM;
		t->settles = p;
		t->capset = cap;
	}
	struct pg_settle *s = &t->settles[t->nset++];
	snprintf(s->id, sizeof s->id, "%s", id);
	s->actual = actual;
	return ALLOT_OK;
}

void pg_ledger_hold(struct store *st, uint64_t tag)
{
	(void)st;
	hold_tag = tag;
}

void pg_ledger_release(struct store *st, uint64_t tag)
{
	struct pg_store *ps = PS(st);
	if (ps->ledger && ps->ledger->sums)
		sumcache_release(ps->ledger->sums, tag); /* the cache's own lock */
}

/* ---- rows ------------------------------------------------------------------------------- */

/* A connection for one operation (the thread's transaction's or a pooled one). */
static allot_err conn_get(struct pg_store *ps, PGconn **c, bool *own)
{
	return pg_get(ps, c, own);
}

static allot_err conn_put(struct pg_store *ps, PGconn *c, bool own, allot_err e)
{
	if (own)
		pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	return e;
}

static int64_t bucket_of(int64_t us)
{
	int64_t b = us / LEDGER_BUCKET_US;
	if (us < 0 && us % LEDGER_BUCKET_US)
		b -= 1;
	return b;
}

/* Inside the thread's transaction t: refused before anything is written
 * (bounds), then the row, its log leaf and its bucket charge. */
static allot_err insert_in(struct pl_tx *t, struct ledger_row *row)
{
	allot_err e;
	int64_t leaf = -1;
	if ((e = lb_lock(t)) || (e = lb_check(t, row)))
		return e;
	if ((e = pg_tlog_next_index(t->ps, t->c, &leaf)))
		return e;
	uint8_t lh[32];
	char name[STORE_LEAF_NAME_MAX] = "";
	if (leaf >= 0 && (e = pg_tlog_usage_leaf(row, lh, name)))
		return e;
	/* A record the batch's look-up found absent cannot conflict (under the
	 * bounds row): kept and written with the others in one statement. */
	bool keep = t->batch || pgp_absent(t->ps, row->rec.provider, row->rec.record_id);
	pgp_forget(t->ps, row->rec.provider, row->rec.record_id); /* a find asks again */
	if (keep) {
		if ((e = pg_rows_keep(&t->rows, row, leaf, leaf >= 0 ? lh : NULL, name)))
			return e;
		row->row_id = 0; /* given by the insert (pg_rows_flush) */
		if ((pg_rows_count(t->rows) >= PL_KEEP_ROWS ||
		     pg_rows_bytes(t->rows) >= PL_KEEP_BYTES) && (e = rows_flush(t)))
			return e;
	} else if ((e = rows_flush(t)) ||
		   (e = pg_record_insert(t->ps, t->c, row, leaf, leaf >= 0 ? lh : NULL, name))) {
		return e;
	}
	if (leaf >= 0 && (e = pg_tlog_usage_written(t->ps, t->c, lh)))
		return e;
	if ((e = bk_add(t, &row->rec, bucket_of(row->book_us), row->charge_micro)))
		return e;
	lb_add(t, row);
	return ALLOT_OK;
}

allot_err pg_ledger_insert(struct store *st, struct ledger_row *row)
{
	struct pg_store *ps = PS(st);
	struct pl_tx *t = tx_of(ps);
	if (t)
		return insert_in(t, row);
	/* Outside a transaction: one of its own. */
	allot_err e = pg_ledger_begin(st);
	if (e)
		return e;
	if ((e = insert_in(tx, row))) {
		char why[sizeof ps->base.errmsg];
		snprintf(why, sizeof why, "%s", ps->base.errmsg);
		pg_ledger_rollback(st);
		snprintf(ps->base.errmsg, sizeof ps->base.errmsg, "%s", why);
		return e;
	}
	return pg_ledger_commit(st);
}

/* ---- sums ------------------------------------------------------------------------------- */

static allot_err sum_query(struct pg_store *ps, PGconn *c, const struct ledger_level *lv,
			   int64_t fb, int64_t tb, int64_t *sum)
{
	static const char q_pool[] =
		"SELECT coalesce(sum(charge), 0) FROM usage_buckets WHERE bucket >= $1 AND bucket < $2";
	static const char q_inst[] =
		"SELECT coalesce(sum(charge), 0) FROM usage_buckets WHERE institution = $3 "
		"AND bucket >= $1 AND bucket < $2";
	static const char q_proj[] =
		"SELECT coalesce(sum(charge), 0) FROM usage_buckets WHERE institution = $3 "
		"AND project = $4 AND bucket >= $1 AND bucket < $2";
	static const char q_mem[] =
		"SELECT coalesce(sum(charge), 0) FROM usage_buckets WHERE institution = $3 "
		"AND project = $4 AND member = $5 AND bucket >= $1 AND bucket < $2";
	const char *sql = !lv->institution ? q_pool : !lv->project ? q_inst
			  : !lv->member ? q_proj : q_mem;
	int n = !lv->institution ? 2 : !lv->project ? 3 : !lv->member ? 4 : 5;
	char a[24], b[24];
	const char *v[] = {pg_i64(a, fb), pg_i64(b, tb), lv->institution, lv->project, lv->member};
	allot_err e = ALLOT_OK;
	PGresult *r = pg_run(ps, c, sql, n, v, &e);
	if (!r)
		return e;
	bool ok = PQntuples(r) == 1 && pg_col_i64_strict(r, 0, 0, sum);
	PQclear(r);
	if (!ok) { /* cannot happen under the bounds */
		pgs_fail(ps, ALLOT_E_STORE, "ledger sum: out of range");
		return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

allot_err pg_ledger_sum(struct store *st, const struct ledger_level *lv, int64_t from_us,
			int64_t to_us, int64_t *sum)
{
	struct pg_store *ps = PS(st);
	struct pg_ledger *pl = ps->ledger;
	int64_t fb = bucket_of(from_us), tb = to_us == INT64_MAX ? INT64_MAX : bucket_of(to_us);
	struct pl_tx *t = tx_of(ps);
	if (t) { /* this transaction's charges first; the cache does not hold them */
		if (t->nbk && bk_flush(t))
			return ALLOT_E_STORE;
		return sum_query(ps, t->c, lv, fb, tb, sum);
	}
	bool cache = pl->sums && !__atomic_load_n(&pl->nocache, __ATOMIC_RELAXED) && !pg_txn(ps);
	if (cache && sumcache_get(pl->sums, lv->institution, lv->project, lv->member, fb, tb, sum))
		return ALLOT_OK;
	PGconn *c = NULL;
	bool own = false;
	allot_err e = conn_get(ps, &c, &own);
	if (e)
		return e;
	if (cache)
		pthread_rwlock_rdlock(&pl->rw);
	e = sum_query(ps, c, lv, fb, tb, sum);
	if (!e && cache) {
		pthread_mutex_lock(&pl->mu);
		sumcache_put(pl->sums, lv->institution, lv->project, lv->member, fb, tb, sum);
		pthread_mutex_unlock(&pl->mu);
	}
	if (cache)
		pthread_rwlock_unlock(&pl->rw);
	return conn_put(ps, c, own, e);
}

allot_err pg_ledger_sums(struct store *st, struct ledger_sum_req *rq, size_t n)
{
	struct pg_store *ps = PS(st);
	struct pl_tx *t = tx_of(ps);
	if (!t || n < 2) { /* the cache's path, one by one */
		allot_err e = ALLOT_OK;
		for (size_t i = 0; i < n && !e; i++)
			e = pg_ledger_sum(st, &rq[i].lv, rq[i].from_us, rq[i].to_us, &rq[i].sum);
		return e;
	}
	/* this transaction's charges first, as pg_ledger_sum */
	if (t->nbk && bk_flush(t))
		return ALLOT_E_STORE;
	if (!t->batch || t->ndone)
		return pg_sums_read(ps, t->c, rq, n);
	/* A batch's first sums, before it wrote any charge: the opening round
	 * trip's answer when it asked the same, and the next group's guess. */
	char *a[PG_SUMS_ARRAYS];
	allot_err e = pg_sums_arrays(rq, n, a);
	if (e)
		return e;
	if (t->pre && pg_sumpre_match(t->pre_key, a)) {
		e = pg_sums_take(ps, t->pre, rq, n);
	} else {
		PGresult *r = pg_run(ps, t->c, pg_sums_sql, PG_SUMS_ARRAYS,
				     (const char *const *)a, &e);
		if (r)
			e = pg_sums_take(ps, r, rq, n);
		PQclear(r);
	}
	PQclear(t->pre);
	t->pre = NULL;
	if (!e)
		pg_sumpre_remember(ps->ledger->pre, a);
	pg_sums_arrays_free(a);
	return e;
}

/* ---- open and close ------------------------------------------------------------------------ */

struct pg_sync *pg_ledger_sync(struct pg_store *ps)
{
	return ps->ledger ? ps->ledger->sync : NULL;
}

allot_err pg_ledger_open(struct pg_store *ps, char *msg, size_t msgsz)
{
	struct pg_ledger *pl = calloc(1, sizeof *pl);
	if (!pl)
		return ALLOT_E_NOMEM;
	pthread_mutex_init(&pl->mu, NULL);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* A waiting commit goes before new readers: they cannot starve it. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&pl->rw, &ra);
	pthread_rwlockattr_destroy(&ra);
	ps->ledger = pl;
	if (!(pl->sums = sumcache_new()) || !(pl->pre = pg_sumpre_new())) {
		snprintf(msg, msgsz, "out of memory");
		return ALLOT_E_NOMEM;
	}
	/* Several nodes book into one database (docs/POSTGRES.md, "Budgets in
	 * the database"): a cached sum would miss the other nodes' bookings,
	 * closed periods included (records within the late grace still land
	 * there).  Sums are read from the database; admission does not read
	 * them (the budget rows hold settled), only the rollover does. */
	pl->nocache = true;
	return ps->readonly ? ALLOT_OK : pg_sync_open(ps, &pl->sync, msg, msgsz);
}

void pg_ledger_close(struct pg_store *ps)
{
	struct pg_ledger *pl = ps->ledger;
	if (!pl)
		return;
	struct pl_open o;
	if (next_take(pl, &o))
		next_drop(ps, &o);
	pg_sync_close(pl->sync); /* makes the deferred commits durable */
	sumcache_free(pl->sums);
	pg_sumpre_free(pl->pre);
	pthread_rwlock_destroy(&pl->rw);
	pthread_mutex_destroy(&pl->mu);
	free(pl);
	ps->ledger = NULL;
}
