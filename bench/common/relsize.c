/* relsize.c — each table's and index's bytes on disk (bench/common/relsize.h). */
#include "relsize.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A relation's own bytes and its TOAST table's, for tables and indexes. */
static const char q_pg[] =
	"SELECT c.relname, pg_relation_size(c.oid) + "
	"coalesce(pg_total_relation_size(c.reltoastrelid), 0) "
	"FROM pg_class c WHERE c.relkind IN ('r', 'i') AND "
	"c.relnamespace = 'public'::regnamespace";
static const char q_sq[] = "SELECT name, sum(pgsize) FROM dbstat GROUP BY name";

static void put(struct relsizes *out, const char *name, double bytes)
{
	if (out->n >= RELSIZE_MAX)
		return;
	snprintf(out->name[out->n], sizeof out->name[0], "%s", name ? name : "?");
	out->bytes[out->n++] = bytes;
}

bool relsize_read(const char *db, bool pg, struct relsizes *out, char *msg, size_t msgsz)
{
	out->n = 0;
	bool ok = false;
	if (pg) {
		PGconn *c = PQconnectdb(db);
		PGresult *r = PQexec(c, q_pg);
		ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		for (int i = 0; ok && i < PQntuples(r); i++)
			put(out, PQgetvalue(r, i, 0), strtod(PQgetvalue(r, i, 1), NULL));
		if (!ok)
			snprintf(msg, msgsz, "%s", PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		return ok;
	}
	sqlite3 *s = NULL;
	sqlite3_stmt *q = NULL;
	if (sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(s, q_sq, -1, &q, NULL) == SQLITE_OK) {
		while (sqlite3_step(q) == SQLITE_ROW)
			put(out, (const char *)sqlite3_column_text(q, 0),
			    (double)sqlite3_column_int64(q, 1));
		ok = true;
	} else {
		snprintf(msg, msgsz, "no dbstat table in this SQLite: %s",
			 s ? sqlite3_errmsg(s) : "cannot open");
	}
	sqlite3_finalize(q);
	sqlite3_close(s);
	return ok;
}

void relsize_minus(struct relsizes *out, const struct relsizes *before)
{
	for (int i = 0; i < out->n; i++)
		for (int k = 0; k < before->n; k++)
			if (strcmp(before->name[k], out->name[i]) == 0)
				out->bytes[i] -= before->bytes[k];
}

void relsize_print(struct relsizes *rs, int most, double per, const char *unit)
{
	for (int shown = 0; shown < most; shown++) {
		int best = -1;
		for (int i = 0; i < rs->n; i++)
			if (rs->bytes[i] > 0 && (best < 0 || rs->bytes[i] > rs->bytes[best]))
				best = i;
		if (best < 0)
			return;
		printf("      %-36s %6.0f %s\n", rs->name[best], rs->bytes[best] / per, unit);
		rs->bytes[best] = 0;
	}
}
