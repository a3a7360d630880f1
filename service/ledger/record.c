/* record.c — usage record schema, canonical form and signature check. */
#include "ledger/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/timeutil.h"
#include "common/b64.h"
#include "crypto/digest.h"
#include "crypto/ed25519.h"

/* The record's fields, in the order record_parse checks them; F_* index
 * this table. */
static const char *const record_fields[] = {
	"record_id", "provider", "seq", "institution", "project", "member", "resource",
	"class", "model", "quantity", "start", "end", "kind", "adjustment", "supersedes",
	"sig", NULL};
enum {
	F_RECORD_ID, F_PROVIDER, F_SEQ, F_INSTITUTION, F_PROJECT, F_MEMBER, F_RESOURCE,
	F_CLASS, F_MODEL, F_QUANTITY, F_START, F_END, F_KIND, F_ADJUSTMENT, F_SUPERSEDES,
	F_SIG, F_COUNT
};
/* The canonical form's key order (byte order of the names), sig left out. */
static const unsigned char canon_order[] = {
	F_ADJUSTMENT, F_CLASS, F_END, F_INSTITUTION, F_KIND, F_MEMBER, F_MODEL, F_PROJECT,
	F_PROVIDER, F_QUANTITY, F_RECORD_ID, F_RESOURCE, F_SEQ, F_START, F_SUPERSEDES};

/* One field as found in the input, whichever parser read it: absent or
 * null (RF_NONE), a string (s: NUL-terminated or n bytes), an integer, or
 * any other JSON value. */
enum rf_type { RF_NONE, RF_STR, RF_INT, RF_OTHER };
struct rf {
	enum rf_type t;
	const char *s;
	size_t n;
	int64_t i;
};

/* Identifiers: printable ASCII without spaces or quotes; member ids may be
 * e-mail addresses. */
static bool id_ok(const char *s, size_t n, size_t max)
{
	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '/')
			return false;
	}
	return true;
}

/* json_get_str's rules and messages over a struct rf. */
static allot_err rf_str(const struct rf *f, int k, bool required, const char **out,
			size_t *n, char *reason, size_t rsz)
{
	*out = NULL;
	*n = 0;
	if (f[k].t == RF_NONE) {
		if (required) {
			snprintf(reason, rsz, "missing field \"%s\"", record_fields[k]);
			return ALLOT_E_INVALID;
		}
		return ALLOT_OK;
	}
	if (f[k].t != RF_STR) {
		snprintf(reason, rsz, "field \"%s\" must be a string", record_fields[k]);
		return ALLOT_E_INVALID;
	}
	*out = f[k].s;
	*n = f[k].n;
	return ALLOT_OK;
}

/* json_get_int's rules and messages over a struct rf. */
static allot_err rf_int(const struct rf *f, int k, bool required, int64_t min, int64_t max,
			int64_t *out, char *reason, size_t rsz)
{
	if (f[k].t == RF_NONE) {
		if (required) {
			snprintf(reason, rsz, "missing field \"%s\"", record_fields[k]);
			return ALLOT_E_INVALID;
		}
		return ALLOT_OK;
	}
	if (f[k].t != RF_INT) {
		snprintf(reason, rsz, "field \"%s\" must be an integer", record_fields[k]);
		return ALLOT_E_INVALID;
	}
	if (f[k].i < min || f[k].i > max) {
		snprintf(reason, rsz, "field \"%s\" must be between %lld and %lld", record_fields[k],
			 (long long)min, (long long)max);
		return ALLOT_E_INVALID;
	}
	*out = f[k].i;
	return ALLOT_OK;
}

static allot_err get_id(const struct rf *f, int k, bool required, char *dst, size_t dstsz,
			char *reason, size_t rsz)
{
	const char *s;
	size_t n;
	allot_err e = rf_str(f, k, required, &s, &n, reason, rsz);
	if (e)
		return e;
	if (!s) {
		dst[0] = '\0';
		return ALLOT_OK;
	}
	if (!id_ok(s, n, dstsz)) {
		snprintf(reason, rsz, "field \"%s\" must be 1..%zu printable characters "
				      "without spaces, quotes, '/' or '\\'", record_fields[k], dstsz - 1);
		return ALLOT_E_INVALID;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
	return ALLOT_OK;
}

static allot_err get_time(const struct rf *f, int k, int64_t *out, char *reason, size_t rsz)
{
	const char *s;
	size_t n;
	allot_err e = rf_str(f, k, true, &s, &n, reason, rsz);
	if (e)
		return e;
	if (time_parse_rfc3339(s, n, out) < 0) {
		snprintf(reason, rsz, "field \"%s\" must be an RFC 3339 time such as "
				      "2026-12-03T10:00:00Z", record_fields[k]);
		return ALLOT_E_INVALID;
	}
	return ALLOT_OK;
}

static bool str_is(const char *s, size_t n, const char *lit)
{
	size_t m = strlen(lit);
	return s && n == m && memcmp(s, lit, m) == 0;
}

/* ---- canonical bytes ----------------------------------------------------------
 * Written directly, byte for byte what jansson's json_dumps(JSON_COMPACT |
 * JSON_SORT_KEYS) writes for the same object: strings with json_write_str,
 * integers with buf_put_int (tests/unit/test_record.c compares the two). */

/* The canonical bytes of a checked record's fields (strings and integers
 * only, as record_check leaves them). */
static char *canon_fields(const struct rf *f, size_t *len)
{
	/* one allocation that fits any ordinary record (about 350 bytes)
	 * instead of growing 64, 128, 256, 512 */
	struct buf b = BUF_INIT;
	buf_reserve(&b, 600);
	char first = '{';
	for (size_t i = 0; i < sizeof canon_order; i++) {
		const struct rf *v = &f[canon_order[i]];
		if (v->t != RF_STR && v->t != RF_INT)
			continue;
		/* ,"name": (a field name never needs escaping) */
		const char *name = record_fields[canon_order[i]];
		size_t nn = strlen(name);
		char kq[24];
		kq[0] = first;
		kq[1] = '"';
		memcpy(kq + 2, name, nn);
		kq[nn + 2] = '"';
		kq[nn + 3] = ':';
		buf_append(&b, kq, nn + 4);
		first = ',';
		if (v->t == RF_STR)
			json_write_str(&b, v->s, v->n);
		else
			buf_put_int(&b, v->i);
	}
	if (first == '{')
		buf_putc(&b, '{');
	buf_putc(&b, '}');
	if (b.oom) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, len);
}

struct canon_key {
	const char *k;
	size_t n;
	json_t *v;
};

static int canon_key_cmp(const void *a, const void *b)
{
	const struct canon_key *x = a, *y = b;
	int c = memcmp(x->k, y->k, x->n < y->n ? x->n : y->n);
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

char *record_canonical(const json_t *obj, size_t *len)
{
	if (!json_is_object(obj))
		return NULL;
	size_t n = 0, cap = json_object_size(obj);
	struct canon_key stack[32], *keys = cap <= 32 ? stack : malloc(cap * sizeof *keys);
	if (!keys)
		return NULL;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		if (strcmp(k, "sig") == 0 || json_is_null(v))
			continue;
		keys[n++] = (struct canon_key){k, strlen(k), v};
	}
	qsort(keys, n, sizeof *keys, canon_key_cmp);
	struct buf b = BUF_INIT;
	buf_putc(&b, '{');
	for (size_t i = 0; i < n && !b.oom; i++) {
		if (i)
			buf_putc(&b, ',');
		json_write_str(&b, keys[i].k, keys[i].n);
		buf_putc(&b, ':');
		v = keys[i].v;
		if (json_is_string(v)) {
			json_write_str(&b, json_string_value(v), json_string_length(v));
		} else if (json_is_integer(v)) {
			buf_put_int(&b, json_integer_value(v));
		} else {
			/* anything else as jansson writes it (records hold none) */
			char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
			if (!s)
				b.oom = true;
			else
				buf_puts(&b, s);
			free(s);
		}
	}
	buf_putc(&b, '}');
	if (keys != stack)
		free(keys);
	if (b.oom) {
		buf_release(&b);
		return NULL;
	}
	size_t l;
	char *s = buf_detach(&b, &l);
	if (len)
		*len = l;
	return s;
}

/* ---- hashing ------------------------------------------------------------------- */

void record_sha256(const void *p, size_t n, uint8_t out[32])
{
	digest_sha256(p, n, out);
}

/* ---- checking ------------------------------------------------------------------ */

/* Schema checks, canonical form and hash over the fields (in the order and
 * with the messages of SPEC section 6 / docs/LEDGER.md). */
static allot_err record_check(struct rf *f, bool require_sig, struct usage_record *r,
			      char *reason, size_t rsz)
{
	allot_err e;
	const char *kind = NULL, *adj = NULL, *sig = NULL;
	size_t kind_n, adj_n, sig_n;
	if ((e = get_id(f, F_RECORD_ID, true, r->record_id, sizeof r->record_id, reason, rsz)) ||
	    (e = get_id(f, F_PROVIDER, true, r->provider, sizeof r->provider, reason, rsz)) ||
	    (e = get_id(f, F_INSTITUTION, true, r->institution, sizeof r->institution, reason, rsz)) ||
	    (e = get_id(f, F_PROJECT, true, r->project, sizeof r->project, reason, rsz)) ||
	    (e = get_id(f, F_MEMBER, false, r->member, sizeof r->member, reason, rsz)) ||
	    (e = get_id(f, F_RESOURCE, true, r->resource, sizeof r->resource, reason, rsz)) ||
	    (e = get_id(f, F_CLASS, false, r->cls, sizeof r->cls, reason, rsz)) ||
	    (e = get_id(f, F_MODEL, false, r->model, sizeof r->model, reason, rsz)) ||
	    (e = get_id(f, F_SUPERSEDES, false, r->supersedes, sizeof r->supersedes, reason, rsz)))
		return e;
	int64_t seq = -1;
	if ((e = rf_int(f, F_SEQ, false, 0, INT64_MAX, &seq, reason, rsz)))
		return e;
	r->has_seq = seq >= 0;
	r->seq = r->has_seq ? seq : 0;
	if ((e = rf_int(f, F_QUANTITY, true, 1, RECORD_QUANTITY_MAX, &r->quantity, reason, rsz)))
		return e;
	if ((e = get_time(f, F_START, &r->start_us, reason, rsz)) ||
	    (e = get_time(f, F_END, &r->end_us, reason, rsz)))
		return e;
	if (r->end_us < r->start_us) {
		snprintf(reason, rsz, "\"end\" is before \"start\"");
		return ALLOT_E_INVALID;
	}
	if ((e = rf_str(f, F_KIND, false, &kind, &kind_n, reason, rsz)) ||
	    (e = rf_str(f, F_ADJUSTMENT, false, &adj, &adj_n, reason, rsz)))
		return e;
	if (!kind || str_is(kind, kind_n, "usage"))
		r->kind = RECORD_USAGE;
	else if (str_is(kind, kind_n, "adjustment"))
		r->kind = RECORD_ADJUSTMENT;
	else if (str_is(kind, kind_n, "void"))
		r->kind = RECORD_VOID;
	else {
		snprintf(reason, rsz, "field \"kind\" must be usage, adjustment or void");
		return ALLOT_E_INVALID;
	}
	if (r->kind == RECORD_ADJUSTMENT) {
		if (!adj) {
			snprintf(reason, rsz, "an adjustment needs \"adjustment\": credit, refund or debit");
			return ALLOT_E_INVALID;
		}
		r->adjustment = str_is(adj, adj_n, "credit")   ? ADJ_CREDIT
				: str_is(adj, adj_n, "refund") ? ADJ_REFUND
				: str_is(adj, adj_n, "debit")  ? ADJ_DEBIT
							       : ADJ_NONE;
		if (r->adjustment == ADJ_NONE) {
			snprintf(reason, rsz, "field \"adjustment\" must be credit, refund or debit");
			return ALLOT_E_INVALID;
		}
	} else if (adj) {
		snprintf(reason, rsz, "\"adjustment\" is only allowed with kind adjustment");
		return ALLOT_E_INVALID;
	}
	if ((r->kind == RECORD_USAGE) != (r->supersedes[0] == '\0')) {
		snprintf(reason, rsz, r->kind == RECORD_USAGE
					      ? "\"supersedes\" is only allowed for adjustments and voids"
					      : "an adjustment or void must name the record it \"supersedes\"");
		return ALLOT_E_INVALID;
	}
	if ((e = rf_str(f, F_SIG, require_sig, &sig, &sig_n, reason, rsz)))
		return e;
	if (sig) {
		size_t n = 0;
		if (b64_decode(sig, sig_n, r->sig, sizeof r->sig, &n) || n != 64) {
			snprintf(reason, rsz, "field \"sig\" must be the base64 of a 64-byte Ed25519 signature");
			return ALLOT_E_INVALID;
		}
		r->has_sig = true;
	}
	r->canonical = canon_fields(f, &r->canonical_len);
	if (!r->canonical) {
		snprintf(reason, rsz, "out of memory");
		return ALLOT_E_NOMEM;
	}
	record_sha256(r->canonical, r->canonical_len, r->sha256);
	return ALLOT_OK;
}

/* Rejects control characters anywhere in the record's strings, so the
 * canonical form has a single spelling. */
static bool strings_clean(const json_t *obj)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		if (!json_is_string(v))
			continue;
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				return false;
	}
	return true;
}

allot_err record_parse(const json_t *obj, bool require_sig, struct usage_record *r,
		       char *reason, size_t rsz)
{
	allot_err e;
	memset(r, 0, sizeof *r);
	if (!json_is_object(obj)) {
		snprintf(reason, rsz, "a record must be a JSON object");
		return ALLOT_E_INVALID;
	}
	if ((e = json_only_fields(obj, record_fields, reason, rsz)))
		return e;
	if (!strings_clean(obj)) {
		snprintf(reason, rsz, "control characters are not allowed in record fields");
		return ALLOT_E_INVALID;
	}
	struct rf f[F_COUNT];
	for (int k = 0; k < F_COUNT; k++) {
		json_t *v = json_object_get(obj, record_fields[k]);
		f[k] = (struct rf){RF_NONE, NULL, 0, 0};
		if (!v || json_is_null(v))
			continue;
		if (json_is_string(v))
			f[k] = (struct rf){RF_STR, json_string_value(v), strlen(json_string_value(v)), 0};
		else if (json_is_integer(v))
			f[k] = (struct rf){RF_INT, NULL, 0, json_integer_value(v)};
		else
			f[k].t = RF_OTHER;
	}
	return record_check(f, require_sig, r, reason, rsz);
}

/* ---- the text path ---------------------------------------------------------------
 * A record as the provider sent it, read straight from the request body.
 * The scan accepts only a plain subset of JSON: an object whose keys are
 * the record's own field names, each at most once, and whose values are
 * strings of printable ASCII without escapes, integers of up to 18 digits
 * (no fraction or exponent) or null.  For such text jansson would build
 * exactly the values the scan reads, so record_check gives the same result
 * either way; any other text goes through jansson and record_parse. */

static const char *ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* A string of the plain subset: p at its opening quote.  Returns the byte
 * after the closing quote, or NULL. */
static const char *scan_str(const char *p, const char *end, const char **s, size_t *n)
{
	const char *q = ++p;
	while (q < end && *q != '"') {
		unsigned char c = (unsigned char)*q;
		if (c < 0x20 || c >= 0x7f || c == '\\')
			return NULL;
		q++;
	}
	if (q >= end)
		return NULL;
	*s = p;
	*n = (size_t)(q - p);
	return q + 1;
}

static const char *scan_int(const char *p, const char *end, int64_t *v)
{
	bool neg = p < end && *p == '-';
	if (neg)
		p++;
	const char *d = p;
	int64_t x = 0;
	while (p < end && *p >= '0' && *p <= '9' && p - d < 19)
		x = x * 10 + (*p++ - '0');
	size_t nd = (size_t)(p - d);
	if (nd == 0 || nd > 18 || (nd > 1 && *d == '0'))
		return NULL;
	if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9')))
		return NULL;
	*v = neg ? -x : x;
	return p;
}

/* Scans the record object at p (its '{') into f; *unknown: some key is not
 * a record field (the object is otherwise plain).  Returns the byte after
 * the closing '}', or NULL when the text is not in the plain subset or a
 * key repeats. */
static const char *scan_record(const char *p, const char *end, struct rf *f, bool *unknown)
{
	const char *ukey[8];
	size_t ukn[8], nu = 0;
	uint32_t seen = 0;
	for (int k = 0; k < F_COUNT; k++)
		f[k] = (struct rf){RF_NONE, NULL, 0, 0};
	*unknown = false;
	if (p >= end || *p != '{')
		return NULL;
	p = ws(p + 1, end);
	if (p < end && *p == '}')
		return p + 1;
	for (;;) {
		const char *key;
		size_t kn;
		if (p >= end || *p != '"' || !(p = scan_str(p, end, &key, &kn)))
			return NULL;
		p = ws(p, end);
		if (p >= end || *p != ':')
			return NULL;
		p = ws(p + 1, end);
		int k = 0;
		while (k < F_COUNT && !str_is(key, kn, record_fields[k]))
			k++;
		struct rf v = {RF_NONE, NULL, 0, 0};
		if (p >= end)
			return NULL;
		if (*p == '"') {
			v.t = RF_STR;
			p = scan_str(p, end, &v.s, &v.n);
		} else if (*p == '-' || (*p >= '0' && *p <= '9')) {
			v.t = RF_INT;
			p = scan_int(p, end, &v.i);
		} else if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
			p += 4;
		} else if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
			v.t = RF_OTHER;
			p += 4;
		} else if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
			v.t = RF_OTHER;
			p += 5;
		} else {
			return NULL; /* arrays, objects, anything else */
		}
		if (!p)
			return NULL;
		if (k < F_COUNT) {
			if (seen & (1u << k))
				return NULL; /* jansson refuses the whole body */
			seen |= 1u << k;
			f[k] = v;
		} else {
			for (size_t u = 0; u < nu; u++)
				if (ukn[u] == kn && memcmp(ukey[u], key, kn) == 0)
					return NULL;
			if (nu == 8)
				return NULL;
			ukey[nu] = key;
			ukn[nu++] = kn;
			*unknown = true;
		}
		p = ws(p, end);
		if (p < end && *p == ',') {
			p = ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}')
			return p + 1;
		return NULL;
	}
}

allot_err record_parse_text(const char **text, const char *end, bool require_sig,
			    struct usage_record *r, bool *plain, char *reason, size_t rsz)
{
	struct rf f[F_COUNT];
	bool unknown;
	const char *p = *text, *q = scan_record(p, end, f, &unknown);
	memset(r, 0, sizeof *r);
	*plain = q != NULL;
	if (!q) {
		snprintf(reason, rsz, "not plain JSON");
		return ALLOT_E_INVALID;
	}
	*text = q;
	if (!unknown)
		return record_check(f, require_sig, r, reason, rsz);
	/* Keys that are not fields: jansson and record_parse name the first. */
	json_t *obj = json_loadb(p, (size_t)(q - p), JSON_REJECT_DUPLICATES, NULL);
	if (!obj) {
		*plain = false;
		snprintf(reason, rsz, "not plain JSON");
		return ALLOT_E_INVALID;
	}
	allot_err e = record_parse(obj, require_sig, r, reason, rsz);
	json_decref(obj);
	return e;
}

void record_release(struct usage_record *r)
{
	free(r->canonical);
	r->canonical = NULL;
}

bool record_sig_ok(const struct usage_record *r, const uint8_t pub[32])
{
	return r->has_sig &&
	       ed25519_verify(pub, r->canonical, r->canonical_len, r->sig, 64) == ALLOT_OK;
}

json_t *record_to_json(const struct usage_record *r)
{
	char s[TIME_FMT_MAX], e[TIME_FMT_MAX];
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "record_id", r->record_id,
			      "provider", r->provider, "institution", r->institution, "project",
			      r->project, "resource", r->resource, "quantity",
			      (json_int_t)r->quantity, "start", time_format_rfc3339(r->start_us, s),
			      "end", time_format_rfc3339(r->end_us, e), "kind",
			      record_kind_name(r->kind));
	if (r->has_seq)
		json_object_set_new(j, "seq", json_integer(r->seq));
	if (r->member[0])
		json_object_set_new(j, "member", json_string(r->member));
	if (r->cls[0])
		json_object_set_new(j, "class", json_string(r->cls));
	if (r->model[0])
		json_object_set_new(j, "model", json_string(r->model));
	if (r->supersedes[0])
		json_object_set_new(j, "supersedes", json_string(r->supersedes));
	if (r->adjustment != ADJ_NONE)
		json_object_set_new(j, "adjustment", json_string(record_adjustment_name(r->adjustment)));
	return j;
}

allot_err record_seal(struct usage_record *r)
{
	free(r->canonical);
	r->canonical = record_canonical_sealed(r, &r->canonical_len);
	if (!r->canonical)
		return ALLOT_E_NOMEM;
	record_sha256(r->canonical, r->canonical_len, r->sha256);
	return ALLOT_OK;
}
