/* dblock.h — one owner per SQLite database: an exclusive lock held for the
 * owning process's whole life.
 *
 * allotd takes it before its store opens; `allotd --fsck` and `allot store
 * copy` take the same lock, so none of them ever works on a database that
 * another process is changing.  The lock is flock(LOCK_EX) on the file
 * "<db>.lock" beside the database (mode 0600, created on first use and
 * never removed: unlinking a lock file races with a process that has just
 * opened it).  The kernel drops the lock when the process ends, kill -9
 * included, so a crashed owner never blocks the next start.
 *
 * The holder writes one line into the file — "pid 1234 on host node1 since
 * 2026-12-06T11:20:00Z (allotd)" — which a refused process prints.
 *
 * Not thread-safe; acquire and release from one thread (start-up, exit).
 */
#ifndef ALLOT_DAEMON_DBLOCK_H
#define ALLOT_DAEMON_DBLOCK_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct dblock;

/* The suffix of the lock file's name after the database's path. */
#define DBLOCK_SUFFIX ".lock"

/* Whether db names a database file that has a lock file: a file path.
 * False for a postgres:// URI and for SQLite's ":memory:" and ""
 * (private to one connection). */
bool dblock_applies(const char *db);

/* Whether db needs an owner lock: a file path (its lock file) or a
 * PostgreSQL URI, whose lock is a session-level advisory lock held on a
 * connection of its own (store_pg_owner_acquire, docs/POSTGRES.md); the
 * server drops it when the process ends, kill -9 included. */
bool dblock_needed(const char *db);

/* Takes the exclusive lock for database path (or PostgreSQL URI) db.  what: a short name of
 * the owner written into the lock file ("allotd", "allotd --fsck").
 * OUT: *out, released with dblock_release.
 * ALLOT_E_CONFLICT when another process (or another dblock of this one)
 * holds it: msg names the lock file and the holder's line.
 * ALLOT_E_IO when the lock file cannot be created or locked (msg says why),
 * ALLOT_E_INVALID when db is not a lockable path. */
allot_err dblock_acquire(const char *db, const char *what, struct dblock **out, char *msg,
			 size_t msgsz);

/* Releases the lock and frees l.  NULL is a no-op. */
void dblock_release(struct dblock *l);

/* The lock file's path, or a PostgreSQL lock's description (valid until
 * dblock_release). */
const char *dblock_path(const struct dblock *l);

#endif
