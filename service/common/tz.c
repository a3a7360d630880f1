/* tz.c — TZif reader, POSIX TZ footer rules, UTC<->local conversion and the
 * zone cache.  See tz.h for the contract and docs/PERIODS.md for the rules.
 *
 * Internally every instant is int64 seconds since the epoch (UTC, no leap
 * seconds); the public API converts from microseconds with floor division.
 */
#include "common/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/timeutil.h"

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

/* ---- small helpers -------------------------------------------------------- */

static void seterr(char *errbuf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(char *errbuf, const char *fmt, ...)
{
	if (!errbuf)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, TZ_ERR_MAX, fmt, ap);
	va_end(ap);
}

/* 0 = Sunday .. 6 = Saturday for days since 1970-01-01 (a Thursday). */
static int weekday_sun0(int64_t days)
{
	return (int)(((days + 4) % 7 + 7) % 7);
}

static int64_t utc_year_of(int64_t t)
{
	int64_t y;
	unsigned m, d;
	time_civil_from_days(time_floor_div(t, SECS_PER_DAY), &y, &m, &d);
	return y;
}

/* ---- POSIX TZ rule evaluation ------------------------------------------- */

/* Days since the epoch of rule date r in year y. */
static int64_t rdate_days(const struct tz_rdate *r, int64_t y)
{
	switch (r->kind) {
	case 'J': {
		int64_t doy = r->a - 1;
		if (time_is_leap(y) && r->a >= 60)
			doy++;
		return time_days_from_civil(y, 1, 1) + doy;
	}
	case 'N':
		return time_days_from_civil(y, 1, 1) + r->a;
	default: { /* 'M' */
		int64_t first = time_days_from_civil(y, (unsigned)r->a, 1);
		int day = (r->c - weekday_sun0(first) + 7) % 7 + 7 * (r->b - 1);
		int mdays = time_days_in_month(y, r->a);
		while (day >= mdays)
			day -= 7;
		return first + day;
	}
	}
}

/* The rule's two changes in year y, as UTC seconds. */
static void rule_events(const struct tz_rule *r, int64_t y, int64_t *start, int64_t *end)
{
	*start = rdate_days(&r->start, y) * SECS_PER_DAY + r->start.secs - r->std_off;
	*end = rdate_days(&r->end, y) * SECS_PER_DAY + r->end.secs - r->dst_off;
}

/* Whether DST is in effect at t: the state set by the latest change at or
 * before t; when a start and an end coincide (all-year DST written as
 * "0/0,J365/25"), DST wins. */
static bool rule_dst_at(const struct tz_rule *r, int64_t t)
{
	int64_t y = utc_year_of(t);
	int64_t best = INT64_MIN;
	bool dst = false;
	/* A change of year Y lies within 9 days of year Y (rule times are at
	 * most 167 h, offsets at most 26 h: 193 h), so year y-2 always has changes
	 * before t and no year after y+1 has one at or before t.  Year y-2 is
	 * needed: its change near New Year can be later than one of y-1. */
	for (int64_t yy = y - 2; yy <= y + 1; yy++) {
		int64_t s, e;
		rule_events(r, yy, &s, &e);
		if (e <= t && e > best) {
			best = e;
			dst = false;
		}
		if (s <= t && s >= best) {
			best = s;
			dst = true;
		}
	}
	return dst;
}

static int32_t rule_off(const struct tz_rule *r, int64_t t)
{
	if (!r->has_dst)
		return r->std_off;
	return rule_dst_at(r, t) ? r->dst_off : r->std_off;
}

/* ---- offsets from the whole zone ----------------------------------------- */

/* Index of the first transition > t (ntrans when none). */
static size_t upper_bound(const tz *z, int64_t t)
{
	size_t lo = 0, hi = z->ntrans;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->trans[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int32_t off_s(const tz *z, int64_t t)
{
	size_t n = z->ntrans;
	if (n == 0)
		return z->has_rule ? rule_off(&z->rule, t) : z->types[0].off;
	if (t < z->trans[0])
		return z->types[0].off;            /* RFC 8536: type 0 before the first */
	if (t >= z->trans[n - 1] && z->has_rule)
		return rule_off(&z->rule, t);      /* the footer governs from the last on */
	return z->types[z->tidx[upper_bound(z, t) - 1]].off;
}

/* Insertion sort: at most 8 elements. */
static void sort_i64(int64_t *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		int64_t x = v[i];
		size_t j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* The first instant T in (t, limit] where the offset differs from the one
 * at t.  limit - t must be at most a few days (callers use 53 h).
 * OUT: *T when true. */
static bool next_change(const tz *z, int64_t t, int64_t limit, int64_t *T)
{
	int32_t cur = off_s(z, t);
	size_t n = z->ntrans;
	int64_t from = t;

	if (n > 0 && t < z->trans[n - 1]) {
		size_t i = upper_bound(z, t);
		for (; i < n && z->trans[i] <= limit; i++) {
			if (off_s(z, z->trans[i]) != cur) {
				*T = z->trans[i];
				return true;
			}
		}
		if (i < n)
			return false;              /* next transition is past limit */
		from = z->trans[n - 1];
	} else if (n > 0 && !z->has_rule) {
		return false;                      /* last type forever */
	}
	if (!z->has_rule || !z->rule.has_dst)
		return false;

	/* Changes of the rule after `from`; those up to limit (callers look
	 * at most 53 h ahead) come from years y-1..y+1, as a change of year Y
	 * lies within 9 days of year Y.  y+2 is a margin. */
	int64_t y = utc_year_of(from), ev[8];
	size_t k = 0;
	for (int64_t yy = y - 1; yy <= y + 2; yy++) {
		rule_events(&z->rule, yy, &ev[k], &ev[k + 1]);
		k += 2;
	}
	sort_i64(ev, k);
	for (size_t j = 0; j < k; j++) {
		if (ev[j] <= from)
			continue;
		if (ev[j] > limit)
			return false;
		if (rule_off(&z->rule, ev[j]) != cur) {
			*T = ev[j];
			return true;
		}
	}
	return false;
}

/* ---- public queries -------------------------------------------------------- */

const char *tz_name(const tz *z)
{
	return z->name;
}

int32_t tz_offset_at(const tz *z, int64_t utc_us)
{
	return off_s(z, time_floor_div(utc_us, US_PER_SEC));
}

void tz_to_local(const tz *z, int64_t utc_us, tz_civil *out)
{
	int64_t t = time_floor_div(utc_us, US_PER_SEC);
	int32_t off = off_s(z, t);
	int64_t local = t + off;
	int64_t days = time_floor_div(local, SECS_PER_DAY);
	int64_t sod = local - days * SECS_PER_DAY;
	unsigned m, d;
	time_civil_from_days(days, &out->year, &m, &d);
	out->month = (int)m;
	out->day = (int)d;
	out->hour = (int)(sod / 3600);
	out->minute = (int)(sod / 60 % 60);
	out->second = (int)(sod % 60);
	out->microsecond = (int32_t)((utc_us % US_PER_SEC + US_PER_SEC) % US_PER_SEC);
	out->weekday = (weekday_sun0(days) + 6) % 7;
	out->offset = off;
}

allot_err tz_local_to_utc(const tz *z, int64_t y, int m, int d, int hh, int mm,
			  int ss, int64_t *utc_us)
{
	if (y < -TZ_YEAR_LIMIT || y > TZ_YEAR_LIMIT || m < 1 || m > 12 || d < 1 ||
	    d > time_days_in_month(y, m) || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
	    ss < 0 || ss > 59)
		return ALLOT_E_INVALID;

	/* L: the local time read as if it were UTC.  Walk the constant-offset
	 * segments of [L - W, L + W]: the first segment holding an instant t
	 * with t + offset == L gives the earliest such instant (folds); a
	 * segment that starts at a local time already past L means L was
	 * skipped, and its start is the first instant after the gap. */
	int64_t L = time_days_from_civil(y, (unsigned)m, (unsigned)d) * SECS_PER_DAY +
		    hh * 3600 + mm * 60 + ss;
	int64_t t = L - TZ_WINDOW, hi = L + TZ_WINDOW;
	int32_t o = off_s(z, t);
	for (;;) {
		int64_t T;
		bool more = next_change(z, t, hi, &T);
		int64_t seg_end = more ? T : hi + 1;
		int64_t cand = L - o;
		if (cand < t) {                    /* gap: L lies before this segment */
			*utc_us = t * US_PER_SEC;
			return ALLOT_OK;
		}
		if (cand < seg_end) {
			*utc_us = cand * US_PER_SEC;
			return ALLOT_OK;
		}
		if (!more)
			break;
		t = T;
		o = off_s(z, t);
	}
	return ALLOT_E_INTERNAL;  /* unreachable: the last segment always answers */
}

/* ---- POSIX TZ string parser ------------------------------------------------ */

struct pz {
	const char *s, *end;
};

static bool pz_digit(const struct pz *p)
{
	return p->s < p->end && *p->s >= '0' && *p->s <= '9';
}

/* Unsigned decimal of 1..maxdig digits, value <= maxval. */
static bool pz_num(struct pz *p, int maxdig, int maxval, int *out)
{
	int v = 0, n = 0;
	while (pz_digit(p) && n < maxdig) {
		v = v * 10 + (*p->s - '0');
		p->s++;
		n++;
	}
	if (n == 0 || pz_digit(p) || v > maxval)
		return false;
	*out = v;
	return true;
}

/* A zone abbreviation: [A-Za-z]{3,} or <[A-Za-z0-9+-]{3,}>. */
static bool pz_name(struct pz *p)
{
	size_t n = 0;
	if (p->s < p->end && *p->s == '<') {
		p->s++;
		while (p->s < p->end && *p->s != '>') {
			char c = *p->s;
			if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			      (c >= '0' && c <= '9') || c == '+' || c == '-'))
				return false;
			p->s++;
			n++;
		}
		if (p->s == p->end)
			return false;
		p->s++;
		return n >= 3;
	}
	while (p->s < p->end && ((*p->s >= 'A' && *p->s <= 'Z') || (*p->s >= 'a' && *p->s <= 'z'))) {
		p->s++;
		n++;
	}
	return n >= 3;
}

/* [+-]hh[:mm[:ss]] with hh <= maxh; value in seconds (sign applied). */
static bool pz_hms(struct pz *p, int maxh, int32_t *out)
{
	int sign = 1, h, m = 0, s = 0;
	if (p->s < p->end && (*p->s == '+' || *p->s == '-')) {
		sign = *p->s == '-' ? -1 : 1;
		p->s++;
	}
	if (!pz_num(p, 3, maxh, &h))
		return false;
	if (p->s < p->end && *p->s == ':') {
		p->s++;
		if (!pz_num(p, 2, 59, &m))
			return false;
		if (p->s < p->end && *p->s == ':') {
			p->s++;
			if (!pz_num(p, 2, 59, &s))
				return false;
		}
	}
	*out = sign * (h * 3600 + m * 60 + s);
	return true;
}

static bool pz_rdate(struct pz *p, struct tz_rdate *r)
{
	r->secs = 2 * 3600;        /* POSIX default: 02:00 */
	r->b = r->c = 0;
	if (p->s < p->end && *p->s == 'J') {
		p->s++;
		r->kind = 'J';
		if (!pz_num(p, 3, 365, &r->a) || r->a < 1)
			return false;
	} else if (p->s < p->end && *p->s == 'M') {
		p->s++;
		r->kind = 'M';
		if (!pz_num(p, 2, 12, &r->a) || r->a < 1)
			return false;
		if (p->s == p->end || *p->s++ != '.')
			return false;
		if (!pz_num(p, 1, 5, &r->b) || r->b < 1)
			return false;
		if (p->s == p->end || *p->s++ != '.')
			return false;
		if (!pz_num(p, 1, 6, &r->c))
			return false;
	} else {
		r->kind = 'N';
		if (!pz_num(p, 3, 365, &r->a))
			return false;
	}
	if (p->s < p->end && *p->s == '/') {
		p->s++;
		if (!pz_hms(p, TZ_RULE_HOURS_MAX, &r->secs))
			return false;
	}
	return true;
}

static bool off_ok(int32_t off)
{
	return off >= TZ_OFF_MIN && off <= TZ_OFF_MAX;
}

/* Parses a POSIX TZ string (RFC 8536 section 3.3, with the v3 extensions).
 * An abbreviation with DST but no rule gets the POSIX-implementation default
 * ",M3.2.0,M11.1.0" (as tzcode's). */
static bool parse_posix_tz(const char *s, size_t n, struct tz_rule *r)
{
	struct pz p = {s, s + n};
	int32_t v;
	memset(r, 0, sizeof *r);
	if (!pz_name(&p) || !pz_hms(&p, 24, &v))
		return false;
	r->std_off = -v;                   /* POSIX counts west as positive */
	if (!off_ok(r->std_off))
		return false;
	if (p.s == p.end)
		return true;
	if (!pz_name(&p))
		return false;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (p.s < p.end && *p.s != ',') {
		if (!pz_hms(&p, 24, &v))
			return false;
		r->dst_off = -v;
	}
	if (!off_ok(r->dst_off))
		return false;
	if (p.s == p.end) {
		r->start = (struct tz_rdate){'M', 3, 2, 0, 2 * 3600};
		r->end = (struct tz_rdate){'M', 11, 1, 0, 2 * 3600};
		return true;
	}
	if (*p.s++ != ',' || !pz_rdate(&p, &r->start))
		return false;
	if (p.s == p.end || *p.s++ != ',' || !pz_rdate(&p, &r->end))
		return false;
	return p.s == p.end;
}

/* ---- TZif parser ---------------------------------------------------------- */

#define TZIF_HDR 44

struct tzif_hdr {
	char version;    /* 0, '2', '3' or '4' */
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64s(const uint8_t *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool read_hdr(const uint8_t *p, size_t len, size_t off, struct tzif_hdr *h)
{
	if (len < TZIF_HDR || off > len - TZIF_HDR)
		return false;
	p += off;
	if (memcmp(p, "TZif", 4) != 0)
		return false;
	h->version = (char)p[4];
	if (h->version != 0 && h->version != '2' && h->version != '3' && h->version != '4')
		return false;
	h->isutcnt = be32(p + 20);
	h->isstdcnt = be32(p + 24);
	h->leapcnt = be32(p + 28);
	h->timecnt = be32(p + 32);
	h->typecnt = be32(p + 36);
	h->charcnt = be32(p + 40);
	return true;
}

/* Bytes in a data block with times of tsize bytes (fits: counts < 2^32). */
static uint64_t block_size(const struct tzif_hdr *h, uint64_t tsize)
{
	return (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 +
	       h->charcnt + (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static void tz_destroy(tz *z)
{
	if (!z)
		return;
	free(z->name);
	free(z->trans);
	free(z->tidx);
	free(z->types);
	free(z);
}

static tz *tz_alloc(const char *name)
{
	tz *z = calloc(1, sizeof *z);
	if (!z)
		return NULL;
	atomic_init(&z->refs, 1);
	z->name = strdup(name ? name : "");
	if (!z->name) {
		free(z);
		return NULL;
	}
	return z;
}

allot_err tz_parse(const void *buf, size_t len, const char *name, tz **out, char *errbuf)
{
	const uint8_t *p = buf;
	const char *nm = name ? name : "";
	struct tzif_hdr h;
	tz *z = NULL;
	allot_err rc = ALLOT_E_INVALID;
	const char *why = NULL;

	if (!p && len)
		len = 0;
	if (len > TZ_FILE_MAX) {
		why = "file too large";
		goto out;
	}
	if (!read_hdr(p, len, 0, &h)) {
		why = "not a TZif file (bad header)";
		goto out;
	}
	size_t off = TZIF_HDR;
	uint64_t tsize = 4;
	if (h.version != 0) {
		/* Skip the 32-bit block; the 64-bit header and block follow. */
		uint64_t skip = block_size(&h, 4);
		if (skip > len - off) {
			why = "truncated version 1 data block";
			goto out;
		}
		off += (size_t)skip;
		char v1 = h.version;
		if (!read_hdr(p, len, off, &h) || h.version != v1) {
			why = "bad second header";
			goto out;
		}
		off += TZIF_HDR;
		tsize = 8;
	}
	if (h.typecnt == 0 || h.charcnt == 0 ||
	    (h.isutcnt != 0 && h.isutcnt != h.typecnt) ||
	    (h.isstdcnt != 0 && h.isstdcnt != h.typecnt)) {
		why = "bad counts in header";
		goto out;
	}
	if (block_size(&h, tsize) > len - off) {
		why = "truncated data block";
		goto out;
	}
	if (h.leapcnt != 0) {
		rc = ALLOT_E_UNSUPPORTED;
		why = "leap-second zones are not supported";
		goto out;
	}

	rc = ALLOT_E_NOMEM;
	z = tz_alloc(nm);
	if (!z)
		goto out;
	z->ntrans = h.timecnt;
	z->ntypes = h.typecnt;
	z->trans = malloc((h.timecnt ? h.timecnt : 1) * sizeof *z->trans);
	z->tidx = malloc(h.timecnt ? h.timecnt : 1);
	z->types = malloc(h.typecnt * sizeof *z->types);
	if (!z->trans || !z->tidx || !z->types)
		goto out;

	rc = ALLOT_E_INVALID;
	const uint8_t *q = p + off;
	for (size_t i = 0; i < h.timecnt; i++, q += tsize) {
		z->trans[i] = tsize == 8 ? be64s(q) : (int64_t)(int32_t)be32(q);
		if (i > 0 && z->trans[i] <= z->trans[i - 1]) {
			why = "transition times not ascending";
			goto out;
		}
	}
	for (size_t i = 0; i < h.timecnt; i++, q++) {
		if (*q >= h.typecnt) {
			why = "transition type index out of range";
			goto out;
		}
		z->tidx[i] = *q;
	}
	for (size_t i = 0; i < h.typecnt; i++, q += 6) {
		int32_t utoff = (int32_t)be32(q);
		if (!off_ok(utoff) || q[4] > 1 || q[5] >= h.charcnt) {
			why = "bad local time type";
			goto out;
		}
		z->types[i].off = utoff;
		z->types[i].dst = q[4] == 1;
	}
	q += h.charcnt;                    /* designations: unused */
	for (size_t i = 0; i < (size_t)h.isstdcnt + h.isutcnt; i++, q++) {
		if (*q > 1) {
			why = "bad standard/UT indicator";
			goto out;
		}
	}
	off = (size_t)(q - p);

	if (tsize == 8) {
		/* Footer: "\n" POSIX-TZ "\n"; an empty one means "no rule". */
		const uint8_t *nl;
		if (off >= len || p[off] != '\n' ||
		    !(nl = memchr(p + off + 1, '\n', len - off - 1))) {
			why = "missing or unterminated footer";
			goto out;
		}
		size_t flen = (size_t)(nl - (p + off + 1));
		if (flen > 0) {
			if (!parse_posix_tz((const char *)p + off + 1, flen, &z->rule)) {
				why = "bad POSIX TZ string in footer";
				goto out;
			}
			z->has_rule = true;
		}
	}
	*out = z;
	z = NULL;
	rc = ALLOT_OK;
out:
	if (rc != ALLOT_OK) {
		if (rc == ALLOT_E_NOMEM)
			why = "out of memory";
		seterr(errbuf, "%s%s%s", nm, *nm ? ": " : "", why);
	}
	tz_destroy(z);
	return rc;
}

/* ---- names, files, cache -------------------------------------------------- */

bool tz_name_valid(const char *name)
{
	if (!name)
		return false;
	size_t n = strlen(name);
	if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (c == '/' && name[i + 1] == '/')
			return false;      /* empty component */
		/* No '.' at all: so no "." or ".." component can escape the
		 * directory (IANA names never contain one). */
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '+' || c == '-' || c == '/'))
			return false;
	}
	return true;
}

static allot_err builtin_utc(const char *name, tz **out)
{
	tz *z = tz_alloc(name);
	if (!z)
		return ALLOT_E_NOMEM;
	z->ntypes = 1;
	z->types = calloc(1, sizeof *z->types);
	if (!z->types) {
		tz_destroy(z);
		return ALLOT_E_NOMEM;
	}
	*out = z;
	return ALLOT_OK;
}

/* Reads the whole file.  OUT: *buf (malloc, caller frees), *len on ALLOT_OK. */
static allot_err read_zone_file(const char *path, uint8_t **buf, size_t *len)
{
	int fd;
	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? ALLOT_E_NOT_FOUND : ALLOT_E_IO;
	allot_err rc = ALLOT_E_IO;
	uint8_t *b = NULL;
	struct stat st;
	if (fstat(fd, &st) != 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		rc = ALLOT_E_NOT_FOUND;    /* e.g. "Europe": a directory */
		goto out;
	}
	if (st.st_size > TZ_FILE_MAX) {
		rc = ALLOT_E_INVALID;
		goto out;
	}
	size_t want = (size_t)st.st_size, got = 0;
	b = malloc(want ? want : 1);
	if (!b) {
		rc = ALLOT_E_NOMEM;
		goto out;
	}
	while (got < want) {
		ssize_t r = read(fd, b + got, want - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto out;
		if (r == 0)
			break;                 /* shrank under us: parse what we have */
		got += (size_t)r;
	}
	*buf = b;
	*len = got;
	b = NULL;
	rc = ALLOT_OK;
out:
	free(b);
	close(fd);
	return rc;
}

struct cache_ent {
	struct cache_ent *next;
	char *path;                        /* from malloc */
	tz *z;                             /* the cache's own reference */
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cache_ent *cache_head;
static size_t cache_n;

static void tz_ref(tz *z)
{
	atomic_fetch_add_explicit(&z->refs, 1, memory_order_relaxed);
}

void tz_free(tz *z)
{
	if (z && atomic_fetch_sub_explicit(&z->refs, 1, memory_order_acq_rel) == 1)
		tz_destroy(z);
}

/* Returns a new reference to the cached zone for path, or NULL.  Caller
 * holds cache_mu. */
static tz *cache_find_locked(const char *path)
{
	for (struct cache_ent *e = cache_head; e; e = e->next) {
		if (strcmp(e->path, path) == 0) {
			tz_ref(e->z);
			return e->z;
		}
	}
	return NULL;
}

void tz_cache_clear(void)
{
	pthread_mutex_lock(&cache_mu);
	struct cache_ent *e = cache_head;
	cache_head = NULL;
	cache_n = 0;
	pthread_mutex_unlock(&cache_mu);
	while (e) {
		struct cache_ent *next = e->next;
		tz_free(e->z);
		free(e->path);
		free(e);
		e = next;
	}
}

allot_err tz_load_dir(const char *dir, const char *name, tz **out, char *errbuf)
{
	if (!tz_name_valid(name)) {
		seterr(errbuf, "invalid time zone name");
		return ALLOT_E_INVALID;
	}
	if (!dir || !*dir)
		dir = TZ_DEFAULT_DIR;
	size_t plen = strlen(dir) + 1 + strlen(name) + 1;
	char *path = malloc(plen);
	if (!path) {
		seterr(errbuf, "%s: out of memory", name);
		return ALLOT_E_NOMEM;
	}
	snprintf(path, plen, "%s/%s", dir, name);

	pthread_mutex_lock(&cache_mu);
	tz *z = cache_find_locked(path);
	pthread_mutex_unlock(&cache_mu);
	if (z) {
		free(path);
		*out = z;
		return ALLOT_OK;
	}

	/* Read and parse outside the lock: loads of other zones proceed. */
	uint8_t *buf = NULL;
	size_t len = 0;
	allot_err rc = read_zone_file(path, &buf, &len);
	if (rc == ALLOT_OK) {
		rc = tz_parse(buf, len, name, &z, errbuf);
		free(buf);
		if (rc != ALLOT_OK) {
			free(path);
			return rc;
		}
	} else if (rc == ALLOT_E_NOT_FOUND &&
		   (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)) {
		rc = builtin_utc(name, &z);
	}
	if (rc != ALLOT_OK) {
		seterr(errbuf, "%s: %s", name,
		       rc == ALLOT_E_NOT_FOUND ? "unknown time zone (no such file in the zoneinfo directory)" :
		       rc == ALLOT_E_INVALID ? "zone file too large" :
		       rc == ALLOT_E_NOMEM ? "out of memory" : "cannot read zone file");
		free(path);
		return rc;
	}

	struct cache_ent *e = NULL;
	pthread_mutex_lock(&cache_mu);
	tz *other = cache_find_locked(path);
	if (!other && cache_n < TZ_CACHE_MAX && (e = malloc(sizeof *e))) {
		e->path = path;
		path = NULL;
		e->z = z;
		tz_ref(z);
		e->next = cache_head;
		cache_head = e;
		cache_n++;
	}
	pthread_mutex_unlock(&cache_mu);
	free(path);
	if (other) {                       /* another thread won the race */
		tz_free(z);
		z = other;
	}
	*out = z;
	return ALLOT_OK;
}

allot_err tz_load(const char *name, tz **out, char *errbuf)
{
	return tz_load_dir(getenv("TZDIR"), name, out, errbuf);
}
