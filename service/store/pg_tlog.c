/* pg_tlog.c — the transparency log in the PostgreSQL store: the same
 * leaves and stored subtree nodes as SQLite's (store/sqlite_tlog.c), so the
 * same entries give the same roots and proofs on both stores, and a head
 * row (tlog_head, migration 0004) that makes the leaves contiguous and in
 * commit order whichever connection or node appends.
 *
 * Appending: a transaction takes the head row FOR UPDATE before its first
 * leaf (appenders wait for each other there, so leaves never interleave),
 * gets the tree state of that head (the compact range: from this process's
 * cache when the head's size and root are the cache's, else loaded from the
 * stored nodes), appends its leaves and nodes, and writes the head's new
 * size and root before its COMMIT.  A ledger transaction does that once
 * (pg_tlog_txn_*: the state lives with the thread until its commit); an
 * append in any other transaction (a charter, an audit entry) takes and
 * writes the head at once.  The cache is a hint: it is checked against the
 * head's root every time, so a transaction that rolled back after writing
 * it, or another node's appends, cost a reload and never a wrong leaf.
 *
 * The sequencer of docs/POSTGRES.md (booking transactions off the head's
 * lock) is a later step; the tables stay as they are for it. */
#include "store/pg_int.h"
#include "store/pg_tlog_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/log.h"
#include "store/store_entry.h"
#include "tlog/leaf.h"
#include "tlog/merkle.h"

#define PS(st_) ((struct pg_store *)(st_))

struct pg_tlog {
	pthread_mutex_t mu;          /* guards the hint */
	bool enabled;                /* false only in benchmarks/tests (atomic) */
	bool hint_valid;
	struct merkle_tree hint;     /* the tree as this process last wrote the head */
	uint8_t hint_root[MERKLE_HASH_LEN];
};

/* The calling thread's ledger transaction's log state. */
struct tl_txn {
	struct pg_store *ps;
	PGconn *c;
	bool locked;                 /* the head is taken; pending is its tree */
	bool dirty;                  /* pending has leaves the head does not */
	struct merkle_tree pending;
	bool sp_valid, sp_locked, sp_dirty; /* the state at the open savepoint */
	struct merkle_tree sp;
	/* Nodes of the transaction's usage leaves not written yet: all of
	 * them in one statement at the next savepoint operation or before
	 * COMMIT (tl_flush); a failed write fails the commit. */
	struct tl_node *nodes;
	size_t nnodes, capnodes;
	bool nodes_failed;
};
struct tl_node {
	unsigned level;
	uint64_t index;
	uint8_t hash[MERKLE_HASH_LEN];
};
static _Thread_local struct tl_txn *tl;

/* ---- the head ---------------------------------------------------------------- */

/* Reads the head (FOR UPDATE: taken until the transaction ends) and the
 * tree state it names into *t. */
static allot_err head_from(struct pg_store *ps, PGconn *c, PGresult *r, struct merkle_tree *t);

static allot_err head_take(struct pg_store *ps, PGconn *c, bool lock, struct merkle_tree *t)
{
	static const char q_lock[] = PG_TLOG_HEAD_LOCK_SQL;
	static const char q_read[] =
		"SELECT size, encode(root, 'hex'), encode(frontier, 'hex') FROM tlog_head WHERE id = 1";
	allot_err e = ALLOT_OK;
	PGresult *r = pg_run(ps, c, lock ? q_lock : q_read, 0, NULL, &e);
	if (!r)
		return e;
	return head_from(ps, c, r, t);
}

/* The head's frontier column (migration 0011), decoded: the frontier
 * nodes of the set bits of the size, lowest level first, served to
 * merkle_tree_load in that order. */
struct frontier_cur {
	uint8_t raw[64 * MERKLE_HASH_LEN];
	size_t at;
};

static allot_err frontier_get(void *ctx, unsigned level, uint64_t index,
			      uint8_t out[MERKLE_HASH_LEN])
{
	struct frontier_cur *fc = ctx;
	(void)level;
	(void)index;
	memcpy(out, fc->raw + fc->at, MERKLE_HASH_LEN);
	fc->at += MERKLE_HASH_LEN;
	return ALLOT_OK;
}

/* The tree of `size` leaves from column 2 of r, when it is there and of
 * that length (a head written by an older build or by the store copy has
 * none: the caller loads the stored tree; a stale one fails the root
 * check that follows). */
static bool frontier_load(const PGresult *r, uint64_t size, struct merkle_tree *t)
{
	if (PQnfields(r) < 3 || PQgetisnull(r, 0, 2))
		return false;
	const char *hex = PQgetvalue(r, 0, 2);
	size_t len = strlen(hex), n = 0;
	struct frontier_cur fc = {.at = 0};
	return (size_t)__builtin_popcountll(size) * 2 * MERKLE_HASH_LEN == len &&
	       !hex_decode(hex, len, fc.raw, sizeof fc.raw, &n) && n == len / 2 &&
	       merkle_tree_load(t, size, frontier_get, &fc) == ALLOT_OK;
}

/* Whether t's root is root. */
static bool tree_gives(const struct merkle_tree *t, const uint8_t root[MERKLE_HASH_LEN])
{
	uint8_t got[MERKLE_HASH_LEN];
	merkle_tree_root(t, got);
	return memcmp(got, root, MERKLE_HASH_LEN) == 0;
}

/* The head row in r (consumed) and the tree state it names into *t. */
static allot_err head_from(struct pg_store *ps, PGconn *c, PGresult *r, struct merkle_tree *t)
{
	struct pg_tlog *g = ps->tlog;
	allot_err e = ALLOT_OK;
	uint8_t root[MERKLE_HASH_LEN];
	int64_t size = PQntuples(r) == 1 ? pg_col_i64(r, 0, 0) : -1;
	bool have = size >= 0 && pgtn_col_hash(r, 0, 1, root);
	if (!have) {
		PQclear(r);
		pgs_fail(ps, ALLOT_E_STORE,
			 "the transparency log's head row is missing or has no root");
		return ALLOT_E_STORE;
	}
	pthread_mutex_lock(&g->mu);
	bool hit = g->hint_valid && g->hint.size == (uint64_t)size &&
		   memcmp(g->hint_root, root, MERKLE_HASH_LEN) == 0;
	if (hit)
		*t = g->hint;
	pthread_mutex_unlock(&g->mu);
	/* another node appended since: the frontier the head carries */
	hit = hit || (frontier_load(r, (uint64_t)size, t) && tree_gives(t, root));
	PQclear(r);
	if (hit)
		return ALLOT_OK;
	struct pgtn_ctx x = {ps, c};
	e = merkle_tree_load(t, (uint64_t)size, pgtn_node_get, &x);
	if (e && e != ALLOT_E_NOT_FOUND)
		return e; /* the connection's error, in errmsg */
	if (e || !tree_gives(t, root)) {
		pgs_fail(ps, ALLOT_E_STORE,
			 "the transparency log is damaged: the stored tree of %lld leaves does not "
			 "give the head's root", (long long)size);
		return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

static void hint_set(struct pg_tlog *g, const struct merkle_tree *t)
{
	pthread_mutex_lock(&g->mu);
	g->hint = *t;
	merkle_tree_root(t, g->hint_root);
	g->hint_valid = true;
	pthread_mutex_unlock(&g->mu);
}

/* Writes t as the head (the caller's transaction holds it) and remembers it. */
static allot_err head_write(struct pg_store *ps, PGconn *c, const struct merkle_tree *t)
{
	static const char q[] =
		"UPDATE tlog_head SET size = $1, root = $2, frontier = $3 WHERE id = 1";
	uint8_t root[MERKLE_HASH_LEN];
	char sz[24], h[2 + 2 * MERKLE_HASH_LEN + 1], f[3 + 64 * 2 * MERKLE_HASH_LEN];
	uint8_t front[64 * MERKLE_HASH_LEN]; /* as frontier_load reads it */
	size_t k = 0;
	merkle_tree_root(t, root);
	for (unsigned l = 0; l < 64; l++)
		if (t->size >> l & 1)
			memcpy(front + MERKLE_HASH_LEN * k++, t->frontier[l], MERKLE_HASH_LEN);
	const char *v[] = {pg_i64(sz, (int64_t)t->size), pgtn_bytea_hash(h, root),
			   pgtn_bytea(f, front, MERKLE_HASH_LEN * k)};
	allot_err e = ALLOT_OK;
	PGresult *r = pg_run(ps, c, q, 3, v, &e);
	if (!r)
		return e;
	if (pg_pipelined(c)) /* answered at the pipeline's end: the hint is checked at use */
		pg_pipe_expect(c, "1", NULL, NULL, "the log head row is missing");
	bool one = pg_pipelined(c) || strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	if (!one) {
		pgs_fail(ps, ALLOT_E_STORE, "the log head row is missing");
		return ALLOT_E_STORE;
	}
	hint_set(ps->tlog, t);
	return ALLOT_OK;
}

/* ---- appends ------------------------------------------------------------------ */

/* The leaf row and the nodes it completes, appended to *t. */
static allot_err leaf_put(struct pg_store *ps, PGconn *c, struct merkle_tree *t,
			  enum tlog_leaf_type type, int64_t ref, const char *name,
			  const char *data, size_t len)
{
	static const char q[] =
		"INSERT INTO tlog_leaves(idx, type, ref, leaf_hash, name) VALUES ($1, $2, $3, $4, $5)";
	uint8_t leaf[MERKLE_HASH_LEN];
	merkle_leaf_hash(data, len, leaf);
	char ix[24], rf[24], h[2 + 2 * MERKLE_HASH_LEN + 1];
	const char *v[] = {pg_i64(ix, (int64_t)t->size), tlog_leaf_type_name(type), pg_i64(rf, ref),
			   pgtn_bytea_hash(h, leaf), name};
	allot_err e = ALLOT_OK;
	PGresult *r = pg_run(ps, c, q, 5, v, &e);
	if (!r)
		return e;
	PQclear(r);
	struct pgtn_ctx x = {ps, c};
	return merkle_tree_append(t, leaf, pgtn_node_put, &x);
}

static bool in_ledger_txn(const struct pg_store *ps, const PGconn *c)
{
	return tl && tl->ps == ps && tl->c == c;
}

static allot_err txn_take(struct pg_store *ps)
{
	if (tl->locked)
		return ALLOT_OK;
	allot_err e = head_take(ps, tl->c, true, &tl->pending);
	if (!e) {
		tl->locked = true;
		tl->dirty = false;
	}
	return e;
}

/* Appends data[0..len) in the transaction open on c. */
static allot_err tlog_append(struct pg_store *ps, PGconn *c, enum tlog_leaf_type type,
			     int64_t ref, const char *name, const char *data, size_t len)
{
	if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
		/* A leaf outside a transaction could not be undone with its entry. */
		pgs_fail(ps, ALLOT_E_STORE,
			 "log append outside a transaction (or in a failed one)");
		return ALLOT_E_INTERNAL;
	}
	if (in_ledger_txn(ps, c)) {
		allot_err e = txn_take(ps);
		if (!e && !(e = leaf_put(ps, c, &tl->pending, type, ref, name, data, len)))
			tl->dirty = true;
		return e;
	}
	struct merkle_tree t;
	allot_err e = head_take(ps, c, true, &t);
	if (!e)
		e = leaf_put(ps, c, &t, type, ref, name, data, len);
	if (!e)
		e = head_write(ps, c, &t);
	return e;
}

static bool log_enabled(const struct pg_store *ps)
{
	return ps->tlog && __atomic_load_n(&ps->tlog->enabled, __ATOMIC_RELAXED);
}

/* The same from an entry in export form. */
static allot_err tlog_append_json(struct pg_store *ps, PGconn *c, enum tlog_leaf_type type,
				  int64_t ref, const json_t *entry)
{
	if (!entry)
		return ALLOT_E_NOMEM;
	char *data = NULL, why[160];
	size_t len = 0;
	allot_err e = tlog_leaf_bytes(type, entry, &data, &len, why, sizeof why);
	if (e) {
		pgs_fail(ps, ALLOT_E_STORE, "log leaf: %s", why);
		return e;
	}
	e = tlog_append(ps, c, type, ref, NULL, data, len);
	free(data);
	return e;
}

allot_err pg_tlog_usage_leaf(const struct ledger_row *row, uint8_t hash[MERKLE_HASH_LEN],
			     char name[STORE_LEAF_NAME_MAX])
{
	char *data = NULL;
	size_t len = 0;
	if (store_row_leaf(row, &data, &len, name))
		return ALLOT_E_NOMEM;
	merkle_leaf_hash(data, len, hash);
	free(data);
	return ALLOT_OK;
}

/* merkle_tree_append's node writer in a ledger transaction: kept for tl_flush. */
static allot_err node_defer(void *ctx, unsigned level, uint64_t index,
			    const uint8_t hash[MERKLE_HASH_LEN])
{
	(void)ctx;
	if (level < TLOG_STORED_LEVEL_MIN)
		return ALLOT_OK;
	if (tl->nnodes == tl->capnodes) {
		size_t cap = tl->capnodes ? 2 * tl->capnodes : 64;
		struct tl_node *p = realloc(tl->nodes, cap * sizeof *p);
		if (!p)
			return ALLOT_E_NOMEM;
		tl->nodes = p;
		tl->capnodes = cap;
	}
	struct tl_node *n = &tl->nodes[tl->nnodes++];
	n->level = level;
	n->index = index;
	memcpy(n->hash, hash, MERKLE_HASH_LEN);
	return ALLOT_OK;
}

/* The text of one field of every kept node, as an array parameter. */
static char *nodes_array(int field)
{
	char (*txt)[2 + 2 * MERKLE_HASH_LEN + 1] = malloc(tl->nnodes * sizeof *txt);
	const char **v = malloc(tl->nnodes * sizeof *v);
	char *out = NULL;
	if (txt && v) {
		for (size_t i = 0; i < tl->nnodes; i++) {
			const struct tl_node *n = &tl->nodes[i];
			v[i] = field == 0   ? pg_i64(txt[i], n->level)
			       : field == 1 ? pg_i64(txt[i], (int64_t)n->index)
					    : pgtn_bytea_hash(txt[i], n->hash);
		}
		out = pgs_text_array(v, tl->nnodes);
	}
	free(txt);
	free(v);
	return out;
}

/* Writes the kept nodes in one statement. */
static allot_err tl_flush(struct pg_store *ps)
{
	static const char q[] = "INSERT INTO tlog_nodes(level, idx, hash) "
				"SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])";
	if (!tl || tl->ps != ps || !tl->nnodes)
		return ALLOT_OK;
	allot_err e = ALLOT_OK;
	char *a[3] = {NULL};
	for (int f = 0; f < 3 && !e; f++)
		if (!(a[f] = nodes_array(f)))
			e = ALLOT_E_NOMEM;
	if (!e) {
		PGresult *r = pg_run(ps, tl->c, q, 3, (const char *const *)a, &e);
		PQclear(r);
	}
	for (int f = 0; f < 3; f++)
		free(a[f]);
	tl->nnodes = 0;
	if (e)
		tl->nodes_failed = true;
	return e;
}

allot_err pg_tlog_txn_flush(struct pg_store *ps)
{
	return tl_flush(ps);
}

allot_err pg_tlog_usage_written(struct pg_store *ps, PGconn *c,
				const uint8_t hash[MERKLE_HASH_LEN])
{
	if (!in_ledger_txn(ps, c) || !tl->locked) {
		pgs_fail(ps, ALLOT_E_STORE, "a record's leaf outside its ledger transaction");
		return ALLOT_E_INTERNAL;
	}
	allot_err e = merkle_tree_append(&tl->pending, hash, node_defer, NULL);
	if (!e)
		tl->dirty = true;
	return e;
}

allot_err pg_tlog_append_charter(struct pg_store *ps, PGconn *c, const struct charter_row *r)
{
	if (!log_enabled(ps))
		return ALLOT_OK;
	json_t *j = tlog_charter_export_json(r->version, r->charter_id, r->sha256, r->author,
					     r->applied_at, r->effective);
	allot_err e = tlog_append_json(ps, c, TLOG_LEAF_CHARTER, r->version, j);
	json_decref(j);
	return e;
}

allot_err pg_tlog_append_audit(struct pg_store *ps, PGconn *c, int64_t id,
			       const struct audit_entry *a)
{
	if (!log_enabled(ps))
		return ALLOT_OK;
	json_t *j = tlog_audit_export_json(id, a->at, a->actor, a->action, a->target,
					   a->before_sha256, a->after_sha256, a->detail);
	allot_err e = tlog_append_json(ps, c, TLOG_LEAF_AUDIT, id, j);
	json_decref(j);
	return e;
}

/* ---- the ledger transaction's hooks ---------------------------------------------- */

allot_err pg_tlog_txn_begin(struct pg_store *ps, PGconn *c)
{
	if (tl) {
		pgs_fail(ps, ALLOT_E_STORE,
			 "a ledger transaction is already open on this thread");
		return ALLOT_E_INTERNAL;
	}
	if (!(tl = calloc(1, sizeof *tl)))
		return ALLOT_E_NOMEM;
	tl->ps = ps;
	tl->c = c;
	return ALLOT_OK;
}

void pg_tlog_txn_savepoint(struct pg_store *ps, int op)
{
	if (!tl || tl->ps != ps)
		return;
	if (op == STORE_SP_BEGIN) {
		tl->sp_valid = true;
		tl->sp_locked = tl->locked;
		tl->sp_dirty = tl->dirty;
		tl->sp = tl->pending;
	} else if (op == STORE_SP_ROLLBACK && tl->sp_valid) {
		/* Nodes kept are the savepoint's own (flushed at its start). */
		tl->nnodes = 0;
		/* A head taken after the savepoint was given back with it. */
		tl->locked = tl->sp_locked;
		tl->dirty = tl->sp_dirty;
		tl->pending = tl->sp;
		tl->sp_valid = false;
	} else {
		tl->sp_valid = false;
	}
}

bool pg_tlog_enabled(const struct pg_store *ps)
{
	return log_enabled(ps);
}

allot_err pg_tlog_txn_taken(struct pg_store *ps, PGresult *r)
{
	if (!tl || tl->ps != ps || tl->locked) {
		PQclear(r);
		pgs_fail(ps, ALLOT_E_STORE, "the log head taken outside its ledger transaction");
		return ALLOT_E_INTERNAL;
	}
	allot_err e = head_from(ps, tl->c, r, &tl->pending);
	if (!e) {
		tl->locked = true;
		tl->dirty = false;
	}
	return e;
}

allot_err pg_tlog_next_index(struct pg_store *ps, PGconn *c, int64_t *idx)
{
	*idx = -1;
	if (!log_enabled(ps))
		return ALLOT_OK;
	if (!in_ledger_txn(ps, c)) {
		pgs_fail(ps, ALLOT_E_STORE,
			 "a record's leaf outside its ledger transaction");
		return ALLOT_E_INTERNAL;
	}
	allot_err e = txn_take(ps);
	if (!e)
		*idx = (int64_t)tl->pending.size;
	return e;
}

allot_err pg_tlog_txn_precommit(struct pg_store *ps, PGconn *c)
{
	if (!in_ledger_txn(ps, c) || !tl->dirty)
		return ALLOT_OK;
	allot_err e = tl_flush(ps);
	if (!e && tl->nodes_failed) {
		pgs_fail(ps, ALLOT_E_STORE, "writing the log's nodes failed earlier");
		e = ALLOT_E_STORE;
	}
	return e ? e : head_write(ps, c, &tl->pending);
}

void pg_tlog_txn_end(struct pg_store *ps, bool committed)
{
	(void)committed; /* the hint is checked against the head at every use */
	if (!tl || tl->ps != ps)
		return;
	free(tl->nodes);
	free(tl);
	tl = NULL;
}

/* ---- open ------------------------------------------------------------------------ */

/* A head written by migration 0004 over earlier leaves has no root yet:
 * computed from the stored nodes (and refused if they are incomplete). */
static allot_err head_fill(struct pg_store *ps, PGconn *c, char *msg, size_t msgsz)
{
	static const char q_get[] = "SELECT size, root IS NULL, "
				    "(SELECT count(*) FROM tlog_leaves_all) FROM tlog_head WHERE id = 1";
	static const char q_set[] =
		"UPDATE tlog_head SET root = $2 WHERE id = 1 AND size = $1 AND root IS NULL";
	allot_err e = ALLOT_OK;
	PGresult *r = pg_run(ps, c, q_get, 0, NULL, &e);
	if (!r || PQntuples(r) != 1) {
		PQclear(r);
		snprintf(msg, msgsz, "cannot read the transparency log's head: %s", ps->base.errmsg);
		return e ? e : ALLOT_E_STORE;
	}
	int64_t size = pg_col_i64(r, 0, 0), count = pg_col_i64(r, 0, 2);
	bool unset = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
	PQclear(r);
	if (count != size)
		log_warnx("store: the transparency log has %lld leaves but its head says %lld: "
			  "leaves were deleted; verification of exports will fail",
			  (long long)count, (long long)size);
	if (!unset || ps->readonly)
		return ALLOT_OK;
	struct merkle_tree t;
	struct pgtn_ctx x = {ps, c};
	if (merkle_tree_load(&t, (uint64_t)size, pgtn_node_get, &x)) {
		snprintf(msg, msgsz, "the transparency log is damaged: a node of the tree of %lld "
			 "leaves is missing", (long long)size);
		return ALLOT_E_STORE;
	}
	uint8_t root[MERKLE_HASH_LEN];
	char sz[24], h[2 + 2 * MERKLE_HASH_LEN + 1];
	merkle_tree_root(&t, root);
	const char *v[] = {pg_i64(sz, size), pgtn_bytea_hash(h, root)};
	r = pg_run(ps, c, q_set, 2, v, &e);
	PQclear(r);
	if (!r) {
		snprintf(msg, msgsz, "cannot write the transparency log's head: %s", ps->base.errmsg);
		return e;
	}
	return ALLOT_OK;
}

allot_err pg_tlog_open(struct pg_store *ps, char *msg, size_t msgsz)
{
	struct pg_tlog *g = calloc(1, sizeof *g);
	if (!g)
		return ALLOT_E_NOMEM;
	pthread_mutex_init(&g->mu, NULL);
	g->enabled = true;
	merkle_tree_init(&g->hint);
	ps->tlog = g;
	PGconn *c = NULL;
	bool own = false;
	allot_err e = pg_get(ps, &c, &own);
	if (e) {
		snprintf(msg, msgsz, "cannot open the transparency log: %s", ps->base.errmsg);
		return e;
	}
	if (!(e = head_fill(ps, c, msg, msgsz))) {
		/* Load and check the tree once; the hint starts from it. */
		struct merkle_tree t;
		if ((e = head_take(ps, c, false, &t)) && ps->readonly && e == ALLOT_E_STORE) {
			/* Read-only (allotd --fsck, --check): a damaged log
			 * (logged above) is for the reader to report, not a
			 * reason to refuse the rows; nothing can be appended. */
			e = ALLOT_OK;
		} else if (e) {
			snprintf(msg, msgsz, "%s", ps->base.errmsg);
		} else {
			hint_set(g, &t);
		}
	}
	if (own)
		pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	return e;
}

void pg_tlog_close(struct pg_store *ps)
{
	if (!ps->tlog)
		return;
	pthread_mutex_destroy(&ps->tlog->mu);
	free(ps->tlog);
	ps->tlog = NULL;
}

/* ---- store operations ------------------------------------------------------------
 * Reads see committed leaves only: a size is checked against the head's,
 * and the nodes of a committed tree are committed with it. */

/* A connection for a read: the thread's transaction's or a pooled one;
 * with rd_head, the committed head read on it. */
struct rd {
	struct pg_store *ps;
	PGconn *c;
	bool own;
	uint64_t head;                  /* rd_head: the committed size */
	uint8_t root[MERKLE_HASH_LEN];  /* and root */
	struct pgtn_ctx x;                  /* pgtn_node_get's context on c */
};

static allot_err rd_get(struct store *st, struct rd *r)
{
	r->ps = PS(st);
	r->c = NULL;
	return pg_get(r->ps, &r->c, &r->own);
}

static allot_err rd_put(struct rd *r, allot_err e)
{
	if (r->own)
		pg_put(r->ps, r->c, e == ALLOT_E_UNAVAILABLE);
	return e;
}

/* The committed size and root. */
static allot_err head_read(struct pg_store *ps, PGconn *c, uint64_t *size,
			   uint8_t root[MERKLE_HASH_LEN])
{
	static const char q[] = "SELECT size, encode(root, 'hex') FROM tlog_head WHERE id = 1";
	allot_err e = ALLOT_OK;
	PGresult *r = pg_run(ps, c, q, 0, NULL, &e);
	if (!r)
		return e;
	bool ok = PQntuples(r) == 1 && pg_col_i64(r, 0, 0) >= 0 && pgtn_col_hash(r, 0, 1, root);
	if (ok)
		*size = (uint64_t)pg_col_i64(r, 0, 0);
	PQclear(r);
	if (!ok) {
		pgs_fail(ps, ALLOT_E_STORE,
			 "the transparency log's head row is missing or has no root");
		return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

/* rd_get and the committed head (r->head, r->root); on failure the
 * connection is given back already.  Every read below starts here. */
static allot_err rd_head(struct store *st, struct rd *r)
{
	allot_err e = rd_get(st, r);
	if (e)
		return e;
	if ((e = head_read(r->ps, r->c, &r->head, r->root)))
		return rd_put(r, e);
	r->x = (struct pgtn_ctx){r->ps, r->c};
	return ALLOT_OK;
}

allot_err pg_tlog_head(struct store *st, uint64_t *size, uint8_t root[32])
{
	struct rd r;
	allot_err e = rd_head(st, &r);
	if (e)
		return e;
	*size = r.head;
	memcpy(root, r.root, MERKLE_HASH_LEN);
	return rd_put(&r, ALLOT_OK);
}

allot_err pg_tlog_root_at(struct store *st, uint64_t size, uint8_t root[32])
{
	struct rd r;
	allot_err e = rd_head(st, &r);
	if (e)
		return e;
	if (size > r.head)
		e = ALLOT_E_INVALID;
	else if (size == r.head)
		memcpy(root, r.root, MERKLE_HASH_LEN);
	else
		e = merkle_root_at(size, pgtn_node_get, &r.x, root);
	return rd_put(&r, e);
}

allot_err pg_tlog_inclusion(struct store *st, uint64_t index, uint64_t size, uint8_t leaf[32],
			    struct merkle_proof *p)
{
	struct rd r;
	allot_err e = rd_head(st, &r);
	if (e)
		return e;
	if (size > r.head || index >= size)
		e = ALLOT_E_INVALID;
	else if (!(e = pgtn_node_get(&r.x, 0, index, leaf)))
		e = merkle_prove_inclusion(index, size, pgtn_node_get, &r.x, p);
	return rd_put(&r, e);
}

allot_err pg_tlog_consistency(struct store *st, uint64_t size1, uint64_t size2,
			      struct merkle_proof *p)
{
	struct rd r;
	allot_err e = rd_head(st, &r);
	if (e)
		return e;
	if (size2 > r.head || size1 < 1 || size1 > size2)
		e = ALLOT_E_INVALID;
	else
		e = merkle_prove_consistency(size1, size2, pgtn_node_get, &r.x, p);
	return rd_put(&r, e);
}

/* ---- the entries the leaves log, as typed rows -------------------------------------- */

/* The entry a leaf refers to (found false when it is gone), pointing into
 * res (entry_done clears it). */
struct pg_entry {
	PGresult *res;
	struct store_entry e; /* its strings belong to the statement until entry_done */
};

static allot_err entry_read(struct pg_store *ps, PGconn *c, enum tlog_leaf_type type,
			    int64_t ref, struct pg_entry *out)
{
	static const char q_usage[] = "SELECT " PG_USAGE_COLS " FROM usage_records WHERE id = $1";
	static const char q_charter[] =
		"SELECT version, charter_id, sha256, author, applied_at, effective, text "
		"FROM charters WHERE version = $1";
	static const char q_audit[] =
		"SELECT id, at, actor, action, target, before_sha256, after_sha256, detail "
		"FROM audit_log WHERE id = $1";
	const char *sql = type == TLOG_LEAF_USAGE ? q_usage
			  : type == TLOG_LEAF_CHARTER ? q_charter : q_audit;
	char rf[24];
	const char *v[] = {pg_i64(rf, ref)};
	allot_err e = ALLOT_OK;
	memset(out, 0, sizeof *out);
	PGresult *r = out->res = pg_run(ps, c, sql, 1, v, &e);
	if (!r)
		return e;
	if (PQntuples(r) != 1)
		return ALLOT_OK;
	if (type == TLOG_LEAF_USAGE) {
		if ((e = pg_usage_row(ps, r, 0, &out->e.usage)))
			return e;
	} else if (type == TLOG_LEAF_CHARTER) {
		struct charter_row *ch = &out->e.charter;
		ch->version = pg_col_i64(r, 0, 0);
		pgs_col_text(r, 0, 1, ch->charter_id, sizeof ch->charter_id);
		pgs_col_text(r, 0, 2, ch->sha256, sizeof ch->sha256);
		pgs_col_text(r, 0, 3, ch->author, sizeof ch->author);
		ch->applied_at = pg_col_i64(r, 0, 4);
		ch->effective = pg_col_i64(r, 0, 5);
		if (!(ch->text = (char *)pgs_col_blob(r, 0, 6, &ch->text_len)))
			return ALLOT_E_NOMEM;
	} else {
		out->e.audit_id = pg_col_i64(r, 0, 0);
		out->e.audit = (struct audit_entry){
			.at = pg_col_i64(r, 0, 1), .actor = pgs_col_str(r, 0, 2),
			.action = pgs_col_str(r, 0, 3), .target = pgs_col_str(r, 0, 4),
			.before_sha256 = pgs_col_str(r, 0, 5), .after_sha256 = pgs_col_str(r, 0, 6),
			.detail = pgs_col_str(r, 0, 7)};
	}
	out->e.found = true;
	return ALLOT_OK;
}

static void entry_done(struct pg_entry *e)
{
	free(e->e.usage.rec.canonical);
	free(e->e.charter.text);
	PQclear(e->res);
	memset(e, 0, sizeof *e);
}

allot_err pg_tlog_entries(struct store *st, uint64_t start, uint64_t end,
			  void (*fn)(void *ctx, const struct tlog_entry_row *e), void *ctx)
{
	static const char q[] = "SELECT idx, type, ref, leaf_hash, name FROM tlog_leaves_all "
				"WHERE idx >= $1 AND idx < $2 ORDER BY idx";
	struct rd r;
	allot_err e = rd_head(st, &r);
	if (e)
		return e;
	if (end > r.head) /* only committed leaves */
		end = r.head;
	if (start > end)
		return rd_put(&r, ALLOT_E_INVALID);
	char a[24], b[24];
	const char *v[] = {pg_i64(a, (int64_t)start), pg_i64(b, (int64_t)end)};
	PGresult *res = pg_run(r.ps, r.c, q, 2, v, &e);
	for (int i = 0; res && !e && i < PQntuples(res); i++) {
		struct tlog_entry_row row = {
			.leaf_index = (uint64_t)pg_col_i64(res, i, 0), .type = PQgetvalue(res, i, 1),
			.ref = pg_col_i64(res, i, 2), .name = pgs_col_str(res, i, 4)};
		row.has_leaf_hash = pgs_col_bytes(res, i, 3, row.leaf_hash, sizeof row.leaf_hash);
		struct pg_entry ent = {.res = NULL};
		int t = tlog_leaf_type_parse(row.type);
		if (t >= 0)
			e = entry_read(r.ps, r.c, (enum tlog_leaf_type)t, row.ref, &ent);
		char name[STORE_LEAF_NAME_MAX];
		if (!e) {
			store_entry_row(&row, t, &ent.e);
			store_entry_name(&row, name); /* copied from SQLite without one */
			fn(ctx, &row);
		}
		entry_done(&ent);
	}
	PQclear(res);
	return rd_put(&r, e);
}

allot_err pg_tlog_leaf_of(struct store *st, const char *type, int64_t ref, int64_t *idx)
{
	/* Usage records carry their index (or have it in tlog_backfill); a
	 * charter or audit entry is looked up in the leaves (tests and tools). */
	static const char q_usage[] =
		"SELECT coalesce(leaf_index, (SELECT idx FROM tlog_backfill WHERE ref = $1)) "
		"FROM usage_records WHERE id = $1";
	static const char q_scan[] =
		"SELECT idx FROM tlog_leaves WHERE type = $2 AND ref = $1 ORDER BY idx LIMIT 1";
	struct rd r;
	allot_err e = rd_get(st, &r);
	if (e)
		return e;
	bool usage = strcmp(type, "usage") == 0;
	char rf[24];
	const char *v[] = {pg_i64(rf, ref), type};
	PGresult *res = pg_run(r.ps, r.c, usage ? q_usage : q_scan, usage ? 1 : 2, v, &e);
	if (res) {
		e = ALLOT_E_NOT_FOUND;
		if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
			*idx = pg_col_i64(res, 0, 0);
			e = ALLOT_OK;
		}
		PQclear(res);
	}
	return rd_put(&r, e);
}

void pg_tlog_set_enabled(struct store *st, bool on)
{
	struct pg_store *ps = PS(st);
	if (ps->tlog)
		__atomic_store_n(&ps->tlog->enabled, on, __ATOMIC_RELAXED);
}
