/* pgbudget.h — what the tests of the PostgreSQL budgets and leases
 * (test_pg_budget, test_pg_lease) both build: the levels pool "*", "epfl"
 * and "epfl/climate" of January 2026, a request at the three, a gate
 * record of epfl/climate booked with its settlement, and one integer read
 * by SQL from the fixture's database (support/pgfx.h). */
#ifndef ALLOT_TESTS_PGBUDGET_H
#define ALLOT_TESTS_PGBUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct pgfx;

#define PGB_SEC 1000000LL
#define PGB_DAY (86400LL * PGB_SEC)
#define PGB_T0 (1767225600LL * PGB_SEC) /* 2026-01-01T00:00:00Z */
#define PGB_NOW (PGB_T0 + PGB_DAY)        /* the requests' and records' time */

/* Level i (0: "*", 1: "epfl", 2: "epfl/climate") of January 2026 with cap,
 * no concurrency or rate limit. */
void pgb_level(struct store_budget_level *l, int i, int64_t cap);
/* A request id of amount (10 tokens, charter version 1, at PGB_NOW,
 * expiring a minute later) at the three levels with these caps. */
void pgb_req3(struct store_budget_req *rq, const char *id, int64_t amount, int64_t pool,
	      int64_t inst, int64_t proj);
/* Books a gate record id of epfl/climate (alice@epfl.ch, tokens_out) at
 * charge, booked at PGB_NOW, and settles it under lease (id, epoch; 0:
 * none) and reservation resv (NULL: none), in one ledger transaction;
 * commits, or rolls back (commit false, or an error). */
allot_err pgb_book(struct store *st, const char *id, int64_t lease, int64_t epoch,
		   const char *resv, int64_t charge, bool commit);
/* The one integer sql returns (one row); fails the test otherwise. */
int64_t pgb_int(struct pgfx *f, const char *sql);
/* Column col of the budget row of level (of its only period). */
int64_t pgb_column(struct pgfx *f, const char *col, const char *level);

#endif
