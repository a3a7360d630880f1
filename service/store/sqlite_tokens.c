/* sqlite_tokens.c — minted-token log and revocations (SQLite backend). */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <string.h>

#define S(st_) ((struct sqlite_store *)(st_))

static void bind_token(sqlite3_stmt *q, const void *arg)
{
	const struct token_row *t = arg;
	sqlite3_bind_text(q, 1, t->jti, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 2, t->institution, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 3, t->project, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 4, t->member, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 5, t->kid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 6, t->iat);
	sqlite3_bind_int64(q, 7, t->exp);
	sqlite3_bind_text(q, 8, t->minted_by, -1, SQLITE_TRANSIENT);
}

allot_err sq_token_issued(struct store *st, const struct token_row *t,
			  const struct audit_entry *audit)
{
	static const char sql[] =
		"INSERT INTO tokens_issued(jti, institution, project, member, kid, iat, exp, minted_by) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
	return sq_write1(S(st), sql, bind_token, t, audit, "token insert", false);
}

static void bind_revocation(sqlite3_stmt *q, const void *arg)
{
	const struct token_revocation *r = arg;
	sq_bind_text(q, 1, r->jti);
	sq_bind_text(q, 2, r->institution);
	sq_bind_text(q, 3, r->member);
	if (r->member[0])
		sqlite3_bind_int64(q, 4, r->before_us);
	sqlite3_bind_int64(q, 5, r->revoked_at);
	sqlite3_bind_text(q, 6, r->revoked_by, -1, SQLITE_TRANSIENT);
}

allot_err sq_token_revoke(struct store *st, const struct token_revocation *r,
			  const struct audit_entry *audit)
{
	static const char sql[] =
		"INSERT INTO token_revocations(jti, institution, member, before_us, revoked_at, "
		"revoked_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
	return sq_write1(S(st), sql, bind_revocation, r, audit, "token revoke", false);
}

allot_err sq_token_revocations(struct store *st, int64_t after_id,
			       void (*fn)(void *ctx, const struct token_revocation *r), void *ctx)
{
	struct sqlite_store *s = S(st);
	static const char sql[] =
		"SELECT jti, institution, member, before_us, revoked_at, revoked_by, id "
		"FROM token_revocations WHERE id > ?1 ORDER BY id";
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q)
		goto out;
	sqlite3_bind_int64(q, 1, after_id);
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct token_revocation r = {0};
		sq_copy_text(q, 0, r.jti, sizeof r.jti);
		sq_copy_text(q, 1, r.institution, sizeof r.institution);
		sq_copy_text(q, 2, r.member, sizeof r.member);
		r.before_us = sqlite3_column_int64(q, 3);
		r.revoked_at = sqlite3_column_int64(q, 4);
		sq_copy_text(q, 5, r.revoked_by, sizeof r.revoked_by);
		r.id = sqlite3_column_int64(q, 6);
		fn(ctx, &r);
	}
	sqlite3_reset(q);
	e = rc == SQLITE_DONE ? ALLOT_OK : sq_fail(s, "revocations");
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_token_spent(struct store *st, const char *jti, int64_t *spent)
{
	struct sqlite_store *s = S(st);
	/* The prefix range "gate:<jti>:" of record_id within each provider, on
	 * the (provider, record_id) unique index: the recursive part hops from
	 * one provider to the next with an index seek each.  Called once per
	 * token by the gate (gate/gate.c keeps the sum) and by GET /v1/quotas/me. */
	static const char sql[] =
		"WITH RECURSIVE p(provider) AS ("
		" SELECT (SELECT provider FROM usage_records ORDER BY provider LIMIT 1)"
		" UNION ALL"
		" SELECT (SELECT provider FROM usage_records WHERE provider > p.provider"
		"         ORDER BY provider LIMIT 1) FROM p WHERE p.provider IS NOT NULL) "
		"SELECT coalesce(sum(u.charge_micro), 0) FROM p JOIN usage_records u"
		" ON u.provider = p.provider AND u.record_id >= ?1 AND u.record_id < ?2 "
		"WHERE u.source = 'gate'";
	char lo[STORE_ID_MAX + 8], hi[STORE_ID_MAX + 8];
	snprintf(lo, sizeof lo, "gate:%s:", jti);
	snprintf(hi, sizeof hi, "gate:%s;", jti); /* ';' follows ':' */
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q)
		goto out;
	sqlite3_bind_text(q, 1, lo, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 2, hi, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(q) == SQLITE_ROW) {
		*spent = sqlite3_column_int64(q, 0);
		e = ALLOT_OK;
	} else {
		sq_fail(s, "token spent");
	}
	sqlite3_reset(q);
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_token_find(struct store *st, const char *jti, struct token_row *out)
{
	struct sqlite_store *s = S(st);
	static const char sql[] =
		"SELECT institution, project, member, kid, iat, exp, minted_by FROM tokens_issued "
		"WHERE jti = ?1";
	allot_err e = ALLOT_E_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q)
		goto out;
	sqlite3_bind_text(q, 1, jti, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof *out);
		snprintf(out->jti, sizeof out->jti, "%s", jti);
		sq_copy_text(q, 0, out->institution, sizeof out->institution);
		sq_copy_text(q, 1, out->project, sizeof out->project);
		sq_copy_text(q, 2, out->member, sizeof out->member);
		sq_copy_text(q, 3, out->kid, sizeof out->kid);
		out->iat = sqlite3_column_int64(q, 4);
		out->exp = sqlite3_column_int64(q, 5);
		sq_copy_text(q, 6, out->minted_by, sizeof out->minted_by);
		e = ALLOT_OK;
	} else {
		e = rc == SQLITE_DONE ? ALLOT_E_NOT_FOUND : sq_fail(s, "token find");
	}
	sqlite3_reset(q);
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}
