/* pgbudget.c — builders of the PostgreSQL budget and lease tests
 * (support/pgbudget.h). */
#include "pgbudget.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "store/pg_int.h"
#include "pgfx.h"

static const char *const NAMES[] = {"*", "epfl", "epfl/climate"};

void pgb_level(struct store_budget_level *l, int i, int64_t cap)
{
	memset(l, 0, sizeof *l);
	snprintf(l->level, sizeof l->level, "%s", NAMES[i]);
	l->period_start = PGB_T0;
	l->period_end = PGB_T0 + 31 * PGB_DAY;
	l->cap = cap;
	l->concurrent = l->requests_per_minute = l->tokens_per_minute = STORE_BUDGET_NO_LIMIT;
}

void pgb_req3(struct store_budget_req *rq, const char *id, int64_t amount, int64_t pool,
	      int64_t inst, int64_t proj)
{
	memset(rq, 0, sizeof *rq);
	rq->id = id;
	rq->amount = amount;
	rq->tokens = 10;
	rq->charter_version = 1;
	rq->now_us = PGB_NOW;
	rq->expires_us = PGB_NOW + 60 * PGB_SEC;
	rq->window_us = PGB_NOW;
	const int64_t caps[] = {pool, inst, proj};
	rq->n = 3;
	for (int i = 0; i < 3; i++)
		pgb_level(&rq->lv[i], i, caps[i]);
}

static void record(struct ledger_row *row, const char *id, int64_t charge)
{
	memset(row, 0, sizeof *row);
	struct usage_record *r = &row->rec;
	snprintf(r->provider, sizeof r->provider, "local");
	snprintf(r->record_id, sizeof r->record_id, "%s", id);
	snprintf(r->institution, sizeof r->institution, "epfl");
	snprintf(r->project, sizeof r->project, "climate");
	snprintf(r->member, sizeof r->member, "alice@epfl.ch");
	snprintf(r->resource, sizeof r->resource, "tokens_out");
	r->quantity = 1;
	r->start_us = PGB_NOW - PGB_SEC;
	r->end_us = PGB_NOW;
	r->canonical = "{\"record\":1}";
	r->canonical_len = strlen(r->canonical);
	for (int i = 0; i < 32; i++)
		r->sha256[i] = (uint8_t)(i + (int)strlen(id) + id[strlen(id) - 1]);
	row->received_us = PGB_NOW;
	row->book_us = PGB_NOW;
	row->charge_micro = charge;
	row->rate_micro = charge;
	row->charter_version = 1;
	row->from_gate = true;
}

allot_err pgb_book(struct store *st, const char *id, int64_t lease, int64_t epoch,
		   const char *resv, int64_t charge, bool commit)
{
	allot_err e = store_ledger_begin(st);
	if (e)
		return e;
	struct ledger_row row;
	record(&row, id, charge);
	if ((e = store_ledger_insert_q(st, &row)) ||
	    (lease && (e = store_lease_settle(st, lease, epoch, charge))) ||
	    (resv && (e = store_budget_settle(st, resv, charge)))) {
		store_ledger_rollback(st);
		return e;
	}
	if (!commit) {
		store_ledger_rollback(st);
		return ALLOT_OK;
	}
	return store_ledger_commit(st);
}

static int64_t one(struct pgfx *f, const char *sql, int nparams, const char *const *v)
{
	PGconn *c = NULL;
	bool own = false;
	assert_int_equal(pg_get(f->ps, &c, &own), ALLOT_OK);
	PGresult *r = PQexecParams(c, sql, nparams, NULL, v, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(r), 1);
	int64_t x = pg_col_i64(r, 0, 0);
	PQclear(r);
	pg_put(f->ps, c, false);
	return x;
}

int64_t pgb_int(struct pgfx *f, const char *sql)
{
	return one(f, sql, 0, NULL);
}

int64_t pgb_column(struct pgfx *f, const char *col, const char *level)
{
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT %s FROM budgets WHERE level = $1", col);
	const char *v[] = {level};
	return one(f, sql, 1, v);
}
