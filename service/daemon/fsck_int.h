/* fsck_int.h — private to allotd --fsck's files (daemon/fsck*.c). */
#ifndef ALLOT_DAEMON_FSCK_INT_H
#define ALLOT_DAEMON_FSCK_INT_H

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
	sqlite3 *raw;          /* read-only connection: the rows themselves */
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

/* ---- the rows (daemon/fsck_rows.c) ---- */
/* Sum of charge_micro of the records of a level over book_us in [from, to),
 * added with overflow checks.  inst/proj/member NULL as in ledger_level.
 * Returns false (reported) when it cannot be computed. */
bool fsck_raw_sum(struct fsck *f, const struct ledger_level *lv, int64_t from, int64_t to,
		  int64_t *sum, int64_t *records);
/* usage_buckets against the records; integer columns; unique record ids;
 * SQLite's quick_check; the report per member (fsck_report_check). */
void fsck_rows_check(struct fsck *f);
void fsck_report_check(struct fsck *f);

/* ---- the transparency log (daemon/fsck_log.c) ---- */
void fsck_log_check(struct fsck *f);

/* ---- quotas, sum cache and reports (daemon/fsck.c) ---- */
void fsck_levels_check(struct fsck *f);

#endif
