/* sqlite_buckets.c — store_ops.ledger_buckets for the SQLite backend: a
 * level's charges per 15-minute bucket (and per institution, project or
 * member under it) from usage_buckets, the totals the ledger keeps with
 * every booked row (store/sqlite_ledger.c, "bucket deltas").  A month of an
 * institution is at most 2,976 buckets per member, whatever the number of
 * records: this is what lets the dashboard draw a period's daily usage of
 * a large ledger quickly (docs/DASHBOARD.md, "Render time"). */
#include "store/sqlite_int.h"

#include <stdio.h>

#include "common/buf.h"

#define S(st_) ((struct sqlite_store *)(st_))

/* Floor division, as bucket_of in store/sqlite_ledger.c. */
static int64_t bk_index(int64_t us)
{
	int64_t b = us / LEDGER_BUCKET_US;
	if (us < 0 && us % LEDGER_BUCKET_US)
		b -= 1;
	return b;
}

/* SELECT [group columns,] bucket, sum(charge) ... ORDER BY bucket, group. */
static void bk_sql(struct buf *sql, const struct ledger_level *lv, enum ledger_bucket_by by,
		   bool bounded)
{
	static const char *const cols[] = {"", "institution", "institution, project",
					   "institution, project, member"};
	const char *g = cols[by];
	buf_printf(sql, "SELECT %s%sbucket, sum(charge) FROM usage_buckets WHERE bucket >= ?1", g,
		   *g ? ", " : "");
	if (bounded)
		buf_puts(sql, " AND bucket < ?2");
	if (lv->institution)
		buf_puts(sql, " AND institution = ?3");
	if (lv->institution && lv->project)
		buf_puts(sql, " AND project = ?4");
	if (lv->institution && lv->project && lv->member)
		buf_puts(sql, " AND member = ?5");
	buf_printf(sql, " GROUP BY bucket%s%s ORDER BY bucket%s%s", *g ? ", " : "", g,
		   *g ? ", " : "", g);
}

static allot_err bk_rows(sqlite3_stmt *q, enum ledger_bucket_by by,
			 void (*fn)(void *ctx, const struct ledger_bucket_row *r), void *ctx)
{
	int rc, ng = (int)by; /* group columns come first */
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct ledger_bucket_row r = {
			.bucket_us = sqlite3_column_int64(q, ng) * LEDGER_BUCKET_US,
			.charge = sqlite3_column_int64(q, ng + 1),
		};
		if (ng > 0)
			r.institution = (const char *)sqlite3_column_text(q, 0);
		if (ng > 1)
			r.project = (const char *)sqlite3_column_text(q, 1);
		if (ng > 2)
			r.member = (const char *)sqlite3_column_text(q, 2);
		if ((ng > 0 && !r.institution) || (ng > 1 && !r.project) || (ng > 2 && !r.member))
			return ALLOT_E_NOMEM;
		fn(ctx, &r);
	}
	return rc == SQLITE_DONE ? ALLOT_OK : ALLOT_E_STORE;
}

allot_err sq_ledger_buckets(struct store *st, const struct ledger_level *lv, int64_t from_us,
			    int64_t to_us, enum ledger_bucket_by by,
			    void (*fn)(void *ctx, const struct ledger_bucket_row *r), void *ctx)
{
	struct sqlite_store *s = S(st);
	if (from_us % LEDGER_BUCKET_US || to_us % LEDGER_BUCKET_US || (to_us && to_us <= from_us) ||
	    by < LEDGER_BY_LEVEL || by > LEDGER_BY_MEMBER || (lv->project && !lv->institution) ||
	    (lv->member && !lv->project))
		return ALLOT_E_INVALID;
	if (sq_in_tx()) { /* its bucket deltas are not written yet */
		snprintf(s->base.errmsg, sizeof s->base.errmsg,
			 "ledger buckets: read inside this thread's ledger transaction");
		return ALLOT_E_STORE;
	}
	struct buf sql = BUF_INIT;
	bk_sql(&sql, lv, by, to_us != 0);
	if (sql.oom) {
		buf_release(&sql);
		return ALLOT_E_NOMEM;
	}
	allot_err e;
	sqlite3_stmt *q = NULL;
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, buf_str(&sql), -1, &q, NULL) != SQLITE_OK) {
		e = sq_fail(s, "ledger buckets");
	} else {
		sqlite3_bind_int64(q, 1, bk_index(from_us));
		if (to_us)
			sqlite3_bind_int64(q, 2, bk_index(to_us));
		if (lv->institution)
			sqlite3_bind_text(q, 3, lv->institution, -1, SQLITE_STATIC);
		if (lv->institution && lv->project)
			sqlite3_bind_text(q, 4, lv->project, -1, SQLITE_STATIC);
		if (lv->institution && lv->project && lv->member)
			sqlite3_bind_text(q, 5, lv->member, -1, SQLITE_STATIC);
		e = bk_rows(q, by, fn, ctx);
		if (e == ALLOT_E_STORE)
			sq_fail(s, "ledger buckets");
	}
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->lock);
	buf_release(&sql);
	return e;
}
