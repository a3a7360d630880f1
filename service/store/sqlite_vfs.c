/* sqlite_vfs.c — the store's VFS: SQLite's default one, except that a
 * connection's writes to its -wal file are gathered in memory and handed
 * to the kernel in one write per commit.
 *
 * SQLite appends a commit to the log as two writes per page (the 24-byte
 * frame header, then the page), so a settlement of about a dozen pages
 * cost some 25 pwrite calls, each finding and dirtying one or two page
 * cache pages of a file whose frames are not page-aligned.  Gathered, the
 * same bytes go down in one call.
 *
 * When the bytes reach the kernel matters for two guarantees:
 *   - readers (the checkpointer's connection, another process) must never
 *     see a commit whose frames are not yet in the file.  A writer makes a
 *     commit visible by writing the wal-index header twice around an
 *     xShmBarrier on the database file (readers accept the header only
 *     when both copies agree), so the barrier flushes first;
 *   - an answered request must survive kill -9: the commit returns after
 *     that barrier, so its frames are in the page cache before anyone is
 *     answered.  So that this does not rest on the barrier alone
 *     (exclusive locking mode keeps the wal-index in memory and calls
 *     none), the commit's last frame (its header carries the database
 *     size) also flushes as soon as its page is written.  Power loss is
 *     as before: xSync flushes, then syncs.
 * Anything else that touches the log through the same handle (a read, its
 * size, a truncation, a file control, closing) flushes first, and so does
 * a write that does not continue the gathered bytes, so the file sees the
 * same writes in the same order, only fewer calls.  A lost process loses
 * at most the unfinished commit in the buffer, which SQLite's checksummed
 * frames already treat as never written. */
#include "store/sqlite_int.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define VFS_NAME "allot"
#define WAL_GATHER_MAX (1u << 20) /* flushed beyond this many bytes */
/* The unix VFS writes at most 128 KiB - 1 bytes per call (it masks the
 * length with 0x1ffff and reports a short write as a full disk), so a
 * flush goes down in pieces of this size. */
#define WAL_WRITE_MAX ((128u - 4u) * 1024)
#define WAL_FILE_HDR 32  /* the -wal file's header; frames follow */
#define WAL_FRAME_HDR 24 /* a frame's header; its page follows */

struct vfile {
	sqlite3_file base;
	sqlite3_file *real;     /* the default VFS's file, right after this struct */
	bool is_wal;
	struct vfile *wal;      /* database file: its connection's open -wal file */
	struct vfile *db;       /* -wal file: its database file */
	bool commit_pending;    /* -wal file: the last write was a commit frame's header */
	unsigned char *buf;     /* -wal file: gathered bytes ... */
	size_t len, cap;
	sqlite3_int64 off;      /* ... starting at this offset */
};

static sqlite3_vfs *base_vfs;
static sqlite3_vfs allot_vfs;
static sqlite3_io_methods allot_io;
static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
static int vfs_rc = SQLITE_ERROR;

#define REAL(f) (((struct vfile *)(f))->real)

static int gather_flush(struct vfile *w)
{
	if (!w || !w->len)
		return SQLITE_OK;
	int rc = SQLITE_OK;
	for (size_t at = 0; at < w->len && rc == SQLITE_OK; at += WAL_WRITE_MAX) {
		size_t n = w->len - at < WAL_WRITE_MAX ? w->len - at : WAL_WRITE_MAX;
		rc = w->real->pMethods->xWrite(w->real, w->buf + at, (int)n,
					       w->off + (sqlite3_int64)at);
	}
	w->len = 0;
	return rc;
}

static int v_close(sqlite3_file *f)
{
	struct vfile *v = (struct vfile *)f;
	int rc = gather_flush(v);
	if (v->db)
		v->db->wal = NULL;
	if (v->wal)
		v->wal->db = NULL;
	free(v->buf);
	v->buf = NULL;
	int rc2 = v->real->pMethods ? v->real->pMethods->xClose(v->real) : SQLITE_OK;
	return rc ? rc : rc2;
}

static int v_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o)
{
	int rc = gather_flush((struct vfile *)f);
	return rc ? rc : REAL(f)->pMethods->xRead(REAL(f), p, n, o);
}

/* A frame header (written on its own, before its page) whose "database
 * size after commit" field is set: the last frame of a commit. */
static bool commit_header(const void *p, size_t len, sqlite3_int64 o)
{
	const unsigned char *h = p;
	return len == WAL_FRAME_HDR && o >= WAL_FILE_HDR && (h[4] | h[5] | h[6] | h[7]) != 0;
}

static int v_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o)
{
	struct vfile *v = (struct vfile *)f;
	if (!v->is_wal || n <= 0)
		return REAL(f)->pMethods->xWrite(REAL(f), p, n, o);
	size_t len = (size_t)n;
	/* The write after a commit frame's header is its page: once it is
	 * gathered, the commit is whole and goes down (besides the barrier,
	 * which a connection in exclusive locking mode never calls). */
	bool commit_done = v->commit_pending;
	v->commit_pending = commit_header(p, len, o);
	if (v->len && (o != v->off + (sqlite3_int64)v->len || v->len + len > WAL_GATHER_MAX ||
		       len > WAL_WRITE_MAX)) {
		int rc = gather_flush(v);
		if (rc)
			return rc;
	}
	if (len > WAL_WRITE_MAX)
		return REAL(f)->pMethods->xWrite(REAL(f), p, n, o);
	if (v->len + len > v->cap) {
		size_t cap = v->cap ? v->cap : 64 * 1024;
		while (cap < v->len + len)
			cap *= 2;
		unsigned char *nb = realloc(v->buf, cap);
		if (!nb) { /* no memory to gather: write through */
			int rc = gather_flush(v);
			return rc ? rc : REAL(f)->pMethods->xWrite(REAL(f), p, n, o);
		}
		v->buf = nb;
		v->cap = cap;
	}
	if (!v->len)
		v->off = o;
	memcpy(v->buf + v->len, p, len);
	v->len += len;
	return commit_done ? gather_flush(v) : SQLITE_OK;
}

static int v_truncate(sqlite3_file *f, sqlite3_int64 n)
{
	int rc = gather_flush((struct vfile *)f);
	return rc ? rc : REAL(f)->pMethods->xTruncate(REAL(f), n);
}

static int v_sync(sqlite3_file *f, int flags)
{
	int rc = gather_flush((struct vfile *)f);
	return rc ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int v_size(sqlite3_file *f, sqlite3_int64 *n)
{
	int rc = gather_flush((struct vfile *)f);
	return rc ? rc : REAL(f)->pMethods->xFileSize(REAL(f), n);
}

static int v_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int v_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int v_check(sqlite3_file *f, int *r)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}

static int v_fcntl(sqlite3_file *f, int op, void *a)
{
	struct vfile *v = (struct vfile *)f;
	if (op == SQLITE_FCNTL_VFSNAME) { /* report the stack, as SQLite's shims do */
		int rc = REAL(f)->pMethods->xFileControl(REAL(f), op, a);
		if (rc == SQLITE_OK && *(char **)a) {
			char *s = sqlite3_mprintf(VFS_NAME "/%z", *(char **)a);
			if (!s)
				return SQLITE_NOMEM;
			*(char **)a = s;
		}
		return rc;
	}
	int rc = gather_flush(v->is_wal ? v : v->wal);
	return rc ? rc : REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}

static int v_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int v_dev(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }

static int v_shmmap(sqlite3_file *f, int i, int sz, int ext, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, p);
}

/* A commit becomes visible to readers only after this barrier (see the
 * top of the file): its frames go to the kernel first. */
static void v_shmbarrier(sqlite3_file *f)
{
	/* Normally empty by now: a commit's last frame flushed it, and a failed
	 * write failed the commit.  The barrier cannot return an error, and
	 * SQLite is about to publish the frames: rather than let readers find
	 * a log without them, stop (nothing of this commit was answered, and
	 * recovery keeps every earlier one). */
	if (gather_flush(((struct vfile *)f)->wal) != SQLITE_OK) {
		log_warnx("store: cannot write the write-ahead log before publishing a commit; "
			  "stopping");
		abort();
	}
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int v_shmlock(sqlite3_file *f, int o, int n, int fl)
{
	int rc = gather_flush(((struct vfile *)f)->wal);
	return rc ? rc : REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl);
}

static int v_shmunmap(sqlite3_file *f, int del)
{
	int rc = gather_flush(((struct vfile *)f)->wal);
	return rc ? rc : REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int v_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
{
	int rc = gather_flush((struct vfile *)f);
	return rc ? rc : REAL(f)->pMethods->xFetch(REAL(f), o, n, p);
}

static int v_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static int v_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
		  int *out)
{
	(void)vfs;
	struct vfile *v = (struct vfile *)f;
	memset(v, 0, sizeof *v);
	v->real = (sqlite3_file *)(v + 1);
	v->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
	int rc = base_vfs->xOpen(base_vfs, name, v->real, flags, out);
	v->base.pMethods = v->real->pMethods ? &allot_io : NULL;
	if (rc == SQLITE_OK && v->is_wal && name) {
		sqlite3_file *db = sqlite3_database_file_object(name);
		if (db && db->pMethods == &allot_io) {
			v->db = (struct vfile *)db;
			v->db->wal = v;
		}
	}
	return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *n, int d)
{
	(void)vfs;
	return base_vfs->xDelete(base_vfs, n, d);
}
static int v_access(sqlite3_vfs *vfs, const char *n, int fl, int *r)
{
	(void)vfs;
	return base_vfs->xAccess(base_vfs, n, fl, r);
}
static int v_full(sqlite3_vfs *vfs, const char *n, int sz, char *o)
{
	(void)vfs;
	return base_vfs->xFullPathname(base_vfs, n, sz, o);
}
static int v_random(sqlite3_vfs *vfs, int n, char *o)
{
	(void)vfs;
	return base_vfs->xRandomness(base_vfs, n, o);
}
static int v_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return base_vfs->xSleep(base_vfs, us);
}
static int v_time(sqlite3_vfs *vfs, double *t)
{
	(void)vfs;
	return base_vfs->xCurrentTime(base_vfs, t);
}
static int v_lasterr(sqlite3_vfs *vfs, int n, char *o)
{
	(void)vfs;
	return base_vfs->xGetLastError(base_vfs, n, o);
}
static int v_time64(sqlite3_vfs *vfs, sqlite3_int64 *t)
{
	(void)vfs;
	return base_vfs->xCurrentTimeInt64(base_vfs, t);
}

static void vfs_register(void)
{
	base_vfs = sqlite3_vfs_find(NULL);
	if (!base_vfs || base_vfs->iVersion < 2 || !base_vfs->xCurrentTimeInt64)
		return;
	allot_io = (sqlite3_io_methods){3, v_close, v_read, v_write, v_truncate, v_sync, v_size,
					v_lock, v_unlock, v_check, v_fcntl, v_sector, v_dev,
					v_shmmap, v_shmlock, v_shmbarrier, v_shmunmap, v_fetch,
					v_unfetch};
	allot_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct vfile) + base_vfs->szOsFile,
		.mxPathname = base_vfs->mxPathname,
		.zName = VFS_NAME,
		.xOpen = v_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_full,
		.xRandomness = v_random,
		.xSleep = v_sleep,
		.xCurrentTime = v_time,
		.xGetLastError = v_lasterr,
		.xCurrentTimeInt64 = v_time64,
	};
	vfs_rc = sqlite3_vfs_register(&allot_vfs, 0);
}

const char *sq_vfs_name(void)
{
	pthread_once(&vfs_once, vfs_register);
	return vfs_rc == SQLITE_OK ? VFS_NAME : NULL;
}
