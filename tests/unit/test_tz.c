/* test_tz.c — TZif reading, POSIX TZ footer rules, UTC<->local, the cache.
 *
 * Tests that need the system zoneinfo (Debian tzdata) skip with a message
 * when it is missing; the synthetic-TZif tests always run.  Expected values
 * were taken from zdump and Python's zoneinfo (independent readers of the
 * same tzdata), not from this code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "common/tz.h"
#include "support/tzfix.h"
#include "support/xorshift.h"

static int ncases;

/* ---- helpers ------------------------------------------------------------ */

/* zoneinfo_dir, NEED_ZONEINFO, T and load: tests/unit/support/tzfix.h */
static const char *zoneinfo_dir(void) { return tzfix_zoneinfo_dir(); }
static int64_t T(const char *s) { return tzfix_time(s); }
static tz *load(const char *name) { return tzfix_load(name); }

/* ---- a TZif writer for synthetic zones ------------------------------------- */

struct spec {
	char version;            /* 0, '2', '3', '4' */
	int ntrans;
	int64_t trans[8];
	uint8_t idx[8];
	int ntypes;
	int32_t off[4];
	uint8_t dst[4];
	const char *footer;      /* NULL: "" */
	int leaps;               /* leap-second records to add */
};

struct img {
	uint8_t b[2048];
	size_t len;
	size_t hdr2;             /* offset of the second header (v2+) */
	size_t data;             /* offset of the data block used */
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, int64_t v)
{
	put32(p, (uint32_t)((uint64_t)v >> 32));
	put32(p + 4, (uint32_t)v);
}

static void put_hdr(struct img *im, char version, uint32_t timecnt, uint32_t typecnt,
		    uint32_t charcnt, uint32_t leapcnt)
{
	uint8_t *p = im->b + im->len;
	memset(p, 0, 44);
	memcpy(p, "TZif", 4);
	p[4] = (uint8_t)version;
	put32(p + 28, leapcnt);
	put32(p + 32, timecnt);
	put32(p + 36, typecnt);
	put32(p + 40, charcnt);
	im->len += 44;
}

static void put_block(struct img *im, const struct spec *s, int tsize)
{
	uint8_t *p = im->b + im->len;
	for (int i = 0; i < s->ntrans; i++, p += tsize) {
		if (tsize == 8)
			put64(p, s->trans[i]);
		else
			put32(p, (uint32_t)(int32_t)s->trans[i]);
	}
	for (int i = 0; i < s->ntrans; i++)
		*p++ = s->idx[i];
	for (int i = 0; i < s->ntypes; i++, p += 6) {
		put32(p, (uint32_t)s->off[i]);
		p[4] = s->dst[i];
		p[5] = 0;
	}
	memcpy(p, "ABC", 4);           /* charcnt 4 */
	p += 4;
	for (int i = 0; i < s->leaps; i++, p += tsize + 4)
		memset(p, 0, (size_t)tsize + 4);
	im->len = (size_t)(p - im->b);
}

static void build(const struct spec *s, struct img *im)
{
	memset(im, 0, sizeof *im);
	if (s->version == 0) {
		put_hdr(im, 0, (uint32_t)s->ntrans, (uint32_t)s->ntypes, 4, (uint32_t)s->leaps);
		im->data = im->len;
		put_block(im, s, 4);
		return;
	}
	/* A minimal v1 block, as zic -b slim writes: one type, no transitions. */
	put_hdr(im, s->version, 0, 1, 1, 0);
	memset(im->b + im->len, 0, 7);
	im->len += 7;
	im->hdr2 = im->len;
	put_hdr(im, s->version, (uint32_t)s->ntrans, (uint32_t)s->ntypes, 4, (uint32_t)s->leaps);
	im->data = im->len;
	put_block(im, s, 8);
	const char *f = s->footer ? s->footer : "";
	im->len += (size_t)snprintf((char *)im->b + im->len, sizeof im->b - im->len, "\n%s\n", f);
}

/* Parses a copy of exactly len bytes (so ASan sees any over-read). */
static allot_err parse_copy(const uint8_t *b, size_t len, tz **out)
{
	uint8_t *c = malloc(len ? len : 1);
	assert_non_null(c);
	memcpy(c, b, len);
	char eb[TZ_ERR_MAX] = "";
	allot_err rc = tz_parse(c, len, "synthetic", out, eb);
	free(c);
	if (rc != ALLOT_OK)
		assert_true(eb[0] != '\0');   /* every failure says why */
	return rc;
}

/* A zone with no transitions: only the footer rule decides. */
static tz *footer_zone(const char *footer)
{
	struct spec s = {.version = '2', .ntypes = 1, .off = {0}, .footer = footer};
	struct img im;
	build(&s, &im);
	tz *z = NULL;
	allot_err rc = parse_copy(im.b, im.len, &z);
	if (rc != ALLOT_OK)
		fail_msg("footer %s rejected: %d", footer, rc);
	return z;
}

/* ---- names ---------------------------------------------------------------- */

static void test_name_valid(void **state)
{
	(void)state;
	static const struct { const char *name; bool ok; } cases[] = {
		{"UTC", true}, {"Etc/UTC", true}, {"Europe/Zurich", true},
		{"America/Argentina/Buenos_Aires", true}, {"Etc/GMT+5", true},
		{"Etc/GMT-14", true}, {"America/Port-au-Prince", true},
		{"", false}, {"/etc/passwd", false}, {"../etc/passwd", false},
		{"Europe/../../etc/passwd", false}, {"Europe/..", false},
		{"..", false}, {".", false}, {"Europe/./Zurich", false},
		{"Europe//Zurich", false}, {"Europe/", false}, {"Europe/Zur ich", false},
		{"Europe/Zürich", false}, {"Europe\\Zurich", false}, {"a;rm", false},
		{"Europe/Zurich\n", false}, {".hidden", false}, {"a..b", false}, {"Europe/Zurich.bak", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, ncases++)
		assert_int_equal(tz_name_valid(cases[i].name), cases[i].ok);
	char longname[TZ_NAME_MAX + 2];
	memset(longname, 'a', sizeof longname - 1);
	longname[TZ_NAME_MAX + 1] = '\0';
	assert_false(tz_name_valid(longname));
	longname[TZ_NAME_MAX] = '\0';
	assert_true(tz_name_valid(longname));
	assert_false(tz_name_valid(NULL));

	tz *z = (tz *)0x1;
	char eb[TZ_ERR_MAX] = "";
	assert_int_equal(tz_load("../../etc/passwd", &z, eb), ALLOT_E_INVALID);
	assert_ptr_equal(z, (tz *)0x1);
	assert_true(eb[0] != '\0');
	assert_int_equal(tz_load(NULL, &z, NULL), ALLOT_E_INVALID);
}

/* ---- UTC and loading ---------------------------------------------------------- */

static void test_utc(void **state)
{
	(void)state;
	/* Built in when the directory lacks them, so this runs everywhere. */
	static const char *const names[] = {"UTC", "Etc/UTC"};
	for (size_t i = 0; i < 2; i++) {
		tz *z = NULL;
		assert_int_equal(tz_load_dir("/nonexistent-zoneinfo", names[i], &z, NULL), ALLOT_OK);
		assert_string_equal(tz_name(z), names[i]);
		assert_int_equal(tz_offset_at(z, 0), 0);
		assert_int_equal(tz_offset_at(z, INT64_MIN), 0);
		assert_int_equal(tz_offset_at(z, INT64_MAX), 0);
		int64_t us = -1;
		assert_int_equal(tz_local_to_utc(z, 2026, 12, 3, 10, 0, 0, &us), ALLOT_OK);
		assert_int_equal(us, T("2026-12-03T10:00:00Z"));
		tz_free(z);
		ncases++;
	}
	tz *z = (tz *)0x1;
	char eb[TZ_ERR_MAX] = "";
	assert_int_equal(tz_load_dir("/nonexistent-zoneinfo", "Europe/Zurich", &z, eb),
			 ALLOT_E_NOT_FOUND);
	assert_ptr_equal(z, (tz *)0x1);
	assert_non_null(strstr(eb, "Europe/Zurich"));
}

static void test_system_utc(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	static const char *const names[] = {"UTC", "Etc/UTC", "Etc/GMT", "Zulu"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++, ncases++) {
		tz *z = load(names[i]);
		assert_int_equal(tz_offset_at(z, T("2026-07-01T00:00:00Z")), 0);
		assert_int_equal(tz_offset_at(z, T("9999-12-31T23:59:59Z")), 0);
		tz_free(z);
	}
	tz *z = (tz *)0x1;
	assert_int_equal(tz_load("Mars/Olympus_Mons", &z, NULL), ALLOT_E_NOT_FOUND);
	assert_int_equal(tz_load("Europe", &z, NULL), ALLOT_E_NOT_FOUND);   /* a directory */
	char right[512];
	snprintf(right, sizeof right, "%s/right/UTC", zoneinfo_dir());
	if (access(right, R_OK) == 0)   /* leap-second zones: refused */
		assert_int_equal(tz_load("right/UTC", &z, NULL), ALLOT_E_UNSUPPORTED);
	assert_ptr_equal(z, (tz *)0x1);
}

/* ---- offsets of real zones ---------------------------------------------------- */

static void test_offsets(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	static const struct { const char *zone, *at; int32_t off; } cases[] = {
		/* Zurich: both 2026 changes, LMT before the first transition,
		 * and the footer rule far past the file's last transition. */
		{"Europe/Zurich", "2026-03-29T00:59:59Z", 3600},
		{"Europe/Zurich", "2026-03-29T01:00:00Z", 7200},
		{"Europe/Zurich", "2026-10-25T00:59:59Z", 7200},
		{"Europe/Zurich", "2026-10-25T01:00:00Z", 3600},
		{"Europe/Zurich", "1850-01-01T00:00:00Z", 2048},
		{"Europe/Zurich", "1970-01-01T00:00:00Z", 3600},
		{"Europe/Zurich", "2100-03-28T00:59:59Z", 3600},
		{"Europe/Zurich", "2100-03-28T01:00:00Z", 7200},
		{"Europe/Zurich", "2500-10-31T00:59:59Z", 7200},
		{"Europe/Zurich", "2500-10-31T01:00:00Z", 3600},
		{"Europe/Zurich", "9999-07-01T00:00:00Z", 7200},
		{"Europe/Zurich", "9999-12-31T00:00:00Z", 3600},
		{"America/New_York", "2026-03-08T06:59:59Z", -18000},
		{"America/New_York", "2026-03-08T07:00:00Z", -14400},
		{"America/New_York", "2026-11-01T05:59:59Z", -14400},
		{"America/New_York", "2026-11-01T06:00:00Z", -18000},
		{"America/New_York", "2300-06-01T12:00:00Z", -14400},
		{"Asia/Kolkata", "2026-06-01T00:00:00Z", 19800},
		{"Asia/Kolkata", "2400-01-01T00:00:00Z", 19800},
		{"Asia/Kathmandu", "2026-06-01T00:00:00Z", 20700},
		{"Asia/Kathmandu", "1985-06-01T00:00:00Z", 19800},
		{"Asia/Kathmandu", "1985-12-31T18:29:59Z", 19800},
		{"Asia/Kathmandu", "1985-12-31T18:30:00Z", 20700},
		{"Australia/Lord_Howe", "2026-04-04T14:59:59Z", 39600},
		{"Australia/Lord_Howe", "2026-04-04T15:00:00Z", 37800},
		{"Australia/Lord_Howe", "2026-10-03T15:29:59Z", 37800},
		{"Australia/Lord_Howe", "2026-10-03T15:30:00Z", 39600},
		{"Australia/Lord_Howe", "2200-01-01T00:00:00Z", 39600},
		{"America/Santiago", "2026-09-06T03:59:59Z", -14400},
		{"America/Santiago", "2026-09-06T04:00:00Z", -10800},
		{"Europe/Dublin", "2026-01-15T00:00:00Z", 0},        /* negative DST */
		{"Europe/Dublin", "2026-07-15T00:00:00Z", 3600},
		{"America/Nuuk", "2030-03-31T00:59:59Z", -7200},     /* v3: rule time -1 */
		{"America/Nuuk", "2030-03-31T01:00:00Z", -3600},
		{"Pacific/Apia", "2011-12-30T09:59:59Z", -36000},    /* skipped a day */
		{"Pacific/Apia", "2011-12-30T10:00:00Z", 50400},
		{"Asia/Beirut", "2026-10-24T20:59:59Z", 10800},      /* ends at midnight */
		{"Asia/Beirut", "2026-10-24T21:00:00Z", 7200},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, ncases++) {
		tz *z = load(cases[i].zone);
		int32_t got = tz_offset_at(z, T(cases[i].at));
		if (got != cases[i].off)
			fail_msg("%s at %s: got %d want %d", cases[i].zone, cases[i].at, got,
				 cases[i].off);
		/* Microseconds just below the instant belong to the second before. */
		assert_int_equal(tz_offset_at(z, T(cases[i].at) + 999999), got);
		tz_free(z);
	}
}

static void test_to_local(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	tz *z = load("Europe/Zurich");
	tz_civil c;
	tz_to_local(z, T("2026-12-03T10:00:00.250000Z"), &c);
	assert_int_equal(c.year, 2026);
	assert_int_equal(c.month, 12);
	assert_int_equal(c.day, 3);
	assert_int_equal(c.hour, 11);
	assert_int_equal(c.minute, 0);
	assert_int_equal(c.second, 0);
	assert_int_equal(c.microsecond, 250000);
	assert_int_equal(c.weekday, 3);              /* Thursday */
	assert_int_equal(c.offset, 3600);
	tz_to_local(z, T("2026-03-28T22:59:59.999999Z"), &c);
	assert_int_equal(c.day, 28);
	assert_int_equal(c.hour, 23);
	assert_int_equal(c.weekday, 5);              /* Saturday */
	tz_free(z);

	tz *u = load("UTC");
	tz_to_local(u, -1, &c);                      /* 1969-12-31T23:59:59.999999 */
	assert_int_equal(c.year, 1969);
	assert_int_equal(c.month, 12);
	assert_int_equal(c.day, 31);
	assert_int_equal(c.second, 59);
	assert_int_equal(c.microsecond, 999999);
	assert_int_equal(c.weekday, 2);              /* Wednesday */
	tz_to_local(u, INT64_MIN, &c);               /* no overflow at the extremes */
	assert_int_equal(c.microsecond, 224192);
	tz_to_local(u, INT64_MAX, &c);
	assert_int_equal(c.microsecond, 775807);
	tz_free(u);
	ncases += 3;
}

/* ---- local -> UTC ------------------------------------------------------------------ */

static void test_local_to_utc(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	/* Expected: the earliest instant whose local time is >= the request
	 * (found by brute force with Python's zoneinfo). */
	static const struct {
		const char *zone;
		int y, m, d, hh, mm, ss;
		const char *want;
	} cases[] = {
		{"Europe/Zurich", 2026, 12, 3, 10, 0, 0, "2026-12-03T09:00:00Z"},
		{"Europe/Zurich", 2026, 3, 29, 2, 30, 0, "2026-03-29T01:00:00Z"},    /* gap */
		{"Europe/Zurich", 2026, 3, 29, 2, 0, 0, "2026-03-29T01:00:00Z"},     /* gap start */
		{"Europe/Zurich", 2026, 3, 29, 1, 59, 59, "2026-03-29T00:59:59Z"},
		{"Europe/Zurich", 2026, 3, 29, 3, 0, 0, "2026-03-29T01:00:00Z"},
		{"Europe/Zurich", 2026, 10, 25, 2, 30, 0, "2026-10-25T00:30:00Z"},   /* fold */
		{"Europe/Zurich", 2026, 10, 25, 2, 0, 0, "2026-10-25T00:00:00Z"},
		{"Europe/Zurich", 2026, 10, 25, 3, 0, 0, "2026-10-25T02:00:00Z"},
		{"Europe/Zurich", 2026, 10, 25, 0, 0, 0, "2026-10-24T22:00:00Z"},
		{"Europe/Zurich", 2026, 3, 29, 0, 0, 0, "2026-03-28T23:00:00Z"},
		{"America/New_York", 2026, 3, 8, 2, 30, 0, "2026-03-08T07:00:00Z"},
		{"America/New_York", 2026, 11, 1, 1, 30, 0, "2026-11-01T05:30:00Z"},
		{"America/New_York", 2026, 11, 1, 0, 0, 0, "2026-11-01T04:00:00Z"},
		{"Australia/Lord_Howe", 2026, 10, 4, 2, 15, 0, "2026-10-03T15:30:00Z"},
		{"Australia/Lord_Howe", 2026, 4, 5, 1, 45, 0, "2026-04-04T14:45:00Z"},
		{"Australia/Lord_Howe", 2026, 4, 5, 0, 0, 0, "2026-04-04T13:00:00Z"},
		{"Asia/Kathmandu", 2026, 6, 1, 0, 0, 0, "2026-05-31T18:15:00Z"},
		{"Asia/Kolkata", 2026, 6, 1, 0, 0, 0, "2026-05-31T18:30:00Z"},
		{"America/Santiago", 2026, 9, 6, 0, 0, 0, "2026-09-06T04:00:00Z"},   /* midnight skipped */
		{"America/Santiago", 2026, 9, 6, 0, 30, 0, "2026-09-06T04:00:00Z"},
		{"America/Santiago", 2026, 4, 5, 0, 0, 0, "2026-04-05T04:00:00Z"},
		{"America/Santiago", 2026, 4, 4, 23, 30, 0, "2026-04-05T02:30:00Z"},
		{"Asia/Beirut", 2026, 10, 25, 0, 0, 0, "2026-10-24T22:00:00Z"},
		{"Asia/Beirut", 2026, 10, 24, 23, 30, 0, "2026-10-24T20:30:00Z"},    /* fold at 23h */
		{"Asia/Beirut", 2026, 3, 29, 0, 0, 0, "2026-03-28T22:00:00Z"},       /* midnight skipped */
		{"Pacific/Apia", 2011, 12, 30, 0, 0, 0, "2011-12-30T10:00:00Z"},     /* day skipped */
		{"Pacific/Apia", 2011, 12, 30, 12, 0, 0, "2011-12-30T10:00:00Z"},
		{"Pacific/Apia", 2011, 12, 31, 0, 0, 0, "2011-12-30T10:00:00Z"},
		{"Pacific/Apia", 2011, 12, 29, 23, 59, 59, "2011-12-30T09:59:59Z"},
		{"Europe/Zurich", 2300, 3, 25, 2, 30, 0, "2300-03-25T01:00:00Z"},    /* footer */
		{"Europe/Zurich", 2300, 10, 28, 2, 30, 0, "2300-10-28T00:30:00Z"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, ncases++) {
		tz *z = load(cases[i].zone);
		int64_t us = 0;
		assert_int_equal(tz_local_to_utc(z, cases[i].y, cases[i].m, cases[i].d,
						 cases[i].hh, cases[i].mm, cases[i].ss, &us),
				 ALLOT_OK);
		if (us != T(cases[i].want)) {
			char b[TIME_FMT_MAX];
			fail_msg("%s %04d-%02d-%02d %02d:%02d:%02d: got %s want %s", cases[i].zone,
				 cases[i].y, cases[i].m, cases[i].d, cases[i].hh, cases[i].mm,
				 cases[i].ss, time_format_rfc3339(us, b), cases[i].want);
		}
		tz_free(z);
	}
}

static void test_local_to_utc_bad(void **state)
{
	(void)state;
	tz *z = NULL;
	assert_int_equal(tz_load_dir("/nonexistent-zoneinfo", "UTC", &z, NULL), ALLOT_OK);
	static const struct { int64_t y; int m, d, hh, mm, ss; } cases[] = {
		{2026, 0, 1, 0, 0, 0}, {2026, 13, 1, 0, 0, 0}, {2026, 1, 0, 0, 0, 0},
		{2026, 1, 32, 0, 0, 0}, {2026, 4, 31, 0, 0, 0}, {2026, 2, 29, 0, 0, 0},
		{2100, 2, 29, 0, 0, 0}, {1900, 2, 29, 0, 0, 0}, {2026, 1, 1, 24, 0, 0},
		{2026, 1, 1, -1, 0, 0}, {2026, 1, 1, 0, 60, 0}, {2026, 1, 1, 0, 0, 60},
		{2026, 1, 1, 0, 0, -1}, {100001, 1, 1, 0, 0, 0}, {-100001, 1, 1, 0, 0, 0},
		{INT64_MAX, 1, 1, 0, 0, 0}, {INT64_MIN, 1, 1, 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, ncases++) {
		int64_t us = 42;
		assert_int_equal(tz_local_to_utc(z, cases[i].y, cases[i].m, cases[i].d,
						 cases[i].hh, cases[i].mm, cases[i].ss, &us),
				 ALLOT_E_INVALID);
		assert_int_equal(us, 42);
	}
	/* The leap days that do exist. */
	int64_t us;
	assert_int_equal(tz_local_to_utc(z, 2024, 2, 29, 0, 0, 0, &us), ALLOT_OK);
	assert_int_equal(us, T("2024-02-29T00:00:00Z"));
	assert_int_equal(tz_local_to_utc(z, 2000, 2, 29, 23, 59, 59, &us), ALLOT_OK);
	assert_int_equal(us, T("2000-02-29T23:59:59Z"));
	assert_int_equal(tz_local_to_utc(z, -100000, 1, 1, 0, 0, 0, &us), ALLOT_OK);
	assert_int_equal(tz_local_to_utc(z, 100000, 12, 31, 23, 59, 59, &us), ALLOT_OK);
	tz_free(z);
}

/* ---- footer rules on synthetic zones ------------------------------------------------ */

static void test_footer_rules(void **state)
{
	(void)state;
	static const struct { const char *footer, *at; int32_t off; } cases[] = {
		/* Zurich's rule alone, no transitions. */
		{"CET-1CEST,M3.5.0,M10.5.0/3", "2026-03-29T00:59:59Z", 3600},
		{"CET-1CEST,M3.5.0,M10.5.0/3", "2026-03-29T01:00:00Z", 7200},
		{"CET-1CEST,M3.5.0,M10.5.0/3", "2026-10-25T00:59:59Z", 7200},
		{"CET-1CEST,M3.5.0,M10.5.0/3", "2026-10-25T01:00:00Z", 3600},
		{"CET-1CEST,M3.5.0,M10.5.0/3", "1901-01-01T00:00:00Z", 3600},
		/* Jn: 1-based, Feb 29 never counted: J60 is March 1 even in 2024. */
		{"XST-1XDT,J60/2,J300/3", "2024-03-01T00:59:59Z", 3600},
		{"XST-1XDT,J60/2,J300/3", "2024-03-01T01:00:00Z", 7200},
		{"XST-1XDT,J60/2,J300/3", "2024-10-27T00:59:59Z", 7200},
		{"XST-1XDT,J60/2,J300/3", "2024-10-27T01:00:00Z", 3600},
		/* n: 0-based, Feb 29 counted: day 59 is Feb 29 in 2024, Mar 1 in 2025. */
		{"XST-1XDT,59/2,299/3", "2024-02-29T00:59:59Z", 3600},
		{"XST-1XDT,59/2,299/3", "2024-02-29T01:00:00Z", 7200},
		{"XST-1XDT,59/2,299/3", "2024-10-26T01:00:00Z", 3600},
		{"XST-1XDT,59/2,299/3", "2025-02-28T12:00:00Z", 3600},
		{"XST-1XDT,59/2,299/3", "2025-03-01T01:00:00Z", 7200},
		/* All-year DST (a v3 idiom). */
		{"EST5EDT,0/0,J365/25", "2026-01-01T00:00:00Z", -14400},
		{"EST5EDT,0/0,J365/25", "2026-01-01T05:00:00Z", -14400},
		{"EST5EDT,0/0,J365/25", "2026-07-01T00:00:00Z", -14400},
		{"EST5EDT,0/0,J365/25", "2028-12-31T23:59:59Z", -14400},
		/* DST without a rule: POSIX default (US) rule. */
		{"EST5EDT", "2026-03-08T06:59:59Z", -18000},
		{"EST5EDT", "2026-03-08T07:00:00Z", -14400},
		{"EST5EDT", "2026-11-01T06:00:00Z", -18000},
		/* Explicit DST offset, negative DST (Dublin), southern (Lord Howe). */
		{"IST-1GMT0,M10.5.0,M3.5.0/1", "2026-01-15T00:00:00Z", 0},
		{"IST-1GMT0,M10.5.0,M3.5.0/1", "2026-03-29T00:59:59Z", 0},
		{"IST-1GMT0,M10.5.0,M3.5.0/1", "2026-03-29T01:00:00Z", 3600},
		{"IST-1GMT0,M10.5.0,M3.5.0/1", "2026-10-25T00:59:59Z", 3600},
		{"IST-1GMT0,M10.5.0,M3.5.0/1", "2026-10-25T01:00:00Z", 0},
		{"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2026-04-04T14:59:59Z", 39600},
		{"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2026-04-04T15:00:00Z", 37800},
		{"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2026-10-03T15:29:59Z", 37800},
		{"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2026-10-03T15:30:00Z", 39600},
		/* v3: negative rule times (Nuuk), hours past 24 (Santiago, 167). */
		{"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2026-03-29T00:59:59Z", -7200},
		{"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2026-03-29T01:00:00Z", -3600},
		{"<-04>4<-03>,M9.1.6/24,M4.1.6/24", "2026-09-06T03:59:59Z", -14400},
		{"<-04>4<-03>,M9.1.6/24,M4.1.6/24", "2026-09-06T04:00:00Z", -10800},
		{"AAA0BBB,M3.5.0/167,M10.5.0", "2026-04-04T22:59:59Z", 0},
		{"AAA0BBB,M3.5.0/167,M10.5.0", "2026-04-04T23:00:00Z", 3600},
		/* Fixed offsets with minutes and seconds. */
		{"<+0545>-5:45", "2026-06-01T00:00:00Z", 20700},
		{"IST-5:30", "2026-06-01T00:00:00Z", 19800},
		{"LMT-0:34:08", "2026-06-01T00:00:00Z", 2048},
		{"<-0330>3:30", "2026-06-01T00:00:00Z", -12600},
		{"UTC0", "2026-06-01T00:00:00Z", 0},
		{"", "2026-06-01T00:00:00Z", 0},            /* empty: type 0 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, ncases++) {
		tz *z = footer_zone(cases[i].footer);
		int32_t got = tz_offset_at(z, T(cases[i].at));
		if (got != cases[i].off)
			fail_msg("footer \"%s\" at %s: got %d want %d", cases[i].footer,
				 cases[i].at, got, cases[i].off);
		tz_free(z);
	}

	/* Gap and fold resolution purely from the rule. */
	tz *z = footer_zone("CET-1CEST,M3.5.0,M10.5.0/3");
	int64_t us;
	assert_int_equal(tz_local_to_utc(z, 2030, 3, 31, 2, 30, 0, &us), ALLOT_OK);
	assert_int_equal(us, T("2030-03-31T01:00:00Z"));
	assert_int_equal(tz_local_to_utc(z, 2030, 10, 27, 2, 30, 0, &us), ALLOT_OK);
	assert_int_equal(us, T("2030-10-27T00:30:00Z"));
	/* Year 20000: the rule still applies. */
	assert_int_equal(tz_local_to_utc(z, 20000, 7, 1, 12, 0, 0, &us), ALLOT_OK);
	assert_int_equal(tz_offset_at(z, us), 7200);
	assert_int_equal(tz_local_to_utc(z, 20000, 12, 1, 12, 0, 0, &us), ALLOT_OK);
	assert_int_equal(tz_offset_at(z, us), 3600);
	tz_free(z);
	z = footer_zone("EST5EDT,0/0,J365/25");
	assert_int_equal(tz_local_to_utc(z, 2027, 1, 1, 0, 0, 0, &us), ALLOT_OK);
	assert_int_equal(us, T("2027-01-01T04:00:00Z"));
	tz_free(z);
	ncases += 3;
}

static void test_footer_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"CET", "CE-1", "C3T-1", "CET-1CEST,M3.5.0", "CET-1CEST,M3.5.0,",
		"CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M0.5.0,M10.5.0",
		"CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.0.0,M10.5.0",
		"CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,M3.5,M10.5.0", "CET-1CEST,M3.5.0.1,M10.5.0",
		"CET-1CEST,J0,J365", "CET-1CEST,J366,J1", "CET-1CEST,366,1",
		"CET-1CEST,M3.5.0/168,M10.5.0", "CET-1CEST,M3.5.0/-168,M10.5.0",
		"CET-1CEST,M3.5.0/2:60,M10.5.0", "CET25", "CET-1:60", "CET-1:00:60",
		"CET-1CEST,M3.5.0,M10.5.0x", "CET-1CEST;M3.5.0,M10.5.0", "<+05", "<+0>-5",
		"<+05>", "<+0 5>-5", "-1", "CET-", "CET+", "CET-1CEST-25",
		"CET-1CEST,M3.5.0,M10.5.0/3 ", " CET-1", "CET-1\tCEST",
		"CET-0001", "CET-1CEST,,M10.5.0",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++, ncases++) {
		struct spec s = {.version = '2', .ntypes = 1, .footer = bad[i]};
		struct img im;
		build(&s, &im);
		tz *z = (tz *)0x1;
		allot_err rc = parse_copy(im.b, im.len, &z);
		if (rc != ALLOT_E_INVALID)
			fail_msg("footer \"%s\" accepted (rc %d)", bad[i], rc);
		assert_ptr_equal(z, (tz *)0x1);
	}
	/* A NUL inside the footer. */
	struct spec s = {.version = '2', .ntypes = 1, .footer = "CET-1"};
	struct img im;
	build(&s, &im);
	im.b[im.len - 3] = '\0';
	tz *z = NULL;
	assert_int_equal(parse_copy(im.b, im.len, &z), ALLOT_E_INVALID);
}

/* ---- TZif structure ----------------------------------------------------------------- */

static const struct spec base_spec = {
	.version = '2',
	.ntrans = 2,
	.trans = {1000000, 2000000},
	.idx = {1, 0},
	.ntypes = 2,
	.off = {3600, 7200},
	.dst = {0, 1},
	.footer = "CET-1CEST,M3.5.0,M10.5.0/3",
};

static void test_tzif_good(void **state)
{
	(void)state;
	/* Each accepted version; before the first transition type 0 applies. */
	static const char versions[] = {'2', '3', '4'};
	for (size_t i = 0; i < sizeof versions; i++, ncases++) {
		struct spec s = base_spec;
		s.version = versions[i];
		struct img im;
		build(&s, &im);
		tz *z = NULL;
		assert_int_equal(parse_copy(im.b, im.len, &z), ALLOT_OK);
		assert_int_equal(tz_offset_at(z, 999999LL * US_PER_SEC), 3600);
		assert_int_equal(tz_offset_at(z, 1000000LL * US_PER_SEC), 7200);
		assert_int_equal(tz_offset_at(z, 1999999LL * US_PER_SEC), 7200);
		assert_int_equal(tz_offset_at(z, T("2026-07-01T00:00:00Z")), 7200);  /* footer */
		assert_int_equal(tz_offset_at(z, T("2026-12-01T00:00:00Z")), 3600);
		tz_free(z);
	}
	/* Version 1: 32-bit data, no footer: the last type stays forever. */
	struct spec s = base_spec;
	s.version = 0;
	s.footer = NULL;
	struct img im;
	build(&s, &im);
	tz *z = NULL;
	assert_int_equal(parse_copy(im.b, im.len, &z), ALLOT_OK);
	assert_int_equal(tz_offset_at(z, 0), 3600);
	assert_int_equal(tz_offset_at(z, 1500000LL * US_PER_SEC), 7200);
	assert_int_equal(tz_offset_at(z, T("2026-07-01T00:00:00Z")), 3600);
	int64_t us;
	assert_int_equal(tz_local_to_utc(z, 1970, 1, 12, 14, 0, 0, &us), ALLOT_OK);
	tz_free(z);
	/* v2 with an empty footer: same. */
	s = base_spec;
	s.footer = "";
	build(&s, &im);
	assert_int_equal(parse_copy(im.b, im.len, &z), ALLOT_OK);
	assert_int_equal(tz_offset_at(z, T("2026-07-01T00:00:00Z")), 3600);
	tz_free(z);
	/* Negative 64-bit transition times (before 1901: beyond 32 bits). */
	s = base_spec;
	s.trans[0] = -5000000000LL;
	s.trans[1] = -4000000000LL;
	build(&s, &im);
	assert_int_equal(parse_copy(im.b, im.len, &z), ALLOT_OK);
	assert_int_equal(tz_offset_at(z, -5000000001LL * US_PER_SEC), 3600);
	assert_int_equal(tz_offset_at(z, -4500000000LL * US_PER_SEC), 7200);
	tz_free(z);
	ncases += 3;
}

enum mut {
	M_MAGIC, M_VERSION, M_VERSION2, M_TYPECNT0, M_CHARCNT0, M_ISUTCNT, M_ISSTDCNT,
	M_TIMECNT_HUGE, M_TYPECNT_HUGE, M_V1_TIMECNT_HUGE, M_IDX_RANGE, M_TRANS_EQUAL,
	M_TRANS_DESC, M_UTOFF_MIN, M_UTOFF_BIG, M_UTOFF_SMALL, M_ISDST2, M_DESIG,
	M_LEAPCNT_HUGE, M_NO_FOOTER, M_FOOTER_UNTERMINATED, M_FOOTER_NO_LEADING_NL,
	M_EMPTY, M_HEADER_ONLY, M_ISSTD_VALUE, M__COUNT
};

static void mutate(enum mut m, struct img *im, struct spec *s)
{
	uint8_t *h2 = im->b + im->hdr2, *d = im->b + im->data;
	switch (m) {
	case M_MAGIC: im->b[3] = 'X'; break;
	case M_VERSION: im->b[4] = '5'; h2[4] = '5'; break;
	case M_VERSION2: h2[4] = '3'; break;
	case M_TYPECNT0: put32(h2 + 36, 0); break;
	case M_CHARCNT0: put32(h2 + 40, 0); break;
	case M_ISUTCNT: put32(h2 + 20, 1); break;
	case M_ISSTDCNT: put32(h2 + 24, 3); break;
	case M_TIMECNT_HUGE: put32(h2 + 32, 0xFFFFFFFFu); break;
	case M_TYPECNT_HUGE: put32(h2 + 36, 0x7FFFFFFFu); break;
	case M_V1_TIMECNT_HUGE: put32(im->b + 32, 0xFFFFFFFFu); break;
	case M_IDX_RANGE: d[16] = 2; break;
	case M_TRANS_EQUAL: put64(d + 8, s->trans[0]); break;
	case M_TRANS_DESC: put64(d + 8, s->trans[0] - 1); break;
	case M_UTOFF_MIN: put32(d + 18, 0x80000000u); break;
	case M_UTOFF_BIG: put32(d + 18, 93600); break;
	case M_UTOFF_SMALL: put32(d + 18, (uint32_t)-90000); break;
	case M_ISDST2: d[18 + 4] = 2; break;
	case M_DESIG: d[18 + 5] = 4; break;
	case M_LEAPCNT_HUGE: put32(h2 + 28, 0x10000000u); break;
	case M_NO_FOOTER: im->len = im->data + 16 + 2 + 12 + 4; break;
	case M_FOOTER_UNTERMINATED: im->len -= 1; break;
	case M_FOOTER_NO_LEADING_NL: im->b[im->data + 34] = 'X'; break;
	case M_EMPTY: im->len = 0; break;
	case M_HEADER_ONLY: im->len = 44; break;
	case M_ISSTD_VALUE:
		/* isstdcnt = typecnt with a value of 2; make room for the bytes. */
		put32(h2 + 24, 2);
		memmove(d + 34 + 2, d + 34, im->len - (im->data + 34));
		d[34] = 2;
		d[35] = 0;
		im->len += 2;
		break;
	case M__COUNT: break;
	}
}

static void test_tzif_malformed(void **state)
{
	(void)state;
	for (int m = 0; m < M__COUNT; m++, ncases++) {
		struct spec s = base_spec;
		struct img im;
		build(&s, &im);
		mutate((enum mut)m, &im, &s);
		tz *z = (tz *)0x1;
		allot_err rc = parse_copy(im.b, im.len, &z);
		if (rc != ALLOT_E_INVALID)
			fail_msg("mutation %d accepted or wrong error (rc %d)", m, rc);
		assert_ptr_equal(z, (tz *)0x1);
	}
	/* Leap-second records: refused as unsupported, not as malformed. */
	struct spec s = base_spec;
	s.leaps = 1;
	struct img im;
	build(&s, &im);
	tz *z = (tz *)0x1;
	assert_int_equal(parse_copy(im.b, im.len, &z), ALLOT_E_UNSUPPORTED);
	/* NULL buffer, huge length. */
	assert_int_equal(tz_parse(NULL, 0, NULL, &z, NULL), ALLOT_E_INVALID);
	assert_int_equal(tz_parse(im.b, (size_t)TZ_FILE_MAX + 1, NULL, &z, NULL), ALLOT_E_INVALID);
	assert_ptr_equal(z, (tz *)0x1);
	ncases += 3;
}

/* Every proper prefix of a valid file is rejected cleanly. */
static void check_truncations(const uint8_t *b, size_t len)
{
	tz *z = NULL;
	assert_int_equal(parse_copy(b, len, &z), ALLOT_OK);
	tz_free(z);
	for (size_t n = 0; n < len; n++, ncases++) {
		z = (tz *)0x1;
		allot_err rc = parse_copy(b, n, &z);
		if (rc != ALLOT_E_INVALID)
			fail_msg("prefix of %zu/%zu bytes: rc %d", n, len, rc);
		assert_ptr_equal(z, (tz *)0x1);
	}
}

static void test_tzif_truncated(void **state)
{
	(void)state;
	struct spec s = base_spec;
	struct img im;
	build(&s, &im);
	check_truncations(im.b, im.len);
	s.version = 0;
	s.footer = NULL;
	build(&s, &im);
	check_truncations(im.b, im.len);

	char path[512];
	snprintf(path, sizeof path, "%s/Europe/Zurich", zoneinfo_dir());
	FILE *f = fopen(path, "rb");
	if (!f) {
		print_message("SKIP: real-file truncations: %s missing\n", path);
		return;
	}
	static uint8_t buf[TZ_FILE_MAX];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	check_truncations(buf, n);
}

/* Random single-byte corruptions: any outcome but a crash, and an accepted
 * zone answers within the offset bounds. */
static void test_tzif_corrupt(void **state)
{
	(void)state;
	struct spec s = base_spec;
	struct img im;
	build(&s, &im);
	uint32_t r = 12345;
	for (int i = 0; i < 3000; i++, ncases++) {
		struct img c = im;
		r = r * 1103515245u + 12345u;
		size_t at = (r >> 8) % c.len;
		r = r * 1103515245u + 12345u;
		c.b[at] = (uint8_t)(r >> 16);
		tz *z = NULL;
		if (parse_copy(c.b, c.len, &z) == ALLOT_OK) {
			int32_t o = tz_offset_at(z, (int64_t)(r % 4000000000u) * US_PER_SEC);
			assert_true(o >= -89999 && o <= 93599);
			int64_t us;
			assert_int_equal(tz_local_to_utc(z, 2026, 3, 29, 2, 30, 0, &us), ALLOT_OK);
			tz_free(z);
		}
	}
}

/* ---- every zone against glibc, and the local->UTC contract ------------------------- */

static int32_t glibc_offset(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!localtime_r(&tt, &tm))
		fail_msg("localtime_r failed");
	return (int32_t)tm.tm_gmtoff;
}

/* Compares offsets with glibc (an independent TZif reader; test code only)
 * every 5 days 1950..2060 and at each change found, for every zone in
 * zone1970.tab; checks tz_local_to_utc returns the earliest instant with the
 * same local time, on random instants 1900..2400. */
static void test_all_zones(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	char path[512];
	snprintf(path, sizeof path, "%s/zone1970.tab", zoneinfo_dir());
	FILE *f = fopen(path, "r");
	if (!f) {
		print_message("SKIP: %s missing\n", path);
		skip();
	}
	char *saved_tz = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
	char line[1024];
	int zones = 0, changes = 0;
	uint64_t r = 88172645463325252ULL;
	while (fgets(line, sizeof line, f)) {
		if (line[0] == '#')
			continue;
		char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
		if (!tab2)
			continue;
		char *name = tab2 + 1;
		name[strcspn(name, "\t\n")] = '\0';
		tz *z = load(name);
		char tzv[300];
		snprintf(tzv, sizeof tzv, ":%s", name);
		setenv("TZ", tzv, 1);
		tzset();
		zones++;
		int64_t a = -631152000;    /* 1950 */
		int32_t oa = tz_offset_at(z, a * US_PER_SEC);
		for (int64_t b = a + 5 * 86400; b < 2840140800LL; a = b, b += 5 * 86400) {
			int32_t ob = tz_offset_at(z, b * US_PER_SEC);
			if (ob != glibc_offset(b))
				fail_msg("%s at %lld: %d, glibc %d", name, (long long)b, ob, glibc_offset(b));
			if (ob != oa) {
				int64_t lo = a, hi = b;
				while (hi - lo > 1) {
					int64_t mid = lo + (hi - lo) / 2;
					if (tz_offset_at(z, mid * US_PER_SEC) == oa)
						lo = mid;
					else
						hi = mid;
				}
				if (glibc_offset(hi - 1) != tz_offset_at(z, (hi - 1) * US_PER_SEC) ||
				    glibc_offset(hi) != tz_offset_at(z, hi * US_PER_SEC))
					fail_msg("%s: change at %lld differs from glibc", name, (long long)hi);
				changes++;
			}
			oa = ob;
		}
		for (int i = 0; i < 200; i++) {
			xorshift64(&r);
			int64_t t = (int64_t)(r % 15778476000ULL) - 2208988800LL;  /* 1900..2400 */
			tz_civil c, c2;
			tz_to_local(z, t * US_PER_SEC, &c);
			int64_t u;
			assert_int_equal(tz_local_to_utc(z, c.year, c.month, c.day, c.hour, c.minute,
							 c.second, &u), ALLOT_OK);
			tz_to_local(z, u, &c2);
			if (u > t * US_PER_SEC || c2.year != c.year || c2.month != c.month ||
			    c2.day != c.day || c2.hour != c.hour || c2.minute != c.minute ||
			    c2.second != c.second)
				fail_msg("%s: local->UTC of local(%lld) gave %lld", name, (long long)t,
					 (long long)(u / US_PER_SEC));
			/* Earliest: one second before u has another local time. */
			tz_to_local(z, u - US_PER_SEC, &c2);
			assert_false(c2.year == c.year && c2.month == c.month && c2.day == c.day &&
				     c2.hour == c.hour && c2.minute == c.minute && c2.second == c.second);
		}
		tz_free(z);
	}
	fclose(f);
	if (saved_tz) {
		setenv("TZ", saved_tz, 1);
		free(saved_tz);
	} else {
		unsetenv("TZ");
	}
	tzset();
	print_message("all zones: %d zones, %d changes matched glibc\n", zones, changes);
	assert_true(zones > 300);
	assert_true(changes > 10000);
	ncases += zones;
}

/* ---- cache, directories, threads ---------------------------------------------------- */

static void test_cache(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	tz *a = load("Europe/Zurich"), *b = load("Europe/Zurich");
	assert_ptr_equal(a, b);                      /* served from the cache */
	tz_free(b);
	tz_cache_clear();
	tz *c = load("Europe/Zurich");               /* re-read */
	assert_int_equal(tz_offset_at(a, T("2026-07-01T00:00:00Z")), 7200);  /* a still valid */
	assert_int_equal(tz_offset_at(c, T("2026-07-01T00:00:00Z")), 7200);
	tz_free(a);
	tz_free(c);
	tz_free(NULL);
	ncases += 3;
}

static void test_load_dir(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_tz_XXXXXX";
	assert_non_null(mkdtemp(dir));
	char sub[600], good[600], bad[600];
	snprintf(sub, sizeof sub, "%s/Test", dir);
	snprintf(good, sizeof good, "%s/Test/Zone", dir);
	snprintf(bad, sizeof bad, "%s/Test/Bad", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	struct spec s = base_spec;
	struct img im;
	build(&s, &im);
	FILE *f = fopen(good, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(im.b, 1, im.len, f), im.len);
	fclose(f);
	f = fopen(bad, "wb");
	assert_non_null(f);
	fputs("not a zone", f);
	fclose(f);

	tz *z = NULL;
	char eb[TZ_ERR_MAX] = "";
	assert_int_equal(tz_load_dir(dir, "Test/Zone", &z, eb), ALLOT_OK);
	assert_string_equal(tz_name(z), "Test/Zone");
	assert_int_equal(tz_offset_at(z, 1500000LL * US_PER_SEC), 7200);
	tz_free(z);
	z = (tz *)0x1;
	assert_int_equal(tz_load_dir(dir, "Test/Bad", &z, eb), ALLOT_E_INVALID);
	assert_non_null(strstr(eb, "Test/Bad"));
	assert_int_equal(tz_load_dir(dir, "Test", &z, eb), ALLOT_E_NOT_FOUND);
	assert_int_equal(tz_load_dir(dir, "Test/Missing", &z, eb), ALLOT_E_NOT_FOUND);
	assert_int_equal(tz_load_dir(dir, "Test/Zone/x", &z, eb), ALLOT_E_NOT_FOUND);
	assert_int_equal(tz_load_dir(dir, "../Test/Zone", &z, eb), ALLOT_E_INVALID);
	assert_ptr_equal(z, (tz *)0x1);

	/* TZDIR redirects tz_load. */
	char *saved = getenv("TZDIR") ? strdup(getenv("TZDIR")) : NULL;
	setenv("TZDIR", dir, 1);
	assert_int_equal(tz_load("Test/Zone", &z, eb), ALLOT_OK);
	tz_free(z);
	if (saved) {
		setenv("TZDIR", saved, 1);
		free(saved);
	} else {
		unsetenv("TZDIR");
	}
	tz_cache_clear();
	unlink(good);
	unlink(bad);
	rmdir(sub);
	rmdir(dir);
	ncases += 8;
}

#define NTHREADS 4

static void *thread_main(void *arg)
{
	const char *const *names = arg;
	for (int i = 0; i < 300; i++) {
		tz *z = NULL;
		if (tz_load(names[i % 3], &z, NULL) != ALLOT_OK)
			return (void *)1;
		int64_t us;
		if (tz_local_to_utc(z, 2026, 3, 29, 2, 30, 0, &us) != ALLOT_OK)
			return (void *)1;
		if (strcmp(tz_name(z), "Europe/Zurich") == 0 &&
		    (us != 1774746000LL * US_PER_SEC || tz_offset_at(z, us) != 7200))
			return (void *)1;
		tz_free(z);
		if (i % 100 == 99)
			tz_cache_clear();
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	NEED_ZONEINFO();
	static const char *const names[] = {"Europe/Zurich", "America/New_York", "Asia/Kolkata"};
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, (void *)names), 0);
	for (int i = 0; i < NTHREADS; i++) {
		void *ret;
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	ncases += NTHREADS;
}

static int teardown_all(void **state)
{
	(void)state;
	tz_cache_clear();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_utc),
		cmocka_unit_test(test_system_utc),
		cmocka_unit_test(test_offsets),
		cmocka_unit_test(test_to_local),
		cmocka_unit_test(test_local_to_utc),
		cmocka_unit_test(test_local_to_utc_bad),
		cmocka_unit_test(test_footer_rules),
		cmocka_unit_test(test_footer_bad),
		cmocka_unit_test(test_tzif_good),
		cmocka_unit_test(test_tzif_malformed),
		cmocka_unit_test(test_tzif_truncated),
		cmocka_unit_test(test_tzif_corrupt),
		cmocka_unit_test(test_all_zones),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_load_dir),
		cmocka_unit_test(test_threads),
	};
	int rc = cmocka_run_group_tests(tests, NULL, teardown_all);
	printf("test_tz: %d cases run\n", ncases);
	return rc;
}
