/* reserve.h — the gate's reservations: worst-case charges held at each level
 * while a request runs.
 *
 * Reservations live in memory only: they belong to requests of this process,
 * so a crash releases them all (the restarted process starts with none) —
 * the start-up release the SPEC asks for is structural.  A reservation is
 * taken for every level of a request at once under one lock, after checking
 * that each level still has room (gate_admit, then reserve_add_locked), and
 * released after the actual usage is booked (reserve_release), so a level's
 * used + reserved never under-counts what is in flight.
 */
#ifndef ALLOT_LEDGER_RESERVE_H
#define ALLOT_LEDGER_RESERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger/quota.h"

struct reserve_table;

struct reserve_table *reserve_new(void);
void reserve_free(struct reserve_table *t);

/* Reserved micro-credits and in-flight requests for a level key. */
int64_t reserve_amount(struct reserve_table *t, const char *key);
int64_t reserve_inflight(struct reserve_table *t, const char *key);

/* The global admission lock: hold it across "read used, check, reserve" so
 * two requests cannot both take the last room. */
void reserve_lock(struct reserve_table *t);
void reserve_unlock(struct reserve_table *t);

/* With the lock held: adds amount (>= 0; and one in-flight request) at each
 * key.  Returns false (nothing changed) on allocation failure, or when a
 * key's reserved amount would pass INT64_MAX (checked arithmetic: a total
 * never wraps). */
bool reserve_add_locked(struct reserve_table *t, const char *const *keys, size_t n,
			int64_t amount);
/* Releases what reserve_add_locked took (takes the lock itself). */
void reserve_release(struct reserve_table *t, const char *const *keys, size_t n,
		     int64_t amount);

/* With the lock held: adds amount (negative: removes it) at each key with
 * no request in flight: what a settlement waiting in the gate's retry
 * queue still holds (gate/settleq.c).  Returns false (nothing changed) on
 * allocation failure. */
bool reserve_hold_locked(struct reserve_table *t, const char *const *keys, size_t n,
			 int64_t amount);

#endif
