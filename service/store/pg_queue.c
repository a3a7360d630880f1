/* pg_queue.c — the PostgreSQL store's rejected provider records, the
 * gate's retry queue and the webhook outbox, with the semantics of
 * store/sqlite_reject.c, sqlite_settleq.c and sqlite_outbox.c.  The writes
 * that belong to a ledger transaction (a rejection, a booked settlement's
 * queue row, an event) run on that transaction's connection (pg_get
 * returns it), so they commit or roll back with it. */
#include "store/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PS(st_) ((struct pg_store *)(st_))

/* ---- rejected provider records ---------------------------------------------------- */

void pgq_reject_row(const PGresult *r, int i, struct ledger_rejection *out)
{
	memset(out, 0, sizeof *out);
	out->id = pg_col_i64(r, i, 0);
	pgs_col_text(r, i, 1, out->provider, sizeof out->provider);
	pgs_col_text(r, i, 2, out->record_id, sizeof out->record_id);
	out->has_seq = !PQgetisnull(r, i, 3);
	out->seq = pg_col_i64(r, i, 3);
	if (!pgs_col_bytes(r, i, 4, out->sha256, 32))
		memset(out->sha256, 0, 32);
	pgs_col_text(r, i, 5, out->reason, sizeof out->reason);
	out->received_us = pg_col_i64(r, i, 6);
}

static void reject_one(const PGresult *r, int i, void *ctx) { pgq_reject_row(r, i, ctx); }

allot_err pgq_reject_find(struct store *st, const char *provider, const char *record_id,
			  struct ledger_rejection *out)
{
	static const char sql[] = "SELECT " PGQ_REJECT_COLUMNS " FROM usage_rejections "
				  "WHERE provider = $1 AND record_id = $2";
	/* A batch's look-up answers first (pg_prefetch.c). */
	int h = pgp_find_rejection(PS(st), provider, record_id, out);
	if (h != PGP_ASK)
		return h == PGP_FOUND ? ALLOT_OK : ALLOT_E_NOT_FOUND;
	const char *v[] = {provider, record_id};
	int n = 0;
	allot_err e = pgs_query(PS(st), sql, 2, v, reject_one, out, &n);
	return e ? e : n ? ALLOT_OK : ALLOT_E_NOT_FOUND;
}

allot_err pgq_reject_insert(struct store *st, const struct ledger_rejection *rj)
{
	static const char sql[] =
		"INSERT INTO usage_rejections(provider, record_id, seq, sha256, reason, "
		"received_us) VALUES ($1, $2, $3, $4, $5, $6) "
		"ON CONFLICT (provider, record_id) DO NOTHING";
	char *hash = pgs_bytea(rj->sha256, 32), seq[24], at[24];
	if (!hash)
		return ALLOT_E_NOMEM;
	const char *v[] = {rj->provider, rj->record_id, rj->has_seq ? pg_i64(seq, rj->seq) : NULL,
			   hash, rj->reason, pg_i64(at, rj->received_us)};
	pgp_forget(PS(st), rj->provider, rj->record_id);
	allot_err e = pgs_write(PS(st), sql, 6, v, NULL, true, NULL);
	free(hash);
	/* No row: another node's batch refused the record meanwhile (the
	 * unique index waited for its commit; an error would abort the
	 * batch's transaction).  Any other constraint is a store error, as on
	 * SQLite. */
	return e == ALLOT_E_NOT_FOUND ? ALLOT_E_CONFLICT : e == ALLOT_E_CONFLICT ? ALLOT_E_STORE : e;
}

struct reject_each {
	void (*fn)(void *ctx, const struct ledger_rejection *r);
	void *ctx;
};

static void reject_row(const PGresult *r, int i, void *arg)
{
	struct reject_each *re = arg;
	struct ledger_rejection rj;
	pgq_reject_row(r, i, &rj);
	re->fn(re->ctx, &rj);
}

allot_err pgq_reject_list(struct store *st, const char *provider, int64_t after, int64_t limit,
			  void (*fn)(void *ctx, const struct ledger_rejection *r), void *ctx)
{
	static const char sql[] = "SELECT " PGQ_REJECT_COLUMNS " FROM usage_rejections "
				  "WHERE ($1::text IS NULL OR provider = $1) AND id > $2 "
				  "ORDER BY id LIMIT $3";
	char a[24], l[24];
	const char *v[] = {provider, pg_i64(a, after), limit < 0 ? NULL : pg_i64(l, limit)};
	struct reject_each re = {fn, ctx};
	return pgs_query(PS(st), sql, 3, v, reject_row, &re, NULL);
}

/* ---- the gate's retry queue ------------------------------------------------------------ */

allot_err pgq_settleq_put(struct store *st, struct settle_pending *p)
{
	/* One statement, committed (synchronous_commit on) before it returns:
	 * a queued settlement survives the node from here on. */
	static const char sql[] =
		"INSERT INTO settle_queue(record_base, provider, institution, project, member, "
		"model, tokens_in, tokens_out, start_us, end_us, charter_version, queued_us, reason) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id";
	char tin[24], tout[24], s[24], en[24], cv[24], q[24];
	const char *v[] = {p->record_base, p->provider, p->institution, p->project, p->member,
			   p->model, pg_i64(tin, p->tokens_in), pg_i64(tout, p->tokens_out),
			   pg_i64(s, p->start_us), pg_i64(en, p->end_us),
			   pg_i64(cv, p->charter_version), pg_i64(q, p->queued_us), p->reason};
	int64_t id = 0;
	allot_err e = pgs_write(PS(st), sql, 13, v, NULL, false, &id);
	if (!e)
		p->id = id;
	return e;
}

allot_err pgq_settleq_delete(struct store *st, int64_t id)
{
	static const char sql[] = "DELETE FROM settle_queue WHERE id = $1";
	char i[24];
	const char *v[] = {pg_i64(i, id)};
	return pgs_write(PS(st), sql, 1, v, NULL, false, NULL);
}

struct settle_each {
	void (*fn)(void *ctx, const struct settle_pending *p);
	void *ctx;
};

static void settle_row(const PGresult *r, int i, void *arg)
{
	struct settle_each *se = arg;
	struct settle_pending p = {0};
	p.id = pg_col_i64(r, i, 0);
	pgs_col_text(r, i, 1, p.record_base, sizeof p.record_base);
	pgs_col_text(r, i, 2, p.provider, sizeof p.provider);
	pgs_col_text(r, i, 3, p.institution, sizeof p.institution);
	pgs_col_text(r, i, 4, p.project, sizeof p.project);
	pgs_col_text(r, i, 5, p.member, sizeof p.member);
	pgs_col_text(r, i, 6, p.model, sizeof p.model);
	p.tokens_in = pg_col_i64(r, i, 7);
	p.tokens_out = pg_col_i64(r, i, 8);
	p.start_us = pg_col_i64(r, i, 9);
	p.end_us = pg_col_i64(r, i, 10);
	p.charter_version = pg_col_i64(r, i, 11);
	p.queued_us = pg_col_i64(r, i, 12);
	pgs_col_text(r, i, 13, p.reason, sizeof p.reason);
	se->fn(se->ctx, &p);
}

allot_err pgq_settleq_list(struct store *st,
			   void (*fn)(void *ctx, const struct settle_pending *p), void *ctx)
{
	static const char sql[] =
		"SELECT id, record_base, provider, institution, project, member, model, tokens_in, "
		"tokens_out, start_us, end_us, charter_version, queued_us, reason "
		"FROM settle_queue ORDER BY id";
	struct settle_each se = {fn, ctx};
	return pgs_query(PS(st), sql, 0, NULL, settle_row, &se, NULL);
}

/* ---- the webhook outbox ------------------------------------------------------------------ */

allot_err pgq_outbox_put(struct store *st, const struct outbox_event *ev)
{
	/* An event already there under its (dedupe, url), or its id, is
	 * skipped without failing the transaction (SQLite's INSERT OR IGNORE). */
	static const char sql[] =
		"INSERT INTO webhook_outbox(id, url, type, dedupe, body, created_us, next_us) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
	char cr[24], nx[24];
	const char *v[] = {ev->id, ev->url, ev->type, ev->dedupe, ev->body,
			   pg_i64(cr, ev->created_us), pg_i64(nx, ev->next_us)};
	return pgs_write(PS(st), sql, 7, v, NULL, false, NULL);
}

struct outbox_read {
	struct outbox_event *evs;
	int n, max;
	bool nomem;
};

static void outbox_row(const PGresult *r, int i, void *arg)
{
	struct outbox_read *rd = arg;
	if (rd->n >= rd->max || rd->nomem)
		return;
	struct outbox_event *ev = &rd->evs[rd->n];
	ev->seq = pg_col_i64(r, i, 0);
	pgs_col_text(r, i, 1, ev->id, sizeof ev->id);
	pgs_col_text(r, i, 2, ev->url, sizeof ev->url);
	pgs_col_text(r, i, 3, ev->type, sizeof ev->type);
	ev->body = strdup(PQgetvalue(r, i, 4));
	ev->created_us = pg_col_i64(r, i, 5);
	ev->next_us = pg_col_i64(r, i, 6);
	ev->attempts = (int)pg_col_i64(r, i, 7);
	if (!ev->body)
		rd->nomem = true;
	else
		rd->n++;
}

allot_err pgq_outbox_due(struct store *st, int64_t now, int max,
			 void (*fn)(void *ctx, const struct outbox_event *ev), void *ctx)
{
	static const char sql[] =
		"SELECT seq, id, url, type, body, created_us, next_us, attempts FROM webhook_outbox "
		"WHERE delivered_us IS NULL AND next_us <= $1 ORDER BY next_us, seq LIMIT $2";
	int cap = max > 0 ? max : 0;
	struct outbox_read rd = {.evs = calloc((size_t)(cap ? cap : 1), sizeof *rd.evs),
				 .max = cap};
	if (!rd.evs)
		return ALLOT_E_NOMEM;
	char t[24], m[24];
	const char *v[] = {pg_i64(t, now), pg_i64(m, cap)};
	/* Read, the connection given back, then delivered (fn: network). */
	allot_err e = pgs_query(PS(st), sql, 2, v, outbox_row, &rd, NULL);
	if (!e && rd.nomem)
		e = ALLOT_E_NOMEM;
	for (int i = 0; i < rd.n; i++) {
		if (!e)
			fn(ctx, &rd.evs[i]);
		free(rd.evs[i].body);
	}
	free(rd.evs);
	return e;
}

allot_err pgq_outbox_done(struct store *st, int64_t seq, int64_t at)
{
	static const char sql[] = "UPDATE webhook_outbox SET delivered_us = $2, "
				  "attempts = attempts + 1, last_error = '' WHERE seq = $1";
	char s[24], a[24];
	const char *v[] = {pg_i64(s, seq), pg_i64(a, at)};
	return pgs_write(PS(st), sql, 2, v, NULL, false, NULL);
}

allot_err pgq_outbox_retry(struct store *st, int64_t seq, int attempts, int64_t next_us,
			   const char *error)
{
	static const char sql[] = "UPDATE webhook_outbox SET attempts = $2, next_us = $3, "
				  "last_error = $4 WHERE seq = $1";
	char s[24], a[24], n[24];
	const char *v[] = {pg_i64(s, seq), pg_i64(a, attempts), pg_i64(n, next_us),
			   error ? error : ""};
	return pgs_write(PS(st), sql, 4, v, NULL, false, NULL);
}

static void has_row(const PGresult *r, int i, void *ctx)
{
	(void)r;
	(void)i;
	*(bool *)ctx = true;
}

allot_err pgq_outbox_has(struct store *st, const char *dedupe, bool *has)
{
	static const char sql[] = "SELECT 1 FROM webhook_outbox WHERE dedupe = $1 LIMIT 1";
	const char *v[] = {dedupe};
	*has = false;
	return pgs_query(PS(st), sql, 1, v, has_row, has, NULL);
}

allot_err pgq_outbox_prune(struct store *st, int64_t before_us, int max, int64_t *deleted)
{
	/* As sq_outbox_prune: the newest charter event stays (webhooks_open
	 * looks for its dedupe key at start).  One statement: it commits by
	 * itself, or with the calling thread's open transaction. */
	static const char sql[] =
		"DELETE FROM webhook_outbox WHERE seq IN (SELECT seq FROM webhook_outbox "
		"WHERE delivered_us IS NOT NULL AND delivered_us < $1 AND dedupe <> "
		"COALESCE((SELECT dedupe FROM webhook_outbox WHERE type = 'charter' "
		"ORDER BY seq DESC LIMIT 1), '') ORDER BY seq LIMIT $2)";
	struct pg_store *ps = PS(st);
	*deleted = 0;
	if (max <= 0)
		return ALLOT_E_INVALID;
	if (ps->readonly)
		return pgs_readonly(ps);
	PGconn *c;
	bool own;
	allot_err e = pg_get(ps, &c, &own);
	if (e)
		return e;
	char b[24], m[24];
	const char *v[] = {pg_i64(b, before_us), pg_i64(m, max)};
	PGresult *r = pg_run(ps, c, sql, 2, v, &e);
	if (r) {
		*deleted = strtoll(PQcmdTuples(r), NULL, 10);
		PQclear(r);
	}
	if (own)
		pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	return e;
}
