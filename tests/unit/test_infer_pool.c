/* test_infer_pool.c — the inference thread pool: every item of a job runs
 * exactly once, in both job kinds (pool_run, pool_run_split), jobs of the
 * two kinds interleaved, a stalled thread's items taken by the others, and
 * pool_run_split's owners taking their ranges from the front, the others
 * from the back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "infer/pool.h"

#define MAX_ITEMS 5000

struct job {
	atomic_int count[MAX_ITEMS];
	int n_threads;
	int by[MAX_ITEMS];           /* the thread that ran each item */
	int stall_thread;            /* this thread sleeps on its first item; -1: none */
	atomic_int stalled;
};

static void item(void *ctx, int i, int thread)
{
	struct job *j = ctx;

	assert_true(i >= 0 && i < MAX_ITEMS);
	assert_true(thread >= 0 && thread < j->n_threads);
	if (thread == j->stall_thread && atomic_exchange(&j->stalled, 1) == 0) {
		struct timespec ts = {0, 20 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	j->by[i] = thread;
	atomic_fetch_add(&j->count[i], 1);
}

static void run_job(struct pool *p, struct job *j, bool split, int n, int stall)
{
	for (int i = 0; i < MAX_ITEMS; i++)
		atomic_store(&j->count[i], 0);
	j->stall_thread = stall;
	atomic_store(&j->stalled, 0);
	if (split)
		pool_run_split(p, item, j, n);
	else
		pool_run(p, item, j, n);
	for (int i = 0; i < MAX_ITEMS; i++)
		assert_int_equal(atomic_load(&j->count[i]), i < n ? 1 : 0);
}

static void test_every_item_once(void **state)
{
	static const int threads[] = {1, 2, 3, 4};
	static const int sizes[] = {0, 1, 2, 3, 7, 16, 100, 1001, MAX_ITEMS};
	struct job *j = calloc(1, sizeof *j);
	int jobs = 0;

	(void)state;
	assert_non_null(j);
	for (size_t a = 0; a < sizeof threads / sizeof *threads; a++) {
		struct pool *p = pool_new(threads[a]);

		assert_non_null(p);
		assert_int_equal(pool_threads(p), threads[a]);
		j->n_threads = threads[a];
		/* the kinds interleaved, so that stale words of one kind meet
		 * jobs of the other */
		for (int rep = 0; rep < 20; rep++)
			for (size_t b = 0; b < sizeof sizes / sizeof *sizes; b++) {
				run_job(p, j, (rep + b) % 2 == 0, sizes[b], -1);
				run_job(p, j, (rep + b) % 2 == 1, sizes[b], -1);
				jobs += 2;
			}
		pool_free(p);
	}
	printf("pool: %d jobs, every item exactly once\n", jobs);
	free(j);
}

/* A thread that stalls on its first item: the job still completes (its
 * range is taken from the back by the others), every item once. */
static void test_stalled_thread(void **state)
{
	struct job *j = calloc(1, sizeof *j);
	struct pool *p = pool_new(3);

	(void)state;
	assert_non_null(j);
	assert_non_null(p);
	j->n_threads = 3;
	for (int stall = 0; stall < 3; stall++) {
		run_job(p, j, true, 3000, stall);
		run_job(p, j, false, 3000, stall);
	}
	pool_free(p);
	free(j);
}

/* pool_run_split: in each thread's range, the items its owner ran are a
 * prefix (taken from the front), those the others took a suffix (from the
 * back); with a stalled owner, others did take some. */
static void check_ranges(const struct job *j, int n, int threads, int *stolen)
{
	for (int t = 0; t < threads; t++) {
		int lo = n * t / threads, hi = n * (t + 1) / threads, k = lo;

		while (k < hi && j->by[k] == t)
			k++;
		for (int i = k; i < hi; i++)
			assert_int_not_equal(j->by[i], t);
		*stolen += hi - k;
	}
}

static void test_split_ranges(void **state)
{
	struct job *j = calloc(1, sizeof *j);
	struct pool *p = pool_new(2);
	int stolen = 0;

	(void)state;
	assert_non_null(j);
	assert_non_null(p);
	j->n_threads = 2;
	for (int rep = 0; rep < 50; rep++) {
		run_job(p, j, true, 64 + rep, -1);
		check_ranges(j, 64 + rep, 2, &stolen);
	}
	stolen = 0;
	run_job(p, j, true, 200, 1);
	check_ranges(j, 200, 2, &stolen);
	assert_true(stolen > 0);
	pool_free(p);
	free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_item_once),
		cmocka_unit_test(test_stalled_thread),
		cmocka_unit_test(test_split_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
