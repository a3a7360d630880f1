/* dblock.c — the exclusive lock on a database's "<db>.lock" file, or a
 * PostgreSQL database's owner lock (store/pg_owner.c). */
#include "daemon/dblock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "store/store.h"

/* The holder's line: pid, host (at most HOST_NAME_MAX), time, owner name;
 * a refused process reads at most this much of it. */
#define DBLOCK_LINE_MAX 512

struct dblock {
	int fd;                 /* open for the lock's whole life */
	char path[PATH_MAX];
	struct store_owner *pg; /* a PostgreSQL database's owner lock instead */
};

bool dblock_applies(const char *db)
{
	return db && *db && strcmp(db, ":memory:") != 0 && strncmp(db, "postgres://", 11) != 0 &&
	       strncmp(db, "postgresql://", 13) != 0;
}

bool dblock_needed(const char *db) { return dblock_applies(db) || store_uri_is_pg(db); }

/* The holder's line as read from fd, printable and without its newline. */
static void holder_line(int fd, char *out, size_t outsz)
{
	char buf[DBLOCK_LINE_MAX];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0) {
		snprintf(out, outsz, "a process that has not written its name yet");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	snprintf(out, outsz, "%s", buf);
}

/* Writes "pid N on host H since T (what)\n" over the file's contents.  The
 * line only informs a refused process; failing to write it is no error. */
static void holder_write(int fd, const char *path, const char *what)
{
	char host[256] = "";
	char ts[TIME_FMT_MAX];
	char line[DBLOCK_LINE_MAX];
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "?");
	host[sizeof host - 1] = '\0';
	int n = snprintf(line, sizeof line, "pid %ld on host %s since %s (%s)\n", (long)getpid(),
			 host, time_format_rfc3339(time_now_us(), ts), what);
	if (n < 0 || (size_t)n >= sizeof line)
		return;
	if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n)
		log_warn("cannot write the holder's line into %s", path);
}

allot_err dblock_acquire(const char *db, const char *what, struct dblock **out, char *msg,
			 size_t msgsz)
{
	if (!dblock_needed(db)) {
		snprintf(msg, msgsz, "cannot lock \"%s\": not a database file path", db ? db : "");
		return ALLOT_E_INVALID;
	}
	struct dblock *l = calloc(1, sizeof *l);
	if (!l)
		return ALLOT_E_NOMEM;
	l->fd = -1;
	allot_err e = ALLOT_E_IO;
	if (store_uri_is_pg(db)) {
		/* the URI may hold a password: it is never printed */
		snprintf(l->path, sizeof l->path, "the PostgreSQL database's owner lock");
		if ((e = store_pg_owner_acquire(db, what, &l->pg, msg, msgsz)))
			goto fail;
		*out = l;
		return ALLOT_OK;
	}
	if ((size_t)snprintf(l->path, sizeof l->path, "%s%s", db, DBLOCK_SUFFIX) >= sizeof l->path) {
		snprintf(msg, msgsz, "database path too long: %s", db);
		e = ALLOT_E_INVALID;
		goto fail;
	}
	/* O_NOFOLLOW: a symbolic link planted at the lock's name is refused
	 * rather than followed to a file someone else chose. */
	l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (l->fd < 0) {
		snprintf(msg, msgsz, "cannot open the database lock file %s: %s", l->path,
			 errno == ELOOP ? "it is a symbolic link" : strerror(errno));
		goto fail;
	}
	struct stat sb;
	if (fstat(l->fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(msg, msgsz, "the database lock file %s is not a regular file", l->path);
		goto fail;
	}
	if (flock(l->fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			char who[DBLOCK_LINE_MAX];
			holder_line(l->fd, who, sizeof who);
			snprintf(msg, msgsz,
				 "database %s is in use by another process: %s (lock file %s); "
				 "one process owns a database",
				 db, who, l->path);
			e = ALLOT_E_CONFLICT;
		} else {
			snprintf(msg, msgsz, "cannot lock %s: %s", l->path, strerror(errno));
		}
		goto fail;
	}
	/* Created 0600 above; an older file, or an ACL default, may be wider. */
	if ((sb.st_mode & 0777) != 0600 && fchmod(l->fd, 0600) < 0) {
		snprintf(msg, msgsz, "cannot make %s mode 0600: %s", l->path, strerror(errno));
		goto fail;
	}
	holder_write(l->fd, l->path, what);
	*out = l;
	return ALLOT_OK;
fail:
	dblock_release(l);
	return e;
}

void dblock_release(struct dblock *l)
{
	if (!l)
		return;
	/* Closing the descriptor drops the lock; the file stays, with the
	 * last holder's line (a stale line is harmless: only a held lock
	 * refuses). */
	if (l->fd >= 0)
		close(l->fd);
	store_pg_owner_release(l->pg);
	free(l);
}

const char *dblock_path(const struct dblock *l) { return l->path; }
