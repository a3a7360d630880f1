/* pg_tlog_nodes.c — the PostgreSQL log's stored subtree nodes: the merkle
 * callbacks that write a node (tlog_nodes, from level TLOG_STORED_LEVEL_MIN
 * up) and read one (a leaf, a stored node, or a node of levels 1-3 rebuilt
 * from its leaves), as store/sqlite_tlog.c does, so both stores hold the
 * same rows.  Used by pg_tlog.c for appends, loads and proofs. */
#include "store/pg_tlog_int.h"

#include <string.h>

#include "common/b64.h"

/* A 32-byte hash from a hex column; false when it is not one. */
bool pgtn_col_hash(const PGresult *r, int row, int col, uint8_t out[MERKLE_HASH_LEN])
{
	size_t n = 0;
	if (PQgetisnull(r, row, col))
		return false;
	const char *v = PQgetvalue(r, row, col);
	return !hex_decode(v, strlen(v), out, MERKLE_HASH_LEN, &n) && n == MERKLE_HASH_LEN;
}

/* "\x" and the hex of n bytes (pg_tlog_int.h). */
const char *pgtn_bytea(char *buf, const uint8_t *p, size_t n)
{
	buf[0] = '\\';
	buf[1] = 'x';
	hex_encode(p, n, buf + 2);
	return buf;
}

const char *pgtn_bytea_hash(char buf[2 + 2 * MERKLE_HASH_LEN + 1], const uint8_t h[MERKLE_HASH_LEN])
{
	return pgtn_bytea(buf, h, MERKLE_HASH_LEN);
}

allot_err pgtn_node_put(void *ctx, unsigned level, uint64_t index,
			  const uint8_t hash[MERKLE_HASH_LEN])
{
	static const char q[] = "INSERT INTO tlog_nodes(level, idx, hash) VALUES ($1, $2, $3)";
	struct pgtn_ctx *x = ctx;
	if (level < TLOG_STORED_LEVEL_MIN)
		return ALLOT_OK; /* level 0 is the leaf row, written before the append */
	char lv[24], ix[24], h[2 + 2 * MERKLE_HASH_LEN + 1];
	const char *v[] = {pg_i64(lv, level), pg_i64(ix, (int64_t)index), pgtn_bytea_hash(h, hash)};
	allot_err e = ALLOT_OK;
	PGresult *r = pg_run(x->ps, x->c, q, 3, v, &e);
	PQclear(r);
	return r ? ALLOT_OK : e;
}

/* A node of level 1-3 from its leaves; ALLOT_E_NOT_FOUND unless all exist. */
static allot_err node_rebuild(struct pgtn_ctx *x, unsigned level, uint64_t index,
			      uint8_t out[MERKLE_HASH_LEN])
{
	static const char q[] = "SELECT idx, encode(leaf_hash, 'hex') FROM tlog_leaves_all "
				"WHERE idx >= $1 AND idx < $2 ORDER BY idx";
	uint8_t h[1u << (TLOG_STORED_LEVEL_MIN - 1)][MERKLE_HASH_LEN];
	uint64_t first = index << level, n = UINT64_C(1) << level;
	char a[24], b[24];
	const char *v[] = {pg_i64(a, (int64_t)first), pg_i64(b, (int64_t)(first + n))};
	allot_err e = ALLOT_OK;
	PGresult *r = pg_run(x->ps, x->c, q, 2, v, &e);
	if (!r)
		return e;
	bool ok = (uint64_t)PQntuples(r) == n;
	for (uint64_t i = 0; ok && i < n; i++)
		ok = (uint64_t)pg_col_i64(r, (int)i, 0) == first + i && pgtn_col_hash(r, (int)i, 1, h[i]);
	PQclear(r);
	if (!ok)
		return ALLOT_E_NOT_FOUND;
	merkle_subtree_fold(h, n, out);
	return ALLOT_OK;
}

allot_err pgtn_node_get(void *ctx, unsigned level, uint64_t index,
			  uint8_t out[MERKLE_HASH_LEN])
{
	static const char q_leaf[] =
		"SELECT encode(leaf_hash, 'hex') FROM tlog_leaves_all WHERE idx = $1";
	static const char q_node[] =
		"SELECT encode(hash, 'hex') FROM tlog_nodes WHERE idx = $1 AND level = $2";
	struct pgtn_ctx *x = ctx;
	if (level > 0 && level < TLOG_STORED_LEVEL_MIN)
		return node_rebuild(x, level, index, out);
	char ix[24], lv[24];
	const char *v[] = {pg_i64(ix, (int64_t)index), pg_i64(lv, level)};
	allot_err e = ALLOT_OK;
	PGresult *r = pg_run(x->ps, x->c, level ? q_node : q_leaf, level ? 2 : 1, v, &e);
	if (!r)
		return e;
	e = PQntuples(r) == 1 && pgtn_col_hash(r, 0, 0, out) ? ALLOT_OK : ALLOT_E_NOT_FOUND;
	PQclear(r);
	return e;
}

