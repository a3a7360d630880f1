/* pg_budget.c — the gate's budgets in the PostgreSQL database (tier A of
 * issue 13; migration 0005; docs/POSTGRES.md, "Budgets in the database").
 *
 * Several allotd nodes share one database, so reservations cannot live in
 * a node's memory: each admission is one call of allot_reserve (one round
 * trip), which takes the reservation at every level only if every level
 * has room, under row locks taken in one global order; the settlement is
 * allot_budget_book inside the booking transaction, just before its COMMIT
 * (pg_ledger.c calls pg_budget_commit), so the ledger rows, settled and
 * the released remainder commit together; expired reservations (their
 * node died) are released by allot_budget_sweep from any node.  Every
 * value is a parameter; arrays travel as their text form. */
#include "store/pg_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"

#define PS(st_) ((struct pg_store *)(st_))

/* ---- array parameters ------------------------------------------------------------ */

/* v[0..n) as a text[] literal: every element quoted, '"' and '\' escaped. */
static void arr_text(struct buf *b, const char *const *v, size_t n)
{
	buf_putc(b, '{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(b, ',');
		buf_putc(b, '"');
		for (const char *p = v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(b, '\\');
			buf_putc(b, *p);
		}
		buf_putc(b, '"');
	}
	buf_putc(b, '}');
}

/* v[0..n) as a bigint[] literal; with nulls, negative values are NULL. */
static void arr_i64(struct buf *b, const int64_t *v, size_t n, bool nulls)
{
	buf_putc(b, '{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(b, ',');
		if (nulls && v[i] < 0)
			buf_puts(b, "NULL");
		else
			buf_put_int(b, v[i]);
	}
	buf_putc(b, '}');
}

static int64_t bucket_floor(int64_t us)
{
	int64_t b = us / LEDGER_BUCKET_US;
	if (us < 0 && us % LEDGER_BUCKET_US)
		b -= 1;
	return b;
}

/* The ledger buckets [from, to) a level's settled counts: as
 * pg_ledger_sum reads a period's sum; none for a token. */
void pgb_level_buckets(const struct store_budget_level *l, int64_t *from, int64_t *to)
{
	if (strncmp(l->level, "token:", 6) == 0) {
		*from = *to = 0;
		return;
	}
	*from = bucket_floor(l->period_start);
	*to = l->period_end == INT64_MAX ? INT64_MAX : bucket_floor(l->period_end);
}

/* This process as the reservations' node column: its registration's name
 * (store/pg_owner.c), so a sweep can tell a dead node's reservations. */
static char node_name[64];
static pthread_once_t node_once = PTHREAD_ONCE_INIT;

static void node_init(void)
{
	pg_node_name(node_name, sizeof node_name);
}

/* ---- admission --------------------------------------------------------------------- */

static enum store_budget_why why_of(const char *w)
{
	return !*w				  ? STORE_BUDGET_OK
	       : strcmp(w, "concurrency") == 0 ? STORE_BUDGET_CONCURRENCY
	       : strcmp(w, "requests") == 0	  ? STORE_BUDGET_REQUESTS
	       : strcmp(w, "tokens") == 0	  ? STORE_BUDGET_TOKENS
						  : STORE_BUDGET_QUOTA;
}

/* The 9 arrays of rq's levels, into a[] (buf_release each). */
static void reserve_arrays(const struct store_budget_req *rq, struct buf a[9])
{
	const char *names[STORE_BUDGET_LEVELS];
	int64_t v[9][STORE_BUDGET_LEVELS];
	for (size_t i = 0; i < rq->n; i++) {
		const struct store_budget_level *l = &rq->lv[i];
		names[i] = l->level;
		v[1][i] = l->period_start;
		v[2][i] = l->period_end;
		pgb_level_buckets(l, &v[3][i], &v[4][i]);
		v[5][i] = l->cap;
		v[6][i] = l->concurrent;
		v[7][i] = l->requests_per_minute;
		v[8][i] = l->tokens_per_minute;
	}
	arr_text(&a[0], names, rq->n);
	for (int k = 1; k < 9; k++)
		arr_i64(&a[k], v[k], rq->n, k >= 6);
}

/* The rows allot_reserve returned, into rq. */
static allot_err reserve_result(struct pg_store *ps, const PGresult *r,
				struct store_budget_req *rq)
{
	int rows = PQntuples(r);
	if (rows < 1 || (size_t)rows > rq->n) {
		pgs_fail(ps, ALLOT_E_STORE, "allot_reserve returned %d rows for %zu levels", rows,
			 rq->n);
		return ALLOT_E_STORE;
	}
	for (int i = 0; i < rows; i++) {
		struct store_budget_level *l = &rq->lv[i];
		l->settled = pg_col_i64(r, i, 1);
		l->reserved = pg_col_i64(r, i, 2);
		l->allocation = pg_col_i64(r, i, 3);
		enum store_budget_why w = why_of(PQgetvalue(r, i, 0));
		if (w != STORE_BUDGET_OK) {
			rq->why = w;
			rq->refused = (size_t)i;
			rq->count = pg_col_i64(r, i, 4);
			return ALLOT_OK;
		}
	}
	if ((size_t)rows != rq->n) {
		pgs_fail(ps, ALLOT_E_STORE, "allot_reserve stopped without a refusal");
		return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

allot_err pgb_reserve(struct store *st, struct store_budget_req *rq)
{
	static const char q[] =
		"SELECT why, o_settled, o_reserved, o_allocation, o_n FROM allot_reserve($1, $2, "
		"$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";
	struct pg_store *ps = PS(st);
	if (ps->readonly)
		return pgs_readonly(ps);
	rq->why = STORE_BUDGET_OK;
	rq->refused = 0;
	rq->count = 0;
	if (!rq->id || !*rq->id || rq->n < 1 || rq->n > STORE_BUDGET_LEVELS || rq->amount < 0) {
		pgs_fail(ps, ALLOT_E_INVALID, "budget_reserve: bad request");
		return ALLOT_E_INVALID;
	}
	pthread_once(&node_once, node_init);
	struct buf a[9];
	for (int k = 0; k < 9; k++)
		a[k] = (struct buf)BUF_INIT;
	reserve_arrays(rq, a);
	char cv[24], am[24], tk[24], win[24], now[24], exp[24];
	const char *v[18] = {rq->id, node_name, buf_str(&a[0]), buf_str(&a[1]), buf_str(&a[2]),
			     buf_str(&a[3]), buf_str(&a[4]), buf_str(&a[5]),
			     pg_i64(cv, rq->charter_version), pg_i64(am, rq->amount),
			     buf_str(&a[6]), buf_str(&a[7]), buf_str(&a[8]), pg_i64(tk, rq->tokens),
			     pg_i64(win, rq->window_us), pg_i64(now, rq->now_us),
			     pg_i64(exp, rq->expires_us), pg_node_registered() ? "true" : "false"};
	PGconn *c = NULL;
	bool own = false;
	allot_err e = pg_get(ps, &c, &own);
	if (!e) {
		PGresult *r = pg_run(ps, c, q, 18, v, &e);
		if (r)
			e = reserve_result(ps, r, rq);
		PQclear(r);
		if (own)
			pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	}
	for (int k = 0; k < 9; k++)
		buf_release(&a[k]);
	return e;
}

/* ---- settlement and expiry ------------------------------------------------------------ */

allot_err pg_budget_commit(struct pg_store *ps, PGconn *c, const struct pg_settle *s, size_t n,
			   const struct pg_delta *d, size_t nd)
{
	static const char q[] = "SELECT allot_budget_book($1, $2, $3, $4, $5, $6, $7)";
	struct buf a[7];
	for (int k = 0; k < 7; k++)
		a[k] = (struct buf)BUF_INIT;
	const char **txt = calloc((n > nd ? n : nd) + 1, sizeof *txt);
	int64_t *num = calloc((n > nd ? n : nd) + 1, sizeof *num);
	allot_err e = ALLOT_E_NOMEM;
	if (!txt || !num)
		goto out;
	for (size_t i = 0; i < n; i++) {
		txt[i] = s[i].id;
		num[i] = s[i].actual;
	}
	arr_text(&a[0], txt, n);
	arr_i64(&a[1], num, n, false);
	for (size_t i = 0; i < nd; i++)
		txt[i] = d[i].inst;
	arr_text(&a[2], txt, nd);
	for (size_t i = 0; i < nd; i++)
		txt[i] = d[i].proj;
	arr_text(&a[3], txt, nd);
	for (size_t i = 0; i < nd; i++)
		txt[i] = d[i].member;
	arr_text(&a[4], txt, nd);
	for (size_t i = 0; i < nd; i++)
		num[i] = d[i].bucket;
	arr_i64(&a[5], num, nd, false);
	for (size_t i = 0; i < nd; i++)
		num[i] = d[i].charge;
	arr_i64(&a[6], num, nd, false);
	const char *v[7];
	for (int k = 0; k < 7; k++)
		v[k] = buf_str(&a[k]);
	PGresult *r = pg_run(ps, c, q, 7, v, &e);
	if (r)
		e = ALLOT_OK;
	PQclear(r);
out:
	free(txt);
	free(num);
	for (int k = 0; k < 7; k++)
		buf_release(&a[k]);
	return e;
}

allot_err pgb_settle(struct store *st, const char *id, int64_t actual)
{
	struct pg_store *ps = PS(st);
	if (ps->readonly)
		return pgs_readonly(ps);
	allot_err e = pg_ledger_defer_settle(ps, id, actual);
	if (e != ALLOT_E_NOT_FOUND)
		return e;
	/* No ledger transaction on this thread: at once, on its own. */
	struct pg_settle s;
	if (strlen(id) >= sizeof s.id) {
		pgs_fail(ps, ALLOT_E_INVALID, "reservation id too long");
		return ALLOT_E_INVALID;
	}
	snprintf(s.id, sizeof s.id, "%s", id);
	s.actual = actual;
	PGconn *c = NULL;
	bool own = false;
	if ((e = pg_get(ps, &c, &own)))
		return e;
	e = pg_budget_commit(ps, c, &s, 1, NULL, 0);
	if (own)
		pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	return e;
}

/* Runs a one-row, one-int64-column statement on a pooled connection. */
static allot_err one_i64(struct pg_store *ps, const char *sql, int n, const char *const *v,
			 int64_t *out)
{
	PGconn *c = NULL;
	bool own = false;
	allot_err e = pg_get(ps, &c, &own);
	if (e)
		return e;
	PGresult *r = pg_run(ps, c, sql, n, v, &e);
	if (r) {
		if (PQntuples(r) == 1 && pg_col_i64_strict(r, 0, 0, out)) {
			e = ALLOT_OK;
		} else {
			pgs_fail(ps, ALLOT_E_STORE, "budgets: unexpected answer");
			e = ALLOT_E_STORE;
		}
	}
	PQclear(r);
	if (own)
		pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	return e;
}

allot_err pgb_sweep(struct store *st, int64_t now_us, bool dead, int64_t *released)
{
	static const char q[] = "SELECT allot_budget_sweep($1, $2)";
	struct pg_store *ps = PS(st);
	if (ps->readonly)
		return pgs_readonly(ps);
	char nb[24];
	const char *v[] = {pg_i64(nb, now_us), dead ? "true" : "false"};
	return one_i64(ps, q, 2, v, released);
}

allot_err pgb_reserved(struct store *st, const char *level, int64_t at_us, int64_t *reserved)
{
	/* max, not sum: a charter that changed the level's period leaves rows
	 * of both periods holding at_us.  Room leased to nodes is held as
	 * reservations are (tier B, docs/POSTGRES.md): the quota views show
	 * it in `reserved`, so `remaining` is what can still be admitted. */
	static const char q[] =
		"SELECT coalesce(max(reserved + leased), 0) FROM budgets WHERE level = $1 "
		"AND period_start <= $2 AND $2 < period_end";
	char at[24];
	const char *v[] = {level, pg_i64(at, at_us)};
	return one_i64(PS(st), q, 2, v, reserved);
}
