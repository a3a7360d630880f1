/* group.h — the ledger's group commit.
 *
 * Writers queue their work; the first to find no leader becomes the leader,
 * takes the whole queue, runs every item inside one store transaction (each
 * in its own savepoint, so one item's store failure does not undo the
 * others) and commits once: one fsync for all the batches and settlements
 * that arrived meanwhile.  A lone writer leads at once.  The commit is FULL
 * when any item is durable (a provider batch), else DEFERRED
 * (docs/LEDGER.md, "Durability").
 *
 * Thread-safety: lgroup_run and lgroup_queued from any thread.
 */
#ifndef ALLOT_LEDGER_GROUP_H
#define ALLOT_LEDGER_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

/* One item's work inside the group's transaction; owner: lgroup_new's. */
typedef allot_err (*lgroup_work_fn)(void *owner, void *arg, int64_t now);

struct lgroup;

/* st: not owned.  reset(owner) is called by the leader when a group
 * starts, after an item rolls back and when the group ends (the owner
 * drops state that only the group's transaction makes true).  NULL when
 * out of memory. */
struct lgroup *lgroup_new(struct store *st, void *owner, void (*reset)(void *owner));
void lgroup_free(struct lgroup *g);

/* Runs work(owner, arg, now) in a group; returns its result, or the
 * commit's failure (then nothing of the group was stored).  rerun: work
 * may be run twice, its first run rolled back (and reset called) before
 * the second: then, on a store that offers it (store_ops.ledger_begin_batch),
 * a group of such items first runs without savepoints, and again with
 * them only if anything fails (docs/POSTGRES.md, "Settlements in few
 * round trips"). */
allot_err lgroup_run(struct lgroup *g, lgroup_work_fn work, void *arg, bool durable,
		     bool rerun);

/* Writers waiting in the queue (not the leader's group). */
size_t lgroup_queued(struct lgroup *g);

#endif
