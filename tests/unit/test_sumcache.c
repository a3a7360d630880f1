/* test_sumcache.c — the cached ledger sums stay equal to the database's
 * through commits, rollbacks and savepoint rollbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "store/store.h"

static const char *const insts[] = {"a", "b"};
static const char *const projs[] = {"p", "q"};
static const char *const members[] = {"", "x@a", "y@a"};

static void fill(struct ledger_row *row, int n)
{
	memset(row, 0, sizeof *row);
	struct usage_record *r = &row->rec;
	snprintf(r->provider, sizeof r->provider, "prov");
	snprintf(r->record_id, sizeof r->record_id, "r%d", n);
	snprintf(r->institution, sizeof r->institution, "%s", insts[rand() % 2]);
	snprintf(r->project, sizeof r->project, "%s", projs[rand() % 2]);
	snprintf(r->member, sizeof r->member, "%s", members[rand() % 3]);
	snprintf(r->resource, sizeof r->resource, "cpu");
	r->quantity = 1 + rand() % 100;
	r->start_us = r->end_us = 1000000LL * (rand() % 86400 * 3);
	r->canonical = "{}";
	r->canonical_len = 2;
	row->book_us = r->end_us;
	row->charge_micro = (rand() % 2000) - 300;
	row->charter_version = 1;
}

/* Sums over a few ranges and levels, through the store (cached or not). */
static void sums(struct store *st, int64_t out[64])
{
	int k = 0;
	const int64_t day = 86400LL * 1000000;
	for (int range = 0; range < 3; range++) {
		int64_t from = range * day, to = (range + 1) * day;
		struct ledger_level lv[] = {{NULL, NULL, NULL}, {"a", NULL, NULL}, {"b", "q", NULL},
					    {"a", "p", "x@a"}, {"b", "p", ""}};
		for (size_t i = 0; i < sizeof lv / sizeof lv[0]; i++)
			assert_int_equal(store_ledger_sum_q(st, &lv[i], from, to, &out[k++]), ALLOT_OK);
	}
}

static void test_cache_matches_db(void **state)
{
	(void)state;
	char dir[] = "/tmp/allot-sumcache-XXXXXX", path[128], msg[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/t.db", dir);
	struct store *st;
	assert_int_equal(store_open(path, &st, msg, sizeof msg), ALLOT_OK);
	srand(7);
	int64_t warm[64];
	sums(st, warm); /* fill the cache before any row */
	int n = 0;
	for (int tx = 0; tx < 60; tx++) {
		assert_int_equal(store_ledger_begin(st), ALLOT_OK);
		for (int item = 0; item < 3; item++) {
			assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
			for (int i = 0; i < 5; i++) {
				struct ledger_row row;
				fill(&row, n++);
				assert_int_equal(store_ledger_insert_q(st, &row), ALLOT_OK);
			}
			store_ledger_savepoint_q(st, rand() % 3 == 0 ? STORE_SP_ROLLBACK : STORE_SP_RELEASE);
		}
		if (tx % 5 == 4)
			store_ledger_rollback(st);
		else
			assert_int_equal(store_ledger_commit(st), ALLOT_OK);
		if (tx % 7 == 0)
			sums(st, warm); /* read (and cache) mid-way */
	}
	int64_t cached[64], fresh[64];
	sums(st, cached);
	store_close(st);
	assert_int_equal(store_open(path, &st, msg, sizeof msg), ALLOT_OK);
	sums(st, fresh); /* a new store: every sum from the database */
	store_close(st);
	for (int i = 0; i < 15; i++)
		assert_int_equal(cached[i], fresh[i]);
	printf("sumcache: %d rows, 15 sums equal to the database's\n", n);
	snprintf(msg, sizeof msg, "rm -rf %s", dir);
	assert_int_equal(system(msg), 0);
}

/* Held rows: in the database at commit, in the cached sums only after
 * release — also when the sum is first filled while they are held. */
static void test_hold_release(void **state)
{
	(void)state;
	char dir[] = "/tmp/allot-sumcache-XXXXXX", path[128], msg[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/t.db", dir);
	struct store *st;
	assert_int_equal(store_open(path, &st, msg, sizeof msg), ALLOT_OK);
	struct ledger_level inst = {"a", NULL, NULL}, pool = {NULL, NULL, NULL};
	const int64_t day = 86400LL * 1000000;
	int64_t before = 0, sum = -1;
	assert_int_equal(store_ledger_sum_q(st, &inst, 0, day, &before), ALLOT_OK);
	struct ledger_row row;
	fill(&row, 1);
	snprintf(row.rec.institution, sizeof row.rec.institution, "a");
	row.book_us = row.rec.end_us = 1000;
	row.rec.start_us = 0;
	row.charge_micro = 500;
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	store_ledger_hold(st, 42);
	assert_int_equal(store_ledger_insert_q(st, &row), ALLOT_OK);
	store_ledger_hold(st, 0);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	assert_int_equal(store_ledger_sum_q(st, &inst, 0, day, &sum), ALLOT_OK);
	assert_int_equal(sum, before);      /* cached: held out */
	assert_int_equal(store_ledger_sum_q(st, &pool, 0, day, &sum), ALLOT_OK);
	assert_int_equal(sum, 0);           /* filled from the database: held out */
	store_ledger_release(st, 42);
	assert_int_equal(store_ledger_sum_q(st, &inst, 0, day, &sum), ALLOT_OK);
	assert_int_equal(sum, before + 500);
	assert_int_equal(store_ledger_sum_q(st, &pool, 0, day, &sum), ALLOT_OK);
	assert_int_equal(sum, 500);
	store_close(st);
	snprintf(msg, sizeof msg, "rm -rf %s", dir);
	assert_int_equal(system(msg), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_matches_db),
		cmocka_unit_test(test_hold_release),
	};
	return cmocka_run_group_tests_name("sumcache", tests, NULL, NULL);
}
