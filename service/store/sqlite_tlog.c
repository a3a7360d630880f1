/* sqlite_tlog.c — the transparency log in the SQLite store: leaves and
 * complete subtree nodes (migrations/sqlite/0005_tlog_compact.sql), appended in the
 * transaction of the entry they log, and proofs read back from them.
 *
 * Tree state: `committed` is the compact range of what is on disk.  The
 * first append of a transaction copies it to `pending`, appends go there,
 * and sq_tlog_txn_end() promotes `pending` after a COMMIT or drops it after
 * a ROLLBACK, so the in-memory state never runs ahead of the database.
 * Everything here runs under the store's (recursive) lock.
 */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/store_entry.h"
#include "tlog/leaf.h"
#include "tlog/merkle.h"

#define S(st_) ((struct sqlite_store *)(st_))

struct sq_tlog {
	bool enabled;                 /* false only in benchmarks/tests */
	bool dirty;                   /* pending holds this transaction's appends */
	struct merkle_tree committed;
	struct merkle_tree pending;
	bool sp_valid, sp_dirty;      /* the state at the open savepoint */
	struct merkle_tree sp;
};

static const char q_put[] = "INSERT INTO tlog_nodes(level, idx, hash) VALUES (?1, ?2, ?3)";
static const char q_get[] = "SELECT hash FROM tlog_nodes WHERE level = ?1 AND idx = ?2";
static const char q_get0[] = "SELECT leaf_hash FROM tlog_leaves WHERE idx = ?2 AND ?1 = 0";
static const char q_leaf[] =
	"INSERT INTO tlog_leaves(idx, type, ref, leaf_hash, name) VALUES (?1, ?2, ?3, ?4, ?5)";

/* Levels below this are not stored: a node of level l < 4 is rebuilt from
 * its 2^l (at most 8) leaf hashes, read with one range query, so an append
 * writes its leaf row and, on average, 1/16 of a node row instead of 2 rows
 * (see docs/TLOG.md, "Tables"). */
#define TLOG_STORED_LEVEL_MIN 4

/* Level 0 (the leaf hashes) lives in tlog_leaves, written before the append. */
static allot_err node_put(void *ctx, unsigned level, uint64_t index,
			  const uint8_t hash[MERKLE_HASH_LEN])
{
	struct sqlite_store *s = ctx;
	if (level < TLOG_STORED_LEVEL_MIN)
		return ALLOT_OK;
	sqlite3_stmt *q = sq_prep(s, q_put);
	if (!q)
		return ALLOT_E_STORE;
	sqlite3_bind_int(q, 1, (int)level);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)index);
	sqlite3_bind_blob(q, 3, hash, MERKLE_HASH_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? ALLOT_OK : sq_fail(s, "log node insert");
}

/* A low node from its leaves; ALLOT_E_NOT_FOUND unless all of them exist. */
static allot_err node_rebuild(struct sqlite_store *s, unsigned level, uint64_t index,
			      uint8_t out[MERKLE_HASH_LEN])
{
	static const char q_range[] =
		"SELECT idx, leaf_hash FROM tlog_leaves WHERE idx >= ?1 AND idx < ?2 ORDER BY idx";
	uint8_t h[1u << (TLOG_STORED_LEVEL_MIN - 1)][MERKLE_HASH_LEN];
	uint64_t first = index << level, n = UINT64_C(1) << level, got = 0;
	sqlite3_stmt *q = sq_prep(s, q_range);
	if (!q)
		return ALLOT_E_STORE;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)first);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)(first + n));
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW && got < n) {
		if ((uint64_t)sqlite3_column_int64(q, 0) != first + got ||
		    sqlite3_column_bytes(q, 1) != MERKLE_HASH_LEN)
			break;
		memcpy(h[got++], sqlite3_column_blob(q, 1), MERKLE_HASH_LEN);
	}
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(s, "log leaf range");
	if (got != n)
		return ALLOT_E_NOT_FOUND;
	merkle_subtree_fold(h, n, out);
	return ALLOT_OK;
}

static allot_err node_get(void *ctx, unsigned level, uint64_t index,
			  uint8_t out[MERKLE_HASH_LEN])
{
	struct sqlite_store *s = ctx;
	if (level > 0 && level < TLOG_STORED_LEVEL_MIN)
		return node_rebuild(s, level, index, out);
	sqlite3_stmt *q = sq_prep(s, level ? q_get : q_get0);
	if (!q)
		return ALLOT_E_STORE;
	sqlite3_bind_int(q, 1, (int)level);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)index);
	int rc = sqlite3_step(q);
	allot_err e = ALLOT_OK;
	if (rc == SQLITE_ROW && sqlite3_column_bytes(q, 0) == MERKLE_HASH_LEN)
		memcpy(out, sqlite3_column_blob(q, 0), MERKLE_HASH_LEN);
	else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		e = ALLOT_E_NOT_FOUND;
	else
		e = sq_fail(s, "log node read");
	sqlite3_reset(q);
	return e;
}

void sq_tlog_txn_end(struct sqlite_store *s, bool committed)
{
	struct sq_tlog *t = s->tlog;
	if (!t || !t->dirty)
		return;
	if (committed)
		t->committed = t->pending;
	t->dirty = false;
	t->sp_valid = false;
}

void sq_tlog_savepoint(struct sqlite_store *s, int op)
{
	struct sq_tlog *t = s->tlog;
	if (!t)
		return;
	if (op == STORE_SP_BEGIN) {
		t->sp_valid = true;
		t->sp_dirty = t->dirty;
		if (t->dirty)
			t->sp = t->pending;
	} else if (op == STORE_SP_ROLLBACK && t->sp_valid) {
		t->dirty = t->sp_dirty;
		if (t->dirty)
			t->pending = t->sp;
		t->sp_valid = false;
	}
}

int64_t sq_tlog_next_index(struct sqlite_store *s)
{
	struct sq_tlog *t = s->tlog;
	if (!t || !t->enabled)
		return -1;
	return (int64_t)(t->dirty ? t->pending.size : t->committed.size);
}

/* Appends the leaf data[0..len) inside the caller's transaction. */
static allot_err tlog_append(struct sqlite_store *s, enum tlog_leaf_type type, int64_t ref,
			     const char *name, const char *data, size_t len)
{
	struct sq_tlog *t = s->tlog;
	if (sqlite3_get_autocommit(s->db)) {
		/* A leaf outside a transaction could not be undone with its entry. */
		snprintf(s->base.errmsg, sizeof s->base.errmsg, "log append outside a transaction");
		return ALLOT_E_INTERNAL;
	}
	if (!t->dirty) {
		t->pending = t->committed;
		t->dirty = true;
	}
	uint8_t leaf[MERKLE_HASH_LEN];
	merkle_leaf_hash(data, len, leaf);
	sqlite3_stmt *q = sq_prep(s, q_leaf);
	if (!q)
		return ALLOT_E_STORE;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)t->pending.size);
	sqlite3_bind_text(q, 2, tlog_leaf_type_name(type), -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, ref);
	sqlite3_bind_blob(q, 4, leaf, MERKLE_HASH_LEN, SQLITE_STATIC);
	if (name)
		sqlite3_bind_text(q, 5, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return sq_fail(s, "log leaf insert");
	return merkle_tree_append(&t->pending, leaf, node_put, s);
}

/* The same from a charter or audit entry in export form (a usage record's
 * leaf is built without JSON: sq_tlog_append_usage). */
static allot_err tlog_append_json(struct sqlite_store *s, enum tlog_leaf_type type, int64_t ref,
				  const json_t *entry)
{
	if (!entry)
		return ALLOT_E_NOMEM;
	char *data = NULL, why[160];
	size_t len = 0;
	allot_err e = tlog_leaf_bytes(type, entry, &data, &len, why, sizeof why);
	if (e) {
		snprintf(s->base.errmsg, sizeof s->base.errmsg, "log leaf: %s", why);
		return e;
	}
	e = tlog_append(s, type, ref, NULL, data, len);
	free(data);
	return e;
}

allot_err sq_tlog_append_usage(struct sqlite_store *s, const struct ledger_row *row)
{
	if (!s->tlog || !s->tlog->enabled)
		return ALLOT_OK;
	char *data = NULL, name[STORE_LEAF_NAME_MAX];
	size_t len = 0;
	if (store_row_leaf(row, &data, &len, name))
		return ALLOT_E_NOMEM;
	/* A gate record's leaf keeps no name: it would repeat the record's
	 * 50-byte id in every leaf row (docs/LEDGER.md, "Storage").  A
	 * provider record's leaf names it, so that an export still says which
	 * signed record is gone if its row ever is. */
	allot_err e = tlog_append(s, TLOG_LEAF_USAGE, row->row_id, row->from_gate ? NULL : name,
				  data, len);
	free(data);
	return e;
}

allot_err sq_tlog_append_charter(struct sqlite_store *s, const struct charter_row *r)
{
	if (!s->tlog || !s->tlog->enabled)
		return ALLOT_OK;
	json_t *j = tlog_charter_export_json(r->version, r->charter_id, r->sha256, r->author,
					     r->applied_at, r->effective);
	allot_err e = tlog_append_json(s, TLOG_LEAF_CHARTER, r->version, j);
	json_decref(j);
	return e;
}

allot_err sq_tlog_append_audit(struct sqlite_store *s, int64_t id, const struct audit_entry *a)
{
	if (!s->tlog || !s->tlog->enabled)
		return ALLOT_OK;
	json_t *j = tlog_audit_export_json(id, a->at, a->actor, a->action, a->target,
					   a->before_sha256, a->after_sha256, a->detail);
	allot_err e = tlog_append_json(s, TLOG_LEAF_AUDIT, id, j);
	json_decref(j);
	return e;
}

/* ---- the entries the leaves log, as typed rows ------------------------------ */

static const char q_usage_row[] =
	"SELECT " SQ_USAGE_COLS " FROM usage_records WHERE id = ?1";
static const char q_charter_row[] =
	"SELECT version, charter_id, sha256, author, applied_at, effective, text "
	"FROM charters WHERE version = ?1";
static const char q_audit_row[] =
	"SELECT id, at, actor, action, target, before_sha256, after_sha256, detail "
	"FROM audit_log WHERE id = ?1";

/* The entry a leaf refers to, pointing into the row of q (reset it after
 * use: entry_done); found false when it is gone. */
struct sq_entry {
	sqlite3_stmt *q;
	struct store_entry e; /* its strings belong to the statement until entry_done
			       * (a usage row's canonical bytes: from malloc) */
};

static const char *col_text(sqlite3_stmt *q, int col)
{
	return (const char *)sqlite3_column_text(q, col);
}

static allot_err entry_read(struct sqlite_store *s, enum tlog_leaf_type type, int64_t ref,
			    struct sq_entry *out)
{
	const char *sql = type == TLOG_LEAF_USAGE ? q_usage_row
			  : type == TLOG_LEAF_CHARTER ? q_charter_row : q_audit_row;
	out->e.found = false;
	out->q = sq_prep(s, sql);
	sqlite3_stmt *q = out->q;
	if (!q)
		return ALLOT_E_STORE;
	sqlite3_bind_int64(q, 1, ref);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_DONE)
		return ALLOT_OK;
	if (rc != SQLITE_ROW)
		return sq_fail(s, "log entry");
	out->e.found = true;
	if (type == TLOG_LEAF_USAGE) {
		if (sq_usage_row(q, &out->e.usage))
			return ALLOT_E_NOMEM;
	} else if (type == TLOG_LEAF_CHARTER) {
		struct charter_row *c = &out->e.charter;
		memset(c, 0, sizeof *c);
		c->version = sqlite3_column_int64(q, 0);
		sq_copy_text(q, 1, c->charter_id, sizeof c->charter_id);
		sq_copy_text(q, 2, c->sha256, sizeof c->sha256);
		sq_copy_text(q, 3, c->author, sizeof c->author);
		c->applied_at = sqlite3_column_int64(q, 4);
		c->effective = sqlite3_column_int64(q, 5);
		c->text = (char *)sqlite3_column_text(q, 6);
		c->text_len = (size_t)sqlite3_column_bytes(q, 6);
	} else {
		out->e.audit_id = sqlite3_column_int64(q, 0);
		out->e.audit = (struct audit_entry){
			.at = sqlite3_column_int64(q, 1), .actor = col_text(q, 2),
			.action = col_text(q, 3), .target = col_text(q, 4),
			.before_sha256 = col_text(q, 5), .after_sha256 = col_text(q, 6),
			.detail = col_text(q, 7)};
	}
	return ALLOT_OK;
}

static void entry_done(struct sq_entry *e)
{
	free(e->e.usage.rec.canonical);
	e->e.usage.rec.canonical = NULL;
	if (e->q)
		sqlite3_reset(e->q);
	e->q = NULL;
}

/* ---- start-up: load the tree, log what came before the log -------------------- */

/* Appends the leaf of the entry (type, ref), read back from its table. */
static allot_err backfill_one(struct sqlite_store *s, enum tlog_leaf_type t, int64_t ref)
{
	struct sq_entry ent = {.q = NULL};
	allot_err e = entry_read(s, t, ref, &ent);
	if (!e && !ent.e.found)
		e = ALLOT_E_STORE;
	if (!e)
		e = t == TLOG_LEAF_USAGE ? sq_tlog_append_usage(s, &ent.e.usage)
		    : t == TLOG_LEAF_CHARTER ? sq_tlog_append_charter(s, &ent.e.charter)
		    : sq_tlog_append_audit(s, ent.e.audit_id, &ent.e.audit);
	entry_done(&ent);
	return e;
}

static allot_err tlog_backfill(struct sqlite_store *s)
{
	static const char q_todo[] =
		"SELECT 1, version FROM charters UNION ALL SELECT 2, id FROM audit_log "
		"UNION ALL SELECT 3, id FROM usage_records ORDER BY 1, 2";
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db, q_todo, -1, &q, NULL) != SQLITE_OK)
		return sq_fail(s, "log backfill");
	allot_err e = sq_begin(s);
	int64_t n = 0;
	int rc;
	while (!e && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		int kind = sqlite3_column_int(q, 0);
		int64_t ref = sqlite3_column_int64(q, 1);
		enum tlog_leaf_type t = kind == 1 ? TLOG_LEAF_CHARTER
					: kind == 2 ? TLOG_LEAF_AUDIT : TLOG_LEAF_USAGE;
		uint64_t idx = s->tlog->dirty ? s->tlog->pending.size : s->tlog->committed.size;
		e = backfill_one(s, t, ref);
		if (!e && t == TLOG_LEAF_USAGE) {
			/* The record's row cannot take its index (append-only). */
			static const char q_map[] = "INSERT INTO tlog_backfill(ref, idx) VALUES (?1, ?2)";
			sqlite3_stmt *m = sq_prep(s, q_map);
			if (!m)
				e = ALLOT_E_STORE;
			else {
				sqlite3_bind_int64(m, 1, ref);
				sqlite3_bind_int64(m, 2, (sqlite3_int64)idx);
				if (sqlite3_step(m) != SQLITE_DONE)
					e = sq_fail(s, "log backfill map");
				sqlite3_reset(m);
			}
		}
		n++;
	}
	sqlite3_finalize(q);
	if (!e)
		e = sq_commit(s);
	if (e) {
		sq_rollback(s);
		return e;
	}
	if (n)
		log_info("store: transparency log started with %lld earlier entries", (long long)n);
	return ALLOT_OK;
}

allot_err sq_tlog_open(struct sqlite_store *s, char *msg, size_t msgsz)
{
	struct sq_tlog *t = calloc(1, sizeof *t);
	if (!t)
		return ALLOT_E_NOMEM;
	t->enabled = true;
	merkle_tree_init(&t->committed);
	s->tlog = t;
	sqlite3_stmt *q = NULL;
	int64_t size = -1, count = -1;
	if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(idx) + 1, 0), count(*) FROM tlog_leaves",
			       -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
		size = sqlite3_column_int64(q, 0);
		count = sqlite3_column_int64(q, 1);
	}
	sqlite3_finalize(q);
	if (size < 0) {
		snprintf(msg, msgsz, "cannot read the transparency log: %s", sqlite3_errmsg(s->db));
		return ALLOT_E_STORE;
	}
	if (count != size)
		log_warnx("store: the transparency log has %lld leaves but its last index is %lld: "
			  "leaves were deleted; verification of exports will fail",
			  (long long)count, (long long)size - 1);
	allot_err e = merkle_tree_load(&t->committed, (uint64_t)size, node_get, s);
	if (e) {
		snprintf(msg, msgsz, "the transparency log is damaged: a node of the tree of %lld "
			 "leaves is missing", (long long)size);
		return ALLOT_E_STORE;
	}
	if (size == 0 && !s->readonly && (e = tlog_backfill(s))) {
		snprintf(msg, msgsz, "cannot start the transparency log: %s", s->base.errmsg);
		return e;
	}
	return ALLOT_OK;
}

void sq_tlog_close(struct sqlite_store *s)
{
	free(s->tlog);
	s->tlog = NULL;
}

/* ---- store operations -------------------------------------------------------- */

allot_err sq_tlog_head(struct store *st, uint64_t *size, uint8_t root[32])
{
	struct sqlite_store *s = S(st);
	pthread_mutex_lock(&s->lock);
	*size = s->tlog->committed.size;
	merkle_tree_root(&s->tlog->committed, root);
	pthread_mutex_unlock(&s->lock);
	return ALLOT_OK;
}

allot_err sq_tlog_inclusion(struct store *st, uint64_t index, uint64_t size,
			    uint8_t leaf[32], struct merkle_proof *p)
{
	struct sqlite_store *s = S(st);
	allot_err e = ALLOT_E_INVALID;
	pthread_mutex_lock(&s->lock);
	if (size <= s->tlog->committed.size && index < size) {
		e = node_get(s, 0, index, leaf);
		if (!e)
			e = merkle_prove_inclusion(index, size, node_get, s, p);
	}
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_tlog_consistency(struct store *st, uint64_t size1, uint64_t size2,
			      struct merkle_proof *p)
{
	struct sqlite_store *s = S(st);
	allot_err e = ALLOT_E_INVALID;
	pthread_mutex_lock(&s->lock);
	if (size2 <= s->tlog->committed.size && size1 >= 1 && size1 <= size2)
		e = merkle_prove_consistency(size1, size2, node_get, s, p);
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_tlog_root_at(struct store *st, uint64_t size, uint8_t root[32])
{
	struct sqlite_store *s = S(st);
	allot_err e = ALLOT_E_INVALID;
	pthread_mutex_lock(&s->lock);
	if (size <= s->tlog->committed.size)
		e = merkle_root_at(size, node_get, s, root);
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_tlog_entries(struct store *st, uint64_t start, uint64_t end,
			  void (*fn)(void *ctx, const struct tlog_entry_row *e), void *ctx)
{
	struct sqlite_store *s = S(st);
	static const char sql[] =
		"SELECT idx, type, ref, leaf_hash, name FROM tlog_leaves "
		"WHERE idx >= ?1 AND idx < ?2 ORDER BY idx";
	allot_err e = ALLOT_E_INVALID;
	pthread_mutex_lock(&s->lock);
	/* Only committed leaves: the range ends at the committed size. */
	if (end > s->tlog->committed.size)
		end = s->tlog->committed.size;
	if (start > end)
		goto out;
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK) {
		e = sq_fail(s, "log entries");
		goto out;
	}
	sqlite3_bind_int64(q, 1, (sqlite3_int64)start);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)end);
	e = ALLOT_OK;
	int rc;
	while (!e && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *type = col_text(q, 1);
		struct tlog_entry_row r = {
			.leaf_index = (uint64_t)sqlite3_column_int64(q, 0), .type = type ? type : "",
			.ref = sqlite3_column_int64(q, 2), .name = col_text(q, 4)};
		if (sqlite3_column_bytes(q, 3) == 32) {
			memcpy(r.leaf_hash, sqlite3_column_blob(q, 3), 32);
			r.has_leaf_hash = true;
		}
		struct sq_entry ent = {.q = NULL};
		int t = tlog_leaf_type_parse(type);
		if (t >= 0)
			e = entry_read(s, (enum tlog_leaf_type)t, r.ref, &ent);
		char name[STORE_LEAF_NAME_MAX];
		if (!e) {
			store_entry_row(&r, t, &ent.e);
			store_entry_name(&r, name); /* a gate record's leaf keeps none */
			fn(ctx, &r);
		}
		entry_done(&ent);
	}
	if (!e && rc != SQLITE_DONE)
		e = sq_fail(s, "log entries");
	sqlite3_finalize(q);
out:
	pthread_mutex_unlock(&s->lock);
	return e;
}

allot_err sq_tlog_leaf_of(struct store *st, const char *type, int64_t ref, int64_t *idx)
{
	struct sqlite_store *s = S(st);
	/* Usage records carry their index (or, logged by the start-up backfill,
	 * have it in tlog_backfill); a charter or audit entry is looked up in
	 * the leaves, without an index (tests and tools only). */
	static const char q_usage[] =
		"SELECT coalesce(leaf_index, (SELECT idx FROM tlog_backfill WHERE ref = ?2)) "
		"FROM usage_records WHERE id = ?2 AND ?1 = 'usage'";
	static const char q_scan[] = "SELECT idx FROM tlog_leaves WHERE type = ?1 AND ref = ?2";
	bool usage = strcmp(type, "usage") == 0;
	allot_err e = ALLOT_E_NOT_FOUND;
	pthread_mutex_lock(&s->lock);
	for (int k = usage ? 0 : 1; k < (usage ? 1 : 2) && e == ALLOT_E_NOT_FOUND; k++) {
		sqlite3_stmt *q = sq_prep(s, k ? q_scan : q_usage);
		if (!q) {
			e = ALLOT_E_STORE;
			break;
		}
		sqlite3_bind_text(q, 1, type, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, ref);
		int rc = sqlite3_step(q);
		if (rc == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_INTEGER) {
			*idx = sqlite3_column_int64(q, 0);
			e = ALLOT_OK;
		} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			e = sq_fail(s, "log leaf lookup");
		}
		sqlite3_reset(q);
	}
	pthread_mutex_unlock(&s->lock);
	return e;
}

void sq_tlog_set_enabled(struct store *st, bool on)
{
	struct sqlite_store *s = S(st);
	pthread_mutex_lock(&s->lock);
	s->tlog->enabled = on;
	pthread_mutex_unlock(&s->lock);
}
