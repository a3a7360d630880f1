/* shimvfs.c — see shimvfs.h. */
#include "shimvfs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>

struct sfile {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct */
	bool wal;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;
static sqlite3_io_methods shim_io;
static struct shimvfs_hooks hooks;

#define REAL(f) (((struct sfile *)(f))->real)
#define IS_WAL(f) (((struct sfile *)(f))->wal)

static int s_close(sqlite3_file *f)
{
	return REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
}
static int s_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, o);
}
static int s_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o)
{
	int rc = hooks.on_write ? hooks.on_write(IS_WAL(f)) : SQLITE_OK;
	return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xWrite(REAL(f), p, n, o);
}
static int s_truncate(sqlite3_file *f, sqlite3_int64 n)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int s_sync(sqlite3_file *f, int flags)
{
	if (hooks.on_sync)
		hooks.on_sync(IS_WAL(f));
	int rc = hooks.fail_sync ? hooks.fail_sync(IS_WAL(f)) : SQLITE_OK;
	return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int s_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int s_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int s_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int s_check(sqlite3_file *f, int *r) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int s_fcntl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int s_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int s_dev(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int s_shmmap(sqlite3_file *f, int i, int sz, int ext, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, p);
}
static int s_shmlock(sqlite3_file *f, int o, int n, int fl)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl);
}
static void s_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int s_shmunmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int s_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
{
	return REAL(f)->pMethods->xFetch(REAL(f), o, n, p);
}
static int s_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static int s_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
	(void)v;
	struct sfile *sf = (struct sfile *)f;
	sf->real = (sqlite3_file *)(sf + 1);
	sf->wal = (flags & SQLITE_OPEN_WAL) != 0;
	int rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out);
	sf->base.pMethods = sf->real->pMethods ? &shim_io : NULL;
	return rc;
}

void shimvfs_install(const char *name, const struct shimvfs_hooks *h)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	hooks = *h;
	shim_io = (sqlite3_io_methods){3, s_close, s_read, s_write, s_truncate, s_sync, s_size,
				       s_lock, s_unlock, s_check, s_fcntl, s_sector, s_dev,
				       s_shmmap, s_shmlock, s_shmbarrier, s_shmunmap, s_fetch,
				       s_unfetch};
	shim_vfs = *real_vfs;
	shim_vfs.szOsFile = (int)sizeof(struct sfile) + real_vfs->szOsFile;
	shim_vfs.zName = name;
	shim_vfs.pNext = NULL;
	shim_vfs.xOpen = s_open;
	assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}
