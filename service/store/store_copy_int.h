/* store_copy_int.h — private to store_copy*.c: the state of one copy and
 * the steps both directions share (store_copy.c); store_copy_to_pg.c copies
 * a SQLite file into PostgreSQL, store_copy_to_sq.c PostgreSQL into a new
 * SQLite file. */
#ifndef ALLOT_STORE_COPY_INT_H
#define ALLOT_STORE_COPY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "common/err.h"
#include "store/store_copy.h"

#define CP_TABLES_MAX 64 /* tables of a deployment (about 20 today) */
#define CP_COLS_MAX 64   /* columns of one table (about 30 at most today) */
#define CP_NAME_MAX 64   /* a name or type: 63 bytes, as PostgreSQL's NAMEDATALEN */

struct cp_table {
	char name[CP_NAME_MAX];
	int64_t rows;          /* rows read from the source */
};

/* A column as one side declares it. */
struct cp_col {
	char name[CP_NAME_MAX];
	char type[CP_NAME_MAX]; /* PostgreSQL: its data_type; SQLite: its declared type */
};

struct cp {
	sqlite3 *sq;           /* the SQLite side (source or destination) */
	PGconn *pg;            /* the PostgreSQL side */
	char *msg;             /* the caller's message buffer */
	size_t msgsz;
	struct cp_table t[CP_TABLES_MAX]; /* the source's tables, in copy order */
	int nt;
	bool created;          /* a SQLite destination made by this copy */
	bool committed;        /* a PostgreSQL destination holds the copy */
};

typedef void (*cp_progress_fn)(void *ctx, const char *table, int64_t rows);

/* Errors into x->msg: PostgreSQL's (r's, or the connection's when r is
 * NULL) and SQLite's; both return ALLOT_E_STORE. */
allot_err cp_pg_fail(struct cp *x, const char *what, const PGresult *r);
allot_err cp_sq_fail(struct cp *x, const char *what);
/* Runs sql on the PostgreSQL side; false (msg: what and why) on an error. */
bool cp_exec(struct cp *x, const char *sql, const char *what);

/* The columns of table on each side, in order (at most CP_COLS_MAX, or
 * refused). */
allot_err cp_pg_cols(struct cp *x, const char *table, struct cp_col *c, int *nc);
allot_err cp_sq_cols(struct cp *x, const char *table, struct cp_col *c, int *nc);
/* Each source column's place in the destination: OUT: use[i] is the
 * destination's column named as src[i].  A source column the destination
 * lacks (its value would be lost) is refused, naming it; so is a table
 * the destination lacks (ndst 0). */
allot_err cp_match(struct cp *x, const char *table, const struct cp_col *src, int nsrc,
		   const struct cp_col *dst, int ndst, struct cp_col *use);

/* A table copied: n rows found in the destination, which must be the rows
 * read; counted into rep and told to progress (may be NULL). */
allot_err cp_tally(struct cp *x, const struct cp_table *t, int64_t n,
		   struct store_copy_report *rep, cp_progress_fn progress, void *ctx);
/* Both sides opened as stores: the destination's log, its root recomputed
 * from the copied tree at open, against the source's at size. */
allot_err cp_verify(struct cp *x, const char *from, const char *to, uint64_t size,
		    struct store_copy_report *rep);

/* The two directions: store_copy_to_pg.c, store_copy_to_sq.c. */
allot_err cp_run_to_pg(struct cp *x, const char *from, const char *to,
		       struct store_copy_report *rep, cp_progress_fn progress, void *ctx);
allot_err cp_run_to_sq(struct cp *x, const char *from, const char *to,
		       struct store_copy_report *rep, cp_progress_fn progress, void *ctx);

#endif
