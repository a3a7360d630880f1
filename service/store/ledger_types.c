/* ledger_types.c — names of record kinds and adjustments, a record's sealed
 * canonical bytes, a row's log entry and leaf, releasing a sequence status
 * (store/ledger_types.h). */
#include "store/ledger_types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/timeutil.h"
#include "tlog/leaf.h"

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

/* ---- canonical bytes -------------------------------------------------------------
 * Byte for byte what jansson's json_dumps(JSON_COMPACT | JSON_SORT_KEYS)
 * writes for the record's fields (tests/unit/test_record.c compares). */

static void canon_key(struct buf *b, char *sep, const char *name)
{
	buf_putc(b, *sep);
	*sep = ',';
	buf_putc(b, '"');
	buf_puts(b, name);
	buf_puts(b, "\":");
}

static void canon_str(struct buf *b, char *sep, const char *name, const char *v)
{
	if (!v || !v[0])
		return;
	canon_key(b, sep, name);
	json_write_str(b, v, strlen(v));
}

char *record_canonical_sealed(const struct usage_record *r, size_t *len)
{
	char start[TIME_FMT_MAX], end[TIME_FMT_MAX];
	struct buf b = BUF_INIT;
	buf_reserve(&b, 400);
	char sep = '{';
	/* the keys in byte order */
	canon_str(&b, &sep, "adjustment", record_adjustment_name(r->adjustment));
	canon_str(&b, &sep, "class", r->cls);
	canon_str(&b, &sep, "end", time_format_rfc3339(r->end_us, end));
	canon_str(&b, &sep, "institution", r->institution);
	canon_str(&b, &sep, "kind", record_kind_name(r->kind));
	canon_str(&b, &sep, "member", r->member);
	canon_str(&b, &sep, "model", r->model);
	canon_str(&b, &sep, "project", r->project);
	canon_str(&b, &sep, "provider", r->provider);
	canon_key(&b, &sep, "quantity");
	buf_put_int(&b, r->quantity);
	canon_str(&b, &sep, "record_id", r->record_id);
	canon_str(&b, &sep, "resource", r->resource);
	if (r->has_seq) {
		canon_key(&b, &sep, "seq");
		buf_put_int(&b, r->seq);
	}
	canon_str(&b, &sep, "start", time_format_rfc3339(r->start_us, start));
	canon_str(&b, &sep, "supersedes", r->supersedes);
	buf_putc(&b, '}');
	if (b.oom) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, len);
}

bool record_canonical_rebuilds(const struct usage_record *r)
{
	size_t n = 0;
	char *s = r->canonical ? record_canonical_sealed(r, &n) : NULL;
	bool same = s && n == r->canonical_len && memcmp(s, r->canonical, n) == 0;
	free(s);
	return same;
}

allot_err record_canonical_load(struct usage_record *r, const void *stored, size_t n)
{
	if (n == 0) {
		r->canonical = record_canonical_sealed(r, &r->canonical_len);
		return r->canonical ? ALLOT_OK : ALLOT_E_NOMEM;
	}
	if (!(r->canonical = malloc(n + 1)))
		return ALLOT_E_NOMEM;
	memcpy(r->canonical, stored, n);
	r->canonical[n] = '\0';
	r->canonical_len = n;
	return ALLOT_OK;
}

void store_row_leaf_entry(const struct ledger_row *row, struct tlog_usage *out)
{
	const struct usage_record *r = &row->rec;
	*out = (struct tlog_usage){
		.provider = r->provider, .record_id = r->record_id, .institution = r->institution,
		.project = r->project, .member = r->member, .resource = r->resource, .cls = r->cls,
		.model = r->model, .supersedes = r->supersedes, .kind = record_kind_name(r->kind),
		.adjustment = record_adjustment_name(r->adjustment), .has_seq = r->has_seq,
		.seq = r->seq, .quantity = r->quantity, .start_us = r->start_us, .end_us = r->end_us,
		.received_us = row->received_us, .book_us = row->book_us, .late = row->late,
		.overage = row->overage, .from_gate = row->from_gate,
		.charter_version = row->charter_version, .rate_micro = row->rate_micro,
		.charge_micro = row->charge_micro, .canonical = r->canonical,
		.canonical_len = r->canonical_len};
}

allot_err store_row_leaf(const struct ledger_row *row, char **data, size_t *len,
			 char name[STORE_LEAF_NAME_MAX])
{
	struct tlog_usage u;
	store_row_leaf_entry(row, &u);
	if (tlog_leaf_usage(&u, data, len))
		return ALLOT_E_NOMEM;
	snprintf(name, STORE_LEAF_NAME_MAX, "%s/%s", row->rec.provider, row->rec.record_id);
	return ALLOT_OK;
}

void ledger_seq_status_release(struct ledger_seq_status *s)
{
	free(s->gaps);
	free(s->repeats);
	s->gaps = NULL;
	s->repeats = NULL;
	s->ngaps = s->nrepeats = 0;
}
