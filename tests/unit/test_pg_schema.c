/* test_pg_schema.c — the PostgreSQL schema (migrations/postgres/) on a real
 * server: migrations apply once, also from several connections at once; a
 * database newer than the binary is refused; the append-only tables refuse
 * UPDATE, DELETE and TRUNCATE; UNIQUE(provider, record_id) holds; amounts
 * are integers; a booking group's bounds read uses the primary key and the
 * budget functions keep generic plans.  The server comes from ALLOT_TEST_PG_URI, which `make test`
 * sets to a throwaway cluster (scripts/with-pg.sh); without it the tests
 * skip and say so.  Each test works in a database of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/migrate.h"
#include "store/pg_int.h"
#include "support/pgfx.h"

struct fx {
	char db[64];
	char uri[1024];
	PGconn *c;
};

/* The error sql fails with ("" if it does not fail). */
static char *fails_with(PGconn *c, const char *sql)
{
	static char err[512];
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	snprintf(err, sizeof err, "%s",
		 st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? "" : PQresultErrorMessage(r));
	PQclear(r);
	return err;
}

/* A fresh database, not migrated, and a connection to it. */
static int setup(void **state)
{
	*state = NULL;
	if (!pgfx_server())
		return 0;
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	pgfx_create(f->db, sizeof f->db, f->uri, sizeof f->uri);
	f->c = pgfx_connect(f->uri);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	PQfinish(f->c);
	/* A plain DROP: it fails while a session is left on the database (a
	 * racer that did not close its connection). */
	char sql[128];
	snprintf(sql, sizeof sql, "DROP DATABASE %s", f->db);
	pgfx_admin_exec(sql);
	free(f);
	return 0;
}

static void migrate_ok(PGconn *c, int *v)
{
	char msg[512];
	allot_err e = pg_migrate(c, v, msg, sizeof msg);
	if (e)
		fail_msg("pg_migrate: %s", msg);
}

static void test_migrate_once(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	assert_int_equal(pg_schema_version(f->c), 0);
	int v = -1;
	migrate_ok(f->c, &v);
	assert_int_equal(v, migrate_latest(migrations_postgres));
	assert_true(v >= 1);
	migrate_ok(f->c, &v); /* again: nothing to do */
	assert_int_equal(v, migrate_latest(migrations_postgres));
	int n = 0; /* one row per embedded migration (numbers may leave gaps) */
	for (const struct migration *m = migrations_postgres; m->version; m++)
		n++;
	PGresult *r = PQexec(f->c, "SELECT count(*) FROM allot_schema");
	assert_int_equal(atoi(PQgetvalue(r, 0, 0)), n);
	PQclear(r);
}

struct racer {
	const char *uri;
	allot_err e;
	int v;
	char msg[512];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	PGconn *c = NULL;
	r->e = pg_connect(r->uri, &c, r->msg, sizeof r->msg);
	if (!r->e)
		r->e = pg_migrate(c, &r->v, r->msg, sizeof r->msg);
	PQfinish(c);
	return NULL;
}

/* Four nodes starting at once on an empty database: each migration is
 * applied once, and every node ends on the latest version. */
static void test_migrate_concurrently(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct racer r[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){.uri = f->uri};
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		if (r[i].e)
			fail_msg("node %d: %s", i, r[i].msg);
		assert_int_equal(r[i].v, migrate_latest(migrations_postgres));
	}
	assert_int_equal(pg_schema_version(f->c), migrate_latest(migrations_postgres));
}

static void test_newer_database_refused(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	migrate_ok(f->c, NULL);
	pgfx_exec(f->c, "INSERT INTO allot_schema VALUES (9999, '9999_future', 0)");
	char msg[512];
	assert_int_equal(pg_migrate(f->c, NULL, msg, sizeof msg), ALLOT_E_UNSUPPORTED);
	assert_non_null(strstr(msg, "9999"));
	assert_non_null(strstr(msg, "upgrade allotd"));
}

#define RECORD(id, charge)                                                                  \
	"INSERT INTO usage_records(provider, record_id, kind, institution, project, resource, " \
	"quantity, start_us, end_us, received_us, book_us, charter_version, rate_micro, "      \
	"charge_micro, canonical, sha256) VALUES ('cscs', '" id "', 'usage', 'epfl', "         \
	"'climate', 'gpu_seconds', 10, 0, 1, 2, 1, 1, 100, " charge ", '\\x7b7d', "           \
	"sha256('x'))"

/* The first cell of sql's one-row answer. */
static int64_t cell_i64(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* The shared buffers that sql's execution touched (EXPLAIN ANALYZE's
 * first "Buffers:" line: the top node's, nested statements included). */
static int64_t buffers_hit(PGconn *c, const char *sql)
{
	char q[512];
	snprintf(q, sizeof q, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) %s", sql);
	PGresult *r = PQexec(c, q);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	int64_t hit = -1;
	for (int i = 0; i < PQntuples(r) && hit < 0; i++) {
		const char *p = strstr(PQgetvalue(r, i, 0), "shared hit=");
		if (p)
			hit = strtoll(p + 11, NULL, 10);
	}
	PQclear(r);
	if (hit < 0)
		fail_msg("no buffer counts in the plan of %s", sql);
	return hit;
}

/* What a booking group reads and runs each time costs what a group needs,
 * not what the ledger holds (docs/BENCH_PG.md, "Where the CPU goes"): the
 * ledger's totals after the bounds row (allot_ledger_bounds_take,
 * migration 0008) are read by the primary key, not by a scan of
 * usage_records, and are the rows after upto; the budget functions keep
 * their generic plans. */
static void test_booking_plans(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	static const char take[] = "SELECT * FROM allot_ledger_bounds_take()";
	migrate_ok(f->c, NULL);
	assert_int_equal(cell_i64(f->c, "SELECT count(*) FROM pg_proc WHERE proname IN "
				      "('allot_budget_book', 'allot_budget_lock', 'allot_reserve') "
				      "AND 'plan_cache_mode=force_generic_plan' = ANY(proconfig)"),
			 3);
	pgfx_exec(f->c, "INSERT INTO usage_records(provider, record_id, kind, institution, project, "
			"resource, quantity, start_us, end_us, received_us, book_us, "
			"charter_version, rate_micro, charge_micro, canonical, sha256) SELECT "
			"'cscs', 'g-' || g, 'usage', 'epfl', 'climate', 'gpu_seconds', 10, 0, 1, 2, "
			"1, 1, 100, 1000, '\\x7b7d', sha256('x') FROM generate_series(1, 3000) g");
	pgfx_exec(f->c, "UPDATE ledger_bounds SET charge_pos = 3000000, quantity = 30000, "
			"upto = (SELECT max(id) FROM usage_records)");
	PGresult *r = PQexec(f->c, take); /* planned: the session keeps it */
	assert_int_equal(PQntuples(r), 1);
	assert_string_equal(PQgetvalue(r, 0, 0), "3000000");
	assert_string_equal(PQgetvalue(r, 0, 1), "30000");
	assert_string_equal(PQgetvalue(r, 0, 2), "0");
	assert_string_equal(PQgetvalue(r, 0, 3), "0");
	PQclear(r);
	/* a scan of the 3,000 rows (not analyzed yet, as in a young ledger:
	 * the plan the old read got) touches 80-odd pages; by the key, a few */
	int64_t hit = buffers_hit(f->c, take);
	print_message("bounds read on 3,000 rows: %lld shared buffers\n", (long long)hit);
	assert_true(hit < 30);
	/* the rows after upto: one of 7 and one of -2 */
	pgfx_exec(f->c, RECORD("after-1", "7"));
	pgfx_exec(f->c, RECORD("after-2", "-2"));
	r = PQexec(f->c, take);
	assert_string_equal(PQgetvalue(r, 0, 1), "30000");
	assert_string_equal(PQgetvalue(r, 0, 2), "7"); /* positive charges only */
	assert_string_equal(PQgetvalue(r, 0, 3), "20");
	PQclear(r);
}

static void test_append_only(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	migrate_ok(f->c, NULL);
	pgfx_exec(f->c, RECORD("r-1", "1000"));
	pgfx_exec(f->c, "INSERT INTO charters(version, charter_id, text, sha256, author, applied_at, "
			"effective) VALUES (1, 'c', 'x', 'h', 'admin', 0, 0)");
	pgfx_exec(f->c, "INSERT INTO audit_log(at, actor, action) VALUES (0, 'admin', 'key.create')");
	pgfx_exec(f->c, "INSERT INTO tlog_leaves VALUES (0, 'usage', 1, sha256('l'), 'cscs/r-1')");
	pgfx_exec(f->c, "INSERT INTO tlog_nodes VALUES (1, 0, sha256('n'))");
	pgfx_exec(f->c, "INSERT INTO usage_rejections(provider, record_id, sha256, reason, "
			"received_us) VALUES ('cscs', 'r-9', sha256('r'), 'no', 0)");
	pgfx_exec(f->c, "INSERT INTO token_revocations(jti, revoked_at, revoked_by) "
			"VALUES ('j', 0, 'admin')");
	static const char *const tables[] = {"usage_records", "charters", "audit_log", "tlog_leaves",
					     "tlog_nodes", "usage_rejections", "token_revocations",
					     "tlog_backfill"};
	char sql[160];
	for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
		const char *t = tables[i];
		snprintf(sql, sizeof sql, "DELETE FROM %s", t);
		if (strcmp(t, "tlog_backfill") != 0) /* empty: no row to refuse */
			assert_non_null(strstr(fails_with(f->c, sql), "append-only"));
		snprintf(sql, sizeof sql, "TRUNCATE %s", t);
		assert_non_null(strstr(fails_with(f->c, sql), "append-only"));
	}
	assert_non_null(strstr(fails_with(f->c, "UPDATE usage_records SET charge_micro = 0"),
			       "append-only"));
	assert_non_null(strstr(fails_with(f->c, "UPDATE audit_log SET actor = 'eve'"), "append-only"));
	/* the mutable ones stay mutable: buckets, the bounds row, the queue */
	pgfx_exec(f->c, "UPDATE ledger_bounds SET charge_pos = charge_pos + 1");
	PGresult *r = PQexec(f->c, "SELECT count(*) FROM usage_records");
	assert_string_equal(PQgetvalue(r, 0, 0), "1");
	PQclear(r);
}

static void test_constraints(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	migrate_ok(f->c, NULL);
	pgfx_exec(f->c, RECORD("r-1", "1000"));
	/* UNIQUE(provider, record_id) forever */
	assert_non_null(strstr(fails_with(f->c, RECORD("r-1", "5")), "duplicate key"));
	/* integers only: amounts are BIGINT, and the store sends them as text
	 * parameters, so a fraction of a micro-credit or a value past int64 is
	 * refused, never rounded */
	assert_string_not_equal(fails_with(f->c, RECORD("r-2", "'0.5'")), "");
	assert_string_not_equal(fails_with(f->c, RECORD("r-3", "'9223372036854775808'")), "");
	pgfx_exec(f->c, RECORD("r-4", "'-9223372036854775808'"));
	PGresult *r = PQexec(f->c, "SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE "
				   "attrelid = 'usage_records'::regclass AND attname IN ('charge_micro', "
				   "'rate_micro', 'quantity', 'book_us') GROUP BY 1");
	assert_int_equal(PQntuples(r), 1);
	assert_string_equal(PQgetvalue(r, 0, 0), "bigint");
	PQclear(r);
	/* a quantity of 0 and an end before the start are refused */
	assert_string_not_equal(
		fails_with(f->c, "INSERT INTO usage_records(provider, record_id, kind, institution, "
				 "project, resource, quantity, start_us, end_us, received_us, book_us, "
				 "charter_version, rate_micro, charge_micro, canonical, sha256) VALUES "
				 "('cscs', 'q', 'usage', 'e', 'p', 'r', 0, 0, 1, 2, 1, 1, 1, 1, 'x', "
				 "sha256('x'))"),
		"");
	assert_string_not_equal(
		fails_with(f->c, "INSERT INTO usage_records(provider, record_id, kind, institution, "
				 "project, resource, quantity, start_us, end_us, received_us, book_us, "
				 "charter_version, rate_micro, charge_micro, canonical, sha256) VALUES "
				 "('cscs', 'e', 'usage', 'e', 'p', 'r', 1, 5, 1, 2, 1, 1, 1, 1, 'x', "
				 "sha256('x'))"),
		"");
	/* the bounds row is one row */
	assert_string_not_equal(fails_with(f->c, "INSERT INTO ledger_bounds VALUES (2, 0, 0, 0)"), "");
	assert_string_not_equal(fails_with(f->c, "UPDATE ledger_bounds SET charge_pos = -1"), "");
}

static void test_bad_uri(void **state)
{
	(void)state;
	PGconn *c = NULL;
	char msg[512];
	assert_int_equal(pg_connect("postgresql:///nosuchdb?host=/nonexistent-dir", &c, msg,
				    sizeof msg),
			 ALLOT_E_UNAVAILABLE);
	assert_null(c);
	assert_non_null(strstr(msg, "cannot connect to PostgreSQL"));
	assert_null(strchr(msg, '\n'));
}

int main(void)
{
	pgfx_note_skips("test_pg_schema");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_concurrently, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_database_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_booking_plans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_constraints, setup, teardown),
		cmocka_unit_test(test_bad_uri),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
