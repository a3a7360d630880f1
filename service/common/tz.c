/* tz.c — POSIX TZ footer rules, UTC<->local conversion and the zone cache
 * (the TZif and POSIX TZ parsers are in tz_parse.c).  See tz.h for the
 * contract and docs/PERIODS.md for the rules.
 *
 * Internally every instant is int64 seconds since the epoch (UTC, no leap
 * seconds); the public API converts from microseconds with floor division.
 */
#include "common/tz_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/timeutil.h"

/* ---- small helpers -------------------------------------------------------- */

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
		tz_seterr(errbuf, "invalid time zone name");
		return ALLOT_E_INVALID;
	}
	if (!dir || !*dir)
		dir = TZ_DEFAULT_DIR;
	size_t plen = strlen(dir) + 1 + strlen(name) + 1;
	char *path = malloc(plen);
	if (!path) {
		tz_seterr(errbuf, "%s: out of memory", name);
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
		tz_seterr(errbuf, "%s: %s", name,
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
