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

PGconn *pgfx_connect(const char *uri)
{
	PGconn *c = NULL;
	char msg[512];
	if (pg_connect(uri, &c, msg, sizeof msg))
		fail_msg("pg_connect: %s", msg);
	return c;
}

void pgfx_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

void pgfx_admin_exec(const char *sql)
{
	PGconn *c = pgfx_connect(pgfx_server());
	pgfx_exec(c, sql);
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

int pgfx_setup(void **state)
{
	*state = NULL;
	if (!pgfx_server())
		return 0;
	struct pgfx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	pgfx_create(f->db, sizeof f->db, f->uri, sizeof f->uri);
	char msg[512] = "";
	if (store_pg_open(f->uri, &f->st, msg, sizeof msg))
		fail_msg("store_pg_open: %s", msg);
	f->ps = (struct pg_store *)f->st;
	*state = f;
	return 0;
}

int pgfx_teardown(void **state)
{
	struct pgfx *f = *state;
	if (!f)
		return 0;
	store_close(f->st);
	pgfx_drop(f->db);
	free(f);
	return 0;
}

void pgfx_note_skips(const char *test)
{
	if (!pgfx_server())
		fprintf(stderr, "%s: ALLOT_TEST_PG_URI is not set (make unit and make test set it to "
				"a throwaway cluster when PostgreSQL's initdb is installed): the "
				"PostgreSQL tests are skipped\n", test);
}
