/* pg_buckets.c — store_ops.ledger_buckets for the PostgreSQL backend: a
 * level's charges per 15-minute bucket (and per institution, project or
 * member under it) from usage_buckets, the totals the ledger keeps with
 * every booked row (store/pg_ledger.c), with the semantics of
 * store/sqlite_buckets.c.  pg_run prepares statements keyed by their
 * pointer, so the sixteen (level, group) queries are fixed strings. */
#include "store/pg_int.h"

#include <stdio.h>

#define PS(st_) ((struct pg_store *)(st_))

/* Floor division, as bucket_of in store/pg_ledger.c. */
static int64_t bk_index(int64_t us)
{
	int64_t b = us / LEDGER_BUCKET_US;
	if (us < 0 && us % LEDGER_BUCKET_US)
		b -= 1;
	return b;
}

/* The level's filter (its depth: none, institution, project, member). */
#define BK_W0 ""
#define BK_W1 " AND institution = $3"
#define BK_W2 BK_W1 " AND project = $4"
#define BK_W3 BK_W2 " AND member = $5"
/* The group columns (by). */
#define BK_G0 ""
#define BK_G1 ", institution"
#define BK_G2 BK_G1 ", project"
#define BK_G3 BK_G2 ", member"
/* bucket, sum, then the group columns, in bucket then group order. */
#define BK_SQL(w, g)                                                                       \
	"SELECT bucket, sum(charge)" g " FROM usage_buckets WHERE bucket >= $1 AND bucket < $2" \
	w " GROUP BY bucket" g " ORDER BY bucket" g
#define BK_BY(w) {BK_SQL(w, BK_G0), BK_SQL(w, BK_G1), BK_SQL(w, BK_G2), BK_SQL(w, BK_G3)}

static const char *const bk_sql[4][4] = {BK_BY(BK_W0), BK_BY(BK_W1), BK_BY(BK_W2),
					 BK_BY(BK_W3)};

struct bk_each {
	enum ledger_bucket_by by;
	void (*fn)(void *ctx, const struct ledger_bucket_row *r);
	void *ctx;
	bool bad;                 /* a sum out of range (cannot happen) */
};

static void bk_row(const PGresult *r, int i, void *arg)
{
	struct bk_each *be = arg;
	struct ledger_bucket_row row = {.bucket_us = pg_col_i64(r, i, 0) * LEDGER_BUCKET_US};
	if (be->bad || !pg_col_i64_strict(r, i, 1, &row.charge)) {
		be->bad = true;
		return;
	}
	if (be->by >= LEDGER_BY_INSTITUTION)
		row.institution = pgs_col_str(r, i, 2);
	if (be->by >= LEDGER_BY_PROJECT)
		row.project = pgs_col_str(r, i, 3);
	if (be->by >= LEDGER_BY_MEMBER)
		row.member = pgs_col_str(r, i, 4);
	be->fn(be->ctx, &row);
}

allot_err pg_ledger_buckets(struct store *st, const struct ledger_level *lv, int64_t from_us,
			    int64_t to_us, enum ledger_bucket_by by,
			    void (*fn)(void *ctx, const struct ledger_bucket_row *r), void *ctx)
{
	struct pg_store *ps = PS(st);
	if (from_us % LEDGER_BUCKET_US || to_us % LEDGER_BUCKET_US || (to_us && to_us <= from_us) ||
	    by < LEDGER_BY_LEVEL || by > LEDGER_BY_MEMBER || (lv->project && !lv->institution) ||
	    (lv->member && !lv->project))
		return ALLOT_E_INVALID;
	if (pg_txn(ps)) { /* its bucket charges are not written yet */
		pgs_fail(ps, ALLOT_E_STORE,
			 "ledger buckets: read inside this thread's ledger transaction");
		return ALLOT_E_STORE;
	}
	int depth = !lv->institution ? 0 : !lv->project ? 1 : !lv->member ? 2 : 3;
	char a[24], b[24];
	const char *v[] = {pg_i64(a, bk_index(from_us)),
			   to_us ? pg_i64(b, bk_index(to_us)) : pg_i64(b, INT64_MAX),
			   lv->institution, lv->project, lv->member};
	struct bk_each be = {.by = by, .fn = fn, .ctx = ctx};
	allot_err e = pgs_query(ps, bk_sql[depth][by], 2 + depth, v, bk_row, &be, NULL);
	if (!e && be.bad) {
		pgs_fail(ps, ALLOT_E_STORE, "ledger buckets: a sum out of range");
		e = ALLOT_E_STORE;
	}
	return e;
}
