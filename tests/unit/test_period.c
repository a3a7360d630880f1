/* test_period.c — accounting periods, keys and rollover.
 *
 * Expected bounds were computed independently (Python's zoneinfo, brute
 * force search for the first instant of each local day); ISO weeks checked
 * against datetime.isocalendar() and published examples.  Zone-dependent
 * tests skip with a message when the system zoneinfo (tzdata) is missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/money.h"
#include "common/timeutil.h"
#include "ledger/period.h"
#include "common/tz.h"
#include "support/tzfix.h"

static int ncases;

/* NEED_ZONEINFO, T and load: tests/unit/support/tzfix.h */
static int64_t T(const char *s) { return tzfix_time(s); }
static tz *load(const char *name) { return tzfix_load(name); }

static const char *fmt(int64_t us, char b[TIME_FMT_MAX])
{
	if (us == INT64_MIN)
		return "-inf";
	if (us == INT64_MAX)
		return "+inf";
	return time_format_rfc3339(us, b);
}

/* A version 2 TZif image with one type (UTC) and no transitions: the footer
 * rule alone decides.  OUT: the zone (caller frees). */
static tz *footer_zone(const char *footer)
{
	uint8_t b[512];
	size_t n = 0;
	for (int block = 0; block < 2; block++) {
		memset(b + n, 0, 44);
		memcpy(b + n, "TZif2", 5);
		b[n + 39] = 1;                 /* typecnt */
		b[n + 43] = 1;                 /* charcnt */
		n += 44;
		memset(b + n, 0, 7);           /* one type {0, 0, 0}, one NUL */
		n += 7;
	}
	n += (size_t)snprintf((char *)b + n, sizeof b - n, "\n%s\n", footer);
	tz *z = NULL;
	char eb[TZ_ERR_MAX] = "";
	if (tz_parse(b, n, "synthetic", &z, eb) != ALLOT_OK)
		fail_msg("footer %s: %s", footer, eb);
	return z;
}

/* ---- kinds --------------------------------------------------------------- */

static void test_kind_parse(void **state)
{
	(void)state;
	static const struct { const char *s; int ok; period_kind k; } cases[] = {
		{"day", 1, PERIOD_DAY}, {"week", 1, PERIOD_WEEK}, {"month", 1, PERIOD_MONTH},
		{"quarter", 1, PERIOD_QUARTER}, {"year", 1, PERIOD_YEAR}, {"total", 1, PERIOD_TOTAL},
		{"Month", 0, 0}, {"months", 0, 0}, {"", 0, 0}, {"mont", 0, 0}, {" day", 0, 0},
		{"daily", 0, 0}, {"monthly", 0, 0}, {"day\n", 0, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, ncases++) {
		period_kind k = (period_kind)99;
		int rc = period_kind_parse(cases[i].s, &k);
		if (cases[i].ok) {
			assert_int_equal(rc, 0);
			assert_int_equal(k, cases[i].k);
			assert_string_equal(period_kind_name(k), cases[i].s);
		} else {
			assert_int_equal(rc, -1);
			assert_int_equal(k, 99);
		}
	}
	period_kind k;
	assert_int_equal(period_kind_parse(NULL, &k), -1);
	assert_string_equal(period_kind_name((period_kind)99), "?");
}

/* ---- bounds table ------------------------------------------------------------ */

static void test_bounds(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	static const struct {
		const char *zone;
		period_kind kind;
		const char *at, *start, *end, *key;
	} cases[] = {
		{"UTC", PERIOD_MONTH, "2026-01-15T00:00:00Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-01"},  /* 744 h */
		{"UTC", PERIOD_MONTH, "2026-01-31T23:59:59.999999Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-01"},  /* 744 h */
		{"UTC", PERIOD_MONTH, "2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-02"},  /* 672 h */
		{"UTC", PERIOD_MONTH, "2024-02-10T00:00:00Z", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-02"},  /* 696 h */
		{"UTC", PERIOD_MONTH, "2100-02-10T00:00:00Z", "2100-02-01T00:00:00Z", "2100-03-01T00:00:00Z", "2100-02"},  /* 672 h */
		{"UTC", PERIOD_MONTH, "2000-02-10T00:00:00Z", "2000-02-01T00:00:00Z", "2000-03-01T00:00:00Z", "2000-02"},  /* 696 h */
		{"UTC", PERIOD_MONTH, "1900-02-10T00:00:00Z", "1900-02-01T00:00:00Z", "1900-03-01T00:00:00Z", "1900-02"},  /* 672 h */
		{"UTC", PERIOD_MONTH, "2026-04-30T12:00:00Z", "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z", "2026-04"},  /* 720 h */
		{"UTC", PERIOD_MONTH, "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", "2026-12"},  /* 744 h */
		{"UTC", PERIOD_DAY, "2024-02-29T12:00:00Z", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z", "2024-02-29"},  /* 24 h */
		{"UTC", PERIOD_DAY, "2100-02-28T23:59:59Z", "2100-02-28T00:00:00Z", "2100-03-01T00:00:00Z", "2100-02-28"},  /* 24 h */
		{"UTC", PERIOD_DAY, "2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "2000-03-01T00:00:00Z", "2000-02-29"},  /* 24 h */
		{"UTC", PERIOD_WEEK, "2026-01-01T00:00:00Z", "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z", "2026-W01"},  /* 168 h */
		{"UTC", PERIOD_WEEK, "2027-01-01T00:00:00Z", "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z", "2026-W53"},  /* 168 h */
		{"UTC", PERIOD_WEEK, "2021-01-03T00:00:00Z", "2020-12-28T00:00:00Z", "2021-01-04T00:00:00Z", "2020-W53"},  /* 168 h */
		{"UTC", PERIOD_WEEK, "2021-01-04T00:00:00Z", "2021-01-04T00:00:00Z", "2021-01-11T00:00:00Z", "2021-W01"},  /* 168 h */
		{"UTC", PERIOD_WEEK, "2008-12-29T00:00:00Z", "2008-12-29T00:00:00Z", "2009-01-05T00:00:00Z", "2009-W01"},  /* 168 h */
		{"UTC", PERIOD_WEEK, "2010-01-03T00:00:00Z", "2009-12-28T00:00:00Z", "2010-01-04T00:00:00Z", "2009-W53"},  /* 168 h */
		{"UTC", PERIOD_WEEK, "2024-12-30T00:00:00Z", "2024-12-30T00:00:00Z", "2025-01-06T00:00:00Z", "2025-W01"},  /* 168 h */
		{"UTC", PERIOD_WEEK, "2026-12-03T10:00:00Z", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z", "2026-W49"},  /* 168 h */
		{"UTC", PERIOD_WEEK, "2005-01-01T00:00:00Z", "2004-12-27T00:00:00Z", "2005-01-03T00:00:00Z", "2004-W53"},  /* 168 h */
		{"UTC", PERIOD_WEEK, "2005-01-03T00:00:00Z", "2005-01-03T00:00:00Z", "2005-01-10T00:00:00Z", "2005-W01"},  /* 168 h */
		{"UTC", PERIOD_WEEK, "2008-12-28T00:00:00Z", "2008-12-22T00:00:00Z", "2008-12-29T00:00:00Z", "2008-W52"},  /* 168 h */
		{"UTC", PERIOD_WEEK, "2009-12-31T00:00:00Z", "2009-12-28T00:00:00Z", "2010-01-04T00:00:00Z", "2009-W53"},  /* 168 h */
		{"UTC", PERIOD_QUARTER, "2026-02-15T00:00:00Z", "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z", "2026-Q1"},  /* 2160 h */
		{"UTC", PERIOD_QUARTER, "2026-04-01T00:00:00Z", "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z", "2026-Q2"},  /* 2184 h */
		{"UTC", PERIOD_QUARTER, "2026-09-30T23:59:59Z", "2026-07-01T00:00:00Z", "2026-10-01T00:00:00Z", "2026-Q3"},  /* 2208 h */
		{"UTC", PERIOD_QUARTER, "2026-11-01T00:00:00Z", "2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z", "2026-Q4"},  /* 2208 h */
		{"UTC", PERIOD_YEAR, "2026-06-01T00:00:00Z", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "2026"},  /* 8760 h */
		{"UTC", PERIOD_YEAR, "2024-12-31T23:59:59Z", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", "2024"},  /* 8784 h */
		{"Europe/Zurich", PERIOD_DAY, "2026-03-29T10:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "2026-03-29"},  /* 23 h */
		{"Europe/Zurich", PERIOD_DAY, "2026-03-28T22:59:59.999999Z", "2026-03-27T23:00:00Z", "2026-03-28T23:00:00Z", "2026-03-28"},  /* 24 h */
		{"Europe/Zurich", PERIOD_DAY, "2026-03-28T23:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "2026-03-29"},  /* 23 h */
		{"Europe/Zurich", PERIOD_DAY, "2026-10-25T12:00:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", "2026-10-25"},  /* 25 h */
		{"Europe/Zurich", PERIOD_DAY, "2026-10-25T22:59:59.999999Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", "2026-10-25"},  /* 25 h */
		{"Europe/Zurich", PERIOD_DAY, "2026-10-25T23:00:00Z", "2026-10-25T23:00:00Z", "2026-10-26T23:00:00Z", "2026-10-26"},  /* 24 h */
		{"Europe/Zurich", PERIOD_DAY, "2026-10-24T21:59:59.999999Z", "2026-10-23T22:00:00Z", "2026-10-24T22:00:00Z", "2026-10-24"},  /* 24 h */
		{"Europe/Zurich", PERIOD_MONTH, "2026-03-15T00:00:00Z", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z", "2026-03"},  /* 743 h */
		{"Europe/Zurich", PERIOD_MONTH, "2026-10-15T00:00:00Z", "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z", "2026-10"},  /* 745 h */
		{"Europe/Zurich", PERIOD_MONTH, "2026-12-03T10:00:00Z", "2026-11-30T23:00:00Z", "2026-12-31T23:00:00Z", "2026-12"},  /* 744 h */
		{"Europe/Zurich", PERIOD_MONTH, "2026-11-30T22:59:59Z", "2026-10-31T23:00:00Z", "2026-11-30T23:00:00Z", "2026-11"},  /* 720 h */
		{"Europe/Zurich", PERIOD_MONTH, "2026-11-30T23:00:00Z", "2026-11-30T23:00:00Z", "2026-12-31T23:00:00Z", "2026-12"},  /* 744 h */
		{"Europe/Zurich", PERIOD_WEEK, "2026-03-29T12:00:00Z", "2026-03-22T23:00:00Z", "2026-03-29T22:00:00Z", "2026-W13"},  /* 167 h */
		{"Europe/Zurich", PERIOD_WEEK, "2026-10-25T12:00:00Z", "2026-10-18T22:00:00Z", "2026-10-25T23:00:00Z", "2026-W43"},  /* 169 h */
		{"Europe/Zurich", PERIOD_QUARTER, "2026-05-01T00:00:00Z", "2026-03-31T22:00:00Z", "2026-06-30T22:00:00Z", "2026-Q2"},  /* 2184 h */
		{"Europe/Zurich", PERIOD_YEAR, "2026-06-01T00:00:00Z", "2025-12-31T23:00:00Z", "2026-12-31T23:00:00Z", "2026"},  /* 8760 h */
		{"Europe/Zurich", PERIOD_YEAR, "2025-12-31T23:00:00Z", "2025-12-31T23:00:00Z", "2026-12-31T23:00:00Z", "2026"},  /* 8760 h */
		{"Europe/Zurich", PERIOD_DAY, "2300-03-25T12:00:00Z", "2300-03-24T23:00:00Z", "2300-03-25T22:00:00Z", "2300-03-25"},  /* 23 h */
		{"Europe/Zurich", PERIOD_DAY, "2300-10-28T12:00:00Z", "2300-10-27T22:00:00Z", "2300-10-28T23:00:00Z", "2300-10-28"},  /* 25 h */
		{"America/New_York", PERIOD_DAY, "2026-03-08T12:00:00Z", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", "2026-03-08"},  /* 23 h */
		{"America/New_York", PERIOD_DAY, "2026-11-01T12:00:00Z", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", "2026-11-01"},  /* 25 h */
		{"America/New_York", PERIOD_MONTH, "2026-11-15T00:00:00Z", "2026-11-01T04:00:00Z", "2026-12-01T05:00:00Z", "2026-11"},  /* 721 h */
		{"Asia/Kolkata", PERIOD_DAY, "2026-06-01T12:00:00Z", "2026-05-31T18:30:00Z", "2026-06-01T18:30:00Z", "2026-06-01"},  /* 24 h */
		{"Asia/Kathmandu", PERIOD_MONTH, "2026-06-15T00:00:00Z", "2026-05-31T18:15:00Z", "2026-06-30T18:15:00Z", "2026-06"},  /* 720 h */
		{"Australia/Lord_Howe", PERIOD_DAY, "2026-10-04T00:00:00Z", "2026-10-03T13:30:00Z", "2026-10-04T13:00:00Z", "2026-10-04"},  /* 23.5 h */
		{"Australia/Lord_Howe", PERIOD_DAY, "2026-04-05T00:00:00Z", "2026-04-04T13:00:00Z", "2026-04-05T13:30:00Z", "2026-04-05"},  /* 24.5 h */
		{"America/Santiago", PERIOD_DAY, "2026-09-06T12:00:00Z", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z", "2026-09-06"},  /* 23 h */
		{"America/Santiago", PERIOD_DAY, "2026-09-05T12:00:00Z", "2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z", "2026-09-05"},  /* 24 h */
		{"America/Santiago", PERIOD_DAY, "2026-04-04T12:00:00Z", "2026-04-04T03:00:00Z", "2026-04-05T04:00:00Z", "2026-04-04"},  /* 25 h */
		{"America/Santiago", PERIOD_DAY, "2026-04-05T12:00:00Z", "2026-04-05T04:00:00Z", "2026-04-06T04:00:00Z", "2026-04-05"},  /* 24 h */
		{"Asia/Beirut", PERIOD_DAY, "2026-10-24T12:00:00Z", "2026-10-23T21:00:00Z", "2026-10-24T22:00:00Z", "2026-10-24"},  /* 25 h */
		{"Asia/Beirut", PERIOD_DAY, "2026-03-29T12:00:00Z", "2026-03-28T22:00:00Z", "2026-03-29T21:00:00Z", "2026-03-29"},  /* 23 h */
		{"Pacific/Apia", PERIOD_DAY, "2011-12-29T12:00:00Z", "2011-12-29T10:00:00Z", "2011-12-30T10:00:00Z", "2011-12-29"},  /* 24 h */
		{"Pacific/Apia", PERIOD_DAY, "2011-12-30T10:00:00Z", "2011-12-30T10:00:00Z", "2011-12-31T10:00:00Z", "2011-12-31"},  /* 24 h */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, ncases++) {
		tz *z = load(cases[i].zone);
		int64_t s = 0, e = 0;
		char key[PERIOD_KEY_MAX] = "", b1[TIME_FMT_MAX], b2[TIME_FMT_MAX];
		assert_int_equal(period_bounds(z, cases[i].kind, T(cases[i].at), &s, &e), ALLOT_OK);
		if (s != T(cases[i].start) || e != T(cases[i].end))
			fail_msg("%s %s at %s: got [%s, %s) want [%s, %s)", cases[i].zone,
				 period_kind_name(cases[i].kind), cases[i].at, fmt(s, b1), fmt(e, b2),
				 cases[i].start, cases[i].end);
		assert_int_equal(period_key(z, cases[i].kind, T(cases[i].at), key), ALLOT_OK);
		if (strcmp(key, cases[i].key) != 0)
			fail_msg("%s %s at %s: key %s want %s", cases[i].zone,
				 period_kind_name(cases[i].kind), cases[i].at, key, cases[i].key);
		/* The key parses back to the same period. */
		period_kind k;
		int64_t s2, e2;
		assert_int_equal(period_key_parse(z, key, &k, &s2, &e2), ALLOT_OK);
		assert_int_equal(k, cases[i].kind);
		assert_int_equal(s2, s);
		assert_int_equal(e2, e);
		/* Boundaries: start is inside, the microsecond before is not. */
		int64_t s3, e3;
		assert_int_equal(period_bounds(z, cases[i].kind, s, &s3, &e3), ALLOT_OK);
		assert_int_equal(s3, s);
		assert_int_equal(period_bounds(z, cases[i].kind, s - 1, &s3, &e3), ALLOT_OK);
		assert_int_equal(e3, s);
		assert_int_equal(period_bounds(z, cases[i].kind, e - 1, &s3, &e3), ALLOT_OK);
		assert_int_equal(s3, s);
		tz_free(z);
	}
}

/* Day lengths over a whole year: all 24 h but the two change days. */
static void test_day_lengths(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	static const struct {
		const char *zone;
		int year;
		int64_t short_s, long_s;   /* 0: none */
		const char *short_day, *long_day;
	} cases[] = {
		{"Europe/Zurich", 2026, 23 * 3600, 25 * 3600, "2026-03-29", "2026-10-25"},
		{"Europe/Zurich", 2027, 23 * 3600, 25 * 3600, "2027-03-28", "2027-10-31"},
		{"Europe/Zurich", 2400, 23 * 3600, 25 * 3600, "2400-03-26", "2400-10-29"},
		{"America/New_York", 2026, 23 * 3600, 25 * 3600, "2026-03-08", "2026-11-01"},
		{"Australia/Lord_Howe", 2026, 23 * 3600 + 1800, 24 * 3600 + 1800, "2026-10-04", "2026-04-05"},
		{"Asia/Kolkata", 2026, 0, 0, NULL, NULL},
		{"Asia/Kathmandu", 2026, 0, 0, NULL, NULL},
		{"UTC", 2024, 0, 0, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, ncases++) {
		tz *z = load(cases[i].zone);
		int64_t ys, ye, s, e, at;
		char key[PERIOD_KEY_MAX];
		assert_int_equal(tz_local_to_utc(z, cases[i].year, 6, 1, 12, 0, 0, &at), ALLOT_OK);
		assert_int_equal(period_bounds(z, PERIOD_YEAR, at, &ys, &ye), ALLOT_OK);
		int ndays = 0, nshort = 0, nlong = 0;
		for (at = ys; at < ye; at = e, ndays++) {
			assert_int_equal(period_bounds(z, PERIOD_DAY, at, &s, &e), ALLOT_OK);
			assert_int_equal(s, at);
			assert_int_equal(period_key(z, PERIOD_DAY, at, key), ALLOT_OK);
			int64_t len = (e - s) / US_PER_SEC;
			if (len == 86400)
				continue;
			if (len == cases[i].short_s && cases[i].short_day &&
			    strcmp(key, cases[i].short_day) == 0)
				nshort++;
			else if (len == cases[i].long_s && cases[i].long_day &&
				 strcmp(key, cases[i].long_day) == 0)
				nlong++;
			else
				fail_msg("%s %s lasts %lld s", cases[i].zone, key, (long long)len);
		}
		assert_int_equal(at, ye);
		int leap = cases[i].year % 4 == 0 && (cases[i].year % 100 != 0 || cases[i].year % 400 == 0);
		assert_int_equal(ndays, 365 + leap);
		assert_int_equal(nshort, cases[i].short_day ? 1 : 0);
		assert_int_equal(nlong, cases[i].long_day ? 1 : 0);
		tz_free(z);
	}
}

/* ---- walking periods ------------------------------------------------------------ */

/* Walks n periods from `from`: they tile the timeline, keys increase, prev
 * undoes next, keys parse back, and each start is a local midnight on the
 * right kind of date (or the first instant after a skipped midnight). */
static void walk(tz *z, period_kind k, const char *from, int n)
{
	int64_t s, e;
	char key[PERIOD_KEY_MAX], prev_key[PERIOD_KEY_MAX] = "";
	assert_int_equal(period_bounds(z, k, T(from), &s, &e), ALLOT_OK);
	for (int i = 0; i < n; i++) {
		assert_true(s < e);
		assert_int_equal(period_key(z, k, s, key), ALLOT_OK);
		assert_true(strcmp(prev_key, key) < 0);
		strcpy(prev_key, key);
		period_kind k2;
		int64_t s2, e2;
		assert_int_equal(period_key_parse(z, key, &k2, &s2, &e2), ALLOT_OK);
		assert_int_equal(k2, k);
		assert_int_equal(s2, s);
		assert_int_equal(e2, e);

		tz_civil c, before;
		tz_to_local(z, s, &c);
		tz_to_local(z, s - 1, &before);
		bool midnight = c.hour == 0 && c.minute == 0 && c.second == 0 && c.microsecond == 0;
		bool skipped = !midnight && (before.day != c.day) && c.offset > before.offset;
		if (!midnight && !skipped)
			fail_msg("%s %s starts at local %02d:%02d:%02d", tz_name(z), key, c.hour,
				 c.minute, c.second);
		assert_true(before.day != c.day);
		switch (k) {
		case PERIOD_WEEK: assert_int_equal(c.weekday, 0); break;
		case PERIOD_MONTH: assert_int_equal(c.day, 1); break;
		case PERIOD_QUARTER:
			assert_int_equal(c.day, 1);
			assert_int_equal((c.month - 1) % 3, 0);
			break;
		case PERIOD_YEAR:
			assert_int_equal(c.day, 1);
			assert_int_equal(c.month, 1);
			break;
		default: break;
		}

		int64_t ns, ne, ps, pe;
		assert_int_equal(period_next(z, k, s, &ns, &ne), ALLOT_OK);
		assert_int_equal(ns, e);                 /* tiling */
		assert_int_equal(period_prev(z, k, ns, &ps, &pe), ALLOT_OK);
		assert_int_equal(ps, s);
		assert_int_equal(pe, e);
		/* Any instant inside maps to this period. */
		int64_t mid = s + (e - s) / 2, ms, me;
		assert_int_equal(period_bounds(z, k, mid, &ms, &me), ALLOT_OK);
		assert_int_equal(ms, s);
		assert_int_equal(me, e);
		s = ns;
		e = ne;
		ncases++;
	}
}

static void test_walk(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	static const char *const zones[] = {
		"UTC", "Europe/Zurich", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu",
		"Australia/Lord_Howe", "America/Santiago", "Asia/Beirut", "Europe/Dublin",
	};
	for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
		tz *z = load(zones[i]);
		walk(z, PERIOD_DAY, "2025-12-01T12:00:00Z", 800);
		walk(z, PERIOD_WEEK, "2019-12-01T12:00:00Z", 400);
		walk(z, PERIOD_MONTH, "1999-06-15T12:00:00Z", 400);
		walk(z, PERIOD_QUARTER, "1999-06-15T12:00:00Z", 120);
		walk(z, PERIOD_YEAR, "1970-06-15T12:00:00Z", 150);
		walk(z, PERIOD_DAY, "2299-12-01T12:00:00Z", 400);   /* footer rule */
		tz_free(z);
	}
}

/* Samoa skipped 2011-12-30: that day has no instants and is stepped over. */
static void test_skipped_day(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	tz *z = load("Pacific/Apia");
	int64_t s, e;
	char key[PERIOD_KEY_MAX];
	assert_int_equal(period_next(z, PERIOD_DAY, T("2011-12-29T12:00:00Z"), &s, &e), ALLOT_OK);
	assert_int_equal(s, T("2011-12-30T10:00:00Z"));
	assert_int_equal(e, T("2011-12-31T10:00:00Z"));
	assert_int_equal(period_key(z, PERIOD_DAY, s, key), ALLOT_OK);
	assert_string_equal(key, "2011-12-31");
	assert_int_equal(period_prev(z, PERIOD_DAY, s, &s, &e), ALLOT_OK);
	assert_int_equal(period_key(z, PERIOD_DAY, s, key), ALLOT_OK);
	assert_string_equal(key, "2011-12-29");
	/* The skipped day's own key names an empty interval. */
	period_kind k;
	assert_int_equal(period_key_parse(z, "2011-12-30", &k, &s, &e), ALLOT_OK);
	assert_int_equal(s, T("2011-12-30T10:00:00Z"));
	assert_int_equal(e, s);
	/* December 2011 in Apia was 30 days long. */
	assert_int_equal(period_bounds(z, PERIOD_MONTH, T("2011-12-15T00:00:00Z"), &s, &e), ALLOT_OK);
	assert_int_equal(e - s, 30LL * 86400 * US_PER_SEC);
	tz_free(z);
	ncases += 5;
}

/* A fall-back from 00:30 to 23:30 folds midnight: the repeated 23:30-00:00
 * has the local date of the day before, yet lies after the next day's
 * first midnight.  Periods follow the tiling, not the local date. */
static void test_fold_across_midnight(void **state)
{
	(void)state;
	tz *z = footer_zone("AAA-1BBB,M3.5.0,M10.5.0/0:30");
	static const struct { const char *at, *start, *end, *key; } cases[] = {
		{"2026-10-24T21:59:59Z", "2026-10-23T22:00:00Z", "2026-10-24T22:00:00Z", "2026-10-24"},
		{"2026-10-24T22:00:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", "2026-10-25"},
		{"2026-10-24T22:45:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", "2026-10-25"},
		{"2026-10-24T23:00:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", "2026-10-25"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, ncases++) {
		int64_t s, e;
		char key[PERIOD_KEY_MAX];
		assert_int_equal(period_bounds(z, PERIOD_DAY, T(cases[i].at), &s, &e), ALLOT_OK);
		assert_int_equal(s, T(cases[i].start));
		assert_int_equal(e, T(cases[i].end));
		assert_int_equal(period_key(z, PERIOD_DAY, T(cases[i].at), key), ALLOT_OK);
		assert_string_equal(key, cases[i].key);
	}
	/* 22:45Z is 23:45 on the 24th locally, the second time round. */
	tz_civil c;
	tz_to_local(z, T("2026-10-24T22:45:00Z"), &c);
	assert_int_equal(c.day, 24);
	assert_int_equal(c.hour, 23);
	tz_free(z);
}

/* ---- total, range, bad input --------------------------------------------------- */

static void test_total(void **state)
{
	(void)state;
	tz *z = NULL;
	assert_int_equal(tz_load_dir("/nonexistent-zoneinfo", "UTC", &z, NULL), ALLOT_OK);
	static const int64_t ats[] = {INT64_MIN, -1, 0, 1790000000000000LL, INT64_MAX - 1};
	for (size_t i = 0; i < sizeof ats / sizeof ats[0]; i++, ncases++) {
		int64_t s = 0, e = 0;
		char key[PERIOD_KEY_MAX];
		assert_int_equal(period_bounds(z, PERIOD_TOTAL, ats[i], &s, &e), ALLOT_OK);
		assert_int_equal(s, INT64_MIN);
		assert_int_equal(e, INT64_MAX);
		assert_int_equal(period_key(z, PERIOD_TOTAL, ats[i], key), ALLOT_OK);
		assert_string_equal(key, "total");
		s = e = 42;
		assert_int_equal(period_next(z, PERIOD_TOTAL, ats[i], &s, &e), ALLOT_E_INVALID);
		assert_int_equal(period_prev(z, PERIOD_TOTAL, ats[i], &s, &e), ALLOT_E_INVALID);
		assert_int_equal(s, 42);
		assert_int_equal(e, 42);
	}
	period_kind k;
	int64_t s, e;
	assert_int_equal(period_key_parse(z, "total", &k, &s, &e), ALLOT_OK);
	assert_int_equal(k, PERIOD_TOTAL);
	assert_int_equal(s, INT64_MIN);
	assert_int_equal(e, INT64_MAX);
	tz_free(z);
}

static void test_range(void **state)
{
	(void)state;
	tz *z = NULL;
	assert_int_equal(tz_load_dir("/nonexistent-zoneinfo", "UTC", &z, NULL), ALLOT_OK);
	const int64_t y1 = T("0001-01-01T00:00:00Z"), y10000 = T("9999-12-31T23:59:59.999999Z") + 1;
	static const period_kind kinds[] = {PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH, PERIOD_QUARTER,
					    PERIOD_YEAR};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++, ncases++) {
		int64_t s = 42, e = 42;
		char key[PERIOD_KEY_MAX] = "unchanged";
		/* The first and last supported periods. */
		assert_int_equal(period_bounds(z, kinds[i], y1, &s, &e), ALLOT_OK);
		assert_int_equal(s, y1);
		assert_int_equal(period_bounds(z, kinds[i], y10000 - 1, &s, &e), ALLOT_OK);
		assert_int_equal(e, y10000 - (kinds[i] == PERIOD_WEEK ? -2LL * 86400 * US_PER_SEC : 0));
		/* Beyond them. */
		s = e = 42;
		assert_int_equal(period_bounds(z, kinds[i], y1 - 1, &s, &e), ALLOT_E_INVALID);
		assert_int_equal(period_bounds(z, kinds[i], y10000 + 3LL * 86400 * US_PER_SEC, &s, &e),
				 ALLOT_E_INVALID);
		assert_int_equal(period_bounds(z, kinds[i], INT64_MIN, &s, &e), ALLOT_E_INVALID);
		assert_int_equal(period_bounds(z, kinds[i], INT64_MAX, &s, &e), ALLOT_E_INVALID);
		assert_int_equal(period_prev(z, kinds[i], y1, &s, &e), ALLOT_E_INVALID);
		assert_int_equal(period_next(z, kinds[i], y10000 - 1, &s, &e), ALLOT_E_INVALID);
		assert_int_equal(period_key(z, kinds[i], INT64_MAX, key), ALLOT_E_INVALID);
		assert_int_equal(s, 42);
		assert_int_equal(e, 42);
		assert_string_equal(key, "unchanged");
	}
	int64_t s = 42, e = 42;
	char key[PERIOD_KEY_MAX] = "unchanged";
	assert_int_equal(period_bounds(z, (period_kind)6, 0, &s, &e), ALLOT_E_INVALID);
	assert_int_equal(period_bounds(z, (period_kind)-1, 0, &s, &e), ALLOT_E_INVALID);
	assert_int_equal(period_next(z, (period_kind)99, 0, &s, &e), ALLOT_E_INVALID);
	assert_int_equal(period_key(z, (period_kind)99, 0, key), ALLOT_E_INVALID);
	assert_int_equal(period_bounds(z, PERIOD_TOTAL, INT64_MAX, &s, &e), ALLOT_E_INVALID);
	assert_int_equal(s, 42);
	assert_string_equal(key, "unchanged");
	tz_free(z);
}

static void test_key_parse(void **state)
{
	(void)state;
	tz *z = NULL;
	assert_int_equal(tz_load_dir("/nonexistent-zoneinfo", "UTC", &z, NULL), ALLOT_OK);
	static const struct {
		const char *key;
		period_kind kind;
		const char *start, *end;
	} good[] = {
		{"2026-12-03", PERIOD_DAY, "2026-12-03T00:00:00Z", "2026-12-04T00:00:00Z"},
		{"2024-02-29", PERIOD_DAY, "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"2000-02-29", PERIOD_DAY, "2000-02-29T00:00:00Z", "2000-03-01T00:00:00Z"},
		{"2026-W49", PERIOD_WEEK, "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z"},
		{"2026-W01", PERIOD_WEEK, "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z"},
		{"2026-W53", PERIOD_WEEK, "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z"},
		{"2020-W53", PERIOD_WEEK, "2020-12-28T00:00:00Z", "2021-01-04T00:00:00Z"},
		{"2004-W53", PERIOD_WEEK, "2004-12-27T00:00:00Z", "2005-01-03T00:00:00Z"},
		{"0001-W01", PERIOD_WEEK, "0001-01-01T00:00:00Z", "0001-01-08T00:00:00Z"},
		{"2026-12", PERIOD_MONTH, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"2100-02", PERIOD_MONTH, "2100-02-01T00:00:00Z", "2100-03-01T00:00:00Z"},
		{"2026-Q4", PERIOD_QUARTER, "2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"2026-Q1", PERIOD_QUARTER, "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"},
		{"2026", PERIOD_YEAR, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"0001", PERIOD_YEAR, "0001-01-01T00:00:00Z", "0002-01-01T00:00:00Z"},
		{"0001-01-01", PERIOD_DAY, "0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"},
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++, ncases++) {
		period_kind k;
		int64_t s, e;
		if (period_key_parse(z, good[i].key, &k, &s, &e) != ALLOT_OK)
			fail_msg("key %s rejected", good[i].key);
		assert_int_equal(k, good[i].kind);
		assert_int_equal(s, T(good[i].start));
		assert_int_equal(e, T(good[i].end));
	}
	static const char *const bad[] = {
		"", "2026-13", "2026-00", "2026-W54", "2026-W00", "2025-W53", "2026-Q5",
		"2026-Q0", "2026-02-29", "2100-02-29", "2024-02-30", "2026-04-31", "2026-12-00",
		"0000", "0000-01", "0000-W52", "26-12", "2026-1", "2026-12-3", "2026-12-03 ",
		" 2026", "2026/12", "TOTAL", "Total", "total ", "2026-w49", "2026-q4", "20261",
		"+2026", "-026", "2026-12-03T00", "2026-W4a", "2026-1a", "2026-12-0x", "2026-Q",
		"2026-", "202a", "2026-W490", "2026-12-03-", "2026-W", "2026--1",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++, ncases++) {
		period_kind k = (period_kind)99;
		int64_t s = 42, e = 42;
		if (period_key_parse(z, bad[i], &k, &s, &e) != ALLOT_E_INVALID)
			fail_msg("key \"%s\" accepted", bad[i]);
		assert_int_equal(k, 99);
		assert_int_equal(s, 42);
		assert_int_equal(e, 42);
	}
	period_kind k;
	int64_t s, e;
	assert_int_equal(period_key_parse(z, NULL, &k, &s, &e), ALLOT_E_INVALID);
	tz_free(z);
}

/* ---- rollover ------------------------------------------------------------------ */

static void test_rollover(void **state)
{
	(void)state;
	const int64_t C = MONEY_SCALE;   /* one credit */
	static const struct { int64_t alloc, ppm, used, want; } cases[] = {
		/* SPEC example: 100000 credits, rollover 0.25. */
		{100000 * 1000000LL, 250000, 60000 * 1000000LL, 10000 * 1000000LL},
		{100000 * 1000000LL, 250000, 0, 25000 * 1000000LL},
		{100000 * 1000000LL, 250000, 100000 * 1000000LL, 0},            /* all used */
		{100000 * 1000000LL, 250000, 100000 * 1000000LL + 1, 0},        /* overage */
		{100000 * 1000000LL, 250000, -5 * 1000000LL, 25000 * 1000000LL}, /* net refund: capped */
		{100000 * 1000000LL, 0, 0, 0},
		{100000 * 1000000LL, 1000000, 1, 100000 * 1000000LL - 1},
		{0, 250000, 0, 0},
		{0, 250000, 7, 0},
		/* Rounding: floor to the micro-credit. */
		{7, 250000, 0, 1},                 /* 1.75 -> 1 */
		{3, 333333, 0, 0},                 /* 0.999999 -> 0 */
		{3, 333334, 0, 1},                 /* 1.000002 -> 1 */
		{1000001, 1, 0, 1},                /* 1.000001 -> 1 */
		{999999, 1, 0, 0},                 /* 0.999999 -> 0 */
		{1, 999999, 0, 0},
		{1, 1000000, 0, 1},
		/* Extremes: no overflow. */
		{MONEY_MAX, 999999, 1, 999998999999999999LL},
		{MONEY_MAX, 1000000, 0, MONEY_MAX},
		{INT64_MAX, 1000000, INT64_MIN, INT64_MAX},
		{INT64_MAX, 500000, INT64_MAX, 0},
		{5, 500000, INT64_MIN, 2},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, ncases++) {
		int64_t got = -1;
		assert_int_equal(period_rollover(cases[i].alloc, cases[i].ppm, cases[i].used, &got),
				 ALLOT_OK);
		if (got != cases[i].want)
			fail_msg("rollover(%lld, %lld, %lld) = %lld, want %lld",
				 (long long)cases[i].alloc, (long long)cases[i].ppm,
				 (long long)cases[i].used, (long long)got, (long long)cases[i].want);
	}
	static const struct { int64_t alloc, ppm, used; } bad[] = {
		{-1, 250000, 0}, {INT64_MIN, 250000, 0}, {100, -1, 0}, {100, 1000001, 0},
		{100, INT64_MAX, 0}, {100, INT64_MIN, 0},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++, ncases++) {
		int64_t got = 42;
		assert_int_equal(period_rollover(bad[i].alloc, bad[i].ppm, bad[i].used, &got),
				 ALLOT_E_INVALID);
		assert_int_equal(got, 42);
	}
	/* Not compounded: three idle months at 1000 credits, 0.5 rollover each
	 * carry 500; month 2 had 1500 available but only its own 1000 counts. */
	int64_t carried = 0;
	for (int month = 0; month < 3; month++) {
		assert_int_equal(period_rollover(1000 * C, 500000, 0, &carried), ALLOT_OK);
		assert_int_equal(carried, 500 * C);
	}
	/* A charter's "rollover: 0.25" parsed as money is exactly the ppm. */
	int64_t ppm;
	assert_int_equal(money_parse("0.25", 4, &ppm), MONEY_OK);
	assert_int_equal(ppm, 250000);
	assert_true(ppm <= PERIOD_PPM);
	ncases += 2;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind_parse),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_day_lengths),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_skipped_day),
		cmocka_unit_test(test_fold_across_midnight),
		cmocka_unit_test(test_total),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_key_parse),
		cmocka_unit_test(test_rollover),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	tz_cache_clear();
	printf("test_period: %d cases run\n", ncases);
	return rc;
}
