/* test_pg_budget.c — the gate's budgets in the PostgreSQL database
 * (store/pg_budget.c, migration 0005; docs/POSTGRES.md, "Budgets in the
 * database") on a real server: reservation at every level or at none,
 * the refusing level named, settlement in the booking's transaction (and
 * undone with it), release without a booking, expiry, rows of a new
 * period starting from the ledger, the token level, concurrency and rate
 * limits, charter versions, bad input, and threads reserving (and
 * booking) at once never passing an allocation.
 *
 * The server comes from ALLOT_TEST_PG_URI (`make unit` sets it to a
 * throwaway cluster, scripts/with-pg.sh); without it the tests skip and
 * say so.  Each test works in a database of its own. */
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
#include "store/pg_int.h"
#include "store/store.h"
#include "support/pgbudget.h"
#include "support/pgfx.h"

#define T0 PGB_T0
#define DAY PGB_DAY

static int64_t reserved(struct store *st, const char *level)
{
	int64_t r = -1;
	assert_int_equal(store_budget_reserved(st, level, T0 + DAY, &r), ALLOT_OK);
	return r;
}

/* Books record id (charge) and settles reservation resv (NULL: none) at
 * that charge in one ledger transaction; commits, or rolls back. */
static allot_err book(struct store *st, const char *id, const char *resv, int64_t charge,
		      bool commit)
{
	return pgb_book(st, id, 0, 0, resv, charge, commit);
}

static void test_reserve_all_or_nothing(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	assert_true(store_has_budgets(f->st)); /* the PostgreSQL store keeps them */
	struct store_budget_req rq;
	pgb_req3(&rq, "r1", 400, 10000, 1000, 800);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	assert_int_equal(rq.lv[2].reserved, 400);
	assert_int_equal(rq.lv[2].allocation, 800);
	pgb_req3(&rq, "r2", 400, 10000, 1000, 800);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	/* The project is full: refused there, nothing taken at pool or institution. */
	pgb_req3(&rq, "r3", 1, 10000, 1000, 800);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_QUOTA);
	assert_int_equal(rq.refused, 2);
	assert_int_equal(rq.lv[2].reserved, 800);
	assert_int_equal(rq.lv[2].settled, 0);
	assert_int_equal(reserved(f->st, "*"), 800);
	assert_int_equal(reserved(f->st, "epfl"), 800);
	assert_int_equal(pgb_int(f, "SELECT count(*) FROM reservations"), 2);
	/* Exactly the room left fits after a release. */
	assert_int_equal(store_budget_settle(f->st, "r2", 0), ALLOT_OK);
	pgb_req3(&rq, "r3", 400, 10000, 1000, 800);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	/* The institution refuses before the project now. */
	pgb_req3(&rq, "r4", 300, 10000, 1000, 2000);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_QUOTA);
	assert_int_equal(rq.refused, 1);
	assert_int_equal(reserved(f->st, "*"), 800);
	/* The same id twice (where it would fit: a newer charter's
	 * allocation): refused by the store, nothing changed. */
	pgb_req3(&rq, "r1", 1, 10000, 1000, 2000);
	rq.charter_version = 2;
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_E_CONFLICT);
	assert_int_equal(reserved(f->st, "*"), 800);
	assert_int_equal(pgb_column(f, "allocation", "epfl/climate"), 800);
}

static void test_settle_with_booking(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct store_budget_req rq;
	pgb_req3(&rq, "r1", 500, 10000, 1000, 800);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	/* Rolled back: the reservation stays whole. */
	assert_int_equal(book(f->st, "gate:a-in", "r1", 300, false), ALLOT_OK);
	assert_int_equal(reserved(f->st, "epfl/climate"), 500);
	assert_int_equal(pgb_column(f, "settled", "epfl/climate"), 0);
	/* Committed: settled += 300, the other 200 released, the row gone. */
	assert_int_equal(book(f->st, "gate:a-in", "r1", 300, true), ALLOT_OK);
	for (const char *const *l = (const char *const[]){"*", "epfl", "epfl/climate", NULL}; *l;
	     l++) {
		assert_int_equal(reserved(f->st, *l), 0);
		assert_int_equal(pgb_column(f, "settled", *l), 300);
	}
	assert_int_equal(pgb_int(f, "SELECT count(*) FROM reservations"), 0);
	/* A provider's record (no reservation) counts as settled too. */
	assert_int_equal(book(f->st, "prov-1", NULL, 450, true), ALLOT_OK);
	assert_int_equal(pgb_column(f, "settled", "epfl/climate"), 750);
	pgb_req3(&rq, "r2", 51, 10000, 1000, 800);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_QUOTA);
	pgb_req3(&rq, "r2", 50, 10000, 1000, 800);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	/* Settling a reservation that is gone is no error and changes nothing. */
	assert_int_equal(store_budget_settle(f->st, "r1", 0), ALLOT_OK);
	assert_int_equal(reserved(f->st, "epfl/climate"), 50);
	/* The budget rows agree with the ledger. */
	assert_int_equal(pgb_int(f, "SELECT sum(charge) FROM usage_buckets"),
			 pgb_column(f, "settled", "*"));
}

static void test_new_period_from_ledger(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	/* Booked before any budget row exists. */
	assert_int_equal(book(f->st, "prov-1", NULL, 700, true), ALLOT_OK);
	struct store_budget_req rq;
	pgb_req3(&rq, "r1", 101, 10000, 1000, 800);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_QUOTA);
	assert_int_equal(rq.lv[2].settled, 700);
	pgb_req3(&rq, "r1", 100, 10000, 1000, 800);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	/* February is a new period: a row of its own, from February's ledger (0). */
	pgb_req3(&rq, "r2", 800, 10000, 1000, 800);
	for (size_t i = 0; i < 3; i++) {
		rq.lv[i].period_start = T0 + 31 * DAY;
		rq.lv[i].period_end = T0 + 59 * DAY;
	}
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	assert_int_equal(rq.lv[2].settled, 0);
	assert_int_equal(pgb_int(f, "SELECT count(*) FROM budgets"), 6);
}

static void test_expiry(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct store_budget_req rq;
	pgb_req3(&rq, "dead", 600, 10000, 1000, 800);
	rq.expires_us = T0 + DAY + 10;
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	pgb_req3(&rq, "live", 100, 10000, 1000, 800);
	rq.expires_us = T0 + DAY + 1000;
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	int64_t n = -1;
	/* Not before its expiry (the instant itself included). */
	assert_int_equal(store_budget_sweep(f->st, T0 + DAY + 10, false, &n), ALLOT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(reserved(f->st, "epfl/climate"), 700);
	assert_int_equal(store_budget_sweep(f->st, T0 + DAY + 11, false, &n), ALLOT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(reserved(f->st, "epfl/climate"), 100);
	assert_int_equal(reserved(f->st, "*"), 100);
	/* The dead node's settlement arriving late books, releases nothing twice. */
	assert_int_equal(book(f->st, "gate:dead-in", "dead", 250, true), ALLOT_OK);
	assert_int_equal(reserved(f->st, "epfl/climate"), 100);
	assert_int_equal(pgb_column(f, "settled", "epfl/climate"), 250);
	assert_int_equal(store_budget_sweep(f->st, T0 + DAY + 11, false, &n), ALLOT_OK);
	assert_int_equal(n, 0);
}

/* A node that died: its registration (store/pg_owner.c) is gone, so its
 * reservations go at once with `dead`; a registered node's stay. */
static void test_dead_node(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct store_budget_req rq;
	pgb_req3(&rq, "mine", 300, 10000, 1000, 800);
	rq.expires_us = INT64_MAX;
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	int64_t n = -1;
	/* Registered: kept. */
	struct store_owner *o = NULL;
	char msg[256] = "";
	assert_int_equal(store_pg_owner_acquire(f->uri, "allotd", &o, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(store_budget_sweep(f->st, T0 + DAY, true, &n), ALLOT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(reserved(f->st, "epfl/climate"), 300);
	/* Another node registers beside it (the shared form). */
	struct store_owner *o2 = NULL;
	assert_int_equal(store_pg_owner_acquire(f->uri, "allotd", &o2, msg, sizeof msg), ALLOT_OK);
	store_pg_owner_release(o2);
	/* Its registration ended: released, before its expiry. */
	store_pg_owner_release(o);
	for (int i = 0; i < 50 && n == 0; i++) {
		assert_int_equal(store_budget_sweep(f->st, T0 + DAY, true, &n), ALLOT_OK);
		if (!n)
			usleep(20000); /* the server ends the session */
	}
	assert_int_equal(n, 1);
	assert_int_equal(reserved(f->st, "epfl/climate"), 0);
	assert_int_equal(reserved(f->st, "*"), 0);
	/* An exclusive holder (allotd --fsck) is refused beside a node. */
	assert_int_equal(store_pg_owner_acquire(f->uri, "allotd", &o, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(store_pg_owner_acquire(f->uri, "allotd --fsck", &o2, msg, sizeof msg),
			 ALLOT_E_CONFLICT);
	assert_non_null(strstr(msg, "allotd nodes are running on it"));
	store_pg_owner_release(o);
}

static void test_token_level(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct store_budget_req rq;
	pgb_req3(&rq, "gate:jti1:1-1", 300, 10000, 1000, 800);
	struct store_budget_level *t = &rq.lv[rq.n++];
	snprintf(t->level, sizeof t->level, "token:jti1");
	t->period_start = INT64_MIN;
	t->period_end = INT64_MAX;
	t->cap = 500;
	t->concurrent = t->requests_per_minute = t->tokens_per_minute = STORE_BUDGET_NO_LIMIT;
	struct store_budget_req again = rq;
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	assert_int_equal(book(f->st, "gate:jti1:1-1-in", "gate:jti1:1-1", 120, true), ALLOT_OK);
	assert_int_equal(pgb_column(f, "settled", "token:jti1"), 120);
	assert_int_equal(reserved(f->st, "token:jti1"), 0);
	again.id = "gate:jti1:1-2";
	again.amount = 381; /* 120 + 381 > 500 */
	assert_int_equal(store_budget_reserve(f->st, &again), ALLOT_OK);
	assert_int_equal(again.why, STORE_BUDGET_QUOTA);
	assert_int_equal(again.refused, 3);
	assert_int_equal(reserved(f->st, "epfl"), 0);
	again.amount = 380;
	assert_int_equal(store_budget_reserve(f->st, &again), ALLOT_OK);
	assert_int_equal(again.why, STORE_BUDGET_OK);
}

static void test_limits(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct store_budget_req rq;
	char id[16];
	/* Two concurrent requests at the project; the third waits for a release. */
	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof id, "c%d", i);
		pgb_req3(&rq, id, 1, 10000, 1000, 800);
		rq.lv[2].concurrent = 2;
		assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
		assert_int_equal(rq.why, i < 2 ? STORE_BUDGET_OK : STORE_BUDGET_CONCURRENCY);
	}
	assert_int_equal(rq.refused, 2);
	assert_int_equal(rq.count, 2);
	assert_int_equal(reserved(f->st, "*"), 2);
	assert_int_equal(store_budget_settle(f->st, "c0", 0), ALLOT_OK);
	pgb_req3(&rq, "c2", 1, 10000, 1000, 800);
	rq.lv[2].concurrent = 2;
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	/* Three requests per minute at the institution, whatever the node. */
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof id, "q%d", i);
		pgb_req3(&rq, id, 1, 10000, 1000, 800);
		rq.lv[1].requests_per_minute = 3;
		assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
		assert_int_equal(rq.why, i < 3 ? STORE_BUDGET_OK : STORE_BUDGET_REQUESTS);
	}
	assert_int_equal(rq.refused, 1);
	assert_int_equal(rq.count, 3);
	/* The next minute starts over. */
	pgb_req3(&rq, "q4", 1, 10000, 1000, 800);
	rq.lv[1].requests_per_minute = 3;
	rq.window_us += 60LL * 1000000;
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	/* Tokens per minute: 10 per request, 25 per minute. */
	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof id, "t%d", i);
		pgb_req3(&rq, id, 1, 10000, 1000, 800);
		rq.lv[2].tokens_per_minute = 25;
		assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
		assert_int_equal(rq.why, i < 2 ? STORE_BUDGET_OK : STORE_BUDGET_TOKENS);
	}
	assert_int_equal(rq.count, 20);
}

static void test_charter_versions(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct store_budget_req rq;
	pgb_req3(&rq, "v1", 800, 10000, 1000, 800);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	/* Version 2 raises the project's allocation: its row follows. */
	pgb_req3(&rq, "v2", 100, 10000, 1000, 900);
	rq.charter_version = 2;
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	assert_int_equal(rq.lv[2].allocation, 900);
	/* A node still on version 1 does not take it back. */
	pgb_req3(&rq, "v3", 1, 10000, 1000, 800);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_QUOTA);
	assert_int_equal(rq.lv[2].allocation, 900);
	assert_int_equal(pgb_column(f, "allocation", "epfl/climate"), 900);
}

static void test_bad_input(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct store_budget_req rq;
	pgb_req3(&rq, "x", 1, 10000, 1000, 800);
	/* Out of the fixed order. */
	snprintf(rq.lv[0].level, sizeof rq.lv[0].level, "epfl/climate");
	snprintf(rq.lv[2].level, sizeof rq.lv[2].level, "*");
	assert_int_not_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	pgb_req3(&rq, "x", -1, 10000, 1000, 800);
	assert_int_not_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	pgb_req3(&rq, "", 1, 10000, 1000, 800);
	assert_int_not_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	pgb_req3(&rq, "x", 1, 10000, 1000, 800);
	rq.n = 0;
	assert_int_not_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	/* A level named with quotes and backslashes travels as it is. */
	pgb_req3(&rq, "y", 1, 10000, 1000, 800);
	snprintf(rq.lv[2].level, sizeof rq.lv[2].level, "epfl/a\"b\\c");
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(reserved(f->st, "epfl/a\"b\\c"), 1);
	assert_int_equal(pgb_int(f, "SELECT count(*) FROM reservations"), 1);
}

/* ---- threads reserving at once ------------------------------------------------------ */

#define THREADS 6
#define TRIES 40
#define AMOUNT 7
#define CAP 500

struct worker {
	struct store *st;
	int no;
	int admitted;
	bool booker;     /* books a record with each admission, settling it */
	allot_err err;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < TRIES && !w->err; i++) {
		char id[32];
		snprintf(id, sizeof id, "w%d-%d", w->no, i);
		struct store_budget_req rq;
		pgb_req3(&rq, id, AMOUNT, CAP * 4, CAP * 2, CAP);
		if ((w->err = store_budget_reserve(w->st, &rq)))
			break;
		if (rq.why != STORE_BUDGET_OK)
			continue;
		w->admitted++;
		if (w->booker) {
			char rid[40];
			snprintf(rid, sizeof rid, "gate:%s-in", id);
			w->err = book(w->st, rid, id, AMOUNT, true);
		}
	}
	return NULL;
}

static void test_threads_never_exceed(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct worker w[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.st = f->st, .no = i, .booker = i % 2 == 0};
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	int admitted = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].err, ALLOT_OK);
		admitted += w[i].admitted;
	}
	/* Booked or still reserved, every admission holds AMOUNT: exactly
	 * what fits, never more (240 tries for 71 places). */
	assert_int_equal(admitted, CAP / AMOUNT);
	int64_t held = pgb_column(f, "settled", "epfl/climate") + reserved(f->st, "epfl/climate");
	assert_int_equal(held, (int64_t)admitted * AMOUNT);
	assert_true(held <= CAP);
	assert_int_equal(pgb_int(f, "SELECT sum(charge) FROM usage_buckets"),
			 pgb_column(f, "settled", "epfl/climate"));
	assert_int_equal(pgb_int(f, "SELECT count(*) FROM budgets WHERE reserved < 0 "
				       "OR settled + reserved > allocation"), 0);
}

int main(void)
{
	log_set_quiet(true);
	pgfx_note_skips("test_pg_budget");
	const struct CMUnitTest tests[] = {
		PGFX_TEST(test_reserve_all_or_nothing),
		PGFX_TEST(test_settle_with_booking),
		PGFX_TEST(test_new_period_from_ledger),
		PGFX_TEST(test_expiry),
		PGFX_TEST(test_dead_node),
		PGFX_TEST(test_token_level),
		PGFX_TEST(test_limits),
		PGFX_TEST(test_charter_versions),
		PGFX_TEST(test_bad_input),
		PGFX_TEST(test_threads_never_exceed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
