/* period.h — accounting periods in a charter's time zone, their storage
 * keys, and the rollover of unused allocation.
 *
 * A period is a half-open interval [start_us, end_us) of UTC microseconds.
 * Every period except `total` starts at local midnight (tz_local_to_utc:
 * a skipped midnight means the first instant of the day) in the zone, so a
 * day lasts 23, 24 or 25 hours (23.5/24.5 on Lord Howe Island).  Periods of
 * one kind tile the timeline: each ends where the next starts.
 *
 *   day      local midnight to local midnight          key "2026-12-03"
 *   week     ISO 8601 week, Monday to Monday           key "2026-W49"
 *   month    1st to 1st                                key "2026-12"
 *   quarter  Jan/Apr/Jul/Oct 1st                       key "2026-Q4"
 *   year     Jan 1st to Jan 1st                        key "2026"
 *   total    [INT64_MIN, INT64_MAX): all time          key "total"
 *
 * The week key uses the ISO week-numbering year: 2027-01-01 is in "2026-W53".
 * Calendar periods are supported when their key's year is 0001..9999 (the
 * ISO week-numbering year for weeks); outside that, ALLOT_E_INVALID.
 * All functions are pure and thread-safe.  See docs/PERIODS.md.
 */
#ifndef ALLOT_LEDGER_PERIOD_H
#define ALLOT_LEDGER_PERIOD_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/tz.h"

typedef enum period_kind {
	PERIOD_DAY,
	PERIOD_WEEK,
	PERIOD_MONTH,
	PERIOD_QUARTER,
	PERIOD_YEAR,
	PERIOD_TOTAL,
} period_kind;

/* Key buffer: "2026-12-03" plus NUL, rounded up. */
#define PERIOD_KEY_MAX 16
/* Rollover fractions are parts per million: 250000 is 0.25.  A charter's
 * "rollover: 0.25" parsed with money_parse gives exactly this number. */
#define PERIOD_PPM 1000000

/* "day" "week" "month" "quarter" "year" "total" (exact, lower case).
 * Returns 0 and sets *out, or -1 (out untouched). */
int period_kind_parse(const char *s, period_kind *out);
/* The name above; "?" for an out-of-range value. */
const char *period_kind_name(period_kind k);

/* The period of kind k containing instant at_us.
 * OUT: *start_us, *end_us on ALLOT_OK only.
 * Errors: ALLOT_E_INVALID (bad kind, instant outside years 1..9999). */
allot_err period_bounds(const tz *z, period_kind k, int64_t at_us,
			int64_t *start_us, int64_t *end_us);

/* The period just before / after the one containing at_us.
 * OUT: bounds on ALLOT_OK only.  `total` has no neighbours: ALLOT_E_INVALID.
 * A period with no instants (a day skipped entirely, as Samoa's 2011-12-30)
 * is stepped over. */
allot_err period_prev(const tz *z, period_kind k, int64_t at_us,
		      int64_t *start_us, int64_t *end_us);
allot_err period_next(const tz *z, period_kind k, int64_t at_us,
		      int64_t *start_us, int64_t *end_us);

/* The stable storage key of the period containing at_us (see table above).
 * OUT: key (NUL-terminated) on ALLOT_OK only. */
allot_err period_key(const tz *z, period_kind k, int64_t at_us,
		     char key[PERIOD_KEY_MAX]);

/* Parses a key back into its kind and bounds in zone z.  Strict: exactly
 * the forms above (four-digit year 0001..9999, two-digit fields, real
 * dates, week 01..52/53 as the ISO year has).
 * OUT: *k, *start_us, *end_us on ALLOT_OK only.  Errors: ALLOT_E_INVALID. */
allot_err period_key_parse(const tz *z, const char *key, period_kind *k,
			   int64_t *start_us, int64_t *end_us);

/* Rollover into the next period:
 *   unused  = min(allocation, max(0, allocation - used))
 *   carried = floor(unused * rollover_ppm / 1,000,000)      (money_scale_floor)
 * `allocation` is the previous period's OWN allocation, without anything
 * carried into it: carry-over is not compounded.  `used` is that period's
 * net usage (refunds can make it negative; unused is still capped at the
 * allocation).  Rounding is down, toward zero, to the micro-credit.
 * Inputs: 0 <= allocation, 0 <= rollover_ppm <= PERIOD_PPM, any used.
 * OUT: *carried on ALLOT_OK only.  Errors: ALLOT_E_INVALID. */
allot_err period_rollover(int64_t allocation, int64_t rollover_ppm,
			  int64_t used, int64_t *carried);

#endif
