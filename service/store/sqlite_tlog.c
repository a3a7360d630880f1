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
#include "common/b64.h"
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
	for (; n > 1; n /= 2)
		for (uint64_t i = 0; i < n / 2; i++)
			merkle_node_hash(h[2 * i], h[2 * i + 1], h[i]);
	memcpy(out, h[0], MERKLE_HASH_LEN);
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

/* The same from an entry in export form. */
static allot_err tlog_append_json(struct sqlite_store *s, enum tlog_leaf_type type, int64_t ref,
				  const json_t *entry)
{
	if (!entry)
		return ALLOT_E_NOMEM;
	char *data = NULL, why[160], name[2 * STORE_ID_MAX + RECORD_ID_MAX];
	size_t len = 0;
	allot_err e = tlog_leaf_bytes(type, entry, &data, &len, why, sizeof why);
	if (e) {
		snprintf(s->base.errmsg, sizeof s->base.errmsg, "log leaf: %s", why);
		return e;
	}
	if (type == TLOG_LEAF_USAGE)
		snprintf(name, sizeof name, "%s/%s",
			 json_string_value(json_object_get(entry, "provider")),
			 json_string_value(json_object_get(entry, "record_id")));
	e = tlog_append(s, type, ref, type == TLOG_LEAF_USAGE ? name : NULL, data, len);
	free(data);
	return e;
}

allot_err sq_tlog_append_usage(struct sqlite_store *s, const struct ledger_row *row)
{
	if (!s->tlog || !s->tlog->enabled)
		return ALLOT_OK;
	char *data = NULL, name[2 * STORE_ID_MAX + RECORD_ID_MAX];
	size_t len = 0;
	struct tlog_usage u;
	store_row_leaf_entry(row, &u);
	if (tlog_leaf_usage(&u, &data, &len))
		return ALLOT_E_NOMEM;
	snprintf(name, sizeof name, "%s/%s", row->rec.provider, row->rec.record_id);
	allot_err e = tlog_append(s, TLOG_LEAF_USAGE, row->row_id, name, data, len);
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

/* ---- entries in export form ------------------------------------------------- */

static const char q_usage_row[] =
	"SELECT provider, record_id, seq, kind, adjustment, supersedes, institution, project, "
	"member, resource, class, model, quantity, start_us, end_us, received_us, book_us, late, "
	"charter_version, rate_micro, charge_micro, overage, source, lower(hex(sha256)) AS sha256, "
	"CAST(canonical AS TEXT) AS canonical FROM usage_records WHERE id = ?1";
static const char q_charter_row[] =
	"SELECT version, charter_id, sha256, author, applied_at, effective, "
	"CAST(text AS TEXT) AS text FROM charters WHERE version = ?1";
static const char q_audit_row[] =
	"SELECT id, at, actor, action, target, before_sha256, after_sha256, detail "
	"FROM audit_log WHERE id = ?1";

/* The entry a leaf refers to, in export form; *out = NULL when it is gone. */
static allot_err entry_json(struct sqlite_store *s, enum tlog_leaf_type type, int64_t ref,
			    json_t **out)
{
	const char *sql = type == TLOG_LEAF_USAGE ? q_usage_row
			  : type == TLOG_LEAF_CHARTER ? q_charter_row : q_audit_row;
	sqlite3_stmt *q = sq_prep(s, sql);
	if (!q)
		return ALLOT_E_STORE;
	sqlite3_bind_int64(q, 1, ref);
	json_t *rows = NULL;
	allot_err e = sq_rows_to_json(s, q, &rows);
	if (e)
		return e;
	json_t *r = json_incref(json_array_get(rows, 0));
	json_decref(rows);
	if (r && type == TLOG_LEAF_USAGE) {
		tlog_usage_export_form(r);
	} else if (r && type == TLOG_LEAF_CHARTER) {
		json_t *c = tlog_charter_export_json(
			json_integer_value(json_object_get(r, "version")),
			json_string_value(json_object_get(r, "charter_id")),
			json_string_value(json_object_get(r, "sha256")),
			json_string_value(json_object_get(r, "author")),
			json_integer_value(json_object_get(r, "applied_at")),
			json_integer_value(json_object_get(r, "effective")));
		if (c)
			json_object_set(c, "text", json_object_get(r, "text"));
		json_decref(r);
		r = c;
	} else if (r) {
		const char *d = json_string_value(json_object_get(r, "detail"));
		json_t *a = tlog_audit_export_json(
			json_integer_value(json_object_get(r, "id")),
			json_integer_value(json_object_get(r, "at")),
			json_string_value(json_object_get(r, "actor")),
			json_string_value(json_object_get(r, "action")),
			json_string_value(json_object_get(r, "target")),
			json_string_value(json_object_get(r, "before_sha256")),
			json_string_value(json_object_get(r, "after_sha256")), d);
		json_decref(r);
		r = a;
	}
	*out = r;
	return ALLOT_OK;
}

/* ---- start-up: load the tree, log what came before the log -------------------- */

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
		json_t *j = NULL;
		uint64_t idx = s->tlog->dirty ? s->tlog->pending.size : s->tlog->committed.size;
		if (!(e = entry_json(s, t, ref, &j)))
			e = tlog_append_json(s, t, ref, j);
		json_decref(j);
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

allot_err sq_tlog_entries(struct store *st, uint64_t start, uint64_t end, bool with_entry,
			  json_t **out)
{
	struct sqlite_store *s = S(st);
	static const char sql[] =
		"SELECT idx, type, ref, leaf_hash, name FROM tlog_leaves "
		"WHERE idx >= ?1 AND idx < ?2 ORDER BY idx";
	allot_err e = ALLOT_E_INVALID;
	json_t *arr = NULL;
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
	arr = json_array();
	e = ALLOT_OK;
	int rc;
	while (!e && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(q, 1);
		int64_t ref = sqlite3_column_int64(q, 2);
		const char *name = (const char *)sqlite3_column_text(q, 4);
		json_t *o = json_pack("{s:I,s:s}", "leaf_index", (json_int_t)sqlite3_column_int64(q, 0),
				      "type", type ? type : "");
		json_t *ent = NULL;
		int t = tlog_leaf_type_parse(type);
		if (t >= 0)
			e = entry_json(s, (enum tlog_leaf_type)t, ref, &ent);
		if (with_entry) {
			json_object_set_new(o, "entry", ent ? ent : json_null());
			/* The entry is gone: the leaf row still names it. */
			if (!ent) {
				json_object_set_new(o, "ref", json_integer(ref));
				if (name)
					json_object_set_new(o, "name", json_string(name));
			}
		} else {
			char hex[65], *data = NULL;
			size_t len;
			json_object_set_new(o, "ref", json_integer(ref));
			if (ent && !tlog_leaf_bytes((enum tlog_leaf_type)t, ent, &data, &len, NULL, 0))
				json_object_set_new(o, "data", json_stringn(data, len));
			else
				json_object_set_new(o, "data", json_null());
			free(data);
			json_decref(ent);
			if (sqlite3_column_bytes(q, 3) == 32) {
				hex_encode(sqlite3_column_blob(q, 3), 32, hex);
				json_object_set_new(o, "leaf_hash", json_string(hex));
			}
		}
		json_array_append_new(arr, o);
	}
	sqlite3_finalize(q);
out:
	pthread_mutex_unlock(&s->lock);
	if (e) {
		json_decref(arr);
		return e;
	}
	*out = arr;
	return ALLOT_OK;
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
