/* pgfx.c — see pgfx.h. */
#include "pgfx.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/pg_int.h"

const char *pgfx_server(void)
{
	const char *u = getenv("ALLOT_TEST_PG_URI");
	return u && *u ? u : NULL;
}

void pgfx_admin_exec(const char *sql)
{
	PGconn *c = NULL;
	char msg[512];
	if (pg_connect(pgfx_server(), &c, msg, sizeof msg))
		fail_msg("pg_connect: %s", msg);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

void pgfx_create(char *db, size_t dbsz, char *uri, size_t urisz)
{
	static int n;
	snprintf(db, dbsz, "allot_u%d_%d", (int)getpid(), n++);
	char sql[128];
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
	pgfx_admin_exec(sql);
	/* The server's URI with the new database: dbname given as a parameter
	 * after the path's (libpq takes the last one). */
	snprintf(uri, urisz, "%s%sdbname=%s", pgfx_server(), strchr(pgfx_server(), '?') ? "&" : "?",
		 db);
}

void pgfx_drop(const char *db)
{
	char sql[128];
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
	pgfx_admin_exec(sql);
}
