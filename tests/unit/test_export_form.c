/* test_export_form.c — the JSON built above the store from its typed rows
 * (ledger/ledgerlog_entry.c, api/usage.c): a listed usage row, a log leaf
 * with and without its entry, a sequence status.  Each is checked against
 * the exact bytes the API has always answered, and a usage row against the
 * old way of building it (the store's column form turned into export form
 * in place, tlog_usage_export_form), for every kind of row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/api.h"
#include "ledger/ledgerlog.h"
#include "store/store.h"
#include "support/rowsfx.h"
#include "tlog/leaf.h"

#define T0 1767225600000000LL /* 2026-01-01T00:00:00Z */

static const char canonical[] = "{\"record_id\":\"r-1\"}";

static struct ledger_row sample(void)
{
	struct ledger_row row;
	memset(&row, 0, sizeof row);
	struct usage_record *r = &row.rec;
	row.row_id = 42;
	strcpy(r->provider, "cscs");
	strcpy(r->record_id, "r-1");
	r->has_seq = true;
	r->seq = 7;
	r->kind = RECORD_USAGE;
	strcpy(r->institution, "epfl");
	strcpy(r->project, "climate");
	strcpy(r->resource, "gpu");
	strcpy(r->cls, "h100");
	r->quantity = 3600;
	r->start_us = T0;
	r->end_us = T0 + 3600000000LL;
	row.received_us = r->end_us + 1500000;
	row.book_us = r->end_us;
	row.charter_version = 2;
	row.rate_micro = 17000;
	row.charge_micro = 61200000;
	r->canonical = (char *)canonical;
	r->canonical_len = strlen(canonical);
	for (int i = 0; i < 32; i++)
		r->sha256[i] = (uint8_t)i;
	return row;
}

static char *dump(json_t *j)
{
	assert_non_null(j);
	char *s = json_dumps(j, JSON_COMPACT); /* as http_json: insertion order */
	assert_non_null(s);
	json_decref(j);
	return s;
}

static void expect(json_t *j, const char *want)
{
	char *s = dump(j);
	if (strcmp(s, want) != 0)
		fail_msg("got  %s\nwant %s", s, want);
	free(s);
}

static void test_usage_listed(void **state)
{
	(void)state;
	struct ledger_row row = sample();
	expect(ledgerlog_usage_json(&row, true, 5),
	       "{\"id\":42,\"provider\":\"cscs\",\"record_id\":\"r-1\",\"seq\":7,\"kind\":\"usage\","
	       "\"adjustment\":null,\"supersedes\":null,\"institution\":\"epfl\","
	       "\"project\":\"climate\",\"member\":\"\",\"resource\":\"gpu\",\"class\":\"h100\","
	       "\"model\":\"\",\"quantity\":3600,\"late\":false,\"charter_version\":2,"
	       "\"overage\":false,\"source\":\"provider\",\"sha256\":"
	       "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\","
	       "\"canonical\":\"{\\\"record_id\\\":\\\"r-1\\\"}\",\"leaf_index\":5,"
	       "\"charge\":\"61.2\",\"rate\":\"0.017\",\"start\":\"2026-01-01T00:00:00Z\","
	       "\"end\":\"2026-01-01T01:00:00Z\",\"received\":\"2026-01-01T01:00:01.500000Z\","
	       "\"booked\":\"2026-01-01T01:00:00Z\"}");
	/* an entry of the log: no id, no leaf index */
	char *s = dump(ledgerlog_usage_json(&row, false, 5));
	assert_non_null(strstr(s, "{\"provider\":\"cscs\","));
	assert_null(strstr(s, "\"id\""));
	assert_null(strstr(s, "leaf_index"));
	free(s);
}

/* The old path: the column form, converted in place. */
static json_t *old_form(const struct ledger_row *row, bool listed, int64_t leaf)
{
	json_t *o = rowsfx_column_form(row, leaf);
	if (!listed) {
		json_object_del(o, "id");
		json_object_del(o, "leaf_index");
	}
	tlog_usage_export_form(o);
	return o;
}

static void test_usage_every_kind(void **state)
{
	(void)state;
	for (int v = 0; v < 6; v++) {
		struct ledger_row row = sample();
		struct usage_record *r = &row.rec;
		int64_t leaf = v % 2 ? -1 : 1000 + v;
		switch (v) {
		case 1: /* a credit of another record, late, over quota */
			r->kind = RECORD_ADJUSTMENT;
			r->adjustment = ADJ_CREDIT;
			strcpy(r->supersedes, "r-0");
			row.charge_micro = -1500001;
			row.late = row.overage = true;
			break;
		case 2: /* a void, no seq */
			r->kind = RECORD_VOID;
			strcpy(r->supersedes, "r-0");
			r->has_seq = false;
			row.charge_micro = -61200000;
			break;
		case 3: /* the gate's, with a member and a model */
			row.from_gate = true;
			strcpy(r->member, "alice@epfl.ch");
			strcpy(r->model, "llama-3");
			strcpy(r->cls, "");
			break;
		case 4: /* a debit; non-ASCII text */
			r->kind = RECORD_ADJUSTMENT;
			r->adjustment = ADJ_DEBIT;
			strcpy(r->supersedes, "r-0");
			strcpy(r->member, "z\xc3\xbcrich");
			break;
		case 5: /* a refund before 1970, a fraction of a micro-credit rate */
			r->kind = RECORD_ADJUSTMENT;
			r->adjustment = ADJ_REFUND;
			strcpy(r->supersedes, "r-0");
			r->start_us = -1;
			row.rate_micro = 1;
			break;
		default:
			break;
		}
		for (int listed = 0; listed < 2; listed++) {
			char *want = dump(old_form(&row, listed, leaf));
			char *got = dump(ledgerlog_usage_json(&row, listed, leaf));
			if (strcmp(got, want) != 0)
				fail_msg("variant %d listed %d:\ngot  %s\nwant %s", v, listed, got, want);
			free(want);
			free(got);
		}
	}
}

static void test_leaf(void **state)
{
	(void)state;
	struct ledger_row row = sample();
	struct tlog_entry_row e = {.leaf_index = 3, .type = "usage", .ref = 42,
				   .name = "cscs/r-1", .has_leaf_hash = true, .usage = &row};
	for (int i = 0; i < 32; i++)
		e.leaf_hash[i] = (uint8_t)(255 - i);
	/* without the entry: its leaf bytes, as the store builds them */
	json_t *o = ledgerlog_leaf_json(&e, false);
	struct tlog_usage u;
	store_row_leaf_entry(&row, &u);
	char *data = NULL;
	size_t len = 0;
	assert_int_equal(tlog_leaf_usage(&u, &data, &len), ALLOT_OK);
	json_t *d = json_object_get(o, "data");
	assert_true(json_is_string(d));
	assert_int_equal(json_string_length(d), len);
	assert_memory_equal(json_string_value(d), data, len);
	free(data);
	json_object_del(o, "data");
	expect(o, "{\"leaf_index\":3,\"type\":\"usage\",\"ref\":42,\"leaf_hash\":"
		  "\"fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0\"}");
	/* with it: the entry in export form */
	o = ledgerlog_leaf_json(&e, true);
	char *want = dump(ledgerlog_usage_json(&row, false, 0));
	expect(json_incref(json_object_get(o, "entry")), want);
	free(want);
	json_decref(o);

	/* the entry is gone: the leaf row names it */
	struct tlog_entry_row gone = {.leaf_index = 9, .type = "usage", .ref = 77,
				      .name = "cscs/r-9"};
	expect(ledgerlog_leaf_json(&gone, true),
	       "{\"leaf_index\":9,\"type\":\"usage\",\"entry\":null,\"ref\":77,\"name\":\"cscs/r-9\"}");
	expect(ledgerlog_leaf_json(&gone, false),
	       "{\"leaf_index\":9,\"type\":\"usage\",\"ref\":77,\"data\":null}");

	/* a charter, with its text; an audit entry, empty fields null */
	struct charter_row c = {.version = 2, .charter_id = "commons", .text = "a: 1\n",
				.text_len = 5, .sha256 = "ab", .author = "k1",
				.applied_at = T0, .effective = T0 + 1};
	struct tlog_entry_row ce = {.leaf_index = 0, .type = "charter", .ref = 2, .charter = &c};
	expect(ledgerlog_leaf_json(&ce, true),
	       "{\"leaf_index\":0,\"type\":\"charter\",\"entry\":{\"version\":2,"
	       "\"charter_id\":\"commons\",\"sha256\":\"ab\",\"author\":\"k1\","
	       "\"applied\":\"2026-01-01T00:00:00Z\",\"effective\":\"2026-01-01T00:00:00.000001Z\","
	       "\"text\":\"a: 1\\n\"}}");
	struct audit_entry a = {.at = T0, .actor = "k1", .action = "key.create", .target = "k2"};
	struct tlog_entry_row ae = {.leaf_index = 1, .type = "audit", .ref = 5, .audit = &a,
				    .audit_id = 5};
	expect(ledgerlog_leaf_json(&ae, true),
	       "{\"leaf_index\":1,\"type\":\"audit\",\"entry\":{\"id\":5,"
	       "\"at\":\"2026-01-01T00:00:00Z\",\"actor\":\"k1\",\"action\":\"key.create\","
	       "\"target\":\"k2\",\"before_sha256\":null,\"after_sha256\":null,\"detail\":null}}");
	o = ledgerlog_leaf_json(&ae, false);
	assert_string_equal(json_string_value(json_object_get(o, "data")),
			    "{\"action\":\"key.create\",\"actor\":\"k1\","
			    "\"at\":\"2026-01-01T00:00:00Z\",\"id\":5,\"target\":\"k2\","
			    "\"type\":\"audit\"}");
	json_decref(o);
}

static void test_seq_status(void **state)
{
	(void)state;
	struct ledger_seq_gap gaps[] = {{4, 4}, {6, 8}};
	int64_t reps[] = {5};
	struct ledger_seq_status ss = {.records = 10, .with_seq = 9, .min_seq = 1, .max_seq = 12,
				       .gap_count = 3, .missing = 5, .repeat_count = 2,
				       .gaps = gaps, .ngaps = 2, .repeats = reps, .nrepeats = 1,
				       .has_next = true, .next = 9};
	expect(api_seq_status_json("cscs", &ss),
	       "{\"provider\":\"cscs\",\"records\":10,\"with_seq\":9,\"min_seq\":1,\"max_seq\":12,"
	       "\"gaps\":[{\"from\":4,\"to\":4},{\"from\":6,\"to\":8}],\"repeats\":[5],"
	       "\"gap_count\":3,\"missing\":5,\"repeat_count\":2,\"next\":9}");
	struct ledger_seq_status none = {.records = 3};
	expect(api_seq_status_json("hpc", &none),
	       "{\"provider\":\"hpc\",\"records\":3,\"with_seq\":0,\"min_seq\":null,"
	       "\"max_seq\":null,\"gaps\":[],\"repeats\":[],\"gap_count\":0,\"missing\":0,"
	       "\"repeat_count\":0,\"next\":null}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_listed),
		cmocka_unit_test(test_usage_every_kind),
		cmocka_unit_test(test_leaf),
		cmocka_unit_test(test_seq_status),
	};
	return cmocka_run_group_tests_name("export_form", tests, NULL, NULL);
}
