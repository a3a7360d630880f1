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
 * A node's registration is kept by a thread of its own: every
 * PG_OWNER_CHECK_MS it checks the session, and when the session is gone
 * (the server restarted, the connection broke) it connects and registers
 * again, under the same name, until it succeeds (meanwhile allot_reserve
 * refuses this node's admissions: pg_node_registered).
 * docs/POSTGRES.md, "Nodes of one database". */
#include "store/pg_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* The lock's two int4 keys: "allo" and "wn" (advisory locks are per
 * database; pg_conn.c's migration lock uses the one-bigint form). */
#define PG_OWNER_KEY1 "1634495599"
#define PG_OWNER_KEY2 "30574"

/* application_name holds at most 63 bytes (NAMEDATALEN - 1). */
#define PG_APPNAME_MAX 64

/* How often a node's registration is checked (and taken again). */
#define PG_OWNER_CHECK_MS 500

struct store_owner {
	PGconn *c;
	/* A node's only: the keeper thread and what it needs to register again. */
	char *uri;
	char name[PG_APPNAME_MAX];
	bool keeper;
	bool registered;            /* the keeper's view of c */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* stop */
	bool stop;
};

/* Node registrations this process holds now (registered ones). */
static atomic_int node_registrations;

bool pg_node_registered(void) { return atomic_load(&node_registrations) > 0; }

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

/* Connects to uri and takes the lock as name (the shared form for a
 * node).  OUT: *out, the session holding it. */
static allot_err owner_register(const char *uri, const char *name, bool node, PGconn **out,
				char *msg, size_t msgsz)
{
	PGconn *c = NULL;
	allot_err e = pg_connect(uri, &c, msg, msgsz);
	if (e)
		return e;
	const char *vn[] = {name};
	PGresult *r = PQexecParams(c, "SELECT set_config('application_name', $1, false)", 1, NULL,
				   vn, NULL, NULL, 0);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	const char *vk[] = {PG_OWNER_KEY1, PG_OWNER_KEY2};
	r = ok ? PQexecParams(c,
			      node ? "SELECT pg_try_advisory_lock_shared($1::int4, $2::int4)"
				   : "SELECT pg_try_advisory_lock($1::int4, $2::int4)",
			      2, NULL, vk, NULL, NULL, 0)
	       : NULL;
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		snprintf(msg, msgsz, "cannot take the PostgreSQL database's owner lock: %s",
			 r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		msg[strcspn(msg, "\n")] = '\0';
		e = PQstatus(c) == CONNECTION_OK ? ALLOT_E_STORE : ALLOT_E_UNAVAILABLE;
	} else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		char who[256];
		owner_holder(c, who, sizeof who);
		snprintf(msg, msgsz, "PostgreSQL database %s is in use by another process: %s; %s",
			 PQdb(c), who,
			 node ? "it needs the database alone" : "allotd nodes are running on it");
		e = ALLOT_E_CONFLICT;
	}
	PQclear(r);
	if (e) {
		PQfinish(c);
		return e;
	}
	*out = c;
	return ALLOT_OK;
}

/* Whether the session c still answers. */
static bool owner_alive(PGconn *c)
{
	if (!c || PQstatus(c) != CONNECTION_OK)
		return false;
	PGresult *r = PQexec(c, "SELECT 1");
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	return ok && PQstatus(c) == CONNECTION_OK;
}

/* One check of a node's registration; registers again when it is gone. */
static void owner_check(struct store_owner *o)
{
	if (owner_alive(o->c))
		return;
	if (o->registered) {
		o->registered = false;
		atomic_fetch_sub(&node_registrations, 1);
		log_warnx("this node's registration on the PostgreSQL database is gone (the server "
			  "restarted or the connection broke): admissions are refused until it "
			  "registers again");
	}
	PQfinish(o->c);
	o->c = NULL;
	char msg[512];
	allot_err e = owner_register(o->uri, o->name, true, &o->c, msg, sizeof msg);
	if (e) {
		o->c = NULL;
		if (e != ALLOT_E_UNAVAILABLE)
			log_warnx("this node cannot register on the PostgreSQL database: %s", msg);
		return;
	}
	o->registered = true;
	atomic_fetch_add(&node_registrations, 1);
	log_info("this node is registered on the PostgreSQL database again");
}

static void *owner_keeper(void *arg)
{
	struct store_owner *o = arg;
	pthread_mutex_lock(&o->mu);
	while (!o->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)PG_OWNER_CHECK_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&o->cv, &o->mu, &ts);
		if (o->stop)
			break;
		pthread_mutex_unlock(&o->mu);
		owner_check(o);
		pthread_mutex_lock(&o->mu);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* Starts a node's keeper thread. */
static allot_err owner_keep(struct store_owner *o, const char *uri)
{
	if (!(o->uri = strdup(uri)))
		return ALLOT_E_NOMEM;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&o->mu, NULL);
	if (pthread_create(&o->th, NULL, owner_keeper, o) != 0) {
		pthread_cond_destroy(&o->cv);
		pthread_mutex_destroy(&o->mu);
		free(o->uri);
		o->uri = NULL;
		return ALLOT_E_NOMEM;
	}
	o->keeper = true;
	return ALLOT_OK;
}

allot_err store_pg_owner_acquire(const char *uri, const char *what, struct store_owner **out,
				 char *msg, size_t msgsz)
{
	*out = NULL;
	struct store_owner *o = calloc(1, sizeof *o);
	if (!o)
		return ALLOT_E_NOMEM;
	bool node = strcmp(what, "allotd") == 0; /* a node: shares the database */
	owner_name(what, o->name, sizeof o->name);
	allot_err e = owner_register(uri, o->name, node, &o->c, msg, msgsz);
	if (!e && node) {
		o->registered = true;
		atomic_fetch_add(&node_registrations, 1);
		if ((e = owner_keep(o, uri))) {
			snprintf(msg, msgsz, "cannot start the node registration's keeper");
			atomic_fetch_sub(&node_registrations, 1);
			PQfinish(o->c);
		}
	}
	if (e) {
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
	if (o->keeper) {
		pthread_mutex_lock(&o->mu);
		o->stop = true;
		pthread_cond_signal(&o->cv);
		pthread_mutex_unlock(&o->mu);
		pthread_join(o->th, NULL);
		pthread_cond_destroy(&o->cv);
		pthread_mutex_destroy(&o->mu);
		free(o->uri);
	}
	if (o->registered)
		atomic_fetch_sub(&node_registrations, 1);
	PQfinish(o->c); /* the session ends: the server drops the lock */
	free(o);
}
