/* test_pg_ledger.c — the ledger and the transparency log of the PostgreSQL
 * store (store/pg_ledger*.c, store/pg_tlog.c) on a real server, against
 * the same expectations as the SQLite store: one case list runs on both
 * (round trip of a record, duplicates, sums through the cache, net and
 * voids, savepoints, bounds refusals, holds, token spend, rollbacks), and
 * the same entries give the same log roots and proofs on both.  Then what
 * only PostgreSQL has: two threads booking into one store at once (leaves
 * contiguous, in commit order, sums and bounds exact), a failed statement
 * inside a transaction, and the durability classes (DEFERRED commits
 * with synchronous_commit off, flushed within the interval).
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
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "store/pg_int.h"
#include "store/store.h"
#include "tlog/merkle.h"
#include "support/pgfx.h"

static const int64_t T0 = 1767225600LL * 1000000; /* 2026-01-01T00:00:00Z */
static const int64_t BUCKET = LEDGER_BUCKET_US;

struct fx {
	char db[64];
	char uri[1024];
	char path[64];          /* the SQLite store beside it */
	struct store *pg, *sq;
	bool wired;             /* the test opened the ledger and log of pg */
};

/* Until store/pg_store.c opens the ledger and the log and lists their
 * operations (it will once it has them: pgstore merges this branch), the
 * test wires them into a copy of its table. */
static struct store_ops wired_ops;

static bool wire(struct store *st)
{
	struct pg_store *ps = (struct pg_store *)st;
	if (st->ops->ledger_begin)
		return false;
	static const struct store_ops mine = {PG_LEDGER_OPS PG_TLOG_OPS};
	struct store_ops *o = &wired_ops;
	*o = *st->ops;
	o->ledger_begin = mine.ledger_begin;
	o->ledger_begin_sync = mine.ledger_begin_sync;
	o->ledger_commit = mine.ledger_commit;
	o->ledger_rollback = mine.ledger_rollback;
	o->ledger_savepoint = mine.ledger_savepoint;
	o->ledger_find = mine.ledger_find;
	o->ledger_insert = mine.ledger_insert;
	o->ledger_sum = mine.ledger_sum;
	o->ledger_net = mine.ledger_net;
	o->ledger_hold = mine.ledger_hold;
	o->ledger_release = mine.ledger_release;
	o->token_spent = mine.token_spent;
	o->set_flush_ms = mine.set_flush_ms;
	o->flush = mine.flush;
	o->sync_stats = mine.sync_stats;
	o->set_wal_limit = mine.set_wal_limit;
	o->ledger_list = mine.ledger_list;
	o->ledger_report = mine.ledger_report;
	o->ledger_seq_status = mine.ledger_seq_status;
	o->ledger_buckets = mine.ledger_buckets;
	o->tlog_entries = mine.tlog_entries;
	o->tlog_head = mine.tlog_head;
	o->tlog_root_at = mine.tlog_root_at;
	o->tlog_inclusion = mine.tlog_inclusion;
	o->tlog_consistency = mine.tlog_consistency;
	o->tlog_leaf_of = mine.tlog_leaf_of;
	o->tlog_set_enabled = mine.tlog_set_enabled;
	char msg[512] = "";
	if (pg_tlog_open(ps, msg, sizeof msg) || pg_ledger_open(ps, msg, sizeof msg))
		fail_msg("opening the ledger: %s", msg);
	st->ops = o;
	return true;
}

static void unwire_close(struct store *st, bool wired)
{
	if (wired) {
		pg_ledger_close((struct pg_store *)st);
		pg_tlog_close((struct pg_store *)st);
	}
	store_close(st);
}

static struct store *pg_open(struct fx *f)
{
	struct store *st = NULL;
	char msg[512] = "";
	if (store_pg_open(f->uri, &st, msg, sizeof msg))
		fail_msg("store_pg_open: %s", msg);
	f->wired = wire(st);
	return st;
}

/* Audit entries too once store/pg_store.c logs them (it wires the log). */
#define AUDITS(f) (!(f)->wired)

static int setup(void **state)
{
	if (!pgfx_server()) {
		*state = NULL;
		return 0;
	}
	static int n;
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	pgfx_create(f->db, sizeof f->db, f->uri, sizeof f->uri);
	f->pg = pg_open(f);
	char msg[512] = "";
	snprintf(f->path, sizeof f->path, "/tmp/allot-pgl-%d-%d.db", (int)getpid(), n++);
	unlink(f->path);
	if (store_sqlite_open(f->path, &f->sq, msg, sizeof msg))
		fail_msg("store_sqlite_open: %s", msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	unwire_close(f->pg, f->wired);
	store_close(f->sq);
	char p[96];
	unlink(f->path);
	snprintf(p, sizeof p, "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", f->path);
	unlink(p);
	pgfx_drop(f->db);
	free(f);
	return 0;
}

/* A record: n names it, the rest as given (member "" = none). */
static void fill(struct ledger_row *row, const char *id, const char *inst, const char *proj,
		 const char *member, int64_t quantity, int64_t book_us, int64_t charge)
{
	memset(row, 0, sizeof *row);
	struct usage_record *r = &row->rec;
	snprintf(r->provider, sizeof r->provider, "cscs");
	snprintf(r->record_id, sizeof r->record_id, "%s", id);
	snprintf(r->institution, sizeof r->institution, "%s", inst);
	snprintf(r->project, sizeof r->project, "%s", proj);
	snprintf(r->member, sizeof r->member, "%s", member);
	snprintf(r->resource, sizeof r->resource, "gpu_seconds");
	r->quantity = quantity;
	r->start_us = book_us - 1000000;
	r->end_us = book_us;
	r->canonical = "{\"record\":1}";
	r->canonical_len = strlen(r->canonical);
	for (int i = 0; i < 32; i++)
		r->sha256[i] = (uint8_t)(i + (int)strlen(id));
	row->received_us = book_us + 5;
	row->book_us = book_us;
	row->charge_micro = charge;
	row->rate_micro = 100;
	row->charter_version = 1;
}

/* The test's open transaction, if any (its wrappers keep it). */
static _Thread_local bool intx;

static allot_err tbegin(struct store *st, enum store_sync sync)
{
	allot_err e = store_ledger_begin_sync(st, sync);
	intx = e == ALLOT_OK;
	return e;
}

static allot_err tcommit(struct store *st)
{
	intx = false;
	return store_ledger_commit(st);
}

static void trollback(struct store *st)
{
	intx = false;
	store_ledger_rollback(st);
}

/* Books row: in the open transaction, else in one of its own (a record's
 * log leaf needs its transaction on SQLite). */
static allot_err ins(struct store *st, struct ledger_row *row)
{
	if (intx)
		return store_ledger_insert_q(st, row);
	allot_err e = store_ledger_begin(st);
	if (e)
		return e;
	if ((e = store_ledger_insert_q(st, row))) {
		store_ledger_rollback(st);
		return e;
	}
	return store_ledger_commit(st);
}

static allot_err book(struct store *st, const char *id, const char *member, int64_t qty,
		      int64_t book_us, int64_t charge)
{
	struct ledger_row row;
	fill(&row, id, "epfl", "climate", member, qty, book_us, charge);
	return ins(st, &row);
}

static int64_t sum(struct store *st, const char *inst, const char *proj, const char *member)
{
	struct ledger_level lv = {inst, proj, member};
	int64_t s = -1;
	assert_int_equal(store_ledger_sum_q(st, &lv, T0, T0 + 86400LL * 1000000, &s), ALLOT_OK);
	return s;
}

static uint64_t log_size(struct store *st)
{
	uint64_t n = 0;
	uint8_t root[32];
	assert_int_equal(store_tlog_head(st, &n, root), ALLOT_OK);
	return n;
}

/* ---- the case list, run on each store -------------------------------------------- */

static void case_round_trip(struct store *st)
{
	struct ledger_row row, got;
	fill(&row, "r-1", "epfl", "climate", "alice@epfl.ch", 3600, T0 + 10, 250000);
	row.rec.has_seq = true;
	row.rec.seq = 7;
	row.late = true;
	row.overage = true;
	snprintf(row.rec.model, sizeof row.rec.model, "llama");
	assert_int_equal(ins(st, &row), ALLOT_OK);
	assert_true(row.row_id > 0);
	assert_int_equal(store_ledger_find_q(st, "cscs", "r-1", &got), ALLOT_OK);
	assert_int_equal(got.row_id, row.row_id);
	assert_true(got.rec.has_seq);
	assert_int_equal(got.rec.seq, 7);
	assert_string_equal(got.rec.member, "alice@epfl.ch");
	assert_string_equal(got.rec.model, "llama");
	assert_string_equal(got.rec.cls, "");
	assert_string_equal(got.rec.supersedes, "");
	assert_int_equal(got.rec.kind, RECORD_USAGE);
	assert_int_equal(got.rec.adjustment, ADJ_NONE);
	assert_int_equal(got.rec.quantity, 3600);
	assert_int_equal(got.book_us, T0 + 10);
	assert_int_equal(got.received_us, T0 + 15);
	assert_int_equal(got.charge_micro, 250000);
	assert_true(got.late && got.overage && !got.from_gate);
	assert_int_equal(got.rec.canonical_len, row.rec.canonical_len);
	assert_memory_equal(got.rec.canonical, row.rec.canonical, row.rec.canonical_len);
	assert_memory_equal(got.rec.sha256, row.rec.sha256, 32);
	free(got.rec.canonical);
	int64_t leaf = -1;
	assert_int_equal(store_tlog_leaf_of(st, "usage", row.row_id, &leaf), ALLOT_OK);
	assert_int_equal(leaf, 0);
	assert_int_equal(store_ledger_find_q(st, "cscs", "r-2", &got), ALLOT_E_NOT_FOUND);
	assert_int_equal(store_ledger_find_q(st, "other", "r-1", &got), ALLOT_E_NOT_FOUND);
}

static void case_duplicate(struct store *st)
{
	assert_int_equal(book(st, "d-1", "", 10, T0, 1000), ALLOT_OK);
	int64_t s = sum(st, "epfl", NULL, NULL);
	uint64_t n = log_size(st);
	assert_int_equal(book(st, "d-1", "", 10, T0, 5), ALLOT_E_CONFLICT);
	assert_int_equal(sum(st, "epfl", NULL, NULL), s);
	assert_int_equal(log_size(st), n);
	/* inside a transaction the conflict leaves the transaction usable */
	assert_int_equal(tbegin(st, STORE_SYNC_FULL), ALLOT_OK);
	assert_int_equal(book(st, "d-1", "", 10, T0, 5), ALLOT_E_CONFLICT);
	assert_int_equal(book(st, "d-2", "", 10, T0, 7), ALLOT_OK);
	assert_int_equal(tcommit(st), ALLOT_OK);
	assert_int_equal(sum(st, "epfl", NULL, NULL), s + 7);
	assert_int_equal(log_size(st), n + 1);
}

static void case_sums(struct store *st)
{
	assert_int_equal(book(st, "s-1", "alice", 1, T0, 100), ALLOT_OK);
	assert_int_equal(book(st, "s-2", "bob", 1, T0 + BUCKET, 20), ALLOT_OK);
	struct ledger_row row;
	fill(&row, "s-3", "epfl", "other", "", 1, T0 + 2 * BUCKET, 3);
	assert_int_equal(ins(st, &row), ALLOT_OK);
	fill(&row, "s-4", "ethz", "x", "", 1, T0, 4000);
	assert_int_equal(ins(st, &row), ALLOT_OK);
	for (int pass = 0; pass < 2; pass++) { /* the second one from the cache */
		assert_int_equal(sum(st, NULL, NULL, NULL), 4123);
		assert_int_equal(sum(st, "epfl", NULL, NULL), 123);
		assert_int_equal(sum(st, "epfl", "climate", NULL), 120);
		assert_int_equal(sum(st, "epfl", "climate", "bob"), 20);
	}
	/* a range of buckets: only [T0 + BUCKET, T0 + 2 BUCKET) */
	struct ledger_level lv = {"epfl", NULL, NULL};
	int64_t s = 0;
	assert_int_equal(store_ledger_sum_q(st, &lv, T0 + BUCKET, T0 + 2 * BUCKET, &s), ALLOT_OK);
	assert_int_equal(s, 20);
	/* the cached sums follow new rows, committed or rolled back */
	assert_int_equal(book(st, "s-5", "bob", 1, T0 + 3, 5), ALLOT_OK);
	assert_int_equal(tbegin(st, STORE_SYNC_FULL), ALLOT_OK);
	assert_int_equal(book(st, "s-6", "bob", 1, T0 + 3, 1000000), ALLOT_OK);
	assert_int_equal(sum(st, "epfl", "climate", "bob"), 1000025); /* inside: its own rows */
	trollback(st);
	assert_int_equal(sum(st, "epfl", "climate", "bob"), 25);
	assert_int_equal(sum(st, NULL, NULL, NULL), 4128);
	assert_int_equal(store_ledger_find_q(st, "cscs", "s-6", &row), ALLOT_E_NOT_FOUND);
}

static void case_net(struct store *st)
{
	assert_int_equal(book(st, "n-1", "", 10, T0, 1000), ALLOT_OK);
	struct ledger_row row;
	fill(&row, "n-1-credit", "epfl", "climate", "", 2, T0, -200);
	row.rec.kind = RECORD_ADJUSTMENT;
	row.rec.adjustment = ADJ_CREDIT;
	snprintf(row.rec.supersedes, sizeof row.rec.supersedes, "n-1");
	assert_int_equal(ins(st, &row), ALLOT_OK);
	int64_t net = 0;
	bool voided = true;
	assert_int_equal(store_ledger_net_q(st, "cscs", "n-1", &net, &voided), ALLOT_OK);
	assert_int_equal(net, 800);
	assert_false(voided);
	fill(&row, "n-1-void", "epfl", "climate", "", 8, T0, -800);
	row.rec.kind = RECORD_VOID;
	snprintf(row.rec.supersedes, sizeof row.rec.supersedes, "n-1");
	assert_int_equal(ins(st, &row), ALLOT_OK);
	assert_int_equal(store_ledger_net_q(st, "cscs", "n-1", &net, &voided), ALLOT_OK);
	assert_int_equal(net, 0);
	assert_true(voided);
	assert_int_equal(store_ledger_net_q(st, "cscs", "none", &net, &voided), ALLOT_OK);
	assert_int_equal(net, 0);
	assert_false(voided);
	assert_int_equal(store_ledger_find_q(st, "cscs", "n-1-void", &row), ALLOT_OK);
	assert_int_equal(row.rec.kind, RECORD_VOID);
	assert_string_equal(row.rec.supersedes, "n-1");
	free(row.rec.canonical);
}

static void case_savepoints(struct store *st)
{
	uint64_t n0 = log_size(st);
	assert_int_equal(tbegin(st, STORE_SYNC_FULL), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	assert_int_equal(book(st, "p-1", "", 1, T0, 10), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_RELEASE), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	assert_int_equal(book(st, "p-2", "", 1, T0, 200), ALLOT_OK);
	assert_int_equal(book(st, "p-3", "", 1, T0, 3000), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_ROLLBACK), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	assert_int_equal(book(st, "p-4", "", 1, T0, 40000), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_RELEASE), ALLOT_OK);
	assert_int_equal(tcommit(st), ALLOT_OK);
	assert_int_equal(sum(st, "epfl", "climate", NULL), 40010);
	struct ledger_row row;
	assert_int_equal(store_ledger_find_q(st, "cscs", "p-2", &row), ALLOT_E_NOT_FOUND);
	assert_int_equal(store_ledger_find_q(st, "cscs", "p-4", &row), ALLOT_OK);
	free(row.rec.canonical);
	int64_t leaf = -1;
	assert_int_equal(store_tlog_leaf_of(st, "usage", row.row_id, &leaf), ALLOT_OK);
	assert_int_equal((uint64_t)leaf, n0 + 1); /* contiguous: p-1 then p-4 */
	assert_int_equal(log_size(st), n0 + 2);
	/* a first savepoint rolled back entirely: the transaction goes on */
	assert_int_equal(tbegin(st, STORE_SYNC_FULL), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	assert_int_equal(book(st, "p-5", "", 1, T0, 5), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_ROLLBACK), ALLOT_OK);
	assert_int_equal(book(st, "p-6", "", 1, T0, 6), ALLOT_OK);
	assert_int_equal(tcommit(st), ALLOT_OK);
	assert_int_equal(sum(st, "epfl", "climate", NULL), 40016);
	assert_int_equal(log_size(st), n0 + 3);
}

static void case_bounds(struct store *st)
{
	assert_int_equal(book(st, "b-1", "", 1, T0, INT64_MAX - 100), ALLOT_OK);
	assert_int_equal(book(st, "b-2", "", 1, T0, -5), ALLOT_OK); /* credits do not count */
	uint64_t n = log_size(st);
	assert_int_equal(book(st, "b-3", "", 1, T0, 101), ALLOT_E_TOO_LARGE);
	assert_non_null(strstr(st->errmsg, "total of charges"));
	struct ledger_row row;
	assert_int_equal(store_ledger_find_q(st, "cscs", "b-3", &row), ALLOT_E_NOT_FOUND);
	assert_int_equal(log_size(st), n);
	/* inside one transaction: its own rows count, and a savepoint's undo too */
	assert_int_equal(tbegin(st, STORE_SYNC_FULL), ALLOT_OK);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_BEGIN), ALLOT_OK);
	assert_int_equal(book(st, "b-4", "", 1, T0, 60), ALLOT_OK);
	assert_int_equal(book(st, "b-5", "", 1, T0, 60), ALLOT_E_TOO_LARGE);
	assert_int_equal(store_ledger_savepoint_q(st, STORE_SP_ROLLBACK), ALLOT_OK);
	assert_int_equal(book(st, "b-6", "", 1, T0, 100), ALLOT_OK);
	assert_int_equal(tcommit(st), ALLOT_OK);
	assert_int_equal(book(st, "b-7", "", 1, T0, 1), ALLOT_E_TOO_LARGE);
	assert_int_equal(book(st, "b-8", "", 1, T0, 0), ALLOT_OK);
	/* quantities */
	assert_int_equal(book(st, "b-9", "", INT64_MAX - 3, T0, 0), ALLOT_E_TOO_LARGE); /* 4 booked */
	assert_non_null(strstr(st->errmsg, "total of quantities"));
	assert_int_equal(book(st, "b-10", "", INT64_MAX - 20, T0, 0), ALLOT_OK);
	assert_int_equal(sum(st, "epfl", NULL, NULL), INT64_MAX - 5);
}

static void case_hold(struct store *st)
{
	assert_int_equal(book(st, "h-1", "", 1, T0, 10), ALLOT_OK);
	assert_int_equal(sum(st, "epfl", "climate", NULL), 10); /* cached */
	assert_int_equal(tbegin(st, STORE_SYNC_FULL), ALLOT_OK);
	store_ledger_hold(st, 42);
	assert_int_equal(book(st, "h-2", "", 1, T0, 500), ALLOT_OK);
	store_ledger_hold(st, 0);
	assert_int_equal(tcommit(st), ALLOT_OK);
	/* Held out of the cached sums, where the gate's reservations are in
	 * memory (SQLite).  PostgreSQL reads sums from the database (several
	 * nodes book into it) and its gate admits from the budget rows, which
	 * settle in the booking's transaction: nothing to hold. */
	assert_int_equal(sum(st, "epfl", "climate", NULL), store_has_budgets(st) ? 510 : 10);
	store_ledger_release(st, 42);
	assert_int_equal(sum(st, "epfl", "climate", NULL), 510);
}

static void case_token_spent(struct store *st)
{
	struct ledger_row row;
	const char *ids[] = {"gate:j1:a", "gate:j1:b", "gate:j10:a", "gate:j1", "gate:j2:a"};
	for (int i = 0; i < 5; i++) {
		fill(&row, ids[i], "epfl", "climate", "", 1, T0, 1 << i);
		row.from_gate = true;
		snprintf(row.rec.provider, sizeof row.rec.provider, "%s", i == 1 ? "zz" : "gate");
		assert_int_equal(ins(st, &row), ALLOT_OK);
	}
	fill(&row, "gate:j1:c", "epfl", "climate", "", 1, T0, 1000); /* a provider's record */
	assert_int_equal(ins(st, &row), ALLOT_OK);
	int64_t spent = -1;
	assert_int_equal(store_token_spent(st, "j1", &spent), ALLOT_OK);
	assert_int_equal(spent, 3);
	assert_int_equal(store_token_spent(st, "j10", &spent), ALLOT_OK);
	assert_int_equal(spent, 4);
	assert_int_equal(store_token_spent(st, "nobody", &spent), ALLOT_OK);
	assert_int_equal(spent, 0);
}

typedef void (*case_fn)(struct store *st);

static void both(void **state, case_fn fn)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	fn(f->sq);
	fn(f->pg);
}

static void test_round_trip(void **s) { both(s, case_round_trip); }
static void test_duplicate(void **s) { both(s, case_duplicate); }
static void test_sums(void **s) { both(s, case_sums); }
static void test_net(void **s) { both(s, case_net); }
static void test_savepoints(void **s) { both(s, case_savepoints); }
static void test_bounds(void **s) { both(s, case_bounds); }
static void test_hold(void **s) { both(s, case_hold); }
static void test_token_spent(void **s) { both(s, case_token_spent); }

/* ---- the reads: lists, reports, sequence status, log entries ---------------------------
 * Each is rendered as text, field by field, on both stores and compared. */

struct text {
	char *s;
	size_t len, cap;
};

static void tx_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tx_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (t->len + (size_t)n + 1 > t->cap) {
		t->cap = 2 * (t->len + (size_t)n + 1);
		t->s = realloc(t->s, t->cap);
		assert_non_null(t->s);
	}
	va_start(ap, fmt);
	vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

static void hex(struct text *t, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tx_printf(t, "%02x", p[i]);
}

static void row_text(struct text *t, const struct ledger_row *w)
{
	const struct usage_record *r = &w->rec;
	tx_printf(t, "%lld %s %s %d:%lld %d %d [%s] %s %s [%s] %s [%s] [%s] %lld %lld %lld %lld "
		  "%lld %d %lld %lld %lld %d %d %.*s ", (long long)w->row_id, r->provider,
		  r->record_id, r->has_seq, (long long)r->seq, r->kind, r->adjustment, r->supersedes,
		  r->institution, r->project, r->member, r->resource, r->cls, r->model,
		  (long long)r->quantity, (long long)r->start_us, (long long)r->end_us,
		  (long long)w->received_us, (long long)w->book_us, w->late,
		  (long long)w->charter_version, (long long)w->rate_micro,
		  (long long)w->charge_micro, w->overage, w->from_gate, (int)r->canonical_len,
		  r->canonical);
	hex(t, r->sha256, 32);
}

static void list_fn(void *ctx, const struct ledger_row *row, int64_t leaf)
{
	row_text(ctx, row);
	tx_printf(ctx, " leaf %lld\n", (long long)leaf);
}

static void report_fn(void *ctx, const struct ledger_report_row *r)
{
	for (size_t g = 0; g < LEDGER_GROUP_MAX && r->group[g]; g++)
		tx_printf(ctx, "%s|", r->group[g]);
	tx_printf(ctx, "%lld %lld %lld %lld\n", (long long)r->bucket_us, (long long)r->charge,
		  (long long)r->quantity, (long long)r->records);
}

static void entry_fn(void *ctx, const struct tlog_entry_row *e)
{
	struct text *t = ctx;
	tx_printf(t, "%llu %s %lld %s %d ", (unsigned long long)e->leaf_index, e->type,
		  (long long)e->ref, e->name ? e->name : "-", e->has_leaf_hash);
	hex(t, e->leaf_hash, 32);
	if (e->usage)
		row_text(t, e->usage);
	if (e->audit)
		tx_printf(t, " audit %lld %lld %s %s %s %s", (long long)e->audit_id,
			  (long long)e->audit->at, e->audit->actor, e->audit->action,
			  e->audit->target ? e->audit->target : "-",
			  e->audit->detail ? e->audit->detail : "-");
	tx_printf(t, "\n");
}

/* The dataset: two providers with sequences (gaps, repeats), records of
 * several institutions, projects, members, models and buckets, an
 * adjustment and a void; no duplicate (PostgreSQL's ids would move on). */
static void read_data(struct store *st, bool audits)
{
	static const int64_t seqs[] = {1, 2, 2, 3, 7, 8, 8, 8, 12, 20, 21, 21, 30};
	struct ledger_row row;
	char id[32];
	assert_int_equal(tbegin(st, STORE_SYNC_FULL), ALLOT_OK);
	for (int i = 0; i < 13; i++) {
		snprintf(id, sizeof id, "q-%02d", i);
		fill(&row, id, i % 3 ? "epfl" : "ethz", i % 2 ? "climate" : "bio",
		     i % 4 ? "alice@epfl.ch" : "", 1 + i, T0 + i * (BUCKET / 3), 100 * (i + 1));
		row.rec.has_seq = true;
		row.rec.seq = seqs[i];
		snprintf(row.rec.model, sizeof row.rec.model, "%s", i % 5 ? "llama" : "");
		assert_int_equal(ins(st, &row), ALLOT_OK);
	}
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof id, "k-%d", i);
		fill(&row, id, "epfl", "climate", "bob", 5, T0 + i, 7);
		snprintf(row.rec.provider, sizeof row.rec.provider, "kube");
		row.rec.has_seq = i != 2;
		row.rec.seq = 10 * i;
		assert_int_equal(ins(st, &row), ALLOT_OK);
	}
	fill(&row, "q-01-credit", "epfl", "climate", "alice@epfl.ch", 1, T0 + 5, -50);
	row.rec.kind = RECORD_ADJUSTMENT;
	row.rec.adjustment = ADJ_CREDIT;
	snprintf(row.rec.supersedes, sizeof row.rec.supersedes, "q-01");
	assert_int_equal(ins(st, &row), ALLOT_OK);
	fill(&row, "q-02-void", "epfl", "bio", "alice@epfl.ch", 3, T0 + 6, -300);
	row.rec.kind = RECORD_VOID;
	snprintf(row.rec.supersedes, sizeof row.rec.supersedes, "q-02");
	assert_int_equal(ins(st, &row), ALLOT_OK);
	fill(&row, "gate:j:1", "epfl", "climate", "alice@epfl.ch", 9, T0 + 7, 11);
	row.from_gate = true;
	snprintf(row.rec.provider, sizeof row.rec.provider, "cscs");
	assert_int_equal(ins(st, &row), ALLOT_OK);
	assert_int_equal(tcommit(st), ALLOT_OK);
	struct audit_entry a = {.at = T0, .actor = "admin", .action = "key.create", .target = "k",
				.detail = "{\"x\":1}"};
	if (audits)
		assert_int_equal(store_audit_append(st, &a), ALLOT_OK);
}

static char *list_text(struct store *st, const struct ledger_filter *f)
{
	struct text t = {NULL, 0, 0};
	tx_printf(&t, "%s", "");
	assert_int_equal(store_ledger_list_q(st, f, list_fn, &t), ALLOT_OK);
	return t.s;
}

static char *report_text(struct store *st, const struct ledger_filter *f, const char *const *g,
			 size_t ng, bool by_bucket)
{
	struct text t = {NULL, 0, 0};
	tx_printf(&t, "%s", "");
	assert_int_equal(store_ledger_report_rows(st, f, g, ng, by_bucket, report_fn, &t),
			 ALLOT_OK);
	return t.s;
}

static char *seq_text(struct store *st, const char *provider, int64_t after, int limit)
{
	struct ledger_seq_status s;
	assert_int_equal(store_ledger_seq_status(st, provider, after, limit, &s), ALLOT_OK);
	struct text t = {NULL, 0, 0};
	tx_printf(&t, "%lld %lld %lld %lld %lld %lld %lld next %d %lld gaps", (long long)s.records,
		  (long long)s.with_seq, (long long)s.min_seq, (long long)s.max_seq,
		  (long long)s.gap_count, (long long)s.missing, (long long)s.repeat_count,
		  s.has_next, (long long)(s.has_next ? s.next : 0));
	for (size_t i = 0; i < s.ngaps; i++)
		tx_printf(&t, " %lld-%lld", (long long)s.gaps[i].from, (long long)s.gaps[i].to);
	tx_printf(&t, " repeats");
	for (size_t i = 0; i < s.nrepeats; i++)
		tx_printf(&t, " %lld", (long long)s.repeats[i]);
	ledger_seq_status_release(&s);
	return t.s;
}

#define SAME(f, expr_sq, expr_pg)                                                         \
	do {                                                                              \
		char *a_ = (expr_sq), *b_ = (expr_pg);                                     \
		assert_string_equal(b_, a_);                                              \
		free(a_);                                                                 \
		free(b_);                                                                 \
	} while (0)

static void test_list_same(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	read_data(f->sq, AUDITS(f));
	read_data(f->pg, AUDITS(f));
	struct ledger_filter flt[] = {
		{.limit = 1000},
		{.limit = 3},
		{.after_id = 4, .limit = 5},
		{.institution = "epfl", .limit = 100},
		{.institution = "epfl", .project = "climate", .member = "alice@epfl.ch", .limit = 100},
		{.provider = "kube", .limit = 100},
		{.model = "llama", .resource = "gpu_seconds", .limit = 100},
		{.kind = "void", .limit = 100},
		{.from_us = T0 + BUCKET, .to_us = T0 + 3 * BUCKET, .limit = 100},
		{.institution = "nobody", .limit = 100},
	};
	for (size_t i = 0; i < sizeof flt / sizeof *flt; i++)
		SAME(f, list_text(f->sq, &flt[i]), list_text(f->pg, &flt[i]));
	char *all = list_text(f->pg, &flt[0]);
	assert_non_null(strstr(all, "q-02-void"));
	assert_non_null(strstr(all, "gate:j:1"));
	free(all);
}

/* An institution's records at the edges of the 2^30 µs spans that
 * PostgreSQL's index keys them by (migration 0009: the statements bound
 * the spans beside book_us): every period whose ends fall on, before or
 * after an edge lists and reports the same rows as SQLite. */
static void test_span_edges_same(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	const int64_t edge = ((T0 >> 30) + 1) << 30, d[] = {-2, -1, 0, 1};
	struct store *st[2] = {f->sq, f->pg};
	for (int s = 0; s < 2; s++) {
		struct ledger_row row;
		char id[32];
		for (size_t i = 0; i < sizeof d / sizeof *d; i++) {
			snprintf(id, sizeof id, "edge-%zu", i);
			fill(&row, id, "epfl", "climate", "", 1, edge + d[i], 10 * (int64_t)(i + 1));
			assert_int_equal(ins(st[s], &row), ALLOT_OK);
		}
		fill(&row, "other", "ethz", "bio", "", 1, edge, 5);
		assert_int_equal(ins(st[s], &row), ALLOT_OK);
	}
	const char *g1[] = {"institution"};
	int periods = 0;
	for (int64_t a = -3; a <= 2; a++)
		for (int64_t b = a + 1; b <= 3; b++) {
			struct ledger_filter flt = {.institution = "epfl", .from_us = edge + a,
						    .to_us = edge + b, .limit = 100};
			SAME(f, list_text(f->sq, &flt), list_text(f->pg, &flt));
			SAME(f, report_text(f->sq, &flt, g1, 1, false),
			     report_text(f->pg, &flt, g1, 1, false));
			periods++;
		}
	struct ledger_filter one = {.institution = "epfl", .from_us = edge, .to_us = edge + 1,
				    .limit = 100};
	char *t = list_text(f->pg, &one);
	assert_non_null(strstr(t, "edge-2"));
	assert_null(strstr(t, "edge-1"));
	assert_null(strstr(t, "other"));
	free(t);
	assert_int_equal(periods, 21);
}

static void test_report_same(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct ledger_filter none = {0};
	/* over no rows: one row of zeros, ungrouped; none grouped */
	SAME(f, report_text(f->sq, &none, NULL, 0, false), report_text(f->pg, &none, NULL, 0, false));
	const char *g1[] = {"institution"};
	SAME(f, report_text(f->sq, &none, g1, 1, false), report_text(f->pg, &none, g1, 1, false));
	read_data(f->sq, AUDITS(f));
	read_data(f->pg, AUDITS(f));
	const char *g2[] = {"project", "member"}, *g3[] = {"provider", "model", "resource"},
		   *g4[] = {"member"}, *bad[] = {"class"};
	struct ledger_filter flt[] = {{0}, {.institution = "epfl"}, {.kind = "usage"},
				      {.from_us = T0 + BUCKET}};
	for (size_t i = 0; i < sizeof flt / sizeof *flt; i++) {
		SAME(f, report_text(f->sq, &flt[i], NULL, 0, false),
		     report_text(f->pg, &flt[i], NULL, 0, false));
		SAME(f, report_text(f->sq, &flt[i], g1, 1, true),
		     report_text(f->pg, &flt[i], g1, 1, true));
		SAME(f, report_text(f->sq, &flt[i], g2, 2, false),
		     report_text(f->pg, &flt[i], g2, 2, false));
		SAME(f, report_text(f->sq, &flt[i], g3, 3, true),
		     report_text(f->pg, &flt[i], g3, 3, true));
		SAME(f, report_text(f->sq, &flt[i], g4, 1, false),
		     report_text(f->pg, &flt[i], g4, 1, false));
	}
	assert_int_equal(store_ledger_report_rows(f->pg, &none, bad, 1, false, report_fn, NULL),
			 ALLOT_E_INVALID);
}

static void test_seq_status_same(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	SAME(f, seq_text(f->sq, "cscs", -1, 10), seq_text(f->pg, "cscs", -1, 10));
	read_data(f->sq, AUDITS(f));
	read_data(f->pg, AUDITS(f));
	const char *prov[] = {"cscs", "kube", "none"};
	const int64_t after[] = {-1, 0, 2, 7, 8, 13, 25, 30};
	for (size_t p = 0; p < 3; p++)
		for (size_t a = 0; a < sizeof after / sizeof *after; a++)
			for (int lim = 1; lim <= 4; lim++)
				SAME(f, seq_text(f->sq, prov[p], after[a], lim),
				     seq_text(f->pg, prov[p], after[a], lim));
	char *t = seq_text(f->pg, "cscs", -1, 100);
	/* 15 provider records, 13 with seqs 1..30: gaps 4-6 9-11 13-19 22-29
	 * (21 missing), repeats 2 8 21 */
	assert_string_equal(t, "15 13 1 30 4 21 3 next 0 0 gaps 4-6 9-11 13-19 22-29 "
			       "repeats 2 8 21");
	free(t);
	struct ledger_seq_status s;
	assert_int_equal(store_ledger_seq_status(f->pg, "cscs", -2, 1, &s), ALLOT_E_INVALID);
	assert_int_equal(store_ledger_seq_status(f->pg, "cscs", -1, 0, &s), ALLOT_E_INVALID);
}

static char *entries_text(struct store *st, uint64_t start, uint64_t end)
{
	struct text t = {NULL, 0, 0};
	tx_printf(&t, "%s", "");
	assert_int_equal(store_tlog_entries(st, start, end, entry_fn, &t), ALLOT_OK);
	return t.s;
}

static void bucket_fn(void *ctx, const struct ledger_bucket_row *r)
{
	tx_printf(ctx, "%lld %s/%s/%s %lld\n", (long long)((r->bucket_us - T0) / BUCKET),
		  r->institution ? r->institution : "-", r->project ? r->project : "-",
		  r->member ? r->member : "-", (long long)r->charge);
}

static char *buckets_text(struct store *st, const struct ledger_level *lv, int64_t from,
			  int64_t to, enum ledger_bucket_by by)
{
	struct text t = {NULL, 0, 0};
	tx_printf(&t, "%s", "");
	assert_int_equal(store_ledger_buckets(st, lv, from, to, by, bucket_fn, &t), ALLOT_OK);
	return t.s;
}

static void test_buckets_same(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	read_data(f->sq, AUDITS(f));
	read_data(f->pg, AUDITS(f));
	const struct ledger_level lv[] = {
		{0},
		{.institution = "epfl"},
		{.institution = "epfl", .project = "climate"},
		{.institution = "epfl", .project = "climate", .member = "alice@epfl.ch"},
		{.institution = "epfl", .project = "bio", .member = ""},
		{.institution = "nobody"},
	};
	const int64_t range[][2] = {
		{T0 - BUCKET, 0}, {T0, T0 + BUCKET}, {T0 + BUCKET, T0 + 9 * BUCKET}};
	for (size_t l = 0; l < sizeof lv / sizeof *lv; l++)
		for (size_t r = 0; r < sizeof range / sizeof *range; r++)
			for (int by = LEDGER_BY_LEVEL; by <= LEDGER_BY_MEMBER; by++)
				SAME(f, buckets_text(f->sq, &lv[l], range[r][0], range[r][1], by),
				     buckets_text(f->pg, &lv[l], range[r][0], range[r][1], by));
	/* the pool per institution in bucket 0: ethz's q-00, epfl's q-01..02,
	 * the credit, the void, the gate record and kube's four: 200 + 300 - 50 -
	 * 300 + 11 + 4 x 7 */
	char *t = buckets_text(f->pg, &lv[0], T0, T0 + BUCKET, LEDGER_BY_INSTITUTION);
	assert_string_equal(t, "0 epfl/-/- 189\n0 ethz/-/- 100\n");
	free(t);
	/* bad bounds or levels; inside a transaction of this thread */
	struct ledger_level orphan = {.project = "climate"};
	assert_int_equal(store_ledger_buckets(f->pg, &lv[0], T0 + 1, 0, LEDGER_BY_LEVEL, bucket_fn,
					      NULL), ALLOT_E_INVALID);
	assert_int_equal(store_ledger_buckets(f->pg, &lv[0], T0, T0, LEDGER_BY_LEVEL, bucket_fn,
					      NULL), ALLOT_E_INVALID);
	assert_int_equal(store_ledger_buckets(f->pg, &orphan, T0, 0, LEDGER_BY_LEVEL, bucket_fn,
					      NULL), ALLOT_E_INVALID);
	assert_int_equal(tbegin(f->pg, STORE_SYNC_FULL), ALLOT_OK);
	assert_int_equal(store_ledger_buckets(f->pg, &lv[0], T0, 0, LEDGER_BY_LEVEL, bucket_fn,
					      NULL), ALLOT_E_STORE);
	trollback(f->pg);
}

static void test_entries_same(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	read_data(f->sq, AUDITS(f));
	read_data(f->pg, AUDITS(f));
	uint64_t n = log_size(f->pg);
	assert_int_equal(n, log_size(f->sq));
	SAME(f, entries_text(f->sq, 0, n), entries_text(f->pg, 0, n));
	SAME(f, entries_text(f->sq, 2, 5), entries_text(f->pg, 2, 5));
	SAME(f, entries_text(f->sq, 3, n + 100), entries_text(f->pg, 3, n + 100));
	SAME(f, entries_text(f->sq, n, n), entries_text(f->pg, n, n));
	struct text t = {NULL, 0, 0};
	assert_int_equal(store_tlog_entries(f->pg, n + 1, n + 5, entry_fn, &t), ALLOT_E_INVALID);
	assert_int_equal(store_tlog_entries(f->sq, n + 1, n + 5, entry_fn, &t), ALLOT_E_INVALID);
	free(t.s);
}

/* ---- the log: the same entries, the same roots and proofs ------------------------------ */

static void same_log(struct store *a, struct store *b)
{
	uint64_t na, nb;
	uint8_t ra[32], rb[32];
	assert_int_equal(store_tlog_head(a, &na, ra), ALLOT_OK);
	assert_int_equal(store_tlog_head(b, &nb, rb), ALLOT_OK);
	assert_int_equal(na, nb);
	assert_memory_equal(ra, rb, 32);
	for (uint64_t k = 1; k <= na; k++) {
		assert_int_equal(store_tlog_root_at(a, k, ra), ALLOT_OK);
		assert_int_equal(store_tlog_root_at(b, k, rb), ALLOT_OK);
		assert_memory_equal(ra, rb, 32);
		struct merkle_proof pa, pb;
		uint8_t la[32], lb[32];
		assert_int_equal(store_tlog_inclusion(a, k - 1, na, la, &pa), ALLOT_OK);
		assert_int_equal(store_tlog_inclusion(b, k - 1, nb, lb, &pb), ALLOT_OK);
		assert_memory_equal(la, lb, 32);
		assert_int_equal(pa.n, pb.n);
		assert_memory_equal(pa.h, pb.h, pa.n * 32);
		uint8_t root[32];
		assert_int_equal(store_tlog_root_at(b, nb, root), ALLOT_OK);
		assert_int_equal(merkle_verify_inclusion(k - 1, nb, lb, (const uint8_t(*)[32])pb.h,
							 pb.n, root, NULL, 0), ALLOT_OK);
		assert_int_equal(store_tlog_consistency(a, k, na, &pa), ALLOT_OK);
		assert_int_equal(store_tlog_consistency(b, k, nb, &pb), ALLOT_OK);
		assert_int_equal(pa.n, pb.n);
		assert_memory_equal(pa.h, pb.h, pa.n * 32);
		assert_int_equal(store_tlog_root_at(b, k, rb), ALLOT_OK);
		assert_int_equal(merkle_verify_consistency(k, nb, rb, root,
							   (const uint8_t(*)[32])pb.h, pb.n, NULL, 0),
				 ALLOT_OK);
	}
	struct merkle_proof p;
	uint8_t leaf[32];
	assert_int_equal(store_tlog_inclusion(b, nb, nb, leaf, &p), ALLOT_E_INVALID);
	assert_int_equal(store_tlog_inclusion(b, 0, nb + 1, leaf, &p), ALLOT_E_INVALID);
	assert_int_equal(store_tlog_consistency(b, 0, nb, &p), ALLOT_E_INVALID);
	assert_int_equal(store_tlog_root_at(b, nb + 1, rb), ALLOT_E_INVALID);
}

/* The entries: 37 records (past a stored level-4 node and a level-5 one),
 * in transactions of several sizes, with audit entries between them. */
static void log_entries(struct store *st, int from, int to, bool audits)
{
	char id[32];
	for (int i = from; i < to;) {
		assert_int_equal(tbegin(st, STORE_SYNC_FULL), ALLOT_OK);
		for (int k = 0; k < 1 + i % 4 && i < to; k++, i++) {
			snprintf(id, sizeof id, "log-%d", i);
			assert_int_equal(book(st, id, i % 2 ? "alice" : "", 1 + i, T0 + i, 10 * i), ALLOT_OK);
		}
		assert_int_equal(tcommit(st), ALLOT_OK);
		if (i % 3 == 0 && audits) {
			struct audit_entry a = {.at = T0 + i, .actor = "admin", .action = "key.create",
						.target = id};
			assert_int_equal(store_audit_append(st, &a), ALLOT_OK);
		}
	}
}

static void test_log_same_as_sqlite(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	log_entries(f->sq, 0, 37, AUDITS(f));
	log_entries(f->pg, 0, 37, AUDITS(f));
	same_log(f->sq, f->pg);
	assert_true(log_size(f->pg) >= 37);
}

/* A transaction that appended and rolled back leaves no trace: on PG the
 * rolled-back appends of a non-ledger transaction (a charter's, an audit
 * entry's: the head written at once) make the cached tree stale, and the
 * next append must notice. */
static void test_log_rollback(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct pg_store *ps = (struct pg_store *)f->pg;
	log_entries(f->sq, 0, 5, AUDITS(f));
	log_entries(f->pg, 0, 5, AUDITS(f));
	uint64_t n = log_size(f->pg);
	/* a ledger transaction rolled back */
	assert_int_equal(tbegin(f->pg, STORE_SYNC_FULL), ALLOT_OK);
	assert_int_equal(book(f->pg, "gone-1", "", 1, T0, 1), ALLOT_OK);
	trollback(f->pg);
	/* an immediate append rolled back */
	PGconn *c = NULL;
	bool own = false;
	assert_int_equal(pg_get(ps, &c, &own), ALLOT_OK);
	assert_true(own);
	assert_int_equal(pg_begin(ps, c), ALLOT_OK);
	struct audit_entry a = {.at = T0, .actor = "admin", .action = "key.revoke", .target = "x"};
	assert_int_equal(pg_tlog_append_audit(ps, c, 999, &a), ALLOT_OK);
	assert_int_equal(pg_tlog_append_audit(ps, c, 1000, &a), ALLOT_OK);
	pg_rollback(ps, c);
	pg_put(ps, c, false);
	assert_int_equal(log_size(f->pg), n);
	log_entries(f->sq, 5, 40, AUDITS(f));
	log_entries(f->pg, 5, 40, AUDITS(f));
	same_log(f->sq, f->pg);
	/* an append outside any transaction is refused */
	assert_int_equal(pg_get(ps, &c, &own), ALLOT_OK);
	assert_int_equal(pg_tlog_append_audit(ps, c, 1001, &a), ALLOT_E_INTERNAL);
	pg_put(ps, c, false);
	assert_int_equal(log_size(f->pg), log_size(f->sq));
}

/* The log survives a reopen: the tree is loaded from the stored nodes and
 * checked against the head's root. */
static void test_log_reopen(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	log_entries(f->pg, 0, 21, AUDITS(f));
	uint64_t n = log_size(f->pg);
	unwire_close(f->pg, f->wired);
	f->pg = pg_open(f);
	assert_int_equal(log_size(f->pg), n);
	log_entries(f->pg, 21, 30, AUDITS(f));
	log_entries(f->sq, 0, 21, AUDITS(f)); /* the same transactions */
	log_entries(f->sq, 21, 30, AUDITS(f));
	same_log(f->sq, f->pg);
}

/* The head's root is the root of the stored leaves, in index order, and
 * there are n of them. */
static void assert_leaves_give_head(const char *uri, struct store *st, int n)
{
	PGconn *c = PQconnectdb(uri);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, "SELECT encode(leaf_hash, 'hex') FROM tlog_leaves_all ORDER BY idx");
	assert_int_equal(PQntuples(r), n);
	struct merkle_tree tree;
	merkle_tree_init(&tree);
	for (int i = 0; i < n; i++) {
		uint8_t h[32];
		const char *hex = PQgetvalue(r, i, 0);
		for (int k = 0; k < 32; k++)
			assert_int_equal(sscanf(hex + 2 * k, "%2hhx", &h[k]), 1);
		assert_int_equal(merkle_tree_append(&tree, h, NULL, NULL), ALLOT_OK);
	}
	PQclear(r);
	PQfinish(c);
	uint8_t want[32], root[32];
	uint64_t size;
	merkle_tree_root(&tree, want);
	assert_int_equal(store_tlog_head(st, &size, root), ALLOT_OK);
	assert_int_equal(size, (uint64_t)n);
	assert_memory_equal(root, want, 32);
}

/* A second node's store on the fixture's database (*wired: its own
 * wiring, for unwire_close); the fixture's store keeps its own. */
static struct store *second_node(struct fx *f, bool *wired)
{
	bool fw = f->wired;
	struct store *b = pg_open(f);
	*wired = f->wired;
	f->wired = fw;
	return b;
}

/* Two nodes on one database (two store objects): each one's cached tree
 * state is checked against the head's root, not only its size.  Node A's
 * append rolls back after writing the head (its cache now holds a leaf
 * that is not there), node B appends another leaf at the same index and
 * commits: A's next append must see the head's root differ and reload. */
static void test_log_two_nodes(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	bool bw;
	struct store *b = second_node(f, &bw);
	struct pg_store *pa = (struct pg_store *)f->pg;
	assert_int_equal(book(f->pg, "a-1", "", 1, T0, 1), ALLOT_OK);
	PGconn *c = NULL;
	bool own = false;
	assert_int_equal(pg_get(pa, &c, &own), ALLOT_OK);
	assert_int_equal(pg_begin(pa, c), ALLOT_OK);
	struct audit_entry a = {.at = T0, .actor = "admin", .action = "key.revoke", .target = "x"};
	assert_int_equal(pg_tlog_append_audit(pa, c, 77, &a), ALLOT_OK);
	pg_rollback(pa, c);
	pg_put(pa, c, false);
	assert_int_equal(book(b, "b-1", "", 1, T0, 2), ALLOT_OK);
	assert_int_equal(book(f->pg, "a-2", "", 1, T0, 4), ALLOT_OK);
	assert_int_equal(book(b, "b-2", "", 1, T0, 8), ALLOT_OK);
	unwire_close(b, bw);
	assert_leaves_give_head(f->uri, f->pg, 4);
	log_entries(f->pg, 0, 20, false);
	assert_leaves_give_head(f->uri, f->pg, 24);
}

static int64_t q_int(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* One statement on a connection of its own. */
static void raw_exec(const char *uri, const char *sql)
{
	PGconn *c = PQconnectdb(uri);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

static int64_t frontier_len(const char *uri)
{
	PGconn *c = PQconnectdb(uri);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	int64_t n = q_int(c, "SELECT coalesce(length(frontier), -1) FROM tlog_head WHERE id = 1");
	PQfinish(c);
	return n;
}

/* The head carries the tree's frontier (migration 0011): a node behind the
 * head (another node appended since its last look) takes the tree's state
 * with the head instead of reading the stored tree, so its booking costs
 * the statements of one on a current head; a head whose frontier is
 * missing (an older build, the store copy) or does not give the root is
 * loaded from the stored tree as before, and each append writes it anew. */
static void test_log_frontier(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	bool bw;
	struct store *b = second_node(f, &bw);
	assert_int_equal(book(b, "b-w", "", 1, T0, 1), ALLOT_OK); /* B's first */
	char id[32];
	for (int i = 0; i < 20; i++) { /* A: leaves 1..20 */
		snprintf(id, sizeof id, "a-%d", i);
		assert_int_equal(book(f->pg, id, "", 1, T0, 1), ALLOT_OK);
	}
	assert_int_equal(frontier_len(f->uri), 3 * 32); /* 21 = 16 + 4 + 1 */
	uint64_t c0 = metrics_counter_get(MC_STORE_ROUNDTRIPS);
	assert_int_equal(book(b, "b-0", "", 1, T0, 1), ALLOT_OK); /* 20 leaves behind */
	uint64_t behind = metrics_counter_get(MC_STORE_ROUNDTRIPS) - c0;
	c0 = metrics_counter_get(MC_STORE_ROUNDTRIPS);
	assert_int_equal(book(b, "b-1", "", 1, T0, 1), ALLOT_OK); /* current */
	uint64_t current = metrics_counter_get(MC_STORE_ROUNDTRIPS) - c0;
	print_message("statements of a booking 20 leaves behind the head: %llu, on a current "
		      "head: %llu\n", (unsigned long long)behind, (unsigned long long)current);
	assert_int_equal(behind, current);
	assert_int_equal(frontier_len(f->uri), 4 * 32); /* 23 = 16 + 4 + 2 + 1 */
	assert_leaves_give_head(f->uri, f->pg, 23);
	/* no frontier: A (behind by 2) loads the stored tree */
	raw_exec(f->uri, "UPDATE tlog_head SET frontier = NULL WHERE id = 1");
	assert_int_equal(book(f->pg, "a-x", "", 1, T0, 1), ALLOT_OK);
	assert_leaves_give_head(f->uri, b, 24);
	assert_int_equal(frontier_len(f->uri), 2 * 32); /* 24 = 16 + 8 */
	/* a frontier of the right length that does not give the root: the same */
	raw_exec(f->uri, "UPDATE tlog_head SET frontier = decode(repeat('ab', 64), 'hex') WHERE id = 1");
	assert_int_equal(book(b, "b-x", "", 1, T0, 1), ALLOT_OK);
	assert_int_equal(book(f->pg, "a-y", "", 1, T0, 1), ALLOT_OK);
	assert_leaves_give_head(f->uri, b, 26);
	assert_leaves_give_head(f->uri, f->pg, 26);
	/* one of another length (26 = 16 + 8 + 2 needs 96 bytes): the same */
	raw_exec(f->uri, "UPDATE tlog_head SET frontier = decode(repeat('ab', 64), 'hex') WHERE id = 1");
	assert_int_equal(book(b, "b-y", "", 1, T0, 1), ALLOT_OK);
	assert_leaves_give_head(f->uri, f->pg, 27);
	assert_int_equal(frontier_len(f->uri), 4 * 32); /* 27 = 16 + 8 + 2 + 1 */
	unwire_close(b, bw);
}

/* ---- PostgreSQL only ------------------------------------------------------------------- */

struct booker {
	struct store *st;
	int who, n;
	allot_err e;
};

static void *booker_main(void *arg)
{
	struct booker *b = arg;
	char id[32];
	for (int i = 0; i < b->n && !b->e; i += 3) {
		if ((b->e = tbegin(b->st, STORE_SYNC_FULL)))
			break;
		for (int k = i; k < i + 3 && k < b->n && !b->e; k++) {
			snprintf(id, sizeof id, "t%d-%d", b->who, k);
			b->e = book(b->st, id, b->who ? "bob" : "alice", 1 + k, T0 + k, 1 + k);
		}
		if (b->e)
			trollback(b->st);
		else
			b->e = tcommit(b->st);
	}
	return NULL;
}

/* Reads the sums while others book: each sum at least the one before. */
struct reader {
	struct store *st;
	int stop;
	allot_err e;
	int64_t reads;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	int64_t last = 0;
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) && !r->e) {
		struct ledger_level lv = {"epfl", "climate", NULL};
		int64_t s = -1;
		if ((r->e = store_ledger_sum_q(r->st, &lv, T0, T0 + 86400LL * 1000000, &s)))
			break;
		if (s < last)
			r->e = ALLOT_E_INTERNAL;
		last = s;
		r->reads++;
	}
	return NULL;
}

/* Two threads booking into one store at once: every record once, leaves
 * 0..n-1 each once and in the order of the records' commits, the head's
 * root that of those leaves, sums and bounds exact. */
static void test_two_threads(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	enum { N = 90 };
	struct booker b[2] = {{f->pg, 0, N, 0}, {f->pg, 1, N, 0}};
	struct reader rd = {f->pg, 0, 0, 0};
	pthread_t t[2], tr;
	assert_int_equal(pthread_create(&tr, NULL, reader_main, &rd), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, booker_main, &b[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		if (b[i].e)
			fail_msg("thread %d: %d %s", i, b[i].e, f->pg->errmsg);
	}
	__atomic_store_n(&rd.stop, 1, __ATOMIC_RELEASE);
	pthread_join(tr, NULL);
	assert_int_equal(rd.e, ALLOT_OK);
	assert_true(rd.reads > 0);
	/* the sums read while the others booked (and cached when no commit
	 * overlapped) never went down, and the cache ends exact (below) */
	int64_t want = 2 * (N * (N + 1) / 2);
	assert_int_equal(sum(f->pg, "epfl", "climate", NULL), want);
	assert_int_equal(sum(f->pg, "epfl", "climate", "bob"), N * (N + 1) / 2);
	assert_int_equal(log_size(f->pg), 2 * N);
	PGconn *c = PQconnectdb(f->uri);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	assert_int_equal(q_int(c, "SELECT count(DISTINCT leaf_index) FROM usage_records "
				  "WHERE leaf_index BETWEEN 0 AND 179"), 2 * N);
	assert_int_equal(q_int(c, "SELECT count(*) FROM tlog_leaves_all l JOIN usage_records u "
				  "ON u.id = l.ref AND u.leaf_index = l.idx"), 2 * N);
	/* commit order: a record's leaf follows those of every record whose
	 * transaction committed before it (ids were taken in that order too) */
	assert_int_equal(q_int(c, "SELECT count(*) FROM usage_records a JOIN usage_records b "
				  "ON a.id < b.id AND a.leaf_index > b.leaf_index"), 0);
	assert_int_equal(q_int(c, "SELECT charge_pos FROM ledger_bounds"), want);
	assert_int_equal(q_int(c, "SELECT quantity FROM ledger_bounds"), want);
	assert_int_equal(q_int(c, "SELECT sum(charge) FROM usage_buckets"), want);
	PQfinish(c);
	assert_leaves_give_head(f->uri, f->pg, 2 * N);
}

/* A statement that fails inside a ledger transaction aborts it on
 * PostgreSQL: the commit says so and nothing of it is stored. */
static void test_failed_statement(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct pg_store *ps = (struct pg_store *)f->pg;
	assert_int_equal(tbegin(f->pg, STORE_SYNC_FULL), ALLOT_OK);
	assert_int_equal(book(f->pg, "f-1", "", 1, T0, 10), ALLOT_OK);
	struct ledger_row row;
	fill(&row, "f-2", "epfl", "climate", "", 1, T0, 10);
	row.rec.end_us = row.rec.start_us - 1; /* refused by a CHECK */
	assert_int_not_equal(ins(f->pg, &row), ALLOT_OK);
	assert_int_not_equal(tcommit(f->pg), ALLOT_OK);
	assert_null(pg_txn(ps));
	assert_int_equal(store_ledger_find_q(f->pg, "cscs", "f-1", &row), ALLOT_E_NOT_FOUND);
	assert_int_equal(log_size(f->pg), 0);
	assert_int_equal(sum(f->pg, NULL, NULL, NULL), 0);
	/* the store goes on */
	assert_int_equal(book(f->pg, "f-3", "", 1, T0, 10), ALLOT_OK);
	assert_int_equal(sum(f->pg, NULL, NULL, NULL), 10);
	assert_int_equal(log_size(f->pg), 1);
}

/* synchronous_commit inside the thread's ledger transaction. */
static const char *sync_setting(struct store *st)
{
	static char v[16];
	PGconn *c = pg_txn((struct pg_store *)st);
	assert_non_null(c);
	PGresult *r = PQexec(c, "SHOW synchronous_commit");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	snprintf(v, sizeof v, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* DEFERRED commits with synchronous_commit off, and are flushed within the
 * interval; FULL commits synchronously; with an interval of 0 every
 * commit is FULL; flush covers what is pending. */
static void test_durability(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct store *st = f->pg;
	struct store_sync_stats s0, s;
	store_set_flush_ms(st, 1000);
	store_sync_stats(st, &s0);
	assert_int_equal(s0.flush_ms, 1000);
	assert_int_equal(tbegin(st, STORE_SYNC_DEFERRED), ALLOT_OK);
	assert_string_equal(sync_setting(st), "off");
	assert_int_equal(book(st, "y-1", "", 1, T0, 1), ALLOT_OK);
	assert_int_equal(tcommit(st), ALLOT_OK);
	store_sync_stats(st, &s);
	assert_int_equal(s.deferred_commits, s0.deferred_commits + 1);
	assert_int_equal(s.undurable, 1);
	/* the flusher makes it durable within the interval (and some slack) */
	for (int i = 0; i < 500 && s.undurable; i++) {
		usleep(10000);
		store_sync_stats(st, &s);
	}
	assert_int_equal(s.undurable, 0);
	assert_true(s.flushes > s0.flushes);
	/* FULL: synchronous, and it covers earlier deferred commits */
	assert_int_equal(tbegin(st, STORE_SYNC_DEFERRED), ALLOT_OK);
	assert_int_equal(book(st, "y-2", "", 1, T0, 1), ALLOT_OK);
	assert_int_equal(tcommit(st), ALLOT_OK);
	assert_int_equal(tbegin(st, STORE_SYNC_FULL), ALLOT_OK);
	assert_string_equal(sync_setting(st), "on");
	assert_int_equal(book(st, "y-3", "", 1, T0, 1), ALLOT_OK);
	assert_int_equal(tcommit(st), ALLOT_OK);
	store_sync_stats(st, &s);
	assert_int_equal(s.undurable, 0);
	assert_int_equal(s.full_commits, s0.full_commits + 1);
	/* flush now */
	store_set_flush_ms(st, 10000);
	assert_int_equal(tbegin(st, STORE_SYNC_DEFERRED), ALLOT_OK);
	assert_int_equal(book(st, "y-4", "", 1, T0, 1), ALLOT_OK);
	assert_int_equal(tcommit(st), ALLOT_OK);
	store_sync_stats(st, &s);
	assert_int_equal(s.undurable, 1);
	uint64_t fl = s.flushes;
	assert_int_equal(store_flush(st), ALLOT_OK);
	store_sync_stats(st, &s);
	assert_int_equal(s.undurable, 0);
	assert_int_equal(s.flushes, fl + 1);
	/* an interval of 0: DEFERRED is FULL */
	store_set_flush_ms(st, 0);
	assert_int_equal(tbegin(st, STORE_SYNC_DEFERRED), ALLOT_OK);
	assert_string_equal(sync_setting(st), "on");
	trollback(st);
	assert_null(pg_txn((struct pg_store *)st));
	assert_int_equal(sum(st, NULL, NULL, NULL), 4);
}

/* ---- canonical bytes kept only when they are not the sealed spelling ---------------- */

/* The stored canonical column's length of record id on each store. */
static int64_t stored_len(struct fx *f, bool pg, const char *id)
{
	char sql[160];
	snprintf(sql, sizeof sql,
		 "SELECT length(canonical) FROM usage_records WHERE provider = 'cscs' AND "
		 "record_id = '%s'", id);
	if (pg) {
		PGconn *c = PQconnectdb(f->uri);
		assert_int_equal(PQstatus(c), CONNECTION_OK);
		int64_t n = q_int(c, sql);
		PQfinish(c);
		return n;
	}
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

struct canon_seen {
	const char *id;
	char *canon;
	size_t len;
};

static void canon_list_fn(void *ctx, const struct ledger_row *row, int64_t leaf)
{
	(void)leaf;
	struct canon_seen *c = ctx;
	if (strcmp(row->rec.record_id, c->id) == 0) {
		free(c->canon);
		c->canon = strndup(row->rec.canonical, row->rec.canonical_len);
		c->len = row->rec.canonical_len;
	}
}

static void canon_entry_fn(void *ctx, const struct tlog_entry_row *e)
{
	if (e->usage)
		canon_list_fn(ctx, e->usage, 0);
}

/* Books row and reads its canonical bytes back by find, listing and log
 * entry: each the bytes booked. */
static void canon_back(struct store *st, struct ledger_row *row)
{
	assert_int_equal(ins(st, row), ALLOT_OK);
	const struct usage_record *r = &row->rec;
	struct ledger_row got;
	assert_int_equal(store_ledger_find_q(st, "cscs", r->record_id, &got), ALLOT_OK);
	assert_int_equal(got.rec.canonical_len, r->canonical_len);
	assert_memory_equal(got.rec.canonical, r->canonical, r->canonical_len);
	assert_int_equal(got.rec.canonical[got.rec.canonical_len], '\0');
	free(got.rec.canonical);
	struct canon_seen c = {.id = r->record_id};
	struct ledger_filter flt = {.limit = 1000};
	assert_int_equal(store_ledger_list_q(st, &flt, canon_list_fn, &c), ALLOT_OK);
	assert_non_null(c.canon);
	assert_int_equal(c.len, r->canonical_len);
	assert_memory_equal(c.canon, r->canonical, r->canonical_len);
	free(c.canon);
	c.canon = NULL;
	assert_int_equal(store_tlog_entries(st, 0, log_size(st), canon_entry_fn, &c), ALLOT_OK);
	assert_non_null(c.canon);
	assert_memory_equal(c.canon, r->canonical, r->canonical_len);
	free(c.canon);
}

/* A record whose canonical bytes are its sealed spelling (what allot writes
 * for the gate, what most providers sign) is stored without them and gets
 * them back byte for byte; any other spelling is stored as it is. */
static void test_canonical_kept(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	for (int k = 0; k < 2; k++) {
		struct store *st = k ? f->pg : f->sq;
		struct ledger_row row;
		/* every field set, sealed */
		fill(&row, "c-sealed", "epfl", "climate", "alice@epfl.ch", 7200, T0 + 10, 500);
		struct usage_record *r = &row.rec;
		r->has_seq = true;
		r->seq = 1042;
		r->kind = RECORD_ADJUSTMENT;
		r->adjustment = ADJ_REFUND;
		r->start_us = T0 - 123456; /* a fraction of a second */
		snprintf(r->cls, sizeof r->cls, "h100");
		snprintf(r->model, sizeof r->model, "llama");
		snprintf(r->supersedes, sizeof r->supersedes, "c-0");
		r->canonical = record_canonical_sealed(r, &r->canonical_len);
		assert_non_null(r->canonical);
		assert_non_null(strstr(r->canonical, "\"adjustment\":\"refund\""));
		assert_true(record_canonical_rebuilds(r));
		canon_back(st, &row);
		assert_int_equal(stored_len(f, k, "c-sealed"), 0);
		free(r->canonical);
		/* the fewest fields, sealed */
		fill(&row, "c-plain", "epfl", "climate", "", 1, T0 + 20, 100);
		r->canonical = record_canonical_sealed(r, &r->canonical_len);
		canon_back(st, &row);
		assert_int_equal(stored_len(f, k, "c-plain"), 0);
		/* the same fields, another spelling ("kind" left out): kept whole */
		char *sealed = r->canonical;
		char other[512];
		const char *kind = strstr(sealed, ",\"kind\":\"usage\"");
		assert_non_null(kind);
		snprintf(other, sizeof other, "%.*s%s", (int)(kind - sealed), sealed,
			 kind + strlen(",\"kind\":\"usage\""));
		fill(&row, "c-other", "epfl", "climate", "", 1, T0 + 20, 100);
		r->canonical = other;
		r->canonical_len = strlen(other);
		assert_false(record_canonical_rebuilds(r));
		canon_back(st, &row);
		assert_int_equal(stored_len(f, k, "c-other"), (int64_t)strlen(other));
		free(sealed);
	}
}

/* A kind or source code the table holds and this build does not know (a
 * later migration's, or a row changed behind allot's back): reading the
 * record is a store error that names the column and the code, not a row
 * read as something else. */
static void test_unknown_code(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct ledger_row row;
	fill(&row, "u-1", "epfl", "climate", "", 1, T0, 100);
	assert_int_equal(ins(f->pg, &row), ALLOT_OK);
	PGconn *c = PQconnectdb(f->uri);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	/* the table's CHECKs on the two columns and its append-only
	 * triggers out of the way, as an older or newer writer would be */
	PGresult *r = PQexec(c,
		"DO $$DECLARE n text; BEGIN FOR n IN SELECT conname FROM pg_constraint "
		"WHERE conrelid = 'usage_records'::regclass AND contype = 'c' AND "
		"(pg_get_constraintdef(oid) LIKE '%kind%' OR pg_get_constraintdef(oid) LIKE '%source%') "
		"LOOP EXECUTE format('ALTER TABLE usage_records DROP CONSTRAINT %I', n); END LOOP; END$$; "
		"ALTER TABLE usage_records DISABLE TRIGGER USER; "
		"UPDATE usage_records SET kind = 'x' WHERE record_id = 'u-1'");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	struct ledger_row got;
	assert_int_equal(store_ledger_find_q(f->pg, "cscs", "u-1", &got), ALLOT_E_STORE);
	assert_non_null(strstr(f->pg->errmsg, "kind code 'x' is not one this allotd knows"));
	r = PQexec(c, "UPDATE usage_records SET kind = 'u', source = 'z' WHERE record_id = 'u-1'");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	assert_int_equal(store_ledger_find_q(f->pg, "cscs", "u-1", &got), ALLOT_E_STORE);
	assert_non_null(strstr(f->pg->errmsg, "source code 'z' is not one this allotd knows"));
	PQfinish(c);
}

int main(void)
{
	log_set_quiet(true);
	pgfx_note_skips("test_pg_ledger");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sums, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net, setup, teardown),
		cmocka_unit_test_setup_teardown(test_savepoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_spent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_same, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_same, setup, teardown),
		cmocka_unit_test_setup_teardown(test_span_edges_same, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seq_status_same, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buckets_same, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entries_same, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_same_as_sqlite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_two_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_frontier, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_statement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durability, setup, teardown),
		cmocka_unit_test_setup_teardown(test_canonical_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_code, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
