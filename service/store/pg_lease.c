/* pg_lease.c — node epochs and leases in the PostgreSQL database (tier B
 * of issue 13; migration 0006; docs/POSTGRES.md, "Leases and epochs").
 *
 * A lease is a slice of one budget row subtracted in the database
 * (budgets.leased) for one node incarnation (node, epoch); the node spends
 * it in memory.  Every function here is one statement (one round trip) on
 * a pooled connection, but lease_settle, which joins the booking's
 * transaction as budget_settle does (its id "lease:<id>:<epoch>" travels
 * with the reservations' ids to allot_budget_book at the commit). */
#include "store/pg_int.h"

#include <stdio.h>
#include <string.h>

#define PS(st_) ((struct pg_store *)(st_))

/* Runs sql (one row expected) on a pooled connection; row(r) reads it. */
static allot_err one_row(struct pg_store *ps, const char *sql, int n, const char *const *v,
			 void (*row)(const PGresult *r, void *ctx), void *ctx)
{
	if (ps->readonly)
		return pgs_readonly(ps);
	PGconn *c = NULL;
	bool own = false;
	allot_err e = pg_get(ps, &c, &own);
	if (e)
		return e;
	PGresult *r = pg_run(ps, c, sql, n, v, &e);
	if (r) {
		if (PQntuples(r) == 1 && PQnfields(r) >= 1 && !PQgetisnull(r, 0, 0)) {
			row(r, ctx);
			e = ALLOT_OK;
		} else {
			pgs_fail(ps, ALLOT_E_STORE, "leases: unexpected answer");
			e = ALLOT_E_STORE;
		}
	}
	PQclear(r);
	if (own)
		pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	return e;
}

static void row_i64(const PGresult *r, void *ctx) { *(int64_t *)ctx = pg_col_i64(r, 0, 0); }

static void row_bool(const PGresult *r, void *ctx)
{
	*(bool *)ctx = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
}

static bool bad_node(struct pg_store *ps, const char *node)
{
	if (node && *node && strlen(node) < 256)
		return false;
	pgs_fail(ps, ALLOT_E_INVALID, "leases: bad node name");
	return true;
}

allot_err pgl_node_start(struct store *st, const char *node, int64_t now_us, int64_t *epoch)
{
	static const char q[] = "SELECT allot_node_start($1, $2)";
	struct pg_store *ps = PS(st);
	if (bad_node(ps, node))
		return ALLOT_E_INVALID;
	char nb[24];
	const char *v[] = {node, pg_i64(nb, now_us)};
	return one_row(ps, q, 2, v, row_i64, epoch);
}

allot_err pgl_node_heartbeat(struct store *st, const char *node, int64_t epoch, int64_t now_us,
			     bool *current)
{
	static const char q[] = "SELECT allot_node_heartbeat($1, $2, $3)";
	struct pg_store *ps = PS(st);
	if (bad_node(ps, node))
		return ALLOT_E_INVALID;
	char eb[24], nb[24];
	const char *v[] = {node, pg_i64(eb, epoch), pg_i64(nb, now_us)};
	return one_row(ps, q, 3, v, row_bool, current);
}

static void row_lease(const PGresult *r, void *ctx)
{
	struct store_lease *l = ctx;
	l->id = pg_col_i64(r, 0, 0);
	l->size = pg_col_i64(r, 0, 1);
	l->spent = pg_col_i64(r, 0, 2);
	l->expires_us = pg_col_i64(r, 0, 3);
	l->granted = pg_col_i64(r, 0, 4);
}

allot_err pgl_take(struct store *st, const char *node, int64_t epoch,
		   const struct store_budget_level *lv, int64_t charter_version, int64_t want,
		   int64_t now_us, int64_t expires_us, int64_t live_us, struct store_lease *l)
{
	static const char q[] =
		"SELECT o_id, o_size, o_spent, o_expires, o_granted FROM allot_lease_take($1, $2, "
		"$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
	struct pg_store *ps = PS(st);
	if (bad_node(ps, node))
		return ALLOT_E_INVALID;
	if (want < 0 || live_us < 0 || l->id < 0 || strncmp(lv->level, "token:", 6) == 0) {
		pgs_fail(ps, ALLOT_E_INVALID, "lease_take: bad request");
		return ALLOT_E_INVALID;
	}
	int64_t bfrom, bto;
	pgb_level_buckets(lv, &bfrom, &bto);
	char b[11][24];
	const char *v[14] = {l->id ? pg_i64(b[0], l->id) : NULL,
			     node,
			     pg_i64(b[1], epoch),
			     lv->level,
			     pg_i64(b[2], lv->period_start),
			     pg_i64(b[3], lv->period_end),
			     pg_i64(b[4], bfrom),
			     pg_i64(b[5], bto),
			     pg_i64(b[6], lv->cap),
			     pg_i64(b[7], charter_version),
			     pg_i64(b[8], want),
			     pg_i64(b[9], now_us),
			     pg_i64(b[10], expires_us),
			     NULL};
	char lb[24];
	v[13] = pg_i64(lb, live_us);
	return one_row(ps, q, 14, v, row_lease, l);
}

allot_err pgl_return(struct store *st, int64_t id, const char *node, int64_t epoch,
		     int64_t *back)
{
	static const char q[] = "SELECT allot_lease_return($1, $2, $3)";
	struct pg_store *ps = PS(st);
	if (bad_node(ps, node))
		return ALLOT_E_INVALID;
	char ib[24], eb[24];
	const char *v[] = {pg_i64(ib, id), node, pg_i64(eb, epoch)};
	return one_row(ps, q, 3, v, row_i64, back);
}

allot_err pgl_settle(struct store *st, int64_t id, int64_t epoch, int64_t actual)
{
	struct pg_store *ps = PS(st);
	if (id <= 0 || actual < 0) {
		pgs_fail(ps, ALLOT_E_INVALID, "lease_settle: bad request");
		return ALLOT_E_INVALID;
	}
	char sid[64];
	snprintf(sid, sizeof sid, "lease:%lld:%lld", (long long)id, (long long)epoch);
	return pgb_settle(st, sid, actual);
}

allot_err pgl_sweep(struct store *st, int64_t now_us, int64_t grace_us, int64_t *returned)
{
	static const char q[] = "SELECT allot_lease_sweep($1, $2)";
	struct pg_store *ps = PS(st);
	if (grace_us < 0) {
		pgs_fail(ps, ALLOT_E_INVALID, "lease_sweep: bad grace");
		return ALLOT_E_INVALID;
	}
	char nb[24], gb[24];
	const char *v[] = {pg_i64(nb, now_us), pg_i64(gb, grace_us)};
	return one_row(ps, q, 2, v, row_i64, returned);
}
