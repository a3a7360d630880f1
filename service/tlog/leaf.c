/* leaf.c — leaf formats of the transparency log (tlog/leaf.h). */
#include "tlog/leaf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "common/timeutil.h"
#include "common/buf.h"
#include "common/b64.h"
#include "crypto/digest.h"

/* The fields of each entry type that its leaf commits to (export form). */
static const char *const usage_fields[] = {
	"provider", "record_id", "seq", "kind", "adjustment", "supersedes", "institution",
	"project", "member", "resource", "class", "model", "quantity", "start", "end",
	"received", "booked", "late", "overage", "charter_version", "rate", "charge", "source",
	NULL};
static const char *const charter_fields[] = {
	"version", "charter_id", "sha256", "author", "applied", "effective", NULL};
static const char *const audit_fields[] = {
	"id", "at", "actor", "action", "target", "before_sha256", "after_sha256", "detail", NULL};

static const char *const type_names[] = {"usage", "charter", "audit"};

const char *tlog_leaf_type_name(enum tlog_leaf_type t)
{
	return (unsigned)t < 3 ? type_names[t] : "unknown";
}

int tlog_leaf_type_parse(const char *name)
{
	for (int i = 0; name && i < 3; i++)
		if (strcmp(name, type_names[i]) == 0)
			return i;
	return -1;
}

static json_t *time_json(int64_t us)
{
	char ts[TIME_FMT_MAX];
	return json_string(time_format_rfc3339(us, ts));
}

static json_t *money_json(int64_t micro)
{
	char b[MONEY_FMT_MAX];
	return json_string(money_format(micro, b));
}

json_t *tlog_usage_row_json(const struct tlog_usage *u, const struct tlog_usage_listing *ls)
{
	json_t *j = json_object();
	if (!j)
		return NULL;
	/* The order of the store's columns, then the converted ones: what the
	 * listing has always written.  Exactly what the store keeps: empty
	 * supersedes and a missing adjustment or seq are NULL columns, the
	 * others "". */
	if (ls && ls->listed)
		json_object_set_new(j, "id", json_integer(ls->id));
	json_object_set_new(j, "provider", json_string(u->provider));
	json_object_set_new(j, "record_id", json_string(u->record_id));
	json_object_set_new(j, "seq", u->has_seq ? json_integer(u->seq) : json_null());
	json_object_set_new(j, "kind", json_string(u->kind));
	json_object_set_new(j, "adjustment", u->adjustment ? json_string(u->adjustment)
							   : json_null());
	json_object_set_new(j, "supersedes", u->supersedes[0] ? json_string(u->supersedes)
							       : json_null());
	json_object_set_new(j, "institution", json_string(u->institution));
	json_object_set_new(j, "project", json_string(u->project));
	json_object_set_new(j, "member", json_string(u->member));
	json_object_set_new(j, "resource", json_string(u->resource));
	json_object_set_new(j, "class", json_string(u->cls));
	json_object_set_new(j, "model", json_string(u->model));
	json_object_set_new(j, "quantity", json_integer(u->quantity));
	json_object_set_new(j, "late", json_boolean(u->late));
	json_object_set_new(j, "charter_version", json_integer(u->charter_version));
	json_object_set_new(j, "overage", json_boolean(u->overage));
	json_object_set_new(j, "source", json_string(u->from_gate ? "gate" : "provider"));
	if (ls && ls->sha256)
		json_object_set_new(j, "sha256", json_string(ls->sha256));
	json_object_set_new(j, "canonical", json_stringn(u->canonical ? u->canonical : "",
							 u->canonical ? u->canonical_len : 0));
	if (ls && ls->listed)
		json_object_set_new(j, "leaf_index", ls->leaf_index >= 0
				    ? json_integer(ls->leaf_index) : json_null());
	json_object_set_new(j, "charge", money_json(u->charge_micro));
	json_object_set_new(j, "rate", money_json(u->rate_micro));
	json_object_set_new(j, "start", time_json(u->start_us));
	json_object_set_new(j, "end", time_json(u->end_us));
	json_object_set_new(j, "received", time_json(u->received_us));
	json_object_set_new(j, "booked", time_json(u->book_us));
	return j;
}

json_t *tlog_usage_export_json(const struct tlog_usage *u)
{
	return tlog_usage_row_json(u, NULL);
}

json_t *tlog_charter_export_json(int64_t version, const char *charter_id, const char *sha256,
				 const char *author, int64_t applied_us, int64_t effective_us)
{
	char a[TIME_FMT_MAX], e[TIME_FMT_MAX];
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "version", (json_int_t)version,
			 "charter_id", charter_id, "sha256", sha256, "author", author, "applied",
			 time_format_rfc3339(applied_us, a), "effective",
			 time_format_rfc3339(effective_us, e));
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

json_t *tlog_audit_export_json(int64_t id, int64_t at_us, const char *actor, const char *action,
			       const char *target, const char *before_sha256,
			       const char *after_sha256, const char *detail)
{
	char ts[TIME_FMT_MAX];
	json_t *j = json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)id, "at",
			      time_format_rfc3339(at_us, ts), "actor", actor, "action", action);
	if (!j)
		return NULL;
	/* The store keeps "" of these as NULL (sq_bind_text). */
	json_object_set_new(j, "target", str_or_null(target));
	json_object_set_new(j, "before_sha256", str_or_null(before_sha256));
	json_object_set_new(j, "after_sha256", str_or_null(after_sha256));
	json_object_set_new(j, "detail", str_or_null(detail));
	return j;
}

allot_err tlog_leaf_bytes(enum tlog_leaf_type t, const json_t *entry, char **data, size_t *len,
			  char *msg, size_t msgcap)
{
	const char *const *fields = t == TLOG_LEAF_USAGE     ? usage_fields
				    : t == TLOG_LEAF_CHARTER ? charter_fields
				    : t == TLOG_LEAF_AUDIT   ? audit_fields
							     : NULL;
	if (!fields || !json_is_object(entry)) {
		if (msg)
			snprintf(msg, msgcap, "the entry is not a JSON object of a known type");
		return ALLOT_E_INVALID;
	}
	json_t *leaf = json_object();
	if (!leaf)
		return ALLOT_E_NOMEM;
	json_object_set_new(leaf, "type", json_string(tlog_leaf_type_name(t)));
	for (size_t i = 0; fields[i]; i++) {
		json_t *v = json_object_get(entry, fields[i]);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_string(v) && !json_is_integer(v) && !json_is_boolean(v)) {
			if (msg)
				snprintf(msg, msgcap, "field \"%s\" must be a string, an integer or a "
					 "boolean", fields[i]);
			json_decref(leaf);
			return ALLOT_E_INVALID;
		}
		json_object_set(leaf, fields[i], v);
	}
	if (t == TLOG_LEAF_USAGE) {
		json_t *c = json_object_get(entry, "canonical");
		if (!json_is_string(c)) {
			if (msg)
				snprintf(msg, msgcap, "field \"canonical\" (the record's bytes) is missing");
			json_decref(leaf);
			return ALLOT_E_INVALID;
		}
		uint8_t h[32];
		char hex[65];
		digest_sha256(json_string_value(c), json_string_length(c), h);
		hex_encode(h, sizeof h, hex);
		hex[64] = '\0';
		json_object_set_new(leaf, "record_sha256", json_string(hex));
	}
	char *s = json_dumps(leaf, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(leaf);
	if (!s)
		return ALLOT_E_NOMEM;
	*len = strlen(s);
	*data = s;
	return ALLOT_OK;
}

/* Printable ASCII without '"' and '\\': written as is by jansson too. */
static bool plain(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '"' || *s == '\\')
			return false;
	return true;
}

static void leaf_str(struct buf *b, const char *key, const char *v, const char *after)
{
	buf_puts(b, key);
	buf_puts(b, v);
	buf_puts(b, after);
}

static void leaf_num(struct buf *b, const char *key, int64_t v)
{
	buf_puts(b, key);
	buf_put_int(b, v);
	buf_putc(b, ',');
}

allot_err tlog_leaf_usage(const struct tlog_usage *u, char **data, size_t *len)
{
	const char *adj = u->adjustment;
	if (!plain(u->provider) || !plain(u->record_id) || !plain(u->supersedes) ||
	    !plain(u->institution) || !plain(u->project) || !plain(u->member) ||
	    !plain(u->resource) || !plain(u->cls) || !plain(u->model)) {
		json_t *j = tlog_usage_export_json(u);
		if (!j)
			return ALLOT_E_NOMEM;
		allot_err e = tlog_leaf_bytes(TLOG_LEAF_USAGE, j, data, len, NULL, 0);
		json_decref(j);
		return e;
	}
	char booked[TIME_FMT_MAX], start[TIME_FMT_MAX], end[TIME_FMT_MAX], hex[65];
	char charge[MONEY_FMT_MAX];
	uint8_t h[32];
	digest_sha256(u->canonical ? u->canonical : "", u->canonical ? u->canonical_len : 0, h);
	hex_encode(h, sizeof h, hex);
	hex[64] = '\0';
	time_format_rfc3339(u->end_us, end);
	if (u->book_us == u->end_us)
		memcpy(booked, end, sizeof booked);
	else
		time_format_rfc3339(u->book_us, booked);
	/* A group books its records with one "received" and few rates. */
	static _Thread_local struct {
		int64_t recv_us, rate;
		bool have_recv, have_rate;
		char recv[TIME_FMT_MAX], rate_s[MONEY_FMT_MAX];
	} last;
	if (!last.have_recv || last.recv_us != u->received_us) {
		time_format_rfc3339(u->received_us, last.recv);
		last.recv_us = u->received_us;
		last.have_recv = true;
	}
	if (!last.have_rate || last.rate != u->rate_micro) {
		money_format(u->rate_micro, last.rate_s);
		last.rate = u->rate_micro;
		last.have_rate = true;
	}
	/* keys in byte order, as JSON_SORT_KEYS writes them; appended piece by
	 * piece (no printf: this runs for every record inside the group
	 * commit) */
	struct buf b = BUF_INIT;
	buf_reserve(&b, 800); /* one allocation for an ordinary leaf (~600 bytes) */
	buf_putc(&b, '{');
	if (adj)
		leaf_str(&b, "\"adjustment\":\"", adj, "\",");
	leaf_str(&b, "\"booked\":\"", booked, "\",");
	leaf_str(&b, "\"charge\":\"", money_format(u->charge_micro, charge), "\",");
	leaf_num(&b, "\"charter_version\":", u->charter_version);
	leaf_str(&b, "\"class\":\"", u->cls, "\",");
	leaf_str(&b, "\"end\":\"", end, "\",");
	leaf_str(&b, "\"institution\":\"", u->institution, "\",");
	leaf_str(&b, "\"kind\":\"", u->kind, "\",");
	buf_puts(&b, u->late ? "\"late\":true," : "\"late\":false,");
	leaf_str(&b, "\"member\":\"", u->member, "\",");
	leaf_str(&b, "\"model\":\"", u->model, "\",");
	buf_puts(&b, u->overage ? "\"overage\":true," : "\"overage\":false,");
	leaf_str(&b, "\"project\":\"", u->project, "\",");
	leaf_str(&b, "\"provider\":\"", u->provider, "\",");
	leaf_num(&b, "\"quantity\":", u->quantity);
	leaf_str(&b, "\"rate\":\"", last.rate_s, "\",");
	leaf_str(&b, "\"received\":\"", last.recv, "\",");
	leaf_str(&b, "\"record_id\":\"", u->record_id, "\",");
	leaf_str(&b, "\"record_sha256\":\"", hex, "\",");
	leaf_str(&b, "\"resource\":\"", u->resource, "\",");
	if (u->has_seq)
		leaf_num(&b, "\"seq\":", u->seq);
	leaf_str(&b, "\"source\":\"", u->from_gate ? "gate" : "provider", "\",");
	leaf_str(&b, "\"start\":\"", time_format_rfc3339(u->start_us, start), "\",");
	if (u->supersedes[0])
		leaf_str(&b, "\"supersedes\":\"", u->supersedes, "\",");
	buf_puts(&b, "\"type\":\"usage\"}");
	if (b.oom) {
		buf_release(&b);
		return ALLOT_E_NOMEM;
	}
	*data = buf_detach(&b, len);
	return ALLOT_OK;
}
