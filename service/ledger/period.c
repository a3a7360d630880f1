/* period.c — accounting periods (day, ISO week, month, quarter, year,
 * total) in a zone, their keys, and rollover.  See period.h.
 *
 * A calendar period is identified by an index: days since 1970-01-01 of
 * the local date (day), weeks since the Monday 1969-12-29 (week),
 * year * 12 + month - 1 (month), year * 4 + quarter - 1 (quarter), or the
 * year.  Period idx is [start(idx), start(idx + 1)) where start() is local
 * midnight of its first date, resolved by tz_local_to_utc.
 */
#include "ledger/period.h"

#include <stdio.h>
#include <string.h>

#include "common/money.h"
#include "common/timeutil.h"

/* Keys carry four-digit years. */
#define PERIOD_YEAR_MIN 1
#define PERIOD_YEAR_MAX 9999
/* Offsets never exceed 26 h, so the local date of an instant is within a
 * day of the period that holds it: two steps of correction always suffice. */
#define PERIOD_ADJUST_MAX 4

static const char *const kind_names[] = {
	[PERIOD_DAY] = "day",       [PERIOD_WEEK] = "week",
	[PERIOD_MONTH] = "month",   [PERIOD_QUARTER] = "quarter",
	[PERIOD_YEAR] = "year",     [PERIOD_TOTAL] = "total",
};

int period_kind_parse(const char *s, period_kind *out)
{
	if (!s)
		return -1;
	for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++) {
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (period_kind)i;
			return 0;
		}
	}
	return -1;
}

const char *period_kind_name(period_kind k)
{
	if ((unsigned)k >= sizeof kind_names / sizeof kind_names[0])
		return "?";
	return kind_names[k];
}

/* 0 = Monday .. 6 = Sunday. */
static int weekday_mon0(int64_t days)
{
	return (int)(((days + 3) % 7 + 7) % 7);
}

/* ---- index <-> dates -------------------------------------------------------- */

static int64_t index_of(period_kind k, int64_t y, int m, int d)
{
	switch (k) {
	case PERIOD_DAY:
		return time_days_from_civil(y, (unsigned)m, (unsigned)d);
	case PERIOD_WEEK:
		return time_floor_div(time_days_from_civil(y, (unsigned)m, (unsigned)d) + 3, 7);
	case PERIOD_MONTH:
		return y * 12 + (m - 1);
	case PERIOD_QUARTER:
		return y * 4 + (m - 1) / 3;
	default:
		return y;
	}
}

/* The local date on which period idx begins. */
static void start_date(period_kind k, int64_t idx, int64_t *y, int *m, int *d)
{
	unsigned um = 1, ud = 1;
	switch (k) {
	case PERIOD_DAY:
		time_civil_from_days(idx, y, &um, &ud);
		break;
	case PERIOD_WEEK:
		time_civil_from_days(idx * 7 - 3, y, &um, &ud);
		break;
	case PERIOD_MONTH:
		*y = time_floor_div(idx, 12);
		um = (unsigned)(idx - *y * 12) + 1;
		break;
	case PERIOD_QUARTER:
		*y = time_floor_div(idx, 4);
		um = (unsigned)(idx - *y * 4) * 3 + 1;
		break;
	default:
		*y = idx;
		break;
	}
	*m = (int)um;
	*d = (int)ud;
}

/* ISO 8601 week-numbering year and week of the week that starts on Monday
 * `monday` (days since the epoch): the year of its Thursday. */
static void iso_week(int64_t monday, int64_t *iso_year, int *week)
{
	int64_t thu = monday + 3, y;
	unsigned m, d;
	time_civil_from_days(thu, &y, &m, &d);
	*iso_year = y;
	*week = (int)((thu - time_days_from_civil(y, 1, 1)) / 7) + 1;
}

/* Year written in the key of period idx. */
static int64_t key_year(period_kind k, int64_t idx)
{
	int64_t y;
	int m, d;
	if (k == PERIOD_WEEK) {
		int w;
		iso_week(idx * 7 - 3, &y, &w);
		return y;
	}
	start_date(k, idx, &y, &m, &d);
	return y;
}

static allot_err start_of(const tz *z, period_kind k, int64_t idx, int64_t *us)
{
	int64_t y;
	int m, d;
	start_date(k, idx, &y, &m, &d);
	return tz_local_to_utc(z, y, m, d, 0, 0, 0, us);
}

/* The index and bounds of the calendar period holding at_us. */
static allot_err locate(const tz *z, period_kind k, int64_t at_us, int64_t *idx_out,
			int64_t *s_out, int64_t *e_out)
{
	tz_civil c;
	tz_to_local(z, at_us, &c);
	/* Cheap pre-check; the exact one is on the key year below. */
	if (c.year < PERIOD_YEAR_MIN - 1 || c.year > PERIOD_YEAR_MAX + 1)
		return ALLOT_E_INVALID;
	int64_t idx = index_of(k, c.year, c.month, c.day), s, e;
	allot_err rc;
	if ((rc = start_of(z, k, idx, &s)) != ALLOT_OK ||
	    (rc = start_of(z, k, idx + 1, &e)) != ALLOT_OK)
		return rc;
	/* The local date and the [start, next start) tiling disagree only in
	 * folds or gaps at midnight (e.g. a fall-back from 00:30 to 23:30):
	 * the tiling wins. */
	for (int i = 0; i < PERIOD_ADJUST_MAX && at_us < s; i++) {
		idx--;
		e = s;
		if ((rc = start_of(z, k, idx, &s)) != ALLOT_OK)
			return rc;
	}
	for (int i = 0; i < PERIOD_ADJUST_MAX && at_us >= e; i++) {
		idx++;
		s = e;
		if ((rc = start_of(z, k, idx + 1, &e)) != ALLOT_OK)
			return rc;
	}
	if (at_us < s || at_us >= e)
		return ALLOT_E_INTERNAL;
	int64_t ky = key_year(k, idx);
	if (ky < PERIOD_YEAR_MIN || ky > PERIOD_YEAR_MAX)
		return ALLOT_E_INVALID;
	*idx_out = idx;
	*s_out = s;
	*e_out = e;
	return ALLOT_OK;
}

/* ---- public ------------------------------------------------------------------ */

allot_err period_bounds(const tz *z, period_kind k, int64_t at_us,
			int64_t *start_us, int64_t *end_us)
{
	int64_t idx, s, e;
	if ((unsigned)k > PERIOD_TOTAL)
		return ALLOT_E_INVALID;
	if (k == PERIOD_TOTAL) {
		if (at_us == INT64_MAX)
			return ALLOT_E_INVALID;
		*start_us = INT64_MIN;
		*end_us = INT64_MAX;
		return ALLOT_OK;
	}
	allot_err rc = locate(z, k, at_us, &idx, &s, &e);
	if (rc != ALLOT_OK)
		return rc;
	*start_us = s;
	*end_us = e;
	return ALLOT_OK;
}

allot_err period_next(const tz *z, period_kind k, int64_t at_us,
		      int64_t *start_us, int64_t *end_us)
{
	int64_t s, e;
	if (k == PERIOD_TOTAL)
		return ALLOT_E_INVALID;
	allot_err rc = period_bounds(z, k, at_us, &s, &e);
	if (rc != ALLOT_OK)
		return rc;
	return period_bounds(z, k, e, start_us, end_us);
}

allot_err period_prev(const tz *z, period_kind k, int64_t at_us,
		      int64_t *start_us, int64_t *end_us)
{
	int64_t s, e;
	if (k == PERIOD_TOTAL)
		return ALLOT_E_INVALID;
	allot_err rc = period_bounds(z, k, at_us, &s, &e);
	if (rc != ALLOT_OK)
		return rc;
	return period_bounds(z, k, s - 1, start_us, end_us);
}

/* Writes v as exactly n decimal digits (v < 10^n); returns the end. */
static char *put_digits(char *p, unsigned v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + n;
}

allot_err period_key(const tz *z, period_kind k, int64_t at_us, char key[PERIOD_KEY_MAX])
{
	int64_t idx, s, e, y;
	int m, d, w = 0;
	if ((unsigned)k > PERIOD_TOTAL)
		return ALLOT_E_INVALID;
	if (k == PERIOD_TOTAL) {
		if (at_us == INT64_MAX)
			return ALLOT_E_INVALID;
		snprintf(key, PERIOD_KEY_MAX, "total");
		return ALLOT_OK;
	}
	allot_err rc = locate(z, k, at_us, &idx, &s, &e);
	if (rc != ALLOT_OK)
		return rc;
	/* Built by hand: every field is range-checked, widths are fixed. */
	start_date(k, idx, &y, &m, &d);
	char *p = key;
	if (k == PERIOD_WEEK)
		iso_week(idx * 7 - 3, &y, &w);
	p = put_digits(p, (unsigned)y, 4);
	switch (k) {
	case PERIOD_DAY:
		*p++ = '-';
		p = put_digits(p, (unsigned)m, 2);
		*p++ = '-';
		p = put_digits(p, (unsigned)d, 2);
		break;
	case PERIOD_WEEK:
		*p++ = '-';
		*p++ = 'W';
		p = put_digits(p, (unsigned)w, 2);
		break;
	case PERIOD_MONTH:
		*p++ = '-';
		p = put_digits(p, (unsigned)m, 2);
		break;
	case PERIOD_QUARTER:
		*p++ = '-';
		*p++ = 'Q';
		*p++ = (char)('1' + (m - 1) / 3);
		break;
	default:
		break;
	}
	*p = '\0';
	return ALLOT_OK;
}

/* ---- key parsing ------------------------------------------------------------- */

/* Exactly n decimal digits at s. */
static bool digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* Weeks in ISO year y: 53 when it starts on a Thursday, or on a Wednesday
 * in a leap year. */
static int iso_weeks_in_year(int64_t y)
{
	int wd = weekday_mon0(time_days_from_civil(y, 1, 1));
	return wd == 3 || (wd == 2 && time_is_leap(y)) ? 53 : 52;
}

allot_err period_key_parse(const tz *z, const char *key, period_kind *k_out,
			   int64_t *start_us, int64_t *end_us)
{
	if (!key)
		return ALLOT_E_INVALID;
	if (strcmp(key, "total") == 0) {
		*k_out = PERIOD_TOTAL;
		*start_us = INT64_MIN;
		*end_us = INT64_MAX;
		return ALLOT_OK;
	}
	size_t n = strlen(key);
	int y, a, b;
	period_kind k;
	int64_t idx;
	if (n < 4 || !digits(key, 4, &y) || y < PERIOD_YEAR_MIN)
		return ALLOT_E_INVALID;
	if (n == 4) {
		k = PERIOD_YEAR;
		idx = y;
	} else if (n == 7 && key[4] == '-' && key[5] == 'Q' && key[6] >= '1' && key[6] <= '4') {
		k = PERIOD_QUARTER;
		idx = (int64_t)y * 4 + (key[6] - '1');
	} else if (n == 8 && key[4] == '-' && key[5] == 'W' && digits(key + 6, 2, &a)) {
		if (a < 1 || a > iso_weeks_in_year(y))
			return ALLOT_E_INVALID;
		int64_t jan4 = time_days_from_civil(y, 1, 4);
		int64_t monday = jan4 - weekday_mon0(jan4) + 7 * (a - 1);
		k = PERIOD_WEEK;
		idx = (monday + 3) / 7;    /* exact: Mondays are -3 + 7k */
	} else if (n == 7 && key[4] == '-' && digits(key + 5, 2, &a)) {
		if (a < 1 || a > 12)
			return ALLOT_E_INVALID;
		k = PERIOD_MONTH;
		idx = (int64_t)y * 12 + (a - 1);
	} else if (n == 10 && key[4] == '-' && key[7] == '-' && digits(key + 5, 2, &a) &&
		   digits(key + 8, 2, &b)) {
		if (a < 1 || a > 12 || b < 1 || b > time_days_in_month(y, a))
			return ALLOT_E_INVALID;
		k = PERIOD_DAY;
		idx = time_days_from_civil(y, (unsigned)a, (unsigned)b);
	} else {
		return ALLOT_E_INVALID;
	}
	int64_t s, e;
	allot_err rc;
	if ((rc = start_of(z, k, idx, &s)) != ALLOT_OK ||
	    (rc = start_of(z, k, idx + 1, &e)) != ALLOT_OK)
		return rc;
	*k_out = k;
	*start_us = s;
	*end_us = e;
	return ALLOT_OK;
}

/* ---- rollover -------------------------------------------------------------------- */

allot_err period_rollover(int64_t allocation, int64_t rollover_ppm, int64_t used,
			  int64_t *carried)
{
	if (allocation < 0 || rollover_ppm < 0 || rollover_ppm > PERIOD_PPM)
		return ALLOT_E_INVALID;
	int64_t unused;
	if (used >= allocation)
		unused = 0;
	else if (used <= 0)
		unused = allocation;       /* net refunds never carry more than the allocation */
	else
		unused = allocation - used;
	*carried = money_scale_floor(unused, rollover_ppm, PERIOD_PPM);
	return ALLOT_OK;
}
