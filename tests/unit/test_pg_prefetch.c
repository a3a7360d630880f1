/* test_pg_prefetch.c — the PostgreSQL store's ingestion in few round trips
 * (store/pg_prefetch.c, pg_ledger.c, pg_tlog.c; docs/POSTGRES.md,
 * "Ingestion in few round trips"), against the SQLite store, which has no
 * batch look-up (store_ledger_prefetch does nothing there) and so gives
 * the answers every store must give:
 *
 * - a batch's look-up answers ledger_find and reject_find for its ids as
 *   the database would, also for an id written after the look-up (a
 *   duplicate in the middle of a batch), for ids it did not name, and
 *   after a savepoint rolled back;
 * - the bucket charges of a transaction, written in one statement, sum per
 *   row (more keys than fit the transaction's table; two hold tags on one
 *   key);
 * - the log's nodes, written in one statement per savepoint step, give the
 *   same roots as SQLite's after savepoints rolled back across a stored
 *   level, and load again after a reopen.
 *
 * The server comes from ALLOT_TEST_PG_URI (`make unit` sets it to a
 * throwaway cluster, scripts/with-pg.sh); without it the tests skip and
 * say so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "store/pg_int.h"
#include "store/store.h"
#include "support/pgfx.h"
#include "support/sqfx.h"

static const int64_t T0 = 1767225600LL * 1000000; /* 2026-01-01T00:00:00Z */

/* The PostgreSQL store (support/pgfx) and a SQLite store beside it
 * (support/sqfx); NULL without a server. */
struct fx {
	struct pgfx *p;
	struct sqfx *s;
};

static int setup(void **state)
{
	void *p = NULL, *q = NULL;
	*state = NULL;
	pgfx_setup(&p);
	if (!p)
		return 0;
	sqfx_setup(&q);
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->p = p;
	f->s = q;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	void *p = f->p, *q = f->s;
	pgfx_teardown(&p);
	sqfx_teardown(&q);
	free(f);
	return 0;
}

/* A record of provider cscs; its hash and canonical bytes follow tag, so
 * two records of one id with different tags differ in content. */
static void fill(struct ledger_row *row, const char *id, const char *member, int64_t book_us,
		 int64_t charge, int tag)
{
	memset(row, 0, sizeof *row);
	struct usage_record *r = &row->rec;
	snprintf(r->provider, sizeof r->provider, "cscs");
	snprintf(r->record_id, sizeof r->record_id, "%s", id);
	snprintf(r->institution, sizeof r->institution, "epfl");
	snprintf(r->project, sizeof r->project, "climate");
	snprintf(r->member, sizeof r->member, "%s", member);
	snprintf(r->resource, sizeof r->resource, "gpu_seconds");
	r->quantity = 1 + charge;
	r->start_us = book_us - 1000000;
	r->end_us = book_us;
	r->canonical = tag ? "{\"record\":2}" : "{\"record\":1}";
	r->canonical_len = strlen(r->canonical);
	for (int i = 0; i < 32; i++)
		r->sha256[i] = (uint8_t)(i + tag);
	row->received_us = book_us + 5;
	row->book_us = book_us;
	row->charge_micro = charge;
	row->rate_micro = 1;
	row->charter_version = 1;
}

static allot_err put(struct store *st, const char *id, const char *member, int64_t book_us,
		     int64_t charge)
{
	struct ledger_row row;
	fill(&row, id, member, book_us, charge, 0);
	return store_ledger_insert_q(st, &row);
}

static void reject(struct store *st, const char *id, const char *why)
{
	struct ledger_rejection rj = {.received_us = T0};
	snprintf(rj.provider, sizeof rj.provider, "cscs");
	snprintf(rj.record_id, sizeof rj.record_id, "%s", id);
	snprintf(rj.reason, sizeof rj.reason, "%s", why);
	assert_int_equal(store_reject_insert(st, &rj), ALLOT_OK);
}

/* ledger_find's answer for id: ALLOT_OK with the row's charge in *charge. */
static allot_err find(struct store *st, const char *id, int64_t *charge)
{
	struct ledger_row got;
	allot_err e = store_ledger_find_q(st, "cscs", id, &got);
	if (!e) {
		*charge = got.charge_micro;
		assert_int_equal(got.rec.canonical_len, strlen("{\"record\":1}"));
		assert_memory_equal(got.rec.canonical, "{\"record\":1}", got.rec.canonical_len);
		free(got.rec.canonical);
	}
	return e;
}

static allot_err find_rej(struct store *st, const char *id, char *why, size_t whysz)
{
	struct ledger_rejection rj;
	allot_err e = store_reject_find(st, "cscs", id, &rj);
	if (!e)
		snprintf(why, whysz, "%s", rj.reason);
	return e;
}

static uint64_t log_size(struct store *st, uint8_t root[32])
{
	uint64_t n = 0;
	uint8_t r[32];
	assert_int_equal(store_tlog_head(st, &n, root ? root : r), ALLOT_OK);
	return n;
}

static int64_t sum(struct store *st, const char *member)
{
	struct ledger_level lv = {"epfl", "climate", member};
	int64_t s = -1;
	assert_int_equal(store_ledger_sum_q(st, &lv, T0 - 86400LL * 1000000,
					    T0 + 86400LL * 1000000, &s), ALLOT_OK);
	return s;
}

/* ---- the batch's look-up ------------------------------------------------------------ */

static void case_lookup(struct store *st)
{
	int64_t charge = 0;
	char why[LEDGER_REASON_MAX];
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	assert_int_equal(put(st, "b-1", "", T0, 11), ALLOT_OK);
	assert_int_equal(put(st, "b-3", "", T0, 33), ALLOT_OK);
	reject(st, "b-5", "no rate");
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	uint64_t n0 = log_size(st, NULL);

	/* one batch, as the group commit runs it: in a savepoint */
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	static const char *const ids[] = {"b-1", "b-2", "b-3", "b-2", "b-4", "b-5", "b\"\\,{x}"};
	assert_int_equal(store_ledger_prefetch(st, "cscs", ids, 7), ALLOT_OK);
	assert_int_equal(find(st, "b-1", &charge), ALLOT_OK);
	assert_int_equal(charge, 11);
	assert_int_equal(find(st, "b-3", &charge), ALLOT_OK);
	assert_int_equal(charge, 33);
	assert_int_equal(find(st, "b-2", &charge), ALLOT_E_NOT_FOUND);
	assert_int_equal(find(st, "b\"\\,{x}", &charge), ALLOT_E_NOT_FOUND);
	assert_int_equal(find_rej(st, "b-5", why, sizeof why), ALLOT_OK);
	assert_string_equal(why, "no rate");
	assert_int_equal(find_rej(st, "b-1", why, sizeof why), ALLOT_E_NOT_FOUND);
	/* another provider, ids the batch did not name */
	struct ledger_row got;
	assert_int_equal(store_ledger_find_q(st, "other", "b-1", &got), ALLOT_E_NOT_FOUND);
	assert_int_equal(find(st, "b-0", &charge), ALLOT_E_NOT_FOUND);
	/* b-2 booked in the middle of the batch, then again (a duplicate in
	 * the batch): found, and refused as a conflict */
	assert_int_equal(put(st, "b-2", "", T0, 22), ALLOT_OK);
	assert_int_equal(find(st, "b-2", &charge), ALLOT_OK);
	assert_int_equal(charge, 22);
	assert_int_equal(put(st, "b-2", "", T0, 22), ALLOT_E_CONFLICT);
	assert_int_equal(put(st, "b\"\\,{x}", "", T0, 7), ALLOT_OK);
	assert_int_equal(find(st, "b\"\\,{x}", &charge), ALLOT_OK);
	/* b-4 refused in the middle of the batch: its rejection is found */
	reject(st, "b-4", "unknown member");
	assert_int_equal(find_rej(st, "b-4", why, sizeof why), ALLOT_OK);
	assert_string_equal(why, "unknown member");
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_RELEASE), ALLOT_OK);

	/* a second batch rolled back: what it wrote is gone, and its look-up
	 * does not outlive it */
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	static const char *const ids2[] = {"b-6", "b-7"};
	assert_int_equal(store_ledger_prefetch(st, "cscs", ids2, 2), ALLOT_OK);
	assert_int_equal(put(st, "b-6", "", T0, 66), ALLOT_OK);
	assert_int_equal(find(st, "b-6", &charge), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_ROLLBACK), ALLOT_OK);
	assert_int_equal(find(st, "b-6", &charge), ALLOT_E_NOT_FOUND);
	assert_int_equal(find(st, "b-2", &charge), ALLOT_OK);
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);

	/* after the commit: b-2 and b"\,{x} once each, b-4 refused */
	assert_int_equal(log_size(st, NULL), n0 + 2);
	assert_int_equal(find(st, "b-2", &charge), ALLOT_OK);
	assert_int_equal(find_rej(st, "b-4", why, sizeof why), ALLOT_OK);
	assert_int_equal(find(st, "b-6", &charge), ALLOT_E_NOT_FOUND);
	assert_int_equal(sum(st, NULL), 11 + 33 + 22 + 7);
}

/* ---- bucket charges in one statement ------------------------------------------------- */

static void case_buckets(struct store *st)
{
	char id[32], member[32];
	int64_t want = 0, want_alice = 0;
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	/* 100 keys (past the transaction's table of 64): members x buckets */
	for (int i = 0; i < 100; i++) {
		snprintf(id, sizeof id, "k-%d", i);
		snprintf(member, sizeof member, "m%d@x", i % 10);
		assert_int_equal(put(st, id, member, T0 + (i / 10) * LEDGER_BUCKET_US, 1 + i), ALLOT_OK);
		want += 1 + i;
	}
	/* one key under two hold tags: one row, the sum of both */
	for (int t = 1; t <= 2; t++) {
		store_ledger_hold(st, (uint64_t)t);
		snprintf(id, sizeof id, "h-%d", t);
		assert_int_equal(put(st, id, "alice", T0, 1000 * t), ALLOT_OK);
		want_alice += 1000 * t;
	}
	store_ledger_hold(st, 0);
	assert_int_equal(sum(st, "alice"), want_alice); /* read inside: written first */
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
	store_ledger_release(st, 1);
	store_ledger_release(st, 2);
	assert_int_equal(sum(st, NULL), want + want_alice);
	assert_int_equal(sum(st, "alice"), want_alice);
	assert_int_equal(sum(st, "m3@x"), 4 + 14 + 24 + 34 + 44 + 54 + 64 + 74 + 84 + 94);
}

/* ---- log nodes across savepoints ------------------------------------------------------- */

static void case_nodes(struct store *st)
{
	char id[32];
	assert_int_equal(store_ledger_begin(st), ALLOT_OK);
	for (int i = 0, item = 0; i < 70; item++) {
		assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
		int k = 1 + item % 7; /* items of 1..7 records; every third rolled back */
		for (int j = 0; j < k; j++) {
			snprintf(id, sizeof id, "n-%d-%d", item, j);
			assert_int_equal(put(st, id, "", T0 + i, 1 + i), ALLOT_OK);
		}
		bool back = item % 3 == 2;
		assert_int_equal(store_ledger_savepoint_q(st, back ? STORE_SP_ROLLBACK
								   : STORE_SP_RELEASE), ALLOT_OK);
		if (!back)
			i += k;
	}
	assert_int_equal(store_ledger_commit(st), ALLOT_OK);
}

typedef void (*case_fn)(struct store *st);

/* Runs fn on both stores; the logs must be the same (size and root), and
 * the PostgreSQL one must load again from its stored nodes. */
static void both(void **state, case_fn fn)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	fn(f->s->st);
	fn(f->p->st);
	uint8_t a[32], b[32], c[32];
	uint64_t n = log_size(f->s->st, a);
	assert_int_equal(log_size(f->p->st, b), n);
	assert_memory_equal(a, b, 32);
	store_close(f->p->st);
	f->p->st = NULL;
	char msg[512] = "";
	if (store_pg_open(f->p->uri, &f->p->st, msg, sizeof msg))
		fail_msg("reopening: %s", msg);
	f->p->ps = (struct pg_store *)f->p->st;
	assert_int_equal(log_size(f->p->st, c), n);
	assert_memory_equal(a, c, 32);
	/* one more record appends to the loaded tree on both */
	assert_int_equal(store_ledger_begin(f->s->st), ALLOT_OK);
	assert_int_equal(put(f->s->st, "last", "", T0, 1), ALLOT_OK);
	assert_int_equal(store_ledger_commit(f->s->st), ALLOT_OK);
	assert_int_equal(store_ledger_begin(f->p->st), ALLOT_OK);
	assert_int_equal(put(f->p->st, "last", "", T0, 1), ALLOT_OK);
	assert_int_equal(store_ledger_commit(f->p->st), ALLOT_OK);
	assert_int_equal(log_size(f->s->st, a), n + 1);
	assert_int_equal(log_size(f->p->st, b), n + 1);
	assert_memory_equal(a, b, 32);
}

static void test_lookup(void **s) { both(s, case_lookup); }
static void test_buckets(void **s) { both(s, case_buckets); }
static void test_nodes(void **s) { both(s, case_nodes); }

/* The look-up outside a transaction is refused on PostgreSQL (it takes
 * the bounds row, which only a transaction can hold). */
static void test_outside(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	static const char *const ids[] = {"x"};
	assert_int_equal(store_ledger_prefetch(f->p->st, "cscs", ids, 1), ALLOT_E_INTERNAL);
	assert_int_equal(store_ledger_prefetch(f->s->st, "cscs", ids, 1), ALLOT_OK);
}

int main(void)
{
	log_set_quiet(true);
	pgfx_note_skips("test_pg_prefetch");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buckets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outside, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
