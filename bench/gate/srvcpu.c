/* srvcpu.c — the PostgreSQL server's side of bench_gate's multi-node mode
 * (docs/BENCH_PG.md, "Where the CPU goes").
 *
 * The server's CPU: the postmaster is found as the parent of a session's
 * backend (pg_backend_pid()), and what is summed from /proc is utime +
 * stime of the postmaster and of every live process whose parent it is
 * (the backends, checkpointer, WAL writer, autovacuum...), plus the
 * postmaster's cutime + cstime (the children that exited and were
 * reaped).  Only a server on this machine can be measured this way; any
 * other gives "not measured".
 *
 * ALLOT_BENCH_PGSS=1 (the server started with pg_stat_statements
 * preloaded: ALLOT_PG_PRELOAD=pg_stat_statements scripts/with-pg.sh):
 * the statements' counters are reset before a phase and the top ones by
 * total execution time printed after it. */
#include <ctype.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_gate.h"

/* /proc/PID/stat's ppid and CPU ticks (utime+stime, and cutime+cstime);
 * false when it cannot be read. */
static bool proc_stat(long pid, long *ppid, long long *self, long long *children)
{
	char path[64], line[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(line, 1, sizeof line - 1, f);
	fclose(f);
	line[n] = 0;
	const char *p = strrchr(line, ')'); /* the command may hold spaces */
	long long ut, st, cut, cst;
	/* after ')': state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime */
	if (!p || sscanf(p + 1, " %*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld %lld %lld",
			 ppid, &ut, &st, &cut, &cst) != 5)
		return false;
	*self = ut + st;
	*children = cut + cst;
	return true;
}

long srvcpu_postmaster(const char *uri)
{
	PGconn *c = PQconnectdb(uri);
	PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, "SELECT pg_backend_pid()") : NULL;
	long pid = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
			   ? atol(PQgetvalue(r, 0, 0))
			   : 0;
	PQclear(r);
	long ppid = 0;
	long long a, b;
	if (pid <= 0 || !proc_stat(pid, &ppid, &a, &b))
		ppid = 0;
	PQfinish(c); /* the postmaster outlives its backend */
	return ppid > 1 ? ppid : 0;
}

double srvcpu_us(long pm)
{
	if (pm <= 0)
		return -1;
	long long ticks = 0, self, children;
	long ppid;
	if (!proc_stat(pm, &ppid, &self, &children))
		return -1;
	ticks += self + children;
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		if (proc_stat(atol(e->d_name), &ppid, &self, &children) && ppid == pm)
			ticks += self;
	}
	closedir(d);
	return (double)ticks * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

bool srvcpu_pgss_on(void)
{
	const char *v = getenv("ALLOT_BENCH_PGSS");
	return v && *v && strcmp(v, "0") != 0;
}

/* One statement; false after a message. */
static bool exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType s = PQresultStatus(r);
	bool ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "bench_gate: pg_stat_statements: %s", PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

void srvcpu_pgss_reset(const char *db)
{
	PGconn *c = PQconnectdb(db);
	if (PQstatus(c) == CONNECTION_OK &&
	    exec_ok(c, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
		exec_ok(c, "SELECT pg_stat_statements_reset()");
	PQfinish(c);
}

void srvcpu_pgss_print(const char *db, double requests)
{
	static const char q[] =
		"SELECT calls, rows, total_exec_time, total_plan_time, "
		"shared_blks_hit + local_blks_hit, shared_blks_dirtied, wal_bytes, "
		"regexp_replace(left(query, 110), '\\s+', ' ', 'g') FROM pg_stat_statements "
		"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
		"ORDER BY total_exec_time DESC LIMIT 14";
	PGconn *c = PQconnectdb(db);
	PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, q) : NULL;
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "bench_gate: pg_stat_statements: %s",
			r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	} else {
		printf("  pg_stat_statements over %.0f gated requests (top by execution time; "
		       "µs per gated request; nested statements counted too):\n",
		       requests);
		printf("  %9s %8s %9s %8s %8s %8s %9s  %s\n", "calls", "rows", "exec µs/rq",
		       "plan µs", "hits/rq", "dirt/rq", "WAL B/rq", "statement");
		for (int i = 0; i < PQntuples(r); i++) {
			double rq = requests > 0 ? requests : 1;
			printf("  %9s %8s %9.1f %8.1f %8.1f %8.2f %9.0f  %s\n", PQgetvalue(r, i, 0),
			       PQgetvalue(r, i, 1), atof(PQgetvalue(r, i, 2)) * 1000 / rq,
			       atof(PQgetvalue(r, i, 3)) * 1000 / rq, atof(PQgetvalue(r, i, 4)) / rq,
			       atof(PQgetvalue(r, i, 5)) / rq, atof(PQgetvalue(r, i, 6)) / rq,
			       PQgetvalue(r, i, 7));
		}
	}
	PQclear(r);
	/* the plans of what ALLOT_BENCH_EXPLAIN_SQL names, ';'-separated */
	const char *ex = getenv("ALLOT_BENCH_EXPLAIN_SQL");
	char *list = ex ? strdup(ex) : NULL, *save = NULL;
	for (char *q1 = list ? strtok_r(list, ";", &save) : NULL; q1; q1 = strtok_r(NULL, ";", &save)) {
		char sql[2048];
		snprintf(sql, sizeof sql, "EXPLAIN (ANALYZE, BUFFERS) %s", q1);
		PGresult *x = PQexec(c, sql);
		printf("  %s\n", sql);
		for (int i = 0; PQresultStatus(x) == PGRES_TUPLES_OK && i < PQntuples(x); i++)
			printf("    %s\n", PQgetvalue(x, i, 0));
		if (PQresultStatus(x) != PGRES_TUPLES_OK)
			printf("    %s", PQresultErrorMessage(x));
		PQclear(x);
	}
	free(list);
	PQfinish(c);
}
