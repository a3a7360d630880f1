/* ledger_int.h — what the ledger's files share (ledger.c: the object,
 * provider batches and settlements; book.c: booking one record;
 * group.c: the group commit).  Not for use outside ledger/. */
#ifndef ALLOT_LEDGER_LEDGER_INT_H
#define ALLOT_LEDGER_LEDGER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ledger/group.h"
#include "ledger/ledger.h"
#include "ledger/quota.h"

/* ---- overage within a group transaction ----------------------------------
 * Judging overage needs each level's used sum for the record's period.
 * Inside the ledger transaction the store's sum cache cannot serve it (the
 * group's own rows are not committed), so the leader keeps its own map for
 * the group: (level key, period start) -> {limit, used}, filled once from
 * quota_levels and advanced by each booked charge.  It is only touched by
 * the group's leader (one at a time), and dropped when the group ends or an
 * item rolls back. */

#define OVER_BUCKETS 1024
#define OVER_MAX 65536

struct over_entry {
	struct over_entry *next;
	int64_t period_start;
	int64_t limit, used;
	int64_t version; /* the charter version whose allocation set limit */
	bool filled;
	char key[];
};

/* Level keys of recent (charter version, institution, project, member),
 * valid for book_us in [lo, hi) where every level's period is the same: a
 * group books many records of a few members in the same periods. */
#define OVER_KEYS 8

struct over_keys {
	int64_t version; /* 0: empty */
	int64_t lo, hi;
	char inst[STORE_ID_MAX], proj[STORE_ID_MAX], member[STORE_MEMBER_MAX];
	struct quota_level lv[QUOTA_MAX_LEVELS];
	size_t n;
};

struct over_map {
	struct over_entry *b[OVER_BUCKETS];
	size_t n;
	struct over_keys keys[OVER_KEYS];
	size_t next_key;
};

/* Empties the map (the group ended, or an item rolled back). */
void ledger_over_clear(struct over_map *over);

struct vpool;

struct ledger {
	struct store *store;            /* not owned */
	struct chist *charters;
	struct reserve_table *reserve;
	struct lgroup *group;           /* the group commit (ledger/group.h) */
	struct over_map over;           /* the group leader's alone */
	pthread_mutex_t verify_mu;      /* guards verify, verify_started */
	struct vpool *verify;           /* signature checks; started by the first batch */
	bool verify_started;
};

/* Checks r against the charters and the ledger, prices it and books it.
 * Must run inside a ledger transaction.  row->rec is r (borrowed).
 * gate: NULL for a provider's record; for a gate settlement, its options:
 * the charter it was admitted under (a request is admitted and settled
 * under one version, SPEC section 2; NULL: the one in force at `end`). */
enum ledger_outcome ledger_book_one(struct ledger *led, struct usage_record *r,
				    const struct ledger_settle_opts *gate, int64_t now,
				    struct ledger_row *row, char *reason, size_t rsz);

#endif
