/* nodes.c — bench_gate's multi-node mode (ALLOT_BENCH_PG=URI; docs/BENCH_PG.md).
 *
 * The instant backend gated by 1, 2 and 3 allotd nodes on one PostgreSQL
 * database, beside the single SQLite node that bench_gate.c measured just
 * before.  A node here is what allotd is: an app (its own store with its
 * own connection pool, ledger, gate and HTTP server with allotd's routes),
 * opened in this process on the same database and keys directory; the
 * clients are spread over the nodes (client i on node i mod k).  All of it
 * and the PostgreSQL server share this machine's CPUs, so more nodes add
 * no CPU: the figures show what the shared database costs, not what more
 * machines would give.
 *
 * Printed for each k: gated req/s with 8 and 24 closed-loop clients (and
 * the ratios to the SQLite node's figures with 8 and with 24 clients,
 * bench_gate.c measuring both), the added p50/p99 at a paced 1,000 req/s
 * (against the raw upstream measured here), and the database
 * round trips per gated request (allot_store_roundtrips_total over the
 * closed-loop phase, the nodes' background work included). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "daemon/app.h"
#include "gate/gate.h"
#include "gate/tokens.h"
#include "http/server.h"

#include "bench_gate.h"

#define NODES_MAX 3
#define PACED_RATE 1000
#define PACED_THREADS 4
/* 8: as the SQLite figure; 24: 8 per node with three. */
static const int loop_clients[] = {8, NODES_LOOP_MAX};

bool bench_node_open(struct bench_node *n, const char *db, const char *keys,
		      const struct nodes_base *b, char *msg, size_t msgsz)
{
	memset(n, 0, sizeof *n);
	n->app.cfg = (struct app_config){.listen = "127.0.0.1:0", .db = db, .charter = b->charter,
					 .keys = keys, .models = b->models, .deployment = "bench",
					 .threads = 1};
	if (getenv("ALLOT_FLUSH_MS")) {
		n->app.cfg.flush_ms = atoi(getenv("ALLOT_FLUSH_MS"));
		n->app.cfg.flush_ms_set = true;
	}
	if (app_open(&n->app, msg, msgsz) || app_gate_open(&n->app, &n->app.gate, msg, msgsz))
		return false;
	struct http_server_config hc = {.listen = "127.0.0.1:0", .routes = api_routes,
					.nroutes = api_nroutes, .app = &n->app,
					.authenticate = api_authenticate, .role_of = principal_role_of,
					.principal_free = api_principal_free};
	if (http_server_start(&hc, &n->srv, msg, msgsz))
		return false;
	snprintf(n->url, sizeof n->url, "http://127.0.0.1:%u/v1/completions",
		 http_server_port(n->srv));
	return true;
}

void bench_node_close(struct bench_node *n)
{
	if (n->srv)
		http_server_stop(n->srv);
	n->srv = NULL;
	gate_free(n->app.gate);
	n->app.gate = NULL;
	app_close(&n->app);
}

/* One statement on the server's own database; false after a message. */
static bool admin(const char *uri, const char *sql)
{
	PGconn *c = PQconnectdb(uri);
	bool ok = PQstatus(c) == CONNECTION_OK;
	PGresult *r = ok ? PQexec(c, sql) : NULL;
	ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "bench_gate: PostgreSQL: %s", r ? PQresultErrorMessage(r)
								: PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok;
}

char *bench_node_mint(struct bench_node *n)
{
	struct token_claims cl = {0};
	snprintf(cl.inst, sizeof cl.inst, "epfl");
	snprintf(cl.proj, sizeof cl.proj, "climate");
	snprintf(cl.sub, sizeof cl.sub, "alice@epfl.ch");
	cl.iat = cl.nbf = time_now_us();
	cl.exp = cl.iat + 3600 * US_PER_SEC;
	char *token = NULL, msg[256];
	if (tokens_mint(gate_tokens(n->app.gate), n->app.store, &cl, "bench", &token, msg,
			sizeof msg)) {
		fprintf(stderr, "bench_gate: mint: %s\n", msg);
		return NULL;
	}
	return token;
}

struct nodes_row {
	double rps[2], rt[2], add50, add99;
	/* CPU µs per gated request: this process, its client threads, the
	 * PostgreSQL server (srvcpu.c; < 0: not measured) */
	double cpu[2], cli[2], srv[2];
	size_t errors;
};

/* The figures with the first k nodes; pm: the server's postmaster (0:
 * unknown), db: the database (pg_stat_statements). */
static void measure(struct bench_node *nodes, int k, const char *token, const struct nodes_base *b,
		    const struct run_result *raw, struct nodes_row *row, long pm, const char *db)
{
	const char *urls[NODES_MAX];
	for (int i = 0; i < k; i++)
		urls[i] = nodes[i].url;
	run_clients_multi(urls, k, token, b->gate_body, 2 * k, 0, 0.3); /* warm-up */
	struct run_result p = run_clients_multi(urls, k, token, b->gate_body, PACED_THREADS,
						PACED_RATE, b->seconds);
	row->add50 = p.p50 - raw->p50;
	row->add99 = p.p99 - raw->p99;
	row->errors = p.errors;
	for (size_t c = 0; c < sizeof loop_clients / sizeof loop_clients[0]; c++) {
		bool pgss = k == 1 && c == 1 && srvcpu_pgss_on();
		if (pgss)
			srvcpu_pgss_reset(db);
		uint64_t rt0 = metrics_counter_get(MC_STORE_ROUNDTRIPS);
		double s0 = srvcpu_us(pm);
		struct run_result t = run_clients_multi(urls, k, token, b->gate_body,
							loop_clients[c], 0, b->seconds);
		double s1 = srvcpu_us(pm);
		uint64_t rt = metrics_counter_get(MC_STORE_ROUNDTRIPS) - rt0;
		double n = t.n ? (double)t.n : 1;
		row->cpu[c] = t.cpu_us;
		row->cli[c] = t.cpu_clients_us;
		row->srv[c] = s0 >= 0 && s1 >= 0 ? (s1 - s0) / n : -1;
		if (pgss)
			srvcpu_pgss_print(db, (double)t.n);
		row->rps[c] = t.rps;
		row->rt[c] = t.n ? (double)rt / (double)t.n : 0;
		row->errors += t.errors;
	}
}

/* The CPU per gated request on each side. */
static void print_cpu(const struct nodes_row *rows, int opened, bool ok, const struct nodes_base *b,
		      long pm)
{
	printf("  CPU ms per gated request, 8 / 24 clients (node: this process less its client "
	       "threads, the instant upstream included; server: PostgreSQL postmaster %ld and its "
	       "children, /proc):\n",
	       pm);
	printf("  %-22s node %.3f, server 0 (clients %.3f; all in one process)\n",
	       "1 node, SQLite", (b->sqlite_cpu - b->sqlite_cpu_clients) / 1000,
	       b->sqlite_cpu_clients / 1000);
	for (int k = 1; k <= opened && ok; k++) {
		const struct nodes_row *r = &rows[k - 1];
		char what[32];
		snprintf(what, sizeof what, "%d node%s, PostgreSQL", k, k > 1 ? "s" : "");
		printf("  %-22s node %.3f / %.3f, server %.3f / %.3f (clients %.3f / %.3f)\n", what,
		       (r->cpu[0] - r->cli[0]) / 1000, (r->cpu[1] - r->cli[1]) / 1000,
		       r->srv[0] / 1000, r->srv[1] / 1000, r->cli[0] / 1000, r->cli[1] / 1000);
	}
}

void bench_nodes(const char *uri, const struct nodes_base *b)
{
	char dbname[64], sql[128], db[1200], keys[320], msg[512] = "";
	snprintf(dbname, sizeof dbname, "allot_bench_gate_%d", (int)getpid());
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
	if (strlen(uri) > 1024 || !admin(uri, sql))
		return;
	snprintf(db, sizeof db, "%s%sdbname=%s", uri, strchr(uri, '?') ? "&" : "?", dbname);
	snprintf(keys, sizeof keys, "%s/keys-pg", b->dir);
	printf("\n== several nodes on one PostgreSQL database (instant backend; nodes, clients "
	       "and the server on these %ld CPUs), load average %s",
	       sysconf(_SC_NPROCESSORS_ONLN), loadavg_text());
	struct run_result raw = run_clients_multi(&b->up_url, 1, NULL, b->raw_body, PACED_THREADS,
						  PACED_RATE, b->seconds);
	long pm = srvcpu_postmaster(db);
	struct bench_node nodes[NODES_MAX];
	struct nodes_row rows[NODES_MAX] = {0};
	int opened = 0;
	char *token = NULL;
	/* ALLOT_BENCH_NODES=1..3: stop after that many (A/B runs of one node) */
	int kmax = getenv("ALLOT_BENCH_NODES") ? atoi(getenv("ALLOT_BENCH_NODES")) : NODES_MAX;
	kmax = kmax < 1 || kmax > NODES_MAX ? NODES_MAX : kmax;
	for (int k = 1; k <= kmax; k++) {
		/* a name each (allotd: host and listen address, the same for
		 * every node here): under one name each start would fence the
		 * leases of the node before */
		char name[32];
		snprintf(name, sizeof name, "bench-node-%d", k);
		setenv("ALLOT_NODE", name, 1);
		bool opened_k = bench_node_open(&nodes[k - 1], db, keys, b, msg, sizeof msg);
		unsetenv("ALLOT_NODE");
		if (!opened_k) {
			fprintf(stderr, "bench_gate: node %d: %s\n", k, msg);
			bench_node_close(&nodes[k - 1]);
			break;
		}
		opened = k;
		if (k == 1 && !(token = bench_node_mint(&nodes[0])))
			break;
		measure(nodes, k, token, b, &raw, &rows[k - 1], pm, db);
	}
	printf("  %-22s %10s %10s %12s %10s %10s %12s %7s\n", "", "req/s (8)", "req/s (24)",
	       "x SQLite 8/24", "add p50", "add p99", "round trips", "errors");
	char sq24[16] = "";
	if (b->sqlite_rps24 > 0)
		snprintf(sq24, sizeof sq24, "%.0f", b->sqlite_rps24);
	printf("  %-22s %10.0f %10s %12s %7.0f µs %7.0f µs %12s %7s\n", "1 node, SQLite",
	       b->sqlite_rps, sq24, "1.00 / 1.00", b->sqlite_add50, b->sqlite_add99, "0", "");
	for (int k = 1; k <= opened && token; k++) {
		const struct nodes_row *r = &rows[k - 1];
		char what[32];
		snprintf(what, sizeof what, "%d node%s, PostgreSQL", k, k > 1 ? "s" : "");
		/* each client count against the SQLite node's at the same count */
		printf("  %-22s %10.0f %10.0f %5.2f / %4.2f %7.0f µs %7.0f µs %5.1f / %4.1f %7zu\n",
		       what, r->rps[0], r->rps[1], b->sqlite_rps > 0 ? r->rps[0] / b->sqlite_rps : 0,
		       b->sqlite_rps24 > 0 ? r->rps[1] / b->sqlite_rps24 : 0, r->add50, r->add99,
		       r->rt[0], r->rt[1], r->errors);
	}
	printf("  (round trips: database statements per gated request with 8 / 24 clients, "
	       "background work included; raw p50/p99 at %d req/s here: %.0f / %.0f µs)\n",
	       PACED_RATE, raw.p50, raw.p99);
	print_cpu(rows, opened, token != NULL, b, pm);
	printf("  targets: one node on PostgreSQL >= 0.5x one node on SQLite; added p50 <= 1 ms, "
	       "p99 <= 3 ms\n");
	free(token);
	for (int k = opened; k > 0; k--)
		bench_node_close(&nodes[k - 1]);
	snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", dbname);
	admin(uri, sql);
}
