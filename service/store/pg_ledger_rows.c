/* pg_ledger_rows.c — usage_records rows in the PostgreSQL store: one read
 * into a ledger_row (pg_usage_row, ledger_find) and one written with its
 * log leaf (pg_record_insert, pg_rows_flush).  A record's leaf is kept in
 * its own row (leaf_index, leaf_hash: migration 0007), not as a
 * tlog_leaves row.  The transaction, bounds, buckets and sums are
 * pg_ledger.c's. */
#include "store/pg_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "crypto/digest.h"
#include "store/ledger_sql.h"

#define PS(st_) ((struct pg_store *)(st_))

/* A kind or source code the table's CHECK admits and this build does not
 * know (a newer migration's): a store error that names it. */
static allot_err unknown_code(struct pg_store *ps, const struct ledger_row *row,
			      const char *col, const char *code)
{
	pgs_fail(ps, ALLOT_E_STORE, "usage_records row %lld: %s code '%s' is not one this allotd knows",
		 (long long)row->row_id, col, code);
	return ALLOT_E_STORE;
}

allot_err pg_usage_row(struct pg_store *ps, const PGresult *r, int i, struct ledger_row *out)
{
	memset(out, 0, sizeof *out);
	struct usage_record *rec = &out->rec;
	out->row_id = pg_col_i64(r, i, 0);
	pgs_col_text(r, i, 1, rec->provider, sizeof rec->provider);
	pgs_col_text(r, i, 2, rec->record_id, sizeof rec->record_id);
	rec->has_seq = !PQgetisnull(r, i, 3);
	rec->seq = pg_col_i64(r, i, 3);
	/* kind and source as codes (migration 0009) */
	const char *k = ledger_sql_code_name("kind", PQgetvalue(r, i, 4));
	if (!k)
		return unknown_code(ps, out, "kind", PQgetvalue(r, i, 4));
	rec->kind = strcmp(k, "adjustment") == 0 ? RECORD_ADJUSTMENT
		    : strcmp(k, "void") == 0     ? RECORD_VOID
						 : RECORD_USAGE;
	const char *a = pgs_col_str(r, i, 5);
	rec->adjustment = !a ? ADJ_NONE
			  : strcmp(a, "credit") == 0 ? ADJ_CREDIT
			  : strcmp(a, "refund") == 0 ? ADJ_REFUND
						     : ADJ_DEBIT;
	pgs_col_text(r, i, 6, rec->supersedes, sizeof rec->supersedes);
	pgs_col_text(r, i, 7, rec->institution, sizeof rec->institution);
	pgs_col_text(r, i, 8, rec->project, sizeof rec->project);
	pgs_col_text(r, i, 9, rec->member, sizeof rec->member);
	pgs_col_text(r, i, 10, rec->resource, sizeof rec->resource);
	pgs_col_text(r, i, 11, rec->cls, sizeof rec->cls);
	pgs_col_text(r, i, 12, rec->model, sizeof rec->model);
	rec->quantity = pg_col_i64(r, i, 13);
	rec->start_us = pg_col_i64(r, i, 14);
	rec->end_us = pg_col_i64(r, i, 15);
	out->received_us = pg_col_i64(r, i, 16);
	out->book_us = pg_col_i64(r, i, 17);
	out->late = PQgetvalue(r, i, 18)[0] == 't';
	out->charter_version = pg_col_i64(r, i, 19);
	out->rate_micro = pg_col_i64(r, i, 20);
	out->charge_micro = pg_col_i64(r, i, 21);
	out->overage = PQgetvalue(r, i, 22)[0] == 't';
	const char *src = ledger_sql_code_name("source", PQgetvalue(r, i, 23));
	if (!src)
		return unknown_code(ps, out, "source", PQgetvalue(r, i, 23));
	out->from_gate = strcmp(src, "gate") == 0;
	bool sha = pgs_col_bytes(r, i, 25, rec->sha256, sizeof rec->sha256);
	size_t n = 0;
	uint8_t *canon = pgs_col_blob(r, i, 24, &n);
	if (!canon)
		return ALLOT_E_NOMEM;
	allot_err e = ALLOT_OK;
	if (n > 0) {
		rec->canonical = (char *)canon; /* NUL after its n bytes */
		rec->canonical_len = n;
	} else {
		free(canon); /* none stored: the sealed spelling, rebuilt from the fields */
		e = record_canonical_load(rec, NULL, 0);
	}
	/* none stored: the SHA-256 of the canonical bytes (migration 0007) */
	if (!e && !sha)
		digest_sha256(rec->canonical, rec->canonical_len, rec->sha256);
	return e;
}

allot_err pg_ledger_find(struct store *st, const char *provider, const char *record_id,
			 struct ledger_row *out)
{
	static const char q[] = "SELECT " PG_USAGE_COLS " FROM usage_records "
				"WHERE provider = $1 AND record_id = $2";
	struct pg_store *ps = PS(st);
	/* A batch's look-up answers first (pg_prefetch.c). */
	int h = pgp_find_row(ps, provider, record_id, out);
	if (h != PGP_ASK)
		return h == PGP_FOUND ? ALLOT_OK : ALLOT_E_NOT_FOUND;
	PGconn *c = NULL;
	bool own = false;
	allot_err e = pg_get(ps, &c, &own);
	if (e)
		return e;
	const char *v[] = {provider, record_id};
	PGresult *r = pg_run(ps, c, q, 2, v, &e);
	if (r) {
		e = PQntuples(r) != 1 ? ALLOT_E_NOT_FOUND : pg_usage_row(ps, r, 0, out);
		PQclear(r);
	}
	if (own)
		pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	return e;
}

/* The columns of one usage_records row with its leaf, in parameter order:
 * $1..$25 the record, $26 its leaf index, $27 its leaf's hash (both NULL
 * without a leaf). */
#define ROW_COLS \
	"provider, record_id, seq, kind, adjustment, supersedes, institution, project, " \
	"member, resource, class, model, quantity, start_us, end_us, received_us, book_us, " \
	"late, charter_version, rate_micro, charge_micro, overage, source, canonical, sha256, " \
	"leaf_index, leaf_hash"
#define ROW_NPARAMS 27
#define ROW_INSERT \
	"INSERT INTO usage_records(" ROW_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, " \
	"$10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27) " \
	"ON CONFLICT (provider, record_id) DO NOTHING RETURNING id"

/* The text of a row's parameters (hex: "\\x" and 2 n + 1 bytes). */
struct row_text {
	char *canon;    /* from malloc */
	char sha[2 + 64 + 1], lh[2 + 64 + 1];
	char seq[24], qty[24], su[24], eu[24], rcv[24], bk[24], cv[24], rate[24], chg[24], li[24];
	const char *v[ROW_NPARAMS];
};

static allot_err row_text(struct row_text *t, const struct ledger_row *row, int64_t leaf,
			  const uint8_t leaf_hash[32])
{
	const struct usage_record *r = &row->rec;
	/* the sealed spelling is kept as no bytes (docs/LEDGER.md, "Storage") */
	size_t clen = record_canonical_rebuilds(r) ? 0 : r->canonical_len;
	if (!(t->canon = malloc(2 * clen + 3)))
		return ALLOT_E_NOMEM;
	memcpy(t->canon, "\\x", 2);
	hex_encode(r->canonical, clen, t->canon + 2);
	/* the SHA-256 of the canonical bytes is kept as none (migration 0007) */
	uint8_t own[32];
	if (r->canonical)
		digest_sha256(r->canonical, r->canonical_len, own);
	bool sha = !r->canonical || memcmp(own, r->sha256, 32) != 0;
	memcpy(t->sha, "\\x", 2);
	hex_encode(r->sha256, 32, t->sha + 2);
	bool logged = leaf >= 0 && leaf_hash;
	memcpy(t->lh, "\\x", 2);
	if (logged)
		hex_encode(leaf_hash, 32, t->lh + 2);
	else
		t->lh[2] = '\0';
	const char *v[ROW_NPARAMS] = {
		r->provider, r->record_id, r->has_seq ? pg_i64(t->seq, r->seq) : NULL,
		ledger_sql_code("kind", record_kind_name(r->kind)), record_adjustment_name(r->adjustment),
		r->supersedes[0] ? r->supersedes : NULL, r->institution, r->project, r->member,
		r->resource, r->cls, r->model, pg_i64(t->qty, r->quantity),
		pg_i64(t->su, r->start_us), pg_i64(t->eu, r->end_us),
		pg_i64(t->rcv, row->received_us), pg_i64(t->bk, row->book_us), row->late ? "t" : "f",
		pg_i64(t->cv, row->charter_version), pg_i64(t->rate, row->rate_micro),
		pg_i64(t->chg, row->charge_micro), row->overage ? "t" : "f",
		ledger_sql_code("source", row->from_gate ? "gate" : "provider"), t->canon,
		sha ? t->sha : NULL,
		logged ? pg_i64(t->li, leaf) : NULL, logged ? t->lh : NULL};
	memcpy(t->v, v, sizeof v);
	return ALLOT_OK;
}

allot_err pg_record_insert(struct pg_store *ps, PGconn *c, struct ledger_row *row, int64_t leaf,
			   const uint8_t leaf_hash[32], const char *leaf_name)
{
	/* Without a leaf (the log switched off: benchmarks) leaf_index and
	 * leaf_hash are NULL; with one, the leaf is written with the row (and
	 * only when the row is). */
	static const char q[] = ROW_INSERT;
	(void)leaf_name; /* provider/record_id, read from the row (tlog_leaves_all) */
	struct row_text t;
	allot_err e = row_text(&t, row, leaf, leaf_hash);
	if (e)
		return e;
	PGresult *res = pg_run(ps, c, q, ROW_NPARAMS, t.v, &e);
	free(t.canon);
	if (!res)
		return e;
	if (PQntuples(res) == 1)
		row->row_id = pg_col_i64(res, 0, 0);
	else
		e = ALLOT_E_CONFLICT; /* nothing written */
	PQclear(res);
	return e;
}

/* ---- rows kept for one statement --------------------------------------------------
 * A kept row is its parameters' text, one block from malloc (v[i] NULL or
 * into it). */
struct kept_row {
	const char *v[ROW_NPARAMS];
};

struct pg_rowbuf {
	struct kept_row **rows;
	size_t n, cap, bytes;
};

allot_err pg_rows_keep(struct pg_rowbuf **bp, const struct ledger_row *row, int64_t leaf,
		       const uint8_t leaf_hash[32], const char *leaf_name)
{
	struct pg_rowbuf *b = *bp;
	if (!b && !(b = *bp = calloc(1, sizeof *b)))
		return ALLOT_E_NOMEM;
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		struct kept_row **p = realloc(b->rows, cap * sizeof *p);
		if (!p)
			return ALLOT_E_NOMEM;
		b->rows = p;
		b->cap = cap;
	}
	(void)leaf_name; /* as in pg_record_insert */
	struct row_text t;
	allot_err e = row_text(&t, row, leaf, leaf_hash);
	if (e)
		return e;
	size_t len = sizeof(struct kept_row);
	for (int i = 0; i < ROW_NPARAMS; i++)
		len += t.v[i] ? strlen(t.v[i]) + 1 : 0;
	struct kept_row *k = malloc(len);
	if (k) {
		char *p = (char *)(k + 1);
		for (int i = 0; i < ROW_NPARAMS; i++) {
			k->v[i] = NULL;
			if (!t.v[i])
				continue;
			size_t n = strlen(t.v[i]) + 1;
			memcpy(p, t.v[i], n);
			k->v[i] = p;
			p += n;
		}
		b->rows[b->n++] = k;
		b->bytes += len;
	}
	free(t.canon);
	return k ? ALLOT_OK : ALLOT_E_NOMEM;
}

size_t pg_rows_count(const struct pg_rowbuf *b) { return b ? b->n : 0; }
size_t pg_rows_bytes(const struct pg_rowbuf *b) { return b ? b->bytes : 0; }

void pg_rows_drop(struct pg_rowbuf *b)
{
	for (size_t i = 0; b && i < b->n; i++)
		free(b->rows[i]);
	if (b)
		b->n = b->bytes = 0;
}

void pg_rows_free(struct pg_rowbuf *b)
{
	pg_rows_drop(b);
	if (b)
		free(b->rows);
	free(b);
}

allot_err pg_rows_flush(struct pg_store *ps, PGconn *c, struct pg_rowbuf *b)
{
	/* The kept rows as arrays, in their order (ids in leaf order), each
	 * with its leaf. */
#define ROWS_SQL(on_conflict)                                                               \
	"WITH d AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::\"char\"[], " \
	"$5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], " \
	"$12::text[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], "            \
	"$17::bigint[], $18::boolean[], $19::bigint[], $20::bigint[], $21::bigint[], "         \
	"$22::boolean[], $23::\"char\"[], $24::bytea[], $25::bytea[], $26::bigint[], "         \
	"$27::bytea[]) WITH ORDINALITY AS d(" ROW_COLS ", ord)), "                             \
	"r AS (INSERT INTO usage_records(" ROW_COLS ") SELECT " ROW_COLS " FROM d "            \
	"ORDER BY ord " on_conflict "RETURNING id) SELECT count(*) FROM r"
	static const char q[] = ROWS_SQL("ON CONFLICT (provider, record_id) DO NOTHING ");
	/* In a pipeline (a batch's commit) the answer is read after the COMMIT
	 * was sent: a taken id must fail the statement itself (a unique
	 * violation), so that the server aborts the transaction. */
	static const char q_strict[] = ROWS_SQL("");
	if (!b || !b->n)
		return ALLOT_OK;
	allot_err e = ALLOT_OK;
	char *a[ROW_NPARAMS] = {NULL};
	const char **col = malloc(b->n * sizeof *col);
	if (!col)
		e = ALLOT_E_NOMEM;
	for (int i = 0; i < ROW_NPARAMS && !e; i++) {
		for (size_t k = 0; k < b->n; k++)
			col[k] = b->rows[k]->v[i];
		if (!(a[i] = pgs_text_array(col, b->n)))
			e = ALLOT_E_NOMEM;
	}
	free(col);
	PGresult *r = e ? NULL : pg_run(ps, c, pg_pipelined(c) ? q_strict : q, ROW_NPARAMS,
					(const char *const *)a, &e);
	for (int i = 0; i < ROW_NPARAMS; i++)
		free(a[i]);
	char want[24];
	if (r && pg_pipelined(c)) { /* answered at the pipeline's end */
		pg_pipe_expect(c, NULL, NULL, pg_i64(want, (int64_t)b->n),
			       "some kept records were already in the ledger");
		PQclear(r);
		pg_rows_drop(b);
		return ALLOT_OK;
	}
	int64_t n = r && PQntuples(r) == 1 ? pg_col_i64(r, 0, 0) : -1;
	PQclear(r);
	if (!e && n != (int64_t)b->n) {
		/* Cannot happen: rows are kept only when the batch's look-up,
		 * under the bounds row, found their ids absent. */
		pgs_fail(ps, ALLOT_E_STORE, "%lld of %zu kept records were already in the ledger",
			 (long long)(b->n - (size_t)(n < 0 ? 0 : n)), b->n);
		e = ALLOT_E_STORE;
	}
	pg_rows_drop(b);
	return e;
}
