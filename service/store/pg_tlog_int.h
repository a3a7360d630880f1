/* pg_tlog_int.h — private to the PostgreSQL store's transparency log
 * (pg_tlog.c, pg_tlog_nodes.c): the stored subtree nodes, read and written
 * through the merkle callbacks. */
#ifndef ALLOT_STORE_PG_TLOG_INT_H
#define ALLOT_STORE_PG_TLOG_INT_H

#include "store/pg_int.h"
#include "tlog/merkle.h"

/* As in store/sqlite_tlog.c: nodes of levels 1-3 are rebuilt from their
 * leaves, so the two stores hold the same rows (docs/TLOG.md, "Tables"). */
#define TLOG_STORED_LEVEL_MIN 4

/* A node lookup's connection: the context of pgtn_node_put/pgtn_node_get. */
struct pgtn_ctx {
	struct pg_store *ps;
	PGconn *c;
};

/* A 32-byte hash from a hex column; false when it is not one. */
bool pgtn_col_hash(const PGresult *r, int row, int col, uint8_t out[MERKLE_HASH_LEN]);
/* "\x" and the hex of n bytes: a bytea parameter in text form (in buf,
 * 3 + 2n bytes); of a hash. */
const char *pgtn_bytea(char *buf, const uint8_t *p, size_t n);
const char *pgtn_bytea_hash(char buf[2 + 2 * MERKLE_HASH_LEN + 1], const uint8_t h[MERKLE_HASH_LEN]);
/* merkle callbacks over tlog_nodes and tlog_leaves on ctx's connection:
 * levels below TLOG_STORED_LEVEL_MIN are not stored (put) and are rebuilt
 * from their leaves (get); a missing node is ALLOT_E_NOT_FOUND. */
allot_err pgtn_node_put(void *ctx, unsigned level, uint64_t index, const uint8_t hash[MERKLE_HASH_LEN]);
allot_err pgtn_node_get(void *ctx, unsigned level, uint64_t index, uint8_t out[MERKLE_HASH_LEN]);

#endif
