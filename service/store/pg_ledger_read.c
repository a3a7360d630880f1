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
		"SELECT coalesce(sum(charge_micro), 0), coalesce(bool_or(kind = 'void'), false) "
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
			snprintf(ps->base.errmsg, sizeof ps->base.errmsg, "ledger net: out of range");
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
		"WHERE u.source = 'gate'";
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
			snprintf(ps->base.errmsg, sizeof ps->base.errmsg, "token spent: out of range");
			e = ALLOT_E_STORE;
		}
		PQclear(r);
	}
	return conn_put(ps, c, own, e);
}
