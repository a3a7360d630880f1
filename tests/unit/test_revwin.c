/* test_revwin.c — the window of token revocations a node still has to read
 * (gate/revwin.h): the watermark moves past ids read in order; an id
 * missing below a larger one read (a transaction that commits late) keeps
 * the watermark below it until it is read or the overlap has passed; gaps
 * split and close in any order; a poll never reads again what lies below
 * the watermark; a gap that cannot be kept for want of memory keeps the
 * watermark where it was (linked with -Wl,--wrap=realloc, Makefile). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "gate/revwin.h"

#define S 1000000LL
#define OVER (60 * S)

/* realloc, failing while fail_realloc is set (every call of the program's
 * goes through here: -Wl,--wrap=realloc) */
static bool fail_realloc;
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n)
{
	return fail_realloc ? NULL : __real_realloc(p, n);
}

/* One poll at now that read ids[0..n). */
static void poll(struct revwin *w, const int64_t *ids, size_t n, int64_t now)
{
	for (size_t i = 0; i < n; i++)
		revwin_seen(w, ids[i], now);
	revwin_close(w, now, OVER);
}

static void test_in_order(void **state)
{
	(void)state;
	struct revwin w;
	revwin_init(&w);
	assert_int_equal(revwin_after(&w), 0);
	poll(&w, (int64_t[]){1, 2, 3}, 3, 10 * S);
	assert_int_equal(revwin_after(&w), 3);
	poll(&w, NULL, 0, 11 * S);
	assert_int_equal(revwin_after(&w), 3);
	poll(&w, (int64_t[]){4}, 1, 12 * S);
	assert_int_equal(revwin_after(&w), 4);
	/* an id at or below the watermark changes nothing */
	poll(&w, (int64_t[]){2}, 1, 13 * S);
	assert_int_equal(revwin_after(&w), 4);
	assert_int_equal(w.ngap, 0);
	revwin_free(&w);
}

static void test_late_commit(void **state)
{
	(void)state;
	struct revwin w;
	revwin_init(&w);
	poll(&w, (int64_t[]){1, 2}, 2, 10 * S);
	/* 3 and 4 in flight; 5 committed first: read from 2 again */
	poll(&w, (int64_t[]){5}, 1, 11 * S);
	assert_int_equal(revwin_after(&w), 2);
	/* 4 commits: 3 still missing */
	poll(&w, (int64_t[]){4, 5}, 2, 12 * S);
	assert_int_equal(revwin_after(&w), 2);
	/* 3 commits just before the overlap ends: read, the watermark passes 5 */
	poll(&w, (int64_t[]){3, 4, 5}, 3, 11 * S + OVER - 1);
	assert_int_equal(revwin_after(&w), 5);
	assert_int_equal(w.ngap, 0);
	revwin_free(&w);
}

static void test_split_and_give_up(void **state)
{
	(void)state;
	struct revwin w;
	revwin_init(&w);
	/* 1..9 missing, 10 read */
	poll(&w, (int64_t[]){10}, 1, 0);
	assert_int_equal(revwin_after(&w), 0);
	/* 5 fills the middle: 1..4 and 6..9 missing */
	poll(&w, (int64_t[]){5, 10}, 2, 1 * S);
	assert_int_equal(revwin_after(&w), 0);
	poll(&w, (int64_t[]){1, 2, 3, 4, 5, 10}, 6, 2 * S);
	assert_int_equal(revwin_after(&w), 5);
	/* 6, 8, 9 arrive; 7 was rolled back: kept until the overlap ends */
	poll(&w, (int64_t[]){6, 8, 9, 10, 11}, 5, 3 * S);
	assert_int_equal(revwin_after(&w), 6);
	poll(&w, (int64_t[]){8, 9, 10, 11}, 4, OVER - 1);
	assert_int_equal(revwin_after(&w), 6);
	/* the gap of 7 (first missed at 0) is given up at OVER */
	poll(&w, (int64_t[]){8, 9, 10, 11}, 4, OVER);
	assert_int_equal(revwin_after(&w), 11);
	assert_int_equal(w.ngap, 0);
	/* a new gap, younger: it keeps its own age */
	poll(&w, (int64_t[]){13}, 1, OVER + 5 * S);
	assert_int_equal(revwin_after(&w), 11);
	poll(&w, (int64_t[]){13}, 1, 2 * OVER + 4 * S);
	assert_int_equal(revwin_after(&w), 11);
	poll(&w, (int64_t[]){13}, 1, 2 * OVER + 5 * S);
	assert_int_equal(revwin_after(&w), 13);
	revwin_free(&w);
}

/* No memory for a gap: the poll's ids are not trusted past the watermark,
 * the next poll reads again from it and finds the gap anew. */
static void test_no_memory(void **state)
{
	(void)state;
	struct revwin w;
	revwin_init(&w);
	poll(&w, (int64_t[]){1, 2}, 2, 10 * S);
	assert_int_equal(revwin_after(&w), 2);
	fail_realloc = true;
	poll(&w, (int64_t[]){4, 5}, 2, 11 * S); /* 3 missing: no room to say so */
	fail_realloc = false;
	assert_int_equal(revwin_after(&w), 2);
	assert_int_equal(w.ngap, 0);
	assert_int_equal(w.high, 2);
	assert_false(w.oom);
	/* memory back: the same rows read again, the gap is kept this time */
	poll(&w, (int64_t[]){4, 5}, 2, 12 * S);
	assert_int_equal(revwin_after(&w), 2);
	assert_int_equal(w.ngap, 1);
	poll(&w, (int64_t[]){3, 4, 5}, 3, 13 * S);
	assert_int_equal(revwin_after(&w), 5);
	/* a split that cannot be kept (the second half of a gap) */
	poll(&w, (int64_t[]){9}, 1, 14 * S); /* 6..8 missing */
	for (int64_t i = 20; w.ngap < w.cap; i += 2) /* the gap array full */
		revwin_seen(&w, i, 14 * S);
	fail_realloc = true; /* the next gap needs more room */
	revwin_seen(&w, 7, 15 * S); /* splits 6..8 into 6 and 8 */
	revwin_close(&w, 15 * S, OVER);
	fail_realloc = false;
	assert_int_equal(revwin_after(&w), 5);
	assert_int_equal(w.ngap, 0);
	revwin_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_late_commit),
		cmocka_unit_test(test_split_and_give_up),
		cmocka_unit_test(test_no_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
