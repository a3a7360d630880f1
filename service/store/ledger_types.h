/* ledger_types.h — rows the store keeps for the ledger (store/store.h). */
#ifndef ALLOT_STORE_LEDGER_TYPES_H
#define ALLOT_STORE_LEDGER_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include "ledger/record.h"

/* Width of a usage bucket: 15 minutes, the gcd of all UTC offsets. */
#define LEDGER_BUCKET_US (15LL * 60 * 1000000)

struct ledger_row {
	struct usage_record rec;  /* canonical bytes owned by rec */
	int64_t received_us;
	int64_t book_us;
	bool late;
	int64_t charter_version;
	int64_t rate_micro;
	int64_t charge_micro;
	bool overage;
	bool from_gate;
	int64_t row_id;           /* set by ledger_insert / ledger_find */
};

/* A provider record the ledger refused, kept so that the same record sent
 * again gets the same answer (migration 0013, docs/LEDGER.md). */
#define LEDGER_REASON_MAX 320
struct ledger_rejection {
	int64_t id;               /* set by reject_list */
	char provider[STORE_ID_MAX];
	char record_id[RECORD_ID_MAX];
	bool has_seq;
	int64_t seq;
	uint8_t sha256[32];
	char reason[LEDGER_REASON_MAX];
	int64_t received_us;
};

/* Sum of charges of one level over [from_us, to_us) (bucket-aligned):
 * institution NULL = the whole pool; project NULL = the institution;
 * member NULL = the project. */
struct ledger_level {
	const char *institution;
	const char *project;
	const char *member;
};

/* Filters for listing records (GET /v1/usage); NULL/0 = any. */
struct ledger_filter {
	const char *institution, *project, *member, *provider, *resource, *model, *kind;
	int64_t from_us, to_us;   /* on book_us; to_us 0 = no bound */
	int64_t after_id;         /* cursor */
	int64_t limit;
};

#endif
