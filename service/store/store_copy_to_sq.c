/* store_copy_to_sq.c — `allot store copy` from a PostgreSQL database into a
 * new SQLite file (store_copy.c has the rules both directions keep).
 *
 * The source is read through a cursor in one REPEATABLE READ snapshot; the
 * destination is made (and migrated) by opening it as a store, then
 * written in one transaction and removed again on an error.  Values are
 * bound as the SQLite column declares them (integers from their text,
 * blobs from bytea, booleans as 0/1).  PostgreSQL's own tables stay
 * behind (cp_pg_tables). */
#include "store/store_copy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/buf.h"
#include "crypto/digest.h"
#include "store/ledger_sql.h"
#include "store/migrate.h"
#include "store/pg_int.h"
#include "store/store.h"

/* One PostgreSQL text value bound as the SQLite column declares it. */
static bool cp_bind(struct cp *x, sqlite3_stmt *ins, int i, const PGresult *r, int row,
		    const struct cp_col *pc, const struct cp_col *sc, const char *table)
{
	if (PQgetisnull(r, row, i))
		return sqlite3_bind_null(ins, i + 1) == SQLITE_OK;
	const char *v = PQgetvalue(r, row, i);
	size_t n = (size_t)PQgetlength(r, row, i);
	if (strcmp(pc->type, "boolean") == 0)
		return sqlite3_bind_int(ins, i + 1, v[0] == 't') == SQLITE_OK;
	if (strcmp(pc->type, "\"char\"") == 0) { /* a code (migration 0009): its name */
		const char *name = ledger_sql_code_name(pc->name, v);
		if (!name) {
			snprintf(x->msg, x->msgsz, "%s.%s: \"%.40s\" is not one of its codes", table,
				 pc->name, v);
			return false;
		}
		return sqlite3_bind_text(ins, i + 1, name, -1, SQLITE_STATIC) == SQLITE_OK;
	}
	if (strstr(sc->type, "INT") && strcmp(pc->type, "bytea") != 0) {
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
	int rc = strstr(sc->type, "BLOB") ? sqlite3_bind_blob(ins, i + 1, p, (int)n, SQLITE_TRANSIENT)
					  : sqlite3_bind_text(ins, i + 1, p, (int)n, SQLITE_TRANSIENT);
	free(bytes);
	return rc == SQLITE_OK;
}

/* Rows of table through a cursor, FETCH by FETCH, into ins. */
/* ---- usage_records.sha256 (NULL on PostgreSQL: migration 0007) ---------------- */

static const char *cp_val(const PGresult *r, int row, const struct cp_col *pc, int n,
			  const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(pc[i].name, name) == 0)
			return PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
	return NULL;
}

static void cp_str(char *dst, size_t n, const char *v)
{
	snprintf(dst, n, "%s", v ? v : "");
}

static int64_t cp_i64(const char *v)
{
	return v ? strtoll(v, NULL, 10) : 0;
}

/* A row whose sha256 PostgreSQL keeps as NULL holds the SHA-256 of its
 * canonical bytes: those stored, or the sealed spelling rebuilt from its
 * fields (as pg_usage_row reads it); SQLite stores it always. */
static bool cp_usage_sha(const PGresult *r, int row, const struct cp_col *pc, int n,
			 uint8_t out[32])
{
#define V(name) cp_val(r, row, pc, n, name)
	struct usage_record rec;
	memset(&rec, 0, sizeof rec);
	cp_str(rec.provider, sizeof rec.provider, V("provider"));
	cp_str(rec.record_id, sizeof rec.record_id, V("record_id"));
	cp_str(rec.supersedes, sizeof rec.supersedes, V("supersedes"));
	cp_str(rec.institution, sizeof rec.institution, V("institution"));
	cp_str(rec.project, sizeof rec.project, V("project"));
	cp_str(rec.member, sizeof rec.member, V("member"));
	cp_str(rec.resource, sizeof rec.resource, V("resource"));
	cp_str(rec.cls, sizeof rec.cls, V("class"));
	cp_str(rec.model, sizeof rec.model, V("model"));
	rec.has_seq = V("seq") != NULL;
	rec.seq = cp_i64(V("seq"));
	rec.quantity = cp_i64(V("quantity"));
	rec.start_us = cp_i64(V("start_us"));
	rec.end_us = cp_i64(V("end_us"));
	const char *kind = V("kind"), *adj = V("adjustment"), *canon = V("canonical");
	kind = kind ? ledger_sql_code_name("kind", kind) : NULL; /* a code: 0009 */
	for (enum record_kind k = RECORD_USAGE; k <= RECORD_VOID; k++)
		if (kind && strcmp(kind, record_kind_name(k)) == 0)
			rec.kind = k;
	for (enum record_adjustment a = ADJ_CREDIT; a <= ADJ_DEBIT; a++)
		if (adj && strcmp(adj, record_adjustment_name(a)) == 0)
			rec.adjustment = a;
#undef V
	size_t len = 0;
	unsigned char *bytes = canon ? PQunescapeBytea((const unsigned char *)canon, &len) : NULL;
	bool ok = bytes && record_canonical_load(&rec, bytes, len) == ALLOT_OK;
	if (ok)
		digest_sha256(rec.canonical, rec.canonical_len, out);
	PQfreemem(bytes);
	free(rec.canonical);
	return ok;
}

static int cp_col_index(const struct cp_col *c, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(c[i].name, name) == 0)
			return i;
	return -1;
}

static allot_err cp_fetch_rows(struct cp *x, struct cp_table *t, const struct cp_col *pc,
			       const struct cp_col *sc, int n, sqlite3_stmt *ins)
{
	int sha = strcmp(t->name, "usage_records") == 0 ? cp_col_index(pc, n, "sha256") : -1;
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
			uint8_t h[32];
			if (sha >= 0 && PQgetisnull(r, k, sha) &&
			    (!cp_usage_sha(r, k, pc, n, h) ||
			     sqlite3_bind_blob(ins, sha + 1, h, 32, SQLITE_TRANSIENT) != SQLITE_OK)) {
				PQclear(r);
				snprintf(x->msg, x->msgsz, "usage_records: cannot make a record's sha256");
				return ALLOT_E_NOMEM;
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

/* PostgreSQL keeps a usage record's log leaf in the record's row
 * (migration 0007: usage_records.leaf_hash), SQLite every leaf in
 * tlog_leaves: SQLite's tlog_leaves is copied from the view of all leaves,
 * and the row's leaf_hash stays behind. */
static const char *cp_pg_source(const char *table)
{
	return strcmp(table, "tlog_leaves") == 0 ? "tlog_leaves_all" : table;
}

static void cp_pg_leaf_col_drop(const char *table, struct cp_col *c, int *n)
{
	if (strcmp(table, "usage_records") != 0)
		return;
	for (int i = 0; i < *n; i++)
		if (strcmp(c[i].name, "leaf_hash") == 0) {
			memmove(c + i, c + i + 1, (size_t)(*n - i - 1) * sizeof *c);
			(*n)--;
			return;
		}
}

static allot_err cp_table_to_sq(struct cp *x, struct cp_table *t)
{
	struct cp_col pc[CP_COLS_MAX], all[CP_COLS_MAX], sc[CP_COLS_MAX];
	int npc = 0, nall = 0;
	allot_err e;
	if ((e = cp_pg_cols(x, cp_pg_source(t->name), pc, &npc)))
		return e;
	cp_pg_leaf_col_drop(t->name, pc, &npc);
	if ((e = cp_sq_cols(x, t->name, all, &nall)) ||
	    (e = cp_match(x, t->name, pc, npc, all, nall, sc)))
		return e;
	struct buf sel = BUF_INIT, ins = BUF_INIT;
	buf_puts(&sel, "DECLARE allot_copy NO SCROLL CURSOR FOR SELECT ");
	buf_printf(&ins, "INSERT INTO \"%s\" (", t->name);
	for (int i = 0; i < npc; i++) {
		buf_printf(&sel, "%s\"%s\"", i ? ", " : "", pc[i].name);
		buf_printf(&ins, "%s\"%s\"", i ? ", " : "", pc[i].name);
	}
	buf_printf(&sel, " FROM \"%s\"", cp_pg_source(t->name));
	buf_puts(&ins, ") VALUES (");
	for (int i = 0; i < npc; i++)
		buf_printf(&ins, "%s?", i ? ", " : "");
	buf_puts(&ins, ")");
	sqlite3_stmt *q = NULL;
	if (sel.oom || ins.oom)
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
	int n = PQntuples(r);
	if (n > CP_TABLES_MAX) {
		PQclear(r);
		snprintf(x->msg, x->msgsz, "the source has more than %d tables", CP_TABLES_MAX);
		return ALLOT_E_INVALID;
	}
	for (int i = 0; i < n; i++)
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

allot_err cp_run_to_sq(struct cp *x, const char *from, const char *to,
		       struct store_copy_report *rep, cp_progress_fn progress, void *ctx)
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
