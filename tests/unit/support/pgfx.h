/* pgfx.h — a throwaway PostgreSQL database per test (tests of the
 * PostgreSQL store): the server is ALLOT_TEST_PG_URI, which `make unit`
 * sets to a cluster of its own (scripts/with-pg.sh). */
#ifndef ALLOT_TESTS_PGFX_H
#define ALLOT_TESTS_PGFX_H

#include <stddef.h>

/* ALLOT_TEST_PG_URI, or NULL when unset (the tests skip). */
const char *pgfx_server(void);
/* Runs sql on the server's default database (rows ignored); fails the
 * test on an error. */
void pgfx_admin_exec(const char *sql);
/* Creates a fresh database: OUT: its name in db and a URI for it in uri. */
void pgfx_create(char *db, size_t dbsz, char *uri, size_t urisz);
/* Drops it, closing any session left on it. */
void pgfx_drop(const char *db);

#endif
