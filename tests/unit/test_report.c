/* test_report.c — the pure parts of reports: CSV cells (common/csv.h:
 * RFC 4180 quoting, formula neutralising, numbers kept as numbers) and the
 * from/to bounds (api_time_bound: a date is the local midnight that starts
 * it in the charter's zone, as periods are; otherwise an RFC 3339 instant).
 * Expected instants come from zdump / Python's zoneinfo, as in
 * test_period.c; the bounds tests skip without tzdata. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "api/api.h"
#include "common/buf.h"
#include "common/csv.h"
#include "common/tz.h"
#include "support/tzfix.h"

static void test_csv_text(void **state)
{
	(void)state;
	static const struct { const char *in, *want; } cases[] = {
		{"", ""},
		{"plain", "plain"},
		{"epfl/climate/alice@epfl.ch", "epfl/climate/alice@epfl.ch"},
		{"a,b", "\"a,b\""},
		{"say \"hi\"", "\"say \"\"hi\"\"\""},
		{"two\nlines", "\"two\nlines\""},
		{"=1+1", "\"'=1+1\""},
		{"+2", "\"'+2\""},
		{"-3", "\"'-3\""},
		{"@SUM(A1)", "\"'@SUM(A1)\""},
		{"\tx", "\"'\tx\""},
		{"\rx", "\"'\rx\""},
		{"=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""},
		{"\xef\xbc\x9d" "1+1", "\"'\xef\xbc\x9d" "1+1\""},  /* full-width = */
		{"a=1", "a=1"},      /* only the first character matters */
		{"1-2", "1-2"},
		{" =1", " =1"},
		{"'=1", "'=1"},
		{"\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf b = BUF_INIT;
		csv_text(&b, cases[i].in);
		if (strcmp(buf_str(&b), cases[i].want))
			fail_msg("csv_text(%s) = [%s], want [%s]", cases[i].in, buf_str(&b),
				 cases[i].want);
		buf_release(&b);
	}
	struct buf b = BUF_INIT;
	csv_text(&b, NULL);
	assert_string_equal(buf_str(&b), "");
	buf_release(&b);
}

static void test_csv_number(void **state)
{
	(void)state;
	static const struct { const char *in, *want; } cases[] = {
		{"0", "0"}, {"42", "42"}, {"-24.625", "-24.625"}, {"0.000001", "0.000001"},
		{"-7", "-7"},
		/* not numbers: written as neutralised text */
		{"-", "\"'-\""}, {"-1+1", "\"'-1+1\""}, {"1.", "1."}, {".5", ".5"}, {"1e3", "1e3"},
		{"+1", "\"'+1\""}, {"-1,5", "\"'-1,5\""}, {"", ""}, {"--1", "\"'--1\""},
		{"1.2.3", "1.2.3"}, {"=1", "\"'=1\""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf b = BUF_INIT;
		csv_number(&b, cases[i].in);
		if (strcmp(buf_str(&b), cases[i].want))
			fail_msg("csv_number(%s) = [%s], want [%s]", cases[i].in, buf_str(&b),
				 cases[i].want);
		buf_release(&b);
	}
	assert_false(csv_is_number(NULL));
	assert_true(csv_is_formula("-"));
	assert_false(csv_is_formula(""));
	assert_false(csv_is_formula(NULL));
}

static void test_time_bound(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	static const struct { const char *zone, *in, *want; } cases[] = {
		/* the case: December starts at 2026-11-30T23:00Z in Zurich */
		{"Europe/Zurich", "2026-12-01", "2026-11-30T23:00:00Z"},
		{"Europe/Zurich", "2026-07-01", "2026-06-30T22:00:00Z"},
		{"Europe/Zurich", "2026-03-29", "2026-03-28T23:00:00Z"},  /* the 23-hour day */
		{"Europe/Zurich", "2026-03-30", "2026-03-29T22:00:00Z"},
		{"UTC", "2026-12-01", "2026-12-01T00:00:00Z"},
		{"Asia/Kathmandu", "2026-12-01", "2026-11-30T18:15:00Z"},
		{"America/New_York", "2026-12-01", "2026-12-01T05:00:00Z"},
		/* a skipped midnight: the day's first instant (01:00 local) */
		{"America/Santiago", "2026-09-06", "2026-09-06T04:00:00Z"},
		/* an instant is an instant, whatever the zone */
		{"Europe/Zurich", "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"},
		{"Europe/Zurich", "2026-12-01T00:30:00+01:00", "2026-11-30T23:30:00Z"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		tz *z = tzfix_load(cases[i].zone);
		int64_t us = 0;
		assert_int_equal(api_time_bound(z, cases[i].in, &us), ALLOT_OK);
		if (us != tzfix_time(cases[i].want))
			fail_msg("%s %s: got %lld, want %s", cases[i].zone, cases[i].in,
				 (long long)us, cases[i].want);
		tz_free(z);
	}
	static const char *const bad[] = {
		"", "2026-13-01", "2026-02-29", "2026-12-00", "2026-12-1", "2026-W49-1",
		"2026-12-01x", "2026-12-01T00:00:00", "12/01/2026", "2026-12", "0000-01-01",
	};
	tz *z = tzfix_load("Europe/Zurich");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t us = 4242;
		if (api_time_bound(z, bad[i], &us) != ALLOT_E_INVALID || us != 4242)
			fail_msg("\"%s\" was accepted or changed the output", bad[i]);
	}
	tz_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_text),
		cmocka_unit_test(test_csv_number),
		cmocka_unit_test(test_time_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
