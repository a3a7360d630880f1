/* pg_ledger_read.c — the ledger's reads that are not sums in the PostgreSQL
 * store: a record's net charge, a token's spend, listing, reports and
 * sequence status (store/store.h; the SQLite ones: sqlite_ledger.c,
 * sqlite_tokens.c, sqlite_ledger_read.c).  Each runs on the calling
 * thread's transaction's connection if it has one, else on a pooled one:
 * one statement, one snapshot, no lock that bookings wait for. */
#include "store/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/metrics.h"
#include "store/ledger_sql.h"

#define PS(st_) ((struct pg_store *)(st_))

static allot_err conn_put(struct pg_store *ps, PGconn *c, bool own, allot_err e)
{
	if (own)
		pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	return e;
}

allot_err pg_ledger_net(struct store *st, const char *provider, const char *record_id,
			int64_t *net, bool *voided)
{
	static const char q[] =
		"SELECT coalesce(sum(charge_micro), 0), coalesce(bool_or(kind = 'v'), false) "
		"FROM usage_records WHERE provider = $1 AND (record_id = $2 OR supersedes = $2)";
	struct pg_store *ps = PS(st);
	PGconn *c = NULL;
	bool own = false;
	allot_err e = pg_get(ps, &c, &own);
	if (e)
		return e;
	const char *v[] = {provider, record_id};
	PGresult *r = pg_run(ps, c, q, 2, v, &e);
	if (r) {
		if (PQntuples(r) == 1 && pg_col_i64_strict(r, 0, 0, net)) {
			*voided = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
		} else {
			pgs_fail(ps, ALLOT_E_STORE, "ledger net: out of range");
			e = ALLOT_E_STORE;
		}
		PQclear(r);
	}
	return conn_put(ps, c, own, e);
}

allot_err pg_token_spent(struct store *st, const char *jti, int64_t *spent)
{
	/* The prefix range "gate:<jti>:" of record_id within each provider, on
	 * the (provider, record_id) unique index (byte order: migration 0004):
	 * the recursive part hops from one provider to the next with an index
	 * seek each, as on SQLite (store/sqlite_tokens.c). */
	static const char q[] =
		"WITH RECURSIVE p(provider) AS ("
		" SELECT min(provider) FROM usage_records"
		" UNION ALL"
		" SELECT (SELECT min(u.provider) FROM usage_records u WHERE u.provider > p.provider)"
		" FROM p WHERE p.provider IS NOT NULL) "
		"SELECT coalesce(sum(u.charge_micro), 0) FROM p JOIN usage_records u"
		" ON u.provider = p.provider AND u.record_id >= $1 AND u.record_id < $2 "
		"WHERE u.source = 'g'";
	struct pg_store *ps = PS(st);
	char lo[STORE_ID_MAX + 8], hi[STORE_ID_MAX + 8];
	snprintf(lo, sizeof lo, "gate:%s:", jti);
	snprintf(hi, sizeof hi, "gate:%s;", jti); /* ';' follows ':' */
	PGconn *c = NULL;
	bool own = false;
	allot_err e = pg_get(ps, &c, &own);
	if (e)
		return e;
	const char *v[] = {lo, hi};
	PGresult *r = pg_run(ps, c, q, 2, v, &e);
	if (r) {
		if (!(PQntuples(r) == 1 && pg_col_i64_strict(r, 0, 0, spent))) {
			pgs_fail(ps, ALLOT_E_STORE, "token spent: out of range");
			e = ALLOT_E_STORE;
		}
		PQclear(r);
	}
	return conn_put(ps, c, own, e);
}

/* ---- filtered statements ---------------------------------------------------------------
 * A listing's or report's SQL depends on which filters are set (and on
 * the grouping): built by store/ledger_sql.c (shared with SQLite) with
 * every value a parameter ($1, $2, ... in order), and run as one unnamed
 * statement (PQexecParams: parsed and planned for these filters each
 * time). */

/* Runs w's statement on c; NULL (errmsg set, *e) on failure.  Releases w. */
static PGresult *pw_run(struct pg_store *ps, PGconn *c, struct ledger_sql *w, const char *what,
			allot_err *e)
{
	const char *vals[LEDGER_SQL_PARAMS];
	char ints[LEDGER_SQL_PARAMS][24];
	PGresult *r = NULL;
	*e = ALLOT_E_NOMEM;
	if (!w->sql.oom) {
		for (int i = 0; i < w->n; i++)
			vals[i] = w->text[i] ? w->text[i] : pg_i64(ints[i], w->ints[i]);
		metrics_add(MC_STORE_ROUNDTRIPS, 1);
		r = PQexecParams(c, buf_str(&w->sql), w->n, NULL, vals, NULL, NULL, 0);
		*e = ALLOT_OK;
	}
	ledger_sql_release(w);
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
		return r;
	if (r || *e == ALLOT_OK) {
		const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
		pgs_fail(ps, ALLOT_E_STORE, "%s: %.200s", what, m);
		char *nl = strchr(ps->base.errmsg, '\n');
		if (nl)
			*nl = '\0';
		*e = pg_result_err(c, r);
	}
	PQclear(r);
	return NULL;
}

/* ---- sequence gaps and repeats ------------------------------------------------------------
 * SQLite walks the provider's seqs in C; here one statement computes the
 * totals over the whole sequence and another the first items of the page
 * (gaps by their first missing seq, repeated seqs once each, in seq order,
 * those after `after`, at most 2 × limit + 1: enough to fill both lists
 * and see where the page ends), in one read-only snapshot. */

#define Q_SEQ_SCAN \
	"WITH s AS (SELECT seq, lag(seq) OVER w AS prev, lag(seq, 2) OVER w AS prev2 " \
	"FROM usage_records WHERE provider = $1 AND seq IS NOT NULL WINDOW w AS (ORDER BY seq)) "
static const char q_seq_totals[] =
	Q_SEQ_SCAN
	"SELECT (SELECT count(*) FROM usage_records WHERE provider = $1 AND source = 'p'), "
	"count(*), min(seq), max(seq), count(*) FILTER (WHERE seq > prev + 1), "
	"coalesce(sum(seq::numeric - prev - 1) FILTER (WHERE seq > prev + 1), 0), "
	"count(*) FILTER (WHERE seq = prev AND prev2 IS DISTINCT FROM seq) FROM s";
static const char q_seq_items[] =
	Q_SEQ_SCAN
	"SELECT k, first, last FROM ("
	" SELECT seq AS pos, 0 AS k, prev + 1 AS first, seq - 1 AS last FROM s"
	" WHERE seq > prev + 1 AND prev + 1 > $2"
	" UNION ALL SELECT seq, 1, seq, seq FROM s"
	" WHERE seq = prev AND prev2 IS DISTINCT FROM seq AND seq > $2) i "
	"ORDER BY pos, k LIMIT $3";

/* ---- listing ------------------------------------------------------------------------------ */

allot_err pg_ledger_list(struct store *st, const struct ledger_filter *f,
			 void (*fn)(void *ctx, const struct ledger_row *row, int64_t leaf_index),
			 void *ctx)
{
	struct pg_store *ps = PS(st);
	struct ledger_sql w;
	ledger_sql_init(&w, LEDGER_SQL_PG);
	ledger_sql_list(&w, PG_USAGE_COLS, f);
	PGconn *c = NULL;
	bool own = false;
	allot_err e = pg_get(ps, &c, &own);
	if (e) {
		ledger_sql_release(&w);
		return e;
	}
	PGresult *r = pw_run(ps, c, &w, "ledger list", &e);
	for (int i = 0; r && !e && i < PQntuples(r); i++) {
		struct ledger_row row;
		if ((e = pg_usage_row(ps, r, i, &row)))
			break;
		int64_t leaf = PQgetisnull(r, i, PG_USAGE_NCOLS) ? -1 : pg_col_i64(r, i, PG_USAGE_NCOLS);
		fn(ctx, &row, leaf);
		free(row.rec.canonical);
	}
	PQclear(r);
	return conn_put(ps, c, own, e);
}

/* ---- reports ------------------------------------------------------------------------------ */

/* A sum of one group (NUMERIC; NULL over no rows: zero). */
static bool col_sum(const PGresult *r, int i, int col, int64_t *out)
{
	*out = 0;
	return PQgetisnull(r, i, col) || pg_col_i64_strict(r, i, col, out);
}

allot_err pg_ledger_report(struct store *st, const struct ledger_filter *f,
			   const char *const *group_by, size_t ngroup, bool by_bucket,
			   void (*fn)(void *ctx, const struct ledger_report_row *r), void *ctx)
{
	struct pg_store *ps = PS(st);
	struct ledger_sql w;
	ledger_sql_init(&w, LEDGER_SQL_PG);
	allot_err e = ledger_sql_report(&w, f, group_by, ngroup, by_bucket);
	if (e)
		return e;
	PGconn *c = NULL;
	bool own = false;
	if ((e = pg_get(ps, &c, &own))) {
		ledger_sql_release(&w);
		return e;
	}
	PGresult *r = pw_run(ps, c, &w, "ledger report", &e);
	for (int i = 0; r && !e && i < PQntuples(r); i++) {
		struct ledger_report_row row = {.group = {NULL}};
		int col = 0;
		for (size_t g = 0; g < ngroup; g++, col++)
			row.group[g] = PQgetvalue(r, i, col); /* "" when NULL */
		if (by_bucket)
			row.bucket_us = pg_col_i64(r, i, col++);
		if (!col_sum(r, i, col, &row.charge) || !col_sum(r, i, col + 1, &row.quantity) ||
		    !col_sum(r, i, col + 2, &row.records)) {
			/* cannot happen under the ledger's bounds */
			pgs_fail(ps, ALLOT_E_STORE, "ledger report: a sum is "
				 "out of range");
			e = ALLOT_E_STORE;
			break;
		}
		fn(ctx, &row);
	}
	PQclear(r);
	return conn_put(ps, c, own, e);
}

/* ---- sequence status ---------------------------------------------------------------------- */

/* The page of items (rows of q_seq_items: kind, first, last), as SQLite's
 * scan lists them: an item after `after` goes to its list unless that
 * list is full, which ends the page just before it. */
static allot_err seq_page(const PGresult *r, int64_t after, int limit,
			  struct ledger_seq_status *o)
{
	(void)after; /* the statement kept only items after it */
	for (int i = 0; i < PQntuples(r); i++) {
		bool gap = pg_col_i64(r, i, 0) == 0;
		int64_t first = pg_col_i64(r, i, 1), last = pg_col_i64(r, i, 2);
		size_t have = gap ? o->ngaps : o->nrepeats;
		if (have == (size_t)limit) {
			o->has_next = true;
			o->next = first - 1;
			return ALLOT_OK;
		}
		if (gap) {
			struct ledger_seq_gap *g = realloc(o->gaps, (o->ngaps + 1) * sizeof *g);
			if (!g)
				return ALLOT_E_NOMEM;
			g[o->ngaps++] = (struct ledger_seq_gap){first, last};
			o->gaps = g;
		} else {
			int64_t *p = realloc(o->repeats, (o->nrepeats + 1) * sizeof *p);
			if (!p)
				return ALLOT_E_NOMEM;
			p[o->nrepeats++] = first;
			o->repeats = p;
		}
	}
	return ALLOT_OK;
}

/* Both statements on c, which holds one snapshot for them. */
static allot_err seq_read(struct pg_store *ps, PGconn *c, const char *provider, int64_t after,
			  int limit, struct ledger_seq_status *o)
{
	char a[24], l[24];
	const char *v[] = {provider, pg_i64(a, after), pg_i64(l, 2 * (int64_t)limit + 1)};
	allot_err e = ALLOT_OK;
	PGresult *r = pg_run(ps, c, q_seq_totals, 1, v, &e);
	if (!r)
		return e;
	bool ok = PQntuples(r) == 1 && pg_col_i64_strict(r, 0, 0, &o->records) &&
		  pg_col_i64_strict(r, 0, 1, &o->with_seq) &&
		  pg_col_i64_strict(r, 0, 4, &o->gap_count) &&
		  pg_col_i64_strict(r, 0, 5, &o->missing) &&
		  pg_col_i64_strict(r, 0, 6, &o->repeat_count);
	o->min_seq = pg_col_i64(r, 0, 2); /* NULL (0) without seqs */
	o->max_seq = pg_col_i64(r, 0, 3);
	PQclear(r);
	if (!ok) {
		pgs_fail(ps, ALLOT_E_STORE, "seq status: out of range");
		return ALLOT_E_STORE;
	}
	if (!(r = pg_run(ps, c, q_seq_items, 3, v, &e)))
		return e;
	e = seq_page(r, after, limit, o);
	PQclear(r);
	return e;
}

allot_err pg_ledger_seq_status(struct store *st, const char *provider, int64_t after, int limit,
			       struct ledger_seq_status *out)
{
	static const char q_begin[] = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
	static const char q_end[] = "COMMIT";
	struct pg_store *ps = PS(st);
	if (limit < 1 || after < -1)
		return ALLOT_E_INVALID;
	PGconn *c = NULL;
	bool own = false;
	allot_err e = pg_get(ps, &c, &own);
	if (e)
		return e;
	*out = (struct ledger_seq_status){.records = 0};
	PGresult *r = own ? pg_run(ps, c, q_begin, 0, NULL, &e) : NULL;
	PQclear(r);
	if (!e)
		e = seq_read(ps, c, provider, after, limit, out);
	if (own && PQtransactionStatus(c) != PQTRANS_IDLE) {
		r = pg_run(ps, c, q_end, 0, NULL, e ? NULL : &e);
		PQclear(r);
	}
	if (e)
		ledger_seq_status_release(out);
	return conn_put(ps, c, own, e);
}

/* ---- several sums in one statement --------------------------------------------------- */

static int64_t sum_bucket(int64_t us)
{
	int64_t b = us / LEDGER_BUCKET_US;
	if (us < 0 && us % LEDGER_BUCKET_US)
		b -= 1;
	return b;
}

/* Each as pg_ledger.c's sum_query reads one (a level's absent parts travel
 * as ''; the CASE runs one branch). */
const char pg_sums_sql[] =
	"SELECT CASE WHEN q.i = '' THEN (SELECT coalesce(sum(charge), 0) FROM usage_buckets "
	"WHERE bucket >= q.f AND bucket < q.t) WHEN q.p = '' THEN (SELECT "
	"coalesce(sum(charge), 0) FROM usage_buckets WHERE institution = q.i AND bucket >= "
	"q.f AND bucket < q.t) WHEN q.m = '' THEN (SELECT coalesce(sum(charge), 0) FROM "
	"usage_buckets WHERE institution = q.i AND project = q.p AND bucket >= q.f AND "
	"bucket < q.t) ELSE (SELECT coalesce(sum(charge), 0) FROM usage_buckets WHERE "
	"institution = q.i AND project = q.p AND member = q.m AND bucket >= q.f AND bucket < "
	"q.t) END FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) "
	"WITH ORDINALITY AS q(i, p, m, f, t, ord) ORDER BY q.ord";

allot_err pg_sums_arrays(const struct ledger_sum_req *rq, size_t n, char *a[PG_SUMS_ARRAYS])
{
	for (int f = 0; f < PG_SUMS_ARRAYS; f++)
		a[f] = NULL;
	const char **txt = calloc(5 * n, sizeof *txt);
	char (*num)[24] = calloc(2 * n, sizeof *num);
	allot_err e = txt && num ? ALLOT_OK : ALLOT_E_NOMEM;
	for (size_t i = 0; i < n && !e; i++) {
		const struct ledger_level *lv = &rq[i].lv;
		txt[i] = lv->institution ? lv->institution : "";
		txt[n + i] = lv->institution && lv->project ? lv->project : "";
		txt[2 * n + i] = lv->institution && lv->project && lv->member ? lv->member : "";
		int64_t tb = rq[i].to_us == INT64_MAX ? INT64_MAX : sum_bucket(rq[i].to_us);
		txt[3 * n + i] = pg_i64(num[i], sum_bucket(rq[i].from_us));
		txt[4 * n + i] = pg_i64(num[n + i], tb);
	}
	for (int f = 0; f < PG_SUMS_ARRAYS && !e; f++)
		if (!(a[f] = pgs_text_array(txt + (size_t)f * n, n)))
			e = ALLOT_E_NOMEM;
	if (e)
		pg_sums_arrays_free(a);
	free(txt);
	free(num);
	return e;
}

void pg_sums_arrays_free(char *a[PG_SUMS_ARRAYS])
{
	for (int f = 0; f < PG_SUMS_ARRAYS; f++) {
		free(a[f]);
		a[f] = NULL;
	}
}

allot_err pg_sums_take(struct pg_store *ps, const PGresult *r, struct ledger_sum_req *rq, size_t n)
{
	bool ok = r && PQntuples(r) == (int)n;
	for (size_t i = 0; ok && i < n; i++)
		ok = pg_col_i64_strict(r, (int)i, 0, &rq[i].sum);
	if (!ok) { /* cannot happen under the bounds */
		pgs_fail(ps, ALLOT_E_STORE, "ledger sum: out of range");
		return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

allot_err pg_sums_read(struct pg_store *ps, PGconn *c, struct ledger_sum_req *rq, size_t n)
{
	char *a[PG_SUMS_ARRAYS];
	allot_err e = pg_sums_arrays(rq, n, a);
	PGresult *r = e ? NULL
			: pg_run(ps, c, pg_sums_sql, PG_SUMS_ARRAYS, (const char *const *)a, &e);
	if (r)
		e = pg_sums_take(ps, r, rq, n);
	PQclear(r);
	pg_sums_arrays_free(a);
	return e;
}
