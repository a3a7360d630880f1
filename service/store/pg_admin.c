/* pg_admin.c — the PostgreSQL store's admin rows: API keys, charters, the
 * audit log and member tokens, with the same semantics as SQLite's
 * (store/sqlite.c, store/sqlite_tokens.c): every admin action and its
 * audit entry (and the entry's log leaf) in one transaction, a constraint
 * refused as ALLOT_E_CONFLICT, nothing written when anything fails. */
#include "store/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PS(st_) ((struct pg_store *)(st_))

/* NULL for an empty or absent text (SQLite's sq_bind_text). */
static const char *nz(const char *s) { return s && *s ? s : NULL; }

allot_err pgs_audit_insert(struct pg_store *ps, PGconn *c, const struct audit_entry *a)
{
	static const char sql[] =
		"INSERT INTO audit_log(at, actor, action, target, before_sha256, after_sha256, "
		"detail) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
	char at[24];
	const char *v[] = {pg_i64(at, a->at), a->actor, a->action, nz(a->target),
			   nz(a->before_sha256), nz(a->after_sha256), nz(a->detail)};
	allot_err e;
	PGresult *r = pg_run(ps, c, sql, 7, v, &e);
	if (!r)
		return e;
	int64_t id = PQntuples(r) == 1 ? pg_col_i64(r, 0, 0) : 0;
	PQclear(r);
	/* the entry's leaf, in the same transaction */
	return pg_tlog_append_audit(ps, c, id, a);
}

/* One write and its audit entry in one transaction (the calling thread's
 * when one is open, else its own; a lone statement without an entry
 * commits by itself).  ALLOT_E_CONFLICT on a constraint; with must_change,
 * ALLOT_E_NOT_FOUND when no row changed.  OUT: *id (may be NULL), the
 * first column of the first row returned. */
allot_err pgs_write(struct pg_store *ps, const char *sql, int n, const char *const *vals,
		    const struct audit_entry *audit, bool must_change, int64_t *id)
{
	if (ps->readonly)
		return pgs_readonly(ps);
	PGconn *c;
	bool own;
	allot_err e = pg_get(ps, &c, &own);
	if (e)
		return e;
	bool tx = own && audit;
	if (tx && (e = pg_begin(ps, c)))
		goto out;
	PGresult *r = pg_run(ps, c, sql, n, vals, &e);
	if (r) {
		if (must_change && strcmp(PQcmdTuples(r), "0") == 0)
			e = ALLOT_E_NOT_FOUND;
		else if (id && PQntuples(r) > 0)
			*id = pg_col_i64(r, 0, 0);
		PQclear(r);
	}
	if (!e && audit)
		e = pgs_audit_insert(ps, c, audit);
out:
	if (tx) {
		if (!e)
			e = pg_commit(ps, c);
		if (e)
			pg_rollback(ps, c);
	}
	if (own)
		pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	return e;
}

/* ---- keys ---------------------------------------------------------------------- */

allot_err pga_key_insert(struct store *st, const struct api_key *k,
			 const struct audit_entry *audit)
{
	static const char sql[] =
		"INSERT INTO api_keys(id, secret_sha256, role, institution, provider, label, "
		"created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
	char *hash = pgs_bytea(k->secret_sha256, 32), at[24];
	if (!hash)
		return ALLOT_E_NOMEM;
	const char *v[] = {k->id, hash, k->role, nz(k->institution), nz(k->provider),
			   nz(k->label), pg_i64(at, k->created_at), k->created_by};
	allot_err e = pgs_write(PS(st), sql, 8, v, audit, false, NULL);
	free(hash);
	return e;
}

#define KEY_COLUMNS \
	"id, role, institution, provider, label, created_at, created_by, " \
	"coalesce(revoked_at, 0), secret_sha256"

static void key_read(const PGresult *r, int i, struct api_key *out)
{
	memset(out, 0, sizeof *out);
	pgs_col_text(r, i, 0, out->id, sizeof out->id);
	pgs_col_text(r, i, 1, out->role, sizeof out->role);
	pgs_col_text(r, i, 2, out->institution, sizeof out->institution);
	pgs_col_text(r, i, 3, out->provider, sizeof out->provider);
	pgs_col_text(r, i, 4, out->label, sizeof out->label);
	out->created_at = pg_col_i64(r, i, 5);
	pgs_col_text(r, i, 6, out->created_by, sizeof out->created_by);
	out->revoked_at = pg_col_i64(r, i, 7);
	if (!pgs_col_bytes(r, i, 8, out->secret_sha256, 32))
		memset(out->secret_sha256, 0, 32);
}

static void key_one(const PGresult *r, int i, void *ctx) { key_read(r, i, ctx); }

allot_err pga_key_find_by_hash(struct store *st, const uint8_t hash[32],
			       struct api_key *out)
{
	static const char sql[] = "SELECT " KEY_COLUMNS " FROM api_keys WHERE secret_sha256 = $1";
	char *h = pgs_bytea(hash, 32);
	if (!h)
		return ALLOT_E_NOMEM;
	const char *v[] = {h};
	int n = 0;
	allot_err e = pgs_query(PS(st), sql, 1, v, key_one, out, &n);
	free(h);
	return e ? e : n ? ALLOT_OK : ALLOT_E_NOT_FOUND;
}

allot_err pga_key_revoke(struct store *st, const char *id, int64_t at,
			 const struct audit_entry *audit)
{
	static const char sql[] =
		"UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
	char a[24];
	const char *v[] = {id, pg_i64(a, at)};
	return pgs_write(PS(st), sql, 2, v, audit, true, NULL);
}

static void count_row(const PGresult *r, int i, void *ctx)
{
	*(int64_t *)ctx = pg_col_i64(r, i, 0);
}

allot_err pga_key_count_active(struct store *st, const char *role, int64_t *count)
{
	static const char sql[] =
		"SELECT count(*) FROM api_keys WHERE role = $1 AND revoked_at IS NULL";
	const char *v[] = {role};
	*count = 0;
	return pgs_query(PS(st), sql, 1, v, count_row, count, NULL);
}

struct key_each {
	void (*fn)(void *ctx, const struct api_key *k);
	void *ctx;
};

static void key_row(const PGresult *r, int i, void *arg)
{
	struct key_each *ke = arg;
	struct api_key k;
	key_read(r, i, &k);
	ke->fn(ke->ctx, &k);
}

allot_err pga_key_list(struct store *st, void (*fn)(void *ctx, const struct api_key *k),
		       void *ctx)
{
	/* Byte order of the ids, as SQLite's, whatever the database's collation. */
	static const char sql[] =
		"SELECT " KEY_COLUMNS " FROM api_keys ORDER BY created_at, id COLLATE \"C\"";
	struct key_each ke = {fn, ctx};
	return pgs_query(PS(st), sql, 0, NULL, key_row, &ke, NULL);
}

/* ---- charters ---------------------------------------------------------------------- */

static allot_err pga_charter_insert(struct pg_store *ps, PGconn *c, const struct charter_row *row)
{
	/* One applier at a time across nodes (readers go on): the version read
	 * below is still the newest when the row is inserted. */
	static const char lock[] = "LOCK TABLE charters IN SHARE ROW EXCLUSIVE MODE";
	static const char qmax[] = "SELECT coalesce(max(version), 0) FROM charters";
	static const char ins[] =
		"INSERT INTO charters(version, charter_id, text, sha256, author, applied_at, "
		"effective) VALUES ($1, $2, $3, $4, $5, $6, $7)";
	allot_err e;
	PGresult *r = pg_run(ps, c, lock, 0, NULL, &e);
	if (!r)
		return e;
	PQclear(r);
	if (!(r = pg_run(ps, c, qmax, 0, NULL, &e)))
		return e;
	int64_t maxv = PQntuples(r) ? pg_col_i64(r, 0, 0) : 0;
	PQclear(r);
	if (row->version <= maxv) {
		pgs_fail(ps, ALLOT_E_CONFLICT,
			 "charter version %lld does not increase the applied version %lld",
			 (long long)row->version, (long long)maxv);
		return ALLOT_E_CONFLICT;
	}
	char *text = pgs_bytea(row->text ? row->text : "", row->text ? row->text_len : 0);
	if (!text)
		return ALLOT_E_NOMEM;
	char ver[24], at[24], eff[24];
	const char *v[] = {pg_i64(ver, row->version), row->charter_id, text, row->sha256,
			   row->author, pg_i64(at, row->applied_at), pg_i64(eff, row->effective)};
	r = pg_run(ps, c, ins, 7, v, &e);
	free(text);
	if (!r)
		return e;
	PQclear(r);
	/* the charter's leaf, in the same transaction */
	return pg_tlog_append_charter(ps, c, row);
}

allot_err pga_charter_apply(struct store *st, const struct charter_row *row,
			    const struct audit_entry *audit)
{
	struct pg_store *ps = PS(st);
	if (ps->readonly)
		return pgs_readonly(ps);
	PGconn *c;
	bool own;
	allot_err e = pg_get(ps, &c, &own);
	if (e)
		return e;
	if (own && (e = pg_begin(ps, c)))
		goto out;
	if ((e = pga_charter_insert(ps, c, row)))
		goto out;
	if (audit)
		e = pgs_audit_insert(ps, c, audit);
out:
	return pgs_end(ps, c, own, e);
}

#define CHARTER_COLUMNS "version, charter_id, text, sha256, author, applied_at, effective"

struct charter_read {
	struct charter_row *out;
	allot_err e;
};

static void charter_row_read(const PGresult *r, int i, void *arg)
{
	struct charter_read *cr = arg;
	struct charter_row *out = cr->out;
	memset(out, 0, sizeof *out);
	out->version = pg_col_i64(r, i, 0);
	pgs_col_text(r, i, 1, out->charter_id, sizeof out->charter_id);
	out->text = (char *)pgs_col_blob(r, i, 2, &out->text_len);
	if (!out->text)
		cr->e = ALLOT_E_NOMEM;
	pgs_col_text(r, i, 3, out->sha256, sizeof out->sha256);
	pgs_col_text(r, i, 4, out->author, sizeof out->author);
	out->applied_at = pg_col_i64(r, i, 5);
	out->effective = pg_col_i64(r, i, 6);
}

allot_err pga_charter_latest(struct store *st, struct charter_row *out)
{
	static const char sql[] =
		"SELECT " CHARTER_COLUMNS " FROM charters ORDER BY version DESC LIMIT 1";
	struct charter_read cr = {out, ALLOT_OK};
	int n = 0;
	allot_err e = pgs_query(PS(st), sql, 0, NULL, charter_row_read, &cr, &n);
	return e ? e : cr.e ? cr.e : n ? ALLOT_OK : ALLOT_E_NOT_FOUND;
}

allot_err pga_charter_get(struct store *st, int64_t version, struct charter_row *out)
{
	static const char sql[] = "SELECT " CHARTER_COLUMNS " FROM charters WHERE version = $1";
	if (version <= 0)
		return ALLOT_E_NOT_FOUND;
	char ver[24];
	const char *v[] = {pg_i64(ver, version)};
	struct charter_read cr = {out, ALLOT_OK};
	int n = 0;
	allot_err e = pgs_query(PS(st), sql, 1, v, charter_row_read, &cr, &n);
	return e ? e : cr.e ? cr.e : n ? ALLOT_OK : ALLOT_E_NOT_FOUND;
}

struct charter_each {
	void (*fn)(void *ctx, const struct charter_row *r);
	void *ctx;
};

static void charter_hist_row(const PGresult *r, int i, void *arg)
{
	struct charter_each *ce = arg;
	struct charter_row row;
	memset(&row, 0, sizeof row);
	row.version = pg_col_i64(r, i, 0);
	pgs_col_text(r, i, 1, row.charter_id, sizeof row.charter_id);
	pgs_col_text(r, i, 2, row.sha256, sizeof row.sha256);
	pgs_col_text(r, i, 3, row.author, sizeof row.author);
	row.applied_at = pg_col_i64(r, i, 4);
	row.effective = pg_col_i64(r, i, 5);
	ce->fn(ce->ctx, &row);
}

allot_err pga_charter_history(struct store *st,
			      void (*fn)(void *ctx, const struct charter_row *r), void *ctx)
{
	static const char sql[] = "SELECT version, charter_id, sha256, author, applied_at, "
				  "effective FROM charters ORDER BY version";
	struct charter_each ce = {fn, ctx};
	return pgs_query(PS(st), sql, 0, NULL, charter_hist_row, &ce, NULL);
}

/* ---- audit ---------------------------------------------------------------------------- */

allot_err pga_audit_append(struct store *st, const struct audit_entry *a)
{
	struct pg_store *ps = PS(st);
	if (ps->readonly)
		return pgs_readonly(ps);
	PGconn *c;
	bool own;
	allot_err e = pg_get(ps, &c, &own);
	if (e)
		return e;
	/* The entry and its log leaf commit together: in the caller's
	 * transaction, else in one of its own. */
	if (!own || !(e = pg_begin(ps, c)))
		e = pgs_audit_insert(ps, c, a);
	return pgs_end(ps, c, own, e);
}

struct audit_each {
	void (*fn)(void *ctx, int64_t id, const struct audit_entry *a);
	void *ctx;
};

static void audit_row(const PGresult *r, int i, void *arg)
{
	struct audit_each *ae = arg;
	struct audit_entry a = {.at = pg_col_i64(r, i, 1), .actor = pgs_col_str(r, i, 2),
				.action = pgs_col_str(r, i, 3), .target = pgs_col_str(r, i, 4),
				.before_sha256 = pgs_col_str(r, i, 5),
				.after_sha256 = pgs_col_str(r, i, 6),
				.detail = pgs_col_str(r, i, 7)};
	ae->fn(ae->ctx, pg_col_i64(r, i, 0), &a);
}

allot_err pga_audit_list(struct store *st, int64_t after_id, int64_t limit,
			 void (*fn)(void *ctx, int64_t id, const struct audit_entry *a),
			 void *ctx)
{
	static const char sql[] =
		"SELECT id, at, actor, action, target, before_sha256, after_sha256, detail "
		"FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2";
	char a[24], l[24];
	/* a negative limit is no limit, as SQLite's LIMIT -1 (LIMIT NULL here) */
	const char *v[] = {pg_i64(a, after_id), limit < 0 ? NULL : pg_i64(l, limit)};
	struct audit_each ae = {fn, ctx};
	return pgs_query(PS(st), sql, 2, v, audit_row, &ae, NULL);
}

/* ---- member tokens ---------------------------------------------------------------------- */

allot_err pga_token_issued(struct store *st, const struct token_row *t,
			   const struct audit_entry *audit)
{
	static const char sql[] =
		"INSERT INTO tokens_issued(jti, institution, project, member, kid, iat, exp, "
		"minted_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
	char iat[24], exp[24];
	const char *v[] = {t->jti, t->institution, t->project, t->member, t->kid,
			   pg_i64(iat, t->iat), pg_i64(exp, t->exp), t->minted_by};
	return pgs_write(PS(st), sql, 8, v, audit, false, NULL);
}

allot_err pga_token_revoke(struct store *st, const struct token_revocation *rv,
			   const struct audit_entry *audit)
{
	static const char sql[] =
		"INSERT INTO token_revocations(jti, institution, member, before_us, revoked_at, "
		"revoked_by) VALUES ($1, $2, $3, $4, $5, $6)";
	char before[24], at[24];
	const char *v[] = {nz(rv->jti), nz(rv->institution), nz(rv->member),
			   rv->member[0] ? pg_i64(before, rv->before_us) : NULL,
			   pg_i64(at, rv->revoked_at), rv->revoked_by};
	return pgs_write(PS(st), sql, 6, v, audit, false, NULL);
}

struct revocation_each {
	void (*fn)(void *ctx, const struct token_revocation *r);
	void *ctx;
};

static void revocation_row(const PGresult *r, int i, void *arg)
{
	struct revocation_each *re = arg;
	struct token_revocation rv = {0};
	pgs_col_text(r, i, 0, rv.jti, sizeof rv.jti);
	pgs_col_text(r, i, 1, rv.institution, sizeof rv.institution);
	pgs_col_text(r, i, 2, rv.member, sizeof rv.member);
	rv.before_us = pg_col_i64(r, i, 3);
	rv.revoked_at = pg_col_i64(r, i, 4);
	pgs_col_text(r, i, 5, rv.revoked_by, sizeof rv.revoked_by);
	rv.id = pg_col_i64(r, i, 6);
	re->fn(re->ctx, &rv);
}

allot_err pga_token_revocations(struct store *st, int64_t after_id,
				void (*fn)(void *ctx, const struct token_revocation *r),
				void *ctx)
{
	static const char sql[] = "SELECT jti, institution, member, before_us, revoked_at, "
				  "revoked_by, id FROM token_revocations WHERE id > $1 ORDER BY id";
	char after[24];
	const char *v[] = {pg_i64(after, after_id)};
	struct revocation_each re = {fn, ctx};
	return pgs_query(PS(st), sql, 1, v, revocation_row, &re, NULL);
}

static void token_row_read(const PGresult *r, int i, void *arg)
{
	struct token_row *out = arg;
	pgs_col_text(r, i, 0, out->institution, sizeof out->institution);
	pgs_col_text(r, i, 1, out->project, sizeof out->project);
	pgs_col_text(r, i, 2, out->member, sizeof out->member);
	pgs_col_text(r, i, 3, out->kid, sizeof out->kid);
	out->iat = pg_col_i64(r, i, 4);
	out->exp = pg_col_i64(r, i, 5);
	pgs_col_text(r, i, 6, out->minted_by, sizeof out->minted_by);
}

allot_err pga_token_find(struct store *st, const char *jti, struct token_row *out)
{
	static const char sql[] = "SELECT institution, project, member, kid, iat, exp, minted_by "
				  "FROM tokens_issued WHERE jti = $1";
	const char *v[] = {jti};
	struct token_row t;
	memset(&t, 0, sizeof t);
	int n = 0;
	allot_err e = pgs_query(PS(st), sql, 1, v, token_row_read, &t, &n);
	if (e)
		return e;
	if (!n)
		return ALLOT_E_NOT_FOUND;
	snprintf(t.jti, sizeof t.jti, "%s", jti);
	*out = t;
	return ALLOT_OK;
}
