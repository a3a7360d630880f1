/* ledgerlog_entry.c — the log's entries in export form (ledger/ledgerlog.h):
 * the JSON that GET /v1/usage, /v1/log/entries and /v1/log/export hand out,
 * built from the store's typed rows (store/tlog_types.h). */
#include "ledger/ledgerlog.h"

#include <stdlib.h>

#include "common/b64.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "tlog/leaf.h"

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

json_t *ledgerlog_usage_json(const struct ledger_row *row, bool listed, int64_t leaf_index)
{
	const struct usage_record *r = &row->rec;
	json_t *j = json_object();
	if (!j)
		return NULL;
	const char *adj = record_adjustment_name(r->adjustment);
	char hex[65];
	hex_encode(r->sha256, sizeof r->sha256, hex);
	hex[64] = '\0';
	/* The order of the store's columns, then the converted ones: what the
	 * listing has always written (tlog/leaf.h, export form). */
	if (listed)
		json_object_set_new(j, "id", json_integer(row->row_id));
	json_object_set_new(j, "provider", json_string(r->provider));
	json_object_set_new(j, "record_id", json_string(r->record_id));
	json_object_set_new(j, "seq", r->has_seq ? json_integer(r->seq) : json_null());
	json_object_set_new(j, "kind", json_string(record_kind_name(r->kind)));
	json_object_set_new(j, "adjustment", adj ? json_string(adj) : json_null());
	json_object_set_new(j, "supersedes", r->supersedes[0] ? json_string(r->supersedes)
							       : json_null());
	json_object_set_new(j, "institution", json_string(r->institution));
	json_object_set_new(j, "project", json_string(r->project));
	json_object_set_new(j, "member", json_string(r->member));
	json_object_set_new(j, "resource", json_string(r->resource));
	json_object_set_new(j, "class", json_string(r->cls));
	json_object_set_new(j, "model", json_string(r->model));
	json_object_set_new(j, "quantity", json_integer(r->quantity));
	json_object_set_new(j, "late", json_boolean(row->late));
	json_object_set_new(j, "charter_version", json_integer(row->charter_version));
	json_object_set_new(j, "overage", json_boolean(row->overage));
	json_object_set_new(j, "source", json_string(row->from_gate ? "gate" : "provider"));
	json_object_set_new(j, "sha256", json_string(hex));
	json_object_set_new(j, "canonical", json_stringn(r->canonical ? r->canonical : "",
							 r->canonical ? r->canonical_len : 0));
	if (listed)
		json_object_set_new(j, "leaf_index",
				    leaf_index >= 0 ? json_integer(leaf_index) : json_null());
	json_object_set_new(j, "charge", money_json(row->charge_micro));
	json_object_set_new(j, "rate", money_json(row->rate_micro));
	json_object_set_new(j, "start", time_json(r->start_us));
	json_object_set_new(j, "end", time_json(r->end_us));
	json_object_set_new(j, "received", time_json(row->received_us));
	json_object_set_new(j, "booked", time_json(row->book_us));
	return j;
}

json_t *ledgerlog_entry_json(const struct tlog_entry_row *e)
{
	if (e->usage)
		return ledgerlog_usage_json(e->usage, false, -1);
	if (e->charter) {
		const struct charter_row *c = e->charter;
		json_t *j = tlog_charter_export_json(c->version, c->charter_id, c->sha256, c->author,
						     c->applied_at, c->effective);
		if (j)
			json_object_set_new(j, "text", json_stringn(c->text ? c->text : "",
								    c->text ? c->text_len : 0));
		return j;
	}
	if (e->audit) {
		const struct audit_entry *a = e->audit;
		return tlog_audit_export_json(e->audit_id, a->at, a->actor, a->action, a->target,
					      a->before_sha256, a->after_sha256, a->detail);
	}
	return NULL;
}

json_t *ledgerlog_leaf_json(const struct tlog_entry_row *e, bool with_entry)
{
	json_t *o = json_pack("{s:I,s:s}", "leaf_index", (json_int_t)e->leaf_index, "type",
			      e->type);
	if (!o)
		return NULL;
	json_t *ent = ledgerlog_entry_json(e);
	if (with_entry) {
		json_object_set_new(o, "entry", ent ? ent : json_null());
		/* The entry is gone: the leaf row still names it. */
		if (!ent) {
			json_object_set_new(o, "ref", json_integer(e->ref));
			if (e->name)
				json_object_set_new(o, "name", json_string(e->name));
		}
		return o;
	}
	char *data = NULL;
	size_t len = 0;
	int t = tlog_leaf_type_parse(e->type);
	json_object_set_new(o, "ref", json_integer(e->ref));
	if (ent && t >= 0 && !tlog_leaf_bytes((enum tlog_leaf_type)t, ent, &data, &len, NULL, 0))
		json_object_set_new(o, "data", json_stringn(data, len));
	else
		json_object_set_new(o, "data", json_null());
	free(data);
	json_decref(ent);
	if (e->has_leaf_hash) {
		char hex[65];
		hex_encode(e->leaf_hash, sizeof e->leaf_hash, hex);
		hex[64] = '\0';
		json_object_set_new(o, "leaf_hash", json_string(hex));
	}
	return o;
}

struct entries_each {
	json_t *arr;
	bool with_entry;
};

static void entries_row(void *ctx, const struct tlog_entry_row *e)
{
	struct entries_each *ee = ctx;
	json_array_append_new(ee->arr, ledgerlog_leaf_json(e, ee->with_entry));
}

allot_err ledgerlog_entries(struct store *st, uint64_t start, uint64_t end, bool with_entry,
			    json_t **out)
{
	struct entries_each ee = {json_array(), with_entry};
	if (!ee.arr)
		return ALLOT_E_NOMEM;
	allot_err e = store_tlog_entries(st, start, end, entries_row, &ee);
	if (e) {
		json_decref(ee.arr);
		return e;
	}
	*out = ee.arr;
	return ALLOT_OK;
}
