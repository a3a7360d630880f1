/* store_entry.h — the entry a log leaf logs, as a backend reads it back
 * from its table (tlog_entries, the start-up backfill), and the listing's
 * row pointed at it: one mapping for both backends. */
#ifndef ALLOT_STORE_STORE_ENTRY_H
#define ALLOT_STORE_STORE_ENTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* Of usage, charter and audit (with audit_id), the one of the leaf's type
 * is filled when found; its strings belong to the backend's statement or
 * result (usage.rec.canonical and charter.text as the backend says). */
struct store_entry {
	bool found;
	struct ledger_row usage;
	struct charter_row charter;
	struct audit_entry audit;
	int64_t audit_id;
};

/* Points row->usage, ->charter or ->audit (and audit_id) at e's entry for
 * a leaf of type t (a tlog_leaf_type; negative: unknown), or at nothing
 * when e was not found. */
void store_entry_row(struct tlog_entry_row *row, int t, const struct store_entry *e);

/* A usage leaf stored without a name (a gate record's on SQLite, one
 * copied from there to PostgreSQL): its record's "provider/record_id",
 * written into name, when the row is there; row->name as it was else. */
void store_entry_name(struct tlog_entry_row *row, char name[STORE_LEAF_NAME_MAX]);

#endif
