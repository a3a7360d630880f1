/* sqfx.h — a SQLite store of the test's own in a temporary directory (the
 * SQLite counterpart of pgfx.h), as a cmocka fixture. */
#ifndef ALLOT_TESTS_SQFX_H
#define ALLOT_TESTS_SQFX_H

struct store;

struct sqfx {
	char dir[64];      /* the directory (support/tmpdir.h) */
	char db[96];       /* dir/t.db */
	struct store *st;  /* store_sqlite_open(db); a test may close and open it again */
};

/* cmocka set-up: *state = a struct sqfx (from malloc) with the store open
 * on a new database.  Fails the test on any error. */
int sqfx_setup(void **state);
/* cmocka tear-down: closes the store (if open), removes the directory,
 * frees it. */
int sqfx_teardown(void **state);

#endif
