/* sqlite_backup.c — a consistent online copy of the database (`allot store
 * backup`, docs/OPERATIONS.md "Backup and restore").
 *
 * The copy is read through a second, read-only connection: SQLite's backup
 * API copies every page in one step, inside one read transaction, so the
 * copy is exactly the database as of one commit (WAL snapshot isolation),
 * while the daemon's own connection goes on committing.  The copy is a
 * self-contained database file (no -wal beside it), created 0600; an
 * existing file is never overwritten. */
#include "store/sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long opening the read transaction may wait for a lock, and how many
 * times a busy source is retried after that. */
#define BACKUP_BUSY_TIMEOUT_MS 5000
#define BACKUP_BUSY_TRIES 10

/* Creates path 0600, refusing one that exists (or a symbolic link). */
static allot_err create_exclusive(const char *path, char *msg, size_t msgsz)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(msg, msgsz, "cannot create %s: %s%s", path, strerror(errno),
			 errno == EEXIST ? " (a backup never overwrites a file)" : "");
		return errno == EEXIST ? ALLOT_E_CONFLICT : ALLOT_E_INVALID;
	}
	int rc = fchmod(fd, 0600);
	close(fd);
	if (rc) {
		snprintf(msg, msgsz, "cannot make %s mode 0600: %s", path, strerror(errno));
		unlink(path);
		return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

allot_err sq_backup(struct store *st, const char *path, char *msg, size_t msgsz)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	pthread_mutex_lock(&s->lock);
	const char *src_path = sqlite3_db_filename(s->db, "main");
	char src_copy[4096];
	snprintf(src_copy, sizeof src_copy, "%s", src_path ? src_path : "");
	pthread_mutex_unlock(&s->lock);
	if (!src_copy[0]) {
		snprintf(msg, msgsz, "an in-memory database cannot be backed up");
		return ALLOT_E_INVALID;
	}
	allot_err e = create_exclusive(path, msg, msgsz);
	if (e)
		return e;
	sqlite3 *src = NULL, *dst = NULL;
	int rc = sqlite3_open_v2(src_copy, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(msg, msgsz, "cannot open %s: %s", dst ? path : src_copy,
			 sqlite3_errmsg(dst ? dst : src));
		e = ALLOT_E_STORE;
		goto out;
	}
	sqlite3_busy_timeout(src, BACKUP_BUSY_TIMEOUT_MS);
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		snprintf(msg, msgsz, "cannot start the backup: %s", sqlite3_errmsg(dst));
		e = ALLOT_E_STORE;
		goto out;
	}
	/* -1: every page in one step, one read transaction: one snapshot. */
	int tries = 0;
	do
		rc = sqlite3_backup_step(b, -1);
	while ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && ++tries < BACKUP_BUSY_TRIES);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		snprintf(msg, msgsz, "the backup failed: %s", sqlite3_errstr(rc));
		e = ALLOT_E_STORE;
		goto out;
	}
	/* The copy carries the WAL flag of its source; make it one file. */
	if (sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(msg, msgsz, "cannot finish %s: %s", path, sqlite3_errmsg(dst));
		e = ALLOT_E_STORE;
	}
out:
	sqlite3_close(src);
	if (sqlite3_close(dst) != SQLITE_OK && !e) {
		snprintf(msg, msgsz, "cannot close %s", path);
		e = ALLOT_E_STORE;
	}
	if (e)
		unlink(path);
	return e;
}
