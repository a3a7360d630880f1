/* usage_wire.c — the POST /v1/usage body into ledger items and the answer
 * out of them (api/usage_wire.h). */
#include "api/usage_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/money.h"
#include "ledger/record.h"

void usage_batch_release(struct usage_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		record_release(&b->items[i].r);
	free(b->items);
	b->items = NULL;
	b->n = 0;
}

static void batch_size_error(char *msg, size_t msgsz)
{
	snprintf(msg, msgsz, "\"records\" must be an array of 1..%d records", LEDGER_BATCH_MAX);
}

allot_err usage_wire_parse_records(const json_t *records, struct usage_batch *b, char *msg,
				   size_t msgsz)
{
	size_t n = json_array_size(records);
	memset(b, 0, sizeof *b);
	if (!json_is_array(records) || n == 0 || n > LEDGER_BATCH_MAX) {
		batch_size_error(msg, msgsz);
		return ALLOT_E_INVALID;
	}
	if (!(b->items = calloc(n, sizeof *b->items))) {
		snprintf(msg, msgsz, "out of memory");
		return ALLOT_E_NOMEM;
	}
	b->n = n;
	for (size_t i = 0; i < n; i++) {
		struct ledger_item *it = &b->items[i];
		it->o = record_parse(json_array_get(records, i), true, &it->r, it->reason,
				     sizeof it->reason) ? LEDGER_OUT_REJECTED : LEDGER_OUT_ACCEPTED;
	}
	return ALLOT_OK;
}

/* ---- bodies as text -----------------------------------------------------------------
 * {"records":[...]} read without building a jansson tree: each record goes
 * through record_parse_text.  Anything else is left to jansson (below). */

static const char *body_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p past each of the characters of s in turn (white space between); NULL:
 * something else there. */
static const char *body_expect(const char *p, const char *end, const char *s)
{
	for (; *s; s++) {
		p = body_ws(p, end);
		if (p >= end || *p != *s)
			return NULL;
		p++;
	}
	return body_ws(p, end);
}

/* Room for one more item in b (cap: its current room). */
static bool batch_grow(struct usage_batch *b, size_t *cap)
{
	if (b->n < *cap)
		return true;
	size_t nc = *cap * 2 > LEDGER_BATCH_MAX ? LEDGER_BATCH_MAX : *cap * 2;
	struct ledger_item *ni = realloc(b->items, nc * sizeof *ni);
	if (!ni)
		return false;
	b->items = ni;
	*cap = nc;
	return true;
}

/* Parses a plain body into b; false: not plain (b released). */
static bool parse_text(const char *body, size_t len, struct usage_batch *b)
{
	const char *end = body + len, *p = body_expect(body, end, "{");
	memset(b, 0, sizeof *b);
	if (!p || (size_t)(end - p) < sizeof "\"records\"" ||
	    memcmp(p, "\"records\"", sizeof "\"records\"" - 1) ||
	    !(p = body_expect(p + sizeof "\"records\"" - 1, end, ":[")))
		return false;
	/* A record is at least 150 bytes: a first guess of the count. */
	size_t cap = len / 128 + 1 > LEDGER_BATCH_MAX ? LEDGER_BATCH_MAX : len / 128 + 1;
	if (!(b->items = malloc(cap * sizeof *b->items)))
		return false;
	while (p < end && *p != ']') {
		/* Too many: the jansson path says how many are allowed. */
		if (b->n == LEDGER_BATCH_MAX || !batch_grow(b, &cap))
			goto fail;
		struct ledger_item *it = &b->items[b->n];
		bool plain;
		it->reason[0] = '\0';
		allot_err e = record_parse_text(&p, end, true, &it->r, &plain, it->reason,
						sizeof it->reason);
		if (!plain) {
			record_release(&it->r);
			goto fail;
		}
		b->n++;
		it->o = e ? LEDGER_OUT_REJECTED : LEDGER_OUT_ACCEPTED;
		p = body_ws(p, end);
		if (p < end && *p == ',') {
			p = body_ws(p + 1, end);
			if (p < end && *p == ']')
				goto fail; /* a trailing comma: malformed */
		} else if (p >= end || *p != ']') {
			goto fail;
		}
	}
	if (p >= end || b->n == 0 || !(p = body_expect(p + 1, end, "}")) || p != end)
		goto fail;
	return true;
fail:
	usage_batch_release(b);
	return false;
}

allot_err usage_wire_parse(const char *body, size_t len, bool text, struct usage_batch *b,
			   char *msg, size_t msgsz)
{
	static const char *const fields[] = {"records", NULL};
	if (!body)
		body = "";
	if (text && parse_text(body, len, b))
		return ALLOT_OK;
	memset(b, 0, sizeof *b);
	json_t *j = NULL;
	allot_err e = json_parse(body, len, false, &j, msg, msgsz);
	if (e)
		return e;
	if (!(e = json_only_fields(j, fields, msg, msgsz)))
		e = usage_wire_parse_records(json_object_get(j, "records"), b, msg, msgsz);
	json_decref(j);
	return e;
}

/* ---- the answer ----------------------------------------------------------------------- */

/* One item's object: record_id and status; charge, charter_version,
 * overage and late when booked (accepted, duplicate); else the reason. */
static void outcome_write(struct buf *out, const struct ledger_item *it)
{
	buf_puts(out, "{\"record_id\":");
	json_write_str(out, it->r.record_id, strlen(it->r.record_id));
	buf_puts(out, ",\"status\":\"");
	buf_puts(out, ledger_outcome_name(it->o));
	if (it->o == LEDGER_OUT_ACCEPTED || it->o == LEDGER_OUT_DUPLICATE) {
		char m[MONEY_FMT_MAX];
		buf_puts(out, "\",\"charge\":\"");
		buf_puts(out, money_format(it->row.charge_micro, m));
		buf_puts(out, "\",\"charter_version\":");
		buf_put_int(out, it->row.charter_version);
		buf_puts(out, it->row.overage ? ",\"overage\":true" : ",\"overage\":false");
		buf_puts(out, it->row.late ? ",\"late\":true}" : ",\"late\":false}");
		return;
	}
	buf_putc(out, '"');
	size_t n = strlen(it->reason);
	/* A reason that is not UTF-8 (a quoted field of a refused record) is
	 * left out, as jansson leaves out a string it cannot hold. */
	if (json_utf8_ok(it->reason, n)) {
		buf_puts(out, ",\"reason\":");
		json_write_str(out, it->reason, n);
	}
	buf_putc(out, '}');
}

allot_err usage_wire_answer(struct buf *out, const struct usage_batch *b)
{
	struct ledger_counts n;
	ledger_count(b->items, b->n, &n);
	buf_printf(out, "{\"summary\":{\"accepted\":%zu,\"duplicate\":%zu,\"conflict\":%zu,"
			"\"rejected\":%zu},\"results\":[",
		   n.accepted, n.duplicate, n.conflict, n.rejected);
	for (size_t i = 0; i < b->n; i++) {
		if (i)
			buf_putc(out, ',');
		outcome_write(out, &b->items[i]);
	}
	buf_puts(out, "]}\n");
	return out->oom ? ALLOT_E_NOMEM : ALLOT_OK;
}

allot_err usage_wire_ingest(struct ledger *led, const char *provider, const char *body,
			    size_t len, bool text, struct buf *out, char *msg, size_t msgsz)
{
	struct usage_batch b;
	buf_reset(out);
	allot_err e = usage_wire_parse(body, len, text, &b, msg, msgsz);
	if (!e)
		e = ledger_ingest(led, provider, b.items, b.n, msg, msgsz);
	if (!e && (e = usage_wire_answer(out, &b)))
		snprintf(msg, msgsz, "out of memory");
	usage_batch_release(&b);
	return e;
}
