/* test_migrate_checks.c — migrations 0007 (CHECK lists as OR chains), 0008
 * (usage_gate_ids dropped) and 0009 (integer-only money, ledger_bounds) on a
 * database that has rows: every row, id, trigger and other index survives,
 * and the constraints refuse what they should; 0012 adds
 * usage_by_provider_seq. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"
#include "store/migrate.h"
#include "store/store.h"
#include "support/tmpdir.h"

static char *dump(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	size_t cap = 1 << 16, len = 0;
	char *out = calloc(1, cap);
	assert_non_null(out);
	while (sqlite3_step(q) == SQLITE_ROW) {
		for (int c = 0; c < sqlite3_column_count(q); c++) {
			const unsigned char *t = sqlite3_column_text(q, c);
			len += (size_t)snprintf(out + len, cap - len, "%s|", t ? (const char *)t : "NULL");
			assert_true(len < cap);
		}
		out[len++] = '\n';
	}
	sqlite3_finalize(q);
	return out;
}

static const char rows[] =
	"INSERT INTO usage_records(provider, record_id, seq, kind, adjustment, supersedes, "
	"institution, project, member, resource, class, model, quantity, start_us, end_us, "
	"received_us, book_us, late, charter_version, rate_micro, charge_micro, overage, source, "
	"canonical, sha256, leaf_index) VALUES "
	"('cscs','r1',1,'usage',NULL,NULL,'epfl','climate','alice','gpu','h100','',5,1,2,3,2,0,1,"
	"10,50,0,'provider',x'7b7d',zeroblob(32),0),"
	"('cscs','r2',NULL,'adjustment','credit','r1','epfl','climate','alice','gpu','h100','',5,"
	"1,2,3,2,0,1,10,-50,0,'provider',x'7b7d',zeroblob(32),1),"
	"('m1','g1',NULL,'usage',NULL,NULL,'ethz','nlp','','tokens','','m1',7,1,2,3,2,1,2,3,21,1,"
	"'gate',x'7b7d',zeroblob(32),NULL);"
	"INSERT INTO tlog_leaves VALUES (0,'usage',1,zeroblob(32),'cscs/r1'),"
	"(1,'usage',2,zeroblob(32),'cscs/r2'),(2,'audit',7,zeroblob(32),NULL),"
	"(3,'charter',1,zeroblob(32),NULL);";

/* Removes the line of the index migration 0012 adds (sequence gaps) from
 * a schema dump, so a dump from before it compares with one after. */
static void drop_index_0012(char *dump_text)
{
	char *si = strstr(dump_text, "index|usage_by_provider_seq|usage_records|");
	assert_non_null(si);
	char *eol = strchr(si, '\n');
	assert_non_null(eol);
	memmove(si, eol + 1, strlen(eol + 1) + 1);
}

/* Puts back the line of the index migration 0015 replaced (the pool's
 * sums: buckets_by_time with charge), so a dump from before it compares
 * with one after. */
static void undo_index_0015(char *dump_text)
{
	static const char now[] = "index|buckets_by_time_charge|usage_buckets|CREATE INDEX "
				  "buckets_by_time_charge ON usage_buckets(bucket, charge)|";
	static const char before[] = "index|buckets_by_time|usage_buckets|CREATE INDEX "
				     "buckets_by_time ON usage_buckets(bucket)|";
	char *si = strstr(dump_text, now);
	assert_non_null(si);
	memcpy(si, before, sizeof before - 1);
	memmove(si + sizeof before - 1, si + sizeof now - 1, strlen(si + sizeof now - 1) + 1);
}

static void test_upgrade(void **state)
{
	(void)state;
	char dir[64], path[128];
	tmpdir_make(dir, sizeof dir, "migrate");
	snprintf(path, sizeof path, "%s/allot.db", dir);
	/* a database as migrations 1..6 left it, with rows */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (const struct migration *m = migrations_sqlite; m->version && m->version <= 6; m++)
		assert_int_equal(sqlite3_exec(db, m->sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 6", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, rows, NULL, NULL, NULL), SQLITE_OK);
	static const char q_rows[] = "SELECT * FROM usage_records ORDER BY id";
	static const char q_leaves[] = "SELECT * FROM tlog_leaves ORDER BY idx";
	static const char q_schema[] =
		"SELECT type, name, tbl_name, CASE WHEN type = 'table' THEN '' ELSE sql END "
		"FROM sqlite_schema WHERE tbl_name IN ('usage_records', 'tlog_leaves') ORDER BY name";
	char *r0 = dump(db, q_rows), *l0 = dump(db, q_leaves), *s0 = dump(db, q_schema);
	sqlite3_close(db);
	/* the store applies 0007 and later */
	struct store *st = NULL;
	char msg[256] = "";
	if (store_sqlite_open(path, &st, msg, sizeof msg))
		fail_msg("store_sqlite_open: %s", msg);
	store_close(st);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char *r1 = dump(db, q_rows), *l1 = dump(db, q_leaves), *s1 = dump(db, q_schema);
	assert_string_equal(r0, r1);
	assert_string_equal(l0, l1);
	/* every index and trigger as it was, but for usage_gate_ids (0008) */
	char *gi = strstr(s0, "index|usage_gate_ids|");
	assert_non_null(gi);
	char *eol = strchr(gi, '\n');
	assert_non_null(eol);
	memmove(gi, eol + 1, strlen(eol + 1) + 1);
	/* and for the index added by 0012 (sequence gaps) */
	drop_index_0012(s1);
	assert_string_equal(s0, s1);
	assert_null(strstr(s1, "usage_gate_ids"));
	/* the lists became OR chains: no temporary b-tree per INSERT */
	char *t = dump(db, "SELECT sql FROM sqlite_schema WHERE name IN ('usage_records', 'tlog_leaves')");
	assert_null(strstr(t, "IN ('usage'"));
	assert_null(strstr(t, "IN ('credit'"));
	assert_non_null(strstr(t, "kind = 'usage' OR kind = 'adjustment' OR kind = 'void'"));
	/* and refuse what the lists refused; the ledger stays append-only */
	static const char *const refused[] = {
		"INSERT INTO usage_records(provider, record_id, kind, institution, project, resource, "
		"quantity, start_us, end_us, received_us, book_us, charter_version, rate_micro, "
		"charge_micro, canonical, sha256) VALUES ('p','x','refund','i','j','r',1,1,1,1,1,1,1,1,"
		"x'00',zeroblob(32))",
		"INSERT INTO usage_records(provider, record_id, kind, adjustment, institution, project, "
		"resource, quantity, start_us, end_us, received_us, book_us, charter_version, "
		"rate_micro, charge_micro, canonical, sha256) VALUES ('p','x','adjustment','bonus','i',"
		"'j','r',1,1,1,1,1,1,1,1,x'00',zeroblob(32))",
		"INSERT INTO usage_records(provider, record_id, kind, institution, project, resource, "
		"quantity, start_us, end_us, received_us, book_us, charter_version, rate_micro, "
		"charge_micro, canonical, sha256) VALUES ('cscs','r1','usage','i','j','r',1,1,1,1,1,1,1,"
		"1,x'00',zeroblob(32))",
		"INSERT INTO tlog_leaves VALUES (9, 'other', 1, zeroblob(32), NULL)",
		"DELETE FROM usage_records WHERE id = 1",
		"UPDATE tlog_leaves SET ref = 5 WHERE idx = 0",
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (sqlite3_exec(db, refused[i], NULL, NULL, NULL) == SQLITE_OK)
			fail_msg("accepted after 0007: %s", refused[i]);
	/* NULL adjustment still passes */
	assert_int_equal(sqlite3_exec(db,
		"INSERT INTO usage_records(provider, record_id, kind, institution, project, resource, "
		"quantity, start_us, end_us, received_us, book_us, charter_version, rate_micro, "
		"charge_micro, canonical, sha256) VALUES ('p','ok','void','i','j','r',1,1,1,1,1,1,1,1,"
		"x'00',zeroblob(32))", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(r0); free(r1); free(l0); free(l1); free(s0); free(s1); free(t);
	tmpdir_remove(dir);
}

/* 0009: integer-only money columns and ledger_bounds, on a database as
 * 0008 left it, with rows and one bucket an earlier version left REAL. */
static void test_upgrade_0009(void **state)
{
	(void)state;
	char dir[64], path[128];
	tmpdir_make(dir, sizeof dir, "migrate");
	snprintf(path, sizeof path, "%s/allot.db", dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (const struct migration *m = migrations_sqlite; m->version && m->version <= 8; m++)
		assert_int_equal(sqlite3_exec(db, m->sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 8", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, rows, NULL, NULL, NULL), SQLITE_OK);
	/* r1 and r2 (net 0) in bucket 0 of epfl/climate/alice; g1 (21) in
	 * ethz/nlp, whose bucket an overflowing `+` had turned REAL */
	assert_int_equal(sqlite3_exec(db, "INSERT INTO usage_buckets VALUES "
		"('epfl','climate','alice',0,0), ('ethz','nlp','',0,1.2e19)", NULL, NULL, NULL), SQLITE_OK);
	static const char q_rows[] = "SELECT * FROM usage_records ORDER BY id";
	static const char q_schema[] =
		"SELECT type, name, tbl_name, CASE WHEN type = 'table' THEN '' ELSE sql END "
		"FROM sqlite_schema WHERE tbl_name IN ('usage_records', 'usage_buckets') ORDER BY name";
	char *r0 = dump(db, q_rows), *s0 = dump(db, q_schema);
	sqlite3_close(db);
	struct store *st = NULL;
	char msg[256] = "";
	if (store_sqlite_open(path, &st, msg, sizeof msg))
		fail_msg("store_sqlite_open: %s", msg);
	store_close(st);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char *r1 = dump(db, q_rows), *s1 = dump(db, q_schema);
	assert_string_equal(r0, r1);   /* every row and id */
	drop_index_0012(s1);           /* added by a later migration */
	undo_index_0015(s1);           /* replaced by a later migration */
	assert_string_equal(s0, s1);   /* every index and trigger */
	/* buckets recomputed from the records: the REAL one repaired */
	char *b = dump(db, "SELECT *, typeof(charge) FROM usage_buckets ORDER BY 1, 2, 3, 4");
	assert_string_equal(b, "epfl|climate|alice|0|0|integer|\nethz|nlp||0|21|integer|\n");
	/* the totals: positive charges 50 + 21, quantities 5 + 5 + 7, up to id 3 */
	char *t = dump(db, "SELECT * FROM ledger_bounds");
	assert_string_equal(t, "1|71|17|3|\n");
	/* what the CHECKs refuse: REAL money and quantities, and the REAL an
	 * overflowing `+` makes in the bucket upsert */
	static const char *const refused[] = {
		"INSERT INTO usage_records(provider, record_id, kind, institution, project, resource, "
		"quantity, start_us, end_us, received_us, book_us, charter_version, rate_micro, "
		"charge_micro, canonical, sha256) VALUES ('p','x','usage','i','j','r',1,1,1,1,1,1,1,"
		"1.2e19,x'00',zeroblob(32))",
		"INSERT INTO usage_records(provider, record_id, kind, institution, project, resource, "
		"quantity, start_us, end_us, received_us, book_us, charter_version, rate_micro, "
		"charge_micro, canonical, sha256) VALUES ('p','x','usage','i','j','r',1.5,1,1,1,1,1,1,"
		"1,x'00',zeroblob(32))",
		"INSERT INTO usage_records(provider, record_id, kind, institution, project, resource, "
		"quantity, start_us, end_us, received_us, book_us, charter_version, rate_micro, "
		"charge_micro, canonical, sha256) VALUES ('p','x','usage','i','j','r',1,1,1,1,1,1,0.5,"
		"1,x'00',zeroblob(32))",
		"INSERT INTO usage_buckets VALUES ('i','j','',1,'lots')",
		"INSERT INTO usage_buckets VALUES ('ethz','nlp','',0,9223372036854775807) "
		"ON CONFLICT(institution, project, member, bucket) DO UPDATE SET charge = charge + "
		"excluded.charge",
		"UPDATE ledger_bounds SET charge_pos = charge_pos + 9223372036854775807",
		"INSERT INTO ledger_bounds VALUES (2, 0, 0)",
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (sqlite3_exec(db, refused[i], NULL, NULL, NULL) == SQLITE_OK)
			fail_msg("accepted after 0009: %s", refused[i]);
	free(b);
	b = dump(db, "SELECT charge, typeof(charge) FROM usage_buckets WHERE institution = 'ethz'");
	assert_string_equal(b, "21|integer|\n");
	/* the ledger stays append-only */
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM usage_records WHERE id = 1", NULL, NULL,
					  NULL), SQLITE_OK);
	sqlite3_close(db);
	free(r0); free(r1); free(s0); free(s1); free(b); free(t);
	tmpdir_remove(dir);
}

int main(void)
{
	log_set_quiet(true);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_upgrade_0009),
	};
	return cmocka_run_group_tests_name("migrate_checks", tests, NULL, NULL);
}
