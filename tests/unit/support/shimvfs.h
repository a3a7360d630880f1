/* shimvfs.h — a pass-through SQLite VFS for tests, registered as the
 * default over the one that was: every call goes to the real VFS, after
 * the hook of its kind (if set) has seen it.  The store's own VFS
 * (store/sqlite_vfs.c) wraps whatever is the default when it first
 * registers, so a test that installs this first sees what the store's
 * VFS hands down. */
#ifndef ALLOT_TESTS_SHIMVFS_H
#define ALLOT_TESTS_SHIMVFS_H

#include <stdbool.h>

struct shimvfs_hooks {
	void (*on_sync)(bool wal); /* before each xSync; wal: of a -wal file */
	/* After on_sync: a result other than SQLITE_OK (0) is returned instead
	 * of syncing (an injected fsync error). */
	int (*fail_sync)(bool wal);
	/* Before each xWrite; a result other than SQLITE_OK (0) is returned
	 * instead of writing (an injected error). */
	int (*on_write)(bool wal);
};

/* Registers the shim as the default VFS, named name; fails the test on
 * error.  hooks (copied) may leave either hook NULL. */
void shimvfs_install(const char *name, const struct shimvfs_hooks *hooks);

#endif
