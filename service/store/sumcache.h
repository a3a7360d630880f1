/* sumcache.h — a write-through cache of the ledger's charge sums per level
 * and bucket range, so that admission reads no rows.
 *
 * The SQLite backend owns one.  Sums are filled from the database on a miss;
 * each inserted row is kept as a pending delta until its transaction
 * commits (dropped on rollback, truncated on ROLLBACK TO a savepoint), and
 * applied to every cached range containing it at commit (or held, see
 * sumcache_pending).  A sum filled from the database leaves held rows out.
 *
 * Locking: the cache has its own mutex, so a hit (sumcache_get) and a
 * release need not wait for the connection, which a group commit holds
 * across its fsync.  Fills (sumcache_put after a query) and commits both run
 * under the store's connection lock too, so a fill can never race the
 * application of a commit.  The pending list belongs to the one writer
 * holding the connection.  Reads inside an open transaction bypass the
 * cache (the transaction's own rows are not in it yet).
 *
 * Overflow: the ledger's bounds keep every sum inside int64 (docs/LEDGER.md,
 * "Bounds"); should a delta still not fit, the cache forgets the range (the
 * next read asks the database) and never caches a saturated sum: it never
 * holds a wrapped figure.
 */
#ifndef ALLOT_STORE_SUMCACHE_H
#define ALLOT_STORE_SUMCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Levels remembered before the cache starts over, and ranges per level. */
#define SUMCACHE_MAX_LEVELS 65536
#define SUMCACHE_RANGES 8

struct sumcache;

struct sumcache *sumcache_new(void);
void sumcache_free(struct sumcache *c);

/* inst/proj/member NULL as in struct ledger_level. */
bool sumcache_get(struct sumcache *c, const char *inst, const char *proj, const char *member,
		  int64_t from_b, int64_t to_b, int64_t *sum);
/* Caches a sum read from the database; *sum is adjusted to leave out the
 * held rows, as sumcache_get would. */
void sumcache_put(struct sumcache *c, const char *inst, const char *proj, const char *member,
		  int64_t from_b, int64_t to_b, int64_t *sum);

/* A row inserted in the open transaction.  tag 0: applied at commit; else
 * held at commit until sumcache_release(tag) (the gate makes a settled
 * charge visible in the same step as it releases the reservation). */
void sumcache_pending(struct sumcache *c, const char *inst, const char *proj,
		      const char *member, int64_t bucket, int64_t charge, uint64_t tag);
void sumcache_release(struct sumcache *c, uint64_t tag);
size_t sumcache_pending_mark(struct sumcache *c);
void sumcache_pending_truncate(struct sumcache *c, size_t mark);
void sumcache_commit(struct sumcache *c);   /* applies and clears pending */
void sumcache_rollback(struct sumcache *c); /* clears pending */

#endif
