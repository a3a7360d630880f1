/* tz_parse.c — the TZif reader and the POSIX TZ footer parser (common/tz.h:
 * tz_parse); evaluation, conversion and the cache are in tz.c. */
#include "common/tz_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"

void tz_seterr(char *errbuf, const char *fmt, ...)
{
	if (!errbuf)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, TZ_ERR_MAX, fmt, ap);
	va_end(ap);
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

void tz_destroy(tz *z)
{
	if (!z)
		return;
	free(z->name);
	free(z->trans);
	free(z->tidx);
	free(z->types);
	free(z);
}

tz *tz_alloc(const char *name)
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

/* Longer than 120 lines on purpose: one pass over the TZif layout (RFC 8536,
 * version 1 block, then the 64-bit block and footer), each check beside the
 * bytes it reads; pieces would pass the cursor, both headers and the
 * half-built zone through every call. */
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
		tz_seterr(errbuf, "%s%s%s", nm, *nm ? ": " : "", why);
	}
	tz_destroy(z);
	return rc;
}
