/* test_pg_settle.c — gate settlements booked in groups on PostgreSQL
 * (ledger/group.c's batch try, store_ops.ledger_begin_batch in
 * store/pg_ledger.c; docs/POSTGRES.md, "Settlements in few round trips"):
 *
 * - a group of N settlements costs a number of statements that does not
 *   grow with N (allot_store_roundtrips_total): 2 and 10 settlements cost
 *   the same;
 * - a group in which one settlement's id is taken and another is refused
 *   by the charter books the others and answers those two as before (the
 *   group runs again with a savepoint per item), with the log contiguous;
 *   so does a group whose only fault is a taken id, which the batch try
 *   learns of in its commit's pipeline;
 * - the sums of several levels in one statement (store_ledger_sums, the
 *   overage flag's read) are each level's sum;
 * - a batch whose first sums ask what the batch before asked gets them
 *   from its opening round trip (no statement of their own), and they
 *   include what was committed in between; another request goes to the
 *   database.
 *
 * A group is formed by holding the ledger_bounds row from a connection of
 * the test's own: the first settlement leads and waits for the row, the
 * others queue behind it and make the next group.  The server comes from
 * ALLOT_TEST_PG_URI (`make unit` sets it, scripts/with-pg.sh); without it
 * the tests skip and say so. */
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

#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "daemon/app.h"
#include "ledger/ledger.h"
#include "ledger/record.h"
#include "store/store.h"
#include "support/pgfx.h"
#include "support/tmpdir.h"

static const char charter_text[] =
	"charter: pg-settle-unit\n"
	"version: 1\n"
	"effective: 2026-01-01T00:00:00Z\n"
	"timezone: UTC\n"
	"rates:\n"
	"  - {resource: tokens_in,  model: m, credits: 0.0001}\n"
	"  - {resource: tokens_out, model: m, credits: 0.0003}\n"
	"providers:\n"
	"  - {id: local, builtin: true}\n"
	"models:\n"
	"  - {id: m, provider: local, file: absent.gguf}\n"
	"institutions:\n"
	"  - id: epfl\n"
	"    allocation: {credits: 1000000, period: month}\n"
	"    projects:\n"
	"      - id: climate\n"
	"        allocation: {credits: 100000, period: month}\n"
	"        members: [alice@epfl.ch]\n";

struct fx {
	char db[64], uri[1024];
	char dir[64], keys[96], charter[96];
	struct app app;
	PGconn *holder; /* holds the bounds row while a group queues */
};

static int setup(void **state)
{
	*state = NULL;
	if (!pgfx_server())
		return 0;
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	pgfx_create(f->db, sizeof f->db, f->uri, sizeof f->uri);
	tmpdir_make(f->dir, sizeof f->dir, "pgsettle");
	snprintf(f->keys, sizeof f->keys, "%s/keys", f->dir);
	snprintf(f->charter, sizeof f->charter, "%s/charter.yaml", f->dir);
	FILE *fp = fopen(f->charter, "w");
	assert_non_null(fp);
	fputs(charter_text, fp);
	fclose(fp);
	setenv("ALLOT_ADMIN_KEY", "test-pg-settle-admin-key-0123456", 1);
	f->app.cfg.db = f->uri;
	f->app.cfg.charter = f->charter;
	f->app.cfg.keys = f->keys;
	f->app.cfg.deployment = "test";
	f->app.cfg.no_background = true;
	char msg[512] = "";
	if (app_open(&f->app, msg, sizeof msg))
		fail_msg("app_open: %s", msg);
	f->holder = pgfx_connect(f->uri);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	PQfinish(f->holder);
	app_close(&f->app);
	tmpdir_remove(f->dir);
	pgfx_drop(f->db);
	free(f);
	return 0;
}

/* A settlement of two records, ids "gate:t:<n>-in/out"; resource: the
 * input record's (an unknown one is refused by the charter); quantity
 * differs between two settlements of one n only by q. */
struct job {
	struct fx *f;
	int n;
	const char *resource;
	int64_t q;
	allot_err e;
	int64_t charge;
	char reason[320];
};

static void *settle_main(void *arg)
{
	struct job *j = arg;
	struct usage_record recs[2];
	memset(recs, 0, sizeof recs);
	for (int k = 0; k < 2; k++) {
		struct usage_record *r = &recs[k];
		snprintf(r->record_id, sizeof r->record_id, "gate:t:%d-%s", j->n, k ? "out" : "in");
		snprintf(r->provider, sizeof r->provider, "local");
		snprintf(r->institution, sizeof r->institution, "epfl");
		snprintf(r->project, sizeof r->project, "climate");
		snprintf(r->member, sizeof r->member, "alice@epfl.ch");
		snprintf(r->resource, sizeof r->resource, "%s",
			 k ? "tokens_out" : j->resource ? j->resource : "tokens_in");
		snprintf(r->model, sizeof r->model, "m");
		r->quantity = j->q ? j->q : 5;
		r->end_us = time_now_us();
		r->start_us = r->end_us - 1000;
		r->kind = RECORD_USAGE;
	}
	j->e = ledger_settle_many(j->f->app.ledger, recs, 2, &j->charge, j->reason,
				  sizeof j->reason);
	for (int k = 0; k < 2; k++)
		record_release(&recs[k]);
	return NULL;
}

static int64_t one_i64(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* Waits (10 s at most) until cond(f) holds; fails the test otherwise. */
static void wait_for(struct fx *f, bool (*cond)(struct fx *f, size_t n), size_t n)
{
	int64_t t0 = time_mono_us();
	while (!cond(f, n)) {
		if (time_mono_us() - t0 > 10 * US_PER_SEC)
			fail_msg("timed out waiting for the group to form");
		usleep(2000);
	}
}

static bool lock_waiters(struct fx *f, size_t n)
{
	return one_i64(f->holder, "SELECT count(*) FROM pg_stat_activity WHERE "
				  "datname = current_database() AND wait_event_type = 'Lock'") ==
	       (int64_t)n;
}

static bool queued(struct fx *f, size_t n)
{
	return ledger_group_queued(f->app.ledger) == n;
}

/* Runs lead alone, held at the bounds row, then jobs[0..n) as one group;
 * returns the statements sent from the release on. */
static uint64_t run_group(struct fx *f, struct job *lead, struct job *jobs, size_t n)
{
	pthread_t tl, *t = calloc(n, sizeof *t);
	assert_non_null(t);
	pgfx_exec(f->holder, "BEGIN");
	pgfx_exec(f->holder, "SELECT 1 FROM ledger_bounds WHERE id = 1 FOR UPDATE");
	assert_int_equal(pthread_create(&tl, NULL, settle_main, lead), 0);
	wait_for(f, lock_waiters, 1);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_create(&t[i], NULL, settle_main, &jobs[i]), 0);
	wait_for(f, queued, n);
	uint64_t c0 = metrics_counter_get(MC_STORE_ROUNDTRIPS);
	pgfx_exec(f->holder, "COMMIT");
	pthread_join(tl, NULL);
	for (size_t i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
	assert_int_equal(lead->e, ALLOT_OK);
	return metrics_counter_get(MC_STORE_ROUNDTRIPS) - c0;
}

/* The log is contiguous and holds one leaf per record. */
static void check_log(struct fx *f, int64_t records)
{
	assert_int_equal(one_i64(f->holder, "SELECT count(*) FROM usage_records"), records);
	int64_t leaves = one_i64(f->holder, "SELECT count(*) FROM tlog_leaves_all");
	assert_int_equal(one_i64(f->holder, "SELECT coalesce(max(idx) + 1, 0) FROM tlog_leaves_all"),
			 leaves);
	assert_int_equal(one_i64(f->holder, "SELECT size FROM tlog_head"), leaves);
	assert_int_equal(one_i64(f->holder, "SELECT count(*) FROM tlog_leaves_all WHERE type = "
					    "'usage'"), records);
}

static void test_group_cost(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	int seq = 0;
	uint64_t cost[2];
	const size_t sizes[2] = {2, 10};
	int64_t booked = 0;
	for (int k = 0; k < 2; k++) {
		struct job lead = {.f = f, .n = seq++};
		struct job jobs[10];
		for (size_t i = 0; i < sizes[k]; i++)
			jobs[i] = (struct job){.f = f, .n = seq++};
		cost[k] = run_group(f, &lead, jobs, sizes[k]);
		for (size_t i = 0; i < sizes[k]; i++) {
			if (jobs[i].e)
				fail_msg("settlement %d: %s", jobs[i].n, jobs[i].reason);
			assert_int_equal(jobs[i].charge, 5 * 100 + 5 * 300);
		}
		booked += 2 * (int64_t)(sizes[k] + 1);
	}
	print_message("statements: the lone leader and a group of 2: %llu; of 10: %llu\n",
		      (unsigned long long)cost[0], (unsigned long long)cost[1]);
	/* Each settlement used to cost about five (a savepoint, its two
	 * records, its bucket charges, the release): 40 more for 10. */
	/* (One more where the group's leaves complete a stored subtree of
	 * the log: its nodes are one statement.) */
	assert_true(cost[1] <= cost[0] + 1);
	assert_true(cost[1] <= 24);
	check_log(f, booked);
}

/* Books settlement 100 alone, so that a later one of the same ids finds
 * them taken. */
static void book_taken(struct fx *f)
{
	struct job first = {.f = f, .n = 100};
	settle_main(&first);
	assert_int_equal(first.e, ALLOT_OK);
}

static void test_group_fallback(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	book_taken(f);
	struct job lead = {.f = f, .n = 1};
	struct job jobs[4] = {
		{.f = f, .n = 2},
		{.f = f, .n = 100, .q = 7},              /* its ids are taken */
		{.f = f, .n = 3, .resource = "flops"},   /* no rate */
		{.f = f, .n = 4},
	};
	run_group(f, &lead, jobs, 4);
	assert_int_equal(jobs[0].e, ALLOT_OK);
	assert_int_equal(jobs[3].e, ALLOT_OK);
	assert_int_equal(jobs[0].charge, 5 * 100 + 5 * 300);
	assert_int_equal(jobs[1].e, ALLOT_E_STORE);
	assert_string_equal(jobs[1].reason, "the ledger could not be written");
	print_message("refused: %s\n", jobs[2].reason);
	assert_int_equal(jobs[2].e, ALLOT_E_INVALID);
	assert_string_equal(jobs[2].reason, "provider \"local\" may not report resource \"flops\"");
	/* first, lead, jobs 0 and 3: two records each; the taken ids once. */
	check_log(f, 8);
	assert_int_equal(one_i64(f->holder, "SELECT quantity FROM usage_records WHERE "
					    "record_id = 'gate:t:100-in'"), 5);
	assert_int_equal(one_i64(f->holder, "SELECT count(*) FROM usage_records WHERE "
					    "record_id LIKE 'gate:t:3-%'"), 0);
}

/* A taken id alone: the batch try gets through every item and learns of
 * it only from its commit's pipeline (the records' insert fails there,
 * the server aborts the rest, the COMMIT included); the group runs again
 * and only that settlement fails. */
static void test_group_taken_id(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	book_taken(f);
	struct job lead = {.f = f, .n = 1};
	struct job jobs[3] = {{.f = f, .n = 2}, {.f = f, .n = 100, .q = 7}, {.f = f, .n = 3}};
	uint64_t cost = run_group(f, &lead, jobs, 3);
	assert_int_equal(jobs[0].e, ALLOT_OK);
	assert_int_equal(jobs[2].e, ALLOT_OK);
	assert_int_equal(jobs[1].e, ALLOT_E_STORE);
	assert_string_equal(jobs[1].reason, "the ledger could not be written");
	check_log(f, 8);
	assert_int_equal(one_i64(f->holder, "SELECT quantity FROM usage_records WHERE "
					    "record_id = 'gate:t:100-out'"), 5);
	/* The group ran twice: more than a group costs once. */
	print_message("statements with the second run: %llu\n", (unsigned long long)cost);
	assert_true(cost > 8);
}

/* The sums of rq in a transaction (a batch one: store_ledger_begin_batch),
 * checked against ledger_sum level by level, rolled back; returns the
 * statements the sums call sent. */
static uint64_t checked_sums(struct store *st, struct ledger_sum_req *rq, size_t n, bool batch)
{
	assert_int_equal(batch ? store_ledger_begin_batch(st, STORE_SYNC_FULL) : store_ledger_begin(st),
			 ALLOT_OK);
	uint64_t c0 = metrics_counter_get(MC_STORE_ROUNDTRIPS);
	assert_int_equal(store_ledger_sums(st, rq, n), ALLOT_OK);
	uint64_t cost = metrics_counter_get(MC_STORE_ROUNDTRIPS) - c0;
	for (size_t i = 0; i < n; i++) {
		int64_t one = -1;
		assert_int_equal(store_ledger_sum_q(st, &rq[i].lv, rq[i].from_us, rq[i].to_us, &one),
				 ALLOT_OK);
		assert_int_equal(rq[i].sum, one);
	}
	store_ledger_rollback(st);
	return cost;
}

/* store_ledger_sums in a transaction (one statement) answers what
 * ledger_sum answers for each level: pool, institution, project, member,
 * an open-ended range and one that holds nothing. */
static void test_sums(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	for (int i = 0; i < 3; i++) {
		struct job j = {.f = f, .n = 200 + i, .q = 5 + i};
		settle_main(&j);
		assert_int_equal(j.e, ALLOT_OK);
	}
	struct store *st = f->app.store;
	int64_t now = time_now_us(), hour = 3600 * US_PER_SEC;
	struct ledger_sum_req rq[] = {
		{{NULL, NULL, NULL}, now - hour, now + hour, -1},
		{{"epfl", NULL, NULL}, now - hour, now + hour, -1},
		{{"epfl", "climate", NULL}, now - hour, INT64_MAX, -1},
		{{"epfl", "climate", "alice@epfl.ch"}, now - hour, now + hour, -1},
		{{"epfl", "climate", "bob@epfl.ch"}, now - hour, now + hour, -1},
		{{"epfl", NULL, NULL}, now - 2 * hour, now - hour, -1},
	};
	assert_int_equal(checked_sums(st, rq, sizeof rq / sizeof rq[0], false), 1);
	/* 3 settlements of (5+i) input and output tokens at 100 and 300. */
	assert_int_equal(rq[0].sum, (5 + 6 + 7) * 400);
	assert_int_equal(rq[3].sum, (5 + 6 + 7) * 400);
	assert_int_equal(rq[4].sum, 0);
	assert_int_equal(rq[5].sum, 0);
}


static void test_sums_in_opening(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct job j = {.f = f, .n = 300, .q = 5};
	settle_main(&j);
	assert_int_equal(j.e, ALLOT_OK);
	struct store *st = f->app.store;
	int64_t now = time_now_us(), hour = 3600 * US_PER_SEC;
	struct ledger_sum_req rq[] = {
		{{"epfl", NULL, NULL}, now - hour, now + hour, -1},
		{{"epfl", "climate", NULL}, now - hour, now + hour, -1},
		{{"epfl", "climate", "alice@epfl.ch"}, now - hour, now + hour, -1},
	};
	const size_t n = sizeof rq / sizeof rq[0];
	assert_int_equal(checked_sums(st, rq, n, true), 1); /* the first: asked */
	assert_int_equal(rq[2].sum, 5 * 400);
	/* Committed in between, from another connection: counted.  (A pooled
	 * connection taken meanwhile by a background thread may lack the
	 * prepared statement: a few tries, each answering right.) */
	pgfx_exec(f->holder, "UPDATE usage_buckets SET charge = charge + 1000 WHERE "
			     "member = 'alice@epfl.ch'");
	int64_t buckets = one_i64(f->holder, "SELECT count(*) FROM usage_buckets WHERE "
					     "member = 'alice@epfl.ch'");
	uint64_t least = UINT64_MAX;
	for (int k = 0; k < 5 && least > 0; k++) {
		uint64_t cost = checked_sums(st, rq, n, true);
		least = cost < least ? cost : least;
		assert_int_equal(rq[2].sum, 5 * 400 + 1000 * buckets);
	}
	print_message("statements of the same sums in the next batch: %llu\n",
		      (unsigned long long)least);
	assert_int_equal(least, 0);
	/* Another request: asked. */
	assert_int_equal(checked_sums(st, rq, n - 1, true), 1);
}

/* Whether the bounds row is free now (the holder's NOWAIT lock, let go). */
static bool bounds_free(struct fx *f)
{
	pgfx_exec(f->holder, "BEGIN");
	PGresult *r = PQexec(f->holder, "SELECT 1 FROM ledger_bounds WHERE id = 1 FOR UPDATE NOWAIT");
	bool got = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	pgfx_exec(f->holder, "ROLLBACK");
	return got;
}

/* Whether the bounds row is taken within a few seconds: the opening is sent
 * after the commit is answered, and the server takes the row when it gets
 * there, maybe after the holder looked. */
static bool bounds_taken_soon(struct fx *f)
{
	for (int k = 0; k < 500; k++) {
		if (!bounds_free(f))
			return true;
		usleep(10000);
	}
	return false;
}

/* A batch transaction told that another group follows (store_ledger_follow)
 * opens the next one as it commits: the bounds row stays taken for it, the
 * next batch of the same class begins without a statement of its own and
 * sees the commit before; a transaction of another kind gives the opening
 * up first (no wait on its own lock), and so does closing the store. */
static void test_follow_opens_next(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct store *st = f->app.store;
	book_taken(f); /* two records booked */
	uint64_t n0 = 0, n = 0;
	uint8_t root[32];
	assert_int_equal(store_tlog_head(st, &n0, root), ALLOT_OK);
	assert_int_equal(store_ledger_begin_batch(st, STORE_SYNC_DEFERRED), ALLOT_OK);
	store_ledger_follow(st);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	assert_true(bounds_taken_soon(f)); /* taken by the next group's opening */
	/* the next batch: no statement to begin, and its bounds are current */
	pgfx_exec(f->holder, "SELECT 1"); /* (the holder's own statements are not counted) */
	uint64_t c0 = metrics_counter_get(MC_STORE_ROUNDTRIPS);
	assert_int_equal(store_ledger_begin_batch(st, STORE_SYNC_DEFERRED), ALLOT_OK);
	assert_int_equal(metrics_counter_get(MC_STORE_ROUNDTRIPS) - c0, 0);
	assert_int_equal(store_tlog_head(st, &n, root), ALLOT_OK);
	assert_int_equal(n, n0);
	store_ledger_follow(st);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	/* another kind of transaction (FULL, not a batch): the opening goes */
	assert_int_equal(store_ledger_begin_sync(st, STORE_SYNC_FULL), ALLOT_OK);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	assert_true(bounds_free(f));
	/* a settlement after all that books as ever */
	struct job one = {.f = f, .n = 7};
	settle_main(&one);
	assert_int_equal(one.e, ALLOT_OK);
	check_log(f, 4);
	/* an opening left when the store closes is rolled back */
	assert_int_equal(store_ledger_begin_batch(st, STORE_SYNC_DEFERRED), ALLOT_OK);
	store_ledger_follow(st);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	assert_true(bounds_taken_soon(f));
	app_close(&f->app);
	assert_true(bounds_free(f));
}

int main(void)
{
	log_set_quiet(true);
	pgfx_note_skips("test_pg_settle");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_group_cost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_taken_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sums, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sums_in_opening, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follow_opens_next, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
