/* sqlite_admin.c — the SQLite store's admin rows: API keys, charters and
 * the audit log (PostgreSQL's: store/pg_admin.c).  Every admin action and
 * its audit entry (and the entry's log leaf) commit in one transaction
 * (sq_write1, sq_write_end in store/sqlite.c); a constraint is refused as
 * ALLOT_E_CONFLICT and nothing is written when anything fails. */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

allot_err sq_key_insert(struct store *st_, const struct api_key *k,
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

allot_err sq_key_find_by_hash(struct store *st_, const uint8_t hash[32],
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

allot_err sq_key_revoke(struct store *st_, const char *id, int64_t at,
			const struct audit_entry *audit)
{
	static const char sql[] =
		"UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL";
	struct key_revocation r = {id, at};
	return sq_write1((struct sqlite_store *)st_, sql, bind_key_revocation, &r, audit,
			 "key revoke", true);
}

allot_err sq_key_count_active(struct store *st_, const char *role, int64_t *count)
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

allot_err sq_key_list(struct store *st_, void (*fn)(void *ctx, const struct api_key *k),
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

allot_err sq_charter_apply(struct store *st_, const struct charter_row *r,
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

allot_err sq_charter_latest(struct store *st_, struct charter_row *out)
{
	return sq_charter_read((struct sqlite_store *)st_, 0, out);
}

allot_err sq_charter_get(struct store *st_, int64_t version, struct charter_row *out)
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

allot_err sq_charter_history(struct store *st_,
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

allot_err sq_audit_append(struct store *st_, const struct audit_entry *e)
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

allot_err sq_audit_list(struct store *st_, int64_t after_id, int64_t limit,
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
