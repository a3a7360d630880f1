/* pg_ledger_sync.c — durability classes on PostgreSQL (store/store.h,
 * "Durability"; docs/POSTGRES.md, "Durability").
 *
 * FULL: the transaction commits with synchronous_commit on (the session's
 * setting, store/pg_conn.c): COMMIT returns once its WAL is flushed (and,
 * with synchronous_standby_names, on the standby).  DEFERRED (gate
 * settlements): `SET LOCAL synchronous_commit = off` — COMMIT returns once
 * the WAL is written to the server's buffers; a crash of allotd loses
 * nothing, a crash of the server can lose the last moments.  The server's
 * WAL writer flushes them within 3 × wal_writer_delay (200 ms by default);
 * the flusher here bounds it by --flush-ms whatever that setting is: once
 * a deferred commit is older than the interval it runs a tiny transaction
 * that takes a transaction id and commits synchronously, whose WAL flush
 * covers every earlier commit record.  store_flush does the same at once
 * (before a log checkpoint is signed, docs/TLOG.md).  set_wal_limit has
 * no meaning here (the server checkpoints by max_wal_size): a no-op. */
#include "store/pg_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"

#define PG_FLUSH_MS_DEFAULT 50
#define PG_FLUSH_MS_MAX 10000

struct pg_sync {
	struct pg_store *ps;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool started, stop;
	int flush_ms;                 /* also read without mu (atomic) */
	uint64_t deferred_seq;        /* deferred commits so far */
	uint64_t durable_seq;         /* of them, known flushed */
	int64_t first_undurable_ms;   /* when the oldest unflushed one committed */
	struct store_sync_stats st;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Flushes the server's WAL up to now if a deferred commit may not be on
 * disk yet.  Called without y->mu. */
static allot_err sync_flush(struct pg_sync *y)
{
	/* A transaction id makes the commit write a commit record; with
	 * synchronous_commit on, its flush covers every record before it. */
	static const char q[] = "SELECT pg_current_xact_id()";
	pthread_mutex_lock(&y->mu);
	uint64_t target = y->deferred_seq;
	bool need = y->durable_seq < target;
	pthread_mutex_unlock(&y->mu);
	if (!need)
		return ALLOT_OK;
	int64_t t0 = time_mono_us();
	PGconn *c = NULL;
	bool own = false;
	allot_err e = pg_get(y->ps, &c, &own);
	if (!e && !own) {
		/* The calling thread's transaction: its COMMIT flushes, not this. */
		pgs_fail(y->ps, ALLOT_E_STORE,
			 "store flush inside a transaction");
		return ALLOT_E_INTERNAL;
	}
	if (!e) {
		PGresult *r = pg_run(y->ps, c, q, 0, NULL, &e);
		PQclear(r);
		if (r)
			e = ALLOT_OK;
		pg_put(y->ps, c, e == ALLOT_E_UNAVAILABLE);
	}
	if (e)
		return e;
	int64_t took = time_mono_us() - t0;
	metrics_observe(MH_FSYNC_SECONDS, took); /* the flusher's flush: an fsync */
	pthread_mutex_lock(&y->mu);
	if (y->durable_seq < target)
		y->durable_seq = target;
	if (y->durable_seq < y->deferred_seq)
		y->first_undurable_ms = now_ms(); /* came in during the flush */
	y->st.flushes++;
	if (took > y->st.max_flush_us)
		y->st.max_flush_us = took;
	pthread_mutex_unlock(&y->mu);
	return ALLOT_OK;
}

static void *sync_main(void *arg)
{
	struct pg_sync *y = arg;
	pthread_mutex_lock(&y->mu);
	while (!y->stop) {
		if (y->flush_ms == 0 || y->durable_seq == y->deferred_seq) {
			pthread_cond_wait(&y->cv, &y->mu);
			continue;
		}
		int64_t due = y->first_undurable_ms + y->flush_ms, now = now_ms();
		if (now < due) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			int64_t ns = ts.tv_nsec + (due - now) * 1000000;
			ts.tv_sec += ns / 1000000000;
			ts.tv_nsec = ns % 1000000000;
			pthread_cond_timedwait(&y->cv, &y->mu, &ts);
			continue;
		}
		pthread_mutex_unlock(&y->mu);
		if (sync_flush(y)) {
			log_warnx("store: flushing PostgreSQL's write-ahead log failed: %s",
				  y->ps->base.errmsg);
			struct timespec pause = {0, 100 * 1000000};
			nanosleep(&pause, NULL); /* the server is away: do not spin */
		}
		pthread_mutex_lock(&y->mu);
	}
	pthread_mutex_unlock(&y->mu);
	return NULL;
}

allot_err pg_sync_open(struct pg_store *ps, struct pg_sync **out, char *msg, size_t msgsz)
{
	struct pg_sync *y = calloc(1, sizeof *y);
	if (!y)
		return ALLOT_E_NOMEM;
	y->ps = ps;
	y->flush_ms = PG_FLUSH_MS_DEFAULT;
	pthread_mutex_init(&y->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&y->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = y;
	if (pthread_create(&y->th, NULL, sync_main, y) != 0) {
		snprintf(msg, msgsz, "cannot start the store's flusher thread");
		return ALLOT_E_STORE;
	}
	y->started = true;
	return ALLOT_OK;
}

void pg_sync_close(struct pg_sync *y)
{
	if (!y)
		return;
	if (y->started) {
		pthread_mutex_lock(&y->mu);
		y->stop = true;
		pthread_cond_signal(&y->cv);
		pthread_mutex_unlock(&y->mu);
		pthread_join(y->th, NULL);
	}
	if (sync_flush(y))
		log_warnx("store: the last deferred commits may not be on disk: %s",
			  y->ps->base.errmsg);
	pthread_cond_destroy(&y->cv);
	pthread_mutex_destroy(&y->mu);
	free(y);
}

bool pg_sync_deferred_ok(struct pg_sync *y)
{
	return y && __atomic_load_n(&y->flush_ms, __ATOMIC_RELAXED) > 0;
}

void pg_sync_committed(struct pg_sync *y, enum store_sync sync)
{
	if (!y)
		return;
	pthread_mutex_lock(&y->mu);
	if (sync == STORE_SYNC_DEFERRED) {
		if (y->durable_seq == y->deferred_seq) {
			y->first_undurable_ms = now_ms(); /* the flusher's deadline starts */
			pthread_cond_signal(&y->cv);
		}
		y->deferred_seq++;
		y->st.deferred_commits++;
	} else {
		y->durable_seq = y->deferred_seq; /* its flush covered every earlier commit */
		y->st.full_commits++;
	}
	pthread_mutex_unlock(&y->mu);
}

void pg_set_flush_ms(struct store *st, int ms)
{
	struct pg_sync *y = pg_ledger_sync((struct pg_store *)st);
	if (!y)
		return;
	if (ms < 0)
		ms = 0;
	if (ms > PG_FLUSH_MS_MAX)
		ms = PG_FLUSH_MS_MAX;
	pthread_mutex_lock(&y->mu);
	__atomic_store_n(&y->flush_ms, ms, __ATOMIC_RELAXED);
	pthread_cond_signal(&y->cv);
	pthread_mutex_unlock(&y->mu);
	if (ms == 0 && sync_flush(y)) /* every commit is FULL now; cover the earlier ones */
		log_warnx("store: flushing PostgreSQL's write-ahead log failed: %s",
			  ((struct pg_store *)st)->base.errmsg);
}

allot_err pg_flush(struct store *st)
{
	struct pg_sync *y = pg_ledger_sync((struct pg_store *)st);
	return y ? sync_flush(y) : ALLOT_OK;
}

void pg_sync_stats(struct store *st, struct store_sync_stats *out)
{
	struct pg_sync *y = pg_ledger_sync((struct pg_store *)st);
	memset(out, 0, sizeof *out);
	if (!y)
		return;
	pthread_mutex_lock(&y->mu);
	*out = y->st;
	out->undurable = y->deferred_seq - y->durable_seq;
	out->flush_ms = y->flush_ms;
	pthread_mutex_unlock(&y->mu);
}

void pg_set_wal_limit(struct store *st, int64_t frames)
{
	(void)st;
	(void)frames; /* the server's checkpoints: max_wal_size */
}
