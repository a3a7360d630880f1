/* test_strmap.c — the string map (common/strmap.c): put, get, counts,
 * removal, clearing, stable value addresses, many collisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/strmap.h"

struct val {
	int64_t a, b;
};

static void test_basic(void **state)
{
	(void)state;
	assert_null(strmap_new(0, 8));
	assert_null(strmap_new(1000, 8)); /* not a power of two */
	struct strmap *m = strmap_new(16, sizeof(struct val));
	assert_non_null(m);
	assert_null(strmap_get(m, "a"));
	assert_int_equal(strmap_count(m), 0);
	struct val *v = strmap_put(m, "a");
	assert_non_null(v);
	assert_int_equal(v->a, 0); /* zeroed */
	v->a = 7;
	assert_ptr_equal(strmap_put(m, "a"), v); /* found, not added */
	assert_ptr_equal(strmap_get(m, "a"), v);
	assert_int_equal(strmap_count(m), 1);
	char key[8] = "b";
	struct val *w = strmap_put(m, key);
	w->a = 9;
	key[0] = 'z'; /* the map keeps its own copy */
	assert_null(strmap_get(m, "z"));
	assert_int_equal(((struct val *)strmap_get(m, "b"))->a, 9);
	assert_non_null(strmap_put(m, "")); /* the empty key is a key */
	assert_int_equal(strmap_count(m), 3);
	strmap_clear(m);
	assert_int_equal(strmap_count(m), 0);
	assert_null(strmap_get(m, "a"));
	strmap_free(m);
	strmap_free(NULL);
}

static bool drop_odd(void *ctx, const char *key, void *value)
{
	int *calls = ctx;
	(*calls)++;
	const struct val *v = value;
	return v->a % 2 != 0 && key[0] == 'k';
}

/* 2 buckets for 3,000 keys: long chains, values stay where they are. */
static void test_collisions_and_removal(void **state)
{
	(void)state;
	struct strmap *m = strmap_new(2, sizeof(struct val));
	struct val *ptrs[3000];
	char key[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		ptrs[i] = strmap_put(m, key);
		assert_non_null(ptrs[i]);
		ptrs[i]->a = i;
	}
	assert_int_equal(strmap_count(m), 3000);
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_ptr_equal(strmap_get(m, key), ptrs[i]);
	}
	int calls = 0;
	strmap_remove_if(m, drop_odd, &calls);
	assert_int_equal(calls, 3000);
	assert_int_equal(strmap_count(m), 1500);
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		struct val *v = strmap_get(m, key);
		if (i % 2) {
			assert_null(v);
		} else {
			assert_ptr_equal(v, ptrs[i]);
			assert_int_equal(v->a, i);
		}
	}
	strmap_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_collisions_and_removal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
