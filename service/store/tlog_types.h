/* tlog_types.h — what the store's tlog_entries gives (store/store.h): one
 * leaf of the transparency log, and the entry it logs as the store's typed
 * row.  The log's export form of it is built above the store
 * (ledger/ledgerlog.h). */
#ifndef ALLOT_STORE_TLOG_TYPES_H
#define ALLOT_STORE_TLOG_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include "store/ledger_types.h"

struct charter_row;
struct audit_entry;

/* Pointers valid during the call that hands it out only. */
struct tlog_entry_row {
	uint64_t leaf_index;
	const char *type;                  /* as stored: "usage", "charter", "audit" */
	int64_t ref;                       /* the usage row id, charter version, audit id */
	const char *name;                  /* "provider/record_id" of a usage leaf; may be NULL */
	bool has_leaf_hash;
	uint8_t leaf_hash[32];
	/* The entry, when it is still there (at most one is set; none when it
	 * is gone or the type is unknown).  usage: rec.canonical set; charter:
	 * with its text. */
	const struct ledger_row *usage;
	const struct charter_row *charter;
	const struct audit_entry *audit;
	int64_t audit_id;
};

#endif
