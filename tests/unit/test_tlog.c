/* test_tlog.c — the transparency log integrated with the store: leaf
 * formats (worked examples byte for byte, every committed field changes the
 * leaf), appends in the entry's transaction (commit, rollback, savepoints,
 * audit entries outside a transaction), the tree reloaded after reopening,
 * proofs from the SQLite tables, and offline verification of exports with
 * tampered records, deleted entries, wrong keys and earlier checkpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "common/log.h"
#include "common/b64.h"
#include "store/store.h"
#include "tlog/leaf.h"
#include "ledger/ledgerlog.h"
#include "ledger/record.h"
#include "tlog/merkle.h"
#include "tlog/verify.h"
#include "support/rowsfx.h"
#include "support/sqfx.h"

/* ---- fixtures ------------------------------------------------------------------ */

#define T0 1796292000000000LL /* 2026-12-03T10:00:00Z */

static void fill_row(struct ledger_row *row, const char *id, int64_t qty, int64_t charge)
{
	memset(row, 0, sizeof *row);
	struct usage_record *r = &row->rec;
	snprintf(r->record_id, sizeof r->record_id, "%s", id);
	snprintf(r->provider, sizeof r->provider, "cscs");
	r->has_seq = true;
	r->seq = 7;
	snprintf(r->institution, sizeof r->institution, "epfl");
	snprintf(r->project, sizeof r->project, "climate");
	snprintf(r->member, sizeof r->member, "alice@epfl.ch");
	snprintf(r->resource, sizeof r->resource, "gpu_seconds");
	snprintf(r->cls, sizeof r->cls, "h100");
	r->quantity = qty;
	r->start_us = T0;
	r->end_us = T0 + 7200000000LL;
	r->kind = RECORD_USAGE;
	char canon[256];
	snprintf(canon, sizeof canon, "{\"quantity\":%lld,\"record_id\":\"%s\"}", (long long)qty, id);
	r->canonical = strdup(canon);
	r->canonical_len = strlen(canon);
	unsigned int hl = 32;
	EVP_Digest(canon, strlen(canon), r->sha256, &hl, EVP_sha256(), NULL);
	row->received_us = T0 + 7300000000LL;
	row->book_us = r->end_us;
	row->charter_version = 1;
	row->rate_micro = 30000;
	row->charge_micro = charge;
}

static char *leaf_of_row(const struct ledger_row *row)
{
	struct tlog_usage u;
	store_row_leaf_entry(row, &u);
	json_t *j = tlog_usage_export_json(&u);
	assert_non_null(j);
	char *data = NULL;
	size_t len;
	assert_int_equal(tlog_leaf_bytes(TLOG_LEAF_USAGE, j, &data, &len, NULL, 0), ALLOT_OK);
	assert_int_equal(strlen(data), len);
	json_decref(j);
	/* the store's direct builder gives the same bytes */
	char *fast = NULL;
	size_t flen;
	assert_int_equal(tlog_leaf_usage(&u, &fast, &flen), ALLOT_OK);
	assert_int_equal(flen, len);
	assert_string_equal(fast, data);
	free(fast);
	return data;
}

/* ---- leaf formats ------------------------------------------------------------------ */

static const char usage_golden[] =
	"{\"booked\":\"2026-12-03T12:00:00Z\",\"charge\":\"216\",\"charter_version\":1,"
	"\"class\":\"h100\",\"end\":\"2026-12-03T12:00:00Z\",\"institution\":\"epfl\","
	"\"kind\":\"usage\",\"late\":false,\"member\":\"alice@epfl.ch\",\"model\":\"\","
	"\"overage\":false,\"project\":\"climate\",\"provider\":\"cscs\",\"quantity\":7200,"
	"\"rate\":\"0.03\",\"received\":\"2026-12-03T12:01:40Z\",\"record_id\":\"job-1\","
	"\"record_sha256\":\"RSHA\",\"resource\":\"gpu_seconds\",\"seq\":7,"
	"\"source\":\"provider\",\"start\":\"2026-12-03T10:00:00Z\",\"type\":\"usage\"}";

static void test_leaf_usage_golden(void **state)
{
	(void)state;
	struct ledger_row row;
	fill_row(&row, "job-1", 7200, 216000000);
	char *leaf = leaf_of_row(&row);
	/* record_sha256 = SHA-256 of the canonical bytes */
	char want[sizeof usage_golden + 64];
	json_t *lj = json_loads(leaf, 0, NULL);
	const char *rs = json_string_value(json_object_get(lj, "record_sha256"));
	assert_non_null(rs);
	assert_int_equal(strlen(rs), 64);
	snprintf(want, sizeof want, "%.*s%s%s", (int)(strstr(usage_golden, "RSHA") - usage_golden),
		 usage_golden, rs, strstr(usage_golden, "RSHA") + 4);
	assert_string_equal(leaf, want);
	json_decref(lj);
	free(leaf);
	record_release(&row.rec);
}

/* The worked example of docs/TLOG.md (SPEC section 6's record, priced at
 * 0.03 under charter version 7), leaf bytes and leaf hash. */
static void test_leaf_doc_example(void **state)
{
	(void)state;
	static const char canon[] =
		"{\"class\":\"h100\",\"end\":\"2026-12-03T12:00:00Z\",\"institution\":\"epfl\","
		"\"kind\":\"usage\",\"member\":\"alice@epfl.ch\",\"project\":\"climate\","
		"\"provider\":\"cscs\",\"quantity\":7200,\"record_id\":\"cscs-job-88213\","
		"\"resource\":\"gpu_seconds\",\"seq\":1042,\"start\":\"2026-12-03T10:00:00Z\"}";
	static const char want[] =
		"{\"booked\":\"2026-12-03T12:00:00Z\",\"charge\":\"216\",\"charter_version\":7,"
		"\"class\":\"h100\",\"end\":\"2026-12-03T12:00:00Z\",\"institution\":\"epfl\","
		"\"kind\":\"usage\",\"late\":false,\"member\":\"alice@epfl.ch\",\"model\":\"\","
		"\"overage\":false,\"project\":\"climate\",\"provider\":\"cscs\",\"quantity\":7200,"
		"\"rate\":\"0.03\",\"received\":\"2026-12-03T12:01:00.500000Z\","
		"\"record_id\":\"cscs-job-88213\",\"record_sha256\":"
		"\"d7b77bab58544ebbe0f02e27a27d677e49a532b6e89fed601c2b4b97bc9ae1b1\","
		"\"resource\":\"gpu_seconds\",\"seq\":1042,\"source\":\"provider\","
		"\"start\":\"2026-12-03T10:00:00Z\",\"type\":\"usage\"}";
	struct ledger_row row;
	fill_row(&row, "cscs-job-88213", 7200, 216000000);
	row.rec.seq = 1042;
	free(row.rec.canonical);
	row.rec.canonical = strdup(canon);
	row.rec.canonical_len = strlen(canon);
	row.received_us = T0 + 7260500000LL;
	row.charter_version = 7;
	char *leaf = leaf_of_row(&row);
	assert_string_equal(leaf, want);
	uint8_t h[32];
	char hex[65];
	merkle_leaf_hash(leaf, strlen(leaf), h);
	hex_encode(h, 32, hex);
	assert_string_equal(hex, "f32191a337be1c2acc5418591def40f9de5bfb9b73f3a211d6c736047548bc9f");
	free(leaf);
	record_release(&row.rec);
}

/* Every field allot commits to changes the leaf. */
static void test_leaf_usage_fields(void **state)
{
	(void)state;
	struct ledger_row base;
	fill_row(&base, "job-1", 7200, 216000000);
	char *ref = leaf_of_row(&base);
	/* one mutation per case */
	for (int k = 0; k < 20; k++) {
		struct ledger_row r;
		fill_row(&r, "job-1", 7200, 216000000);
		switch (k) {
		case 0: r.rec.quantity = 7201; break;
		case 1: r.charge_micro = 216000001; break;
		case 2: r.rate_micro = 30001; break;
		case 3: r.charter_version = 2; break;
		case 4: r.late = true; break;
		case 5: r.overage = true; break;
		case 6: r.book_us += 1; break;
		case 7: r.rec.end_us += 1; break;
		case 8: snprintf(r.rec.member, sizeof r.rec.member, "bob@epfl.ch"); break;
		case 9: snprintf(r.rec.project, sizeof r.rec.project, "other"); break;
		case 10: r.from_gate = true; break;
		case 11: r.rec.canonical[2] ^= 1; break;
		case 12: r.rec.kind = RECORD_ADJUSTMENT; r.rec.adjustment = ADJ_REFUND; break;
		case 13: r.rec.has_seq = false; break;
		case 14: snprintf(r.rec.supersedes, sizeof r.rec.supersedes, "job-0");
			 r.rec.kind = RECORD_VOID; break;
		case 15: snprintf(r.rec.member, sizeof r.rec.member, "al\"ice"); break;  /* escaped */
		case 16: snprintf(r.rec.member, sizeof r.rec.member, "zo\xc3\xab@x.ch"); break; /* UTF-8 */
		case 17: snprintf(r.rec.model, sizeof r.rec.model, "a\\b"); break;
		case 18: r.charge_micro = -5; r.rate_micro = 1; break;
		case 19: r.received_us += 123456; break; /* fractional seconds */
		}
		char *l = leaf_of_row(&r);
		if (strcmp(l, ref) == 0)
			fail_msg("mutation %d does not change the leaf", k);
		free(l);
		record_release(&r.rec);
	}
	/* the row id and the stored sha256 column are not part of the leaf */
	struct ledger_row r;
	fill_row(&r, "job-1", 7200, 216000000);
	r.row_id = 99;
	memset(r.rec.sha256, 0, 32);
	char *l = leaf_of_row(&r);
	assert_string_equal(l, ref);
	free(l);
	record_release(&r.rec);
	free(ref);
	record_release(&base.rec);
}

static void test_leaf_charter_audit(void **state)
{
	(void)state;
	char *data = NULL;
	size_t len;
	json_t *c = tlog_charter_export_json(3, "swiss", "aa", "key_1", T0, T0 - 1);
	assert_int_equal(tlog_leaf_bytes(TLOG_LEAF_CHARTER, c, &data, &len, NULL, 0), ALLOT_OK);
	assert_string_equal(data, "{\"applied\":\"2026-12-03T10:00:00Z\",\"author\":\"key_1\","
				  "\"charter_id\":\"swiss\",\"effective\":\"2026-12-03T09:59:59.999999Z\","
				  "\"sha256\":\"aa\",\"type\":\"charter\",\"version\":3}");
	free(data);
	/* extra export fields (the text) are not part of the leaf */
	json_object_set_new(c, "text", json_string("charter: swiss\n"));
	assert_int_equal(tlog_leaf_bytes(TLOG_LEAF_CHARTER, c, &data, &len, NULL, 0), ALLOT_OK);
	assert_non_null(strstr(data, "\"version\":3}"));
	assert_null(strstr(data, "text"));
	free(data);
	json_decref(c);
	json_t *a = tlog_audit_export_json(12, T0, "admin_1", "key.create", "key_2", NULL, "", "{\"role\":\"auditor\"}");
	assert_int_equal(tlog_leaf_bytes(TLOG_LEAF_AUDIT, a, &data, &len, NULL, 0), ALLOT_OK);
	assert_string_equal(data, "{\"action\":\"key.create\",\"actor\":\"admin_1\","
				  "\"at\":\"2026-12-03T10:00:00Z\",\"detail\":\"{\\\"role\\\":\\\"auditor\\\"}\","
				  "\"id\":12,\"target\":\"key_2\",\"type\":\"audit\"}");
	free(data);
	json_decref(a);
}

static void test_leaf_bad_input(void **state)
{
	(void)state;
	char *data = NULL, msg[160];
	size_t len;
	json_t *j = json_pack("{s:s,s:s}", "provider", "cscs", "record_id", "x");
	assert_int_equal(tlog_leaf_bytes(TLOG_LEAF_USAGE, j, &data, &len, msg, sizeof msg),
			 ALLOT_E_INVALID);
	assert_non_null(strstr(msg, "canonical"));
	json_object_set_new(j, "canonical", json_string("{}"));
	json_object_set_new(j, "quantity", json_real(1.5));
	assert_int_equal(tlog_leaf_bytes(TLOG_LEAF_USAGE, j, &data, &len, msg, sizeof msg),
			 ALLOT_E_INVALID);
	assert_non_null(strstr(msg, "quantity"));
	json_object_set_new(j, "quantity", json_array());
	assert_int_equal(tlog_leaf_bytes(TLOG_LEAF_USAGE, j, &data, &len, NULL, 0), ALLOT_E_INVALID);
	json_object_set_new(j, "quantity", json_null()); /* null = absent */
	assert_int_equal(tlog_leaf_bytes(TLOG_LEAF_USAGE, j, &data, &len, NULL, 0), ALLOT_OK);
	assert_null(strstr(data, "quantity"));
	free(data);
	assert_int_equal(tlog_leaf_bytes((enum tlog_leaf_type)7, j, &data, &len, NULL, 0),
			 ALLOT_E_INVALID);
	json_decref(j);
	assert_int_equal(tlog_leaf_type_parse("audit"), TLOG_LEAF_AUDIT);
	assert_int_equal(tlog_leaf_type_parse("Audit"), -1);
	assert_int_equal(tlog_leaf_type_parse(NULL), -1);
}

/* ---- the store ------------------------------------------------------------------------ */

static uint64_t head(struct store *st, uint8_t root[32])
{
	uint64_t n;
	uint8_t r[32];
	assert_int_equal(store_tlog_head(st, &n, root ? root : r), ALLOT_OK);
	return n;
}

static void insert(struct store *st, const char *id, int64_t qty)
{
	struct ledger_row row;
	fill_row(&row, id, qty, qty * 30000);
	assert_int_equal(store_ledger_insert_q(st, &row), ALLOT_OK);
	record_release(&row.rec);
}

static void commit_one(struct store *st, const char *id, int64_t qty)
{
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	insert(st, id, qty);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
}

/* The root recomputed from the stored leaf data equals the head's, and every
 * inclusion and consistency proof from the tables verifies. */
static void check_tree(struct store *st)
{
	uint8_t root[32];
	uint64_t n = head(st, root);
	json_t *ents = NULL;
	assert_int_equal(ledgerlog_entries(st, 0, n, false, &ents), ALLOT_OK);
	assert_int_equal(json_array_size(ents), n);
	struct merkle_tree t;
	merkle_tree_init(&t);
	size_t i;
	json_t *e;
	json_array_foreach(ents, i, e) {
		assert_int_equal(json_integer_value(json_object_get(e, "leaf_index")), i);
		const char *d = json_string_value(json_object_get(e, "data"));
		uint8_t leaf[32];
		merkle_leaf_hash(d, strlen(d), leaf);
		assert_int_equal(merkle_tree_append(&t, leaf, NULL, NULL), ALLOT_OK);
	}
	json_decref(ents);
	uint8_t r2[32];
	merkle_tree_root(&t, r2);
	assert_memory_equal(root, r2, 32);
	for (uint64_t k = 0; k < n; k++) {
		struct merkle_proof p;
		uint8_t leaf[32];
		assert_int_equal(store_tlog_inclusion(st, k, n, leaf, &p), ALLOT_OK);
		assert_int_equal(merkle_verify_inclusion(k, n, leaf, (const uint8_t(*)[32])p.h, p.n,
							 root, NULL, 0), ALLOT_OK);
		uint8_t r1[32];
		assert_int_equal(store_tlog_root_at(st, k + 1, r1), ALLOT_OK);
		assert_int_equal(store_tlog_consistency(st, k + 1, n, &p), ALLOT_OK);
		assert_int_equal(merkle_verify_consistency(k + 1, n, r1, root,
							   (const uint8_t(*)[32])p.h, p.n, NULL, 0), ALLOT_OK);
	}
	struct merkle_proof p;
	uint8_t leaf[32];
	assert_int_equal(store_tlog_inclusion(st, n, n + 1, leaf, &p), ALLOT_E_INVALID);
	assert_int_equal(store_tlog_consistency(st, 0, n, &p), ALLOT_E_INVALID);
	assert_int_equal(store_tlog_consistency(st, 1, n + 1, &p), ALLOT_E_INVALID);
}

static void test_store_appends(void **state)
{
	struct sqfx *f = *state;
	struct store *st = f->st;
	assert_int_equal(head(st, NULL), 0);
	/* a charter and its audit entry: two leaves, one transaction */
	struct charter_row cr = {.version = 1, .text = "charter: t\n", .text_len = 11,
				 .applied_at = T0, .effective = T0};
	snprintf(cr.charter_id, sizeof cr.charter_id, "t");
	snprintf(cr.sha256, sizeof cr.sha256, "00");
	snprintf(cr.author, sizeof cr.author, "file:x");
	struct audit_entry a = {.at = T0, .actor = "file:x", .action = "charter.apply", .target = "t"};
	assert_int_equal(store_charter_apply(st, &cr, &a), ALLOT_OK);
	assert_int_equal(head(st, NULL), 2);
	/* a refused charter (version does not increase) adds nothing */
	assert_int_equal(store_charter_apply(st, &cr, &a), ALLOT_E_CONFLICT);
	assert_int_equal(head(st, NULL), 2);
	int64_t idx;
	assert_int_equal(store_tlog_leaf_of(st, "charter", 1, &idx), ALLOT_OK);
	assert_int_equal(idx, 0);

	commit_one(st, "r1", 10);
	assert_int_equal(head(st, NULL), 3);
	/* a rolled-back transaction leaves the tree where it was ... */
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	insert(st, "r2", 20);
	insert(st, "r3", 30);
	store_ledger_rollback(st);
	assert_int_equal(head(st, NULL), 3);
	/* ... and the next append takes the same index */
	commit_one(st, "r2", 21);
	assert_int_equal(head(st, NULL), 4);
	struct ledger_filter lf = {.limit = 10};
	json_t *rows = rowsfx_list(st, &lf);
	int64_t rid = json_integer_value(json_object_get(json_array_get(rows, 1), "id"));
	json_decref(rows);
	assert_int_equal(store_tlog_leaf_of(st, "usage", rid, &idx), ALLOT_OK);
	assert_int_equal(idx, 3);
	assert_int_equal(store_tlog_leaf_of(st, "usage", 999, &idx), ALLOT_E_NOT_FOUND);

	/* savepoints: an item rolled back inside a committed group */
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	insert(st, "r4", 40);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_RELEASE), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	insert(st, "r5", 50);
	insert(st, "r6", 60);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_ROLLBACK), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	insert(st, "r7", 70);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_RELEASE), ALLOT_OK);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	assert_int_equal(head(st, NULL), 6);
	/* the first item of a group rolled back (nothing pending before it) */
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	insert(st, "r8", 80);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_ROLLBACK), ALLOT_OK);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	assert_int_equal(head(st, NULL), 6);

	/* an audit entry outside any transaction gets its own */
	struct audit_entry a2 = {.at = T0 + 1, .actor = "admin", .action = "key.create",
				 .target = "k1", .detail = "{\"role\":\"auditor\"}"};
	assert_int_equal(store_audit_append(st, &a2), ALLOT_OK);
	assert_int_equal(head(st, NULL), 7);
	check_tree(st);

	/* reopened: the tree is loaded, appends continue consistently */
	uint8_t root_before[32];
	uint64_t n_before = head(st, root_before);
	store_close(st);
	char msg[256];
	assert_int_equal(store_sqlite_open(f->db, &f->st, msg, sizeof msg), ALLOT_OK);
	st = f->st;
	uint8_t root_after[32];
	assert_int_equal(head(st, root_after), n_before);
	assert_memory_equal(root_before, root_after, 32);
	commit_one(st, "r9", 90);
	assert_int_equal(head(st, NULL), n_before + 1);
	check_tree(st);

	/* past the stored levels: 40 more leaves in one transaction */
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	for (int i = 0; i < 40; i++) {
		char id[16];
		snprintf(id, sizeof id, "m%d", i);
		insert(st, id, 1 + i);
	}
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	n_before += 41;
	assert_int_equal(head(st, NULL), n_before);
	check_tree(st);

	/* benchmarks can switch logging off */
	store_tlog_set_enabled(st, false);
	commit_one(st, "r10", 100);
	assert_int_equal(head(st, NULL), n_before);
	store_tlog_set_enabled(st, true);

	/* append-only */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM tlog_leaves", NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE tlog_nodes SET hash = hash", NULL, NULL, NULL),
			     SQLITE_OK);
	sqlite3_close(db);
}

/* A damaged tree (a node missing) refuses to open. */
static void test_store_damaged(void **state)
{
	struct sqfx *f = *state;
	for (int i = 0; i < 17; i++) {
		char id[16];
		snprintf(id, sizeof id, "d%d", i);
		commit_one(f->st, id, 5);
	}
	store_close(f->st);
	f->st = NULL;
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TRIGGER tlog_nodes_no_delete; DELETE FROM tlog_nodes "
					  "WHERE level = 4", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	char msg[256] = "";
	assert_int_equal(store_sqlite_open(f->db, &f->st, msg, sizeof msg), ALLOT_E_STORE);
	assert_non_null(strstr(msg, "damaged"));
	assert_int_equal(store_sqlite_open(":memory:", &f->st, msg, sizeof msg), ALLOT_OK);
}

/* Entries stored before the log existed (an upgraded database) are logged
 * at the next start. */
static void test_store_backfill(void **state)
{
	struct sqfx *f = *state;
	store_tlog_set_enabled(f->st, false);
	commit_one(f->st, "b1", 1);
	commit_one(f->st, "b2", 2);
	struct audit_entry a = {.at = T0, .actor = "admin", .action = "key.revoke", .target = "k"};
	assert_int_equal(store_audit_append(f->st, &a), ALLOT_OK);
	assert_int_equal(head(f->st, NULL), 0);
	store_close(f->st);
	char msg[256];
	assert_int_equal(store_sqlite_open(f->db, &f->st, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(head(f->st, NULL), 3);
	int64_t idx;
	assert_int_equal(store_tlog_leaf_of(f->st, "audit", 1, &idx), ALLOT_OK);
	assert_int_equal(idx, 0); /* charters, then audit entries, then records */
	/* the records' indices, though their rows could not take them */
	struct ledger_filter lf = {.limit = 10};
	json_t *rows = rowsfx_list(f->st, &lf);
	assert_int_equal(json_array_size(rows), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *r = json_array_get(rows, i);
		assert_true(json_is_null(json_object_get(r, "leaf_index")));
		assert_int_equal(store_tlog_leaf_of(f->st, "usage",
						    json_integer_value(json_object_get(r, "id")), &idx),
				 ALLOT_OK);
		assert_int_equal(idx, 1 + (int64_t)i);
	}
	json_decref(rows);
	/* a record stored afterwards carries its own */
	commit_one(f->st, "b3", 3);
	assert_int_equal(store_tlog_leaf_of(f->st, "usage", 3, &idx), ALLOT_OK);
	assert_int_equal(idx, 3);
	assert_int_equal(store_tlog_leaf_of(f->st, "usage", 99, &idx), ALLOT_E_NOT_FOUND);
	check_tree(f->st);
}

/* ---- exports and offline verification ------------------------------------------------- */

static json_t *export_of(struct ledgerlog *l, uint64_t start, uint64_t end, uint64_t since)
{
	json_t *x = NULL;
	char msg[256];
	assert_int_equal(ledgerlog_export(l, start, end, since, &x, msg, sizeof msg), ALLOT_OK);
	return x;
}

static allot_err verify(const json_t *x, const char *key, const char *since,
			struct tlog_verify_report *rep)
{
	return tlog_verify_export(x, key, since, since ? strlen(since) : 0, rep);
}

static void test_export_verify(void **state)
{
	struct sqfx *f = *state;
	struct store *st = f->st;
	struct ledgerlog *l = NULL;
	char msg[256];
	char keys[96];
	snprintf(keys, sizeof keys, "%s/keys", f->dir);
	assert_int_equal(ledgerlog_open(keys, "unit", st, &l, msg, sizeof msg), ALLOT_OK);
	assert_string_equal(ledgerlog_origin(l), "allot/unit");
	struct audit_entry a = {.at = T0, .actor = "admin", .action = "key.create", .target = "k"};
	assert_int_equal(store_audit_append(st, &a), ALLOT_OK);
	commit_one(st, "e1", 10);
	commit_one(st, "e2", 20);
	char *old = NULL;
	struct checkpoint ocp;
	assert_int_equal(ledgerlog_checkpoint(l, true, &old, &ocp, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(ocp.size, 3);
	commit_one(st, "e3", 30);
	commit_one(st, "e4", 40);

	const char *pub = ledgerlog_pub(l), *vkey = ledgerlog_vkey(l);
	struct tlog_verify_report rep;
	json_t *x = export_of(l, 0, 0, 3);
	assert_int_equal(verify(x, pub, NULL, &rep), ALLOT_OK);
	assert_int_equal(rep.checked, 5);
	assert_true(rep.complete);
	assert_int_equal(verify(x, vkey, old, &rep), ALLOT_OK);
	assert_true(rep.since_checked);
	assert_int_equal(rep.since_size, 3);

	/* a wrong key, or a key under another name */
	struct ed25519_keypair kp;
	char other[ED25519_PUB_TEXT_MAX];
	assert_int_equal(ed25519_keygen(&kp), ALLOT_OK);
	assert_int_equal(verify(x, ed25519_pub_format(kp.pub, other), NULL, &rep),
			 ALLOT_E_UNPROCESSABLE);
	assert_non_null(strstr(rep.failure, "checkpoint does not verify"));
	assert_int_equal(verify(x, "ed25519:nope", NULL, &rep), ALLOT_E_INVALID);

	/* tampering, one at a time, each named */
	static const struct {
		const char *path, *field;
		int kind; /* 0 set string, 1 set int, 2 delete entry, 3 null entry, 4 proof */
		const char *want;
	} cases[] = {
		{"entries", "quantity", 1, "usage record cscs/e2 (leaf 2)"},
		{"entries", "charge", 0, "usage record cscs/e2 (leaf 2)"},
		{"entries", "canonical", 0, "usage record cscs/e2 (leaf 2)"},
		{"entries", "member", 0, "usage record cscs/e2 (leaf 2)"},
		{"entries", "sha256", 0, "its sha256 is not the hash of its canonical bytes"},
		{"entries", NULL, 2, "leaf 2 is missing from the export"},
		{"entries", NULL, 3, "usage record cscs/e2 (leaf 2) is logged but missing"},
		{"entries", NULL, 4, "usage record cscs/e2 (leaf 2)"},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		json_t *y = json_deep_copy(x);
		json_t *ents = json_object_get(y, "entries");
		json_t *ent = json_array_get(ents, 2);
		json_t *entry = json_object_get(ent, "entry");
		switch (cases[k].kind) {
		case 0: json_object_set_new(entry, cases[k].field, json_string("9")); break;
		case 1: json_object_set_new(entry, cases[k].field, json_integer(11)); break;
		case 2: json_array_remove(ents, 2); break;
		case 3:
			json_object_set_new(ent, "name", json_string("cscs/e2"));
			json_object_set_new(ent, "entry", json_null());
			break;
		default: {
			json_t *p = json_object_get(ent, "proof");
			json_array_set_new(p, 0, json_string(json_string_value(json_array_get(p, 1))));
		}
		}
		assert_int_equal(verify(y, pub, NULL, &rep), ALLOT_E_UNPROCESSABLE);
		if (!strstr(rep.failure, cases[k].want))
			fail_msg("case %zu: \"%s\" does not say \"%s\"", k, rep.failure, cases[k].want);
		json_decref(y);
	}
	/* a missing tail, and a range beyond the checkpoint */
	json_t *y = json_deep_copy(x);
	json_array_remove(json_object_get(y, "entries"), 4);
	assert_int_equal(verify(y, pub, NULL, &rep), ALLOT_E_UNPROCESSABLE);
	assert_non_null(strstr(rep.failure, "leaves 4..4 are missing"));
	json_object_set_new(y, "end", json_integer(9));
	assert_int_equal(verify(y, pub, NULL, &rep), ALLOT_E_UNPROCESSABLE);
	json_decref(y);
	/* since: a bad consistency proof, a missing one, a newer "earlier" one */
	y = json_deep_copy(x);
	json_t *cp = json_object_get(json_object_get(y, "consistency"), "proof");
	json_array_set_new(cp, 0, json_string(json_string_value(json_array_get(cp, 1))));
	assert_int_equal(verify(y, pub, old, &rep), ALLOT_E_UNPROCESSABLE);
	assert_non_null(strstr(rep.failure, "not consistent"));
	json_object_del(y, "consistency");
	assert_int_equal(verify(y, pub, old, &rep), ALLOT_E_UNPROCESSABLE);
	assert_non_null(strstr(rep.failure, "since=3"));
	json_decref(y);
	json_t *early = export_of(l, 0, 2, 0);
	assert_int_equal(verify(early, pub, NULL, &rep), ALLOT_OK);
	assert_false(rep.complete);
	char *now = NULL;
	assert_int_equal(ledgerlog_checkpoint(l, false, &now, NULL, msg, sizeof msg), ALLOT_OK);
	json_t *shr = json_pack("{s:s,s:[]}", "checkpoint", old, "records");
	assert_int_equal(verify(shr, pub, now, &rep), ALLOT_E_UNPROCESSABLE);
	assert_non_null(strstr(rep.failure, "shrank"));
	json_decref(shr);
	free(now);
	json_decref(early);

	/* a usage export: records with leaf indices and proofs */
	struct ledger_filter lf = {.limit = 10};
	json_t *rows = rowsfx_export(st, &lf);
	struct checkpoint c;
	char *note = NULL;
	assert_int_equal(ledgerlog_checkpoint(l, true, &note, &c, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(ledgerlog_annotate_usage(l, rows, true, &c), ALLOT_OK);
	json_t *ux = json_pack("{s:s,s:O}", "checkpoint", note, "records", rows);
	assert_int_equal(verify(ux, pub, NULL, &rep), ALLOT_OK);
	assert_int_equal(rep.checked, 4);
	json_object_set_new(json_array_get(rows, 3), "quantity", json_integer(41));
	json_decref(ux);
	ux = json_pack("{s:s,s:O}", "checkpoint", note, "records", rows);
	assert_int_equal(verify(ux, pub, NULL, &rep), ALLOT_E_UNPROCESSABLE);
	assert_non_null(strstr(rep.failure, "cscs/e4 (leaf 4)"));
	json_decref(ux);
	json_decref(rows);
	free(note);

	/* A leaf committed DEFERRED (a gate settlement: in the write-ahead log,
	 * not yet fsynced) is made durable before a checkpoint covering it is
	 * signed: a power loss never takes back a leaf a published checkpoint
	 * covers. */
	store_set_flush_ms(st, 60000); /* the flusher stays out of the way */
	assert_int_equal(store_ledger_begin_sync(st, STORE_SYNC_DEFERRED), ALLOT_OK);
	insert(st, "e5", 50);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	struct store_sync_stats ss;
	store_sync_stats(st, &ss);
	assert_int_equal(ss.undurable, 1);
	assert_int_equal(ledgerlog_checkpoint(l, true, &note, &c, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(c.size, 6);
	store_sync_stats(st, &ss);
	assert_int_equal(ss.undurable, 0);
	free(note);

	json_decref(x);
	free(old);
	ledgerlog_free(l);
	/* the key is reused at the next start, and is private */
	struct ledgerlog *l2 = NULL;
	assert_int_equal(ledgerlog_open(keys, "unit", st, &l2, msg, sizeof msg), ALLOT_OK);
	char path[160];
	snprintf(path, sizeof path, "%s/log.key", keys);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	ledgerlog_free(l2);
	assert_int_equal(ledgerlog_open(keys, "bad name", st, &l2, msg, sizeof msg), ALLOT_E_INVALID);
}

int main(void)
{
	log_set_verbose(false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaf_usage_golden),
		cmocka_unit_test(test_leaf_doc_example),
		cmocka_unit_test(test_leaf_usage_fields),
		cmocka_unit_test(test_leaf_charter_audit),
		cmocka_unit_test(test_leaf_bad_input),
		cmocka_unit_test_setup_teardown(test_store_appends, sqfx_setup, sqfx_teardown),
		cmocka_unit_test_setup_teardown(test_store_damaged, sqfx_setup, sqfx_teardown),
		cmocka_unit_test_setup_teardown(test_store_backfill, sqfx_setup, sqfx_teardown),
		cmocka_unit_test_setup_teardown(test_export_verify, sqfx_setup, sqfx_teardown),
	};
	return cmocka_run_group_tests_name("tlog", tests, NULL, NULL);
}
