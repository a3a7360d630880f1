/* relsize.h — each table's and index's bytes on disk in a database, for
 * the benchmarks that say where their bytes go (ALLOT_BENCH_SIZES=1:
 * bench/ingest per record, bench/gate's growth mode per gated request).
 * Compiled into every benchmark (Makefile: bench/common). */
#ifndef ALLOT_BENCH_RELSIZE_H
#define ALLOT_BENCH_RELSIZE_H

#include <stdbool.h>
#include <stddef.h>

#define RELSIZE_MAX 64

struct relsizes {
	int n;
	char name[RELSIZE_MAX][64];
	double bytes[RELSIZE_MAX];
};

/* db: a PostgreSQL connection string (pg) or an SQLite file, read-only.
 * false (msg set, out->n 0) when they cannot be read. */
bool relsize_read(const char *db, bool pg, struct relsizes *out, char *msg, size_t msgsz);

/* Subtracts before's bytes from out's, relation by relation (the growth
 * between two readings). */
void relsize_minus(struct relsizes *out, const struct relsizes *before);

/* Prints the largest `most` of rs, one a line, each as bytes / per and
 * the unit ("bytes/record"). */
void relsize_print(struct relsizes *rs, int most, double per, const char *unit);

#endif
