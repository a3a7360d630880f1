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

#define S(st_) ((struct sqlite_store *)(st_))

/* Appends " AND col = ?N" for each set filter; binds after preparing. */
struct where {
	struct buf sql;
	const char *vals[12];
	int64_t ivals[4];
	int n, ni;
};

static void where_text(struct where *w, const char *col, const char *v)
{
	if (!v)
		return;
	buf_printf(&w->sql, " AND %s = ?%d", col, w->n + 1);
	w->vals[w->n++] = v;
}

static void where_build(struct where *w, const struct ledger_filter *f)
{
	buf_puts(&w->sql, " WHERE 1 = 1");
	where_text(w, "institution", f->institution);
	where_text(w, "project", f->project);
	where_text(w, "member", f->member);
	where_text(w, "provider", f->provider);
	where_text(w, "resource", f->resource);
	where_text(w, "model", f->model);
	where_text(w, "kind", f->kind);
	/* integer bounds use fixed parameter numbers 20.. */
	if (f->from_us)
		buf_puts(&w->sql, " AND book_us >= ?20");
	if (f->to_us)
		buf_puts(&w->sql, " AND book_us < ?21");
	if (f->after_id)
		buf_puts(&w->sql, " AND id > ?22");
}

static void where_bind(const struct where *w, sqlite3_stmt *q, const struct ledger_filter *f)
{
	for (int i = 0; i < w->n; i++)
		sqlite3_bind_text(q, i + 1, w->vals[i], -1, SQLITE_STATIC);
	if (f->from_us)
		sqlite3_bind_int64(q, 20, f->from_us);
	if (f->to_us)
		sqlite3_bind_int64(q, 21, f->to_us);
	if (f->after_id)
		sqlite3_bind_int64(q, 22, f->after_id);
}

/* Prepares the filtered query built in w, binds it, calls row for each of
 * its rows (the lock held); releases w. */
static allot_err where_run(struct sqlite_store *s, struct where *w, const struct ledger_filter *f,
			   const char *what, void (*row)(sqlite3_stmt *q, void *arg), void *arg)
{
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db, buf_str(&w->sql), -1, &q, NULL) != SQLITE_OK) {
		sq_fail(s, what);
	} else {
		where_bind(w, q, f);
		int rc;
		while ((rc = sqlite3_step(q)) == SQLITE_ROW)
			row(q, arg);
		e = rc == SQLITE_DONE ? ALLOT_OK : sq_fail(s, what);
	}
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->lock);
	buf_release(&w->sql);
	return e;
}

struct list_each {
	void (*fn)(void *ctx, const struct ledger_row *row, int64_t leaf_index);
	void *ctx;
};

static void list_row(sqlite3_stmt *q, void *arg)
{
	struct list_each *le = arg;
	struct ledger_row row;
	sq_usage_row(q, &row);
	int64_t leaf = sqlite3_column_type(q, SQ_USAGE_NCOLS) == SQLITE_NULL
		? -1 : sqlite3_column_int64(q, SQ_USAGE_NCOLS);
	le->fn(le->ctx, &row, leaf);
}

allot_err sq_ledger_list(struct store *st, const struct ledger_filter *f,
			 void (*fn)(void *ctx, const struct ledger_row *row, int64_t leaf_index),
			 void *ctx)
{
	struct sqlite_store *s = S(st);
	struct where w = {.sql = BUF_INIT};
	struct list_each le = {fn, ctx};
	buf_puts(&w.sql, "SELECT " SQ_USAGE_COLS ", leaf_index FROM usage_records");
	where_build(&w, f);
	buf_printf(&w.sql, " ORDER BY id LIMIT %lld", (long long)f->limit);
	return where_run(s, &w, f, "ledger list", list_row, &le);
}

static bool group_col_ok(const char *g)
{
	static const char *const ok[] = {"institution", "project", "member", "provider",
					 "resource", "model", NULL};
	for (size_t i = 0; ok[i]; i++)
		if (strcmp(g, ok[i]) == 0)
			return true;
	return false;
}

/* A row's signed share of its record's net quantity (docs/LEDGER.md,
 * "Reports"): usage and debits add their quantity, credits and refunds
 * subtract theirs, a void subtracts what was left of the record it voids
 * (its quantity minus earlier credits and refunds plus debits), so a voided
 * record nets to zero, as its charge does. */
static const char q_net_quantity[] =
	"CASE kind WHEN 'usage' THEN quantity "
	"WHEN 'adjustment' THEN CASE adjustment WHEN 'debit' THEN quantity ELSE -quantity END "
	"ELSE -(SELECT coalesce(sum(CASE o.kind WHEN 'usage' THEN o.quantity "
	"WHEN 'adjustment' THEN CASE o.adjustment WHEN 'debit' THEN o.quantity "
	"ELSE -o.quantity END ELSE 0 END), 0) FROM usage_records o "
	"WHERE o.provider = usage_records.provider AND (o.record_id = usage_records.supersedes "
	"OR o.supersedes = usage_records.supersedes)) END";

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
	struct where w = {.sql = BUF_INIT};
	struct buf cols = BUF_INIT, keys = BUF_INIT;
	if (ngroup > LEDGER_GROUP_MAX)
		return ALLOT_E_INVALID;
	for (size_t i = 0; i < ngroup; i++) {
		if (!group_col_ok(group_by[i])) {
			buf_release(&cols);
			buf_release(&keys);
			return ALLOT_E_INVALID;
		}
		/* project and member keys are qualified: same-named projects of
		 * two institutions are two groups.  Rows are grouped by the plain
		 * columns (cheaper to sort than the joined strings). */
		bool proj = strcmp(group_by[i], "project") == 0;
		bool mem = strcmp(group_by[i], "member") == 0;
		const char *col = proj ? "institution || '/' || project AS project"
				  : mem ? "institution || '/' || project || CASE member WHEN '' "
					  "THEN '' ELSE '/' || member END AS member"
				  : group_by[i];
		buf_printf(&cols, "%s%s", cols.len ? ", " : "", col);
		buf_printf(&keys, "%s%s", keys.len ? ", " : "",
			   proj ? "institution, project" : mem ? "institution, project, member"
			   : group_by[i]);
	}
	if (by_bucket) { /* the 15-minute bucket's start, floored */
		buf_printf(&cols, "%sbook_us - ((book_us %% %lld) + %lld) %% %lld AS bucket_us",
			   cols.len ? ", " : "", (long long)LEDGER_BUCKET_US,
			   (long long)LEDGER_BUCKET_US, (long long)LEDGER_BUCKET_US);
		buf_printf(&keys, "%s%zu", keys.len ? ", " : "", ngroup + 1); /* its position */
	}
	buf_puts(&w.sql, "SELECT ");
	if (cols.len)
		buf_printf(&w.sql, "%s, ", buf_str(&cols));
	buf_printf(&w.sql, "sum(charge_micro) AS charge, sum(%s) AS quantity, count(*) AS records "
			   "FROM usage_records", q_net_quantity);
	where_build(&w, f);
	if (keys.len)
		buf_printf(&w.sql, " GROUP BY %s ORDER BY %s", buf_str(&keys), buf_str(&keys));
	buf_release(&cols);
	buf_release(&keys);
	struct report_each re = {fn, ctx, ngroup, by_bucket};
	return where_run(s, &w, f, "ledger report", report_row, &re);
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
