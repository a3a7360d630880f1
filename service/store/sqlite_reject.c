/* sqlite_reject.c — rejected provider records (SQLite backend;
 * migrations/sqlite/0013_usage_rejections.sql, docs/LEDGER.md "Rejections
 * are final").  Every new record of a batch is looked up here after the
 * ledger, so while the table is empty (the usual case) the lookup is
 * skipped: rej_state remembers that it was empty when last read, and only
 * this process writes the database (daemon/dblock.c). */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <string.h>

#define S(st_) ((struct sqlite_store *)(st_))

/* Under s->lock.  True when the table may hold a row. */
static bool rej_maybe(struct sqlite_store *s)
{
	if (s->rej_state == 0) {
		sqlite3_stmt *q = sq_prep(s, "SELECT EXISTS (SELECT 1 FROM usage_rejections)");
		if (!q)
			return true; /* the lookup proper will report the error */
		if (sqlite3_step(q) == SQLITE_ROW)
			s->rej_state = sqlite3_column_int(q, 0) ? 2 : 1;
		sqlite3_reset(q);
	}
	return s->rej_state != 1;
}

static void row_of(sqlite3_stmt *q, int c, struct ledger_rejection *r)
{
	sq_copy_text(q, c, r->provider, sizeof r->provider);
	sq_copy_text(q, c + 1, r->record_id, sizeof r->record_id);
	r->has_seq = sqlite3_column_type(q, c + 2) != SQLITE_NULL;
	r->seq = r->has_seq ? sqlite3_column_int64(q, c + 2) : 0;
	if (sqlite3_column_bytes(q, c + 3) == 32)
		memcpy(r->sha256, sqlite3_column_blob(q, c + 3), 32);
	sq_copy_text(q, c + 4, r->reason, sizeof r->reason);
	r->received_us = sqlite3_column_int64(q, c + 5);
}

allot_err sq_reject_find(struct store *st, const char *provider, const char *record_id,
			 struct ledger_rejection *out)
{
	static const char sql[] =
		"SELECT id, provider, record_id, seq, sha256, reason, received_us "
		"FROM usage_rejections WHERE provider = ?1 AND record_id = ?2";
	struct sqlite_store *s = S(st);
	allot_err e = ALLOT_E_NOT_FOUND;
	pthread_mutex_lock(&s->lock);
	if (!rej_maybe(s))
		goto out;
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q) {
		e = ALLOT_E_STORE;
		goto out;
	}
	sqlite3_bind_text(q, 1, provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, record_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof *out);
		out->id = sqlite3_column_int64(q, 0);
		row_of(q, 1, out);
		e = ALLOT_OK;
	} else if (rc != SQLITE_DONE) {
		e = sq_fail(s, "rejection find");
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_reject_insert(struct store *st, const struct ledger_rejection *r)
{
	static const char sql[] =
		"INSERT INTO usage_rejections(provider, record_id, seq, sha256, reason, received_us) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
	struct sqlite_store *s = S(st);
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	if (s->readonly)
		goto out;
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q)
		goto out;
	sqlite3_bind_text(q, 1, r->provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, r->record_id, -1, SQLITE_STATIC);
	if (r->has_seq)
		sqlite3_bind_int64(q, 3, r->seq);
	else
		sqlite3_bind_null(q, 3);
	sqlite3_bind_blob(q, 4, r->sha256, 32, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, r->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, r->received_us);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	/* Set before the commit: were the transaction rolled back, the table
	 * is only looked up for nothing. */
	s->rej_state = 2;
	e = rc == SQLITE_DONE ? ALLOT_OK : sq_fail(s, "rejection insert");
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_reject_list(struct store *st, const char *provider, int64_t after, int64_t limit,
			 void (*fn)(void *ctx, const struct ledger_rejection *r), void *ctx)
{
	static const char sql[] =
		"SELECT id, provider, record_id, seq, sha256, reason, received_us "
		"FROM usage_rejections WHERE (?1 IS NULL OR provider = ?1) AND id > ?2 "
		"ORDER BY id LIMIT ?3";
	struct sqlite_store *s = S(st);
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q)
		goto out;
	if (provider)
		sqlite3_bind_text(q, 1, provider, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, 1);
	sqlite3_bind_int64(q, 2, after);
	sqlite3_bind_int64(q, 3, limit);
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct ledger_rejection r = {0};
		r.id = sqlite3_column_int64(q, 0);
		row_of(q, 1, &r);
		fn(ctx, &r);
	}
	e = rc == SQLITE_DONE ? ALLOT_OK : sq_fail(s, "rejection list");
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}
