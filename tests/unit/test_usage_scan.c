/* test_usage_scan.c — the usage scanner (gate/usage_scan.c) against
 * jansson, which is what the gate used before and still uses when the
 * scanner is unsure.
 *
 *   - a table of replies: usage found, absent, unusable (negative, too
 *     large, real, string, not an object), repeated keys (the last wins),
 *     nested "usage" (not top-level), and the forms the scanner leaves to
 *     jansson (\u escapes, non-ASCII, fractions, long integers, syntax
 *     errors, deep nesting);
 *   - 200,000 random replies, half of them mutated (bytes flipped, cut,
 *     inserted, repeated): whenever the scanner answers, it answers what
 *     jansson does, and it answers for most unmutated replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "gate/upstream.h"
#include "gate/usage_scan.h"
#include "support/xorshift.h"

/* 1 if the scanner answered (and agreed), 0 if unsure; fails on a
 * disagreement. */
static int check_one(const char *text, size_t len)
{
	int p = -1, c = -1, rp = -1, rc = -1;
	enum usage_scan r = usage_scan(text, len, &p, &c);
	bool want = upstream_usage_parse(text, len, &rp, &rc);
	int up = -1, uc = -1;
	bool got = upstream_usage_from_json(text, len, &up, &uc);
	if (got != want || (want && (up != rp || uc != rc)))
		fail_msg("upstream_usage_from_json differs from jansson on %.*s", (int)len, text);
	if (r == USAGE_SCAN_UNSURE)
		return 0;
	if ((r == USAGE_SCAN_FOUND) != want || (want && (p != rp || c != rc)))
		fail_msg("scanner says %d (%d, %d), jansson %d (%d, %d) on %.*s", (int)r, p, c,
			 (int)want, rp, rc, (int)len, text);
	return 1;
}

static void test_table(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		enum usage_scan want;
		int p, c;
	} cases[] = {
		{"{\"id\":\"x\",\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}",
		 USAGE_SCAN_FOUND, 5, 1},
		{" {\"usage\" : { \"completion_tokens\" : 0 , \"prompt_tokens\" : 1073741823 } }\n",
		 USAGE_SCAN_FOUND, 1073741823, 0},
		{"{\"usage\":{\"prompt_tokens\":-0,\"completion_tokens\":3}}", USAGE_SCAN_FOUND, 0, 3},
		{"{\"choices\":[{\"text\":\"a \\\"usage\\\": {}\\n\",\"usage\":{\"prompt_tokens\":9,"
		 "\"completion_tokens\":9}}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":4}}",
		 USAGE_SCAN_FOUND, 2, 4},
		{"{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"usage\":{\"prompt_tokens\":3,"
		 "\"completion_tokens\":4}}", USAGE_SCAN_FOUND, 3, 4},
		{"{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"prompt_tokens\":7}}",
		 USAGE_SCAN_FOUND, 7, 2},
		{"{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"usage\":null}",
		 USAGE_SCAN_NONE, 0, 0},
		{"{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"prompt_tokens\":\"7\"}}",
		 USAGE_SCAN_NONE, 0, 0},
		{"{\"usage\":{\"prompt_tokens\":-1,\"completion_tokens\":2}}", USAGE_SCAN_NONE, 0, 0},
		{"{\"usage\":{\"prompt_tokens\":1073741824,\"completion_tokens\":2}}", USAGE_SCAN_NONE, 0, 0},
		{"{\"usage\":{\"prompt_tokens\":1}}", USAGE_SCAN_NONE, 0, 0},
		{"{\"usage\":[1,2]}", USAGE_SCAN_NONE, 0, 0},
		{"{\"choices\":[{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}]}",
		 USAGE_SCAN_NONE, 0, 0},
		{"{}", USAGE_SCAN_NONE, 0, 0},
		{"{\"a\":[true,false,null,[],{},\"\",0,-12]}", USAGE_SCAN_NONE, 0, 0},
		/* left to jansson */
		{"{\"us\\u0061ge\":{\"prompt_tokens\":1,\"completion_tokens\":2}}", USAGE_SCAN_UNSURE, 0, 0},
		{"{\"usage\":{\"prompt_tokens\":1.0,\"completion_tokens\":2}}", USAGE_SCAN_UNSURE, 0, 0},
		{"{\"usage\":{\"prompt_tokens\":1e2,\"completion_tokens\":2}}", USAGE_SCAN_UNSURE, 0, 0},
		{"{\"usage\":{\"prompt_tokens\":1234567890123456789,\"completion_tokens\":2}}",
		 USAGE_SCAN_UNSURE, 0, 0},
		{"{\"text\":\"caf\xc3\xa9\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}",
		 USAGE_SCAN_UNSURE, 0, 0},
		{"{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}} x", USAGE_SCAN_UNSURE, 0, 0},
		{"{\"usage\":{\"prompt_tokens\":01,\"completion_tokens\":2}}", USAGE_SCAN_UNSURE, 0, 0},
		{"{\"a\":1,}", USAGE_SCAN_UNSURE, 0, 0},
		{"[{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}]", USAGE_SCAN_UNSURE, 0, 0},
		{"", USAGE_SCAN_UNSURE, 0, 0},
		{"{\"a\":\"\\x\"}", USAGE_SCAN_UNSURE, 0, 0},
		{"{\"a\":\"tab\there\"}", USAGE_SCAN_UNSURE, 0, 0},
		{"{\"a\":tru}", USAGE_SCAN_UNSURE, 0, 0},
	};
	size_t n = sizeof cases / sizeof cases[0];
	for (size_t i = 0; i < n; i++) {
		int p = -1, c = -1;
		enum usage_scan r = usage_scan(cases[i].text, strlen(cases[i].text), &p, &c);
		if (r != cases[i].want || (r == USAGE_SCAN_FOUND && (p != cases[i].p || c != cases[i].c)))
			fail_msg("case %zu: got %d (%d, %d) for %s", i, (int)r, p, c, cases[i].text);
		check_one(cases[i].text, strlen(cases[i].text));
	}
	/* nesting: 32 levels are read, 33 are left to jansson */
	struct buf b = BUF_INIT;
	for (int depth = 31; depth <= 33; depth++) {
		buf_reset(&b);
		buf_puts(&b, "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"a\":");
		for (int i = 1; i < depth; i++)
			buf_puts(&b, "[");
		for (int i = 1; i < depth; i++)
			buf_puts(&b, "]");
		buf_puts(&b, "}");
		int p, c;
		enum usage_scan r = usage_scan(b.data, b.len, &p, &c);
		assert_int_equal(r, depth <= 32 ? USAGE_SCAN_FOUND : USAGE_SCAN_UNSURE);
		check_one(b.data, b.len);
	}
	buf_release(&b);
	print_message("usage scan: %zu table cases\n", n + 3);
}

/* ---- random replies ------------------------------------------------------------- */

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) { return xorshift64(&rng); }
static unsigned pick(unsigned n) { return (unsigned)(rnd() % n); }

static const char *const keys[] = {"usage", "prompt_tokens", "completion_tokens", "total_tokens",
				   "choices", "id", "text", "", "u", "usage ", "Usage"};

static void gen_value(struct buf *b, int depth);

static void gen_string(struct buf *b)
{
	static const char *const parts[] = {"a", " ", "usage", "\\\"", "\\\\", "\\n", "\\/", "\\t",
					    "\\u0041", "\xc3\xa9", "{", "}", ":", ","};
	buf_putc(b, '"');
	for (unsigned n = pick(6); n; n--)
		buf_puts(b, parts[pick(pick(16) ? 8 : sizeof parts / sizeof parts[0])]);
	buf_putc(b, '"');
}

static void gen_number(struct buf *b)
{
	switch (pick(16)) {
	case 0:
		buf_printf(b, "-%u", pick(100));
		break;
	case 1:
		buf_printf(b, "%llu", (unsigned long long)(rnd() >> pick(64)));
		break;
	case 2:
		buf_printf(b, "%u.%u", pick(10), pick(100));
		break;
	case 3:
		buf_printf(b, "%ue%d", pick(10), (int)pick(5));
		break;
	case 4:
		buf_printf(b, "%u", (1u << 30) - 1 + pick(3));
		break;
	default:
		buf_printf(b, "%u", pick(5000));
	}
}

static void gen_object(struct buf *b, int depth, bool top)
{
	buf_putc(b, '{');
	unsigned n = pick(top ? 6 : 4);
	bool usage = top && pick(4);
	for (unsigned i = 0; i < n + usage; i++) {
		if (i)
			buf_puts(b, pick(4) ? "," : " , ");
		if (usage && i == n) {
			/* mostly well-formed: both counts, then extras */
			buf_printf(b, "\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%u",
				   pick(3000), pick(3000));
			for (unsigned m = pick(3), k = 0; k < m; k++) {
				buf_printf(b, ",\"%s\":", keys[pick(4)]);
				if (pick(4))
					gen_number(b);
				else
					gen_value(b, depth + 1);
			}
			buf_putc(b, '}');
			continue;
		}
		buf_printf(b, "\"%s\":", keys[pick(sizeof keys / sizeof keys[0])]);
		gen_value(b, depth + 1);
	}
	buf_putc(b, '}');
}

static void gen_value(struct buf *b, int depth)
{
	switch (depth > 5 ? 3 + pick(4) : pick(8)) {
	case 0:
	case 1:
		gen_object(b, depth, false);
		break;
	case 2:
		buf_putc(b, '[');
		for (unsigned n = pick(4), i = 0; i < n; i++) {
			if (i)
				buf_putc(b, ',');
			gen_value(b, depth + 1);
		}
		buf_putc(b, ']');
		break;
	case 3:
		gen_string(b);
		break;
	case 4:
		buf_puts(b, (const char *[]){"true", "false", "null"}[pick(3)]);
		break;
	default:
		gen_number(b);
	}
}

static void mutate(struct buf *b)
{
	if (!b->len)
		return;
	size_t at = pick((unsigned)b->len);
	static const char junk[] = "{}[]\",:-0123456789e.\\ tfnu\x80";
	switch (pick(4)) {
	case 0:
		b->data[at] = junk[pick(sizeof junk - 1)];
		break;
	case 1:
		b->len = at;
		break;
	case 2:
		buf_append(b, b->data + at, b->len - at > 20 ? 20 : b->len - at);
		break;
	default:
		memmove(b->data + at, b->data + at + 1, b->len - at - 1);
		b->len--;
	}
}

static void test_random(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	size_t n = 200000, answered = 0, plain = 0, plain_answered = 0, found = 0;
	for (size_t i = 0; i < n; i++) {
		buf_reset(&b);
		gen_object(&b, 0, true);
		bool mutated = i % 2;
		if (mutated)
			for (unsigned k = 1 + pick(3); k; k--)
				mutate(&b);
		int p, c;
		int a = check_one(b.data ? b.data : "", b.len);
		answered += (size_t)a;
		if (!mutated) {
			plain++;
			plain_answered += (size_t)a;
		}
		found += a && usage_scan(b.data, b.len, &p, &c) == USAGE_SCAN_FOUND;
	}
	buf_release(&b);
	print_message("usage scan: %zu random replies; the scanner answered %zu (%zu with usage), "
		      "%zu of the %zu unmutated\n", n, answered, found, plain_answered, plain);
	assert_true(found > n / 20);
	assert_true(plain_answered > plain / 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
