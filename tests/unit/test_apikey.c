/* test_apikey.c — API keys (auth/apikey.c): the secret's form, ids, the
 * stored hash, and authentication against a real store: every kind of
 * failure gives the same answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/apikey.h"
#include "common/timeutil.h"
#include "http/server.h"
#include "support/sqfx.h"

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

static void test_generate(void **state)
{
	(void)state;
	char s1[APIKEY_SECRET_MAX], s2[APIKEY_SECRET_MAX], id1[STORE_ID_MAX], id2[STORE_ID_MAX];
	uint8_t h1[32], h2[32], h[32];
	assert_int_equal(apikey_generate(s1, h1, id1), ALLOT_OK);
	assert_int_equal(apikey_generate(s2, h2, id2), ALLOT_OK);
	assert_int_equal(strlen(s1), APIKEY_SECRET_LEN);
	assert_memory_equal(s1, APIKEY_PREFIX, strlen(APIKEY_PREFIX));
	assert_true(all_hex(s1 + 6, 64));
	assert_int_equal(strncmp(id1, "key_", 4), 0);
	assert_int_equal(strlen(id1), 4 + 2 * APIKEY_ID_RANDOM_BYTES);
	assert_true(all_hex(id1 + 4, 2 * APIKEY_ID_RANDOM_BYTES));
	assert_string_not_equal(s1, s2);
	assert_string_not_equal(id1, id2);
	/* the hash is of the secret's text */
	apikey_hash(s1, strlen(s1), h);
	assert_memory_equal(h, h1, 32);
	assert_memory_not_equal(h1, h2, 32);
	/* the id does not depend on the secret: another id for another call */
	char id3[STORE_ID_MAX];
	assert_int_equal(apikey_random_id("adm_", id3), ALLOT_OK);
	assert_int_equal(strncmp(id3, "adm_", 4), 0);
}

static void test_sha256_hex(void **state)
{
	(void)state;
	char out[65];
	sha256_hex("abc", 3, out);
	assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("", 0, out);
	assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_roles(void **state)
{
	(void)state;
	const char *names[] = {"admin", "auditor", "institution", "provider"};
	for (size_t i = 0; i < 4; i++) {
		unsigned r = principal_role_parse(names[i]);
		assert_int_not_equal(r, 0);
		assert_string_equal(principal_role_name(r), names[i]);
	}
	assert_int_equal(principal_role_parse("member"), 0); /* tokens, not keys */
	assert_int_equal(principal_role_parse("Admin"), 0);
	assert_int_equal(principal_role_parse(""), 0);
	assert_string_equal(principal_role_name(ROLE_MEMBER), "member");
	assert_string_equal(principal_role_name(0), "none");
}

/* Stores a key of role (scope: institution or provider) and returns its secret. */
static void add_key(struct store *st, const char *role, const char *scope, char *secret,
		    char *id)
{
	struct api_key k = {0};
	assert_int_equal(apikey_generate(secret, k.secret_sha256, k.id), ALLOT_OK);
	snprintf(k.role, sizeof k.role, "%s", role);
	if (strcmp(role, "institution") == 0)
		snprintf(k.institution, sizeof k.institution, "%s", scope);
	if (strcmp(role, "provider") == 0)
		snprintf(k.provider, sizeof k.provider, "%s", scope);
	snprintf(k.label, sizeof k.label, "unit");
	snprintf(k.created_by, sizeof k.created_by, "unit");
	k.created_at = time_now_us();
	struct audit_entry a = {.at = k.created_at, .actor = "unit", .action = "key.create",
				.target = k.id};
	assert_int_equal(store_key_insert(st, &k, &a), ALLOT_OK);
	strcpy(id, k.id);
}

static void test_authenticate(void **state)
{
	struct sqfx *f = *state;
	char inst[APIKEY_SECRET_MAX], prov[APIKEY_SECRET_MAX], iid[STORE_ID_MAX], pid[STORE_ID_MAX];
	add_key(f->st, "institution", "ethz", inst, iid);
	add_key(f->st, "provider", "cscs", prov, pid);
	struct principal p;
	assert_int_equal(apikey_authenticate(f->st, inst, strlen(inst), &p), ALLOT_OK);
	assert_int_equal(p.role, ROLE_INSTITUTION);
	assert_string_equal(p.key_id, iid);
	assert_string_equal(p.institution, "ethz");
	assert_string_equal(p.provider, "");
	assert_int_equal(p.max_credits, -1);
	assert_int_equal(apikey_authenticate(f->st, prov, strlen(prov), &p), ALLOT_OK);
	assert_int_equal(p.role, ROLE_PROVIDER);
	assert_string_equal(p.provider, "cscs");

	/* wrong, truncated, extended, malformed and empty secrets: one answer */
	char bad[APIKEY_SECRET_MAX + 8];
	snprintf(bad, sizeof bad, "%s", inst);
	bad[10] = bad[10] == '0' ? '1' : '0';
	assert_int_equal(apikey_authenticate(f->st, bad, strlen(bad), &p), ALLOT_E_UNAUTHORIZED);
	assert_int_equal(apikey_authenticate(f->st, inst, strlen(inst) - 1, &p),
			 ALLOT_E_UNAUTHORIZED);
	snprintf(bad, sizeof bad, "%sx", inst);
	assert_int_equal(apikey_authenticate(f->st, bad, strlen(bad), &p), ALLOT_E_UNAUTHORIZED);
	assert_int_equal(apikey_authenticate(f->st, "nonsense", 8, &p), ALLOT_E_UNAUTHORIZED);
	assert_int_equal(apikey_authenticate(f->st, "", 0, &p), ALLOT_E_UNAUTHORIZED);

	/* revoked: refused, the other key unaffected */
	struct audit_entry a = {.at = time_now_us(), .actor = "unit", .action = "key.revoke",
				.target = iid};
	assert_int_equal(store_key_revoke(f->st, iid, a.at, &a), ALLOT_OK);
	assert_int_equal(apikey_authenticate(f->st, inst, strlen(inst), &p), ALLOT_E_UNAUTHORIZED);
	assert_int_equal(apikey_authenticate(f->st, prov, strlen(prov), &p), ALLOT_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_sha256_hex),
		cmocka_unit_test(test_roles),
		cmocka_unit_test_setup_teardown(test_authenticate, sqfx_setup, sqfx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
