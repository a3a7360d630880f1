/* test_record.c — the usage record's schema, canonical bytes and signature,
 * including the worked example of docs/LEDGER.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto/b64.h"
#include "crypto/ed25519.h"
#include "ledger/record.h"

static const char example[] =
	"{\"record_id\":\"cscs-job-88213\",\"provider\":\"cscs\",\"seq\":1042,"
	"\"institution\":\"epfl\",\"project\":\"climate\",\"member\":\"alice@epfl.ch\","
	"\"resource\":\"gpu_seconds\",\"class\":\"h100\",\"model\":null,\"quantity\":7200,"
	"\"start\":\"2026-12-03T10:00:00Z\",\"end\":\"2026-12-03T12:00:00Z\","
	"\"kind\":\"usage\",\"supersedes\":null}";
static const char example_canonical[] =
	"{\"class\":\"h100\",\"end\":\"2026-12-03T12:00:00Z\",\"institution\":\"epfl\","
	"\"kind\":\"usage\",\"member\":\"alice@epfl.ch\",\"project\":\"climate\","
	"\"provider\":\"cscs\",\"quantity\":7200,\"record_id\":\"cscs-job-88213\","
	"\"resource\":\"gpu_seconds\",\"seq\":1042,\"start\":\"2026-12-03T10:00:00Z\"}";
static const char example_sha256[] =
	"d7b77bab58544ebbe0f02e27a27d677e49a532b6e89fed601c2b4b97bc9ae1b1";
/* RFC 8032 section 7.1, test 1: the key that signs the worked example. */
static const char rfc8032_seed[] =
	"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

static json_t *load(const char *s)
{
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	assert_non_null(j);
	return j;
}

static void test_canonical_example(void **state)
{
	(void)state;
	json_t *j = load(example);
	size_t n;
	char *c = record_canonical(j, &n);
	assert_string_equal(c, example_canonical);
	free(c);
	json_object_set_new(j, "sig", json_string("AAAA"));
	struct usage_record r;
	char reason[256];
	/* a bad signature encoding is refused by the schema check */
	assert_int_equal(record_parse(j, true, &r, reason, sizeof reason), ALLOT_E_INVALID);
	record_release(&r);
	json_decref(j);
}

static void test_sign_and_verify(void **state)
{
	(void)state;
	uint8_t seed[32];
	size_t n;
	assert_int_equal(hex_decode(rfc8032_seed, 64, seed, sizeof seed, &n), ALLOT_OK);
	struct ed25519_keypair kp;
	assert_int_equal(ed25519_from_seed(seed, &kp), ALLOT_OK);
	uint8_t sig[64];
	assert_int_equal(ed25519_sign(&kp, example_canonical, strlen(example_canonical), sig), ALLOT_OK);
	char sig64[96];
	sig64[b64_encode(sig, 64, sig64)] = '\0';
	/* Ed25519 is deterministic: the signature printed in docs/LEDGER.md */
	assert_string_equal(sig64, "I83fYSXNii48SU42BN7T4+3SIuaAiEhP9T6Mje6GMWIEH4BhKnlnsCXcFx+TuHc4HUlvNG/HzaUFrryqi1WxDg==");
	json_t *j = load(example);
	json_object_set_new(j, "sig", json_string(sig64));
	struct usage_record r;
	char reason[256] = "";
	assert_int_equal(record_parse(j, true, &r, reason, sizeof reason), ALLOT_OK);
	char hex[65];
	hex_encode(r.sha256, 32, hex);
	assert_string_equal(hex, example_sha256);
	assert_true(record_sig_ok(&r, kp.pub));
	/* every single-bit flip of the canonical bytes breaks the signature */
	for (size_t i = 0; i < r.canonical_len * 8; i += 7) {
		r.canonical[i / 8] ^= (char)(1u << (i % 8));
		assert_false(record_sig_ok(&r, kp.pub));
		r.canonical[i / 8] ^= (char)(1u << (i % 8));
	}
	struct ed25519_keypair other;
	assert_int_equal(ed25519_keygen(&other), ALLOT_OK);
	assert_false(record_sig_ok(&r, other.pub));
	record_release(&r);
	/* null-valued and absent fields are the same record */
	json_object_del(j, "model");
	json_object_del(j, "supersedes");
	assert_int_equal(record_parse(j, true, &r, reason, sizeof reason), ALLOT_OK);
	assert_true(record_sig_ok(&r, kp.pub));
	record_release(&r);
	json_decref(j);
}

static void test_schema_errors(void **state)
{
	(void)state;
	static const struct { const char *jq_like_field, *value, *want; } cases[] = {
		{"quantity", "0", "quantity"},
		{"quantity", "1.5", "quantity"},
		{"quantity", "\"7\"", "quantity"},
		{"quantity", "1000000000001", "quantity"},
		{"end", "\"2026-12-03T09:00:00Z\"", "before"},
		{"start", "\"tuesday\"", "RFC 3339"},
		{"kind", "\"refund\"", "kind"},
		{"supersedes", "\"x\"", "supersedes"},
		{"adjustment", "\"credit\"", "adjustment"},
		{"institution", "\"\"", "institution"},
		{"institution", "\"a b\"", "institution"},
		{"member", "5", "member"},
		{"record_id", "\"a\\u0001b\"", "control"},
		{"colour", "\"red\"", "unknown field"},
		{"seq", "-1", "seq"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *j = load(example);
		json_error_t je;
		json_t *v = json_loads(cases[i].value, JSON_DECODE_ANY, &je);
		assert_non_null(v);
		json_object_set_new(j, cases[i].jq_like_field, v);
		struct usage_record r;
		char reason[256] = "";
		assert_int_equal(record_parse(j, false, &r, reason, sizeof reason), ALLOT_E_INVALID);
		if (!strstr(reason, cases[i].want))
			fail_msg("case %zu (%s): reason \"%s\" lacks \"%s\"", i, cases[i].jq_like_field,
				 reason, cases[i].want);
		record_release(&r);
		json_decref(j);
	}
	json_t *j = load(example);
	struct usage_record r;
	char reason[256] = "";
	assert_int_equal(record_parse(j, true, &r, reason, sizeof reason), ALLOT_E_INVALID);
	assert_string_equal(reason, "missing field \"sig\"");
	record_release(&r);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical_example),
		cmocka_unit_test(test_sign_and_verify),
		cmocka_unit_test(test_schema_errors),
	};
	return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
