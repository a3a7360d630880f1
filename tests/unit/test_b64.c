/* test_b64.c — base64, base64url and hex: RFC 4648 section 10 vectors,
 * round trips of every length, and strict rejection of non-canonical input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/b64.h"

static void test_rfc4648(void **state)
{
	(void)state;
	static const struct { const char *in, *std, *url; } cases[] = {
		{"", "", ""}, {"f", "Zg==", "Zg"}, {"fo", "Zm8=", "Zm8"},
		{"foo", "Zm9v", "Zm9v"}, {"foob", "Zm9vYg==", "Zm9vYg"},
		{"fooba", "Zm9vYmE=", "Zm9vYmE"}, {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
		{"\xfb\xff\xbf", "+/+/", "-_-_"},
	};
	char out[64];
	uint8_t dec[64];
	size_t n;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = strlen(cases[i].in);
		assert_int_equal(b64_encode(cases[i].in, len, out), strlen(cases[i].std));
		assert_string_equal(out, cases[i].std);
		assert_int_equal(b64_encoded_len(len), strlen(cases[i].std));
		assert_int_equal(b64url_encode(cases[i].in, len, out), strlen(cases[i].url));
		assert_string_equal(out, cases[i].url);
		assert_int_equal(b64url_encoded_len(len), strlen(cases[i].url));
		assert_int_equal(b64_decode(cases[i].std, strlen(cases[i].std), dec, sizeof dec, &n),
				 ALLOT_OK);
		assert_int_equal(n, len);
		assert_memory_equal(dec, cases[i].in, len);
		assert_int_equal(b64url_decode(cases[i].url, strlen(cases[i].url), dec, sizeof dec, &n),
				 ALLOT_OK);
		assert_int_equal(n, len);
		assert_memory_equal(dec, cases[i].in, len);
	}
}

static void test_roundtrip_all_lengths(void **state)
{
	(void)state;
	uint8_t in[200], dec[200];
	char enc[300];
	size_t n;

	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (uint8_t)(i * 151 + 7);
	for (size_t len = 0; len <= sizeof in; len++) {
		size_t el = b64_encode(in, len, enc);
		assert_true(b64_decoded_max(el) >= len);
		assert_int_equal(b64_decode(enc, el, dec, sizeof dec, &n), ALLOT_OK);
		assert_int_equal(n, len);
		assert_memory_equal(dec, in, len);
		el = b64url_encode(in, len, enc);
		assert_int_equal(b64url_decode(enc, el, dec, sizeof dec, &n), ALLOT_OK);
		assert_int_equal(n, len);
		assert_memory_equal(dec, in, len);
		/* Output buffer one byte short. */
		if (len) {
			assert_int_equal(b64url_decode(enc, el, dec, len - 1, &n), ALLOT_E_TOO_LARGE);
		}
	}
}

static void test_reject(void **state)
{
	(void)state;
	static const char *bad_std[] = {
		"Zg", "Zg=", "Zg===", "Z===", "=", "====", "Zm9v=", "Zh==", /* trailing bits */
		"Zm9=", "Zm8 ", " Zm8=", "Zm\n8=", "Zm8=Zm8=", "Zm-_", "Zm9v\0", "Z=g=", "Zg=a",
	};
	static const char *bad_url[] = {
		"Zg==", "Zg=", "Z", "Zh", "Zm9", "Zm+/", "Zm8\n", "Zm 8", "Zm9vY", "=", "Zg.",
	};
	uint8_t dec[64];
	size_t n = 12345;

	for (size_t i = 0; i < sizeof bad_std / sizeof bad_std[0]; i++) {
		size_t len = strlen(bad_std[i]);
		if (i == 14)
			len = 5; /* embedded NUL */
		assert_int_equal(b64_decode(bad_std[i], len, dec, sizeof dec, &n), ALLOT_E_INVALID);
	}
	for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++)
		assert_int_equal(b64url_decode(bad_url[i], strlen(bad_url[i]), dec, sizeof dec, &n),
				 ALLOT_E_INVALID);
	assert_int_equal(n, 12345);
	/* Every byte value that is not in the alphabet, in every position. */
	for (int c = 0; c < 256; c++) {
		char s[5] = "AAAA";
		int std_ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/';
		int url_ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '_';
		for (int pos = 0; pos < 4; pos++) {
			memcpy(s, "AAAA", 4);
			s[pos] = (char)c;
			allot_err e = b64_decode(s, 4, dec, sizeof dec, &n);
			if (c == '=' && pos == 3)
				continue; /* "AAA=" is valid padding */
			if (c == '=')
				assert_int_equal(e, ALLOT_E_INVALID);
			else
				assert_int_equal(e == ALLOT_OK, std_ok);
			assert_int_equal(b64url_decode(s, 4, dec, sizeof dec, &n) == ALLOT_OK, url_ok);
		}
	}
}

static void test_hex(void **state)
{
	(void)state;
	uint8_t in[] = {0x00, 0x01, 0xab, 0xff, 0x7f};
	uint8_t out[8];
	char s[16];
	size_t n;

	hex_encode(in, sizeof in, s);
	assert_string_equal(s, "0001abff7f");
	assert_int_equal(hex_decode("0001ABff7f", 10, out, sizeof out, &n), ALLOT_OK);
	assert_int_equal(n, 5);
	assert_memory_equal(out, in, 5);
	assert_int_equal(hex_decode("abc", 3, out, sizeof out, &n), ALLOT_E_INVALID);
	assert_int_equal(hex_decode("0g", 2, out, sizeof out, &n), ALLOT_E_INVALID);
	assert_int_equal(hex_decode(" 0", 2, out, sizeof out, &n), ALLOT_E_INVALID);
	assert_int_equal(hex_decode("00112233445566778899", 20, out, sizeof out, &n),
			 ALLOT_E_TOO_LARGE);
	assert_int_equal(hex_decode("", 0, out, sizeof out, &n), ALLOT_OK);
	assert_int_equal(n, 0);
}

/* The sortable digits: known values, the width, and order: at one width,
 * strcmp orders the strings as the numbers (random pairs and neighbours). */
static void test_sortable(void **state)
{
	(void)state;
	char a[12], b[12];
	assert_int_equal(b64sort_u64(0, 1, a), 1);
	assert_string_equal(a, "-");
	assert_int_equal(b64sort_u64(0, 6, a), 6);
	assert_string_equal(a, "------");
	b64sort_u64(1, 3, a);
	assert_string_equal(a, "--0");
	b64sort_u64(63, 1, a);
	assert_string_equal(a, "z");
	b64sort_u64(64, 1, a);
	assert_string_equal(a, "0-");
	b64sort_u64(UINT64_MAX, 1, a);
	assert_string_equal(a, "Ezzzzzzzzzz"); /* 4 bits, then 10 digits of 6 */
	assert_int_equal(b64sort_u64(1ull << 36, 6, a), 7); /* grows past the width */
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t u = x >> (i % 64), v = (i & 1) ? u + 1 : x >> ((i * 7) % 64);
		b64sort_u64(u, 11, a);
		b64sort_u64(v, 11, b);
		int c = strcmp(a, b);
		assert_true(u < v ? c < 0 : u > v ? c > 0 : c == 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648),
		cmocka_unit_test(test_roundtrip_all_lengths),
		cmocka_unit_test(test_reject),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_sortable),
	};
	return cmocka_run_group_tests_name("b64", tests, NULL, NULL);
}
