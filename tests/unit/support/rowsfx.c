/* rowsfx.c — typed store rows as JSON for tests (rowsfx.h). */
#include "rowsfx.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "common/b64.h"
#include "ledger/ledgerlog.h"

json_t *rowsfx_column_form(const struct ledger_row *row, int64_t leaf_index)
{
	const struct usage_record *r = &row->rec;
	const char *adj = record_adjustment_name(r->adjustment);
	char hex[65];
	hex_encode(r->sha256, 32, hex);
	hex[64] = '\0';
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(row->row_id));
	json_object_set_new(o, "provider", json_string(r->provider));
	json_object_set_new(o, "record_id", json_string(r->record_id));
	json_object_set_new(o, "seq", r->has_seq ? json_integer(r->seq) : json_null());
	json_object_set_new(o, "kind", json_string(record_kind_name(r->kind)));
	json_object_set_new(o, "adjustment", adj ? json_string(adj) : json_null());
	json_object_set_new(o, "supersedes",
			    r->supersedes[0] ? json_string(r->supersedes) : json_null());
	json_object_set_new(o, "institution", json_string(r->institution));
	json_object_set_new(o, "project", json_string(r->project));
	json_object_set_new(o, "member", json_string(r->member));
	json_object_set_new(o, "resource", json_string(r->resource));
	json_object_set_new(o, "class", json_string(r->cls));
	json_object_set_new(o, "model", json_string(r->model));
	json_object_set_new(o, "quantity", json_integer(r->quantity));
	json_object_set_new(o, "start_us", json_integer(r->start_us));
	json_object_set_new(o, "end_us", json_integer(r->end_us));
	json_object_set_new(o, "received_us", json_integer(row->received_us));
	json_object_set_new(o, "book_us", json_integer(row->book_us));
	json_object_set_new(o, "late", json_integer(row->late));
	json_object_set_new(o, "charter_version", json_integer(row->charter_version));
	json_object_set_new(o, "rate_micro", json_integer(row->rate_micro));
	json_object_set_new(o, "charge_micro", json_integer(row->charge_micro));
	json_object_set_new(o, "overage", json_integer(row->overage));
	json_object_set_new(o, "source", json_string(row->from_gate ? "gate" : "provider"));
	json_object_set_new(o, "sha256", json_string(hex));
	json_object_set_new(o, "canonical", json_stringn(r->canonical, r->canonical_len));
	json_object_set_new(o, "leaf_index", leaf_index >= 0 ? json_integer(leaf_index)
							     : json_null());
	return o;
}

static void list_col(void *ctx, const struct ledger_row *row, int64_t leaf_index)
{
	json_array_append_new(ctx, rowsfx_column_form(row, leaf_index));
}

json_t *rowsfx_list(struct store *st, const struct ledger_filter *f)
{
	json_t *a = json_array();
	assert_int_equal(store_ledger_list_q(st, f, list_col, a), ALLOT_OK);
	return a;
}

static void list_export(void *ctx, const struct ledger_row *row, int64_t leaf_index)
{
	json_t *o = ledgerlog_usage_json(row, true, leaf_index);
	assert_non_null(o);
	json_array_append_new(ctx, o);
}

json_t *rowsfx_export(struct store *st, const struct ledger_filter *f)
{
	json_t *a = json_array();
	assert_int_equal(store_ledger_list_q(st, f, list_export, a), ALLOT_OK);
	return a;
}

json_t *rowsfx_report(struct store *st, const struct ledger_filter *f,
		      const char *const *group_by, size_t ngroup, bool by_bucket)
{
	json_t *a = NULL;
	assert_int_equal(api_report_rows_json(st, f, group_by, ngroup, by_bucket, &a), ALLOT_OK);
	return a;
}
