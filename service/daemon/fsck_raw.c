/* fsck_raw.c — allotd --fsck's read-only connection to the rows themselves,
 * beside the store: SQLite (SQLITE_OPEN_READONLY, query_only) or PostgreSQL
 * (libpq: one REPEATABLE READ READ ONLY transaction for the whole run, so
 * every raw read sees one snapshot; large results read through cursors,
 * FSCK_RAW_FETCH rows at a time).  The checks write their SQL once, in
 * SQLite's dialect with ?N parameters; for PostgreSQL ?N becomes $N and
 * "NOT INDEXED" is dropped (docs/FSCK.md, "PostgreSQL"). */
#include "daemon/fsck_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/b64.h"

/* Rows fetched per round trip from a PostgreSQL cursor. */
#define FSCK_RAW_FETCH 2000

/* Longest SQL text a check passes (after translation). */
#define FSCK_SQL_MAX 2048

/* The PostgreSQL type OIDs of the parameters (pg_type.h is server-side). */
#define FSCK_OID_INT8 20
#define FSCK_OID_TEXT 25

static const char pg_begin[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

static void pg_err(struct fsck *f, const char *what, const char *msg)
{
	snprintf(f->rawerr, sizeof f->rawerr, "%s%s%s", what ? what : "", what ? ": " : "",
		 msg && *msg ? msg : "PostgreSQL error");
	/* libpq's messages span lines; one line each */
	for (char *p = f->rawerr; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	size_t n = strlen(f->rawerr);
	while (n && f->rawerr[n - 1] == ' ')
		f->rawerr[--n] = '\0';
	f->pg_aborted = true;
}

/* Runs sql without rows on the raw PostgreSQL connection. */
static bool pg_exec(struct fsck *f, const char *sql)
{
	PGresult *r = PQexec(f->pg, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		pg_err(f, NULL, r ? PQresultErrorMessage(r) : PQerrorMessage(f->pg));
	PQclear(r);
	return ok;
}

/* After an error the transaction is aborted: a new one (the cursors of the
 * old one are gone; fsck_q_close knows them by pg_gen). */
static bool pg_fresh(struct fsck *f)
{
	if (!f->pg_aborted)
		return true;
	PQclear(PQexec(f->pg, "ROLLBACK"));
	f->pg_gen++;
	f->pg_aborted = false;
	return pg_exec(f, pg_begin);
}

bool fsck_raw_exec(struct fsck *f, const char *sql) { return pg_fresh(f) && pg_exec(f, sql); }

bool fsck_raw_open(struct fsck *f, FILE *err)
{
	char shown[512];
	const char *db = store_uri_printable(f->o->db, shown, sizeof shown);
	if (!store_uri_is_pg(f->o->db)) {
		if (sqlite3_open_v2(f->o->db, &f->raw, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
		    sqlite3_exec(f->raw, "PRAGMA query_only = 1", NULL, NULL, NULL) != SQLITE_OK) {
			fprintf(err, "allotd --fsck: cannot open %s: %s\n", db,
				f->raw ? sqlite3_errmsg(f->raw) : "out of memory");
			return false;
		}
		sqlite3_busy_timeout(f->raw, 5000);
		return true;
	}
	f->pg = PQconnectdb(f->o->db);
	if (!f->pg || PQstatus(f->pg) != CONNECTION_OK) {
		pg_err(f, "cannot connect", f->pg ? PQerrorMessage(f->pg) : "out of memory");
		fprintf(err, "allotd --fsck: %s: %s\n", db, f->rawerr);
		return false;
	}
	/* bytea as hex, instants as they are (integers), nothing written */
	if (!pg_exec(f, "SET TIME ZONE 'UTC'; SET client_min_messages = warning; "
			"SET bytea_output = 'hex'; SET default_transaction_read_only = on") ||
	    !pg_exec(f, pg_begin)) {
		fprintf(err, "allotd --fsck: %s: session setup: %s\n", db, f->rawerr);
		return false;
	}
	return true;
}

void fsck_raw_close(struct fsck *f)
{
	if (f->raw)
		sqlite3_close(f->raw);
	f->raw = NULL;
	if (f->pg) {
		PQclear(PQexec(f->pg, "ROLLBACK"));
		PQfinish(f->pg);
	}
	f->pg = NULL;
}

bool fsck_raw_is_pg(const struct fsck *f) { return f->pg != NULL; }

const char *fsck_raw_err(const struct fsck *f)
{
	if (f->pg)
		return f->rawerr[0] ? f->rawerr : "PostgreSQL error";
	return f->raw ? sqlite3_errmsg(f->raw) : "no connection";
}

/* sql in PostgreSQL's dialect into out: ?N outside quotes becomes $N, the
 * words "NOT INDEXED" go (the caller turns index scans off instead). */
static bool pg_sql(const char *sql, char *out, size_t outsz)
{
	static const char ni[] = " NOT INDEXED";
	size_t w = 0;
	bool quoted = false;
	for (const char *p = sql; *p; p++) {
		if (*p == '\'')
			quoted = !quoted;
		if (!quoted && strncmp(p, ni, sizeof ni - 1) == 0) {
			p += sizeof ni - 2;
			continue;
		}
		if (w + 2 > outsz)
			return false;
		out[w++] = !quoted && *p == '?' ? '$' : *p;
	}
	out[w] = '\0';
	return true;
}

static bool pg_open_q(struct fsck_q *q, const char *sql, bool many, int n,
		      const struct fsck_arg *args)
{
	struct fsck *f = q->f;
	char text[FSCK_SQL_MAX], decl[FSCK_SQL_MAX + 96], nums[FSCK_MAX_ARGS][24];
	const char *vals[FSCK_MAX_ARGS];
	Oid types[FSCK_MAX_ARGS];
	if (!pg_fresh(f))
		return false;
	if (n > FSCK_MAX_ARGS || !pg_sql(sql, text, sizeof text)) {
		snprintf(f->rawerr, sizeof f->rawerr, "statement too long");
		return false;
	}
	for (int i = 0; i < n; i++) {
		types[i] = args[i].text ? FSCK_OID_TEXT : FSCK_OID_INT8;
		if (args[i].text) {
			vals[i] = args[i].text;
		} else {
			snprintf(nums[i], sizeof nums[i], "%lld", (long long)args[i].i);
			vals[i] = nums[i];
		}
	}
	if (many) {
		snprintf(q->cursor, sizeof q->cursor, "fsck_c%u", ++f->pg_cursors);
		snprintf(decl, sizeof decl, "DECLARE %s NO SCROLL CURSOR FOR %s", q->cursor, text);
	}
	PGresult *r = PQexecParams(f->pg, many ? decl : text, n, types, vals, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != (many ? PGRES_COMMAND_OK : PGRES_TUPLES_OK)) {
		pg_err(f, NULL, r ? PQresultErrorMessage(r) : PQerrorMessage(f->pg));
		PQclear(r);
		q->cursor[0] = '\0';
		return false;
	}
	q->gen = f->pg_gen;
	if (many) {
		PQclear(r);
		q->res = NULL;
	} else {
		q->res = r;
		q->nrows = PQntuples(r);
		q->last = true;
	}
	q->row = -1;
	return true;
}

bool fsck_q_open(struct fsck *f, struct fsck_q *q, const char *sql, bool many, int n,
		 const struct fsck_arg *args)
{
	memset(q, 0, sizeof *q);
	q->f = f;
	if (f->pg)
		return pg_open_q(q, sql, many, n, args);
	if (sqlite3_prepare_v2(f->raw, sql, -1, &q->st, NULL) != SQLITE_OK)
		return false;
	for (int i = 0; i < n; i++) {
		if (args[i].text)
			sqlite3_bind_text(q->st, i + 1, args[i].text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(q->st, i + 1, args[i].i);
	}
	return true;
}

/* The next batch of a cursor's rows. */
static int pg_fetch(struct fsck_q *q)
{
	struct fsck *f = q->f;
	char sql[64];
	PQclear(q->res);
	q->res = NULL;
	if (q->gen != f->pg_gen || f->pg_aborted) {
		snprintf(f->rawerr, sizeof f->rawerr, "the read was cut short by an earlier error");
		return -1;
	}
	snprintf(sql, sizeof sql, "FETCH %d FROM %s", FSCK_RAW_FETCH, q->cursor);
	PGresult *r = PQexec(f->pg, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_err(f, NULL, r ? PQresultErrorMessage(r) : PQerrorMessage(f->pg));
		PQclear(r);
		return -1;
	}
	q->res = r;
	q->nrows = PQntuples(r);
	q->row = -1;
	q->last = q->nrows < FSCK_RAW_FETCH;
	return 1;
}

int fsck_q_step(struct fsck_q *q)
{
	if (!q->f->pg) {
		int rc = sqlite3_step(q->st);
		return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	}
	if (q->res && q->row + 1 < q->nrows) {
		q->row++;
		return 1;
	}
	if (q->last || !q->cursor[0])
		return 0;
	if (pg_fetch(q) < 0)
		return -1;
	if (q->nrows == 0)
		return 0;
	q->row = 0;
	return 1;
}

void fsck_q_close(struct fsck_q *q)
{
	struct fsck *f = q->f;
	if (!f)
		return;
	if (q->st)
		sqlite3_finalize(q->st);
	PQclear(q->res);
	if (f->pg && q->cursor[0] && q->gen == f->pg_gen && !f->pg_aborted) {
		char sql[64];
		snprintf(sql, sizeof sql, "CLOSE %s", q->cursor);
		pg_exec(f, sql);
	}
	memset(q, 0, sizeof *q);
}

bool fsck_q_null(const struct fsck_q *q, int col)
{
	if (!q->f->pg)
		return sqlite3_column_type(q->st, col) == SQLITE_NULL;
	return PQgetisnull(q->res, q->row, col);
}

int64_t fsck_q_i64(const struct fsck_q *q, int col)
{
	if (!q->f->pg)
		return sqlite3_column_int64(q->st, col);
	if (PQgetisnull(q->res, q->row, col))
		return 0;
	return strtoll(PQgetvalue(q->res, q->row, col), NULL, 10);
}

const char *fsck_q_text(const struct fsck_q *q, int col)
{
	if (!q->f->pg)
		return (const char *)sqlite3_column_text(q->st, col);
	if (PQgetisnull(q->res, q->row, col))
		return NULL;
	return PQgetvalue(q->res, q->row, col);
}

bool fsck_q_blob(const struct fsck_q *q, int col, uint8_t *out, size_t cap, size_t *len)
{
	*len = 0;
	if (!q->f->pg) {
		const void *p = sqlite3_column_blob(q->st, col);
		int n = sqlite3_column_bytes(q->st, col);
		if (n < 0 || (size_t)n > cap || (n && !p))
			return false;
		if (n)
			memcpy(out, p, (size_t)n);
		*len = (size_t)n;
		return true;
	}
	const char *t = fsck_q_text(q, col);
	if (!t || strncmp(t, "\\x", 2) != 0)
		return false;
	return hex_decode(t + 2, strlen(t + 2), out, cap, len) == ALLOT_OK;
}
