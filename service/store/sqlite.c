/* sqlite.c — the SQLite store backend.
 *
 * One connection guarded by a mutex (SQLite serialises writers anyway); WAL,
 * synchronous=FULL (an acknowledged commit survives power loss) except for
 * ledger transactions begun DEFERRED (synchronous=NORMAL: in the log at
 * commit, on disk within the flush interval; store/sqlite_bg.c), no
 * checkpoints inside commits (the background thread runs them), foreign
 * keys, a busy timeout, defensive mode, and prepared statements only.
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

/* Ends a write begun under s->lock: on success the audit entry is added
 * and the transaction committed, otherwise (or if either fails) it is
 * rolled back; the lock is released.  Returns the outcome. */
static allot_err sq_write_end(struct sqlite_store *s, allot_err e,
			      const struct audit_entry *audit)
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

/* ---- keys ------------------------------------------------------------------ */

static void bind_key(sqlite3_stmt *st, const void *arg)
{
	const struct api_key *k = arg;
	sqlite3_bind_text(st, 1, k->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 2, k->secret_sha256, 32, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, k->role, -1, SQLITE_TRANSIENT);
	sq_bind_text(st, 4, k->institution);
	sq_bind_text(st, 5, k->provider);
	sq_bind_text(st, 6, k->label);
	sqlite3_bind_int64(st, 7, k->created_at);
	sqlite3_bind_text(st, 8, k->created_by, -1, SQLITE_TRANSIENT);
}

static allot_err sq_key_insert(struct store *st_, const struct api_key *k,
			       const struct audit_entry *audit)
{
	static const char sql[] =
		"INSERT INTO api_keys(id, secret_sha256, role, institution, provider, label, "
		"created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
	return sq_write1((struct sqlite_store *)st_, sql, bind_key, k, audit, "key insert", false);
}

/* Columns: id, role, institution, provider, label, created_at, created_by,
 * coalesce(revoked_at, 0), secret_sha256. */
#define KEY_COLUMNS \
	"id, role, institution, provider, label, created_at, created_by, " \
	"coalesce(revoked_at, 0), secret_sha256"

static void key_read(sqlite3_stmt *st, struct api_key *out)
{
	memset(out, 0, sizeof *out);
	sq_copy_text(st, 0, out->id, sizeof out->id);
	sq_copy_text(st, 1, out->role, sizeof out->role);
	sq_copy_text(st, 2, out->institution, sizeof out->institution);
	sq_copy_text(st, 3, out->provider, sizeof out->provider);
	sq_copy_text(st, 4, out->label, sizeof out->label);
	out->created_at = sqlite3_column_int64(st, 5);
	sq_copy_text(st, 6, out->created_by, sizeof out->created_by);
	out->revoked_at = sqlite3_column_int64(st, 7);
	if (sqlite3_column_bytes(st, 8) == 32)
		memcpy(out->secret_sha256, sqlite3_column_blob(st, 8), 32);
}

static allot_err sq_key_find_by_hash(struct store *st_, const uint8_t hash[32],
				     struct api_key *out)
{
	struct sqlite_store *s = (struct sqlite_store *)st_;
	static const char sql[] =
		"SELECT " KEY_COLUMNS " FROM api_keys WHERE secret_sha256 = ?1";
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = sq_prep(s, sql);
	if (!st)
		goto out;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		e = ALLOT_E_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		sq_fail(s, "key lookup");
		goto out;
	}
	key_read(st, out);
	e = ALLOT_OK;
out:
	if (st)
		sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return e;
}

struct key_revocation {
	const char *id;
	int64_t at;
};

static void bind_key_revocation(sqlite3_stmt *st, const void *arg)
{
	const struct key_revocation *r = arg;
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, r->at);
}

static allot_err sq_key_revoke(struct store *st_, const char *id, int64_t at,
			       const struct audit_entry *audit)
{
	static const char sql[] =
		"UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL";
	struct key_revocation r = {id, at};
	return sq_write1((struct sqlite_store *)st_, sql, bind_key_revocation, &r, audit,
			 "key revoke", true);
}

static allot_err sq_key_count_active(struct store *st_, const char *role, int64_t *count)
{
	struct sqlite_store *s = (struct sqlite_store *)st_;
	static const char sql[] =
		"SELECT count(*) FROM api_keys WHERE role = ?1 AND revoked_at IS NULL";
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = sq_prep(s, sql);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, role, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sq_fail(s, "key count");
		goto out;
	}
	*count = sqlite3_column_int64(st, 0);
	e = ALLOT_OK;
out:
	if (st)
		sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return e;
}

/* Steps st (prepared, bound; the lock held) and calls row(st, ctx) for
 * each row; resets st. */
static allot_err sq_each_row(struct sqlite_store *s, sqlite3_stmt *st,
			     void (*row)(sqlite3_stmt *st, void *ctx), void *ctx, const char *what)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		row(st, ctx);
	allot_err e = ALLOT_OK;
	if (rc != SQLITE_DONE) {
		sq_fail(s, what);
		e = ALLOT_E_STORE;
	}
	sqlite3_reset(st);
	return e;
}

struct key_each {
	void (*fn)(void *ctx, const struct api_key *k);
	void *ctx;
};

static void key_row(sqlite3_stmt *st, void *arg)
{
	struct key_each *ke = arg;
	struct api_key k;
	key_read(st, &k);
	ke->fn(ke->ctx, &k);
}

static allot_err sq_key_list(struct store *st_, void (*fn)(void *ctx, const struct api_key *k),
			     void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st_;
	static const char sql[] =
		"SELECT " KEY_COLUMNS " FROM api_keys ORDER BY created_at, id";
	struct key_each ke = {fn, ctx};
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = sq_prep(s, sql);
	allot_err e = st ? sq_each_row(s, st, key_row, &ke, "key list") : ALLOT_E_STORE;
	pthread_mutex_unlock(&s->lock);
	return e;
}

/* ---- charters ---------------------------------------------------------------- */

static allot_err sq_charter_apply(struct store *st_, const struct charter_row *r,
				  const struct audit_entry *audit)
{
	struct sqlite_store *s = (struct sqlite_store *)st_;
	static const char qmax[] = "SELECT coalesce(max(version), 0) FROM charters";
	static const char sql[] =
		"INSERT INTO charters(version, charter_id, text, sha256, author, applied_at, effective) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	if (sq_begin(s))
		goto out;
	sqlite3_stmt *st = sq_prep(s, qmax);
	if (!st || sqlite3_step(st) != SQLITE_ROW) {
		sq_fail(s, "charter version");
		goto out;
	}
	int64_t maxv = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (r->version <= maxv) {
		snprintf(s->base.errmsg, sizeof s->base.errmsg,
			 "charter version %lld does not increase the applied version %lld",
			 (long long)r->version, (long long)maxv);
		e = ALLOT_E_CONFLICT;
		goto out;
	}
	st = sq_prep(s, sql);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, r->version);
	sqlite3_bind_text(st, 2, r->charter_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 3, r->text, (int)r->text_len, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, r->sha256, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, r->author, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 6, r->applied_at);
	sqlite3_bind_int64(st, 7, r->effective);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sq_fail(s, "charter insert");
		goto out;
	}
	if (sq_tlog_append_charter(s, r))
		goto out;
	e = ALLOT_OK;
out:
	return sq_write_end(s, e, audit);
}

/* version 0: the newest. */
static allot_err sq_charter_read(struct sqlite_store *s, int64_t version,
				 struct charter_row *out)
{
	static const char q_latest[] =
		"SELECT version, charter_id, text, sha256, author, applied_at, effective "
		"FROM charters ORDER BY version DESC LIMIT 1";
	static const char q_one[] =
		"SELECT version, charter_id, text, sha256, author, applied_at, effective "
		"FROM charters WHERE version = ?1";
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = sq_prep(s, version ? q_one : q_latest);
	if (!st)
		goto out;
	if (version)
		sqlite3_bind_int64(st, 1, version);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		e = ALLOT_E_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		sq_fail(s, "charter latest");
		goto out;
	}
	memset(out, 0, sizeof *out);
	out->version = sqlite3_column_int64(st, 0);
	sq_copy_text(st, 1, out->charter_id, sizeof out->charter_id);
	out->text_len = (size_t)sqlite3_column_bytes(st, 2);
	out->text = malloc(out->text_len + 1);
	if (!out->text) {
		e = ALLOT_E_NOMEM;
		goto out;
	}
	if (out->text_len)
		memcpy(out->text, sqlite3_column_blob(st, 2), out->text_len);
	out->text[out->text_len] = '\0';
	sq_copy_text(st, 3, out->sha256, sizeof out->sha256);
	sq_copy_text(st, 4, out->author, sizeof out->author);
	out->applied_at = sqlite3_column_int64(st, 5);
	out->effective = sqlite3_column_int64(st, 6);
	e = ALLOT_OK;
out:
	if (st)
		sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return e;
}

static allot_err sq_charter_latest(struct store *st_, struct charter_row *out)
{
	return sq_charter_read((struct sqlite_store *)st_, 0, out);
}

static allot_err sq_charter_get(struct store *st_, int64_t version, struct charter_row *out)
{
	if (version <= 0)
		return ALLOT_E_NOT_FOUND;
	return sq_charter_read((struct sqlite_store *)st_, version, out);
}

struct charter_each {
	void (*fn)(void *ctx, const struct charter_row *r);
	void *ctx;
};

static void charter_hist_row(sqlite3_stmt *st, void *arg)
{
	struct charter_each *ce = arg;
	struct charter_row r;
	memset(&r, 0, sizeof r);
	r.version = sqlite3_column_int64(st, 0);
	sq_copy_text(st, 1, r.charter_id, sizeof r.charter_id);
	sq_copy_text(st, 2, r.sha256, sizeof r.sha256);
	sq_copy_text(st, 3, r.author, sizeof r.author);
	r.applied_at = sqlite3_column_int64(st, 4);
	r.effective = sqlite3_column_int64(st, 5);
	ce->fn(ce->ctx, &r);
}

static allot_err sq_charter_history(struct store *st_,
				    void (*fn)(void *ctx, const struct charter_row *r), void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st_;
	static const char sql[] =
		"SELECT version, charter_id, sha256, author, applied_at, effective "
		"FROM charters ORDER BY version";
	struct charter_each ce = {fn, ctx};
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = sq_prep(s, sql);
	allot_err e = st ? sq_each_row(s, st, charter_hist_row, &ce, "charter history")
			 : ALLOT_E_STORE;
	pthread_mutex_unlock(&s->lock);
	return e;
}

/* ---- audit ------------------------------------------------------------------- */

static allot_err sq_audit_append(struct store *st_, const struct audit_entry *e)
{
	struct sqlite_store *s = (struct sqlite_store *)st_;
	pthread_mutex_lock(&s->lock);
	allot_err r = sq_audit_insert(s, e);
	pthread_mutex_unlock(&s->lock);
	return r;
}

struct audit_each {
	void (*fn)(void *ctx, int64_t id, const struct audit_entry *a);
	void *ctx;
};

/* A text column, NULL when NULL (valid until the next step). */
static const char *col_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

static void audit_row(sqlite3_stmt *st, void *arg)
{
	struct audit_each *ae = arg;
	struct audit_entry a = {.at = sqlite3_column_int64(st, 1), .actor = col_text(st, 2),
				.action = col_text(st, 3), .target = col_text(st, 4),
				.before_sha256 = col_text(st, 5),
				.after_sha256 = col_text(st, 6), .detail = col_text(st, 7)};
	ae->fn(ae->ctx, sqlite3_column_int64(st, 0), &a);
}

static allot_err sq_audit_list(struct store *st_, int64_t after_id, int64_t limit,
			       void (*fn)(void *ctx, int64_t id, const struct audit_entry *a),
			       void *ctx)
{
	struct sqlite_store *s = (struct sqlite_store *)st_;
	static const char sql[] =
		"SELECT id, at, actor, action, target, before_sha256, after_sha256, detail "
		"FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2";
	struct audit_each ae = {fn, ctx};
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = sq_prep(s, sql);
	allot_err e = ALLOT_E_STORE;
	if (st) {
		sqlite3_bind_int64(st, 1, after_id);
		sqlite3_bind_int64(st, 2, limit);
		e = sq_each_row(s, st, audit_row, &ae, "audit list");
	}
	pthread_mutex_unlock(&s->lock);
	return e;
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
	.key_insert = sq_key_insert,
	.key_find_by_hash = sq_key_find_by_hash,
	.key_revoke = sq_key_revoke,
	.key_count_active = sq_key_count_active,
	.key_list = sq_key_list,
	.charter_apply = sq_charter_apply,
	.charter_latest = sq_charter_latest,
	.charter_get = sq_charter_get,
	.charter_history = sq_charter_history,
	.audit_append = sq_audit_append,
	.audit_list = sq_audit_list,
	.schema_version = sq_schema_version,
	SQ_LEDGER_OPS
	SQ_TOKEN_OPS
	SQ_SETTLEQ_OPS
	SQ_REJECT_OPS
	SQ_OUTBOX_OPS
	SQ_TLOG_OPS
	SQ_BG_OPS
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
