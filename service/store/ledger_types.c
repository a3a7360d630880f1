/* ledger_types.c — names of record kinds and adjustments, a row's log entry
 * and leaf, releasing a sequence status (store/ledger_types.h). */
#include "store/ledger_types.h"

#include <stdio.h>
#include <stdlib.h>

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
