/* pg_int.h — private to the PostgreSQL backend's files (store/pg*.c) and
 * their tests.  SPEC section 9; docs/DEPLOY.md.
 *
 * The PostgreSQL store is being built in steps (issue 13): so far the
 * connection and the schema (migrations/postgres/); store_open still
 * refuses postgres:// URIs until every store operation exists. */
#ifndef ALLOT_STORE_PG_INT_H
#define ALLOT_STORE_PG_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

/* The oldest server the SQL here is written for. */
#define PG_MIN_SERVER_VERSION 130000

/* Connects to uri (postgres:// or postgresql://, or key=value pairs) and
 * sets the session up: UTC, synchronous commit on, the server checked
 * against PG_MIN_SERVER_VERSION.  OUT: *out (PQfinish it). */
allot_err pg_connect(const char *uri, PGconn **out, char *msg, size_t msgsz);

/* Applies the embedded migrations newer than the database's, each in its
 * own transaction, under an advisory lock held for the transaction (nodes
 * starting together apply each migration once).  A database newer than this
 * binary is refused.  OUT: *version (may be NULL), the schema version now. */
allot_err pg_migrate(PGconn *c, int *version, char *msg, size_t msgsz);

/* The database's schema version: 0 for an empty database, -1 on error. */
int pg_schema_version(PGconn *c);

/* ---- the store object (store/pg_store.c) -------------------------------
 * Contract between the backend's files (issue 13, docs/POSTGRES.md):
 *   pg_store.c   open/close, the connection pool, the thread's transaction,
 *                statement helpers, and the plain operations (keys,
 *                charters, audit, tokens, rejections, retry queue, outbox);
 *   pg_ledger*.c the ledger (records, buckets, bounds, sums, reports,
 *                sequence status, holds, durability classes, token_spent);
 *   pg_tlog.c    the transparency log (appends and reads).
 * Each file names its operations in a PG_*_OPS macro below that
 * pg_store.c's ops table lists. */
struct pg_ledger;   /* store/pg_ledger.c: sums, holds, bounds, sync stats */
struct pg_tlog;     /* store/pg_tlog.c: appends of the open transactions */

#define PG_POOL_MAX 16

struct pg_store {
	struct store base;
	char *uri;
	bool readonly;              /* store_open_readonly: every write fails */
	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;     /* a connection came back */
	PGconn *idle[PG_POOL_MAX];  /* connected, no transaction open */
	int nidle, nopen;           /* idle ones; all of them (<= PG_POOL_MAX) */
	struct pg_ledger *ledger;
	struct pg_tlog *tlog;
};

/* A connection for one operation: the calling thread's open transaction's
 * (*own false: do not give it back), else one from the pool, connecting a
 * new one while fewer than PG_POOL_MAX are open, else waiting (*own true:
 * pg_put it).  ALLOT_E_UNAVAILABLE (st->errmsg says why) when the server
 * cannot be reached. */
allot_err pg_get(struct pg_store *ps, PGconn **c, bool *own);
/* Gives a connection back; broken (or PQstatus not OK): closed instead. */
void pg_put(struct pg_store *ps, PGconn *c, bool broken);
/* The connection of the calling thread's open transaction on ps, or NULL;
 * pg_txn_set(ps, c) marks it (BEGIN done by the caller), pg_txn_set(ps,
 * NULL) clears it (after COMMIT or ROLLBACK). */
PGconn *pg_txn(const struct pg_store *ps);
void pg_txn_set(struct pg_store *ps, PGconn *c);
/* Runs sql with n text parameters (NULL: SQL NULL) on c; statements are
 * prepared once per connection, keyed by the sql pointer (static strings
 * only).  Returns the result when its status is PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK, else NULL with st->errmsg set and *e (may be NULL) the
 * error: ALLOT_E_CONFLICT for a unique or check violation (SQLSTATE 23xxx),
 * ALLOT_E_UNAVAILABLE when the connection is gone, ALLOT_E_STORE else. */
PGresult *pg_run(struct pg_store *ps, PGconn *c, const char *sql, int n,
		 const char *const *vals, allot_err *e);
/* BEGIN / COMMIT / ROLLBACK of the thread's own transaction on c. */
allot_err pg_begin(struct pg_store *ps, PGconn *c);
allot_err pg_commit(struct pg_store *ps, PGconn *c);
void pg_rollback(struct pg_store *ps, PGconn *c);
/* Text forms of int64 for parameters; buf at least 24 bytes. */
const char *pg_i64(char *buf, int64_t v);
/* A column's int64 (0 when NULL). */
int64_t pg_col_i64(const PGresult *r, int row, int col);

/* ---- the ledger (store/pg_ledger*.c) ---- */
allot_err pg_ledger_open(struct pg_store *ps, char *msg, size_t msgsz);
void pg_ledger_close(struct pg_store *ps);
/* PG_LEDGER_OPS: .ledger_begin .. .ledger_release, .ledger_begin_sync,
 * .set_flush_ms, .flush, .sync_stats, .set_wal_limit, .token_spent */

/* ---- the transparency log (store/pg_tlog.c) ---- */
allot_err pg_tlog_open(struct pg_store *ps, char *msg, size_t msgsz);
void pg_tlog_close(struct pg_store *ps);
/* Append the entry's leaf, on the entry's own transaction's connection c. */
allot_err pg_tlog_append_charter(struct pg_store *ps, PGconn *c, const struct charter_row *r);
allot_err pg_tlog_append_audit(struct pg_store *ps, PGconn *c, int64_t id,
			       const struct audit_entry *a);
allot_err pg_tlog_append_usage(struct pg_store *ps, PGconn *c, const struct ledger_row *row);
/* PG_TLOG_OPS: .tlog_head .. .tlog_set_enabled */

#endif
