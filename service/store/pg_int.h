/* pg_int.h — private to the PostgreSQL backend's files (store/pg*.c) and
 * their tests.  SPEC section 9; docs/DEPLOY.md.
 *
 * The PostgreSQL store is being built in steps (issue 13): so far the
 * connection and the schema (migrations/postgres/); store_open still
 * refuses postgres:// URIs until every store operation exists. */
#ifndef ALLOT_STORE_PG_INT_H
#define ALLOT_STORE_PG_INT_H

#include <libpq-fe.h>

#include "common/err.h"

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

#endif
