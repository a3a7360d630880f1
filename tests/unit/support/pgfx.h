/* pgfx.h — a throwaway PostgreSQL database per test (tests of the
 * PostgreSQL store): the server is ALLOT_TEST_PG_URI, which `make unit`
 * sets to a cluster of its own (scripts/with-pg.sh).  Without it the
 * server tests skip, saying so once (pgfx_note_skips). */
#ifndef ALLOT_TESTS_PGFX_H
#define ALLOT_TESTS_PGFX_H

#include <stddef.h>

#include <libpq-fe.h>

struct store;
struct pg_store;

/* ALLOT_TEST_PG_URI, or NULL when unset (the tests skip). */
const char *pgfx_server(void);
/* A connection to uri; fails the test when there is none. */
PGconn *pgfx_connect(const char *uri);
/* Runs sql on c (rows ignored); fails the test on an error. */
void pgfx_exec(PGconn *c, const char *sql);
/* Runs sql on the server's default database (rows ignored); fails the
 * test on an error. */
void pgfx_admin_exec(const char *sql);
/* Creates a fresh database: OUT: its name in db and a URI for it in uri. */
void pgfx_create(char *db, size_t dbsz, char *uri, size_t urisz);
/* Drops it, closing any session left on it. */
void pgfx_drop(const char *db);

/* The fixture of most store tests: a database of the test's own and the
 * PostgreSQL store opened (and so migrated) on it. */
struct pgfx {
	char db[64];         /* the database's name */
	char uri[1024];      /* the server's URI naming it */
	struct store *st;    /* store_pg_open(uri) */
	struct pg_store *ps; /* the same store, its PostgreSQL side (store/pg_int.h) */
};

/* cmocka set-up: *state = a struct pgfx (from malloc), or NULL when there
 * is no server (each test then PGFX_NEEDs it).  Fails on any error. */
int pgfx_setup(void **state);
/* cmocka tear-down: closes the store, drops the database, frees it. */
int pgfx_teardown(void **state);

/* A cmocka test run on the fixture. */
#define PGFX_TEST(fn) cmocka_unit_test_setup_teardown(fn, pgfx_setup, pgfx_teardown)

/* Skips a test whose set-up found no server (main said why). */
#define PGFX_NEED(f)            \
	do {                    \
		if (!(f))       \
			skip(); \
	} while (0)

/* For main: without a server, says once on stderr that test's server
 * tests (or cases) are skipped, and why. */
void pgfx_note_skips(const char *test);

#endif
