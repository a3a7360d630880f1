/* tz.h — IANA time zones read from compiled TZif files, without the C
 * library's process-global TZ/localtime machinery.
 *
 * A zone is loaded once from the zoneinfo directory (the TZDIR environment
 * variable, else /usr/share/zoneinfo, Debian package tzdata), parsed and
 * validated (RFC 8536: TZif versions 1 to 4; the 64-bit data block of v2+
 * files; the footer's POSIX TZ string, v3 extensions included, governs every
 * instant after the last transition), and kept in a process-wide cache so
 * later loads of the same zone cost a lock and a string compare.
 *
 * A loaded zone is immutable: every query below may be called from any
 * number of threads at once.  Zones are reference-counted: each successful
 * tz_load / tz_load_dir / tz_parse gives the caller one reference, which
 * tz_free releases.
 *
 * Times are int64 UTC microseconds (common/timeutil.h); offsets are seconds
 * east of UTC (Zurich in winter: +3600).  Leap-second ("right/") zones are
 * refused: allot's clock is POSIX time.
 */
#ifndef ALLOT_COMMON_TZ_H
#define ALLOT_COMMON_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct tz tz;

/* Size of an error-message buffer; messages are truncated to fit. */
#define TZ_ERR_MAX 160
/* Longest zone name accepted.  The longest IANA name today is 32 bytes
 * ("America/Argentina/ComodRivadavia"); 128 leaves room and bounds paths. */
#define TZ_NAME_MAX 128
/* Largest TZif file read.  Real files are under 4 KiB ("fat" zones); 1 MiB
 * is generous and bounds memory for a hostile or corrupt directory. */
#define TZ_FILE_MAX (1024 * 1024)
/* Default zoneinfo directory when TZDIR is unset or empty. */
#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"

/* true when name is an acceptable zone name: 1..TZ_NAME_MAX bytes of
 * [A-Za-z0-9_+-/], not starting or ending with '/', no empty component
 * ("//").  No '.' at all, so no ".." can escape the directory. */
bool tz_name_valid(const char *name);

/* Loads zone `name` from the zoneinfo directory (TZDIR or TZ_DEFAULT_DIR).
 * "UTC" and "Etc/UTC" work even when the directory lacks them.
 * OUT: *out on ALLOT_OK only; the caller owns one reference (tz_free).
 * errbuf (may be NULL, TZ_ERR_MAX bytes) gets a message on failure.
 * Errors: ALLOT_E_INVALID bad name or malformed file, ALLOT_E_NOT_FOUND no
 * such zone, ALLOT_E_IO read error, ALLOT_E_UNSUPPORTED leap-second zone,
 * ALLOT_E_NOMEM. */
allot_err tz_load(const char *name, tz **out, char *errbuf);

/* As tz_load, from directory `dir` (tests, packaged zoneinfo copies). */
allot_err tz_load_dir(const char *dir, const char *name, tz **out, char *errbuf);

/* Parses a TZif image from memory (never cached; fuzzable).  `name` is
 * only recorded for tz_name (NULL: "").  Same ownership and errors. */
allot_err tz_parse(const void *buf, size_t len, const char *name, tz **out,
		   char *errbuf);

/* Releases one reference; the zone is freed with its last one.  NULL ok. */
void tz_free(tz *z);

/* Drops the cache's references (zones still held by callers stay valid);
 * later loads re-read the files.  For tests, shutdown and tzdata updates. */
void tz_cache_clear(void);

/* The name the zone was loaded under.  Owned by the zone. */
const char *tz_name(const tz *z);

/* Offset from UTC, in seconds east, in effect at instant utc_us. */
int32_t tz_offset_at(const tz *z, int64_t utc_us);

/* Local civil time of an instant. */
typedef struct tz_civil {
	int64_t year;
	int month, day;              /* 1..12, 1..31 */
	int hour, minute, second;    /* 0..23, 0..59, 0..59 */
	int32_t microsecond;         /* 0..999999 */
	int weekday;                 /* 0 = Monday .. 6 = Sunday (ISO order) */
	int32_t offset;              /* seconds east of UTC in effect */
} tz_civil;
void tz_to_local(const tz *z, int64_t utc_us, tz_civil *out);

/* The UTC instant of local civil time y-m-d hh:mm:ss in zone z.
 *
 * - Ordinary times have exactly one instant.
 * - Folds (a local time that occurs twice, e.g. 02:30 on the autumn change
 *   in Zurich): the EARLIER instant (02:30 CEST, 00:30Z).
 * - Gaps (a local time that never occurs, e.g. 02:30 on the spring change):
 *   the first valid instant after the gap, i.e. the transition itself
 *   (03:00 CEST, 01:00Z).  Equivalently: the earliest instant whose local
 *   time is >= the requested one.  So "local midnight" of a day whose
 *   midnight is skipped is the first instant of that day.
 *
 * Fields must form a real proleptic-Gregorian date and time: year
 * -100000..100000, month 1..12, day 1..days in month, hh 0..23, mm 0..59,
 * ss 0..59 (no leap second, no 24:00).
 * OUT: *utc_us on ALLOT_OK only.  Errors: ALLOT_E_INVALID. */
allot_err tz_local_to_utc(const tz *z, int64_t y, int m, int d, int hh, int mm,
			  int ss, int64_t *utc_us);

#endif
