/* sqlite_settleq.c — the gate's durable retry queue (SQLite backend):
 * settlements that were served but could not be booked yet
 * (migrations/sqlite/0010_settle_queue.sql, gate/settleq.c). */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <string.h>

#define S(st_) ((struct sqlite_store *)(st_))

static void bind_pending(sqlite3_stmt *q, const void *arg)
{
	const struct settle_pending *p = arg;
	sqlite3_bind_text(q, 1, p->record_base, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 2, p->provider, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 3, p->institution, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 4, p->project, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 5, p->member, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 6, p->model, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 7, p->tokens_in);
	sqlite3_bind_int64(q, 8, p->tokens_out);
	sqlite3_bind_int64(q, 9, p->start_us);
	sqlite3_bind_int64(q, 10, p->end_us);
	sqlite3_bind_int64(q, 11, p->charter_version);
	sqlite3_bind_int64(q, 12, p->queued_us);
	sqlite3_bind_text(q, 13, p->reason, -1, SQLITE_TRANSIENT);
}

allot_err sq_settleq_put(struct store *st, struct settle_pending *p)
{
	static const char sql[] =
		"INSERT INTO settle_queue(record_base, provider, institution, project, member, "
		"model, tokens_in, tokens_out, start_us, end_us, charter_version, queued_us, reason) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
	struct sqlite_store *s = S(st);
	/* sq_write1 commits FULL (fsynced) in its own transaction: a queued
	 * settlement survives power loss from here on. */
	pthread_mutex_lock(&s->lock);
	allot_err e = sq_write1(s, sql, bind_pending, p, NULL, "settle queue insert", false);
	if (!e)
		p->id = sqlite3_last_insert_rowid(s->db);
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_settleq_delete(struct store *st, int64_t id)
{
	struct sqlite_store *s = S(st);
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = sq_prep(s, "DELETE FROM settle_queue WHERE id = ?1");
	if (q) {
		sqlite3_bind_int64(q, 1, id);
		int rc = sqlite3_step(q);
		sqlite3_reset(q);
		e = rc == SQLITE_DONE ? ALLOT_OK : sq_fail(s, "settle queue delete");
	}
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_settleq_list(struct store *st,
			  void (*fn)(void *ctx, const struct settle_pending *p), void *ctx)
{
	static const char sql[] =
		"SELECT id, record_base, provider, institution, project, member, model, tokens_in, "
		"tokens_out, start_us, end_us, charter_version, queued_us, reason "
		"FROM settle_queue ORDER BY id";
	struct sqlite_store *s = S(st);
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q)
		goto out;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct settle_pending p = {0};
		p.id = sqlite3_column_int64(q, 0);
		sq_copy_text(q, 1, p.record_base, sizeof p.record_base);
		sq_copy_text(q, 2, p.provider, sizeof p.provider);
		sq_copy_text(q, 3, p.institution, sizeof p.institution);
		sq_copy_text(q, 4, p.project, sizeof p.project);
		sq_copy_text(q, 5, p.member, sizeof p.member);
		sq_copy_text(q, 6, p.model, sizeof p.model);
		p.tokens_in = sqlite3_column_int64(q, 7);
		p.tokens_out = sqlite3_column_int64(q, 8);
		p.start_us = sqlite3_column_int64(q, 9);
		p.end_us = sqlite3_column_int64(q, 10);
		p.charter_version = sqlite3_column_int64(q, 11);
		p.queued_us = sqlite3_column_int64(q, 12);
		sq_copy_text(q, 13, p.reason, sizeof p.reason);
		fn(ctx, &p);
	}
	sqlite3_reset(q);
	e = rc == SQLITE_DONE ? ALLOT_OK : sq_fail(s, "settle queue list");
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}
