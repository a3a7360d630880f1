/* record.c — usage record schema, canonical form and signature check. */
#include "ledger/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/json.h"
#include "common/timeutil.h"
#include "crypto/b64.h"
#include "crypto/ed25519.h"

static const char *const record_fields[] = {
	"record_id", "provider", "seq", "institution", "project", "member", "resource",
	"class", "model", "quantity", "start", "end", "kind", "adjustment", "supersedes",
	"sig", NULL};

const char *record_kind_name(enum record_kind k)
{
	return k == RECORD_ADJUSTMENT ? "adjustment" : k == RECORD_VOID ? "void" : "usage";
}

const char *record_adjustment_name(enum record_adjustment a)
{
	switch (a) {
	case ADJ_CREDIT: return "credit";
	case ADJ_REFUND: return "refund";
	case ADJ_DEBIT: return "debit";
	default: return NULL;
	}
}

/* Identifiers: printable ASCII without spaces or quotes; member ids may be
 * e-mail addresses. */
static bool id_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '/')
			return false;
	}
	return true;
}

static allot_err get_id(const json_t *o, const char *key, bool required, char *dst,
			size_t dstsz, char *reason, size_t rsz)
{
	const char *s = NULL;
	allot_err e = json_get_str(o, key, required, &s, reason, rsz);
	if (e)
		return e;
	if (!s) {
		dst[0] = '\0';
		return ALLOT_OK;
	}
	if (!id_ok(s, dstsz)) {
		snprintf(reason, rsz, "field \"%s\" must be 1..%zu printable characters "
				      "without spaces, quotes, '/' or '\\'", key, dstsz - 1);
		return ALLOT_E_INVALID;
	}
	snprintf(dst, dstsz, "%s", s);
	return ALLOT_OK;
}

static allot_err get_time(const json_t *o, const char *key, int64_t *out, char *reason,
			  size_t rsz)
{
	const char *s = NULL;
	allot_err e = json_get_str(o, key, true, &s, reason, rsz);
	if (e)
		return e;
	if (time_parse_rfc3339(s, strlen(s), out) < 0) {
		snprintf(reason, rsz, "field \"%s\" must be an RFC 3339 time such as "
				      "2026-12-03T10:00:00Z", key);
		return ALLOT_E_INVALID;
	}
	return ALLOT_OK;
}

char *record_canonical(const json_t *obj, size_t *len)
{
	json_t *copy = json_object();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		if (strcmp(k, "sig") == 0 || json_is_null(v))
			continue;
		json_object_set(copy, k, v);
	}
	char *s = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	if (s && len)
		*len = strlen(s);
	return s;
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
	const char *kind = NULL, *adj = NULL, *sig = NULL;
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
	if ((e = get_id(obj, "record_id", true, r->record_id, sizeof r->record_id, reason, rsz)) ||
	    (e = get_id(obj, "provider", true, r->provider, sizeof r->provider, reason, rsz)) ||
	    (e = get_id(obj, "institution", true, r->institution, sizeof r->institution, reason, rsz)) ||
	    (e = get_id(obj, "project", true, r->project, sizeof r->project, reason, rsz)) ||
	    (e = get_id(obj, "member", false, r->member, sizeof r->member, reason, rsz)) ||
	    (e = get_id(obj, "resource", true, r->resource, sizeof r->resource, reason, rsz)) ||
	    (e = get_id(obj, "class", false, r->cls, sizeof r->cls, reason, rsz)) ||
	    (e = get_id(obj, "model", false, r->model, sizeof r->model, reason, rsz)) ||
	    (e = get_id(obj, "supersedes", false, r->supersedes, sizeof r->supersedes, reason, rsz)))
		return e;
	int64_t seq = -1;
	if ((e = json_get_int(obj, "seq", false, 0, INT64_MAX, &seq, reason, rsz)))
		return e;
	r->has_seq = seq >= 0;
	r->seq = r->has_seq ? seq : 0;
	if ((e = json_get_int(obj, "quantity", true, 1, RECORD_QUANTITY_MAX, &r->quantity,
			      reason, rsz)))
		return e;
	if ((e = get_time(obj, "start", &r->start_us, reason, rsz)) ||
	    (e = get_time(obj, "end", &r->end_us, reason, rsz)))
		return e;
	if (r->end_us < r->start_us) {
		snprintf(reason, rsz, "\"end\" is before \"start\"");
		return ALLOT_E_INVALID;
	}
	if ((e = json_get_str(obj, "kind", false, &kind, reason, rsz)) ||
	    (e = json_get_str(obj, "adjustment", false, &adj, reason, rsz)))
		return e;
	if (!kind || strcmp(kind, "usage") == 0)
		r->kind = RECORD_USAGE;
	else if (strcmp(kind, "adjustment") == 0)
		r->kind = RECORD_ADJUSTMENT;
	else if (strcmp(kind, "void") == 0)
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
		r->adjustment = strcmp(adj, "credit") == 0   ? ADJ_CREDIT
				: strcmp(adj, "refund") == 0 ? ADJ_REFUND
				: strcmp(adj, "debit") == 0  ? ADJ_DEBIT
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
	if ((e = json_get_str(obj, "sig", require_sig, &sig, reason, rsz)))
		return e;
	if (sig) {
		size_t n = 0;
		if (b64_decode(sig, strlen(sig), r->sig, sizeof r->sig, &n) || n != 64) {
			snprintf(reason, rsz, "field \"sig\" must be the base64 of a 64-byte Ed25519 signature");
			return ALLOT_E_INVALID;
		}
		r->has_sig = true;
	}
	r->canonical = record_canonical(obj, &r->canonical_len);
	if (!r->canonical) {
		snprintf(reason, rsz, "out of memory");
		return ALLOT_E_NOMEM;
	}
	unsigned int hl = 32;
	EVP_Digest(r->canonical, r->canonical_len, r->sha256, &hl, EVP_sha256(), NULL);
	return ALLOT_OK;
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
