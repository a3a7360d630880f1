/* sqlite.c — the SQLite store backend.
 *
 * One connection guarded by a mutex (SQLite serialises writers anyway); WAL,
 * synchronous=FULL (an acknowledged commit survives power loss) except for
 * ledger transactions begun DEFERRED (synchronous=NORMAL: in the log at
 * commit, on disk within the flush interval; store/sqlite_bg.c), no
 * checkpoints inside commits (the background thread runs them), foreign
 * keys, a busy timeout, defensive mode, and prepared statements only.
 * This file opens and closes the store and holds the transaction and
 * statement helpers the other store/sqlite_*.c files share (sqlite_int.h);
 * the admin rows (keys, charters, audit) are in store/sqlite_admin.c.
 */
#include "store/sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "store/migrate.h"

/* ms SQLite waits on a lock held by another process before SQLITE_BUSY. */
#define SQLITE_BUSY_TIMEOUT_MS 5000

allot_err sq_fail(struct sqlite_store *s, const char *what)
{
	snprintf(s->base.errmsg, sizeof s->base.errmsg, "%s: %s", what, sqlite3_errmsg(s->db));
	log_warnx("store: %s", s->base.errmsg);
	return ALLOT_E_STORE;
}

sqlite3_stmt *sq_prep(struct sqlite_store *s, const char *sql)
{
	/* Cache by SQL text pointer: every caller passes a static string. */
	for (size_t i = 0; i < s->nstmts; i++)
		if (s->stmts[i].sql == sql) {
			sqlite3_reset(s->stmts[i].st);
			sqlite3_clear_bindings(s->stmts[i].st);
			return s->stmts[i].st;
		}
	if (s->nstmts == SQ_MAX_STMTS)
		return NULL;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		sq_fail(s, "prepare");
		return NULL;
	}
	s->stmts[s->nstmts].sql = sql;
	s->stmts[s->nstmts].st = st;
	s->nstmts++;
	return st;
}

void sq_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v && *v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

void sq_copy_text(sqlite3_stmt *st, int col, char *dst, size_t dstsz)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(dst, dstsz, "%s", t ? (const char *)t : "");
}

allot_err sq_exec(struct sqlite_store *s, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		snprintf(s->base.errmsg, sizeof s->base.errmsg, "%s", err ? err : "exec failed");
		log_warnx("store: %s", s->base.errmsg);
		sqlite3_free(err);
		return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

/* One statement without results from the statement cache (transaction
 * control on the hot path: no parse per call, unlike sq_exec). */
allot_err sq_exec_cached(struct sqlite_store *s, const char *sql)
{
	sqlite3_stmt *st = sq_prep(s, sql);
	if (!st)
		return ALLOT_E_STORE;
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? ALLOT_OK : sq_fail(s, sql);
}

/* Does this thread hold an open write transaction (and the store lock)? */
static __thread int sq_tx_open;
bool sq_in_tx(void) { return sq_tx_open != 0; }

allot_err sq_begin(struct sqlite_store *s) { return sq_begin_sync(s, STORE_SYNC_FULL); }

allot_err sq_begin_sync(struct sqlite_store *s, enum store_sync sync)
{
	/* The level is a connection setting that cannot change inside a
	 * transaction: set it before BEGIN when the class differs from the
	 * last one.  NORMAL in WAL mode: the commit is written to the log but
	 * not fsynced (the flusher does that). */
	if (sync == STORE_SYNC_DEFERRED && !sq_bg_deferred_ok(s))
		sync = STORE_SYNC_FULL;
	int level = sync == STORE_SYNC_DEFERRED ? 1 : 2;
	if (level != s->sync_level) {
		static const char normal[] = "PRAGMA synchronous = NORMAL", full[] = "PRAGMA synchronous = FULL";
		if (sq_exec_cached(s, level == 1 ? normal : full))
			return ALLOT_E_STORE;
		s->sync_level = level;
	}
	static const char begin[] = "BEGIN IMMEDIATE";
	allot_err e = sq_exec_cached(s, begin);
	if (!e) {
		sq_tx_open = 1;
		s->tx_sync = sync;
	}
	return e;
}
allot_err sq_commit(struct sqlite_store *s)
{
	static const char commit[] = "COMMIT";
	int64_t t0 = time_mono_us();
	allot_err e = sq_exec_cached(s, commit);
	/* A FULL commit's time is its fsync's, near enough (the frames are
	 * written to the page cache first). */
	if (!e && s->tx_sync == STORE_SYNC_FULL)
		metrics_observe(MH_FSYNC_SECONDS, time_mono_us() - t0);
	if (!e) {
		sq_tx_open = 0;
		sq_bg_committed(s, s->tx_sync);
	}
	if (s->sums) {
		if (e)
			sumcache_rollback(s->sums);
		else
			sumcache_commit(s->sums);
	}
	sq_tlog_txn_end(s, e == ALLOT_OK); /* the log's tree state follows the commit */
	return e;
}
void sq_rollback(struct sqlite_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	sq_tx_open = 0;
	if (s->sums)
		sumcache_rollback(s->sums);
	sq_tlog_txn_end(s, false);
}

allot_err sq_audit_insert(struct sqlite_store *s, const struct audit_entry *e)
{
	static const char sql[] =
		"INSERT INTO audit_log(at, actor, action, target, before_sha256, after_sha256, detail) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	/* The entry and its log leaf commit together: own transaction if the
	 * caller has none. */
	bool own = sqlite3_get_autocommit(s->db);
	if (own && sq_begin(s))
		return ALLOT_E_STORE;
	allot_err r = ALLOT_E_STORE;
	sqlite3_stmt *st = sq_prep(s, sql);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, e->at);
	sqlite3_bind_text(st, 2, e->actor, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, e->action, -1, SQLITE_TRANSIENT);
	sq_bind_text(st, 4, e->target);
	sq_bind_text(st, 5, e->before_sha256);
	sq_bind_text(st, 6, e->after_sha256);
	sq_bind_text(st, 7, e->detail);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sq_fail(s, "audit insert");
		goto out;
	}
	if ((r = sq_tlog_append_audit(s, sqlite3_last_insert_rowid(s->db), e)))
		goto out;
	if (own)
		r = sq_commit(s);
out:
	if (r && own)
		sq_rollback(s);
	return r;
}

allot_err sq_write_end(struct sqlite_store *s, allot_err e, const struct audit_entry *audit)
{
	if (!e && audit && sq_audit_insert(s, audit))
		e = ALLOT_E_STORE;
	if (!e)
		e = sq_commit(s);
	if (e)
		sq_rollback(s);
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_write1(struct sqlite_store *s, const char *sql, sq_bind_fn bind, const void *arg,
		    const struct audit_entry *audit, const char *what, bool must_change)
{
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = sq_prep(s, sql);
	if (!st || sq_begin(s))
		goto out;
	bind(st, arg);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_CONSTRAINT) {
		e = ALLOT_E_CONFLICT;
		goto out;
	}
	if (rc != SQLITE_DONE) {
		sq_fail(s, what);
		goto out;
	}
	if (must_change && sqlite3_changes(s->db) == 0) {
		e = ALLOT_E_NOT_FOUND;
		goto out;
	}
	e = ALLOT_OK;
out:
	return sq_write_end(s, e, audit);
}

/* ---- migrations ------------------------------------------------------------ */

static int sq_user_version(struct sqlite_store *s)
{
	sqlite3_stmt *st;
	int v = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	return v;
}

static allot_err sq_migrate(struct sqlite_store *s, char *msg, size_t msgsz)
{
	int have = sq_user_version(s), latest = migrate_latest(migrations_sqlite);
	if (have < 0) {
		snprintf(msg, msgsz, "cannot read the schema version: %s", sqlite3_errmsg(s->db));
		return ALLOT_E_STORE;
	}
	if (have > latest) {
		snprintf(msg, msgsz,
			 "database schema version %d is newer than this allotd (knows up to %d); "
			 "refusing to start: upgrade allotd", have, latest);
		return ALLOT_E_STORE;
	}
	if (sq_exec(s, "CREATE TABLE IF NOT EXISTS schema_migrations("
		       "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"))
		goto fail;
	for (const struct migration *m = migrations_sqlite; m->version; m++) {
		if (m->version <= have)
			continue;
		char sql[160];
		if (sq_begin(s) || sq_exec(s, m->sql))
			goto fail;
		snprintf(sql, sizeof sql,
			 "INSERT INTO schema_migrations VALUES (%d, '%s', %lld); PRAGMA user_version = %d",
			 m->version, m->name, (long long)time_now_us(), m->version);
		if (sq_exec(s, sql) || sq_commit(s))
			goto fail;
		log_info("store: applied migration %s", m->name);
	}
	return ALLOT_OK;
fail:
	sq_rollback(s);
	snprintf(msg, msgsz, "migration failed: %s", s->base.errmsg);
	return ALLOT_E_STORE;
}

static int sq_schema_version(struct store *st_)
{
	struct sqlite_store *s = (struct sqlite_store *)st_;
	pthread_mutex_lock(&s->lock);
	int v = sq_user_version(s);
	pthread_mutex_unlock(&s->lock);
	return v;
}

static void sq_close(struct store *st_)
{
	struct sqlite_store *s = (struct sqlite_store *)st_;
	sq_bg_close(s); /* everything durable, the log truncated, the thread joined */
	for (size_t i = 0; i < s->nstmts; i++)
		sqlite3_finalize(s->stmts[i].st);
	sq_tlog_close(s);
	sqlite3_close(s->db);
	sumcache_free(s->sums);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.backup = sq_backup,
	.schema_version = sq_schema_version,
	SQ_ADMIN_OPS
	SQ_LEDGER_OPS
	SQ_TOKEN_OPS
	SQ_SETTLEQ_OPS
	SQ_REJECT_OPS
	SQ_OUTBOX_OPS
	SQ_TLOG_OPS
	SQ_BG_OPS
	.ledger_buckets = sq_ledger_buckets,
};

/* Read-only: query_only on, and the schema exactly this binary's (an older
 * one would need its migrations written, a newer one is not understood). */
static allot_err sq_ro_check(struct sqlite_store *s, const char *path, char *msg, size_t msgsz)
{
	if (sq_exec(s, "PRAGMA query_only = 1")) {
		snprintf(msg, msgsz, "cannot configure database %s: %s", path, s->base.errmsg);
		return ALLOT_E_STORE;
	}
	int have = sq_user_version(s), latest = migrate_latest(migrations_sqlite);
	if (have < 0) {
		snprintf(msg, msgsz, "cannot read database %s: %s", path, sqlite3_errmsg(s->db));
		return ALLOT_E_STORE;
	}
	if (have != latest) {
		snprintf(msg, msgsz, "database %s has schema version %d, this allotd reads %d "
			 "(%s)", path, have, latest, have > latest ? "upgrade allotd"
			 : "start allotd on it once to migrate it");
		return ALLOT_E_STORE;
	}
	return sq_tlog_open(s, msg, msgsz);
}

/* The database holds every balance and key hash: only its owner reads it.
 * A missing file is created empty (a valid SQLite database) with mode
 * 0600 before SQLite opens it; SQLite gives the -wal and -shm files the
 * database file's mode.  An older, wider file is reported, not changed. */
static allot_err sq_create_private(const char *path, char *msg, size_t msgsz)
{
	if (strcmp(path, ":memory:") == 0 || path[0] == '\0')
		return ALLOT_OK;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		/* The umask cannot widen 0600, but an inherited ACL default might. */
		int rc = fchmod(fd, 0600);
		close(fd);
		if (rc == 0)
			return ALLOT_OK;
		snprintf(msg, msgsz, "cannot make database %s mode 0600: %s", path, strerror(errno));
		return ALLOT_E_STORE;
	}
	struct stat sb;
	if (errno == EEXIST && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 077))
		log_warnx("database %s is readable by its group or others (mode %04o): run chmod 600 "
			  "on it and on its -wal and -shm files", path, (unsigned)(sb.st_mode & 07777));
	return ALLOT_OK; /* it exists, or SQLite says why it cannot be opened */
}

/* A read-only open (store_sqlite_open_readonly) reads a database at the
 * schema version of this binary as it is: no migrations, no transparency
 * log backfill, no background thread, PRAGMA query_only. */
static allot_err sq_open(const char *path, bool readonly, struct store **out, char *msg,
			 size_t msgsz)
{
	if (!readonly && sq_create_private(path, msg, msgsz))
		return ALLOT_E_STORE;
	struct sqlite_store *s = calloc(1, sizeof *s);
	if (!s)
		return ALLOT_E_NOMEM;
	s->base.ops = &store_sqlite_ops;
	/* Recursive: a ledger transaction holds the lock across the calls
	 * made inside it. */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	s->readonly = readonly;
	int rc = sqlite3_open_v2(path, &s->db,
				 (readonly ? SQLITE_OPEN_READONLY
					   : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
					 SQLITE_OPEN_NOMUTEX,
				 readonly ? NULL : sq_vfs_name());
	if (rc != SQLITE_OK) {
		snprintf(msg, msgsz, "cannot open database %s: %s", path,
			 s->db ? sqlite3_errmsg(s->db) : "out of memory");
		sqlite3_close(s->db);
		free(s);
		return ALLOT_E_STORE;
	}
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
	sqlite3_busy_timeout(s->db, SQLITE_BUSY_TIMEOUT_MS);
	if (readonly) {
		if (sq_ro_check(s, path, msg, msgsz))
			goto fail;
		s->sums = sumcache_new();
		*out = &s->base;
		return ALLOT_OK;
	}
	/* wal_autocheckpoint 0: checkpoints run in the background thread
	 * (store/sqlite_bg.c), never inside a commit. */
	if (sq_exec(s, "PRAGMA journal_mode = WAL") || sq_exec(s, "PRAGMA synchronous = FULL") ||
	    sq_exec(s, "PRAGMA foreign_keys = ON") || sq_exec(s, "PRAGMA wal_autocheckpoint = 0")) {
		snprintf(msg, msgsz, "cannot configure database %s: %s", path, s->base.errmsg);
		goto fail;
	}
	s->sync_level = 2;
	if (sq_migrate(s, msg, msgsz) || sq_tlog_open(s, msg, msgsz) ||
	    sq_bg_open(s, path, msg, msgsz))
		goto fail;
	s->sums = sumcache_new(); /* NULL: sums are read from the database */
	*out = &s->base;
	return ALLOT_OK;
fail:
	sq_bg_close(s);
	for (size_t i = 0; i < s->nstmts; i++)
		sqlite3_finalize(s->stmts[i].st);
	sq_tlog_close(s);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return ALLOT_E_STORE;
}

allot_err store_sqlite_open(const char *path, struct store **out, char *msg, size_t msgsz)
{
	return sq_open(path, false, out, msg, msgsz);
}

allot_err store_sqlite_open_readonly(const char *path, struct store **out, char *msg,
				     size_t msgsz)
{
	return sq_open(path, true, out, msg, msgsz);
}
