/* test_json.c — strict JSON bodies: JSONTestSuite's y_* accepted, n_*
 * rejected, i_* never crash (../shared/vectors/json), and allot's own rules:
 * duplicate keys, NUL bytes, nesting, field helpers. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/json.h"
#include "daemon/fileio.h"
#include "support/xorshift.h"

#define VECTORS "../shared/vectors/json"

static void test_vectors(void **state)
{
	(void)state;
	DIR *d = opendir(VECTORS);
	if (!d) {
		printf("json vectors: %s not found, skipped\n", VECTORS);
		skip();
	}
	struct dirent *de;
	int y = 0, n = 0, i = 0;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		size_t len = strlen(name);
		if (len < 6 || strcmp(name + len - 5, ".json") != 0)
			continue;
		char path[512], msg[256];
		snprintf(path, sizeof path, "%s/%s", VECTORS, name);
		char *data;
		size_t dlen;
		assert_int_equal(file_read_all(path, 1 << 20, &data, &dlen, msg, sizeof msg), ALLOT_OK);
		json_t *j = NULL;
		allot_err e = json_parse(data, dlen, true, &j, msg, sizeof msg);
		if (name[0] == 'y') {
			/* Valid JSON that allot's bodies refuse by policy: duplicate
			 * keys and NUL characters (SPEC section 4).  Only those. */
			bool policy = e != ALLOT_OK && (strstr(msg, "duplicate object key") ||
							strstr(msg, "NUL") || strstr(msg, "\\u0000"));
			if (e != ALLOT_OK && !policy)
				fail_msg("%s must parse: %s", name, msg);
			if (policy)
				printf("json vectors: %s refused by policy: %s\n", name, msg);
			y++;
		} else if (name[0] == 'n') {
			if (e == ALLOT_OK)
				fail_msg("%s must be rejected", name);
			n++;
		} else {
			i++; /* implementation-defined: either answer, no crash */
		}
		json_decref(j);
		free(data);
	}
	closedir(d);
	printf("json vectors: %d y_ accepted, %d n_ rejected, %d i_ survived\n", y, n, i);
	assert_true(y + n > 0);
}

static void test_allot_rules(void **state)
{
	(void)state;
	char msg[256];
	json_t *j = NULL;
	static const char dup[] = "{\"a\":1,\"a\":2}";
	assert_int_equal(json_parse(dup, sizeof dup - 1, false, &j, msg, sizeof msg), ALLOT_E_INVALID);
	static const char nul[] = "{\"a\":\"x\0y\"}";
	assert_int_equal(json_parse(nul, sizeof nul - 1, false, &j, msg, sizeof msg), ALLOT_E_INVALID);
	assert_string_equal(msg, "body contains a NUL byte");
	static const char esc_nul[] = "{\"a\":\"x\\u0000y\"}";
	assert_int_equal(json_parse(esc_nul, sizeof esc_nul - 1, false, &j, msg, sizeof msg), ALLOT_E_INVALID);
	static const char arr[] = "[1]";
	assert_int_equal(json_parse(arr, sizeof arr - 1, false, &j, msg, sizeof msg), ALLOT_E_INVALID);
	assert_string_equal(msg, "expected a JSON object");
	char deep[300];
	memset(deep, '[', 150);
	memset(deep + 150, ']', 150);
	assert_int_equal(json_parse(deep, 300, true, &j, msg, sizeof msg), ALLOT_E_INVALID);
	static const char ok[] = "{\"s\":\"x\",\"i\":5,\"b\":true,\"n\":null,\"f\":1.5}";
	assert_int_equal(json_parse(ok, sizeof ok - 1, false, &j, msg, sizeof msg), ALLOT_OK);
	static const char *const allowed[] = {"s", "i", "b", "n", "f", NULL};
	static const char *const fewer[] = {"s", NULL};
	assert_int_equal(json_only_fields(j, allowed, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(json_only_fields(j, fewer, msg, sizeof msg), ALLOT_E_INVALID);
	const char *s = NULL;
	int64_t i = 0;
	bool b = false;
	double f = 0;
	assert_int_equal(json_get_str(j, "s", true, &s, msg, sizeof msg), ALLOT_OK);
	assert_string_equal(s, "x");
	assert_int_equal(json_get_str(j, "i", true, &s, msg, sizeof msg), ALLOT_E_INVALID);
	assert_string_equal(msg, "field \"i\" must be a string");
	assert_int_equal(json_get_int(j, "i", true, 0, 4, &i, msg, sizeof msg), ALLOT_E_INVALID);
	assert_int_equal(json_get_int(j, "i", true, 0, 5, &i, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(i, 5);
	assert_int_equal(json_get_int(j, "f", true, 0, 5, &i, msg, sizeof msg), ALLOT_E_INVALID);
	assert_int_equal(json_get_bool(j, "b", true, &b, msg, sizeof msg), ALLOT_OK);
	assert_true(b);
	assert_int_equal(json_get_num(j, "f", true, 0, 1, &f, msg, sizeof msg), ALLOT_E_INVALID);
	assert_int_equal(json_get_str(j, "n", true, &s, msg, sizeof msg), ALLOT_E_INVALID);
	assert_string_equal(msg, "missing field \"n\"");
	assert_int_equal(json_get_str(j, "n", false, &s, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(json_get_str(j, "zz", true, &s, msg, sizeof msg), ALLOT_E_INVALID);
	json_decref(j);
}

/* buf_put_int (the canonical bytes, log leaves and answers write their
 * integers with it) writes what "%lld" writes, extremes included. */
static void test_buf_put_int(void **state)
{
	(void)state;
	int64_t fixed[] = {0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1};
	uint64_t x = 0x9E3779B97F4A7C15ull;
	struct buf b = BUF_INIT;
	size_t n = 0;
	for (size_t i = 0; i < 10000; i++, n++) {
		int64_t v;
		if (i < sizeof fixed / sizeof fixed[0]) {
			v = fixed[i];
		} else {
			xorshift64(&x);
			v = (int64_t)(x >> (x % 64));
			if (i % 2)
				v = -v;
		}
		char want[32];
		snprintf(want, sizeof want, "%lld", (long long)v);
		buf_reset(&b);
		buf_put_int(&b, v);
		assert_string_equal(buf_str(&b), want);
	}
	buf_release(&b);
	print_message("buf_put_int: %zu values\n", n);
}

/* buf_reserve: one allocation up front, the buffer still an empty string. */
static void test_buf_reserve(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_reserve(&b, 600);
	assert_non_null(b.data);
	assert_true(b.cap > 600);
	assert_string_equal(buf_str(&b), "");
	const char *before = b.data;
	for (int i = 0; i < 60; i++)
		buf_puts(&b, "0123456789");
	assert_ptr_equal(b.data, before); /* 600 bytes needed no second allocation */
	assert_int_equal(b.len, 600);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_buf_put_int),
		cmocka_unit_test(test_buf_reserve),
		cmocka_unit_test(test_allot_rules),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
