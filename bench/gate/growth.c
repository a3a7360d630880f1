/* growth.c — bench_gate's ledger-growth mode (ALLOT_BENCH_ROWS=N; issue 13,
 * docs/BENCH_GATE.md "As the ledger grows").
 *
 * Gated requests/s with the instant backend on a ledger that holds no
 * records and on one that holds N, each a store of its own opened as
 * allotd opens it (bench_node_open) with 8 closed-loop clients, measured
 * alternately (empty, full, empty, full) so that a change of the
 * machine's load shows as a spread instead of a ratio.  On SQLite (two
 * files), and on PostgreSQL when ALLOT_BENCH_PG names a server (two new
 * databases on it, dropped after); ALLOT_BENCH_GROWTH=sqlite or pg runs
 * one store only.
 *
 * The N rows go straight into usage_records in one INSERT … SELECT (not
 * through the gate: N requests would take hours here), shaped as the
 * gate's own settlements are: two records per request (tokens_in,
 * tokens_out), random token ids, 40 institutions × 10 projects × 5
 * members, the current month, the sealed spelling (no canonical bytes
 * kept, docs/LEDGER.md "Storage").  They have no log leaves: the leaves
 * table is only appended at its end, which does not slow as it grows,
 * while the records' indexes take their inserts anywhere.  The store
 * opened on them totals the new rows into its bounds at its first booking
 * (in the warm-up, not measured).  The clients use one token, so the
 * measured bookings' record ids share a prefix and land together in the
 * (provider, record_id) index; a commons' many tokens spread them.
 * ALLOT_BENCH_GROWTH_ROUNDS=K (1..10, default 2): rounds of each. */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/timeutil.h"

#include "bench_gate.h"
#include "../common/relsize.h"

#define LOOP_CLIENTS 8
#define ROUNDS_MAX 10 /* ALLOT_BENCH_GROWTH_ROUNDS (default 2) */

/* The rows, in one transaction with a large page cache (the loader's
 * own connection; the store is not open). */
static bool load_rows(const char *db, long long rows)
{
	sqlite3 *h = NULL;
	if (sqlite3_open(db, &h) != SQLITE_OK) {
		fprintf(stderr, "bench_gate: growth: %s: %s\n", db, sqlite3_errmsg(h));
		sqlite3_close(h);
		return false;
	}
	int64_t now = time_now_us();
	int64_t month = 28LL * 86400 * 1000000;
	char sql[2048];
	snprintf(sql, sizeof sql,
		 "PRAGMA cache_size = -1000000; PRAGMA synchronous = OFF; BEGIN; "
		 "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < %lld) "
		 "INSERT INTO usage_records(provider, record_id, seq, kind, institution, project, "
		 "member, resource, class, model, quantity, start_us, end_us, received_us, book_us, "
		 "late, charter_version, rate_micro, charge_micro, overage, source, canonical, sha256) "
		 "SELECT 'remote', 'gate:' || lower(hex(randomblob(16))) || ':1-' || "
		 "CASE i %% 2 WHEN 0 THEN 'in' ELSE 'out' END, NULL, 'usage', 'inst' || (i %% 40), "
		 "'proj' || ((i / 40) %% 10), 'm' || ((i / 400) %% 5) || '@example.org', "
		 "CASE i %% 2 WHEN 0 THEN 'tokens_in' ELSE 'tokens_out' END, '', 'instant', "
		 "1 + (i * 7919) %% 1000, b - 1000000, b, b, b, 0, 1, 100, "
		 "(1 + (i * 7919) %% 1000) * 100, 0, 'gate', zeroblob(0), randomblob(32) "
		 "FROM (SELECT i, %lld - (i * 5183) %% %lld AS b FROM c); COMMIT",
		 rows - 1, (long long)now, (long long)month);
	char *err = NULL;
	bool ok = sqlite3_exec(h, sql, NULL, NULL, &err) == SQLITE_OK;
	if (!ok)
		fprintf(stderr, "bench_gate: growth: loading: %s\n", err ? err : "?");
	sqlite3_free(err);
	sqlite3_close(h);
	return ok;
}

/* One statement on uri's database, or a value (the first column of its
 * first row into *val when val); false after a message. */
static bool pg_do(const char *uri, const char *sql, double *val)
{
	PGconn *c = PQconnectdb(uri);
	bool ok = PQstatus(c) == CONNECTION_OK;
	PGresult *r = ok ? PQexec(c, sql) : NULL;
	ok = ok && (PQresultStatus(r) == PGRES_COMMAND_OK ||
		    (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1));
	if (!ok)
		fprintf(stderr, "bench_gate: growth: PostgreSQL: %s",
			r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	else if (val)
		*val = atof(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return ok;
}

/* The same rows as load_rows, on PostgreSQL: its layout (migration 0007:
 * no canonical bytes, the SHA-256 NULL where it is that of the sealed
 * spelling, no leaf; 0009: kind and source as codes), a million rows per
 * transaction. */
static bool load_rows_pg(const char *uri, long long rows)
{
	int64_t now = time_now_us();
	int64_t month = 28LL * 86400 * 1000000;
	char sql[2048];
	for (long long at = 0; at < rows; at += 1000000) {
		long long to = at + 1000000 < rows ? at + 1000000 : rows;
		snprintf(sql, sizeof sql,
			 "INSERT INTO usage_records(provider, record_id, seq, kind, institution, "
			 "project, member, resource, class, model, quantity, start_us, end_us, "
			 "received_us, book_us, late, charter_version, rate_micro, charge_micro, "
			 "overage, source, canonical, sha256) "
			 "SELECT 'remote', 'gate:' || md5(random()::text) || ':1-' || "
			 "CASE i %% 2 WHEN 0 THEN 'in' ELSE 'out' END, NULL, 'u', "
			 "'inst' || (i %% 40), 'proj' || ((i / 40) %% 10), "
			 "'m' || ((i / 400) %% 5) || '@example.org', "
			 "CASE i %% 2 WHEN 0 THEN 'tokens_in' ELSE 'tokens_out' END, '', 'instant', "
			 "1 + (i * 7919) %% 1000, b - 1000000, b, b, b, false, 1, 100, "
			 "(1 + (i * 7919) %% 1000) * 100, false, 'g', '\\x'::bytea, NULL "
			 "FROM (SELECT i, %lld - (i * 5183) %% %lld AS b "
			 "FROM generate_series(%lld::bigint, %lld) AS i) AS g",
			 (long long)now, (long long)month, at, to - 1);
		if (!pg_do(uri, sql, NULL))
			return false;
	}
	return pg_do(uri, "VACUUM ANALYZE usage_records", NULL);
}

static double file_mb(const char *path)
{
	struct stat st;
	char wal[400];
	double b = stat(path, &st) == 0 ? (double)st.st_size : 0;
	snprintf(wal, sizeof wal, "%s-wal", path);
	if (stat(wal, &st) == 0)
		b += (double)st.st_size;
	return b / 1e6;
}

struct side {
	const char *name;
	char db[1200], keys[320];  /* a deployment each: its own keys */
	char dbname[64];           /* PostgreSQL: its database */
	struct bench_node n;
	char *token;
	double rps[ROUNDS_MAX], p99[ROUNDS_MAX];
};

static bool side_open(struct side *s, const struct nodes_base *b)
{
	char msg[512] = "";
	if (!bench_node_open(&s->n, s->db, s->keys, b, msg, sizeof msg)) {
		fprintf(stderr, "bench_gate: growth: %s: %s\n", s->name, msg);
		return false;
	}
	return (s->token = bench_node_mint(&s->n)) != NULL;
}

/* MB on disk: the SQLite file and its WAL, or the PostgreSQL database. */
static double side_mb(const struct side *s, bool pg)
{
	double bytes = 0;
	if (!pg)
		return file_mb(s->db);
	return pg_do(s->db, "SELECT pg_database_size(current_database())", &bytes) ? bytes / 1e6
										  : 0;
}

/* ALLOT_BENCH_GROWTH_ROUNDS (1..ROUNDS_MAX, default 2); 0 after a message
 * when it is anything else. */
static int growth_rounds(void)
{
	const char *v = getenv("ALLOT_BENCH_GROWTH_ROUNDS");
	if (!v)
		return 2;
	char *end;
	long k = strtol(v, &end, 10);
	if (end == v || *end || k < 1 || k > ROUNDS_MAX) {
		fprintf(stderr, "bench_gate: ALLOT_BENCH_GROWTH_ROUNDS: a whole number from 1 to %d, "
				"not \"%s\"\n", ROUNDS_MAX, v);
		return 0;
	}
	return (int)k;
}

/* uri: the PostgreSQL server (NULL: SQLite files in b->dir). */
static void growth_run(long long rows, const struct nodes_base *b, const char *uri)
{
	int rounds = growth_rounds(); /* before minutes of loading */
	if (!rounds)
		return;
	bool pg = uri != NULL;
	struct side sides[2] = {{.name = "empty ledger"}, {.name = "full ledger"}};
	for (int i = 0; i < 2; i++) {
		const char *w = i ? "full" : "empty";
		struct side *s = &sides[i];
		snprintf(s->keys, sizeof s->keys, "%s/keys-%s%s", b->dir, w, pg ? "-pg" : "");
		if (!pg) {
			snprintf(s->db, sizeof s->db, "%s/growth-%s.db", b->dir, w);
			continue;
		}
		char sql[128];
		snprintf(s->dbname, sizeof s->dbname, "allot_bench_growth_%s_%d", w, (int)getpid());
		snprintf(sql, sizeof sql, "CREATE DATABASE %s", s->dbname);
		if (strlen(uri) > 1024 || !pg_do(uri, sql, NULL)) {
			s->dbname[0] = '\0';
			goto out;
		}
		snprintf(s->db, sizeof s->db, "%s%sdbname=%s", uri, strchr(uri, '?') ? "&" : "?",
			 s->dbname);
	}
	printf("\n== the ledger grows: %s with 0 and %lld records already booked (instant "
	       "backend, %d closed-loop clients), load average %s",
	       pg ? "PostgreSQL" : "SQLite", rows, LOOP_CLIENTS, loadavg_text());
	/* the full one: made by the store (its schema), then loaded */
	if (!side_open(&sides[1], b))
		goto out;
	free(sides[1].token);
	sides[1].token = NULL;
	bench_node_close(&sides[1].n);
	double before = side_mb(&sides[1], pg);
	double t0 = (double)time_mono_us();
	if (!(pg ? load_rows_pg(sides[1].db, rows) : load_rows(sides[1].db, rows)))
		goto out;
	double mb = side_mb(&sides[1], pg);
	printf("  loaded %lld rows in %.0f s: %.0f MB (%.0f bytes per record, without log leaves)\n",
	       rows, ((double)time_mono_us() - t0) / 1e6, mb, (mb - before) * 1e6 / (double)rows);
	bool ok = true;
	double empty_mb = 0, booked = 0; /* the empty ledger's growth per gated request */
	struct relsizes *rels = calloc(2, sizeof *rels);
	char why[256];
	for (int i = 0; i < 2 && ok; i++) {
		t0 = (double)time_mono_us();
		ok = side_open(&sides[i], b);
		if (i == 0 && ok) {
			empty_mb = side_mb(&sides[0], pg);
			if (rels && !relsize_read(sides[0].db, pg, &rels[0], why, sizeof why))
				printf("  (sizes not read: %s)\n", why);
		}
		if (i == 1 && ok)
			printf("  opened the full ledger in %.1f s (the store totals the loaded rows "
			       "into its bounds at the first booking: in the warm-up)\n",
			       ((double)time_mono_us() - t0) / 1e6);
	}
	for (int r = 0; r < rounds && ok; r++)
		for (int i = 0; i < 2; i++) {
			struct side *s = &sides[i];
			const char *url = s->n.url;
			struct run_result w = run_clients_multi(&url, 1, s->token, b->gate_body, 2,
								0, 0.3); /* warm-up */
			struct run_result t = run_clients_multi(&url, 1, s->token, b->gate_body,
								LOOP_CLIENTS, 0, b->seconds);
			if (i == 0)
				booked += (double)(w.n - w.errors + t.n - t.errors);
			s->rps[r] = t.rps;
			s->p99[r] = t.p99;
			printf("  round %d, %-12s %8.0f req/s  p50 %6.0f µs  p99 %6.0f µs  errors %zu\n",
			       r + 1, s->name, t.rps, t.p50, t.p99, t.errors);
		}
	if (ok) {
		double e = 0, f = 0;
		printf("  full / empty, round by round:");
		for (int r = 0; r < rounds; r++) {
			e += sides[0].rps[r];
			f += sides[1].rps[r];
			printf(" %.2f", sides[0].rps[r] > 0 ? sides[1].rps[r] / sides[0].rps[r] : 0);
		}
		printf("\n  full / empty: %.2f over %d rounds; target: >= 0.90 (<= 10 %% slower at "
		       "10,000,000 records)\n",
		       e > 0 ? f / e : 0, rounds);
		/* closed first: SQLite's WAL checkpointed into the file */
		bench_node_close(&sides[0].n);
		double grown = side_mb(&sides[0], pg) - empty_mb;
		printf("  bytes on disk per gated request: %.0f (the empty ledger's growth over "
		       "its %.0f gated requests: two records each, their log leaves, log nodes "
		       "and indexes)\n",
		       booked > 0 ? grown * 1e6 / booked : 0, booked);
		if (rels && getenv("ALLOT_BENCH_SIZES") && booked > 0) {
			if (relsize_read(sides[0].db, pg, &rels[1], why, sizeof why)) {
				relsize_minus(&rels[1], &rels[0]);
				relsize_print(&rels[1], 10, booked, "bytes per gated request");
			}
		}
	}
	free(rels);
out:
	for (int i = 0; i < 2; i++) {
		free(sides[i].token);
		bench_node_close(&sides[i].n);
		if (pg) {
			char sql[128];
			snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", sides[i].dbname);
			if (sides[i].dbname[0])
				pg_do(uri, sql, NULL);
			continue;
		}
		char p[400];
		unlink(sides[i].db);
		snprintf(p, sizeof p, "%s-wal", sides[i].db);
		unlink(p);
		snprintf(p, sizeof p, "%s-shm", sides[i].db);
		unlink(p);
	}
}

void bench_growth(long long rows, const struct nodes_base *b)
{
	/* ALLOT_BENCH_GROWTH: "sqlite" or "pg" alone; unset: SQLite, and
	 * PostgreSQL when ALLOT_BENCH_PG names a server */
	const char *only = getenv("ALLOT_BENCH_GROWTH");
	const char *uri = getenv("ALLOT_BENCH_PG");
	if (!only || strcmp(only, "sqlite") == 0)
		growth_run(rows, b, NULL);
	if (uri && (!only || strcmp(only, "pg") == 0))
		growth_run(rows, b, uri);
}
