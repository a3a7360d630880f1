/* bench_gate.h — what bench_gate.c's files share (the load clients, the
 * multi-node mode of nodes.c). */
#ifndef ALLOT_BENCH_GATE_H
#define ALLOT_BENCH_GATE_H

#include <stdbool.h>
#include <stddef.h>

struct run_result {
	double rps, p50, p90, p99, max;
	double cpu_us;       /* CPU of the whole process (clients, servers, backend) per request */
	double cpu_clients_us; /* of that, the client threads' own */
	size_t n, errors;
};

/* nthreads clients, client i on urls[i % nurls], for seconds: paced at rate
 * requests/s in all (latency from each scheduled send), or closed loop
 * (rate 0).  auth: a bearer token or NULL; body: POSTed (NULL: GET). */
struct run_result run_clients_multi(const char *const *urls, int nurls, const char *auth,
				    const char *body, int nthreads, double rate, double seconds);
/* The first three fields of /proc/loadavg, with a newline. */
const char *loadavg_text(void);

/* The most closed-loop clients of the nodes' phases (nodes.c), also run on
 * the SQLite node when ALLOT_BENCH_PG is set. */
#define NODES_LOOP_MAX 24

/* What the single-node SQLite run measured, and its set-up. */
struct nodes_base {
	double sqlite_rps;       /* gated instant req/s, 8 clients */
	double sqlite_rps24;     /* the same with NODES_LOOP_MAX clients (0: not measured) */
	double sqlite_add50, sqlite_add99; /* added µs at 1,000 req/s */
	double sqlite_cpu, sqlite_cpu_clients; /* µs per gated request: the process, its clients */
	const char *up_url;      /* the instant upstream's completions URL (raw) */
	const char *raw_body, *gate_body; /* its request body, and the gated one */
	const char *charter, *models, *dir;
	double seconds;
};
/* A node: an app as allotd opens it (store, ledger, gate) and its HTTP
 * server with allotd's routes, in this process (nodes.c). */
#include "daemon/app.h"
struct bench_node {
	struct app app;
	struct http_server *srv;
	char url[128];    /* its /v1/completions */
};
/* Opens a node on db (a SQLite path or a postgres:// URI) with the keys
 * directory keys and base's charter and models; false with msg (close it
 * anyway). */
bool bench_node_open(struct bench_node *n, const char *db, const char *keys,
		     const struct nodes_base *b, char *msg, size_t msgsz);
void bench_node_close(struct bench_node *n);
/* A member token of epfl/climate for an hour, or NULL after a message. */
char *bench_node_mint(struct bench_node *n);

/* The instant backend gated by 1, 2 and 3 nodes on one new database on the
 * PostgreSQL server at uri (dropped after); prints, asserts nothing. */
void bench_nodes(const char *uri, const struct nodes_base *base);
/* ALLOT_BENCH_ROWS=N (growth.c): gated req/s on a ledger of 0 rows and on
 * one of N rows, measured alternately; prints, asserts nothing. */
void bench_growth(long long rows, const struct nodes_base *base);

/* srvcpu.c: the PostgreSQL server's CPU.  The postmaster's pid (the parent
 * of a session's backend on uri), 0 when not found on this machine. */
long srvcpu_postmaster(const char *uri);
/* CPU µs of the postmaster pm and its children so far, -1 when unknown. */
double srvcpu_us(long pm);
/* ALLOT_BENCH_PGSS set: reset pg_stat_statements on db before a phase,
 * print its top statements per gated request after it. */
bool srvcpu_pgss_on(void);
void srvcpu_pgss_reset(const char *db);
void srvcpu_pgss_print(const char *db, double requests);

#endif
