/* fsck_guard.c — allotd --fsck on what guards the rows: the append-only
 * triggers present and firing (SQLite's per table and action, PostgreSQL's
 * <table>_append_only and <table>_no_truncate calling allot_append_only),
 * the amount columns of an integer type (PostgreSQL: SQLite's values are
 * checked row by row in fsck_rows.c), and ledger_bounds against the
 * records it totals (SPEC 2, "Bounds"). */
#include "daemon/fsck_int.h"

#include <stdio.h>
#include <string.h>

#include "common/money.h"

/* ---- append-only triggers ------------------------------------------------------ */

/* SQLite: each trigger by its name and table (migrations 0001..0013), its
 * body raising an abort. */
static const struct {
	const char *table, *name;
} sq_triggers[] = {
	{"charters", "charters_no_update"},
	{"charters", "charters_no_delete"},
	{"audit_log", "audit_no_update"},
	{"audit_log", "audit_no_delete"},
	{"usage_records", "usage_no_update"},
	{"usage_records", "usage_no_delete"},
	{"token_revocations", "revocations_no_delete"},
	{"tlog_leaves", "tlog_leaves_no_update"},
	{"tlog_leaves", "tlog_leaves_no_delete"},
	{"tlog_nodes", "tlog_nodes_no_update"},
	{"tlog_nodes", "tlog_nodes_no_delete"},
	{"tlog_backfill", "tlog_backfill_no_update"},
	{"tlog_backfill", "tlog_backfill_no_delete"},
	{"usage_rejections", "usage_rejections_no_update"},
	{"usage_rejections", "usage_rejections_no_delete"},
};

/* PostgreSQL: the tables allot_make_append_only guards (migration 0001). */
static const char *const pg_append_only[] = {
	"charters",    "audit_log",  "usage_records", "usage_rejections", "token_revocations",
	"tlog_leaves", "tlog_nodes", "tlog_backfill",
};

/* pg_trigger.tgtype bits: ROW 1, BEFORE 2, DELETE 8, UPDATE 16, TRUNCATE 32. */
#define PG_TG_ROW_UPDATE_DELETE 27
#define PG_TG_STMT_TRUNCATE 34

/* Counts the rows sql finds (one count(*) column): -1 on an error. */
static int64_t count_of(struct fsck *f, const char *sql, int n, const struct fsck_arg *args)
{
	struct fsck_q q;
	int64_t v = -1;
	if (fsck_q_open(f, &q, sql, false, n, args) && fsck_q_step(&q) == 1)
		v = fsck_q_i64(&q, 0);
	fsck_q_close(&q);
	return v;
}

/* One trigger: present (count 1), else reported. */
static void trigger_one(struct fsck *f, const char *sql, int n, const struct fsck_arg *args,
			const char *table, const char *name)
{
	char where[128];
	snprintf(where, sizeof where, "%s on %s", name, table);
	int64_t c = count_of(f, sql, n, args);
	if (c < 0) {
		fsck_fail(f, "append-only trigger", fsck_raw_err(f));
		return;
	}
	f->checks++;
	if (c != 1)
		fsck_bad(f, "append-only trigger", where, "missing", "present");
}

static void triggers_check(struct fsck *f)
{
	static const char q_sq[] =
		"SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?1 "
		"AND name = ?2 AND sql LIKE '%RAISE(ABORT%'";
	/* enabled in the origin role (O) or always (A): a disabled (D) or
	 * replica-only (R) trigger does not fire */
	static const char q_pg[] =
		"SELECT count(*) FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
		"WHERE t.tgrelid = to_regclass(?1) AND t.tgname = ?2 AND t.tgenabled IN ('O', 'A') "
		"AND (t.tgtype::int8 & ?3) = ?3 AND p.proname = 'allot_append_only'";
	static const char q_fn[] =
		"SELECT count(*) FROM pg_proc WHERE proname = 'allot_append_only' "
		"AND prosrc LIKE '%RAISE EXCEPTION%'";
	if (!fsck_raw_is_pg(f)) {
		for (size_t i = 0; i < sizeof sq_triggers / sizeof sq_triggers[0]; i++) {
			struct fsck_arg a[] = {{sq_triggers[i].table, 0}, {sq_triggers[i].name, 0}};
			trigger_one(f, q_sq, 2, a, sq_triggers[i].table, sq_triggers[i].name);
		}
		return;
	}
	for (size_t i = 0; i < sizeof pg_append_only / sizeof pg_append_only[0]; i++) {
		const char *t = pg_append_only[i];
		char rows[96], trunc[96];
		snprintf(rows, sizeof rows, "%s_append_only", t);
		snprintf(trunc, sizeof trunc, "%s_no_truncate", t);
		struct fsck_arg a[] = {{t, 0}, {rows, 0}, {NULL, PG_TG_ROW_UPDATE_DELETE}};
		trigger_one(f, q_pg, 3, a, t, rows);
		struct fsck_arg b[] = {{t, 0}, {trunc, 0}, {NULL, PG_TG_STMT_TRUNCATE}};
		trigger_one(f, q_pg, 3, b, t, trunc);
	}
	int64_t c = count_of(f, q_fn, 0, NULL);
	if (c < 0) {
		fsck_fail(f, "append-only function", fsck_raw_err(f));
		return;
	}
	f->checks++;
	if (c != 1)
		fsck_bad(f, "append-only function", "allot_append_only()", "does not raise", "raises");
}

/* ---- integer columns (PostgreSQL) ------------------------------------------------ */

/* Each amount, quantity, instant and index column is an integer type:
 * numeric, real or double precision would let a balance be fractional.
 * (late and overage are flags: booleans since migration 0009.) */
static void pg_types_check(struct fsck *f)
{
	static const char *const cols[][2] = {
		{"usage_records", "quantity"},      {"usage_records", "start_us"},
		{"usage_records", "end_us"},        {"usage_records", "received_us"},
		{"usage_records", "book_us"},       {"usage_records", "charter_version"},
		{"usage_records", "rate_micro"},    {"usage_records", "charge_micro"},
		{"usage_records", "seq"},           {"usage_records", "leaf_index"},
		{"usage_buckets", "bucket"},        {"usage_buckets", "charge"},
		{"ledger_bounds", "charge_pos"},    {"ledger_bounds", "quantity"},
		{"charters", "version"},            {"charters", "applied_at"},
		{"charters", "effective"},          {"audit_log", "at"},
		{"tlog_leaves", "idx"},             {"tlog_leaves", "ref"},
		{"tlog_nodes", "level"},            {"tlog_nodes", "idx"},
		{"tlog_backfill", "ref"},           {"tlog_backfill", "idx"},
		{"tlog_head", "size"},
	};
	static const char q[] =
		"SELECT data_type FROM information_schema.columns WHERE table_schema = "
		"current_schema() AND table_name = ?1 AND column_name = ?2";
	for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
		char where[96], type[64] = "";
		snprintf(where, sizeof where, "%s.%s", cols[i][0], cols[i][1]);
		struct fsck_arg a[] = {{cols[i][0], 0}, {cols[i][1], 0}};
		struct fsck_q r;
		int rc = fsck_q_open(f, &r, q, false, 2, a) ? fsck_q_step(&r) : -1;
		if (rc == 1)
			snprintf(type, sizeof type, "%s", fsck_q_text(&r, 0) ? fsck_q_text(&r, 0) : "");
		fsck_q_close(&r);
		if (rc < 0) {
			fsck_fail(f, where, fsck_raw_err(f));
			continue;
		}
		f->checks++;
		if (rc == 0)
			fsck_bad(f, "column", where, "missing", "an integer type");
		else if (strcmp(type, "bigint") != 0 && strcmp(type, "smallint") != 0 &&
			 strcmp(type, "integer") != 0)
			fsck_bad(f, "column not of an integer type", where, type, "an integer type");
	}
}

/* ---- ledger_bounds ---------------------------------------------------------------- */

/* The stored totals of positive charges and of quantities of the records
 * with id <= upto, recomputed from those records. */
static void bounds_check(struct fsck *f)
{
	static const char q_get[] = "SELECT charge_pos, quantity, upto FROM ledger_bounds WHERE id = 1";
	static const char q_rows[] = "SELECT charge_micro, quantity FROM usage_records WHERE id <= ?1";
	struct fsck_q q;
	int rc = fsck_q_open(f, &q, q_get, false, 0, NULL) ? fsck_q_step(&q) : -1;
	int64_t charge = 0, quantity = 0, upto = 0;
	if (rc == 1) {
		charge = fsck_q_i64(&q, 0);
		quantity = fsck_q_i64(&q, 1);
		upto = fsck_q_i64(&q, 2);
	}
	fsck_q_close(&q);
	if (rc != 1) {
		fsck_fail(f, "ledger bounds", rc == 0 ? "ledger_bounds has no row" : fsck_raw_err(f));
		return;
	}
	struct fsck_arg a = {NULL, upto};
	if (!fsck_q_open(f, &q, q_rows, true, 1, &a)) {
		fsck_fail(f, "ledger bounds", fsck_raw_err(f));
		return;
	}
	int64_t c = 0, n = 0;
	bool overflow = false;
	while ((rc = fsck_q_step(&q)) == 1) {
		int64_t v = fsck_q_i64(&q, 0);
		if (money_add(c, v > 0 ? v : 0, &c) || money_add(n, fsck_q_i64(&q, 1), &n))
			overflow = true;
	}
	fsck_q_close(&q);
	if (rc != 0) {
		fsck_fail(f, "ledger bounds", fsck_raw_err(f));
		return;
	}
	char where[64];
	snprintf(where, sizeof where, "records up to id %lld", (long long)upto);
	f->checks++;
	if (overflow) {
		fsck_bad(f, "ledger bounds overflow int64", where, "-", "overflow");
		return;
	}
	if (charge != c)
		fsck_bad_money(f, "ledger bounds positive charges", where, charge, c);
	f->checks++;
	if (quantity != n)
		fsck_bad_int(f, "ledger bounds quantities", where, quantity, n);
}

void fsck_guards_check(struct fsck *f)
{
	triggers_check(f);
	if (fsck_raw_is_pg(f))
		pg_types_check(f);
	bounds_check(f);
}
