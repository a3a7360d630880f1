/* test_pg_pool.c — the PostgreSQL store's machinery (store/pg_store.c,
 * store/pg_owner.c) on a real server: the pool under many threads and when
 * exhausted, reconnecting after the server ended the sessions, statements
 * prepared once per connection (first sent in a pipeline too), SQLSTATEs
 * mapped to errors, a COMMIT after a failed statement, the calling thread's transaction, the read-only
 * store, and the owner lock.  ALLOT_TEST_PG_URI names the server (`make
 * unit` sets it); without it the tests skip and say so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/migrate.h"
#include "store/pg_int.h"
#include "support/pgfx.h"

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* The server ends every session on f's database (as a restart does) and
 * this waits until they are gone. */
static void end_sessions(struct pgfx *f)
{
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
				  "WHERE datname = '%s' AND pid <> pg_backend_pid()", f->db);
	pgfx_admin_exec(sql);
	PGconn *c = pgfx_connect(pgfx_server());
	snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'",
		 f->db);
	for (int i = 0; i < 500; i++) {
		PGresult *r = PQexec(c, sql);
		bool gone = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) == 0;
		PQclear(r);
		if (gone)
			break;
		sleep_ms(10);
	}
	PQfinish(c);
}

static void test_reconnect(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	/* two connections in the pool */
	PGconn *a, *b;
	bool own;
	assert_int_equal(pg_get(f->ps, &a, &own), ALLOT_OK);
	assert_true(own);
	assert_int_equal(pg_get(f->ps, &b, &own), ALLOT_OK);
	pg_put(f->ps, a, false);
	pg_put(f->ps, b, false);
	assert_int_equal(f->ps->nidle, 2);
	int64_t n = -1;
	assert_int_equal(store_key_count_active(f->st, "admin", &n), ALLOT_OK);
	end_sessions(f);
	/* one operation finds its connection gone; the stale idle one is
	 * dropped with it, and the next operation connects afresh */
	assert_int_equal(store_key_count_active(f->st, "admin", &n), ALLOT_E_UNAVAILABLE);
	assert_true(f->st->errmsg[0] != '\0');
	assert_null(strchr(f->st->errmsg, '\n'));
	assert_int_equal(f->ps->nidle, 0);
	assert_int_equal(f->ps->nopen, 0);
	assert_int_equal(store_key_count_active(f->st, "admin", &n), ALLOT_OK);
	assert_int_equal(n, 0);
	struct audit_entry a1 = {.at = 1, .actor = "admin", .action = "after.restart"};
	assert_int_equal(store_audit_append(f->st, &a1), ALLOT_OK);
	assert_int_equal(f->ps->nopen, 1);
}

static void test_prepared_once(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	static const char count[] = "SELECT count(*) FROM pg_prepared_statements";
	static const char other[] = "SELECT $1::bigint + 1";
	PGconn *c;
	bool own;
	assert_int_equal(pg_get(f->ps, &c, &own), ALLOT_OK);
	allot_err e = ALLOT_E_INTERNAL;
	int64_t first = -1; /* itself and what the store's open prepared */
	for (int i = 0; i < 3; i++) {
		PGresult *r = pg_run(f->ps, c, count, 0, NULL, &e);
		assert_non_null(r);
		assert_int_equal(e, ALLOT_OK);
		if (i == 0)
			first = pg_col_i64(r, 0, 0);
		assert_true(first >= 1);
		assert_int_equal(pg_col_i64(r, 0, 0), first); /* prepared once */
		PQclear(r);
	}
	char buf[24];
	const char *v[] = {pg_i64(buf, INT64_MAX - 1)};
	PGresult *r = pg_run(f->ps, c, other, 1, v, &e);
	assert_non_null(r);
	assert_int_equal(pg_col_i64(r, 0, 0), INT64_MAX);
	PQclear(r);
	assert_non_null(r = pg_run(f->ps, c, count, 0, NULL, &e));
	assert_int_equal(pg_col_i64(r, 0, 0), first + 1);
	PQclear(r);
	/* past int64: an error, never a wrapped value */
	const char *v2[] = {pg_i64(buf, INT64_MAX)};
	assert_null(pg_run(f->ps, c, other, 1, v2, &e));
	assert_int_equal(e, ALLOT_E_STORE);
	pg_put(f->ps, c, false);
}

/* Prepared statements on c (pg_prepared_statements). */
static int64_t prepared_count(struct pgfx *f, PGconn *c)
{
	static const char count[] = "SELECT count(*) FROM pg_prepared_statements";
	allot_err e;
	PGresult *r = pg_run(f->ps, c, count, 0, NULL, &e);
	assert_non_null(r);
	int64_t n = pg_col_i64(r, 0, 0);
	PQclear(r);
	return n;
}

/* A statement first sent in a pipeline is prepared there (not planned in
 * every pipeline again); one whose prepare a failed statement before it
 * skipped is not taken as prepared. */
static void test_prepared_in_pipeline(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	static const char twice[] = "SELECT $1::bigint * 2";
	static const char inverse[] = "SELECT 1 / $1::bigint";
	static const char after[] = "SELECT $1::bigint + 3";
	PGconn *c;
	bool own;
	assert_int_equal(pg_get(f->ps, &c, &own), ALLOT_OK);
	int64_t n0 = prepared_count(f, c);
	allot_err e;
	for (int round = 0; round < 2; round++) {
		assert_int_equal(pg_pipe_begin(f->ps, c), ALLOT_OK);
		const char *v3[] = {"3"}, *v4[] = {"4"};
		PQclear(pg_run(f->ps, c, twice, 1, v3, &e));
		assert_int_equal(e, ALLOT_OK);
		pg_pipe_expect(c, NULL, NULL, "6", "3 * 2");
		PQclear(pg_run(f->ps, c, twice, 1, v4, &e));
		pg_pipe_expect(c, NULL, NULL, "8", "4 * 2");
		assert_int_equal(pg_pipe_end(f->ps, c), ALLOT_OK);
		assert_int_equal(prepared_count(f, c), n0 + 1); /* once, in the first */
	}
	/* the statement before it fails: the new one's prepare is skipped */
	assert_int_equal(pg_pipe_begin(f->ps, c), ALLOT_OK);
	const char *zero[] = {"0"}, *one[] = {"1"};
	PQclear(pg_run(f->ps, c, inverse, 1, zero, &e));
	PQclear(pg_run(f->ps, c, after, 1, one, &e));
	assert_int_equal(pg_pipe_end(f->ps, c), ALLOT_E_STORE);
	int64_t n1 = prepared_count(f, c);
	assert_int_equal(n1, n0 + 2); /* inverse, prepared before it failed */
	/* ... and runs (prepared now) outside a pipeline */
	PGresult *r = pg_run(f->ps, c, after, 1, one, &e);
	assert_non_null(r);
	assert_int_equal(pg_col_i64(r, 0, 0), 4);
	PQclear(r);
	assert_int_equal(prepared_count(f, c), n1 + 1);
	pg_put(f->ps, c, false);
}

static void test_sqlstates(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	static const char mk[] = "CREATE TEMP TABLE t (id int PRIMARY KEY CHECK (id > 0))";
	static const char ins[] = "INSERT INTO t VALUES ($1)";
	static const char cnt[] = "SELECT count(*) FROM t";
	static const char bad[] = "SELEC 1";
	PGconn *c;
	bool own;
	assert_int_equal(pg_get(f->ps, &c, &own), ALLOT_OK);
	allot_err e;
	PQclear(pg_run(f->ps, c, mk, 0, NULL, &e));
	assert_int_equal(e, ALLOT_OK);
	const char *one[] = {"1"}, *two[] = {"2"}, *neg[] = {"-1"}, *null[] = {NULL};
	PQclear(pg_run(f->ps, c, ins, 1, one, &e));
	assert_int_equal(e, ALLOT_OK);
	assert_null(pg_run(f->ps, c, ins, 1, one, &e)); /* unique */
	assert_int_equal(e, ALLOT_E_CONFLICT);
	assert_non_null(strstr(f->st->errmsg, "duplicate key"));
	assert_null(pg_run(f->ps, c, ins, 1, neg, &e)); /* check */
	assert_int_equal(e, ALLOT_E_CONFLICT);
	assert_null(pg_run(f->ps, c, ins, 1, null, &e)); /* not null */
	assert_int_equal(e, ALLOT_E_CONFLICT);
	assert_null(pg_run(f->ps, c, bad, 0, NULL, &e));
	assert_int_equal(e, ALLOT_E_STORE);
	assert_null(pg_run(f->ps, c, bad, 0, NULL, NULL)); /* e may be NULL */
	/* no answer from the server: libpq's own error has no SQLSTATE (as
	 * "server closed the connection unexpectedly" while PQstatus still
	 * says CONNECTION_OK), or no result came at all */
	PGresult *lost = PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR);
	assert_null(PQresultErrorField(lost, PG_DIAG_SQLSTATE));
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	assert_int_equal(pg_result_err(c, lost), ALLOT_E_UNAVAILABLE);
	PQclear(lost);
	assert_int_equal(pg_result_err(c, NULL), ALLOT_E_UNAVAILABLE);
	/* an answer of the wrong kind is the caller's error, not the server's */
	PGresult *odd = PQmakeEmptyPGresult(c, PGRES_EMPTY_QUERY);
	assert_int_equal(pg_result_err(c, odd), ALLOT_E_STORE);
	PQclear(odd);

	/* a COMMIT after a failed statement commits nothing and says so */
	assert_int_equal(pg_begin(f->ps, c), ALLOT_OK);
	PQclear(pg_run(f->ps, c, ins, 1, two, &e));
	assert_int_equal(e, ALLOT_OK);
	assert_null(pg_run(f->ps, c, ins, 1, one, &e));
	assert_int_equal(pg_commit(f->ps, c), ALLOT_E_STORE);
	assert_non_null(strstr(f->st->errmsg, "rolled back"));
	assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
	PGresult *r = pg_run(f->ps, c, cnt, 0, NULL, &e);
	assert_non_null(r);
	assert_int_equal(pg_col_i64(r, 0, 0), 1);
	PQclear(r);
	/* a rollback outside a transaction is a no-op */
	pg_rollback(f->ps, c);
	pg_put(f->ps, c, false);
	assert_int_equal(f->ps->nidle, 1);
}

struct worker {
	struct store *st;
	int n;
	allot_err e;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->n && !w->e; i++) {
		struct audit_entry a = {.at = i, .actor = "admin", .action = "load"};
		w->e = store_audit_append(w->st, &a);
		int64_t n;
		if (!w->e)
			w->e = store_key_count_active(w->st, "admin", &n);
	}
	return NULL;
}

static void count_audit(void *ctx, int64_t id, const struct audit_entry *a)
{
	(void)id;
	(void)a;
	(*(int *)ctx)++;
}

static void test_pool_threads(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	enum { THREADS = 24, EACH = 15 };
	struct worker w[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.st = f->st, .n = EACH};
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		if (w[i].e)
			fail_msg("thread %d: %d (%s)", i, w[i].e, f->st->errmsg);
	}
	int n = 0;
	assert_int_equal(store_audit_list(f->st, 0, -1, count_audit, &n), ALLOT_OK);
	assert_int_equal(n, THREADS * EACH);
	assert_true(f->ps->nopen >= 1 && f->ps->nopen <= PG_POOL_MAX);
	assert_int_equal(f->ps->nidle, f->ps->nopen);
}

struct waiter {
	struct store *st;
	volatile int done;
	allot_err e;
};

static void *wait_one(void *arg)
{
	struct waiter *w = arg;
	int64_t n;
	w->e = store_key_count_active(w->st, "admin", &n);
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Every connection taken: an operation waits for one to come back. */
static void test_pool_exhausted(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	PGconn *c[PG_POOL_MAX];
	bool own;
	for (int i = 0; i < PG_POOL_MAX; i++)
		assert_int_equal(pg_get(f->ps, &c[i], &own), ALLOT_OK);
	assert_int_equal(f->ps->nopen, PG_POOL_MAX);
	struct waiter w = {.st = f->st};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wait_one, &w), 0);
	sleep_ms(200);
	assert_int_equal(__atomic_load_n(&w.done, __ATOMIC_SEQ_CST), 0);
	pg_put(f->ps, c[0], false);
	pthread_join(t, NULL);
	assert_int_equal(w.e, ALLOT_OK);
	for (int i = 1; i < PG_POOL_MAX; i++)
		pg_put(f->ps, c[i], false);
	assert_int_equal(f->ps->nidle, PG_POOL_MAX);
}

struct peek {
	struct pg_store *ps;
	PGconn *seen;
};

static void *peek_txn(void *arg)
{
	struct peek *p = arg;
	p->seen = pg_txn(p->ps);
	return NULL;
}

/* The thread's ledger transaction carries the plain operations called in
 * it: they commit or roll back with it, and other threads do not see it. */
static void txn_round(struct pgfx *f, bool commit, const char *dedupe)
{
	assert_int_equal(store_ledger_begin(f->st), ALLOT_OK);
	PGconn *c = pg_txn(f->ps), *in;
	assert_non_null(c);
	bool own;
	assert_int_equal(pg_get(f->ps, &in, &own), ALLOT_OK);
	assert_ptr_equal(in, c);
	assert_false(own);
	struct peek p = {.ps = f->ps, .seen = c};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, peek_txn, &p), 0);
	pthread_join(t, NULL);
	assert_null(p.seen);
	struct outbox_event ev = {.id = "msg_x", .url = "http://127.0.0.1:9/", .type = "alert",
				  .dedupe = dedupe, .body = (char *)"{}", .created_us = 1,
				  .next_us = 1};
	if (commit)
		ev.id[4] = 'y';
	assert_int_equal(store_outbox_put(f->st, &ev), ALLOT_OK);
	assert_int_equal(store_outbox_put(f->st, &ev), ALLOT_OK); /* skipped, no abort */
	struct audit_entry a = {.at = 1, .actor = "admin", .action = "in.txn"};
	assert_int_equal(store_audit_append(f->st, &a), ALLOT_OK);
	struct ledger_rejection rj = {.provider = "cscs", .reason = "no", .received_us = 1};
	snprintf(rj.record_id, sizeof rj.record_id, "%s", dedupe);
	assert_int_equal(store_reject_insert(f->st, &rj), ALLOT_OK);
	if (commit)
		assert_int_equal(store_ledger_commit(f->st), ALLOT_OK);
	else
		store_ledger_rollback(f->st);
	assert_null(pg_txn(f->ps));
}

static void test_thread_txn(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	txn_round(f, false, "d-rolled-back");
	bool has = true;
	assert_int_equal(store_outbox_has(f->st, "d-rolled-back", &has), ALLOT_OK);
	assert_false(has);
	int n = 0;
	assert_int_equal(store_audit_list(f->st, 0, -1, count_audit, &n), ALLOT_OK);
	assert_int_equal(n, 0);
	struct ledger_rejection out;
	assert_int_equal(store_reject_find(f->st, "cscs", "d-rolled-back", &out), ALLOT_E_NOT_FOUND);
	uint64_t size = 9;
	uint8_t root[32];
	assert_int_equal(store_tlog_head(f->st, &size, root), ALLOT_OK);
	assert_int_equal(size, 0);
	txn_round(f, true, "d-committed");
	assert_int_equal(store_outbox_has(f->st, "d-committed", &has), ALLOT_OK);
	assert_true(has);
	assert_int_equal(store_audit_list(f->st, 0, -1, count_audit, &n), ALLOT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_reject_find(f->st, "cscs", "d-committed", &out), ALLOT_OK);
	assert_int_equal(store_tlog_head(f->st, &size, root), ALLOT_OK);
	assert_int_equal(size, 1); /* the audit entry's leaf, committed with it */
}

static void test_readonly(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct api_key k = {.id = "k1", .role = "admin", .created_at = 1, .created_by = "admin"};
	memset(k.secret_sha256, 7, 32);
	assert_int_equal(store_key_insert(f->st, &k, NULL), ALLOT_OK);
	struct store *ro = NULL;
	char msg[512];
	if (store_pg_open_readonly(f->uri, &ro, msg, sizeof msg))
		fail_msg("store_pg_open_readonly: %s", msg);
	struct api_key out;
	assert_int_equal(store_key_find_by_hash(ro, k.secret_sha256, &out), ALLOT_OK);
	assert_string_equal(out.id, "k1");
	struct api_key k2 = k;
	snprintf(k2.id, sizeof k2.id, "k2");
	k2.secret_sha256[0] = 8;
	assert_int_equal(store_key_insert(ro, &k2, NULL), ALLOT_E_STORE);
	assert_non_null(strstr(ro->errmsg, "read-only"));
	/* and the server refuses its sessions' writes too */
	static const char ins[] = "INSERT INTO audit_log(at, actor, action) VALUES (1, 'a', 'b')";
	PGconn *c;
	bool own;
	assert_int_equal(pg_get((struct pg_store *)ro, &c, &own), ALLOT_OK);
	allot_err e;
	assert_null(pg_run((struct pg_store *)ro, c, ins, 0, NULL, &e));
	assert_int_equal(e, ALLOT_E_STORE);
	assert_non_null(strstr(ro->errmsg, "read-only"));
	pg_put((struct pg_store *)ro, c, false);
	store_close(ro);
	assert_int_equal(store_key_find_by_hash(f->st, k2.secret_sha256, &out), ALLOT_E_NOT_FOUND);

	/* an empty database is not read: it has no schema yet */
	char db2[64], uri2[1024];
	pgfx_create(db2, sizeof db2, uri2, sizeof uri2);
	assert_int_equal(store_pg_open_readonly(uri2, &ro, msg, sizeof msg), ALLOT_E_STORE);
	assert_non_null(strstr(msg, "schema version 0"));
	pgfx_drop(db2);
}

static void test_owner_lock(void **state)
{
	struct pgfx *f = *state;
	PGFX_NEED(f);
	struct store_owner *o1 = NULL, *o2 = NULL;
	char msg[512] = "", want[64];
	assert_int_equal(store_pg_owner_acquire(f->uri, "unit owner", &o1, msg, sizeof msg),
			 ALLOT_OK);
	assert_non_null(o1);
	assert_int_equal(store_pg_owner_acquire(f->uri, "second", &o2, msg, sizeof msg),
			 ALLOT_E_CONFLICT);
	assert_null(o2);
	snprintf(want, sizeof want, "is in use by another process: pid %d on host ", (int)getpid());
	if (!strstr(msg, want) || !strstr(msg, "(unit owner) since ") || !strstr(msg, f->db))
		fail_msg("refusal: %s", msg);
	assert_null(strchr(msg, '\n'));
	/* another database has an owner of its own */
	char db2[64], uri2[1024];
	pgfx_create(db2, sizeof db2, uri2, sizeof uri2);
	assert_int_equal(store_pg_owner_acquire(uri2, "other", &o2, msg, sizeof msg), ALLOT_OK);
	store_pg_owner_release(o2);
	pgfx_drop(db2);
	/* released: the next one takes it */
	store_pg_owner_release(o1);
	assert_int_equal(store_pg_owner_acquire(f->uri, "second", &o2, msg, sizeof msg), ALLOT_OK);
	store_pg_owner_release(o2);
	store_pg_owner_release(NULL);
}

static void test_unreachable(void **state)
{
	(void)state;
	struct store *st = NULL;
	char msg[512] = "";
	assert_int_equal(store_pg_open("postgresql:///nosuchdb?host=/nonexistent-dir", &st, msg,
				       sizeof msg),
			 ALLOT_E_UNAVAILABLE);
	assert_null(st);
	assert_non_null(strstr(msg, "cannot connect to PostgreSQL"));
	struct store_owner *o = NULL;
	assert_int_equal(store_pg_owner_acquire("postgresql:///nosuchdb?host=/nonexistent-dir",
						"x", &o, msg, sizeof msg),
			 ALLOT_E_UNAVAILABLE);
	assert_null(o);
	assert_true(store_uri_is_pg("postgres://h/db"));
	assert_true(store_uri_is_pg("postgresql:///db"));
	assert_false(store_uri_is_pg("var/allot.db"));
	assert_false(store_uri_is_pg("postgres:/x"));
	assert_false(store_uri_is_pg(NULL));
	/* printed without a password, however it is given */
	char buf[256];
	assert_string_equal(store_uri_printable("postgres://alice:s3cret@db.example:5432/allot?"
						"sslmode=require&password=x&application_name=a",
						buf, sizeof buf),
			    "postgres://alice@db.example:5432/allot?sslmode=require&"
			    "application_name=a");
	assert_string_equal(store_uri_printable("postgresql://u@h/d", buf, sizeof buf),
			    "postgresql://u@h/d");
	assert_string_equal(store_uri_printable("postgresql:///postgres?host=/tmp/x&user=allot",
						buf, sizeof buf),
			    "postgresql:///postgres?host=/tmp/x&user=allot");
	assert_string_equal(store_uri_printable("postgres://h/d?password=p", buf, sizeof buf),
			    "postgres://h/d");
	const char *path = "var/allot.db";
	assert_ptr_equal(store_uri_printable(path, buf, sizeof buf), path);
	char small[12];
	assert_string_equal(store_uri_printable("postgres://u:p@host/db", small, sizeof small),
			    "postgres://");
}

int main(void)
{
	pgfx_note_skips("test_pg_pool");
	const struct CMUnitTest tests[] = {
		PGFX_TEST(test_reconnect),
		PGFX_TEST(test_prepared_once),
		PGFX_TEST(test_prepared_in_pipeline),
		PGFX_TEST(test_sqlstates),
		PGFX_TEST(test_pool_threads),
		PGFX_TEST(test_pool_exhausted),
		PGFX_TEST(test_thread_txn),
		PGFX_TEST(test_readonly),
		PGFX_TEST(test_owner_lock),
		cmocka_unit_test(test_unreachable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
