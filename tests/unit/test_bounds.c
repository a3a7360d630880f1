/* test_bounds.c — SPEC 2, "Bounds": no sum of the ledger's rows ever wraps.
 * The store refuses a row that would take its totals (positive charges,
 * quantities) past INT64_MAX, before writing anything, through commits,
 * savepoints, rollbacks and a reopen; the sum cache never holds a wrapped
 * sum; a reservation that would wrap is refused and changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "common/log.h"
#include "common/money.h"
#include "ledger/reserve.h"
#include "store/store.h"
#include "store/sumcache.h"

static const int64_t DAY = 86400LL * 1000000;

static void fill(struct ledger_row *row, int n, int64_t charge, int64_t quantity)
{
	memset(row, 0, sizeof *row);
	struct usage_record *r = &row->rec;
	snprintf(r->provider, sizeof r->provider, "prov");
	snprintf(r->record_id, sizeof r->record_id, "r%d", n);
	snprintf(r->institution, sizeof r->institution, "a");
	snprintf(r->project, sizeof r->project, "p");
	snprintf(r->resource, sizeof r->resource, "gpu_seconds");
	r->quantity = quantity;
	r->start_us = r->end_us = 1000000LL * (1 + n % 3);
	r->canonical = "{}";
	r->canonical_len = 2;
	row->book_us = r->end_us;
	row->charge_micro = charge;
	row->charter_version = 1;
}

static allot_err insert(struct store *st, int n, int64_t charge, int64_t quantity)
{
	struct ledger_row row;
	fill(&row, n, charge, quantity);
	return store_ledger_insert_q(st, &row);
}

/* One integer from the database file, read beside the store. */
static int64_t db_int(const char *path, const char *sql, const char *want_type)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	if (want_type)
		assert_string_equal((const char *)sqlite3_column_text(q, 1), want_type);
	int64_t v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/* The table's totals (up to its upto) and the rows after it. */
#define TOTAL_CHARGES \
	"SELECT b.charge_pos + (SELECT coalesce(sum(charge_micro) FILTER (WHERE charge_micro > 0), 0) " \
	"FROM usage_records WHERE id > b.upto), typeof(b.charge_pos) FROM ledger_bounds b"
#define TOTAL_QUANTITIES \
	"SELECT b.quantity + (SELECT coalesce(sum(quantity), 0) FROM usage_records " \
	"WHERE id > b.upto), typeof(b.quantity) FROM ledger_bounds b"

static struct store *open_store(const char *path)
{
	struct store *st = NULL;
	char msg[256] = "";
	if (store_open(path, &st, msg, sizeof msg))
		fail_msg("store_open: %s", msg);
	return st;
}

static void test_store_charges(void **state)
{
	(void)state;
	char dir[] = "/tmp/allot-bounds-XXXXXX", path[128], cmd[160];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/t.db", dir);
	struct store *st = open_store(path);
	/* nine charges of MONEY_MAX fit (9e18), a tenth does not: refused,
	 * and the batch's other rows, before and after it, are booked */
	int n = 0;
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	for (int i = 0; i < 9; i++)
		assert_int_equal(insert(st, n++, MONEY_MAX, 1), ALLOT_OK);
	assert_int_equal(insert(st, n++, MONEY_MAX, 1), ALLOT_E_TOO_LARGE);
	assert_non_null(strstr(st->errmsg, "total of charges"));
	assert_int_equal(insert(st, n++, -5, 1), ALLOT_OK); /* a negative charge adds nothing */
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	const struct ledger_level pool = {NULL, NULL, NULL};
	int64_t sum = 0;
	assert_int_equal(store_ledger_sum_q(st, &pool, 0, DAY, &sum), ALLOT_OK);
	assert_int_equal(sum, 9 * MONEY_MAX - 5);
	/* a savepoint rolled back gives its room back; a transaction too */
	const int64_t room = INT64_MAX - 9 * MONEY_MAX; /* 223372036854775807 */
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	assert_int_equal(insert(st, n++, room, 1), ALLOT_OK);
	assert_int_equal(insert(st, n++, 1, 1), ALLOT_E_TOO_LARGE);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_ROLLBACK), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	assert_int_equal(insert(st, n++, room - 1000, 1), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_RELEASE), ALLOT_OK);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	assert_int_equal(insert(st, n++, 1000, 1), ALLOT_OK);
	store_ledger_rollback(st);
	store_close(st);
	/* what is stored: integers only, and the bound as the rows give it */
	assert_int_equal(db_int(path, "SELECT count(*), 'integer' FROM usage_records", NULL), 11);
	assert_int_equal(db_int(path, TOTAL_CHARGES, "integer"), INT64_MAX - 1000);
	assert_int_equal(db_int(path, "SELECT sum(charge_micro) FILTER (WHERE charge_micro > 0), "
				"'integer' FROM usage_records", NULL), INT64_MAX - 1000);
	assert_int_equal(db_int(path, "SELECT count(*) FILTER (WHERE typeof(charge) != 'integer'), "
				"'integer' FROM usage_buckets", NULL), 0);
	/* reopened: the totals come from the table */
	st = open_store(path);
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	assert_int_equal(insert(st, n++, 1001, 1), ALLOT_E_TOO_LARGE);
	assert_int_equal(insert(st, n++, 1000, 1), ALLOT_OK);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	assert_int_equal(store_ledger_sum_q(st, &pool, 0, DAY, &sum), ALLOT_OK);
	assert_int_equal(sum, INT64_MAX - 5);
	store_close(st);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_store_quantities(void **state)
{
	(void)state;
	char dir[] = "/tmp/allot-bounds-XXXXXX", path[128], cmd[160];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/t.db", dir);
	struct store *st = open_store(path);
	store_close(st);
	/* as if 9.2e18 units had been booked */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE ledger_bounds SET quantity = 9223372036854775800",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	st = open_store(path);
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	assert_int_equal(insert(st, 1, 10, 8), ALLOT_E_TOO_LARGE);
	assert_non_null(strstr(st->errmsg, "total of quantities"));
	assert_int_equal(insert(st, 2, 10, 7), ALLOT_OK);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	store_close(st);
	assert_int_equal(db_int(path, TOTAL_QUANTITIES, "integer"), INT64_MAX);
	assert_int_equal(db_int(path, "SELECT count(*), 'integer' FROM usage_records", NULL), 1);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* The table is rewritten every 1024 rows; what came after it is counted
 * again when the store opens. */
static void test_store_cadence(void **state)
{
	(void)state;
	char dir[] = "/tmp/allot-bounds-XXXXXX", path[128], cmd[160];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/t.db", dir);
	struct store *st = open_store(path);
	int n = 0;
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	for (int i = 0; i < 1100; i++)
		assert_int_equal(insert(st, n++, 1, 2), ALLOT_OK);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(insert(st, n++, 1, 2), ALLOT_OK);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	store_close(st);
	assert_int_equal(db_int(path, "SELECT charge_pos, 'x' FROM ledger_bounds", NULL), 1100);
	assert_int_equal(db_int(path, "SELECT upto, 'x' FROM ledger_bounds", NULL), 1100);
	assert_int_equal(db_int(path, "SELECT quantity, 'x' FROM ledger_bounds", NULL), 2200);
	/* reopened: 1105 booked, so INT64_MAX - 1105 more fits and not one more */
	st = open_store(path);
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	assert_int_equal(insert(st, n++, INT64_MAX - 1104, 1), ALLOT_E_TOO_LARGE);
	assert_int_equal(insert(st, n++, INT64_MAX - 1105, 1), ALLOT_OK);
	assert_int_equal(insert(st, n++, 1, 1), ALLOT_E_TOO_LARGE);
	assert_int_equal(insert(st, n++, -1, 1), ALLOT_OK);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	store_close(st);
	assert_int_equal(db_int(path, TOTAL_CHARGES, "integer"), INT64_MAX);
	assert_int_equal(db_int(path, TOTAL_QUANTITIES, "integer"), 2212);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A cached range whose sum would wrap is forgotten, not wrapped. */
static void test_sumcache_overflow(void **state)
{
	(void)state;
	struct sumcache *c = sumcache_new();
	assert_non_null(c);
	int64_t big = INT64_MAX - 10, small = 7, v = 0;
	sumcache_put(c, NULL, NULL, NULL, 0, 100, &big);
	sumcache_put(c, "a", NULL, NULL, 0, 100, &small);
	sumcache_pending(c, "a", "p", "", 5, 100, 0);
	sumcache_commit(c);
	assert_false(sumcache_get(c, NULL, NULL, NULL, 0, 100, &v));
	assert_true(sumcache_get(c, "a", NULL, NULL, 0, 100, &v));
	assert_int_equal(v, 107);
	/* a held negative charge: the database's sum less it would wrap */
	sumcache_pending(c, "a", "p", "", 5, -100, 9);
	sumcache_commit(c);
	int64_t db = INT64_MAX - 10;
	sumcache_put(c, "a", "p", NULL, 0, 100, &db);
	assert_int_equal(db, INT64_MAX); /* saturated, and not cached */
	assert_false(sumcache_get(c, "a", "p", NULL, 0, 100, &v));
	sumcache_release(c, 9);
	assert_true(sumcache_get(c, "a", NULL, NULL, 0, 100, &v));
	assert_int_equal(v, 7);
	sumcache_free(c);
}

static void test_reserve_overflow(void **state)
{
	(void)state;
	struct reserve_table *t = reserve_new();
	assert_non_null(t);
	const char *ab[] = {"a", "b"}, *bc[] = {"b", "c"}, *cc[] = {"c", "c"};
	reserve_lock(t);
	assert_true(reserve_add_locked(t, ab, 2, INT64_MAX - 5));
	assert_false(reserve_add_locked(t, bc, 2, 6)); /* b would wrap: nothing changes */
	assert_int_equal(reserve_amount(t, "b"), INT64_MAX - 5);
	assert_int_equal(reserve_amount(t, "c"), 0);
	assert_int_equal(reserve_inflight(t, "b"), 1);
	assert_int_equal(reserve_inflight(t, "c"), 0);
	assert_true(reserve_add_locked(t, bc, 2, 5));
	assert_int_equal(reserve_amount(t, "b"), INT64_MAX);
	/* a key named twice counts twice, checked as such */
	assert_false(reserve_add_locked(t, cc, 2, INT64_MAX / 2 + 1));
	assert_int_equal(reserve_amount(t, "c"), 5);
	assert_false(reserve_add_locked(t, ab, 2, -1));
	reserve_unlock(t);
	reserve_release(t, bc, 2, 5);
	reserve_release(t, ab, 2, INT64_MAX - 5);
	assert_int_equal(reserve_amount(t, "b"), 0);
	assert_int_equal(reserve_inflight(t, "b"), 0);
	reserve_free(t);
}

int main(void)
{
	log_set_quiet(true);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_charges),
		cmocka_unit_test(test_store_quantities),
		cmocka_unit_test(test_store_cadence),
		cmocka_unit_test(test_sumcache_overflow),
		cmocka_unit_test(test_reserve_overflow),
	};
	return cmocka_run_group_tests_name("bounds", tests, NULL, NULL);
}
