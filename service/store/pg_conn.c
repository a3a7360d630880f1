/* pg_conn.c — a PostgreSQL connection for the store and its schema
 * migrations (migrations/postgres/, embedded at build time). */
#include "store/pg_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/migrate.h"

/* Any fixed number: the key of the advisory lock that serialises
 * migrations across nodes ("allot" in ASCII). */
#define PG_MIGRATE_LOCK 0x616c6c6f74LL

void pg_fold(char *msg)
{
	size_t w = 0;
	for (size_t r = 0; msg[r]; r++) {
		char ch = msg[r] == '\n' || msg[r] == '\t' || msg[r] == '\r' ? ' ' : msg[r];
		if (ch == ' ' && (w == 0 || msg[w - 1] == ' '))
			continue;
		msg[w++] = ch;
	}
	while (w && msg[w - 1] == ' ')
		w--;
	msg[w] = '\0';
}

/* A libpq message as one line (errors go to stderr as one line each). */
static void pg_msg(char *msg, size_t msgsz, const char *what, const char *pq)
{
	snprintf(msg, msgsz, "%s: %s", what, pq && *pq ? pq : "unknown error");
	pg_fold(msg);
}

/* Runs sql, which returns no rows.  false: msg says why. */
static bool pg_exec(PGconn *c, const char *sql, const char *what, char *msg, size_t msgsz)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		pg_msg(msg, msgsz, what, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

allot_err pg_connect(const char *uri, PGconn **out, char *msg, size_t msgsz)
{
	*out = NULL;
	PGconn *c = PQconnectdb(uri);
	if (!c) {
		snprintf(msg, msgsz, "PostgreSQL: out of memory");
		return ALLOT_E_NOMEM;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		pg_msg(msg, msgsz, "cannot connect to PostgreSQL", PQerrorMessage(c));
		PQfinish(c);
		return ALLOT_E_UNAVAILABLE;
	}
	int v = PQserverVersion(c);
	if (v < PG_MIN_SERVER_VERSION) {
		snprintf(msg, msgsz, "PostgreSQL %d.%d is too old: allot needs %d or newer", v / 10000,
			 v % 10000, PG_MIN_SERVER_VERSION / 10000);
		PQfinish(c);
		return ALLOT_E_UNSUPPORTED;
	}
	/* Instants are integer microseconds (UTC) in the rows themselves; the
	 * session settings only keep server-side messages and defaults plain.
	 * jit off: a report over 1,000,000 records spent 2.1 of its 6.1 s
	 * compiling (EXPLAIN ANALYZE, docs/BENCH_PG.md), and no statement here
	 * runs long enough to win it back. */
	if (!pg_exec(c, "SET TIME ZONE 'UTC'; SET synchronous_commit = on; "
			"SET client_min_messages = warning; SET jit = off",
		     "PostgreSQL session setup", msg, msgsz)) {
		PQfinish(c);
		return ALLOT_E_STORE;
	}
	*out = c;
	return ALLOT_OK;
}

int pg_schema_version(PGconn *c)
{
	PGresult *r = PQexec(c, "SELECT to_regclass('allot_schema') IS NOT NULL");
	int v = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strcmp(PQgetvalue(r, 0, 0), "t") == 0 ? 1 : 0;
	PQclear(r);
	if (v != 1)
		return v; /* 0: no table yet, an empty database */
	r = PQexec(c, "SELECT coalesce(max(version), 0) FROM allot_schema");
	v = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* One migration in its own transaction; the version row goes with it. */
static allot_err pg_apply(PGconn *c, const struct migration *m, char *msg, size_t msgsz)
{
	char what[96];
	snprintf(what, sizeof what, "PostgreSQL migration %s", m->name);
	if (!pg_exec(c, m->sql, what, msg, msgsz))
		return ALLOT_E_STORE;
	char ins[160];
	snprintf(ins, sizeof ins, "INSERT INTO allot_schema(version, name, applied_us) VALUES "
				  "(%d, '%s', (extract(epoch FROM clock_timestamp()) * 1e6)::bigint)",
		 m->version, m->name);
	return pg_exec(c, ins, what, msg, msgsz) ? ALLOT_OK : ALLOT_E_STORE;
}

allot_err pg_migrate(PGconn *c, int *version, char *msg, size_t msgsz)
{
	const int latest = migrate_latest(migrations_postgres);
	char lock[96];
	snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%lld)", PG_MIGRATE_LOCK);
	for (;;) {
		if (!pg_exec(c, "BEGIN", "PostgreSQL migration", msg, msgsz))
			return ALLOT_E_STORE;
		/* Under the lock, read the version again: another node may have
		 * applied the next migration while this one waited. */
		if (!pg_exec(c, lock, "PostgreSQL migration lock", msg, msgsz) ||
		    !pg_exec(c, "CREATE TABLE IF NOT EXISTS allot_schema (version INTEGER PRIMARY KEY, "
				"name TEXT NOT NULL, applied_us BIGINT NOT NULL)",
			     "PostgreSQL schema table", msg, msgsz))
			goto fail;
		int v = pg_schema_version(c);
		if (v < 0) {
			pg_msg(msg, msgsz, "PostgreSQL schema version", PQerrorMessage(c));
			goto fail;
		}
		if (v > latest) {
			snprintf(msg, msgsz, "the PostgreSQL database has schema version %d, newer than "
					     "this allotd (%d): upgrade allotd", v, latest);
			char ignored[8];
			pg_exec(c, "ROLLBACK", "rollback", ignored, sizeof ignored);
			return ALLOT_E_UNSUPPORTED;
		}
		/* The next is the lowest version above the database's: numbers
		 * given to parallel work may leave a gap until all of it lands
		 * (store/migrate.h: "the ones newer than the database's recorded
		 * version, in order", as SQLite's runner does). */
		const struct migration *next = NULL;
		for (const struct migration *m = migrations_postgres; m->version; m++)
			if (m->version > v && (!next || m->version < next->version))
				next = m;
		if (v == latest || !next) {
			if (!pg_exec(c, "COMMIT", "PostgreSQL migration", msg, msgsz))
				return ALLOT_E_STORE;
			if (v != latest) {
				snprintf(msg, msgsz, "PostgreSQL migration %d is missing from this build",
					 v + 1);
				return ALLOT_E_STORE;
			}
			if (version)
				*version = v;
			return ALLOT_OK;
		}
		if (pg_apply(c, next, msg, msgsz) ||
		    !pg_exec(c, "COMMIT", "PostgreSQL migration", msg, msgsz))
			goto fail;
	}
fail:;
	char ignored[8];
	pg_exec(c, "ROLLBACK", "rollback", ignored, sizeof ignored);
	return ALLOT_E_STORE;
}
