/* store_copy.c — a deployment copied between a SQLite file and a
 * PostgreSQL database, table by table (docs/POSTGRES.md, "Moving a
 * deployment"): the entry point and the steps both directions share (the
 * columns matched, a table tallied, the log verified).  SQLite into
 * PostgreSQL: store_copy_to_pg.c; PostgreSQL into a new SQLite file:
 * store_copy_to_sq.c.
 *
 * The rows move as they are, ids, signatures, canonical bytes and the
 * log's leaves and nodes included, so the destination is the same
 * deployment: the same ledger, the same audit trail, the same log with the
 * same root.  The source is read in one snapshot (a running allotd may go
 * on writing; what it writes after the snapshot is not copied: stop it
 * first to move a deployment for good).  The destination is written in one
 * transaction: on any error nothing is left there.
 *
 * Every source table must have a destination table and every source
 * column a destination column (a value with no place would be lost
 * silently): otherwise the copy is refused, naming them.  Values are
 * converted by the destination column's type; a floating-point value is
 * refused (money and quantities are integers).  The copy ends by opening
 * both sides as stores and comparing the log's root. */
#include "store/store_copy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/b64.h"
#include "store/pg_int.h"
#include "store/store.h"

allot_err cp_pg_fail(struct cp *x, const char *what, const PGresult *r)
{
	snprintf(x->msg, x->msgsz, "%s: %s", what,
		 r ? PQresultErrorMessage(r) : PQerrorMessage(x->pg));
	pg_fold(x->msg);
	return ALLOT_E_STORE;
}

allot_err cp_sq_fail(struct cp *x, const char *what)
{
	snprintf(x->msg, x->msgsz, "%s: %s", what, sqlite3_errmsg(x->sq));
	return ALLOT_E_STORE;
}

bool cp_exec(struct cp *x, const char *sql, const char *what)
{
	PGresult *r = PQexec(x->pg, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		cp_pg_fail(x, what, r);
	PQclear(r);
	return ok;
}

/* ---- columns ------------------------------------------------------------------ */

static allot_err cp_too_many(struct cp *x, const char *table)
{
	snprintf(x->msg, x->msgsz, "%s: more than %d columns", table, CP_COLS_MAX);
	return ALLOT_E_INVALID;
}

allot_err cp_pg_cols(struct cp *x, const char *table, struct cp_col *c, int *nc)
{
	const char *v[] = {table};
	PGresult *r = PQexecParams(x->pg, "SELECT column_name, data_type FROM "
					   "information_schema.columns WHERE table_schema = "
					   "current_schema() AND table_name = $1 ORDER BY ordinal_position",
				   1, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		allot_err e = cp_pg_fail(x, "cannot read PostgreSQL's columns", r);
		PQclear(r);
		return e;
	}
	int n = PQntuples(r);
	if (n > CP_COLS_MAX) {
		PQclear(r);
		return cp_too_many(x, table);
	}
	for (int i = 0; i < n; i++) {
		snprintf(c[i].name, CP_NAME_MAX, "%s", PQgetvalue(r, i, 0));
		snprintf(c[i].type, CP_NAME_MAX, "%s", PQgetvalue(r, i, 1));
	}
	*nc = n;
	PQclear(r);
	return ALLOT_OK;
}

allot_err cp_sq_cols(struct cp *x, const char *table, struct cp_col *c, int *nc)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT name, type FROM pragma_table_info('%.63s')", table);
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(x->sq, sql, -1, &q, NULL))
		return cp_sq_fail(x, "cannot read SQLite's columns");
	int n = 0, rc = SQLITE_DONE;
	allot_err e = ALLOT_OK;
	while (!e && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (n == CP_COLS_MAX) {
			e = cp_too_many(x, table);
			break;
		}
		const char *name = (const char *)sqlite3_column_text(q, 0);
		const char *type = (const char *)sqlite3_column_text(q, 1);
		snprintf(c[n].name, CP_NAME_MAX, "%s", name ? name : "");
		snprintf(c[n].type, CP_NAME_MAX, "%s", type ? type : "");
		n++;
	}
	if (!e && rc != SQLITE_DONE)
		e = cp_sq_fail(x, "cannot read SQLite's columns");
	sqlite3_finalize(q);
	if (!e)
		*nc = n;
	return e;
}

allot_err cp_match(struct cp *x, const char *table, const struct cp_col *src, int nsrc,
		   const struct cp_col *dst, int ndst, struct cp_col *use)
{
	if (!ndst) {
		snprintf(x->msg, x->msgsz, "the source's table %s has no place in the destination",
			 table);
		return ALLOT_E_INVALID;
	}
	for (int i = 0; i < nsrc; i++) {
		int j = 0;
		while (j < ndst && strcmp(dst[j].name, src[i].name) != 0)
			j++;
		if (j == ndst) {
			snprintf(x->msg, x->msgsz, "the source's column %s.%s has no place in the "
						   "destination (a newer or different schema?)",
				 table, src[i].name);
			return ALLOT_E_INVALID;
		}
		use[i] = dst[j];
	}
	return ALLOT_OK;
}

/* ---- a table tallied, the log verified ------------------------------------------- */

allot_err cp_tally(struct cp *x, const struct cp_table *t, int64_t n,
		   struct store_copy_report *rep, cp_progress_fn progress, void *ctx)
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

allot_err cp_verify(struct cp *x, const char *from, const char *to, uint64_t size,
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

/* ---- the whole copy ------------------------------------------------------------ */

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
	allot_err e = to_pg ? cp_run_to_pg(x, from, to, rep, progress, ctx)
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
