/* pg_owner.c — the nodes of a PostgreSQL database and its exclusive users.
 *
 * Every allotd node registers: it holds the shared form of a session-level
 * advisory lock on a fixed key, on a connection of its own kept for the
 * process's life, so several nodes share one database (their budgets live
 * in it: store/pg_budget.c).  Anything else that names itself (allotd
 * --fsck) takes the exclusive form: it waits for no node and no node
 * starts beside it.  The server drops the lock when that session ends (the
 * process exits or is killed, or the connection is lost).  The session's
 * application_name says who holds it ("pid 1234 on host node1 (allotd)"),
 * so pg_stat_activity lists the nodes, and a refused process reads the
 * holder with the session's start from pg_locks and pg_stat_activity.
 * docs/POSTGRES.md, "Nodes of one database". */
#include "store/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The lock's two int4 keys: "allo" and "wn" (advisory locks are per
 * database; pg_conn.c's migration lock uses the one-bigint form). */
#define PG_OWNER_KEY1 "1634495599"
#define PG_OWNER_KEY2 "30574"

/* application_name holds at most 63 bytes (NAMEDATALEN - 1). */
#define PG_APPNAME_MAX 64

struct store_owner {
	PGconn *c;
};

/* "pid N on host H (what)", cut to fit application_name (the host first). */
static void owner_name(const char *what, char *out, size_t outsz)
{
	char host[256] = "";
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "?");
	host[sizeof host - 1] = '\0';
	char head[320], tail[48];
	snprintf(head, sizeof head, "pid %ld on host %s", (long)getpid(), host);
	snprintf(tail, sizeof tail, " (%.40s)", what);
	size_t hl = strlen(head), tl = strlen(tail);
	if (hl + tl > outsz - 1)
		hl = outsz - 1 - tl;
	memcpy(out, head, hl);
	memcpy(out + hl, tail, tl);
	out[hl + tl] = '\0';
	for (char *p = out; *p; p++) /* the server keeps printable ASCII only */
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

void pg_node_name(char *out, size_t outsz)
{
	owner_name("allotd", out, outsz);
}

/* The holder as the server knows it, into msg. */
static void owner_holder(PGconn *c, char *who, size_t whosz)
{
	static const char sql[] =
		"SELECT a.application_name, a.pid, to_char(a.backend_start AT TIME ZONE 'UTC', "
		"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM pg_locks l JOIN pg_stat_activity a "
		"ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
		"AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
		"AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = 2 LIMIT 1";
	const char *v[] = {PG_OWNER_KEY1, PG_OWNER_KEY2};
	PGresult *r = PQexecParams(c, sql, 2, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		const char *name = PQgetvalue(r, 0, 0);
		snprintf(who, whosz, "%s since %s (server process %s)",
			 *name ? name : "a process without a name", PQgetvalue(r, 0, 2),
			 PQgetvalue(r, 0, 1));
	} else {
		snprintf(who, whosz, "a process this role cannot see");
	}
	PQclear(r);
}

allot_err store_pg_owner_acquire(const char *uri, const char *what, struct store_owner **out,
				 char *msg, size_t msgsz)
{
	*out = NULL;
	struct store_owner *o = calloc(1, sizeof *o);
	if (!o)
		return ALLOT_E_NOMEM;
	allot_err e = pg_connect(uri, &o->c, msg, msgsz);
	if (e) {
		free(o);
		return e;
	}
	char name[PG_APPNAME_MAX];
	owner_name(what, name, sizeof name);
	const char *vn[] = {name};
	PGresult *r = PQexecParams(o->c, "SELECT set_config('application_name', $1, false)", 1, NULL,
				   vn, NULL, NULL, 0);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	const char *vk[] = {PG_OWNER_KEY1, PG_OWNER_KEY2};
	bool node = strcmp(what, "allotd") == 0; /* a node: shares the database */
	r = ok ? PQexecParams(o->c,
			      node ? "SELECT pg_try_advisory_lock_shared($1::int4, $2::int4)"
				   : "SELECT pg_try_advisory_lock($1::int4, $2::int4)",
			      2, NULL, vk, NULL, NULL, 0)
	       : NULL;
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		snprintf(msg, msgsz, "cannot take the PostgreSQL database's owner lock: %s",
			 r ? PQresultErrorMessage(r) : PQerrorMessage(o->c));
		msg[strcspn(msg, "\n")] = '\0';
		e = ALLOT_E_STORE;
	} else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		char who[256];
		owner_holder(o->c, who, sizeof who);
		snprintf(msg, msgsz, "PostgreSQL database %s is in use by another process: %s; %s",
			 PQdb(o->c), who,
			 node ? "it needs the database alone" : "allotd nodes are running on it");
		e = ALLOT_E_CONFLICT;
	}
	PQclear(r);
	if (e) {
		PQfinish(o->c);
		free(o);
		return e;
	}
	*out = o;
	return ALLOT_OK;
}

void store_pg_owner_release(struct store_owner *o)
{
	if (!o)
		return;
	PQfinish(o->c); /* the session ends: the server drops the lock */
	free(o);
}
