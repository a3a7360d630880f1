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
 *   - a rolled-back transaction leaves nothing behind.
 */
#include <ftw.h>
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

/* ---- the counting shim under the store's VFS --------------------------------- */

struct cfile {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct */
	bool wal;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs count_vfs;
static sqlite3_io_methods count_io;
static int wal_writes;

#define REAL(f) (((struct cfile *)(f))->real)

static int c_close(sqlite3_file *f)
{
	return REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
}
static int c_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o)
{ return REAL(f)->pMethods->xRead(REAL(f), p, n, o); }
static int c_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o)
{
	if (((struct cfile *)f)->wal)
		wal_writes++;
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, o);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 n)
{ return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int c_sync(sqlite3_file *f, int fl) { return REAL(f)->pMethods->xSync(REAL(f), fl); }
static int c_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int c_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int c_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int c_check(sqlite3_file *f, int *r) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int c_fcntl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int c_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int c_dev(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int c_shmmap(sqlite3_file *f, int i, int sz, int ext, void volatile **p)
{ return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, p); }
static int c_shmlock(sqlite3_file *f, int o, int n, int fl)
{ return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
static void c_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int c_shmunmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int c_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
{ return REAL(f)->pMethods->xFetch(REAL(f), o, n, p); }
static int c_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{ return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static int c_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
	(void)v;
	struct cfile *cf = (struct cfile *)f;
	cf->real = (sqlite3_file *)(cf + 1);
	cf->wal = (flags & SQLITE_OPEN_WAL) != 0;
	int rc = real_vfs->xOpen(real_vfs, name, cf->real, flags, out);
	cf->base.pMethods = cf->real->pMethods ? &count_io : NULL;
	return rc;
}

static void shim_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	count_io = (sqlite3_io_methods){3, c_close, c_read, c_write, c_truncate, c_sync, c_size,
					c_lock, c_unlock, c_check, c_fcntl, c_sector, c_dev,
					c_shmmap, c_shmlock, c_shmbarrier, c_shmunmap, c_fetch,
					c_unfetch};
	count_vfs = *real_vfs;
	count_vfs.szOsFile = (int)sizeof(struct cfile) + real_vfs->szOsFile;
	count_vfs.zName = "test-count";
	count_vfs.pNext = NULL;
	count_vfs.xOpen = c_open;
	assert_int_equal(sqlite3_vfs_register(&count_vfs, 1), SQLITE_OK);
}

/* ---- fixture ----------------------------------------------------------------------- */

struct fx {
	char dir[64], db[96];
	sqlite3 *w;      /* through the store's VFS */
	sqlite3 *r;      /* a second connection, through the shim only */
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

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
	snprintf(f->dir, sizeof f->dir, "/tmp/allot-test-vfs.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
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
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
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
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(f->r, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	/* Closed without a checkpoint by the reader first, then reopened. */
	sqlite3_close(f->r);
	f->r = NULL;
	sqlite3_close(f->w);
	open_writer(f);
	assert_int_equal(one_int(f->w, "SELECT count(*) FROM t"), 3000);
	assert_int_equal(one_int(f->w, "SELECT sum(length(v)) FROM t"), 2000 * 1000 + 1000 * 700);
	assert_int_equal(sqlite3_open_v2(f->db, &f->r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
}

int main(void)
{
	shim_install();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_write_per_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_transaction, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
