/* ledgerlog_entry.c — the log's entries in export form (ledger/ledgerlog.h):
 * the JSON that GET /v1/usage, /v1/log/entries and /v1/log/export hand out,
 * built from the store's typed rows (store/tlog_types.h). */
#include "ledger/ledgerlog.h"

#include <stdlib.h>

#include "common/b64.h"
#include "tlog/leaf.h"

json_t *ledgerlog_usage_json(const struct ledger_row *row, bool listed, int64_t leaf_index)
{
	char hex[65];
	hex_encode(row->rec.sha256, sizeof row->rec.sha256, hex);
	hex[64] = '\0';
	struct tlog_usage u;
	store_row_leaf_entry(row, &u);
	struct tlog_usage_listing ls = {.listed = listed, .id = row->row_id,
					.leaf_index = leaf_index, .sha256 = hex};
	return tlog_usage_row_json(&u, &ls);
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
