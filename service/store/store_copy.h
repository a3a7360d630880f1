/* store_copy.h — moving a deployment between a SQLite file and a
 * PostgreSQL database (`allot store copy FROM TO`, SPEC section 9;
 * docs/POSTGRES.md, "Moving a deployment"). */
#ifndef ALLOT_STORE_COPY_H
#define ALLOT_STORE_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct store_copy_report {
	int tables;            /* tables copied (empty ones included) */
	int64_t rows;          /* rows copied, all tables */
	uint64_t log_size;     /* the transparency log's size on both sides */
	uint8_t root[32];      /* its root, recomputed on the destination */
};

/* Copies every table of the database at from (read in one snapshot, at
 * this binary's schema version) into to, in one transaction: from a SQLite
 * file into an empty PostgreSQL database (migrated first), or from a
 * PostgreSQL database into a new SQLite file (made here; removed again on
 * an error).  On an error before the commit nothing is left in to, and
 * msg says so.  Then opens both as stores and compares the
 * log: the destination's root, recomputed from the copied tree, must equal
 * the source's root at the same size, and every table the same row count.
 * progress (may be NULL) is called after each table. */
allot_err store_copy(const char *from, const char *to, struct store_copy_report *rep,
		     void (*progress)(void *ctx, const char *table, int64_t rows), void *ctx,
		     char *msg, size_t msgsz);

#endif
