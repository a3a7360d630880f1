/* glease.h — a node's leases of busy levels (tier B of issue 13;
 * docs/POSTGRES.md, "Leases and epochs"): admission from slices of the
 * database's budgets held by this node, in memory, with no database round
 * trip.  Only on a store with leases (PostgreSQL).
 *
 *   glease_open:  the node's new epoch (store_node_start) and the thread
 *                 that takes, tops up, returns leases and beats.
 *   glease_admit: admits rq->amount at every level of rq from this node's
 *                 unexpired leases, or not at all (false: tier A decides).
 *   glease_note:  an admission at rq's levels (busy levels get leases).
 *   glease_done:  the request settled at actual (0: cancelled); its
 *                 leases' room held for it is released.
 */
#ifndef ALLOT_GATE_GLEASE_H
#define ALLOT_GATE_GLEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct glease;

/* The leases a request was admitted from. */
struct glease_use {
	size_t n;                            /* 0: none (tier A) */
	int slot[STORE_BUDGET_LEVELS];       /* glease's entries */
	struct store_lease_ref ref[STORE_BUDGET_LEVELS];
	int64_t held;                        /* at each */
};

/* Settings (environment, read at open; docs/POSTGRES.md): */
struct glease_cfg {
	int64_t busy;       /* admissions per second at a level that lease it (0: never) */
	int64_t ttl_us;     /* a lease's validity from its take or top-up */
	int64_t grace_us;   /* expiry + grace: when any node returns it */
	int64_t ahead_us;   /* a lease's size: the level's rate over this long */
	int64_t idle_us;    /* unused this long: returned */
};
#define GLEASE_DEFAULT_BUSY 50
#define GLEASE_MAX_BUSY 1000000
#define GLEASE_DEFAULT_TTL_MS 10000
#define GLEASE_MIN_TTL_MS 200
#define GLEASE_DEFAULT_GRACE_MS ((600 + 60) * 1000)
#define GLEASE_MAX_MS 86400000
/* Reads ALLOT_LEASE_BUSY (0 to GLEASE_MAX_BUSY), ALLOT_LEASE_TTL_MS
 * (GLEASE_MIN_TTL_MS to GLEASE_MAX_MS) and ALLOT_LEASE_GRACE_MS (0 to
 * GLEASE_MAX_MS); unset or empty: the defaults.  Anything else is refused
 * (ALLOT_E_INVALID, msg names the variable and its range; *c is then
 * unspecified).  allotd and allotd --check call it before anything is
 * opened. */
allot_err glease_config(struct glease_cfg *c, char *msg, size_t msgsz);
/* The grace of glease_config (for sweeps where no glease is open; the
 * default when the variable is bad, which allotd refused at start). */
int64_t glease_grace_us(void);

allot_err glease_open(struct store *st, const char *node, struct glease **out, char *msg,
		      size_t msgsz);
/* Returns what it holds (best effort) and stops its thread. */
void glease_free(struct glease *L);
/* OUT: *remaining, the least room left in the leases, at rq->lv[*at]. */
bool glease_admit(struct glease *L, const struct store_budget_req *rq, int64_t now,
		  struct glease_use *u, int64_t *remaining, size_t *at);
void glease_note(struct glease *L, const struct store_budget_req *rq, int64_t now);
void glease_done(struct glease *L, const struct glease_use *u, int64_t actual);

struct glease_stats {
	uint64_t held;          /* leases held now */
	uint64_t admitted;      /* admissions from leases since start */
	uint64_t db;            /* admissions through the database since start */
};
void glease_stats(struct glease *L, struct glease_stats *out);

#endif
