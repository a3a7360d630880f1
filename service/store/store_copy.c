/* store_copy.c — a SQLite deployment copied into an empty PostgreSQL
 * database, table by table (docs/POSTGRES.md, "Moving a deployment").
 *
 * The rows move as they are, ids, signatures, canonical bytes and the
 * log's leaves and nodes included, so the destination is the same
 * deployment: the same ledger, the same audit trail, the same log with the
 * same root.  The source is read in one snapshot (a running allotd may go
 * on writing; what it writes after the snapshot is not copied: stop it
 * first to move a deployment for good).  The destination is written with
 * COPY in one transaction: on any error nothing is left there.
 *
 * Every source table must have a destination table and every source
 * column a destination column (a value with no place would be lost
 * silently): otherwise the copy is refused, naming them.  Values are
 * converted by the destination column's type: bytea from blobs or text
 * (hex), boolean from 0/1, numbers and text as they are; a floating-point
 * value is refused (money and quantities are integers).  Identity columns
 * take the copied ids and their sequences continue after them; the
 * one-row tables the migrations seed (ledger_bounds) are replaced; the
 * log's head (tlog_head, PostgreSQL's own) gets the leaf count and no
 * root, so that opening the store recomputes the root from the copied
 * tree, which is then compared with the source's. */
#include "store/store_copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "common/b64.h"
#include "common/buf.h"
#include "store/migrate.h"
#include "store/pg_int.h"
#include "store/store.h"

#define CP_TABLES_MAX 64
#define CP_COLS_MAX 64
#define CP_NAME_MAX 64
#define CP_CHUNK (256 * 1024) /* COPY data sent in pieces of about this size */

struct cp_table {
	char name[CP_NAME_MAX];
	int64_t rows;
};

struct cp_col {
	char name[CP_NAME_MAX];
	char type[CP_NAME_MAX]; /* the destination's data_type */
};

struct cp {
	sqlite3 *sq;           /* the SQLite side (source or destination) */
	PGconn *pg;            /* the PostgreSQL side */
	char *msg;
	size_t msgsz;
	struct cp_table t[CP_TABLES_MAX];
	int nt;
	bool created;          /* a SQLite destination made by this copy */
	bool committed;        /* a PostgreSQL destination holds the copy */
};

/* SQLite's own tables and each side's migration bookkeeping stay behind. */
static bool cp_skipped(const char *name)
{
	return strncmp(name, "sqlite_", 7) == 0 || strcmp(name, "schema_migrations") == 0;
}

static allot_err cp_pg_fail(struct cp *x, const char *what, const PGresult *r)
{
	snprintf(x->msg, x->msgsz, "%s: %s", what,
		 r ? PQresultErrorMessage(r) : PQerrorMessage(x->pg));
	pg_fold(x->msg);
	return ALLOT_E_STORE;
}

static allot_err cp_sq_fail(struct cp *x, const char *what)
{
	snprintf(x->msg, x->msgsz, "%s: %s", what, sqlite3_errmsg(x->sq));
	return ALLOT_E_STORE;
}

static bool cp_exec(struct cp *x, const char *sql, const char *what)
{
	PGresult *r = PQexec(x->pg, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		cp_pg_fail(x, what, r);
	PQclear(r);
	return ok;
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

/* The destination's columns of table, in order. */
static allot_err cp_dest_cols(struct cp *x, const char *table, struct cp_col *c, int *nc)
{
	const char *v[] = {table};
	PGresult *r = PQexecParams(x->pg, "SELECT column_name, data_type FROM "
					   "information_schema.columns WHERE table_schema = "
					   "current_schema() AND table_name = $1 ORDER BY ordinal_position",
				   1, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		allot_err e = cp_pg_fail(x, "cannot read the destination's columns", r);
		PQclear(r);
		return e;
	}
	*nc = 0;
	for (int i = 0; i < PQntuples(r) && *nc < CP_COLS_MAX; i++, (*nc)++) {
		snprintf(c[*nc].name, CP_NAME_MAX, "%s", PQgetvalue(r, i, 0));
		snprintf(c[*nc].type, CP_NAME_MAX, "%s", PQgetvalue(r, i, 1));
	}
	PQclear(r);
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
	switch (t) {
	case SQLITE_NULL:
		buf_puts(b, "\\N");
		return true;
	case SQLITE_INTEGER:
		if (boolean)
			buf_puts(b, sqlite3_column_int64(q, i) ? "t" : "f");
		else
			buf_put_int(b, sqlite3_column_int64(q, i));
		return !bytea || (snprintf(x->msg, x->msgsz, "%s.%s: an integer where the "
					   "destination wants bytes", table, c->name), false);
	case SQLITE_FLOAT:
		snprintf(x->msg, x->msgsz, "%s.%s: a floating-point value (%.17g): money and "
					   "quantities are integers; repair the source first",
			 table, c->name, sqlite3_column_double(q, i));
		return false;
	default: {
		const void *p = t == SQLITE_BLOB ? sqlite3_column_blob(q, i)
						 : (const void *)sqlite3_column_text(q, i);
		int n = sqlite3_column_bytes(q, i);
		if (bytea)
			cp_put_hex(b, p, n);
		else if (t == SQLITE_BLOB && memchr(p, 0, (size_t)n)) {
			snprintf(x->msg, x->msgsz, "%s.%s: bytes where the destination wants text",
				 table, c->name);
			return false;
		} else
			cp_put_text(b, p, n);
		return true;
	}
	}
}

/* The source's columns of table, each matched to the destination's. */
static allot_err cp_match_cols(struct cp *x, const char *table, const struct cp_col *dc, int ndc,
			       struct cp_col *use, int *nuse)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s')", table);
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(x->sq, sql, -1, &q, NULL))
		return cp_sq_fail(x, "cannot read the source's columns");
	*nuse = 0;
	allot_err e = ALLOT_OK;
	while (!e && sqlite3_step(q) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(q, 0);
		int j = 0;
		while (j < ndc && strcmp(dc[j].name, n ? n : "") != 0)
			j++;
		if (j == ndc) {
			snprintf(x->msg, x->msgsz, "the source's column %s.%s has no place in the "
						   "destination (a newer or different schema?)",
				 table, n ? n : "?");
			e = ALLOT_E_INVALID;
		} else if (*nuse == CP_COLS_MAX) {
			snprintf(x->msg, x->msgsz, "%s: too many columns", table);
			e = ALLOT_E_INVALID;
		} else
			use[(*nuse)++] = dc[j];
	}
	sqlite3_finalize(q);
	return e;
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

static allot_err cp_table(struct cp *x, struct cp_table *t, struct buf *b)
{
	struct cp_col dc[CP_COLS_MAX], use[CP_COLS_MAX];
	int ndc = 0, nuse = 0;
	allot_err e = cp_dest_cols(x, t->name, dc, &ndc);
	if (e)
		return e;
	if (!ndc) {
		snprintf(x->msg, x->msgsz, "the source's table %s has no place in the destination",
			 t->name);
		return ALLOT_E_INVALID;
	}
	if ((e = cp_match_cols(x, t->name, dc, ndc, use, &nuse)))
		return e;
	/* One-row tables the migrations seed are replaced by the source's. */
	if (strcmp(t->name, "ledger_bounds") == 0 &&
	    !cp_exec(x, "DELETE FROM ledger_bounds", "cannot clear ledger_bounds"))
		return ALLOT_E_STORE;
	struct buf sql = BUF_INIT;
	buf_printf(&sql, "COPY \"%s\" (", t->name);
	for (int i = 0; i < nuse; i++)
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
	if ((e = cp_rows(x, t, use, nuse, b)))
		return e;
	/* Identity columns go on after the copied ids. */
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

/* ---- verification ----------------------------------------------------------- */

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

/* Both sides opened as stores: the destination's log, its root recomputed
 * from the copied tree at open, against the source's at the same size. */
static allot_err cp_verify(struct cp *x, const char *from, const char *to, uint64_t size,
			   struct store_copy_report *rep)
{
	struct store *s = NULL, *d = NULL;
	uint8_t want[32], got[32];
	uint64_t dsize = 0;
	allot_err e = store_open_readonly(from, &s, x->msg, x->msgsz);
	if (!e && (e = store_tlog_root_at(s, size, want)))
		snprintf(x->msg, x->msgsz, "cannot read the source's log root at size %llu: %.300s",
			 (unsigned long long)size, s->errmsg);
	if (!e && !(e = store_open(to, &d, x->msg, x->msgsz)) &&
	    (e = store_tlog_head(d, &dsize, got)))
		snprintf(x->msg, x->msgsz, "cannot read the copy's log: %.300s", d->errmsg);
	if (!e && (dsize != size || memcmp(want, got, 32) != 0)) {
		char a[65], c[65];
		hex_encode(want, 32, a);
		hex_encode(got, 32, c);
		snprintf(x->msg, x->msgsz, "the copy's log differs: source size %llu root %s, copy "
					   "size %llu root %s",
			 (unsigned long long)size, a, (unsigned long long)dsize, c);
		e = ALLOT_E_STORE;
	}
	if (!e) {
		rep->log_size = size;
		memcpy(rep->root, got, 32);
	}
	store_close(s);
	store_close(d);
	return e;
}

/* A table copied: n rows found in the destination, which must be the rows
 * read; counted into rep and told to progress. */
static allot_err cp_tally(struct cp *x, const struct cp_table *t, int64_t n,
			  struct store_copy_report *rep,
			  void (*progress)(void *ctx, const char *table, int64_t rows), void *ctx)
{
	if (n != t->rows) {
		snprintf(x->msg, x->msgsz, "%s: %lld rows read, %lld in the copy", t->name,
			 (long long)t->rows, (long long)n);
		return ALLOT_E_STORE;
	}
	rep->tables++;
	rep->rows += n;
	if (progress)
		progress(ctx, t->name, n);
	return ALLOT_OK;
}

/* ---- the whole copy ------------------------------------------------------------ */

static allot_err cp_run(struct cp *x, const char *from, const char *to,
			struct store_copy_report *rep,
			void (*progress)(void *ctx, const char *table, int64_t rows), void *ctx)
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

/* ---- PostgreSQL to SQLite ---------------------------------------------------------- */

/* The SQLite destination's column: its name and declared type. */
struct cp_sqcol {
	char name[CP_NAME_MAX];
	char decl[CP_NAME_MAX];
};

static allot_err cp_sq_cols(struct cp *x, const char *table, struct cp_sqcol *c, int *nc)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT name, type FROM pragma_table_info('%.63s')", table);
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(x->sq, sql, -1, &q, NULL))
		return cp_sq_fail(x, "cannot read the destination's columns");
	*nc = 0;
	while (*nc < CP_COLS_MAX && sqlite3_step(q) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(q, 0);
		const char *d = (const char *)sqlite3_column_text(q, 1);
		snprintf(c[*nc].name, CP_NAME_MAX, "%s", n ? n : "");
		snprintf(c[*nc].decl, CP_NAME_MAX, "%s", d ? d : "");
		(*nc)++;
	}
	sqlite3_finalize(q);
	return ALLOT_OK;
}

/* One PostgreSQL text value bound as the SQLite column declares it. */
static bool cp_bind(struct cp *x, sqlite3_stmt *ins, int i, const PGresult *r, int row,
		    const struct cp_col *pc, const struct cp_sqcol *sc, const char *table)
{
	if (PQgetisnull(r, row, i))
		return sqlite3_bind_null(ins, i + 1) == SQLITE_OK;
	const char *v = PQgetvalue(r, row, i);
	size_t n = (size_t)PQgetlength(r, row, i);
	if (strcmp(pc->type, "boolean") == 0)
		return sqlite3_bind_int(ins, i + 1, v[0] == 't') == SQLITE_OK;
	if (strstr(sc->decl, "INT") && strcmp(pc->type, "bytea") != 0) {
		char *end;
		long long k = strtoll(v, &end, 10);
		if (*end) {
			snprintf(x->msg, x->msgsz, "%s.%s: \"%.40s\" is not an integer", table,
				 pc->name, v);
			return false;
		}
		return sqlite3_bind_int64(ins, i + 1, k) == SQLITE_OK;
	}
	const void *p = v;
	uint8_t *bytes = NULL;
	if (strcmp(pc->type, "bytea") == 0) {
		if (n < 2 || memcmp(v, "\\x", 2) != 0 || !(bytes = malloc(n / 2 + 1)) ||
		    hex_decode(v + 2, n - 2, bytes, n / 2 + 1, &n)) {
			free(bytes);
			snprintf(x->msg, x->msgsz, "%s.%s: unreadable bytes", table, pc->name);
			return false;
		}
		p = bytes;
	}
	int rc = strstr(sc->decl, "BLOB") ? sqlite3_bind_blob(ins, i + 1, p, (int)n, SQLITE_TRANSIENT)
					  : sqlite3_bind_text(ins, i + 1, p, (int)n, SQLITE_TRANSIENT);
	free(bytes);
	return rc == SQLITE_OK;
}

/* Rows of table through a cursor, FETCH by FETCH, into ins. */
static allot_err cp_fetch_rows(struct cp *x, struct cp_table *t, const struct cp_col *pc,
			       const struct cp_sqcol *sc, int n, sqlite3_stmt *ins)
{
	for (;;) {
		PGresult *r = PQexec(x->pg, "FETCH 5000 FROM allot_copy");
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			allot_err e = cp_pg_fail(x, "cannot read the source", r);
			PQclear(r);
			return e;
		}
		int rows = PQntuples(r);
		for (int k = 0; k < rows; k++) {
			for (int i = 0; i < n; i++)
				if (!cp_bind(x, ins, i, r, k, &pc[i], &sc[i], t->name)) {
					PQclear(r);
					return ALLOT_E_INVALID;
				}
			if (sqlite3_step(ins) != SQLITE_DONE) {
				PQclear(r);
				return cp_sq_fail(x, t->name);
			}
			sqlite3_reset(ins);
			t->rows++;
		}
		PQclear(r);
		if (!rows)
			return ALLOT_OK;
	}
}

static allot_err cp_table_to_sq(struct cp *x, struct cp_table *t)
{
	struct cp_col pc[CP_COLS_MAX];
	struct cp_sqcol all[CP_COLS_MAX], sc[CP_COLS_MAX];
	int npc = 0, nall = 0;
	allot_err e;
	if ((e = cp_dest_cols(x, t->name, pc, &npc)) || (e = cp_sq_cols(x, t->name, all, &nall)))
		return e;
	if (!nall) {
		snprintf(x->msg, x->msgsz, "the source's table %s has no place in the destination",
			 t->name);
		return ALLOT_E_INVALID;
	}
	struct buf sel = BUF_INIT, ins = BUF_INIT;
	buf_puts(&sel, "DECLARE allot_copy NO SCROLL CURSOR FOR SELECT ");
	buf_printf(&ins, "INSERT INTO \"%s\" (", t->name);
	for (int i = 0; i < npc && !e; i++) {
		int j = 0;
		while (j < nall && strcmp(all[j].name, pc[i].name) != 0)
			j++;
		if (j == nall) {
			snprintf(x->msg, x->msgsz, "the source's column %s.%s has no place in the "
						   "destination (a newer or different schema?)",
				 t->name, pc[i].name);
			e = ALLOT_E_INVALID;
		}
		sc[i] = all[j < nall ? j : 0];
		buf_printf(&sel, "%s\"%s\"", i ? ", " : "", pc[i].name);
		buf_printf(&ins, "%s\"%s\"", i ? ", " : "", pc[i].name);
	}
	buf_printf(&sel, " FROM \"%s\"", t->name);
	buf_puts(&ins, ") VALUES (");
	for (int i = 0; i < npc; i++)
		buf_printf(&ins, "%s?", i ? ", " : "");
	buf_puts(&ins, ")");
	sqlite3_stmt *q = NULL;
	if (!e && (sel.oom || ins.oom))
		e = ALLOT_E_NOMEM;
	if (!e && strcmp(t->name, "ledger_bounds") == 0 &&
	    sqlite3_exec(x->sq, "DELETE FROM ledger_bounds", NULL, NULL, NULL))
		e = cp_sq_fail(x, "cannot clear ledger_bounds");
	if (!e && sqlite3_prepare_v2(x->sq, buf_str(&ins), -1, &q, NULL))
		e = cp_sq_fail(x, "cannot write the destination");
	if (!e && !cp_exec(x, buf_str(&sel), "cannot read the source"))
		e = ALLOT_E_STORE;
	buf_release(&sel);
	buf_release(&ins);
	if (!e) {
		e = cp_fetch_rows(x, t, pc, sc, npc, q);
		if (!cp_exec(x, "CLOSE allot_copy", "cannot read the source") && !e)
			e = ALLOT_E_STORE;
	}
	sqlite3_finalize(q);
	return e;
}

/* The source's tables: all but the schema's bookkeeping, the log's head
 * (the SQLite store computes its root from the copied tree at open) and
 * the nodes' shared budgets (0005: budget rows are made again from the
 * ledger and the charter when needed; reservations and rate windows are
 * requests in flight, none once the nodes are stopped, and a single
 * SQLite node keeps its own in memory; 0006's node epochs and leases are
 * the running nodes' too). */
static allot_err cp_pg_tables(struct cp *x)
{
	PGresult *r = PQexec(x->pg, "SELECT table_name FROM information_schema.tables WHERE "
				    "table_schema = current_schema() AND table_type = 'BASE TABLE' "
				    "AND table_name NOT IN ('allot_schema', 'tlog_head', 'budgets', 'reservations', "
				    "'rate_windows', 'nodes', 'leases') ORDER BY 1");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		allot_err e = cp_pg_fail(x, "cannot list the source's tables", r);
		PQclear(r);
		return e;
	}
	for (int i = 0; i < PQntuples(r) && x->nt < CP_TABLES_MAX; i++)
		snprintf(x->t[x->nt++].name, CP_NAME_MAX, "%s", PQgetvalue(r, i, 0));
	PQclear(r);
	return ALLOT_OK;
}

static int64_t cp_sq_count(struct cp *x, const char *table)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%.63s\"", table);
	sqlite3_stmt *q;
	int64_t n = -1;
	if (sqlite3_prepare_v2(x->sq, sql, -1, &q, NULL) == SQLITE_OK) {
		if (sqlite3_step(q) == SQLITE_ROW)
			n = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
	}
	return n;
}

static allot_err cp_run_to_sq(struct cp *x, const char *from, const char *to,
			      struct store_copy_report *rep,
			      void (*progress)(void *ctx, const char *table, int64_t rows), void *ctx)
{
	allot_err e = pg_connect(from, &x->pg, x->msg, x->msgsz);
	if (e)
		return e;
	int v = pg_schema_version(x->pg), latest = migrate_latest(migrations_postgres);
	if (v != latest) {
		snprintf(x->msg, x->msgsz,
			 v <= 0 ? "the source holds no allot database"
			 : v < latest ? "the source has schema version %d, older than this allot's "
					"(%d): start allotd on it once (it migrates), then copy"
				      : "the source has schema version %d, newer than this allot's (%d)",
			 v, latest);
		return ALLOT_E_INVALID;
	}
	/* The destination: a new file, migrated by opening it as a store. */
	struct store *d = NULL;
	if ((e = store_open(to, &d, x->msg, x->msgsz)))
		return e;
	store_close(d);
	x->created = true;
	if (sqlite3_open_v2(to, &x->sq, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return cp_sq_fail(x, "cannot open the destination");
	if (!cp_exec(x, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "cannot read the source") ||
	    sqlite3_exec(x->sq, "BEGIN IMMEDIATE", NULL, NULL, NULL))
		return x->msg[0] ? ALLOT_E_STORE : cp_sq_fail(x, "cannot write the destination");
	if ((e = cp_pg_tables(x)))
		return e;
	for (int i = 0; i < x->nt && !e; i++) {
		if ((e = cp_table_to_sq(x, &x->t[i])))
			break;
		e = cp_tally(x, &x->t[i], cp_sq_count(x, x->t[i].name), rep, progress, ctx);
	}
	int64_t leaves = e ? -1 : cp_sq_count(x, "tlog_leaves");
	if (!e && (leaves < 0 || sqlite3_exec(x->sq, "COMMIT", NULL, NULL, NULL)))
		e = cp_sq_fail(x, "cannot commit the copy");
	cp_exec(x, "COMMIT", "end of reading");
	if (e)
		return e;
	sqlite3_close(x->sq);
	x->sq = NULL;
	return cp_verify(x, from, to, (uint64_t)leaves, rep);
}

/* A SQLite destination this copy created and could not finish: removed. */
static void cp_unlink(const char *path)
{
	char p[4096];
	unlink(path);
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
}

allot_err store_copy(const char *from, const char *to, struct store_copy_report *rep,
		     void (*progress)(void *ctx, const char *table, int64_t rows), void *ctx,
		     char *msg, size_t msgsz)
{
	memset(rep, 0, sizeof *rep);
	bool to_pg = store_uri_is_pg(to);
	if (store_uri_is_pg(from) == to_pg) {
		snprintf(msg, msgsz, "copy goes between a SQLite file and a postgres:// database, "
				     "one each way");
		return ALLOT_E_UNSUPPORTED;
	}
	if (!to_pg && access(to, F_OK) == 0) {
		snprintf(msg, msgsz, "%s exists: a copy into SQLite makes a new file", to);
		return ALLOT_E_CONFLICT;
	}
	struct cp *x = calloc(1, sizeof *x);
	if (!x)
		return ALLOT_E_NOMEM;
	x->msg = msg;
	x->msgsz = msgsz;
	allot_err e = to_pg ? cp_run(x, from, to, rep, progress, ctx)
			    : cp_run_to_sq(x, from, to, rep, progress, ctx);
	if (x->sq)
		sqlite3_close(x->sq);
	if (x->pg)
		PQfinish(x->pg);
	if (e && x->created)
		cp_unlink(to); /* nothing half-made is left */
	if (e) {
		size_t l = strlen(msg);
		snprintf(msg + l, msgsz - l, x->committed ? "; the copy in the destination does not "
							    "verify: drop that database"
							  : "; nothing was written to the destination");
	}
	free(x);
	return e;
}
