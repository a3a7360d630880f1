/* timeutil.c — clocks, RFC 3339, civil-date arithmetic. */
#include "common/timeutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

static int64_t (*time_clock)(void);

static int64_t time_real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}

int64_t time_now_us(void) { return time_clock ? time_clock() : time_real_us(); }
void time_set_clock(int64_t (*clock)(void)) { time_clock = clock; }

int64_t time_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}

/* Howard Hinnant's days_from_civil. */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void time_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int64_t time_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

bool time_is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int time_days_in_month(int64_t y, int m)
{
	static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && time_is_leap(y) ? 29 : dm[m - 1];
}

static bool digits(const char *s, size_t n, size_t at, size_t cnt, int *out)
{
	int v = 0;
	if (at + cnt > n)
		return false;
	for (size_t i = 0; i < cnt; i++) {
		char c = s[at + i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*out = v;
	return true;
}

static int parse_date(const char *s, size_t n, int *y, int *mo, int *d)
{
	if (!digits(s, n, 0, 4, y) || n < 10 || s[4] != '-' || !digits(s, n, 5, 2, mo) ||
	    s[7] != '-' || !digits(s, n, 8, 2, d))
		return -1;
	if (*mo < 1 || *mo > 12 || *d < 1 || *d > time_days_in_month(*y, *mo))
		return -1;
	return 0;
}

int time_parse_rfc3339(const char *s, size_t n, int64_t *us)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0;
	size_t i;
	int64_t frac = 0;

	if (parse_date(s, n, &y, &mo, &d) < 0 || n < 20)
		return -1;
	if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
		return -1;
	if (!digits(s, n, 11, 2, &h) || s[13] != ':' || !digits(s, n, 14, 2, &mi) ||
	    s[16] != ':' || !digits(s, n, 17, 2, &sec))
		return -1;
	if (h > 23 || mi > 59 || sec > 59) /* leap seconds are not representable */
		return -1;
	i = 19;
	if (i < n && s[i] == '.') {
		int nd = 0;
		i++;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (nd < 6)
				frac = frac * 10 + (s[i] - '0');
			nd++;
			i++;
		}
		if (nd == 0 || nd > 9)
			return -1;
		for (; nd < 6; nd++)
			frac *= 10;
	}
	if (i >= n)
		return -1;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		int sign = s[i] == '-' ? -1 : 1;
		if (!digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
		    !digits(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		oh *= sign;
		om *= sign;
		i += 6;
	} else {
		return -1;
	}
	if (i != n)
		return -1;
	int64_t days = time_days_from_civil(y, (unsigned)mo, (unsigned)d);
	int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (oh * 3600 + om * 60);
	*us = secs * US_PER_SEC + frac;
	return 0;
}

int time_parse_date_or_time(const char *s, size_t n, int64_t *us)
{
	int y, mo, d;
	if (n == 10) {
		if (parse_date(s, n, &y, &mo, &d) < 0)
			return -1;
		*us = time_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 * US_PER_SEC;
		return 0;
	}
	return time_parse_rfc3339(s, n, us);
}

char *time_format_rfc3339(int64_t us, char out[TIME_FMT_MAX])
{
	int64_t secs = us / US_PER_SEC, frac = us % US_PER_SEC;
	if (frac < 0) {
		frac += US_PER_SEC;
		secs -= 1;
	}
	int64_t days = secs / 86400, rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days -= 1;
	}
	int64_t y;
	unsigned m, d;
	time_civil_from_days(days, &y, &m, &d);
	if (frac)
		snprintf(out, TIME_FMT_MAX, "%04lld-%02u-%02uT%02d:%02d:%02d.%06lldZ",
			 (long long)y, m, d, (int)(rem / 3600), (int)(rem / 60 % 60),
			 (int)(rem % 60), (long long)frac);
	else
		snprintf(out, TIME_FMT_MAX, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y,
			 m, d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
	return out;
}
