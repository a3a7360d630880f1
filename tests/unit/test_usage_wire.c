/* test_usage_wire.c — the POST /v1/usage wire format without a store
 * (api/usage_wire.c): the body's envelope (bad JSON, wrong types, other
 * fields, empty and oversized batches) the same through the text path and
 * the jansson path, records parsed into items, and the answer written from
 * items byte for byte as jansson writes the same answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "api/usage_wire.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/money.h"

/* A record in plain JSON (the text path reads it), with a signature of the
 * right form (64 bytes; nothing here verifies it). */
static char *plain_record(const char *id)
{
	uint8_t sig[64];
	char s64[100];
	memset(sig, 7, sizeof sig);
	s64[b64_encode(sig, sizeof sig, s64)] = '\0';
	char *r = malloc(1024);
	assert_non_null(r);
	snprintf(r, 1024,
		 "{\"record_id\":\"%s\",\"provider\":\"cscs\",\"institution\":\"epfl\","
		 "\"project\":\"climate\",\"member\":\"alice@epfl.ch\",\"resource\":\"gpu_seconds\","
		 "\"class\":\"h100\",\"quantity\":7200,\"start\":\"2026-12-03T10:00:00Z\","
		 "\"end\":\"2026-12-03T12:00:00Z\",\"kind\":\"usage\",\"sig\":\"%s\"}",
		 id, s64);
	return r;
}

/* body through both paths: the same error and message, or the same items
 * (outcome, reason, record_id, canonical bytes).  Returns the error; *out
 * the text path's batch (released by the caller) when not NULL. */
static allot_err parse_both(const char *body, size_t len, struct usage_batch *out, char *msg,
			    size_t msgsz)
{
	struct usage_batch t, j;
	char mj[256] = "";
	msg[0] = '\0';
	allot_err et = usage_wire_parse(body, len, true, &t, msg, msgsz);
	allot_err ej = usage_wire_parse(body, len, false, &j, mj, sizeof mj);
	if (et != ej || (et && strcmp(msg, mj)))
		fail_msg("paths differ on %.200s: %d \"%s\" / %d \"%s\"", body, et, msg, ej, mj);
	if (et) {
		assert_int_equal(t.n, 0);
		assert_int_equal(j.n, 0);
		assert_null(t.items);
		assert_null(j.items);
	}
	assert_int_equal(t.n, j.n);
	for (size_t i = 0; i < t.n; i++) {
		const struct ledger_item *a = &t.items[i], *b = &j.items[i];
		assert_int_equal(a->o, b->o);
		assert_string_equal(a->reason, b->reason);
		assert_string_equal(a->r.record_id, b->r.record_id);
		if (a->o == LEDGER_OUT_ACCEPTED) {
			assert_int_equal(a->r.canonical_len, b->r.canonical_len);
			assert_memory_equal(a->r.canonical, b->r.canonical, a->r.canonical_len);
		}
	}
	usage_batch_release(&j);
	if (out)
		*out = t;
	else
		usage_batch_release(&t);
	return et;
}

static void test_envelope_errors(void **state)
{
	(void)state;
	char *rec = plain_record("r1");
	/* bad JSON, wrong types, other fields, empty batches */
	static const char *const bad[] = {
		"", " ", "{", "}", "[]", "null", "7", "\"records\"", "not json", "{}",
		"{\"records\":[]}", "{\"records\":{}}", "{\"records\":7}", "{\"records\":\"x\"}",
		"{\"records\":null}", "{\"records\":true}", "{\"record\":[%s]}",
		"{\"records\":[%s]", "{\"records\":[%s,]}", "{\"records\":[%s]} x",
		"{\"records\":[%s],\"extra\":1}", "{\"extra\":1,\"records\":[%s]}",
		"{\"records\":[%s],\"records\":[%s]}", "{\"records\":[%s %s]}", "{\"records\":[%s}",
		"{\"records\":[{\"a\":1,\"a\":2}]}", "{\"records\":[{\"seq\":-}]}",
		"{\"records\":[{\"seq\":tru}]}", "{\"records\":[{\"seq\" 1}]}", "{\"records\":[{,}]}",
		"{\"records\":[\"\xff\"]}", "[{\"records\":[%s]}]",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char body[2048], msg[256];
		int n = snprintf(body, sizeof body, bad[i], rec, rec);
		assert_true(n >= 0 && (size_t)n < sizeof body);
		if (parse_both(body, (size_t)n, NULL, msg, sizeof msg) != ALLOT_E_INVALID)
			fail_msg("accepted: %s", body);
		assert_true(msg[0] != '\0');
	}
	char msg[256];
	/* no body at all, and a NUL byte inside */
	struct usage_batch b;
	assert_int_equal(usage_wire_parse(NULL, 0, true, &b, msg, sizeof msg), ALLOT_E_INVALID);
	assert_int_equal(b.n, 0);
	static const char nul[] = "{\"records\":[{\"record_id\":\"a\0b\"}]}";
	assert_int_equal(parse_both(nul, sizeof nul - 1, NULL, msg, sizeof msg), ALLOT_E_INVALID);
	/* the batch-size message names the bound */
	static const char notarr[] = "{\"records\":{}}", other[] = "{\"records\":[1],\"x\":2}";
	assert_int_equal(parse_both(notarr, strlen(notarr), NULL, msg, sizeof msg), ALLOT_E_INVALID);
	assert_non_null(strstr(msg, "1..10000"));
	assert_int_equal(parse_both(other, strlen(other), NULL, msg, sizeof msg), ALLOT_E_INVALID);
	assert_non_null(strstr(msg, "unknown field \"x\""));
	free(rec);
}

/* LEDGER_BATCH_MAX records parse; one more is refused, whichever path. */
static void test_batch_size(void **state)
{
	(void)state;
	char *rec = plain_record("r");
	size_t rl = strlen(rec), cap = (rl + 1) * (LEDGER_BATCH_MAX + 1) + 64;
	char *body = malloc(cap);
	assert_non_null(body);
	size_t n = (size_t)sprintf(body, "{\"records\":[");
	for (int i = 0; i < LEDGER_BATCH_MAX; i++) {
		if (i)
			body[n++] = ',';
		memcpy(body + n, rec, rl);
		n += rl;
	}
	memcpy(body + n, "]}", 3);
	struct usage_batch b;
	char msg[256];
	assert_int_equal(parse_both(body, n + 2, &b, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(b.n, LEDGER_BATCH_MAX);
	for (size_t i = 0; i < b.n; i++)
		assert_int_equal(b.items[i].o, LEDGER_OUT_ACCEPTED);
	usage_batch_release(&b);
	assert_int_equal(b.n, 0);
	assert_null(b.items);
	/* one more */
	body[n] = ',';
	memcpy(body + n + 1, rec, rl);
	memcpy(body + n + 1 + rl, "]}", 3);
	assert_int_equal(parse_both(body, n + 1 + rl + 2, NULL, msg, sizeof msg), ALLOT_E_INVALID);
	assert_non_null(strstr(msg, "1..10000"));
	/* and as a JSON array */
	json_t *arr = json_array();
	for (int i = 0; i <= LEDGER_BATCH_MAX; i++)
		json_array_append_new(arr, json_object());
	assert_int_equal(usage_wire_parse_records(arr, &b, msg, sizeof msg), ALLOT_E_INVALID);
	assert_int_equal(b.n, 0);
	json_array_remove(arr, 0);
	assert_int_equal(usage_wire_parse_records(arr, &b, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(b.n, LEDGER_BATCH_MAX);
	assert_int_equal(b.items[0].o, LEDGER_OUT_REJECTED); /* {} is no record */
	usage_batch_release(&b);
	json_decref(arr);
	free(body);
	free(rec);
}

/* Records of wrong types or schema are items refused on their own, the
 * good ones beside them accepted, in order; white space and a byte-order
 * mark around the envelope change nothing. */
static void test_records_parsed(void **state)
{
	(void)state;
	char *rec = plain_record("good-1");
	static const char *const ok[] = {
		"{\"records\":[1,\"x\",null,[],true,%s,{}]}",
		" \t\r\n{ \"records\" : [ 1 , \"x\" , null , [ ] , true , %s , { } ] } \n",
		"\xef\xbb\xbf{\"records\":[1,\"x\",null,[],true,%s,{}]}",
		"{\"records\":[1,\"x\",null,[],true,%s,{\"record_id\":\"caf\xc3\xa9\"}]}",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char body[2048], msg[256];
		int n = snprintf(body, sizeof body, ok[i], rec);
		struct usage_batch b;
		allot_err e = parse_both(body, (size_t)n, &b, msg, sizeof msg);
		if (i == 2) { /* jansson refuses a BOM: so must the text path */
			assert_int_equal(e, ALLOT_E_INVALID);
			continue;
		}
		assert_int_equal(e, ALLOT_OK);
		assert_int_equal(b.n, 7);
		for (size_t k = 0; k < b.n; k++) {
			bool good = k == 5;
			assert_int_equal(b.items[k].o, good ? LEDGER_OUT_ACCEPTED : LEDGER_OUT_REJECTED);
			assert_true(good ? b.items[k].reason[0] == '\0' : b.items[k].reason[0] != '\0');
		}
		assert_string_equal(b.items[5].r.record_id, "good-1");
		usage_batch_release(&b);
	}
	free(rec);
}

/* The reference: the answer built with jansson, as the old jansson path did. */
static char *answer_ref(const struct usage_batch *b)
{
	json_t *res = json_array();
	struct ledger_counts n;
	ledger_count(b->items, b->n, &n);
	for (size_t i = 0; i < b->n; i++) {
		const struct ledger_item *it = &b->items[i];
		json_t *o = json_pack("{s:s,s:s}", "record_id", it->r.record_id, "status",
				      ledger_outcome_name(it->o));
		assert_non_null(o);
		if (it->o == LEDGER_OUT_ACCEPTED || it->o == LEDGER_OUT_DUPLICATE) {
			char m[MONEY_FMT_MAX];
			json_object_set_new(o, "charge", json_string(money_format(it->row.charge_micro, m)));
			json_object_set_new(o, "charter_version", json_integer(it->row.charter_version));
			json_object_set_new(o, "overage", json_boolean(it->row.overage));
			json_object_set_new(o, "late", json_boolean(it->row.late));
		} else {
			json_object_set_new(o, "reason", json_string(it->reason));
		}
		json_array_append_new(res, o);
	}
	json_t *j = json_pack("{s:{s:I,s:I,s:I,s:I},s:o}", "summary", "accepted",
			      (json_int_t)n.accepted, "duplicate", (json_int_t)n.duplicate,
			      "conflict", (json_int_t)n.conflict, "rejected", (json_int_t)n.rejected,
			      "results", res);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	assert_non_null(s);
	return s;
}

static void test_answer(void **state)
{
	(void)state;
	static const struct {
		enum ledger_outcome o;
		const char *id, *reason;
		int64_t charge, version;
		bool overage, late;
	} cases[] = {
		{LEDGER_OUT_ACCEPTED, "a-1", "", 1500000, 3, false, false},
		{LEDGER_OUT_ACCEPTED, "a-2", "", 1, 1, true, true},
		{LEDGER_OUT_ACCEPTED, "a-3", "", 0, 1, false, true},
		{LEDGER_OUT_DUPLICATE, "d-1", "", 123456789012, 2, true, false},
		{LEDGER_OUT_DUPLICATE, "d-2", "", -2500000, 2, false, false},
		{LEDGER_OUT_CONFLICT, "c-1", "same record_id, other content", 0, 0, false, false},
		{LEDGER_OUT_REJECTED, "", "field \"quantity\" must be an integer", 0, 0, false, false},
		{LEDGER_OUT_REJECTED, "caf\xc3\xa9", "unknown project \"\xc3\xa9t\xc3\xa9\"\n\t\x01/\\",
		 0, 0, false, false},
		/* a reason that is not UTF-8: jansson leaves the key out */
		{LEDGER_OUT_REJECTED, "r-x", "unknown member \"\xff\"", 0, 0, false, false},
		{LEDGER_OUT_ERROR, "e-1", "the ledger could not be written", 0, 0, false, false},
	};
	size_t nc = sizeof cases / sizeof cases[0];
	struct usage_batch b = {.items = calloc(nc, sizeof *b.items), .n = nc};
	assert_non_null(b.items);
	for (size_t i = 0; i < nc; i++) {
		struct ledger_item *it = &b.items[i];
		it->o = cases[i].o;
		snprintf(it->r.record_id, sizeof it->r.record_id, "%s", cases[i].id);
		snprintf(it->reason, sizeof it->reason, "%s", cases[i].reason);
		it->row.charge_micro = cases[i].charge;
		it->row.charter_version = cases[i].version;
		it->row.overage = cases[i].overage;
		it->row.late = cases[i].late;
	}
	/* every prefix of the list, so each shape stands first, alone and after others */
	for (size_t k = 1; k <= nc; k++) {
		struct usage_batch part = {.items = b.items, .n = k};
		struct buf out = BUF_INIT;
		buf_puts(&out, "kept? no: usage_wire_answer appends");
		size_t before = out.len;
		assert_int_equal(usage_wire_answer(&out, &part), ALLOT_OK);
		char *ref = answer_ref(&part);
		size_t rl = strlen(ref);
		assert_int_equal(out.len - before, rl + 1);
		assert_memory_equal(out.data + before, ref, rl);
		assert_int_equal(out.data[out.len - 1], '\n');
		free(ref);
		buf_release(&out);
	}
	/* the counts: errors count as rejected */
	struct ledger_counts n;
	ledger_count(b.items, nc, &n);
	assert_int_equal(n.accepted, 3);
	assert_int_equal(n.duplicate, 2);
	assert_int_equal(n.conflict, 1);
	assert_int_equal(n.rejected, 4);
	free(b.items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope_errors),
		cmocka_unit_test(test_batch_size),
		cmocka_unit_test(test_records_parsed),
		cmocka_unit_test(test_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
