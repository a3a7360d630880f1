/* tz_int.h — what tz.c (evaluation, conversion, cache) and tz_parse.c (the
 * TZif and POSIX TZ parsers) share.  Not for use outside common/tz*.c.
 *
 * Internally every instant is int64 seconds since the epoch (UTC, no leap
 * seconds). */
#ifndef ALLOT_COMMON_TZ_INT_H
#define ALLOT_COMMON_TZ_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/tz.h"

/* ---- limits ------------------------------------------------------------- */

/* RFC 8536 3.2: a UT offset "SHOULD" lie in -89999..93599 (-24:59:59 to
 * +25:59:59).  We enforce it: it bounds the search window of local->UTC. */
#define TZ_OFF_MIN (-89999)
#define TZ_OFF_MAX 93599
/* local->UTC searches instants within this many seconds of the local time
 * read as UTC: every valid answer lies inside (|offset| <= 93599). */
#define TZ_WINDOW 93600
/* POSIX rule times: v3 TZif allows hours -167..167 (RFC 8536 3.3.1). */
#define TZ_RULE_HOURS_MAX 167
/* Zones kept by the cache.  A deployment uses one or a few zones; the cap
 * only bounds memory if something loads every zone (tests). */
#define TZ_CACHE_MAX 512
/* Years accepted by tz_local_to_utc: far inside int64 microseconds
 * (+-292,000 years) with room for the +-26 h search window. */
#define TZ_YEAR_LIMIT 100000

#define SECS_PER_DAY 86400

/* ---- data ----------------------------------------------------------------- */

struct tz_ttype {
	int32_t off;    /* seconds east of UTC */
	bool dst;
};

/* One date of a POSIX TZ rule ("M3.5.0/3", "J60", "59/2"). */
struct tz_rdate {
	char kind;      /* 'J': a = 1..365, Feb 29 never counted;
			   'N': a = 0..365, zero-based day of year;
			   'M': month a, week b (1..5, 5 = last), weekday c (0 = Sun) */
	int a, b, c;
	int32_t secs;   /* local time of day of the change, -167h..+167h */
};

/* The footer: standard offset, and optionally DST offset with its rule. */
struct tz_rule {
	int32_t std_off, dst_off;
	bool has_dst;
	struct tz_rdate start, end;   /* std->dst (in std time), dst->std (in dst time) */
};

struct tz {
	atomic_long refs;
	char *name;                   /* from malloc */
	size_t ntrans;
	int64_t *trans;               /* [ntrans] strictly ascending; from malloc */
	uint8_t *tidx;                /* [ntrans] index into types; from malloc */
	size_t ntypes;                /* >= 1 */
	struct tz_ttype *types;       /* [ntypes]; from malloc */
	bool has_rule;                /* footer present and non-empty */
	struct tz_rule rule;
};

/* Writes the message into errbuf (TZ_ERR_MAX bytes; NULL: nothing). */
void tz_seterr(char *errbuf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A zone named name with one reference and nothing else; NULL when out of
 * memory. */
tz *tz_alloc(const char *name);
/* Frees z and what it holds (NULL: nothing). */
void tz_destroy(tz *z);

#endif
