/* test_fsck.c — allotd --fsck's pieces below the end-to-end test
 * (tests/e2e/test_fsck.sh): the read-only store open (nothing created,
 * nothing written, other schema versions refused), fsck_run on a database
 * written through the store (clean) and on tampered copies (each change
 * named, exit 1), the same on a PostgreSQL database (skipped without
 * ALLOT_TEST_PG_URI), and the flags. */
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

#include <libpq-fe.h>
#include <sqlite3.h>

#include "common/log.h"
#include "daemon/fsck.h"
#include "store/store.h"
#include "support/pgfx.h"

static char dir[64], db[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/allot-fsck-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(db, sizeof db, "%s/allot.db", dir);
	log_set_verbose(false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A database written through the store: three audit entries (three log
 * leaves). */
static void make_db(void)
{
	struct store *st = NULL;
	char msg[256] = "";
	unlink(db);
	assert_int_equal(store_open(db, &st, msg, sizeof msg), ALLOT_OK);
	for (int i = 0; i < 3; i++) {
		struct audit_entry a = {.at = 1000 + i, .actor = "test", .action = "key.create",
					.target = "k"};
		assert_int_equal(store_audit_append(st, &a), ALLOT_OK);
	}
	store_close(st);
}

static void sql(const char *path, const char *q)
{
	sqlite3 *h = NULL;
	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	char *err = NULL;
	int rc = sqlite3_exec(h, q, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", q, err);
	sqlite3_close(h);
}

/* fsck_run on path; OUT: its output (from malloc) and exit status. */
static int run(const char *path, bool json, char **out)
{
	size_t n = 0;
	FILE *o = open_memstream(out, &n), *e = fopen("/dev/null", "w");
	struct fsck_options opt = {.db = path, .json = json};
	int rc = fsck_run(&opt, o, e);
	fclose(o);
	fclose(e);
	return rc;
}

static void test_readonly_open(void **state)
{
	(void)state;
	struct store *st = NULL;
	char msg[256] = "", absent[160];
	snprintf(absent, sizeof absent, "%s/absent.db", dir);
	assert_int_not_equal(store_open_readonly(absent, &st, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(access(absent, F_OK), -1); /* not created */

	make_db();
	assert_int_equal(store_open_readonly(db, &st, msg, sizeof msg), ALLOT_OK);
	uint64_t size = 0;
	uint8_t root[32];
	assert_int_equal(store_tlog_head(st, &size, root), ALLOT_OK);
	assert_int_equal(size, 3);
	struct audit_entry a = {.at = 1, .actor = "test", .action = "x"};
	assert_int_equal(store_audit_append(st, &a), ALLOT_E_STORE); /* writes fail */
	store_close(st);

	sql(db, "PRAGMA user_version = 999");
	assert_int_equal(store_open_readonly(db, &st, msg, sizeof msg), ALLOT_E_STORE);
	assert_non_null(strstr(msg, "schema version 999"));
	sql(db, "PRAGMA user_version = 1");
	assert_int_equal(store_open_readonly(db, &st, msg, sizeof msg), ALLOT_E_STORE);
	assert_non_null(strstr(msg, "to migrate it"));
}

static void test_clean_and_tampered(void **state)
{
	(void)state;
	char *out = NULL;
	make_db();
	assert_int_equal(run(db, false, &out), FSCK_CLEAN);
	assert_non_null(strstr(out, " checks, 0 disagreements\n"));
	free(out);
	assert_int_equal(run(db, true, &out), FSCK_CLEAN);
	assert_non_null(strstr(out, "\"disagreements\":0"));
	free(out);

	/* a bucket row that no record sums to */
	sql(db, "INSERT INTO usage_buckets VALUES ('epfl', 'climate', 'x@epfl.ch', 4, 7)");
	assert_int_equal(run(db, false, &out), FSCK_DISAGREE);
	assert_non_null(strstr(out, "fsck: bucket row without records epfl/climate/x@epfl.ch at "
				    "1970-01-01T01:00:00Z: stored 0.000007, recomputed none\n"));
	assert_non_null(strstr(out, " checks, 1 disagreements\n"));
	free(out);

	/* an audit entry deleted under its leaf */
	make_db();
	sql(db, "DROP TRIGGER audit_no_delete; DELETE FROM audit_log WHERE id = 2");
	assert_int_equal(run(db, false, &out), FSCK_DISAGREE);
	assert_non_null(strstr(out, "fsck: log leaf leaf 1 (audit 2): stored leaf, recomputed no entry\n"));
	assert_non_null(strstr(out, "fsck: log leaves entries logged: stored 3, recomputed 2\n"));
	free(out);

	/* a leaf hash changed */
	make_db();
	sql(db, "DROP TRIGGER tlog_leaves_no_update; UPDATE tlog_leaves SET leaf_hash = zeroblob(32) "
		"WHERE idx = 2");
	assert_int_equal(run(db, true, &out), FSCK_DISAGREE);
	assert_non_null(strstr(out, "\"what\":\"log leaf hash\",\"where\":\"leaf 2 (audit 3)\","
				    "\"stored\":\"0000000000000000000000000000000000000000000000000000000000000000\""));
	/* a tree of 3 leaves stores no node above them (docs/TLOG.md): its root
	 * is rebuilt from the same leaf hashes, so only the leaf disagrees, and
	 * the dropped trigger */
	assert_non_null(strstr(out, "\"what\":\"append-only trigger\",\"where\":\"tlog_leaves_no_update "
				    "on tlog_leaves\",\"stored\":\"missing\",\"recomputed\":\"present\""));
	assert_non_null(strstr(out, "\"disagreements\":2,"));
	free(out);

	/* the ledger's totals (ledger_bounds) changed: no record sums to them */
	make_db();
	sql(db, "UPDATE ledger_bounds SET charge_pos = 5, quantity = 7");
	assert_int_equal(run(db, false, &out), FSCK_DISAGREE);
	assert_non_null(strstr(out, "fsck: ledger bounds positive charges records up to id 0: "
				    "stored 0.000005, recomputed 0\n"));
	assert_non_null(strstr(out, "fsck: ledger bounds quantities records up to id 0: "
				    "stored 7, recomputed 0\n"));
	assert_non_null(strstr(out, " checks, 2 disagreements\n"));
	free(out);
}

/* Runs sql on the PostgreSQL database at uri; fails the test on an error. */
static void pg_sql_exec(const char *uri, const char *q)
{
	PGconn *c = PQconnectdb(uri);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", q, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

/* The same on PostgreSQL: clean; a leaf changed with its trigger dropped
 * (both named); refused while an owner holds the database. */
static void test_pg(void **state)
{
	(void)state;
	if (!pgfx_server()) {
		fprintf(stderr, "test_fsck: test_pg skipped: ALLOT_TEST_PG_URI is not set "
				"(make unit sets it with scripts/with-pg.sh)\n");
		skip();
	}
	char name[64], uri[512], msg[256] = "";
	pgfx_create(name, sizeof name, uri, sizeof uri);
	struct store *st = NULL;
	assert_int_equal(store_open(uri, &st, msg, sizeof msg), ALLOT_OK);
	for (int i = 0; i < 3; i++) {
		struct audit_entry a = {.at = 1000 + i, .actor = "test", .action = "key.create",
					.target = "k"};
		assert_int_equal(store_audit_append(st, &a), ALLOT_OK);
	}
	store_close(st);
	char *out = NULL;
	assert_int_equal(run(uri, false, &out), FSCK_CLEAN);
	assert_non_null(strstr(out, " checks, 0 disagreements\n"));
	free(out);

	struct store_owner *owner = NULL;
	assert_int_equal(store_pg_owner_acquire(uri, "test", &owner, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(run(uri, false, &out), FSCK_ERROR);
	free(out);
	store_pg_owner_release(owner);

	pg_sql_exec(uri, "DROP TRIGGER tlog_leaves_append_only ON tlog_leaves; "
			 "UPDATE tlog_leaves SET leaf_hash = sha256('x') WHERE idx = 2");
	assert_int_equal(run(uri, true, &out), FSCK_DISAGREE);
	assert_non_null(strstr(out, "\"what\":\"log leaf hash\",\"where\":\"leaf 2 (audit 3)\""));
	assert_non_null(strstr(out, "\"what\":\"append-only trigger\",\"where\":\"tlog_leaves_append_only "
				    "on tlog_leaves\""));
	/* the head's root (what checkpoints were signed over) is stored here,
	 * so the tree rebuilt from the changed leaf disagrees with it too */
	assert_non_null(strstr(out, "\"what\":\"log root\",\"where\":\"tree of 3 leaves\""));
	if (!strstr(out, "\"disagreements\":3,"))
		fail_msg("%s", out);
	free(out);
	pgfx_drop(name);
}

static void test_flags(void **state)
{
	(void)state;
	static const struct {
		const char *argv[6];
		int rc;
		const char *db;
		bool json;
	} cases[] = {
		{{"allotd", "--fsck", "--db", "a.db"}, 0, "a.db", false},
		{{"allotd", "--db=b.db", "--fsck", "--format", "json"}, 0, "b.db", true},
		{{"allotd", "--fsck", "--db", "c.db", "--format=text"}, 0, "c.db", false},
		{{"allotd", "--fsck", "--keys", "k", "--db", "d.db"}, 0, "d.db", false},
		{{"allotd", "--fsck", "--format", "xml"}, FSCK_ERROR, NULL, false},
		{{"allotd", "--fsck", "--bogus"}, FSCK_ERROR, NULL, false},
		{{"allotd", "--fsck", "--db"}, FSCK_ERROR, NULL, false},
		{{"allotd", "--fsck", "stray"}, FSCK_ERROR, NULL, false},
	};
	FILE *e = fopen("/dev/null", "w");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int argc = 0;
		while (argc < 6 && cases[i].argv[argc])
			argc++;
		struct fsck_options o;
		int rc = fsck_parse_args(argc, (char **)cases[i].argv, &o, e);
		assert_int_equal(rc, cases[i].rc);
		if (!rc) {
			assert_string_equal(o.db, cases[i].db);
			assert_int_equal(o.json, cases[i].json);
		}
	}
	fclose(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readonly_open),
		cmocka_unit_test(test_clean_and_tampered),
		cmocka_unit_test(test_pg),
		cmocka_unit_test(test_flags),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
