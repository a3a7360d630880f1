/* test_principal.c — roles of principals (auth/principal.c): names and
 * parsing, the role bit the HTTP layer checks, and who may read which
 * institution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "auth/principal.h"
#include "http/server.h"

static void test_names(void **state)
{
	(void)state;
	static const char *const keys[] = {"admin", "auditor", "institution", "provider"};
	unsigned seen = 0;
	for (size_t i = 0; i < 4; i++) {
		unsigned r = principal_role_parse(keys[i]);
		assert_int_not_equal(r, 0);
		assert_int_equal(r & (r - 1), 0); /* one bit */
		assert_int_equal(seen & r, 0);    /* a different one each */
		seen |= r;
		assert_string_equal(principal_role_name(r), keys[i]);
	}
	assert_int_equal(seen & ROLE_PUBLIC, 0);
	assert_int_equal(seen & ROLE_MEMBER, 0);
	assert_int_equal(principal_role_parse("member"), 0); /* tokens, not keys */
	assert_int_equal(principal_role_parse("public"), 0);
	assert_string_equal(principal_role_name(ROLE_MEMBER), "member");
	assert_string_equal(principal_role_name(ROLE_ADMIN | ROLE_AUDITOR), "none");
	/* the server's public bit is the one routes use */
	assert_int_equal(ROLE_PUBLIC, HTTP_ROUTE_PUBLIC);
}

static void test_role_of(void **state)
{
	(void)state;
	struct principal p;
	memset(&p, 0, sizeof p);
	assert_int_equal(principal_role_of(NULL), 0);
	p.role = ROLE_PROVIDER;
	assert_int_equal(principal_role_of(&p), ROLE_PROVIDER);
}

static void test_reads_institution(void **state)
{
	(void)state;
	struct principal p;
	memset(&p, 0, sizeof p);
	strcpy(p.institution, "epfl");
	static const struct {
		unsigned role;
		bool own, other;
	} cases[] = {
		{ROLE_ADMIN, true, true},         {ROLE_AUDITOR, true, true},
		{ROLE_INSTITUTION, true, false},  {ROLE_MEMBER, true, false},
		{ROLE_PROVIDER, false, false},    {ROLE_NONE, false, false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		p.role = cases[i].role;
		assert_int_equal(principal_reads_institution(&p, "epfl"), cases[i].own);
		assert_int_equal(principal_reads_institution(&p, "ethz"), cases[i].other);
		/* a prefix of the name is another institution */
		assert_false(p.role != ROLE_ADMIN && p.role != ROLE_AUDITOR &&
			     principal_reads_institution(&p, "epf"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_role_of),
		cmocka_unit_test(test_reads_institution),
	};
	return cmocka_run_group_tests_name("principal", tests, NULL, NULL);
}
