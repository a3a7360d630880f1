/* settle_types.h — a gate settlement waiting in the durable retry queue
 * (store/store.h: settleq_*; gate/settleq.c). */
#ifndef ALLOT_STORE_SETTLE_TYPES_H
#define ALLOT_STORE_SETTLE_TYPES_H

#include <stdint.h>

#include "common/ids.h"

/* Record ids are "<base>-in" and "<base>-out"; base is
 * "gate:<jti>:<boot>-<seq>" (gate/gate.c). */
#define SETTLE_BASE_MAX 120 /* with "-out", within a record id (128 bytes) */

struct settle_pending {
	int64_t id;                        /* row id once stored; 0 before */
	char record_base[SETTLE_BASE_MAX];
	char provider[STORE_ID_MAX];
	char institution[STORE_ID_MAX];
	char project[STORE_ID_MAX];
	char member[STORE_MEMBER_MAX];
	char model[STORE_ID_MAX];
	int64_t tokens_in, tokens_out;
	int64_t start_us, end_us;
	int64_t charter_version;           /* the version that admitted it */
	int64_t queued_us;
	char reason[256];                  /* why the last attempt failed */
};

#endif
