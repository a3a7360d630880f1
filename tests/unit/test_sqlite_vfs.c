/* test_sqlite_vfs.c — the store's VFS (store/sqlite_vfs.c), which gathers a
 * connection's -wal writes into one write per commit.
 *
 * Under it sits a shim, registered as the default VFS first, that counts
 * the writes reaching the -wal file:
 *   - a commit of many pages reaches the file in one write (two per page
 *     without the gathering);
 *   - a second connection sees every commit as soon as it returns, so the
 *     frames were in the file before the commit was made visible;
 *   - a transaction larger than the gathering buffer and the unix VFS's
 *     128 KiB write limit (spilled pages, re-read pages) comes back whole,
 *     the database passes integrity_check, and it survives a reopen;
 *   - a rolled-back transaction leaves nothing behind;
 *   - in exclusive locking mode (no wal-index barrier) a commit still
 *     reaches the file, in one write, before it returns;
 *   - a failed log write fails its commit, which neither connection then
 *     sees, and later commits go on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "store/sqlite_int.h"
#include "support/shimvfs.h"
#include "support/tmpdir.h"

/* ---- the counting shim under the store's VFS --------------------------------- */

static int wal_writes;
static int fail_wal_writes; /* inject SQLITE_IOERR_WRITE into the next ones */

static int count_write(bool wal)
{
	if (!wal)
		return SQLITE_OK;
	wal_writes++;
	if (fail_wal_writes) {
		fail_wal_writes--;
		return SQLITE_IOERR_WRITE;
	}
	return SQLITE_OK;
}

/* ---- fixture ----------------------------------------------------------------------- */

struct fx {
	char dir[64], db[96];
	sqlite3 *w;      /* through the store's VFS */
	sqlite3 *r;      /* a second connection, through the shim only */
};

static void exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void open_writer(struct fx *f)
{
	const char *vfs = sq_vfs_name();
	assert_non_null(vfs);
	assert_int_equal(sqlite3_open_v2(f->db, &f->w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 vfs),
			 SQLITE_OK);
	exec(f->w, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
		   "PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = 64");
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	tmpdir_make(f->dir, sizeof f->dir, "vfs");
	snprintf(f->db, sizeof f->db, "%s/t.db", f->dir);
	open_writer(f);
	exec(f->w, "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v BLOB);"
		   "CREATE INDEX t_k ON t(k); CREATE INDEX t_v ON t(v)");
	assert_int_equal(sqlite3_open_v2(f->db, &f->r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	sqlite3_close(f->r);
	sqlite3_close(f->w);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void assert_intact(sqlite3 *db)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

/* Inserts n rows of random keys and blobs of `size` bytes. */
static void insert_rows(sqlite3 *db, int n, int size)
{
	char sql[160];
	snprintf(sql, sizeof sql,
		 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d) "
		 "INSERT INTO t(k, v) SELECT hex(randomblob(16)), randomblob(%d) FROM c",
		 n, size);
	exec(db, sql);
}

/* ---- tests ------------------------------------------------------------------------- */

/* Each commit of many pages reaches the -wal file in one write, and the
 * second connection sees it as soon as the commit returns. */
static void test_one_write_per_commit(void **state)
{
	struct fx *f = *state;
	insert_rows(f->w, 200, 100); /* a few levels of index pages */
	int commits = 50, writes = 0;
	for (int i = 0; i < commits; i++) {
		int64_t before = one_int(f->r, "SELECT count(*) FROM t");
		int w0 = wal_writes;
		exec(f->w, "BEGIN");
		insert_rows(f->w, 4, 300); /* random keys: several pages per commit */
		exec(f->w, "COMMIT");
		assert_in_range(wal_writes - w0, 1, 1); /* < 124 KiB: one write */
		writes += wal_writes - w0;
		assert_int_equal(one_int(f->r, "SELECT count(*) FROM t"), before + 4);
	}
	int log, ckpt;
	assert_int_equal(sqlite3_wal_checkpoint_v2(f->w, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
						   &ckpt),
			 SQLITE_OK);
	print_message("%d commits: %d writes to the log, %d frames in it\n", commits, writes, log);
	assert_true(log >= 3 * commits); /* several pages a commit, one write each */
}

/* A transaction larger than the gathering buffer and the unix VFS's
 * 128 KiB write limit, with a page cache small enough to spill pages into
 * the log and read them back before the commit. */
static void test_large_transaction(void **state)
{
	struct fx *f = *state;
	exec(f->w, "BEGIN");
	insert_rows(f->w, 3000, 1000); /* about 3 MB, 64 pages of cache */
	exec(f->w, "UPDATE t SET v = zeroblob(700) WHERE id % 3 = 0"); /* re-read spilled pages */
	exec(f->w, "COMMIT");
	assert_int_equal(one_int(f->r, "SELECT count(*) FROM t"), 3000);
	assert_int_equal(one_int(f->r, "SELECT sum(length(v)) FROM t"), 2000 * 1000 + 1000 * 700);
	exec(f->w, "BEGIN");
	insert_rows(f->w, 500, 1000);
	exec(f->w, "ROLLBACK");
	assert_int_equal(one_int(f->w, "SELECT count(*) FROM t"), 3000);
	assert_intact(f->r);
	/* Closed without a checkpoint by the reader first, then reopened. */
	sqlite3_close(f->r);
	f->r = NULL;
	sqlite3_close(f->w);
	open_writer(f);
	assert_int_equal(one_int(f->w, "SELECT count(*) FROM t"), 3000);
	assert_int_equal(one_int(f->w, "SELECT sum(length(v)) FROM t"), 2000 * 1000 + 1000 * 700);
	assert_int_equal(sqlite3_open_v2(f->db, &f->r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
}

/* Exclusive locking mode keeps the wal-index in memory and calls no
 * barrier: a commit still reaches the file before it returns (its last
 * frame flushes), and only then. */
static void test_exclusive_mode(void **state)
{
	struct fx *f = *state;
	sqlite3_close(f->r);
	f->r = NULL;
	exec(f->w, "PRAGMA locking_mode = EXCLUSIVE");
	exec(f->w, "SELECT count(*) FROM t"); /* takes the lock */
	for (int i = 0; i < 20; i++) {
		int w0 = wal_writes;
		exec(f->w, "BEGIN");
		insert_rows(f->w, 3, 200);
		assert_int_equal(wal_writes, w0); /* nothing before the commit ... */
		exec(f->w, "COMMIT");
		assert_int_equal(wal_writes, w0 + 1); /* ... all of it in one write */
	}
	assert_int_equal(one_int(f->w, "SELECT count(*) FROM t"), 60);
	sqlite3_close(f->w);
	open_writer(f);
	assert_int_equal(one_int(f->w, "SELECT count(*) FROM t"), 60);
	assert_int_equal(sqlite3_open_v2(f->db, &f->r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
}

/* A log write that fails fails its commit: nothing of it is seen, by the
 * writer or a reader, and the next commits go on. */
static void test_write_error(void **state)
{
	struct fx *f = *state;
	insert_rows(f->w, 10, 100);
	fail_wal_writes = 1;
	exec(f->w, "BEGIN");
	insert_rows(f->w, 5, 300);
	char *err = NULL;
	int rc = sqlite3_exec(f->w, "COMMIT", NULL, NULL, &err);
	print_message("a failed log write: COMMIT says %d (%s)\n", rc, err ? err : "");
	sqlite3_free(err);
	assert_int_not_equal(rc, SQLITE_OK);
	assert_int_equal(fail_wal_writes, 0);
	if (!sqlite3_get_autocommit(f->w))
		exec(f->w, "ROLLBACK");
	assert_int_equal(one_int(f->r, "SELECT count(*) FROM t"), 10);
	assert_int_equal(one_int(f->w, "SELECT count(*) FROM t"), 10);
	insert_rows(f->w, 5, 300);
	assert_int_equal(one_int(f->r, "SELECT count(*) FROM t"), 15);
	assert_intact(f->r);
}

int main(void)
{
	shimvfs_install("test-count", &(struct shimvfs_hooks){.on_write = count_write});
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_write_per_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclusive_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
