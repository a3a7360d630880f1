/* store_copy_to_pg.c — `allot store copy` from a SQLite file into an empty
 * PostgreSQL database (store_copy.c has the rules both directions keep).
 *
 * The source is read in one SQLite read transaction; the destination is
 * migrated, must hold no deployment, and is written with COPY in one
 * transaction.  Values are converted by the destination column's type:
 * bytea from blobs or text (their bytes, written as hex), boolean from
 * 0/1, integers and text as they are; a floating-point value, an integer
 * where bytes belong and bytes with a NUL where text belongs are refused.
 * Identity columns take the copied ids and their sequences continue after
 * them; the one-row tables the migrations seed (ledger_bounds) are
 * replaced; the log's head (tlog_head, PostgreSQL's own) gets the leaf
 * count and no root, so that opening the store recomputes the root from
 * the copied tree, which store_copy.c then compares with the source's. */
#include "store/store_copy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/buf.h"
#include "store/ledger_sql.h"
#include "store/migrate.h"
#include "store/pg_int.h"

#define CP_CHUNK (256 * 1024) /* COPY data sent in pieces of about this size */

/* SQLite's own tables and each side's migration bookkeeping stay behind. */
static bool cp_skipped(const char *name)
{
	return strncmp(name, "sqlite_", 7) == 0 || strcmp(name, "schema_migrations") == 0;
}

/* ---- the source ------------------------------------------------------------ */

static allot_err cp_open_source(struct cp *x, const char *from)
{
	if (sqlite3_open_v2(from, &x->sq, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return cp_sq_fail(x, "cannot open the source");
	sqlite3_busy_timeout(x->sq, 5000);
	sqlite3_stmt *q = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(x->sq, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (v < 0)
		return cp_sq_fail(x, "cannot read the source's schema version (is it an allot database?)");
	int latest = migrate_latest(migrations_sqlite);
	if (v != latest) {
		snprintf(x->msg, x->msgsz,
			 v == 0 ? "the source holds no allot database (schema version 0)"
			 : v < latest ? "the source has schema version %d, older than this allot's "
					"(%d): start allotd on it once (it migrates), then copy"
				      : "the source has schema version %d, newer than this allot's (%d): "
					"use the allot that wrote it",
			 v, latest);
		return ALLOT_E_INVALID;
	}
	/* One snapshot for every table and the log's size. */
	if (sqlite3_exec(x->sq, "BEGIN; SELECT count(*) FROM sqlite_master", NULL, NULL, NULL))
		return cp_sq_fail(x, "cannot start reading the source");
	if (sqlite3_prepare_v2(x->sq, "SELECT name FROM sqlite_master WHERE type = 'table' "
				       "ORDER BY name", -1, &q, NULL))
		return cp_sq_fail(x, "cannot list the source's tables");
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(q, 0);
		if (!n || cp_skipped(n))
			continue;
		if (x->nt == CP_TABLES_MAX || strlen(n) >= CP_NAME_MAX) {
			sqlite3_finalize(q);
			snprintf(x->msg, x->msgsz, "the source has too many tables or too long a name");
			return ALLOT_E_INVALID;
		}
		snprintf(x->t[x->nt++].name, CP_NAME_MAX, "%s", n);
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? ALLOT_OK : cp_sq_fail(x, "cannot list the source's tables");
}

/* ---- the destination ------------------------------------------------------- */

static allot_err cp_open_dest(struct cp *x, const char *to)
{
	allot_err e = pg_connect(to, &x->pg, x->msg, x->msgsz);
	if (e)
		return e;
	int v = 0;
	if ((e = pg_migrate(x->pg, &v, x->msg, x->msgsz)))
		return e;
	/* Empty: no charter, no key, no record, no leaf. */
	PGresult *r = PQexec(x->pg, "SELECT (SELECT count(*) FROM charters) + (SELECT count(*) "
				     "FROM api_keys) + (SELECT count(*) FROM usage_records) + "
				     "(SELECT count(*) FROM tlog_leaves) + (SELECT count(*) FROM "
				     "audit_log)");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		e = cp_pg_fail(x, "cannot read the destination", r);
		PQclear(r);
		return e;
	}
	long long n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (n) {
		snprintf(x->msg, x->msgsz, "the destination already holds a deployment (%lld rows of "
					   "charters, keys, records, log leaves and audit): copy "
					   "needs an empty database", n);
		return ALLOT_E_CONFLICT;
	}
	return ALLOT_OK;
}

/* ---- one table ---------------------------------------------------------------- */

/* Text for COPY's text format: \ and the separators escaped. */
static void cp_put_text(struct buf *b, const unsigned char *s, int n)
{
	for (int i = 0; i < n; i++) {
		unsigned char ch = s[i];
		switch (ch) {
		case '\\': buf_puts(b, "\\\\"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		case '\t': buf_puts(b, "\\t"); break;
		default: buf_putc(b, (char)ch);
		}
	}
}

static void cp_put_hex(struct buf *b, const void *p, int n)
{
	buf_puts(b, "\\\\x"); /* bytea's \x, its backslash escaped for COPY */
	buf_reserve(b, (size_t)n * 2 + 1);
	if (b->oom)
		return;
	hex_encode(p, (size_t)n, b->data + b->len);
	b->len += (size_t)n * 2;
	b->data[b->len] = '\0';
}

/* One value of column c into b; false (with msg) for a value the
 * destination cannot take as it is. */
static bool cp_put_value(struct cp *x, struct buf *b, sqlite3_stmt *q, int i,
			 const struct cp_col *c, const char *table)
{
	int t = sqlite3_column_type(q, i);
	bool bytea = strcmp(c->type, "bytea") == 0, boolean = strcmp(c->type, "boolean") == 0;
	/* usage_records.kind and .source: a code each (migration 0009) */
	bool code = strcmp(c->type, "\"char\"") == 0;
	switch (t) {
	case SQLITE_NULL:
		buf_puts(b, "\\N");
		return true;
	case SQLITE_INTEGER:
		if (boolean)
			buf_puts(b, sqlite3_column_int64(q, i) ? "t" : "f");
		else
			buf_put_int(b, sqlite3_column_int64(q, i));
		return (!bytea && !code) ||
		       (snprintf(x->msg, x->msgsz, "%s.%s: an integer where the destination wants %s",
				 table, c->name, bytea ? "bytes" : "a name"), false);
	case SQLITE_FLOAT:
		snprintf(x->msg, x->msgsz, "%s.%s: a floating-point value (%.17g): money and "
					   "quantities are integers; repair the source first",
			 table, c->name, sqlite3_column_double(q, i));
		return false;
	default: {
		const void *p = t == SQLITE_BLOB ? sqlite3_column_blob(q, i)
						 : (const void *)sqlite3_column_text(q, i);
		int n = sqlite3_column_bytes(q, i);
		if (bytea) {
			cp_put_hex(b, p, n);
		} else if (code) {
			char name[16];
			const char *k = NULL;
			if (t == SQLITE_TEXT && (size_t)n < sizeof name) {
				memcpy(name, p, (size_t)n);
				name[n] = '\0';
				k = ledger_sql_code(c->name, name);
			}
			if (!k) {
				snprintf(x->msg, x->msgsz, "%s.%s: \"%.*s\" is not one of its names",
					 table, c->name, n < 40 ? n : 40, (const char *)p);
				return false;
			}
			buf_puts(b, k);
		} else if (t == SQLITE_BLOB && memchr(p, 0, (size_t)n)) {
			snprintf(x->msg, x->msgsz, "%s.%s: bytes where the destination wants text",
				 table, c->name);
			return false;
		} else
			cp_put_text(b, p, n);
		return true;
	}
	}
}

static bool cp_send(struct cp *x, struct buf *b)
{
	if (b->oom) {
		snprintf(x->msg, x->msgsz, "out of memory");
		return false;
	}
	if (b->len && PQputCopyData(x->pg, b->data, (int)b->len) != 1) {
		cp_pg_fail(x, "COPY", NULL);
		return false;
	}
	buf_reset(b);
	return true;
}

/* Sends table's rows with COPY; ends the COPY whatever happens. */
static allot_err cp_rows(struct cp *x, struct cp_table *t, const struct cp_col *use, int nuse,
			 struct buf *b)
{
	struct buf sql = BUF_INIT;
	buf_puts(&sql, "SELECT ");
	for (int i = 0; i < nuse; i++)
		buf_printf(&sql, "%s\"%s\"", i ? ", " : "", use[i].name);
	buf_printf(&sql, " FROM \"%s\"", t->name);
	sqlite3_stmt *q = NULL;
	allot_err e = sql.oom ? ALLOT_E_NOMEM : ALLOT_OK;
	if (!e && sqlite3_prepare_v2(x->sq, buf_str(&sql), -1, &q, NULL))
		e = cp_sq_fail(x, "cannot read the source");
	buf_release(&sql);
	int rc = SQLITE_DONE;
	while (!e && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		for (int i = 0; i < nuse && !e; i++) {
			if (i)
				buf_putc(b, '\t');
			if (!cp_put_value(x, b, q, i, &use[i], t->name))
				e = ALLOT_E_INVALID;
		}
		buf_putc(b, '\n');
		t->rows++;
		if (!e && b->len >= CP_CHUNK && !cp_send(x, b))
			e = ALLOT_E_STORE;
	}
	if (!e && rc != SQLITE_DONE)
		e = cp_sq_fail(x, "cannot read the source");
	sqlite3_finalize(q);
	if (!e && !cp_send(x, b))
		e = ALLOT_E_STORE;
	buf_reset(b);
	/* End the COPY: a failure aborts it (and the transaction with it). */
	if (PQputCopyEnd(x->pg, e ? "allot store copy: stopped" : NULL) != 1 && !e)
		e = cp_pg_fail(x, "COPY", NULL);
	PGresult *r;
	while ((r = PQgetResult(x->pg))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && !e) {
			char what[96];
			snprintf(what, sizeof what, "COPY %s", t->name);
			e = cp_pg_fail(x, what, r);
		}
		PQclear(r);
	}
	return e;
}

/* Identity columns go on after the copied ids. */
static allot_err cp_sequences(struct cp *x, const struct cp_table *t, const struct cp_col *use,
			      int nuse)
{
	for (int i = 0; i < nuse; i++) {
		if (strcmp(use[i].type, "bigint") != 0 && strcmp(use[i].type, "integer") != 0)
			continue;
		char q[512];
		snprintf(q, sizeof q, "SELECT setval(s::regclass, (SELECT max(\"%.63s\") FROM \"%.63s\")) FROM "
				      "pg_get_serial_sequence('\"%.63s\"', '%.63s') s WHERE s IS NOT NULL "
				      "AND EXISTS (SELECT 1 FROM \"%.63s\")",
			 use[i].name, t->name, t->name, use[i].name, t->name);
		if (!cp_exec(x, q, "cannot move an identity's sequence"))
			return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

static allot_err cp_table(struct cp *x, struct cp_table *t, struct buf *b)
{
	struct cp_col sc[CP_COLS_MAX], dc[CP_COLS_MAX], use[CP_COLS_MAX];
	int nsc = 0, ndc = 0;
	allot_err e;
	if ((e = cp_pg_cols(x, t->name, dc, &ndc)) || (e = cp_sq_cols(x, t->name, sc, &nsc)) ||
	    (e = cp_match(x, t->name, sc, nsc, dc, ndc, use)))
		return e;
	/* One-row tables the migrations seed are replaced by the source's. */
	if (strcmp(t->name, "ledger_bounds") == 0 &&
	    !cp_exec(x, "DELETE FROM ledger_bounds", "cannot clear ledger_bounds"))
		return ALLOT_E_STORE;
	struct buf sql = BUF_INIT;
	buf_printf(&sql, "COPY \"%s\" (", t->name);
	for (int i = 0; i < nsc; i++)
		buf_printf(&sql, "%s\"%s\"", i ? ", " : "", use[i].name);
	buf_puts(&sql, ") FROM STDIN");
	PGresult *r = sql.oom ? NULL : PQexec(x->pg, buf_str(&sql));
	buf_release(&sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		e = cp_pg_fail(x, "cannot start COPY", r);
		PQclear(r);
		return e;
	}
	PQclear(r);
	if ((e = cp_rows(x, t, use, nsc, b)))
		return e;
	return cp_sequences(x, t, use, nsc);
}

/* ---- the whole copy ------------------------------------------------------------ */

static allot_err cp_count(struct cp *x, const char *table, int64_t *n)
{
	char q[128];
	snprintf(q, sizeof q, "SELECT count(*) FROM \"%s\"", table);
	PGresult *r = PQexec(x->pg, q);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		allot_err e = cp_pg_fail(x, "cannot count the copy", r);
		PQclear(r);
		return e;
	}
	*n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return ALLOT_OK;
}

allot_err cp_run_to_pg(struct cp *x, const char *from, const char *to,
		       struct store_copy_report *rep, cp_progress_fn progress, void *ctx)
{
	allot_err e;
	if ((e = cp_open_source(x, from)) || (e = cp_open_dest(x, to)))
		return e;
	if (!cp_exec(x, "BEGIN", "cannot start the copy"))
		return ALLOT_E_STORE;
	struct buf b = BUF_INIT;
	for (int i = 0; i < x->nt && !e; i++) {
		if ((e = cp_table(x, &x->t[i], &b)))
			break;
		int64_t n = 0;
		if ((e = cp_count(x, x->t[i].name, &n)))
			break;
		e = cp_tally(x, &x->t[i], n, rep, progress, ctx);
	}
	buf_release(&b);
	int64_t leaves = 0;
	if (!e)
		e = cp_count(x, "tlog_leaves", &leaves);
	if (!e) {
		char q[128];
		snprintf(q, sizeof q, "UPDATE tlog_head SET size = %lld, root = NULL WHERE id = 1",
			 (long long)leaves);
		if (!cp_exec(x, q, "cannot write the log's head") ||
		    !cp_exec(x, "COMMIT", "cannot commit the copy"))
			e = ALLOT_E_STORE;
		else
			x->committed = true;
	}
	if (e) {
		char keep[512];
		snprintf(keep, sizeof keep, "%s", x->msg);
		cp_exec(x, "ROLLBACK", "rollback");
		snprintf(x->msg, x->msgsz, "%s", keep);
		return e;
	}
	sqlite3_exec(x->sq, "COMMIT", NULL, NULL, NULL);
	return cp_verify(x, from, to, (uint64_t)leaves, rep);
}
