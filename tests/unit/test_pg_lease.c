/* test_pg_lease.c — node epochs and leases in the PostgreSQL database
 * (store/pg_lease.c, migration 0006; docs/POSTGRES.md, "Leases and
 * epochs") on a real server: a lease takes room from tier A and gives it
 * back, the fair share, top-ups, settlement under a lease in the booking's
 * transaction (and undone with it), return, expiry only after expiry +
 * grace, epoch fencing of a restarted node's leases, a node's registration
 * taken again after its session ended, and nodes (threads) taking leases,
 * spending and booking at once never passing the allocation.
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
#define SEC PGB_SEC
#define NOW PGB_NOW
#define LIVE (10 * SEC)

/* The shared fixture (support/pgfx), checked to have the lease tables. */
static int setup(void **state)
{
	int r = pgfx_setup(state);
	if (!r && *state)
		assert_true(store_has_leases(((struct pgfx *)*state)->st));
	return r;
}

/* Takes (l->id 0) or tops up a lease of want at epfl/climate (cap proj). */
static allot_err take(struct pgfx *f, const char *node, int64_t epoch, int64_t proj, int64_t want,
		      int64_t now, struct store_lease *l)
{
	struct store_budget_level lv;
	pgb_level(&lv, 2, proj);
	return store_lease_take(f->st, node, epoch, &lv, 1, want, now, now + 5 * SEC, LIVE, l);
}

/* Books record id at charge and settles it under lease (id, epoch; 0: none). */
static allot_err book(struct store *st, const char *id, int64_t lease, int64_t epoch,
		      int64_t charge, bool commit)
{
	return pgb_book(st, id, lease, epoch, NULL, charge, commit);
}

static void test_take_and_tier_a(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	int64_t ep = 0;
	assert_int_equal(store_node_start(f->st, "n1", NOW, &ep), ALLOT_OK);
	assert_int_equal(ep, 1);
	struct store_lease l = {0};
	assert_int_equal(take(f, "n1", ep, 1000, 300, NOW, &l), ALLOT_OK);
	assert_true(l.id > 0);
	assert_int_equal(l.size, 300);
	assert_int_equal(l.granted, 300);
	assert_int_equal(l.spent, 0);
	assert_int_equal(l.expires_us, NOW + 5 * SEC);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 300);
	/* The quota views see it held too (reserved + leased). */
	int64_t held = -1;
	assert_int_equal(store_budget_reserved(f->st, "epfl/climate", NOW, &held), ALLOT_OK);
	assert_int_equal(held, 300);
	/* Tier A sees the lease's room as held. */
	struct store_budget_req rq;
	pgb_req3(&rq, "r1", 701, 10000, 5000, 1000);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_QUOTA);
	assert_int_equal(rq.refused, 2);
	assert_int_equal(rq.lv[2].reserved, 300); /* reserved + leased */
	pgb_req3(&rq, "r1", 700, 10000, 5000, 1000);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	/* Nothing left: a lease is granted nothing, and none is made. */
	struct store_lease l2 = {0};
	assert_int_equal(take(f, "n1", ep, 1000, 300, NOW, &l2), ALLOT_OK);
	assert_int_equal(l2.id, 0);
	assert_int_equal(l2.granted, 0);
	assert_int_equal(pgb_int(f, "SELECT count(*) FROM leases"), 1);
	/* Bad input changes nothing. */
	struct store_lease bad = {0};
	assert_int_not_equal(take(f, "n1", ep, 1000, -1, NOW, &bad), ALLOT_OK);
	assert_int_not_equal(take(f, "", ep, 1000, 1, NOW, &bad), ALLOT_OK);
	struct store_budget_level tl;
	pgb_level(&tl, 2, 10);
	snprintf(tl.level, sizeof tl.level, "token:j1");
	assert_int_not_equal(store_lease_take(f->st, "n1", ep, &tl, 1, 1, NOW, NOW + SEC, LIVE,
					      &bad), ALLOT_OK);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 300);
}

static void test_fair_share_and_top_up(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	int64_t e1 = 0, e2 = 0, e3 = 0;
	assert_int_equal(store_node_start(f->st, "n1", NOW, &e1), ALLOT_OK);
	assert_int_equal(store_node_start(f->st, "n2", NOW, &e2), ALLOT_OK);
	/* n3 was last seen long ago: not live, not counted. */
	assert_int_equal(store_node_start(f->st, "n3", NOW - 60 * SEC, &e3), ALLOT_OK);
	struct store_lease a = {0}, b = {0};
	/* Two live nodes: at most half of what remains each. */
	assert_int_equal(take(f, "n1", e1, 1000, 900, NOW, &a), ALLOT_OK);
	assert_int_equal(a.granted, 500);
	assert_int_equal(take(f, "n2", e2, 1000, 900, NOW, &b), ALLOT_OK);
	assert_int_equal(b.granted, 250);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 750);
	/* A top-up grows the lease and moves its expiry. */
	assert_int_equal(take(f, "n1", e1, 1000, 100, NOW + SEC, &a), ALLOT_OK);
	assert_int_equal(a.granted, 100);
	assert_int_equal(a.size, 600);
	assert_int_equal(a.expires_us, NOW + 6 * SEC);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 850);
	assert_int_equal(pgb_int(f, "SELECT count(*) FROM leases"), 2);
	/* Another node's lease cannot be topped up. */
	struct store_lease x = b;
	assert_int_equal(take(f, "n1", e1, 1000, 10, NOW, &x), ALLOT_OK);
	assert_int_equal(x.id, -1);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 850);
	assert_true(pgb_column(f, "settled + reserved + leased", "epfl/climate") <= 1000);
}

static void test_settle_and_return(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	int64_t ep = 0;
	assert_int_equal(store_node_start(f->st, "n1", NOW, &ep), ALLOT_OK);
	struct store_lease l = {0};
	assert_int_equal(take(f, "n1", ep, 1000, 400, NOW, &l), ALLOT_OK);
	/* Rolled back: nothing moves. */
	assert_int_equal(book(f->st, "gate:a-in", l.id, ep, 120, false), ALLOT_OK);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 400);
	assert_int_equal(pgb_column(f, "settled", "epfl/climate"), 0);
	/* Committed: 120 moves from the lease's room to settled. */
	assert_int_equal(book(f->st, "gate:a-in", l.id, ep, 120, true), ALLOT_OK);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 280);
	assert_int_equal(pgb_column(f, "settled", "epfl/climate"), 120);
	assert_int_equal(pgb_column(f, "settled + leased", "epfl/climate"), 400);
	assert_int_equal(pgb_int(f, "SELECT spent FROM leases"), 120);
	/* Outside a ledger transaction it applies at once (no booking). */
	assert_int_equal(store_lease_settle(f->st, l.id, ep, 30), ALLOT_OK);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 250);
	assert_int_equal(pgb_int(f, "SELECT spent FROM leases"), 150);
	assert_int_not_equal(store_lease_settle(f->st, l.id, ep, -1), ALLOT_OK);
	/* Returned: size - spent comes back; twice is no lease. */
	int64_t back = 0;
	assert_int_equal(store_lease_return(f->st, l.id, "n1", ep, &back), ALLOT_OK);
	assert_int_equal(back, 250);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 0);
	assert_int_equal(store_lease_return(f->st, l.id, "n1", ep, &back), ALLOT_OK);
	assert_int_equal(back, -1);
	/* A settlement arriving after the return books, moves nothing. */
	assert_int_equal(book(f->st, "gate:b-in", l.id, ep, 40, true), ALLOT_OK);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 0);
	assert_int_equal(pgb_column(f, "settled", "epfl/climate"), 160);
	assert_int_equal(pgb_int(f, "SELECT sum(charge) FROM usage_buckets"), 160);
}

static void test_expiry_after_grace(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	int64_t ep = 0;
	assert_int_equal(store_node_start(f->st, "n1", NOW, &ep), ALLOT_OK);
	struct store_lease l = {0};
	assert_int_equal(take(f, "n1", ep, 1000, 400, NOW, &l), ALLOT_OK); /* expires NOW+5s */
	assert_int_equal(book(f->st, "gate:a-in", l.id, ep, 100, true), ALLOT_OK);
	int64_t n = -1;
	const int64_t grace = 3 * SEC;
	/* Expired, but a request admitted before its expiry may still settle. */
	assert_int_equal(store_lease_sweep(f->st, NOW + 8 * SEC, grace, &n), ALLOT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 300);
	assert_int_equal(store_lease_sweep(f->st, NOW + 8 * SEC + 1, grace, &n), ALLOT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 0);
	assert_int_equal(pgb_column(f, "settled", "epfl/climate"), 100);
	/* The whole room is back for tier A. */
	struct store_budget_req rq;
	pgb_req3(&rq, "r1", 900, 10000, 5000, 1000);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	assert_int_not_equal(store_lease_sweep(f->st, NOW, -1, &n), ALLOT_OK);
}

static void test_epoch_fencing(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	int64_t e1 = 0, e2 = 0;
	assert_int_equal(store_node_start(f->st, "n1", NOW, &e1), ALLOT_OK);
	struct store_lease l = {0};
	assert_int_equal(take(f, "n1", e1, 1000, 400, NOW, &l), ALLOT_OK);
	bool cur = false;
	assert_int_equal(store_node_heartbeat(f->st, "n1", e1, NOW, &cur), ALLOT_OK);
	assert_true(cur);
	/* The node starts again: a new epoch. */
	assert_int_equal(store_node_start(f->st, "n1", NOW + SEC, &e2), ALLOT_OK);
	assert_int_equal(e2, e1 + 1);
	assert_int_equal(store_node_heartbeat(f->st, "n1", e1, NOW + SEC, &cur), ALLOT_OK);
	assert_false(cur);
	/* The old incarnation can neither top up, nor take, nor return... */
	struct store_lease x = l;
	assert_int_equal(take(f, "n1", e1, 1000, 100, NOW + SEC, &x), ALLOT_OK);
	assert_int_equal(x.id, -1);
	struct store_lease y = {0};
	assert_int_equal(take(f, "n1", e1, 1000, 100, NOW + SEC, &y), ALLOT_OK);
	assert_int_equal(y.id, -1);
	int64_t back = 0;
	assert_int_equal(store_lease_return(f->st, l.id, "n1", e1, &back), ALLOT_OK);
	assert_int_equal(back, -1);
	/* ...nor settle under the lease: the charge books, nothing moves. */
	assert_int_equal(book(f->st, "gate:old-in", l.id, e1, 50, true), ALLOT_OK);
	assert_int_equal(pgb_column(f, "settled", "epfl/climate"), 50);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 400);
	assert_int_equal(pgb_int(f, "SELECT spent FROM leases"), 0);
	/* The new epoch cannot spend the old lease either. */
	x = l;
	assert_int_equal(take(f, "n1", e2, 1000, 100, NOW + SEC, &x), ALLOT_OK);
	assert_int_equal(x.id, -1);
	/* The fenced lease goes at its expiry + grace, whole. */
	int64_t n = 0;
	assert_int_equal(store_lease_sweep(f->st, NOW + 5 * SEC + 2, 1, &n), ALLOT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(pgb_column(f, "leased", "epfl/climate"), 0);
	/* The new epoch takes its own. */
	struct store_lease z = {0};
	assert_int_equal(take(f, "n1", e2, 1000, 100, NOW + 10 * SEC, &z), ALLOT_OK);
	assert_true(z.id > 0);
	assert_int_equal(z.granted, 100);
}

/* A node's registration taken again after its session ended (a server
 * restart ends them all; here the session is terminated). */
static void test_registration_again(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct store_owner *o = NULL;
	char msg[256] = "";
	assert_int_equal(store_pg_owner_acquire(f->uri, "allotd", &o, msg, sizeof msg), ALLOT_OK);
	assert_true(pg_node_registered());
	char name[64];
	pg_node_name(name, sizeof name);
	char sql[256];
	snprintf(sql, sizeof sql,
		 "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE "
		 "datname = current_database() AND application_name = '%s'", name);
	int64_t pid = pgb_int(f, sql);
	assert_true(pid > 0);
	struct store_budget_req rq;
	pgb_req3(&rq, "r1", 1, 10000, 5000, 1000);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	char kill[320];
	snprintf(kill, sizeof kill,
		 "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
		 "datname = current_database() AND application_name = '%s'", name);
	assert_int_equal(pgb_int(f, kill), 1);
	/* Registered again (a new session) within a few checks, and admitting. */
	int64_t seen = pid;
	for (int i = 0; i < 100 && (seen == pid || seen == 0); i++) {
		usleep(50000);
		seen = pgb_int(f, sql);
	}
	assert_true(seen != pid && seen > 0);
	for (int i = 0; i < 100 && !pg_node_registered(); i++)
		usleep(20000);
	assert_true(pg_node_registered());
	pgb_req3(&rq, "r2", 1, 10000, 5000, 1000);
	assert_int_equal(store_budget_reserve(f->st, &rq), ALLOT_OK);
	assert_int_equal(rq.why, STORE_BUDGET_OK);
	store_pg_owner_release(o);
	assert_false(pg_node_registered());
}

/* ---- nodes at once ------------------------------------------------------------------ */

#define NODES 4
#define ROUNDS 30
#define AMOUNT 7
#define CAP 500

struct worker {
	struct pgfx *f;
	int no;
	int admitted;
	allot_err err;
};

/* A node: takes a lease, admits AMOUNT from it in memory while it holds
 * enough, books each admission under it, tops up at half spent, returns
 * it at the end; odd nodes also admit by tier A between. */
static void *work(void *arg)
{
	struct worker *w = arg;
	char node[16];
	snprintf(node, sizeof node, "node%d", w->no);
	int64_t ep = 0;
	if ((w->err = store_node_start(w->f->st, node, NOW, &ep)))
		return NULL;
	struct store_lease l = {0};
	int64_t used = 0; /* admitted from the lease (all settled at once here) */
	for (int i = 0; i < ROUNDS && !w->err; i++) {
		if (l.id <= 0 || l.size - used < l.size / 2 || l.size - used < AMOUNT) {
			struct store_lease t = l.id > 0 ? l : (struct store_lease){0};
			if ((w->err = take(w->f, node, ep, CAP, 6 * AMOUNT, NOW, &t)))
				break;
			if (t.id > 0)
				l = t;
		}
		char id[40];
		if (l.id > 0 && l.size - used >= AMOUNT) {
			used += AMOUNT;
			snprintf(id, sizeof id, "gate:%s-%d", node, i);
			if (!(w->err = book(w->f->st, id, l.id, ep, AMOUNT, true)))
				w->admitted++;
		}
		if (w->no % 2 && !w->err) {
			snprintf(id, sizeof id, "a-%s-%d", node, i);
			struct store_budget_req rq;
			pgb_req3(&rq, id, AMOUNT, CAP * 4, CAP * 2, CAP);
			if (!(w->err = store_budget_reserve(w->f->st, &rq)) &&
			    rq.why == STORE_BUDGET_OK) {
				char rid[48];
				snprintf(rid, sizeof rid, "gate:%s", id);
				if (!(w->err = pgb_book(w->f->st, rid, 0, 0, id, AMOUNT, true)))
					w->admitted++;
			}
		}
	}
	int64_t back = 0;
	if (!w->err && l.id > 0)
		w->err = store_lease_return(w->f->st, l.id, node, ep, &back);
	return NULL;
}

static void test_nodes_never_exceed(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct worker w[NODES];
	pthread_t th[NODES];
	for (int i = 0; i < NODES; i++) {
		w[i] = (struct worker){.f = f, .no = i};
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	int admitted = 0;
	for (int i = 0; i < NODES; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].err, ALLOT_OK);
		admitted += w[i].admitted;
	}
	int64_t settled = pgb_column(f, "settled", "epfl/climate");
	assert_int_equal(settled, (int64_t)admitted * AMOUNT);
	assert_true(settled <= CAP);
	assert_true(admitted > 0);
	assert_int_equal(pgb_int(f, "SELECT sum(charge) FROM usage_buckets"), settled);
	assert_int_equal(pgb_int(f, "SELECT count(*) FROM leases"), 0);
	assert_int_equal(pgb_int(f, "SELECT count(*) FROM reservations"), 0);
	assert_int_equal(pgb_int(f, "SELECT count(*) FROM budgets WHERE leased <> 0 OR reserved <> 0 "
				  "OR settled + reserved + leased > allocation"), 0);
}

int main(void)
{
	log_set_quiet(true);
	pgfx_note_skips("test_pg_lease");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_take_and_tier_a, setup, pgfx_teardown),
		cmocka_unit_test_setup_teardown(test_fair_share_and_top_up, setup, pgfx_teardown),
		cmocka_unit_test_setup_teardown(test_settle_and_return, setup, pgfx_teardown),
		cmocka_unit_test_setup_teardown(test_expiry_after_grace, setup, pgfx_teardown),
		cmocka_unit_test_setup_teardown(test_epoch_fencing, setup, pgfx_teardown),
		cmocka_unit_test_setup_teardown(test_registration_again, setup, pgfx_teardown),
		cmocka_unit_test_setup_teardown(test_nodes_never_exceed, setup, pgfx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
