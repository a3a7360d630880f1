/* test_vpool.c — the verification pool: every index of every loop exactly
 * once, from many callers at once, with and without pool threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/vpool.h"

struct loop {
	atomic_uchar *hits;
	atomic_size_t calls;
	size_t chunk;
	atomic_bool bad_range;
};

static void mark(void *arg, size_t from, size_t to)
{
	struct loop *l = arg;
	if (to <= from || to - from > l->chunk)
		l->bad_range = true;
	for (size_t i = from; i < to; i++)
		atomic_fetch_add(&l->hits[i], 1);
	atomic_fetch_add(&l->calls, 1);
}

static void run_one(struct vpool *p, size_t n, size_t chunk)
{
	struct loop l = {.hits = calloc(n ? n : 1, sizeof *l.hits), .chunk = chunk ? chunk : 1};
	assert_non_null(l.hits);
	vpool_run(p, n, chunk, mark, &l);
	for (size_t i = 0; i < n; i++)
		if (l.hits[i] != 1)
			fail_msg("n %zu chunk %zu: index %zu ran %d times", n, chunk, i, (int)l.hits[i]);
	assert_false(l.bad_range);
	size_t c = l.chunk;
	assert_int_equal(l.calls, n ? (n + c - 1) / c : 0);
	free(l.hits);
}

static void test_sizes(void **state)
{
	(void)state;
	static const size_t ns[] = {0, 1, 2, 31, 32, 33, 64, 1000, 10007};
	static const size_t chunks[] = {0, 1, 7, 32, 5000};
	struct vpool *pools[] = {NULL, vpool_new(1), vpool_new(0), vpool_new(4)};
	for (size_t p = 0; p < 4; p++) {
		if (p)
			assert_non_null(pools[p]);
		for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
			for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
				run_one(pools[p], ns[i], chunks[c]);
		vpool_free(pools[p]);
	}
}

struct caller {
	struct vpool *p;
	int rounds;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	for (int r = 0; r < c->rounds; r++)
		run_one(c->p, 500 + (size_t)r * 37, 1 + (size_t)r % 40);
	return NULL;
}

/* Eight callers share two pool threads. */
static void test_many_callers(void **state)
{
	(void)state;
	struct vpool *p = vpool_new(2);
	assert_non_null(p);
	pthread_t th[8];
	struct caller c = {p, 60};
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, caller_main, &c), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	vpool_free(p);
	print_message("vpool: 8 callers x %d loops on 2 pool threads\n", c.rounds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_many_callers),
	};
	return cmocka_run_group_tests_name("vpool", tests, NULL, NULL);
}
