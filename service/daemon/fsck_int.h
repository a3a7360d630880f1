/* fsck_int.h — private to allotd --fsck's files (daemon/fsck*.c). */
#ifndef ALLOT_DAEMON_FSCK_INT_H
#define ALLOT_DAEMON_FSCK_INT_H

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "daemon/fsck.h"
#include "store/store.h"

/* Disagreements printed; the rest are counted only (a damaged database of
 * millions of rows would otherwise print millions of lines). */
#define FSCK_MAX_REPORTED 1000

struct fsck {
	const struct fsck_options *o;
	FILE *out;
	struct store *st;      /* read-only store: the code paths under test */
	sqlite3 *raw;          /* read-only connection: the rows themselves (SQLite) */
	PGconn *pg;            /* or (PostgreSQL) in one read-only transaction */
	unsigned pg_gen;       /* that transaction's number (a new one after an error) */
	unsigned pg_cursors;   /* cursors declared (their names) */
	bool pg_aborted;       /* an error ended the transaction */
	char rawerr[512];      /* PostgreSQL: the last error */
	uint64_t checks;       /* comparisons made */
	uint64_t bad;          /* of them, disagreements */
	bool failed;           /* a check could not run (already reported) */
	json_t *problems;      /* with o->json: the disagreements */
};

/* One disagreement: what (e.g. "bucket"), where (its key), the stored or
 * derived value and the value recomputed from the rows. */
void fsck_bad(struct fsck *f, const char *what, const char *where, const char *stored,
	      const char *recomputed);
void fsck_bad_money(struct fsck *f, const char *what, const char *where, int64_t stored,
		    int64_t recomputed);
void fsck_bad_int(struct fsck *f, const char *what, const char *where, int64_t stored,
		  int64_t recomputed);
/* Compares two amounts: counts a check, reports a difference. */
void fsck_cmp_money(struct fsck *f, const char *what, const char *where, int64_t stored,
		    int64_t recomputed);
/* A check that could not be made (a query failed): reported as a
 * disagreement naming the reason. */
void fsck_fail(struct fsck *f, const char *what, const char *why);

/* ---- the raw connection (daemon/fsck_raw.c) ----
 * A check's SQL is written once in SQLite's dialect with ?N parameters;
 * on PostgreSQL ?N becomes $N and "NOT INDEXED" is dropped. */
#define FSCK_MAX_ARGS 8
struct fsck_arg {
	const char *text;      /* a text value, or NULL: the integer i */
	int64_t i;
};
struct fsck_q {
	struct fsck *f;
	sqlite3_stmt *st;      /* SQLite */
	PGresult *res;         /* PostgreSQL: the rows at hand */
	int row, nrows;
	bool last;             /* no rows after res */
	unsigned gen;          /* the transaction its cursor lives in */
	char cursor[24];       /* "" when the rows came at once */
};
/* Opens the raw connection for f->o->db (a message on err when it
 * cannot); closes it. */
bool fsck_raw_open(struct fsck *f, FILE *err);
void fsck_raw_close(struct fsck *f);
bool fsck_raw_is_pg(const struct fsck *f);
/* The last error of the raw connection. */
const char *fsck_raw_err(const struct fsck *f);
/* PostgreSQL only: a statement without rows (SET LOCAL ...). */
bool fsck_raw_exec(struct fsck *f, const char *sql);
/* Runs sql with n values bound to ?1..?n.  many: rows are read a batch at
 * a time (a PostgreSQL cursor), else all at once.  False on an error
 * (fsck_raw_err); q is then closed. */
bool fsck_q_open(struct fsck *f, struct fsck_q *q, const char *sql, bool many, int n,
		 const struct fsck_arg *args);
/* 1: a row is at hand; 0: no more; -1: an error (fsck_raw_err). */
int fsck_q_step(struct fsck_q *q);
void fsck_q_close(struct fsck_q *q);
/* The row's columns: NULL?, an integer (0 for NULL), text (NULL for
 * NULL), a blob's bytes into out (false when NULL, unreadable or longer
 * than cap; *len its length). */
bool fsck_q_null(const struct fsck_q *q, int col);
int64_t fsck_q_i64(const struct fsck_q *q, int col);
const char *fsck_q_text(const struct fsck_q *q, int col);
bool fsck_q_blob(const struct fsck_q *q, int col, uint8_t *out, size_t cap, size_t *len);

/* ---- the rows (daemon/fsck_rows.c) ---- */
/* Sum of charge_micro of the records of a level over book_us in [from, to),
 * added with overflow checks.  inst/proj/member NULL as in ledger_level.
 * Returns false (reported) when it cannot be computed. */
bool fsck_raw_sum(struct fsck *f, const struct ledger_level *lv, int64_t from, int64_t to,
		  int64_t *sum, int64_t *records);
/* usage_buckets against the records; integer columns; unique record ids;
 * SQLite's quick_check; the report per member (fsck_report_check); the
 * guards (fsck_guards_check). */
void fsck_rows_check(struct fsck *f);
void fsck_report_check(struct fsck *f);

/* ---- the guards (daemon/fsck_guard.c) ----
 * The append-only triggers present (and firing), integer-typed amount
 * columns (PostgreSQL; SQLite's are checked row by row), and ledger_bounds
 * against the records it totals. */
void fsck_guards_check(struct fsck *f);

/* ---- the transparency log (daemon/fsck_log.c) ---- */
void fsck_log_check(struct fsck *f);

/* ---- quotas, sum cache and reports (daemon/fsck.c) ---- */
void fsck_levels_check(struct fsck *f);

#endif
