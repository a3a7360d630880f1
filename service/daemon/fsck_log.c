/* fsck_log.c — allotd --fsck on the transparency log: every leaf hash
 * recomputed from its entry, the tree rebuilt from the leaf hashes and its
 * nodes compared with the stored ones, the root and size the store loads at
 * open (on PostgreSQL the head row every checkpoint is signed over)
 * compared with the rebuilt root, and one leaf per logged entry. */
#include "daemon/fsck_int.h"

#include <stdio.h>
#include <string.h>

#include "common/b64.h"
#include "ledger/ledgerlog.h"
#include "tlog/merkle.h"

/* Leaves read per store call. */
#define FSCK_LOG_CHUNK 1000

/* The rebuilt tree's completed nodes are looked up among the stored ones. */
struct nodes {
	struct fsck *f;
	bool ready;            /* the lookups can run */
	int64_t found;         /* stored nodes the rebuilt tree has */
};

static const char q_node[] = "SELECT hash FROM tlog_nodes WHERE level = ?1 AND idx = ?2";

static allot_err node_seen(void *ctx, unsigned level, uint64_t index,
			   const uint8_t hash[MERKLE_HASH_LEN])
{
	struct nodes *n = ctx;
	if (level == 0 || !n->ready)
		return ALLOT_OK; /* leaves are compared by the caller */
	struct fsck_arg args[] = {{NULL, (int64_t)level}, {NULL, (int64_t)index}};
	struct fsck_q q;
	int rc = fsck_q_open(n->f, &q, q_node, false, 2, args) ? fsck_q_step(&q) : -1;
	if (rc == 1) {
		uint8_t have[MERKLE_HASH_LEN];
		size_t len = 0;
		bool readable = fsck_q_blob(&q, 0, have, sizeof have, &len) && len == sizeof have;
		n->found++;
		n->f->checks++;
		if (!readable || memcmp(have, hash, MERKLE_HASH_LEN) != 0) {
			char where[64], want[2 * MERKLE_HASH_LEN + 1], shown[2 * MERKLE_HASH_LEN + 1] = "";
			snprintf(where, sizeof where, "level %u index %llu", level,
				 (unsigned long long)index);
			hex_encode(hash, MERKLE_HASH_LEN, want);
			if (readable)
				hex_encode(have, MERKLE_HASH_LEN, shown);
			fsck_bad(n->f, "log node", where, shown, want);
		}
	} else if (rc != 0) {
		fsck_fail(n->f, "log nodes", fsck_raw_err(n->f));
		n->ready = false; /* one report, not one per node */
	}
	fsck_q_close(&q);
	return ALLOT_OK;
}

/* One leaf as the store lists it: its hash against the hash of the bytes
 * recomputed from its entry; the stored hash goes into the rebuilt tree. */
static void leaf_check(struct fsck *f, json_t *o, struct merkle_tree *t, struct nodes *n)
{
	char where[96];
	int64_t idx = json_integer_value(json_object_get(o, "leaf_index"));
	snprintf(where, sizeof where, "leaf %lld (%s %lld)", (long long)idx,
		 json_string_value(json_object_get(o, "type")),
		 (long long)json_integer_value(json_object_get(o, "ref")));
	const char *hex = json_string_value(json_object_get(o, "leaf_hash"));
	const char *data = json_string_value(json_object_get(o, "data"));
	uint8_t stored[MERKLE_HASH_LEN] = {0}, again[MERKLE_HASH_LEN];
	size_t len = 0;
	f->checks++;
	if (!hex || hex_decode(hex, strlen(hex), stored, sizeof stored, &len) || len != sizeof stored)
		fsck_bad(f, "log leaf hash", where, "unreadable", "32 bytes");
	if (!data) {
		fsck_bad(f, "log leaf", where, "leaf", "no entry");
	} else {
		merkle_leaf_hash(data, json_string_length(json_object_get(o, "data")), again);
		if (len == sizeof stored && memcmp(stored, again, sizeof again) != 0) {
			char want[2 * MERKLE_HASH_LEN + 1];
			hex_encode(again, sizeof again, want);
			fsck_bad(f, "log leaf hash", where, hex, want);
		}
	}
	merkle_tree_append(t, stored, node_seen, n);
}

/* The leaves, the rebuilt tree and its root against the store's. */
static void tree_check(struct fsck *f)
{
	struct merkle_tree t;
	merkle_tree_init(&t);
	struct nodes n = {.f = f, .ready = true};
	uint64_t size = 0;
	uint8_t root[MERKLE_HASH_LEN], again[MERKLE_HASH_LEN];
	bool gap = false;
	if (store_tlog_head(f->st, &size, root)) {
		fsck_fail(f, "log head", f->st->errmsg);
		return;
	}
	for (uint64_t start = 0; start < size && !gap; start += FSCK_LOG_CHUNK) {
		json_t *arr = NULL;
		if (ledgerlog_entries(f->st, start, start + FSCK_LOG_CHUNK, false, &arr)) {
			fsck_fail(f, "log leaves", f->st->errmsg);
			return;
		}
		size_t i;
		json_t *o;
		json_array_foreach(arr, i, o) {
			int64_t idx = json_integer_value(json_object_get(o, "leaf_index"));
			if ((uint64_t)idx != t.size) {
				char where[64];
				snprintf(where, sizeof where, "leaf %llu", (unsigned long long)t.size);
				f->checks++;
				fsck_bad(f, "log leaf", where, "missing", "present");
				gap = true;
				break;
			}
			leaf_check(f, o, &t, &n);
		}
		json_decref(arr);
	}
	if (!gap && t.size < size) {
		char where[64];
		snprintf(where, sizeof where, "leaf %llu", (unsigned long long)t.size);
		fsck_bad(f, "log leaf", where, "missing", "present");
		gap = true;
	}
	f->checks++;
	if (gap) {
		fsck_bad(f, "log root", "tree", "stored", "cannot be rebuilt: leaves are missing");
		return;
	}
	merkle_tree_root(&t, again);
	if (memcmp(root, again, sizeof root) != 0) {
		char have[2 * MERKLE_HASH_LEN + 1], want[2 * MERKLE_HASH_LEN + 1], where[64];
		hex_encode(root, sizeof root, have);
		hex_encode(again, sizeof again, want);
		snprintf(where, sizeof where, "tree of %llu leaves", (unsigned long long)size);
		fsck_bad(f, "log root", where, have, want);
	}
	/* Stored nodes the rebuilt tree does not have. */
	struct fsck_q q;
	if (fsck_q_open(f, &q, "SELECT count(*) FROM tlog_nodes", false, 0, NULL) &&
	    fsck_q_step(&q) == 1) {
		f->checks++;
		if (fsck_q_i64(&q, 0) != n.found)
			fsck_bad_int(f, "log nodes", "tlog_nodes", fsck_q_i64(&q, 0), n.found);
	} else {
		fsck_fail(f, "log nodes", fsck_raw_err(f));
	}
	fsck_q_close(&q);
}

/* Entries of a kind without their leaf: each row the query returns names one. */
static void unlogged_check(struct fsck *f, const char *what, const char *sql)
{
	struct fsck_q q;
	if (!fsck_q_open(f, &q, sql, true, 0, NULL)) {
		fsck_fail(f, what, fsck_raw_err(f));
		return;
	}
	int rc;
	f->checks++;
	while ((rc = fsck_q_step(&q)) == 1) {
		char where[160], stored[64];
		const char *t = fsck_q_text(&q, 0);
		snprintf(where, sizeof where, "%s", t ? t : "");
		if (fsck_q_null(&q, 1))
			snprintf(stored, sizeof stored, "no leaf");
		else
			snprintf(stored, sizeof stored, "leaf %lld is not its leaf",
				 (long long)fsck_q_i64(&q, 1));
		fsck_bad(f, what, where, stored, "its leaf");
	}
	if (rc != 0)
		fsck_fail(f, what, fsck_raw_err(f));
	fsck_q_close(&q);
}

/* PostgreSQL's log head (migration 0004): the size it holds is the number
 * of leaves (the root is compared by tree_check, as the store loads it). */
static void head_check(struct fsck *f)
{
	static const char q_head[] =
		"SELECT size, (SELECT count(*) FROM tlog_leaves_all) FROM tlog_head WHERE id = 1";
	struct fsck_q q;
	int rc = fsck_q_open(f, &q, q_head, false, 0, NULL) ? fsck_q_step(&q) : -1;
	if (rc == 1) {
		f->checks++;
		if (fsck_q_i64(&q, 0) != fsck_q_i64(&q, 1))
			fsck_bad_int(f, "log head size", "tlog_head", fsck_q_i64(&q, 0),
				     fsck_q_i64(&q, 1));
	} else {
		fsck_fail(f, "log head", rc == 0 ? "tlog_head has no row" : fsck_raw_err(f));
	}
	fsck_q_close(&q);
}

/* All the log's leaves: on PostgreSQL a record's leaf may be kept in its
 * row (migration 0007), the view tlog_leaves_all has both kinds. */
#define LEAVES_SQ "tlog_leaves"
#define LEAVES_PG "tlog_leaves_all"
#define Q_COUNT(leaves)                                                                    \
	"SELECT (SELECT count(*) FROM usage_records) + (SELECT count(*) FROM charters) + "  \
	"(SELECT count(*) FROM audit_log), (SELECT count(*) FROM " leaves ")"
/* A record names its leaf (leaf_index, or tlog_backfill for records older
 * than the log); the leaf must log that record. */
#define Q_USAGE(leaves)                                                                    \
	"SELECT 'usage record ' || u.id || ' (' || u.provider || '/' || u.record_id || ')', " \
	"coalesce(u.leaf_index, b.idx) FROM usage_records u "                                \
	"LEFT JOIN tlog_backfill b ON b.ref = u.id "                                          \
	"LEFT JOIN " leaves " l ON l.idx = coalesce(u.leaf_index, b.idx) "                    \
	"AND l.type = 'usage' AND l.ref = u.id WHERE l.idx IS NULL ORDER BY u.id"

static void entries_check(struct fsck *f)
{
	bool pg = fsck_raw_is_pg(f);
	const char *q_count = pg ? Q_COUNT(LEAVES_PG) : Q_COUNT(LEAVES_SQ);
	const char *q_usage = pg ? Q_USAGE(LEAVES_PG) : Q_USAGE(LEAVES_SQ);
	static const char q_charter[] =
		"SELECT 'charter version ' || c.version, NULL FROM charters c "
		"LEFT JOIN tlog_leaves l ON l.type = 'charter' AND l.ref = c.version "
		"WHERE l.idx IS NULL ORDER BY c.version";
	static const char q_audit[] =
		"SELECT 'audit entry ' || a.id, NULL FROM audit_log a "
		"LEFT JOIN tlog_leaves l ON l.type = 'audit' AND l.ref = a.id "
		"WHERE l.idx IS NULL ORDER BY a.id";
	struct fsck_q q;
	if (fsck_q_open(f, &q, q_count, false, 0, NULL) && fsck_q_step(&q) == 1) {
		f->checks++;
		if (fsck_q_i64(&q, 0) != fsck_q_i64(&q, 1))
			fsck_bad_int(f, "log leaves", "entries logged", fsck_q_i64(&q, 1),
				     fsck_q_i64(&q, 0));
	} else {
		fsck_fail(f, "log leaves", fsck_raw_err(f));
	}
	fsck_q_close(&q);
	unlogged_check(f, "unlogged entry", q_usage);
	unlogged_check(f, "unlogged entry", q_charter);
	unlogged_check(f, "unlogged entry", q_audit);
}

void fsck_log_check(struct fsck *f)
{
	entries_check(f);
	if (fsck_raw_is_pg(f))
		head_check(f);
	tree_check(f);
}
