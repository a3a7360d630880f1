/* test_record.c — the usage record's schema, canonical bytes and signature,
 * including the worked example of docs/LEDGER.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/b64.h"
#include "crypto/ed25519.h"
#include "ledger/record.h"
#include "support/xorshift.h"

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

/* ---- the direct encoder and the text path against jansson ----------------------- */

static uint64_t rng = 0x1234567887654321ULL;
static uint64_t rnd(void) { return xorshift64(&rng); }
static size_t pick(size_t n) { return (size_t)(rnd() % n); }

/* The canonical form as it was first written: a copy without sig and nulls,
 * dumped by jansson with sorted keys. */
static char *canonical_reference(const json_t *obj)
{
	json_t *copy = json_object();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		if (strcmp(k, "sig") == 0 || json_is_null(v))
			continue;
		json_object_set(copy, k, v);
	}
	char *s = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	return s;
}

/* JSON text of a value for a field: mostly good, sometimes anything. */
static const char *const good_ids[] = {"cscs", "epfl", "climate", "alice@epfl.ch",
				       "gpu_seconds", "h100", "job-88213", "m1", "r.1_2:3"};
static const char *const odd_strings[] = {
	"\"\"", "\"a b\"", "\"a/b\"", "\"caf\u00c3\u00a9\"", "\"caf\\u00e9\"", "\"q\\\"uote\"",
	"\"back\\\\slash\"", "\"tab\\there\"", "\"nl\\n\"", "\"ctl\\u0001\"", "\"del\x7f\"",
	"\"\\ud83d\\ude00\"", "\"\\/slash\"", "\"\xe2\x82\xac\"", "null", "true", "false", "5",
	"-0", "1.5", "1e3", "12345678901234567890", "[]", "[1,\"a\"]", "{}", "{\"a\":1}",
	"\"2026-12-03T10:00:00Z\""};
static const char *const good_times[] = {
	"2026-12-03T10:00:00Z", "2026-12-03T12:00:00Z", "2026-12-03T11:00:00.5Z",
	"2026-12-03T11:30:00+01:00", "2026-12-03T09:59:59.999999Z", "2026-12-03t10:00:00z",
	"2026-12-03 10:00:00Z"};

static void put_ws(struct buf *b)
{
	static const char *const w[] = {"", "", "", " ", "\n", " \t ", "\r\n"};
	buf_puts(b, w[pick(7)]);
}

/* A record's text: fields in random order; mode 0 mostly valid plain
 * records, mode 1 anything. */
static void gen_record(struct buf *b, int mode)
{
	static const char *const names[] = {
		"record_id", "provider", "seq", "institution", "project", "member", "resource",
		"class", "model", "quantity", "start", "end", "kind", "adjustment", "supersedes",
		"sig"};
	size_t order[20], n = 0;
	for (size_t i = 0; i < 16; i++)
		order[n++] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = pick(i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	buf_putc(b, '{');
	bool first = true;
	char v[256];
	for (size_t x = 0; x < n; x++) {
		size_t f = order[x];
		bool bad = mode == 1 && pick(6) == 0;
		bool optional = f == 2 || f == 5 || f == 7 || f == 8 || f == 12 || f == 13 || f == 14;
		if (!bad && optional && pick(3) == 0)
			continue; /* absent */
		if (!bad && f == 13)
			continue; /* adjustment only with an adjustment, below */
		if (!bad && f == 14)
			continue;
		if (bad && pick(10) == 0)
			continue; /* a required one missing */
		if (bad) {
			snprintf(v, sizeof v, "%s", odd_strings[pick(sizeof odd_strings / sizeof *odd_strings)]);
		} else if (f == 2) {
			snprintf(v, sizeof v, "%llu", (unsigned long long)(rnd() % 1000000000000ULL));
		} else if (f == 9) {
			snprintf(v, sizeof v, "%llu", (unsigned long long)(1 + rnd() % 1000000000000ULL));
		} else if (f == 10 || f == 11) {
			snprintf(v, sizeof v, "\"%s\"", good_times[f == 10 ? 0 : 1 + pick(4)]);
		} else if (f == 12) {
			snprintf(v, sizeof v, "\"usage\"");
		} else if (f == 15) {
			uint8_t sig[64];
			for (size_t i = 0; i < 64; i++)
				sig[i] = (uint8_t)rnd();
			v[0] = '"';
			size_t m = b64_encode(sig, 64, v + 1);
			v[1 + m] = '"';
			v[2 + m] = '\0';
		} else if (pick(12) == 0 && optional) {
			snprintf(v, sizeof v, "null");
		} else {
			snprintf(v, sizeof v, "\"%s\"", good_ids[pick(sizeof good_ids / sizeof *good_ids)]);
		}
		if (!first)
			buf_putc(b, ',');
		first = false;
		put_ws(b);
		buf_printf(b, "\"%s\"", names[f]);
		put_ws(b);
		buf_putc(b, ':');
		put_ws(b);
		buf_puts(b, v);
		put_ws(b);
	}
	if (mode == 1 && pick(8) == 0) {
		/* a repeated key, or one that is not a field */
		buf_printf(b, "%s\"%s\":\"x\"", first ? "" : ",", pick(2) ? names[pick(16)] : "colour");
	}
	buf_putc(b, '}');
}

static void assert_same_record(const struct usage_record *a, const struct usage_record *b)
{
	assert_string_equal(a->record_id, b->record_id);
	assert_string_equal(a->provider, b->provider);
	assert_int_equal(a->has_seq, b->has_seq);
	assert_int_equal(a->seq, b->seq);
	assert_string_equal(a->institution, b->institution);
	assert_string_equal(a->project, b->project);
	assert_string_equal(a->member, b->member);
	assert_string_equal(a->resource, b->resource);
	assert_string_equal(a->cls, b->cls);
	assert_string_equal(a->model, b->model);
	assert_int_equal(a->quantity, b->quantity);
	assert_int_equal(a->start_us, b->start_us);
	assert_int_equal(a->end_us, b->end_us);
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->adjustment, b->adjustment);
	assert_string_equal(a->supersedes, b->supersedes);
	assert_int_equal(a->has_sig, b->has_sig);
	assert_memory_equal(a->sig, b->sig, 64);
	assert_int_equal(a->canonical_len, b->canonical_len);
	if (a->canonical_len)
		assert_memory_equal(a->canonical, b->canonical, a->canonical_len);
	assert_memory_equal(a->sha256, b->sha256, 32);
}

/* record_canonical (written directly) against jansson's dump, over random
 * objects with escapes, non-ASCII text, nulls, nesting and sig. */
static void test_canonical_random(void **state)
{
	(void)state;
	static const char *const keys[] = {"record_id", "sig", "b", "a", "ab", "a\\u00e9",
					   "\\u00e9", "Z", "quote\\\"", "x\\ny", "\\u0001k", "z"};
	size_t cases = 0;
	for (int it = 0; it < 20000; it++) {
		struct buf b = BUF_INIT;
		if (it % 2) {
			gen_record(&b, 1);
		} else {
			buf_putc(&b, '{');
			size_t nk = pick(8);
			for (size_t k = 0; k < nk; k++)
				buf_printf(&b, "%s\"%s%d\":%s", k ? "," : "", keys[pick(12)], (int)k,
					   odd_strings[pick(sizeof odd_strings / sizeof *odd_strings)]);
			buf_putc(&b, '}');
		}
		json_t *j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
		buf_release(&b);
		if (!json_is_object(j)) {
			json_decref(j);
			continue;
		}
		size_t n = 0;
		char *mine = record_canonical(j, &n), *ref = canonical_reference(j);
		assert_non_null(mine);
		assert_non_null(ref);
		assert_string_equal(mine, ref);
		assert_int_equal(n, strlen(ref));
		free(mine);
		free(ref);
		json_decref(j);
		cases++;
	}
	assert_true(cases > 15000);
	print_message("canonical: %zu random objects equal to jansson's dump\n", cases);
}

/* record_parse_text against jansson + record_parse on the same text. */
static void test_parse_text_random(void **state)
{
	(void)state;
	size_t plain_ok = 0, plain_bad = 0, fallback = 0;
	for (int it = 0; it < 30000; it++) {
		struct buf b = BUF_INIT;
		int mode = it % 3 == 0 ? 0 : 1;
		buf_puts(&b, "[ ");
		size_t at = b.len;
		gen_record(&b, mode);
		size_t rec_end = b.len;
		buf_puts(&b, " ]");
		bool require_sig = pick(2);
		const char *p = b.data + at;
		struct usage_record t, j;
		char rt[320] = "", rj[320] = "";
		bool plain;
		allot_err et = record_parse_text(&p, b.data + b.len, require_sig, &t, &plain, rt,
						 sizeof rt);
		json_t *obj = json_loadb(b.data + at, rec_end - at, JSON_REJECT_DUPLICATES, NULL);
		if (!plain) {
			assert_true(p == b.data + at);
			fallback++;
		} else {
			/* what plain text says is exactly what jansson reads */
			assert_non_null(obj);
			assert_true(p == b.data + rec_end);
			allot_err ej = record_parse(obj, require_sig, &j, rj, sizeof rj);
			assert_int_equal(et, ej);
			if (et) {
				assert_string_equal(rt, rj);
				plain_bad++;
			} else {
				assert_same_record(&t, &j);
				char *ref = canonical_reference(obj);
				assert_int_equal(t.canonical_len, strlen(ref));
				assert_memory_equal(t.canonical, ref, t.canonical_len);
				free(ref);
				plain_ok++;
			}
			record_release(&j);
		}
		if (mode == 0 && !plain)
			fail_msg("a plain record took the jansson path: %s", b.data);
		record_release(&t);
		json_decref(obj);
		buf_release(&b);
	}
	assert_true(plain_ok > 5000 && plain_bad > 5000 && fallback > 1000);
	print_message("parse text: %zu accepted and %zu rejected the same as record_parse, "
		      "%zu left to jansson\n", plain_ok, plain_bad, fallback);
}

/* record_seal (the gate's settlements: canonical bytes written straight
 * from the struct) against the jansson reference it replaced,
 * record_canonical(record_to_json(r)), over random checked records, and on
 * the worked example. */
static void test_seal_random(void **state)
{
	(void)state;
	size_t cases = 0;
	for (int it = 0; it < 20000; it++) {
		struct buf b = BUF_INIT;
		gen_record(&b, 0);
		const char *p = b.data;
		struct usage_record r;
		char reason[320];
		bool plain;
		allot_err e = record_parse_text(&p, b.data + b.len, false, &r, &plain, reason,
						sizeof reason);
		buf_release(&b);
		if (e || !plain) {
			record_release(&r);
			continue;
		}
		json_t *j = record_to_json(&r);
		size_t reflen = 0;
		char *ref = record_canonical(j, &reflen);
		json_decref(j);
		assert_non_null(ref);
		uint8_t refsha[32];
		record_sha256(ref, reflen, refsha);
		assert_int_equal(record_seal(&r), ALLOT_OK);
		assert_int_equal(r.canonical_len, reflen);
		assert_memory_equal(r.canonical, ref, reflen);
		assert_memory_equal(r.sha256, refsha, 32);
		free(ref);
		record_release(&r);
		cases++;
	}
	assert_true(cases > 5000);
	/* the worked example: its times are already in the sealed form */
	json_t *ex = load(example);
	struct usage_record r;
	char reason[320];
	assert_int_equal(record_parse(ex, false, &r, reason, sizeof reason), ALLOT_OK);
	json_decref(ex);
	assert_int_equal(record_seal(&r), ALLOT_OK);
	assert_int_equal(r.canonical_len, strlen(example_canonical));
	assert_memory_equal(r.canonical, example_canonical, r.canonical_len);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", r.sha256[i]);
	assert_string_equal(hex, example_sha256);
	record_release(&r);
	print_message("seal: %zu random records sealed as the jansson reference, and the worked example\n",
		      cases);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical_example),
		cmocka_unit_test(test_sign_and_verify),
		cmocka_unit_test(test_schema_errors),
		cmocka_unit_test(test_canonical_random),
		cmocka_unit_test(test_parse_text_random),
		cmocka_unit_test(test_seal_random),
	};
	return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
