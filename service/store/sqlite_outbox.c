/* sqlite_outbox.c — the webhook outbox (SQLite backend):
 * migrations/sqlite/0014_webhook_outbox.sql, docs/WEBHOOKS.md (its
 * delivered events are pruned after the retention: sq_outbox_prune). */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(st_) ((struct sqlite_store *)(st_))

allot_err sq_outbox_put(struct store *st, const struct outbox_event *ev)
{
	static const char sql[] =
		"INSERT OR IGNORE INTO webhook_outbox(id, url, type, dedupe, body, created_us, "
		"next_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	struct sqlite_store *s = S(st);
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	/* Inside the caller's transaction when one is open on this thread
	 * (the lock is recursive): the event commits or rolls back with it. */
	bool own = !sq_in_tx();
	if (own && sq_begin(s))
		goto out;
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q)
		goto end;
	sqlite3_bind_text(q, 1, ev->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 2, ev->url, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 3, ev->type, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 4, ev->dedupe, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 5, ev->body, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 6, ev->created_us);
	sqlite3_bind_int64(q, 7, ev->next_us);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	e = rc == SQLITE_DONE ? ALLOT_OK : sq_fail(s, "webhook outbox insert");
end:
	if (own) {
		if (!e)
			e = sq_commit(s);
		if (e)
			sq_rollback(s);
	}
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_outbox_due(struct store *st, int64_t now, int max,
			void (*fn)(void *ctx, const struct outbox_event *ev), void *ctx)
{
	static const char sql[] =
		"SELECT seq, id, url, type, body, created_us, next_us, attempts FROM webhook_outbox "
		"WHERE delivered_us IS NULL AND next_us <= ?1 ORDER BY next_us, seq LIMIT ?2";
	struct sqlite_store *s = S(st);
	struct outbox_event *evs = calloc((size_t)(max > 0 ? max : 1), sizeof *evs);
	if (!evs)
		return ALLOT_E_NOMEM;
	allot_err e = ALLOT_E_STORE;
	int n = 0, rc = SQLITE_DONE; /* max 0: nothing due, no error */
	/* Read under the lock, delivered (fn: network) outside it. */
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = sq_prep(s, sql);
	if (q) {
		sqlite3_bind_int64(q, 1, now);
		sqlite3_bind_int(q, 2, max);
		while (n < max && (rc = sqlite3_step(q)) == SQLITE_ROW) {
			struct outbox_event *ev = &evs[n];
			ev->seq = sqlite3_column_int64(q, 0);
			sq_copy_text(q, 1, ev->id, sizeof ev->id);
			sq_copy_text(q, 2, ev->url, sizeof ev->url);
			sq_copy_text(q, 3, ev->type, sizeof ev->type);
			const char *b = (const char *)sqlite3_column_text(q, 4);
			ev->body = strdup(b ? b : "");
			ev->created_us = sqlite3_column_int64(q, 5);
			ev->next_us = sqlite3_column_int64(q, 6);
			ev->attempts = sqlite3_column_int(q, 7);
			if (!ev->body) {
				rc = SQLITE_NOMEM;
				break;
			}
			n++;
		}
		sqlite3_reset(q);
		e = rc == SQLITE_DONE || rc == SQLITE_ROW ? ALLOT_OK : sq_fail(s, "webhook outbox list");
	}
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < n; i++) {
		if (!e)
			fn(ctx, &evs[i]);
		free(evs[i].body);
	}
	free(evs);
	return e;
}

static allot_err outbox_update(struct sqlite_store *s, const char *sql, int64_t seq, int64_t a,
			       int64_t b, const char *text)
{
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	bool own = !sq_in_tx();
	if (own && sq_begin(s))
		goto out;
	sqlite3_stmt *q = sq_prep(s, sql);
	if (q) {
		sqlite3_bind_int64(q, 1, seq);
		sqlite3_bind_int64(q, 2, a);
		sqlite3_bind_int64(q, 3, b);
		sqlite3_bind_text(q, 4, text ? text : "", -1, SQLITE_TRANSIENT);
		int rc = sqlite3_step(q);
		sqlite3_reset(q);
		e = rc == SQLITE_DONE ? ALLOT_OK : sq_fail(s, "webhook outbox update");
	}
	if (own) {
		if (!e)
			e = sq_commit(s);
		if (e)
			sq_rollback(s);
	}
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_outbox_done(struct store *st, int64_t seq, int64_t at)
{
	return outbox_update(S(st), "UPDATE webhook_outbox SET delivered_us = ?2, "
			     "attempts = attempts + 1 + 0 * ?3, last_error = ?4 WHERE seq = ?1",
			     seq, at, 0, "");
}

allot_err sq_outbox_retry(struct store *st, int64_t seq, int attempts, int64_t next_us,
			  const char *error)
{
	return outbox_update(S(st), "UPDATE webhook_outbox SET attempts = ?2, next_us = ?3, "
			     "last_error = ?4 WHERE seq = ?1", seq, attempts, next_us, error);
}

allot_err sq_outbox_has(struct store *st, const char *dedupe, bool *has)
{
	struct sqlite_store *s = S(st);
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = sq_prep(s, "SELECT 1 FROM webhook_outbox WHERE dedupe = ?1 LIMIT 1");
	if (q) {
		sqlite3_bind_text(q, 1, dedupe, -1, SQLITE_TRANSIENT);
		int rc = sqlite3_step(q);
		sqlite3_reset(q);
		*has = rc == SQLITE_ROW;
		e = rc == SQLITE_ROW || rc == SQLITE_DONE ? ALLOT_OK : sq_fail(s, "webhook outbox read");
	}
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_outbox_prune(struct store *st, int64_t before_us, int max, int64_t *deleted)
{
	/* The newest charter event stays: its dedupe key is how a start finds
	 * out whether the newest charter's event was written (webhooks_open). */
	static const char sql[] =
		"DELETE FROM webhook_outbox WHERE seq IN (SELECT seq FROM webhook_outbox "
		"WHERE delivered_us IS NOT NULL AND delivered_us < ?1 AND dedupe <> "
		"COALESCE((SELECT dedupe FROM webhook_outbox WHERE type = 'charter' "
		"ORDER BY seq DESC LIMIT 1), '') ORDER BY seq LIMIT ?2)";
	struct sqlite_store *s = S(st);
	allot_err e = ALLOT_E_STORE;
	*deleted = 0;
	if (max <= 0)
		return ALLOT_E_INVALID;
	pthread_mutex_lock(&s->lock);
	bool own = !sq_in_tx();
	if (own && sq_begin(s))
		goto out;
	sqlite3_stmt *q = sq_prep(s, sql);
	if (q) {
		sqlite3_bind_int64(q, 1, before_us);
		sqlite3_bind_int(q, 2, max);
		int rc = sqlite3_step(q);
		sqlite3_reset(q);
		if (rc == SQLITE_DONE) {
			*deleted = sqlite3_changes(s->db);
			e = ALLOT_OK;
		} else {
			e = sq_fail(s, "webhook outbox prune");
		}
	}
	if (own) {
		if (!e)
			e = sq_commit(s);
		if (e) {
			sq_rollback(s);
			*deleted = 0;
		}
	}
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}
