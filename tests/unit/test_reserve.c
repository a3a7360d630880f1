/* test_reserve.c — the gate's reservation table (ledger/reserve.c): amounts
 * and in-flight counts per key, all-or-nothing adds, checked totals, holds
 * of queued settlements, and no lost update under concurrent callers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>

#include "ledger/reserve.h"

static void test_add_release(void **state)
{
	(void)state;
	struct reserve_table *t = reserve_new();
	assert_non_null(t);
	const char *keys[] = {"inst:a", "proj:a/p", "member:a/p/x"};
	assert_int_equal(reserve_amount(t, "inst:a"), 0);
	assert_int_equal(reserve_inflight(t, "inst:a"), 0);
	reserve_lock(t);
	assert_true(reserve_add_locked(t, keys, 3, 700));
	assert_true(reserve_add_locked(t, keys, 2, 300));
	reserve_unlock(t);
	assert_int_equal(reserve_amount(t, "inst:a"), 1000);
	assert_int_equal(reserve_amount(t, "proj:a/p"), 1000);
	assert_int_equal(reserve_amount(t, "member:a/p/x"), 700);
	assert_int_equal(reserve_inflight(t, "inst:a"), 2);
	assert_int_equal(reserve_inflight(t, "member:a/p/x"), 1);
	assert_int_equal(reserve_amount(t, "unknown"), 0);
	reserve_release(t, keys, 3, 700);
	assert_int_equal(reserve_amount(t, "inst:a"), 300);
	assert_int_equal(reserve_amount(t, "member:a/p/x"), 0);
	assert_int_equal(reserve_inflight(t, "inst:a"), 1);
	assert_int_equal(reserve_inflight(t, "member:a/p/x"), 0);
	reserve_release(t, keys, 2, 300);
	assert_int_equal(reserve_amount(t, "inst:a"), 0);
	assert_int_equal(reserve_inflight(t, "proj:a/p"), 0);
	reserve_free(t);
}

/* A total that would pass INT64_MAX is refused and changes nothing at any key. */
static void test_overflow_refused(void **state)
{
	(void)state;
	struct reserve_table *t = reserve_new();
	const char *keys[] = {"a", "b"};
	reserve_lock(t);
	assert_true(reserve_add_locked(t, keys + 1, 1, INT64_MAX - 10));
	assert_false(reserve_add_locked(t, keys, 2, 11));
	assert_int_equal(reserve_amount(t, "a"), 0);
	assert_int_equal(reserve_inflight(t, "a"), 0);
	assert_int_equal(reserve_amount(t, "b"), INT64_MAX - 10);
	assert_int_equal(reserve_inflight(t, "b"), 1);
	assert_true(reserve_add_locked(t, keys, 2, 10));
	reserve_unlock(t);
	assert_int_equal(reserve_amount(t, "b"), INT64_MAX);
	reserve_free(t);
}

/* A hold (a queued settlement's charge) counts in the amount, not as a
 * request in flight, and is removed with a negative hold. */
static void test_hold(void **state)
{
	(void)state;
	struct reserve_table *t = reserve_new();
	const char *keys[] = {"inst:a", "proj:a/p"};
	reserve_lock(t);
	assert_true(reserve_hold_locked(t, keys, 2, 250));
	reserve_unlock(t);
	assert_int_equal(reserve_amount(t, "proj:a/p"), 250);
	assert_int_equal(reserve_inflight(t, "proj:a/p"), 0);
	reserve_lock(t);
	assert_true(reserve_add_locked(t, keys, 1, 50));
	assert_true(reserve_hold_locked(t, keys, 2, -250));
	reserve_unlock(t);
	assert_int_equal(reserve_amount(t, "inst:a"), 50);
	assert_int_equal(reserve_amount(t, "proj:a/p"), 0);
	assert_int_equal(reserve_inflight(t, "inst:a"), 1);
	reserve_free(t);
}

/* Many keys (more than any fixed bucket count) stay distinct. */
static void test_many_keys(void **state)
{
	(void)state;
	struct reserve_table *t = reserve_new();
	char name[32];
	reserve_lock(t);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "member:i/p/%d", i);
		const char *k = name;
		assert_true(reserve_add_locked(t, &k, 1, i + 1));
	}
	reserve_unlock(t);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "member:i/p/%d", i);
		assert_int_equal(reserve_amount(t, name), i + 1);
		assert_int_equal(reserve_inflight(t, name), 1);
	}
	reserve_free(t);
}

#define THREADS 4
#define ROUNDS 2000

static void *worker(void *arg)
{
	struct reserve_table *t = arg;
	const char *keys[] = {"pool", "inst:a"};
	for (int i = 0; i < ROUNDS; i++) {
		reserve_lock(t);
		bool ok = reserve_add_locked(t, keys, 2, 3);
		reserve_unlock(t);
		if (ok)
			reserve_release(t, keys, 2, 3);
	}
	reserve_lock(t);
	bool ok = reserve_add_locked(t, keys, 2, 1);
	reserve_unlock(t);
	return ok ? NULL : (void *)1;
}

static void test_concurrent(void **state)
{
	(void)state;
	struct reserve_table *t = reserve_new();
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, t), 0);
	for (int i = 0; i < THREADS; i++) {
		void *r;
		pthread_join(th[i], &r);
		assert_null(r);
	}
	/* What each thread left: one request of 1 at each key. */
	assert_int_equal(reserve_amount(t, "pool"), THREADS);
	assert_int_equal(reserve_inflight(t, "pool"), THREADS);
	assert_int_equal(reserve_amount(t, "inst:a"), THREADS);
	reserve_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_release),
		cmocka_unit_test(test_overflow_refused),
		cmocka_unit_test(test_hold),
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_concurrent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
