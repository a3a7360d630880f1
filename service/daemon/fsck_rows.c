/* fsck_rows.c — allotd --fsck on the rows: usage_buckets recomputed from the
 * usage records, integer-only columns, unique record ids, SQLite's
 * quick_check, and sums of records for the other checks.  Everything here
 * reads the read-only raw connection (daemon/fsck_raw.c), never the store's
 * code; on PostgreSQL the column types are checked by fsck_guard.c instead
 * and there is no quick_check. */
#include "daemon/fsck_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "common/timeutil.h"

/* Longest key part kept; ids are at most STORE_MEMBER_MAX, a longer one
 * (a damaged row) only makes its group compare unequal, which is reported. */
#define FSCK_KEY_MAX 1024

/* ---- sums of records ------------------------------------------------------- */

bool fsck_raw_sum(struct fsck *f, const struct ledger_level *lv, int64_t from, int64_t to,
		  int64_t *sum, int64_t *records)
{
	static const char q_all[] =
		"SELECT charge_micro FROM usage_records WHERE book_us >= ?1 AND book_us < ?2";
	static const char q_inst[] =
		"SELECT charge_micro FROM usage_records WHERE book_us >= ?1 AND book_us < ?2 "
		"AND institution = ?3";
	static const char q_proj[] =
		"SELECT charge_micro FROM usage_records WHERE book_us >= ?1 AND book_us < ?2 "
		"AND institution = ?3 AND project = ?4";
	static const char q_mem[] =
		"SELECT charge_micro FROM usage_records WHERE book_us >= ?1 AND book_us < ?2 "
		"AND institution = ?3 AND project = ?4 AND member = ?5";
	const char *sql = !lv->institution ? q_all : !lv->project ? q_inst
			  : !lv->member ? q_proj : q_mem;
	struct fsck_arg args[] = {{NULL, from}, {NULL, to}, {lv->institution, 0},
				  {lv->project, 0}, {lv->member, 0}};
	int nargs = !lv->institution ? 2 : !lv->project ? 3 : !lv->member ? 4 : 5;
	struct fsck_q q;
	if (!fsck_q_open(f, &q, sql, true, nargs, args)) {
		fsck_fail(f, "record sum", fsck_raw_err(f));
		return false;
	}
	int64_t s = 0, n = 0;
	bool overflow = false;
	int rc;
	while ((rc = fsck_q_step(&q)) == 1) {
		n++;
		if (!overflow && money_add(s, fsck_q_i64(&q, 0), &s))
			overflow = true;
	}
	if (rc != 0)
		fsck_fail(f, "record sum", fsck_raw_err(f));
	fsck_q_close(&q);
	if (rc != 0)
		return false;
	if (overflow) {
		char where[3 * FSCK_KEY_MAX];
		snprintf(where, sizeof where, "%s/%s/%s", lv->institution ? lv->institution : "*",
			 lv->project ? lv->project : "*", lv->member ? lv->member : "*");
		fsck_bad(f, "record sum overflows int64", where, "-", "overflow");
		return false;
	}
	*sum = s;
	if (records)
		*records = n;
	return true;
}

/* ---- usage_buckets ---------------------------------------------------------- */

struct bkey {
	char inst[FSCK_KEY_MAX], proj[FSCK_KEY_MAX], member[FSCK_KEY_MAX];
	int64_t bucket;
};

static void key_read(const struct fsck_q *q, struct bkey *k)
{
	const char *t;
	t = fsck_q_text(q, 0);
	snprintf(k->inst, sizeof k->inst, "%s", t ? t : "");
	t = fsck_q_text(q, 1);
	snprintf(k->proj, sizeof k->proj, "%s", t ? t : "");
	t = fsck_q_text(q, 2);
	snprintf(k->member, sizeof k->member, "%s", t ? t : "");
	k->bucket = fsck_q_i64(q, 3);
}

static int key_cmp(const struct bkey *a, const struct bkey *b)
{
	int c = strcmp(a->inst, b->inst);
	if (!c)
		c = strcmp(a->proj, b->proj);
	if (!c)
		c = strcmp(a->member, b->member);
	if (!c)
		c = a->bucket < b->bucket ? -1 : a->bucket > b->bucket;
	return c;
}

static void key_where(const struct bkey *k, char *out, size_t n)
{
	char t[TIME_FMT_MAX];
	snprintf(out, n, "%s/%s/%s at %s", k->inst, k->proj, k->member,
		 time_format_rfc3339(k->bucket * LEDGER_BUCKET_US, t));
}

/* A cursor over rows ordered by (institution, project, member, bucket). */
struct cursor {
	struct fsck_q q;
	int rc;                /* of the last step: 1 while a row is unread */
};

/* The next group of rows with one key: its charges summed (overflow set when
 * the sum leaves int64) and counted.  Returns 1, 0 at the end, -1 on an
 * error. */
static int cursor_group(struct cursor *c, struct bkey *k, int64_t *sum, bool *overflow,
			int64_t *rows)
{
	if (c->rc != 1)
		return c->rc;
	key_read(&c->q, k);
	*sum = 0;
	*rows = 0;
	*overflow = false;
	struct bkey next;
	do {
		++*rows;
		if (!*overflow && money_add(*sum, fsck_q_i64(&c->q, 4), sum))
			*overflow = true;
		if ((c->rc = fsck_q_step(&c->q)) != 1)
			break;
		key_read(&c->q, &next);
	} while (key_cmp(k, &next) == 0);
	return c->rc >= 0 ? 1 : -1;
}

/* width: the bucket width bound to ?1, or 0 for a query without one. */
static bool cursor_open(struct fsck *f, struct cursor *c, const char *sql, int64_t width)
{
	struct fsck_arg arg = {NULL, width};
	if (!fsck_q_open(f, &c->q, sql, true, width ? 1 : 0, &arg)) {
		fsck_fail(f, "buckets", fsck_raw_err(f));
		return false;
	}
	c->rc = fsck_q_step(&c->q);
	return true;
}

static void buckets_check(struct fsck *f)
{
	/* The bucket of a record: floor(book_us / width), as the store keeps it. */
	static const char q_rec[] =
		"SELECT institution, project, member, (book_us - ((book_us % ?1) + ?1) % ?1) / ?1, "
		"charge_micro FROM usage_records ORDER BY 1, 2, 3, 4";
	static const char q_bk[] =
		"SELECT institution, project, member, bucket, charge FROM usage_buckets "
		"ORDER BY 1, 2, 3, 4";
	struct cursor r, s;
	if (!cursor_open(f, &r, q_rec, LEDGER_BUCKET_US))
		return;
	if (!cursor_open(f, &s, q_bk, 0)) {
		fsck_q_close(&r.q);
		return;
	}
	struct bkey rk, sk;
	int64_t rsum = 0, ssum = 0, nr, ns;
	bool rover = false, sover = false;
	int hr = cursor_group(&r, &rk, &rsum, &rover, &nr);
	int hs = cursor_group(&s, &sk, &ssum, &sover, &ns);
	char where[3 * FSCK_KEY_MAX + 64], mb[MONEY_FMT_MAX];
	while (hr > 0 || hs > 0) {
		int c = hr <= 0 ? 1 : hs <= 0 ? -1 : key_cmp(&rk, &sk);
		f->checks++;
		if (c < 0) {
			key_where(&rk, where, sizeof where);
			fsck_bad(f, "bucket row missing", where, "none",
				 rover ? "overflow" : money_format(rsum, mb));
		} else if (c > 0) {
			key_where(&sk, where, sizeof where);
			fsck_bad(f, "bucket row without records", where, money_format(ssum, mb), "none");
		} else if (rover) {
			key_where(&rk, where, sizeof where);
			fsck_bad(f, "bucket sum overflows int64", where, money_format(ssum, mb),
				 "overflow");
		} else if (ssum != rsum) {
			key_where(&rk, where, sizeof where);
			fsck_bad_money(f, "bucket", where, ssum, rsum);
		}
		if (c <= 0)
			hr = cursor_group(&r, &rk, &rsum, &rover, &nr);
		if (c >= 0)
			hs = cursor_group(&s, &sk, &ssum, &sover, &ns);
	}
	if (hr < 0 || hs < 0)
		fsck_fail(f, "buckets", fsck_raw_err(f));
	fsck_q_close(&r.q);
	fsck_q_close(&s.q);
}

/* ---- report totals per member -------------------------------------------------- */

/* key without its qualifying prefix "PREFIX/" (report keys are qualified:
 * project "epfl/climate", member "epfl/climate/alice@epfl.ch", or
 * "epfl/climate" itself for usage without a member). */
static const char *unqualified(const char *key, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(key, prefix, n) != 0)
		return key; /* not as the report writes it: compared as it is */
	if (key[n] == '\0')
		return "";
	return key[n] == '/' ? key + n + 1 : key;
}

/* The report's rows, their keys unqualified. */
struct report_rows {
	struct report_group {
		struct bkey k;
		int64_t charge, records;
	} *g;
	size_t n, cap;
	bool oom;
};

static void report_group_row(void *ctx, const struct ledger_report_row *row)
{
	struct report_rows *rr = ctx;
	if (rr->n == rr->cap) {
		size_t cap = rr->cap ? 2 * rr->cap : 64;
		struct report_group *g = realloc(rr->g, cap * sizeof *g);
		if (!g) {
			rr->oom = true;
			return;
		}
		rr->g = g;
		rr->cap = cap;
	}
	struct report_group *g = &rr->g[rr->n++];
	char qual[2 * FSCK_KEY_MAX + 2];
	snprintf(g->k.inst, sizeof g->k.inst, "%s", row->group[0]);
	snprintf(g->k.proj, sizeof g->k.proj, "%s", unqualified(row->group[1], g->k.inst));
	snprintf(qual, sizeof qual, "%s/%s", g->k.inst, g->k.proj);
	snprintf(g->k.member, sizeof g->k.member, "%s", unqualified(row->group[2], qual));
	g->k.bucket = 0;
	g->charge = row->charge;
	g->records = row->records;
}

/* The store's report grouped by (institution, project, member) over all
 * time, row by row against the records' sums in the same order. */
void fsck_report_check(struct fsck *f)
{
	static const char *const groups[] = {"institution", "project", "member"};
	static const char q_rec[] =
		"SELECT institution, project, member, 0, charge_micro FROM usage_records "
		"ORDER BY 1, 2, 3";
	struct ledger_filter flt = {0};
	struct report_rows rows = {.g = NULL};
	if (store_ledger_report_rows(f->st, &flt, groups, 3, false, report_group_row, &rows) ||
	    rows.oom) {
		fsck_fail(f, "report", rows.oom ? "out of memory" : f->st->errmsg);
		free(rows.g);
		return;
	}
	struct cursor r;
	if (!cursor_open(f, &r, q_rec, 0)) {
		free(rows.g);
		return;
	}
	struct bkey rk;
	int64_t rsum = 0, nr = 0;
	bool rover = false;
	int hr = cursor_group(&r, &rk, &rsum, &rover, &nr);
	size_t i = 0, n = rows.n;
	char where[3 * FSCK_KEY_MAX + 16], a[MONEY_FMT_MAX], b[MONEY_FMT_MAX];
	while (hr > 0 || i < n) {
		const struct report_group *g = i < n ? &rows.g[i] : NULL;
		int c = hr <= 0 ? 1 : !g ? -1 : key_cmp(&rk, &g->k);
		const struct bkey *k = c < 0 ? &rk : &g->k;
		snprintf(where, sizeof where, "%s/%s/%s (all time)", k->inst, k->proj, k->member);
		int64_t charge = g ? g->charge : 0, recs = g ? g->records : 0;
		f->checks++;
		if (c < 0)
			fsck_bad(f, "report row missing", where, "none",
				 rover ? "overflow" : money_format(rsum, a));
		else if (c > 0)
			fsck_bad(f, "report row without records", where, money_format(charge, b), "none");
		else if (rover)
			fsck_bad(f, "record sum overflows int64", where, money_format(charge, b), "overflow");
		else if (charge != rsum)
			fsck_bad_money(f, "report total", where, charge, rsum);
		else if (recs != nr)
			fsck_bad_int(f, "report records", where, recs, nr);
		if (c <= 0)
			hr = cursor_group(&r, &rk, &rsum, &rover, &nr);
		if (c >= 0)
			i++;
	}
	if (hr < 0)
		fsck_fail(f, "report", fsck_raw_err(f));
	fsck_q_close(&r.q);
	free(rows.g);
}

/* ---- column types, uniqueness, SQLite's own check ------------------------------ */

static void types_check(struct fsck *f)
{
	/* Every amount, quantity, instant and index is an integer: a REAL
	 * would mean floating point touched a balance. */
	static const struct {
		const char *table, *column;
		bool nullable;
	} cols[] = {
		{"usage_records", "quantity", false},    {"usage_records", "start_us", false},
		{"usage_records", "end_us", false},      {"usage_records", "received_us", false},
		{"usage_records", "book_us", false},     {"usage_records", "late", false},
		{"usage_records", "charter_version", false},
		{"usage_records", "rate_micro", false},  {"usage_records", "charge_micro", false},
		{"usage_records", "overage", false},     {"usage_records", "seq", true},
		{"usage_records", "leaf_index", true},   {"usage_buckets", "bucket", false},
		{"usage_buckets", "charge", false},      {"charters", "version", false},
		{"charters", "applied_at", false},       {"charters", "effective", false},
		{"audit_log", "at", false},              {"tlog_leaves", "idx", false},
		{"tlog_leaves", "ref", false},           {"tlog_nodes", "level", false},
		{"tlog_nodes", "idx", false},            {"tlog_backfill", "ref", false},
		{"tlog_backfill", "idx", false},
	};
	for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
		char sql[256], where[128];
		/* identifiers from the table above, never from input */
		snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE typeof(%s) <> 'integer'%s%s",
			 cols[i].table, cols[i].column, cols[i].nullable ? " AND " : "",
			 cols[i].nullable ? cols[i].column : "");
		if (cols[i].nullable)
			snprintf(sql + strlen(sql), sizeof sql - strlen(sql), " IS NOT NULL");
		snprintf(where, sizeof where, "%s.%s", cols[i].table, cols[i].column);
		struct fsck_q q;
		if (!fsck_q_open(f, &q, sql, false, 0, NULL) || fsck_q_step(&q) != 1) {
			fsck_fail(f, where, fsck_raw_err(f));
			fsck_q_close(&q);
			continue;
		}
		int64_t n = fsck_q_i64(&q, 0);
		fsck_q_close(&q);
		f->checks++;
		if (n)
			fsck_bad_int(f, "rows not of type integer", where, n, 0);
	}
}

/* Each (provider, record_id) is decided once: one ledger row, or one
 * rejection (migration 0013), never both. */
static void unique_check(struct fsck *f)
{
	/* NOT INDEXED: count the rows themselves, not the index that should
	 * make duplicates impossible. */
	static const struct {
		const char *what, *sql;
	} q1[] = {
		{"records with one (provider, record_id)",
		 "SELECT provider, record_id, count(*) FROM usage_records NOT INDEXED "
		 "GROUP BY provider, record_id HAVING count(*) > 1 ORDER BY 1, 2"},
		{"records both booked and rejected",
		 "SELECT j.provider, j.record_id, 2 FROM usage_rejections j JOIN usage_records u "
		 "ON u.provider = j.provider AND u.record_id = j.record_id ORDER BY 1, 2"},
	};
	/* PostgreSQL has no NOT INDEXED: index scans are off for these reads. */
	static const char pg_off[] = "SET LOCAL enable_indexscan = off; "
				     "SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_bitmapscan = off";
	static const char pg_on[] = "SET LOCAL enable_indexscan = on; "
				    "SET LOCAL enable_indexonlyscan = on; SET LOCAL enable_bitmapscan = on";
	if (fsck_raw_is_pg(f) && !fsck_raw_exec(f, pg_off)) {
		fsck_fail(f, q1[0].what, fsck_raw_err(f));
		return;
	}
	for (size_t i = 0; i < sizeof q1 / sizeof q1[0]; i++) {
		struct fsck_q q;
		if (!fsck_q_open(f, &q, q1[i].sql, true, 0, NULL)) {
			fsck_fail(f, q1[i].what, fsck_raw_err(f));
			continue;
		}
		int rc;
		f->checks++;
		while ((rc = fsck_q_step(&q)) == 1) {
			char where[2 * FSCK_KEY_MAX];
			const char *p = fsck_q_text(&q, 0), *r = fsck_q_text(&q, 1);
			snprintf(where, sizeof where, "%s/%s", p ? p : "", r ? r : "");
			fsck_bad_int(f, q1[i].what, where, fsck_q_i64(&q, 2), 1);
		}
		if (rc != 0)
			fsck_fail(f, q1[i].what, fsck_raw_err(f));
		fsck_q_close(&q);
	}
	if (fsck_raw_is_pg(f) && !fsck_raw_exec(f, pg_on))
		fsck_fail(f, q1[0].what, fsck_raw_err(f));
}

static void quick_check(struct fsck *f)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(f->raw, "PRAGMA quick_check", -1, &q, NULL) != SQLITE_OK) {
		fsck_fail(f, "sqlite quick_check", sqlite3_errmsg(f->raw));
		return;
	}
	int rc;
	f->checks++;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(q, 0);
		if (t && strcmp(t, "ok") != 0)
			fsck_bad(f, "sqlite quick_check", "database", t, "ok");
	}
	if (rc != SQLITE_DONE)
		fsck_fail(f, "sqlite quick_check", sqlite3_errmsg(f->raw));
	sqlite3_finalize(q);
}

void fsck_rows_check(struct fsck *f)
{
	if (!fsck_raw_is_pg(f)) {
		quick_check(f);
		types_check(f);
	}
	unique_check(f);
	buckets_check(f);
	fsck_report_check(f);
	fsck_guards_check(f);
}
