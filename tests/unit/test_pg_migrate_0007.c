/* test_pg_migrate_0007.c — PostgreSQL migration 0007 (a usage record's
 * log leaf kept in its row, the table rebuilt, BRIN for book_us) on a
 * database that holds data.
 *
 * A database at schema version 6 with records and audit entries is made
 * the way that version held them (every leaf a tlog_leaves row): records
 * are booked through the store, then every table is saved, the schema
 * dropped, migrations 1..6 applied and the rows put back in the old
 * layout.  Opening the store migrates it; then the log's size and root,
 * every record (its canonical bytes and its leaf bytes: every field) and
 * every leaf hash are what they were, `allotd --fsck` is clean, ids go on
 * after the old ones, and a record booked after the migration has its
 * leaf in its row and none in tlog_leaves.
 *
 * The server comes from ALLOT_TEST_PG_URI (`make unit` sets it); without
 * it the test skips and says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/log.h"
#include "crypto/digest.h"
#include "daemon/fsck.h"
#include "store/migrate.h"
#include "store/store.h"
#include "support/pgfx.h"

#define NREC 40
static const int64_t T0 = 1767225600LL * 1000000; /* 2026-01-01T00:00:00Z */

struct seen {
	int n;
	char *leaf[NREC + 1]; /* a record's leaf bytes (every field) and canonical bytes */
	char *canon[NREC + 1];
	char id[NREC + 1][RECORD_ID_MAX];
	uint8_t sha[NREC + 1][32];
	uint8_t hash[4 * NREC][32]; /* leaf hashes by index */
	uint64_t nleaves;
};

static void seen_free(struct seen *s)
{
	for (int i = 0; i < s->n; i++) {
		free(s->leaf[i]);
		free(s->canon[i]);
	}
	memset(s, 0, sizeof *s);
}

static void list_fn(void *ctx, const struct ledger_row *row, int64_t leaf)
{
	(void)leaf;
	struct seen *s = ctx;
	char *data = NULL, name[STORE_LEAF_NAME_MAX];
	size_t len = 0;
	assert_true(s->n <= NREC);
	assert_int_equal(store_row_leaf(row, &data, &len, name), ALLOT_OK);
	s->leaf[s->n] = data;
	snprintf(s->id[s->n], sizeof s->id[s->n], "%s", row->rec.record_id);
	memcpy(s->sha[s->n], row->rec.sha256, 32);
	s->canon[s->n++] = strndup(row->rec.canonical, row->rec.canonical_len);
}

static void entry_fn(void *ctx, const struct tlog_entry_row *e)
{
	struct seen *s = ctx;
	assert_true(e->has_leaf_hash);
	assert_true(e->leaf_index < 4 * NREC);
	memcpy(s->hash[e->leaf_index], e->leaf_hash, 32);
	s->nleaves++;
}

/* Every record (in id order) and every leaf hash of st. */
static void read_all(struct store *st, struct seen *s, uint64_t *size, uint8_t root[32])
{
	memset(s, 0, sizeof *s);
	struct ledger_filter flt = {.limit = 1000};
	assert_int_equal(store_ledger_list_q(st, &flt, list_fn, s), ALLOT_OK);
	assert_int_equal(store_tlog_head(st, size, root), ALLOT_OK);
	assert_int_equal(store_tlog_entries(st, 0, *size, entry_fn, s), ALLOT_OK);
	assert_int_equal(s->nleaves, *size);
}

static void book(struct store *st, int i)
{
	struct ledger_row row;
	memset(&row, 0, sizeof row);
	struct usage_record *r = &row.rec;
	snprintf(r->provider, sizeof r->provider, "cscs");
	snprintf(r->record_id, sizeof r->record_id, "m7-%03d", i);
	snprintf(r->institution, sizeof r->institution, i % 3 ? "epfl" : "ethz");
	snprintf(r->project, sizeof r->project, "climate");
	snprintf(r->member, sizeof r->member, i % 2 ? "alice@epfl.ch" : "");
	snprintf(r->resource, sizeof r->resource, "gpu_seconds");
	r->has_seq = i % 4 != 0;
	r->seq = 1000 + i;
	r->quantity = 100 + i;
	r->start_us = T0 + i * 1000000LL - 123456;
	r->end_us = T0 + (i + 1) * 1000000LL;
	if (i % 5 == 4) { /* an adjustment, and a spelling other than the sealed one */
		r->kind = RECORD_ADJUSTMENT;
		r->adjustment = ADJ_REFUND;
		snprintf(r->supersedes, sizeof r->supersedes, "m7-%03d", i - 1);
	}
	r->canonical = record_canonical_sealed(r, &r->canonical_len);
	assert_non_null(r->canonical);
	if (i % 7 == 6) { /* kept whole: not the sealed spelling */
		char *c = realloc(r->canonical, r->canonical_len + 2);
		assert_non_null(c);
		memmove(c + 2, c + 1, r->canonical_len);
		c[1] = ' ';
		r->canonical = c;
		r->canonical_len++;
	}
	/* most the SHA-256 of their canonical bytes (not stored since 0007),
	 * some not (stored) */
	if (i % 3)
		digest_sha256(r->canonical, r->canonical_len, r->sha256);
	else
		for (int k = 0; k < 32; k++)
			r->sha256[k] = (uint8_t)(i * 7 + k);
	/* flags and the source: 0009 makes them booleans and a code */
	row.late = i % 4 == 1;
	row.overage = i % 6 == 2;
	row.from_gate = i % 8 == 3;
	row.received_us = r->end_us + 500000;
	row.book_us = r->end_us;
	row.charter_version = 1;
	row.rate_micro = 30000;
	row.charge_micro = r->kind == RECORD_ADJUSTMENT ? -(3 * r->quantity) : 3 * r->quantity;
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	assert_int_equal(store_ledger_insert_q(st, &row), ALLOT_OK);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	free(r->canonical);
}

static int64_t q_int(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* The database as schema version 6 held the same rows: every table saved,
 * the schema made again by migrations 1..6, the rows put back (each leaf
 * a tlog_leaves row, usage_records without leaf_hash). */
static void back_to_0006(PGconn *c, const struct seen *s)
{
	pgfx_exec(c, "CREATE SCHEMA keep; DO $$ DECLARE t text; BEGIN "
		     "FOR t IN SELECT table_name FROM information_schema.tables WHERE table_schema = "
		     "'public' AND table_type = 'BASE TABLE' AND table_name NOT IN ('allot_schema', "
		     "'tlog_leaves', 'usage_records') LOOP EXECUTE format('CREATE TABLE keep.%I AS SELECT * FROM "
		     "public.%I', t, t); END LOOP; END $$; "
		     "CREATE TABLE keep.tlog_leaves AS SELECT * FROM tlog_leaves_all; "
		     "CREATE TABLE keep.usage_records AS SELECT * FROM usage_records; "
		     /* 0009's codes and booleans spelt as version 6 did */
		     "ALTER TABLE keep.usage_records ALTER kind TYPE text USING CASE kind "
		     "WHEN 'u' THEN 'usage' WHEN 'a' THEN 'adjustment' WHEN 'v' THEN 'void' END, "
		     "ALTER source TYPE text USING CASE source WHEN 'p' THEN 'provider' "
		     "WHEN 'g' THEN 'gate' END, ALTER late TYPE smallint USING late::int, "
		     "ALTER overage TYPE smallint USING overage::int; "
		     "DROP SCHEMA public CASCADE; CREATE SCHEMA public; "
		     "CREATE TABLE allot_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
		     "applied_us BIGINT NOT NULL)");
	/* version 6 stored every record's SHA-256 */
	for (int i = 0; i < s->n; i++) {
		char q[256 + RECORD_ID_MAX], hex[65];
		hex_encode(s->sha[i], 32, hex);
		snprintf(q, sizeof q, "UPDATE keep.usage_records SET sha256 = '\\x%s' WHERE record_id = '%s'",
			 hex, s->id[i]);
		pgfx_exec(c, q);
	}
	for (const struct migration *m = migrations_postgres; m->version; m++) {
		if (m->version > 6)
			continue;
		pgfx_exec(c, m->sql);
		char ins[160];
		snprintf(ins, sizeof ins, "INSERT INTO allot_schema VALUES (%d, 'm%d', 0)", m->version,
			 m->version);
		pgfx_exec(c, ins);
	}
	pgfx_exec(c, "DO $$ DECLARE t text; cols text; seq text; BEGIN "
		     "FOR t IN SELECT k.table_name FROM information_schema.tables k JOIN "
		     "information_schema.tables p ON p.table_schema = 'public' AND p.table_name = "
		     "k.table_name WHERE k.table_schema = 'keep' LOOP "
		     "SELECT string_agg(quote_ident(k.column_name), ', ') INTO cols FROM "
		     "information_schema.columns k JOIN information_schema.columns p ON "
		     "p.table_schema = 'public' AND p.table_name = k.table_name AND p.column_name = "
		     "k.column_name WHERE k.table_schema = 'keep' AND k.table_name = t; "
		     "EXECUTE format('DELETE FROM public.%I', t); "
		     "EXECUTE format('INSERT INTO public.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s "
		     "FROM keep.%I', t, cols, cols, t); END LOOP; "
		     "FOR t, cols IN SELECT table_name, column_name FROM information_schema.columns "
		     "WHERE table_schema = 'public' AND is_identity = 'YES' LOOP "
		     "seq := pg_get_serial_sequence(quote_ident(t), cols); "
		     "EXECUTE format('SELECT setval(%L, coalesce(max(%I), 0) + 1, false) FROM %I', "
		     "seq, cols, t); END LOOP; END $$; DROP SCHEMA keep CASCADE");
}

static int fsck(const char *uri, int want)
{
	char *out = NULL;
	size_t n = 0;
	FILE *o = open_memstream(&out, &n), *e = fopen("/dev/null", "w");
	struct fsck_options opt = {.db = uri};
	int rc = fsck_run(&opt, o, e);
	fclose(o);
	fclose(e);
	if (rc != want)
		print_error("fsck: %s\n", out);
	free(out);
	return rc;
}

static void test_migrate_with_data(void **state)
{
	(void)state;
	if (!pgfx_server())
		skip();
	char db[64], uri[1024], msg[512] = "";
	pgfx_create(db, sizeof db, uri, sizeof uri);
	struct store *st = NULL;
	if (store_pg_open(uri, &st, msg, sizeof msg))
		fail_msg("store_pg_open: %s", msg);
	for (int i = 0; i < NREC; i++) {
		book(st, i);
		if (i % 6 == 0) { /* other leaves between the records' */
			struct audit_entry a = {.at = T0 + i, .actor = "test", .action = "key.create",
						.target = "k"};
			assert_int_equal(store_audit_append(st, &a), ALLOT_OK);
		}
	}
	struct seen before, after;
	uint64_t size0 = 0, size1 = 0;
	uint8_t root0[32], root1[32];
	read_all(st, &before, &size0, root0);
	assert_int_equal(before.n, NREC);
	store_close(st);

	PGconn *c = pgfx_connect(uri);
	assert_int_equal(q_int(c, "SELECT count(*) FROM usage_records WHERE sha256 IS NULL"),
			 NREC - (NREC + 2) / 3);
	back_to_0006(c, &before);
	assert_int_equal(q_int(c, "SELECT max(version) FROM allot_schema"), 6);
	assert_int_equal(q_int(c, "SELECT count(*) FROM usage_records WHERE kind = 'adjustment'"),
			 NREC / 5);
	assert_int_equal(q_int(c, "SELECT count(*) FROM tlog_leaves"), (int64_t)size0);
	assert_int_equal(q_int(c, "SELECT count(*) FROM usage_records"), NREC);

	if (store_pg_open(uri, &st, msg, sizeof msg))
		fail_msg("store_pg_open after 0006: %s", msg);
	int newest = 0; /* 0007 and every later migration applied */
	for (const struct migration *m = migrations_postgres; m->version; m++)
		newest = m->version;
	assert_true(newest >= 7);
	assert_int_equal(q_int(c, "SELECT max(version) FROM allot_schema"), newest);
	/* 0009: the kinds, sources and flags, each row's as it was */
	assert_int_equal(q_int(c, "SELECT count(*) FROM usage_records WHERE kind = 'a' AND "
				  "adjustment = 'refund' AND substr(record_id, 4)::int % 5 = 4"), NREC / 5);
	assert_int_equal(q_int(c, "SELECT count(*) FROM usage_records WHERE kind = 'u'"),
			 NREC - NREC / 5);
	assert_int_equal(q_int(c, "SELECT count(*) FROM usage_records WHERE "
				  "late = (substr(record_id, 4)::int % 4 = 1) AND "
				  "overage = (substr(record_id, 4)::int % 6 = 2) AND "
				  "source = CASE WHEN substr(record_id, 4)::int % 8 = 3 THEN 'g' ELSE 'p' END"),
			 NREC);
	read_all(st, &after, &size1, root1);
	assert_int_equal(size1, size0);
	assert_memory_equal(root1, root0, 32);
	assert_int_equal(after.n, NREC);
	for (int i = 0; i < NREC; i++) {
		assert_string_equal(after.leaf[i], before.leaf[i]);
		assert_string_equal(after.canon[i], before.canon[i]);
	}
	assert_memory_equal(after.hash, before.hash, size0 * 32);
	/* the leaves written before stay tlog_leaves rows */
	assert_int_equal(q_int(c, "SELECT count(*) FROM usage_records WHERE leaf_hash IS NOT NULL"), 0);
	assert_int_equal(q_int(c, "SELECT count(*) FROM tlog_leaves_all"), (int64_t)size0);
	assert_int_equal(q_int(c, "SELECT (indexam.amname = 'brin')::int FROM pg_index i JOIN pg_class x "
				  "ON x.oid = i.indexrelid JOIN pg_am indexam ON indexam.oid = x.relam "
				  "WHERE x.relname = 'usage_by_book'"), 1);

	/* a record booked now: its leaf in its row, ids after the old ones */
	book(st, NREC);
	seen_free(&after);
	read_all(st, &after, &size1, root1);
	assert_int_equal(size1, size0 + 1);
	assert_int_equal(q_int(c, "SELECT count(*) FROM usage_records WHERE sha256 IS NULL"), 1);
	assert_int_equal(q_int(c, "SELECT count(*) FROM usage_records WHERE leaf_hash IS NOT NULL "
				  "AND record_id = 'm7-040' AND leaf_index = (SELECT size - 1 FROM tlog_head) "
				  "AND id > (SELECT max(id) FROM usage_records WHERE record_id <> 'm7-040')"), 1);
	assert_int_equal(q_int(c, "SELECT count(*) FROM tlog_leaves"), (int64_t)size0);
	assert_int_equal(q_int(c, "SELECT count(*) FROM tlog_leaves_all"), (int64_t)size1);
	store_close(st);
	assert_int_equal(fsck(uri, FSCK_CLEAN), FSCK_CLEAN);
	/* and fsck still sees a leaf kept in a row changed */
	pgfx_exec(c, "ALTER TABLE usage_records DISABLE TRIGGER usage_records_append_only; "
		     "UPDATE usage_records SET leaf_hash = sha256('x') WHERE record_id = 'm7-040'; "
		     "ALTER TABLE usage_records ENABLE TRIGGER usage_records_append_only");
	assert_int_equal(fsck(uri, FSCK_DISAGREE), FSCK_DISAGREE);
	PQfinish(c);
	seen_free(&before);
	seen_free(&after);
	pgfx_drop(db);
}

int main(void)
{
	log_set_quiet(true);
	pgfx_note_skips("test_pg_migrate_0007");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_with_data),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
