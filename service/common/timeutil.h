/* timeutil.h — time as int64 UTC microseconds inside, RFC 3339 outside. */
#ifndef ALLOT_COMMON_TIMEUTIL_H
#define ALLOT_COMMON_TIMEUTIL_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define US_PER_SEC 1000000LL

/* Wall clock in microseconds since the epoch.  Tests may replace the clock
 * with time_set_clock() (a controllable clock); NULL restores the real one. */
int64_t time_now_us(void);
void time_set_clock(int64_t (*clock)(void));
/* Monotonic clock, microseconds; for latencies and timeouts only. */
int64_t time_mono_us(void);

/* Parses RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)" (a 't' or
 * space separator is accepted, as RFC 3339 allows).  Returns 0, or -1 on any
 * syntax or range error.  OUT: *us on success only. */
int time_parse_rfc3339(const char *s, size_t n, int64_t *us);
/* Parses "YYYY-MM-DD" as midnight UTC, or a full RFC 3339 time. */
int time_parse_date_or_time(const char *s, size_t n, int64_t *us);

/* Formats as "2026-12-03T10:00:00Z", with ".ffffff" when us has a fraction. */
#define TIME_FMT_MAX 40
char *time_format_rfc3339(int64_t us, char out[TIME_FMT_MAX]);

/* Days since 1970-01-01 for a proleptic Gregorian date, and back. */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d);
void time_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* The calendar helpers every module uses (one copy): a / b rounded toward
 * negative infinity (b > 0); proleptic Gregorian leap years; the days of
 * month m (1..12) of year y. */
int64_t time_floor_div(int64_t a, int64_t b);
bool time_is_leap(int64_t y);
int time_days_in_month(int64_t y, int m);

#endif
