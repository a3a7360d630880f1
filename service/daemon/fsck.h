/* fsck.h — `allotd --fsck`: recompute the ledger's derived state from its
 * rows and compare (docs/FSCK.md).
 *
 * Reads the database without writing to it: the store is opened read-only
 * (store_open_readonly) and the raw rows are read on a second read-only
 * connection (SQLite, or PostgreSQL in one read-only transaction), under
 * the database's owner lock.  Checked: every usage_buckets row against the usage records it
 * sums (and rows missing on either side); every quota level of the current
 * period of the charter in force, through the store's bucket query and its
 * sum cache, and the report query for the same range, against a sum of the
 * records; report totals per member against the records; the transparency
 * log (leaf hashes recomputed from the entries, stored subtree nodes, the
 * root the store loads, one leaf per entry); integer-only amount columns;
 * UNIQUE(provider, record_id); the append-only triggers; ledger_bounds;
 * SQLite's own quick_check.
 */
#ifndef ALLOT_DAEMON_FSCK_H
#define ALLOT_DAEMON_FSCK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct fsck_options {
	const char *db;    /* database path (SQLite) or postgres:// URI */
	bool json;         /* --format json: one object on out */
	int64_t now_us;    /* the instant whose periods are checked (0: now) */
};

/* Exit status of allotd --fsck. */
enum { FSCK_CLEAN = 0, FSCK_DISAGREE = 1, FSCK_ERROR = 2 };

/* Runs every check.  Writes one line per disagreement and a summary line
 * ("fsck: N checks, M disagreements") to out, or with json one object;
 * errors that stop the run (cannot open, cannot read) go to err as one line.
 * Returns FSCK_CLEAN, FSCK_DISAGREE or FSCK_ERROR. */
int fsck_run(const struct fsck_options *o, FILE *out, FILE *err);

/* Parses allotd --fsck's own flags (--db, --format) from argv, the
 * environment's ALLOT_DB as the default; ignores the daemon's other flags
 * (--keys, --charter, ...: the stored charters are what is checked).
 * Returns 0 and fills o, or FSCK_ERROR with a message on err. */
int fsck_parse_args(int argc, char **argv, struct fsck_options *o, FILE *err);

#endif
