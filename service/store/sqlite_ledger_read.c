/* sqlite_ledger_read.c — listing, reports and sequence status of the ledger
 * (store/store.h: ledger_list, ledger_report, ledger_seq_status), as typed
 * rows; the writes and sums are in sqlite_ledger.c. */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/money.h"
#include "store/ledger_sql.h"

#define S(st_) ((struct sqlite_store *)(st_))

/* Binds q's parameters in order. */
static void sql_bind(const struct ledger_sql *q, sqlite3_stmt *st)
{
	for (int i = 0; i < q->n; i++) {
		if (q->text[i])
			sqlite3_bind_text(st, i + 1, q->text[i], -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, i + 1, q->ints[i]);
	}
}

/* Prepares the statement built in w, binds it, calls row for each of its
 * rows (the lock held); releases w. */
static allot_err where_run(struct sqlite_store *s, struct ledger_sql *w, const char *what,
			   void (*row)(sqlite3_stmt *q, void *arg), void *arg)
{
	allot_err e = ALLOT_E_STORE;
	if (w->sql.oom) {
		ledger_sql_release(w);
		return ALLOT_E_NOMEM;
	}
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db, buf_str(&w->sql), -1, &q, NULL) != SQLITE_OK) {
		sq_fail(s, what);
	} else {
		sql_bind(w, q);
		int rc;
		while ((rc = sqlite3_step(q)) == SQLITE_ROW)
			row(q, arg);
		e = rc == SQLITE_DONE ? ALLOT_OK : sq_fail(s, what);
	}
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->lock);
	ledger_sql_release(w);
	return e;
}

struct list_each {
	void (*fn)(void *ctx, const struct ledger_row *row, int64_t leaf_index);
	void *ctx;
	bool oom;      /* a row's canonical bytes could not be made */
};

static void list_row(sqlite3_stmt *q, void *arg)
{
	struct list_each *le = arg;
	struct ledger_row row;
	if (sq_usage_row(q, &row)) {
		le->oom = true;
		return;
	}
	int64_t leaf = sqlite3_column_type(q, SQ_USAGE_NCOLS) == SQLITE_NULL
		? -1 : sqlite3_column_int64(q, SQ_USAGE_NCOLS);
	le->fn(le->ctx, &row, leaf);
	free(row.rec.canonical);
}

allot_err sq_ledger_list(struct store *st, const struct ledger_filter *f,
			 void (*fn)(void *ctx, const struct ledger_row *row, int64_t leaf_index),
			 void *ctx)
{
	struct sqlite_store *s = S(st);
	struct ledger_sql w;
	struct list_each le = {fn, ctx, false};
	ledger_sql_init(&w, LEDGER_SQL_SQLITE);
	ledger_sql_list(&w, SQ_USAGE_COLS, f);
	allot_err e = where_run(s, &w, "ledger list", list_row, &le);
	return e ? e : le.oom ? ALLOT_E_NOMEM : ALLOT_OK;
}

struct report_each {
	void (*fn)(void *ctx, const struct ledger_report_row *r);
	void *ctx;
	size_t ngroup;
	bool by_bucket;
};

/* Columns: the groups, the bucket when by bucket, charge, quantity,
 * records (the sums are NULL over no rows: zero). */
static void report_row(sqlite3_stmt *q, void *arg)
{
	struct report_each *re = arg;
	struct ledger_report_row r = {.group = {NULL}};
	int c = 0;
	for (size_t g = 0; g < re->ngroup; g++, c++) {
		const char *v = (const char *)sqlite3_column_text(q, c);
		r.group[g] = v ? v : "";
	}
	if (re->by_bucket)
		r.bucket_us = sqlite3_column_int64(q, c++);
	r.charge = sqlite3_column_int64(q, c++);
	r.quantity = sqlite3_column_int64(q, c++);
	r.records = sqlite3_column_int64(q, c);
	re->fn(re->ctx, &r);
}

allot_err sq_ledger_report(struct store *st, const struct ledger_filter *f,
			   const char *const *group_by, size_t ngroup, bool by_bucket,
			   void (*fn)(void *ctx, const struct ledger_report_row *r), void *ctx)
{
	struct sqlite_store *s = S(st);
	struct ledger_sql w;
	ledger_sql_init(&w, LEDGER_SQL_SQLITE);
	allot_err e = ledger_sql_report(&w, f, group_by, ngroup, by_bucket);
	if (e)
		return e;
	struct report_each re = {fn, ctx, ngroup, by_bucket};
	return where_run(s, &w, "ledger report", report_row, &re);
}

/* ---- sequence gaps and repeats ---------------------------------------------------
 * One ordered pass over usage_by_provider_seq (migration 0012; the index
 * covers the scan), with the totals over the whole sequence and at most
 * `limit` gaps and repeats listed from `after` on.  It runs on a read-only
 * connection of its own, in one read transaction (a WAL snapshot), so it
 * never takes the store's lock that every booking needs; an in-memory
 * database, or one the reader cannot open, is read on the main connection
 * under the lock instead (still one pass). */

struct seq_scan {
	int64_t after;
	int limit;
	bool listing;
	bool oom;
	struct ledger_seq_status *st;   /* what is filled */
};

/* Lists an item starting at `first` unless the page is full; when it is,
 * the page ends just before it. */
static bool seq_list(struct seq_scan *sc, size_t have, int64_t first)
{
	if (!sc->listing || first <= sc->after)
		return false;
	if (have == (size_t)sc->limit) {
		sc->listing = false;
		sc->st->has_next = true;
		sc->st->next = first - 1;
		return false;
	}
	return true;
}

static void seq_gap(struct seq_scan *sc, int64_t from, int64_t to)
{
	struct ledger_seq_status *o = sc->st;
	o->gap_count++;
	o->missing += to - from + 1;
	if (!seq_list(sc, o->ngaps, from))
		return;
	struct ledger_seq_gap *g = realloc(o->gaps, (o->ngaps + 1) * sizeof *g);
	if (!g) {
		sc->oom = true;
		return;
	}
	g[o->ngaps++] = (struct ledger_seq_gap){from, to};
	o->gaps = g;
}

static void seq_repeat(struct seq_scan *sc, int64_t v)
{
	struct ledger_seq_status *o = sc->st;
	o->repeat_count++;
	if (!seq_list(sc, o->nrepeats, v))
		return;
	int64_t *r = realloc(o->repeats, (o->nrepeats + 1) * sizeof *r);
	if (!r) {
		sc->oom = true;
		return;
	}
	r[o->nrepeats++] = v;
	o->repeats = r;
}

static allot_err seq_run(sqlite3 *db, const char *provider, struct seq_scan *sc)
{
	static const char q_count[] =
		"SELECT count(*) FROM usage_records WHERE provider = ?1 AND source = 'provider'";
	static const char q_seq[] =
		"SELECT seq FROM usage_records INDEXED BY usage_by_provider_seq "
		"WHERE provider = ?1 AND seq IS NOT NULL ORDER BY seq";
	struct ledger_seq_status *o = sc->st;
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(db, q_count, -1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(q, 1, provider, -1, SQLITE_STATIC);
		rc = sqlite3_step(q);
	}
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(q);
		return ALLOT_E_STORE;
	}
	o->records = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	q = NULL;
	if (sqlite3_prepare_v2(db, q_seq, -1, &q, NULL) != SQLITE_OK)
		return ALLOT_E_STORE;
	sqlite3_bind_text(q, 1, provider, -1, SQLITE_STATIC);
	int64_t prev = 0, min = 0, last_rep = -1;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(q, 0);
		if (o->with_seq++ == 0) {
			min = v;
		} else if (v == prev) {
			if (v != last_rep) {
				last_rep = v;
				seq_repeat(sc, v);
			}
		} else if (v > prev + 1) {
			seq_gap(sc, prev + 1, v - 1);
		}
		prev = v;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return ALLOT_E_STORE;
	if (sc->oom)
		return ALLOT_E_NOMEM;
	o->min_seq = o->with_seq ? min : 0;
	o->max_seq = o->with_seq ? prev : 0;
	return ALLOT_OK;
}

/* A read-only connection to the store's file; NULL when there is none. */
static sqlite3 *seq_reader(struct sqlite_store *s)
{
	char path[4096];
	pthread_mutex_lock(&s->lock);
	const char *fn = sqlite3_db_filename(s->db, "main");
	int n = snprintf(path, sizeof path, "%s", fn ? fn : "");
	pthread_mutex_unlock(&s->lock);
	if (!path[0] || n >= (int)sizeof path)
		return NULL;
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
			    sq_vfs_name()) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 1000);
	return db;
}

static allot_err seq_try(sqlite3 *db, const char *provider, int64_t after, int limit,
			 struct ledger_seq_status *out)
{
	*out = (struct ledger_seq_status){.records = 0};
	struct seq_scan sc = {.after = after, .limit = limit, .listing = true, .st = out};
	allot_err e = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK
		? seq_run(db, provider, &sc) : ALLOT_E_STORE;
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (e)
		ledger_seq_status_release(out);
	return e;
}

allot_err sq_ledger_seq_status(struct store *st, const char *provider, int64_t after, int limit,
			       struct ledger_seq_status *out)
{
	struct sqlite_store *s = S(st);
	if (limit < 1 || after < -1)
		return ALLOT_E_INVALID;
	sqlite3 *db = seq_reader(s);
	if (db) {
		allot_err e = seq_try(db, provider, after, limit, out);
		if (e)
			log_warnx("store: sequence scan on a read connection failed (%s); "
				  "reading under the store lock", sqlite3_errmsg(db));
		sqlite3_close(db);
		if (e == ALLOT_OK)
			return e;
	}
	pthread_mutex_lock(&s->lock);
	allot_err e = sq_in_tx() ? ALLOT_E_STORE : seq_try(s->db, provider, after, limit, out);
	if (e)
		sq_fail(s, "seq status");
	pthread_mutex_unlock(&s->lock);
	return e;
}
