/* test_glease_cfg.c — the lease settings read at start (glease_config in
 * gate/glease.c; docs/POSTGRES.md, "In the node"): ALLOT_LEASE_BUSY,
 * ALLOT_LEASE_TTL_MS and ALLOT_LEASE_GRACE_MS unset or empty give the
 * defaults; integers in range are taken; anything else (letters, a sign
 * or unit after the digits, out of range, too long for int64) is refused
 * with a message naming the variable and the accepted range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/glease.h"

static void clear_env(void)
{
	unsetenv("ALLOT_LEASE_BUSY");
	unsetenv("ALLOT_LEASE_TTL_MS");
	unsetenv("ALLOT_LEASE_GRACE_MS");
}

static int reset(void **state)
{
	(void)state;
	clear_env();
	return 0;
}

static void test_defaults(void **state)
{
	(void)state;
	struct glease_cfg c;
	char msg[256] = "";
	assert_int_equal(glease_config(&c, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(c.busy, 50);
	assert_int_equal(c.ttl_us, 10 * 1000000LL);
	assert_int_equal(c.grace_us, 660 * 1000000LL);
	assert_int_equal(c.idle_us, 5 * 1000000LL);
	assert_int_equal(glease_grace_us(), 660 * 1000000LL);
	/* empty is unset */
	setenv("ALLOT_LEASE_BUSY", "", 1);
	setenv("ALLOT_LEASE_TTL_MS", "", 1);
	setenv("ALLOT_LEASE_GRACE_MS", "", 1);
	assert_int_equal(glease_config(&c, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(c.busy, 50);
	assert_int_equal(c.ttl_us, 10 * 1000000LL);
	assert_int_equal(c.grace_us, 660 * 1000000LL);
}

static void test_values(void **state)
{
	(void)state;
	struct glease_cfg c;
	char msg[256] = "";
	setenv("ALLOT_LEASE_BUSY", "0", 1);
	setenv("ALLOT_LEASE_TTL_MS", "200", 1);
	setenv("ALLOT_LEASE_GRACE_MS", "0", 1);
	assert_int_equal(glease_config(&c, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(c.busy, 0);
	assert_int_equal(c.ttl_us, 200000);
	assert_int_equal(c.grace_us, 0);
	assert_int_equal(glease_grace_us(), 0);
	setenv("ALLOT_LEASE_BUSY", "1000000", 1);
	setenv("ALLOT_LEASE_TTL_MS", "86400000", 1);
	setenv("ALLOT_LEASE_GRACE_MS", "1500", 1);
	assert_int_equal(glease_config(&c, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(c.busy, 1000000);
	assert_int_equal(c.ttl_us, 86400000LL * 1000);
	assert_int_equal(c.idle_us, 86400000LL * 500);
	assert_int_equal(c.grace_us, 1500000);
	assert_int_equal(glease_grace_us(), 1500000);
}

struct bad {
	const char *var, *val, *range;
};

static void test_refused(void **state)
{
	(void)state;
	static const struct bad bad[] = {
		{"ALLOT_LEASE_BUSY", "abc", "an integer from 0 to 1000000"},
		{"ALLOT_LEASE_BUSY", "-1", "an integer from 0 to 1000000"},
		{"ALLOT_LEASE_BUSY", "1000001", "an integer from 0 to 1000000"},
		{"ALLOT_LEASE_BUSY", "5x", "an integer from 0 to 1000000"},
		{"ALLOT_LEASE_BUSY", " ", "an integer from 0 to 1000000"},
		{"ALLOT_LEASE_TTL_MS", "199", "an integer from 200 to 86400000"},
		{"ALLOT_LEASE_TTL_MS", "3s", "an integer from 200 to 86400000"},
		{"ALLOT_LEASE_TTL_MS", "86400001", "an integer from 200 to 86400000"},
		{"ALLOT_LEASE_TTL_MS", "99999999999999999999", "an integer from 200 to 86400000"},
		{"ALLOT_LEASE_GRACE_MS", "-5", "an integer from 0 to 86400000"},
		{"ALLOT_LEASE_GRACE_MS", "1.5", "an integer from 0 to 86400000"},
		{"ALLOT_LEASE_GRACE_MS", "ten", "an integer from 0 to 86400000"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		clear_env();
		setenv(bad[i].var, bad[i].val, 1);
		struct glease_cfg c;
		char msg[256] = "", want[128];
		assert_int_equal(glease_config(&c, msg, sizeof msg), ALLOT_E_INVALID);
		snprintf(want, sizeof want, "%s=%s: expected ", bad[i].var, bad[i].val);
		if (strncmp(msg, want, strlen(want)) != 0 || !strstr(msg, bad[i].range))
			fail_msg("%s=%s: message \"%s\"", bad[i].var, bad[i].val, msg);
	}
	/* a bad grace: the sweeps (no glease open) use the default */
	clear_env();
	setenv("ALLOT_LEASE_GRACE_MS", "ten", 1);
	assert_int_equal(glease_grace_us(), 660 * 1000000LL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, reset),
		cmocka_unit_test_setup(test_values, reset),
		cmocka_unit_test_setup(test_refused, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
