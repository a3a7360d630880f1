/* test_durability.c — durability classes of ledger commits and the SQLite
 * store's background flusher and checkpointer (store/sqlite_bg.c,
 * ledger.c group_sync).
 *
 * A shim VFS, registered as the default before any store opens, counts
 * xSync calls per file kind (database, write-ahead log) and per thread, and
 * can hold the next log sync until released, which lines up a group commit
 * deterministically:
 *   - a DEFERRED commit does not sync; a FULL one does and covers it;
 *   - the flusher makes a DEFERRED commit durable within the interval;
 *     interval 0 makes every commit FULL;
 *   - checkpoints never run in the committing thread; the log is
 *     checkpointed in the background once it is large, held near its
 *     bound under a writer that never pauses, started over when idle,
 *     removed at close, and the rows survive a reopen;
 *   - kill -9 right after DEFERRED commits (no flush yet) loses none;
 *   - through the ledger: a group of settlements commits DEFERRED, a
 *     provider batch FULL, and a group holding both FULL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>

#include "api/usage_wire.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/b64.h"
#include "crypto/ed25519.h"
#include "daemon/app.h"
#include "ledger/ledger.h"
#include "ledger/record.h"
#include "store/store.h"
#include "support/shimvfs.h"
#include "support/tmpdir.h"

/* ---- the counting VFS ------------------------------------------------------ */

static int wal_syncs, db_syncs;            /* all threads (atomics) */
static __thread int my_wal_syncs, my_db_syncs;
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static bool hold_armed, holding;           /* hold the next log sync */
static __thread bool may_hold;             /* ... of a thread that set this */

static void count_sync(bool wal)
{
	if (wal) {
		__atomic_add_fetch(&wal_syncs, 1, __ATOMIC_SEQ_CST);
		my_wal_syncs++;
		pthread_mutex_lock(&hold_mu);
		if (hold_armed && may_hold) {
			hold_armed = false;
			holding = true;
			pthread_cond_broadcast(&hold_cv);
			while (holding)
				pthread_cond_wait(&hold_cv, &hold_mu);
		}
		pthread_mutex_unlock(&hold_mu);
	} else {
		__atomic_add_fetch(&db_syncs, 1, __ATOMIC_SEQ_CST);
		my_db_syncs++;
	}
}

static void vfs_install(void)
{
	shimvfs_install("allot-count", &(struct shimvfs_hooks){.on_sync = count_sync});
}

static int nwal(void) { return __atomic_load_n(&wal_syncs, __ATOMIC_SEQ_CST); }

/* ---- store-level fixture ------------------------------------------------------- */

struct sfx {
	char dir[64], db[96];
	struct store *st;
	int seq;
};

static int sfx_setup(void **state)
{
	struct sfx *f = calloc(1, sizeof *f);
	tmpdir_make(f->dir, sizeof f->dir, "durability");
	snprintf(f->db, sizeof f->db, "%s/t.db", f->dir);
	char msg[256];
	assert_int_equal(store_open(f->db, &f->st, msg, sizeof msg), ALLOT_OK);
	*state = f;
	return 0;
}

static int sfx_teardown(void **state)
{
	struct sfx *f = *state;
	if (f->st)
		store_close(f->st);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

/* One ledger transaction of nrows rows, committed with class sync. */
static void commit_rows(struct sfx *f, enum store_sync sync, int nrows)
{
	assert_int_equal(store_ledger_begin_sync(f->st, sync), ALLOT_OK);
	for (int i = 0; i < nrows; i++) {
		struct ledger_row row;
		memset(&row, 0, sizeof row);
		struct usage_record *r = &row.rec;
		snprintf(r->provider, sizeof r->provider, "prov");
		snprintf(r->record_id, sizeof r->record_id, "r%d", f->seq++);
		snprintf(r->institution, sizeof r->institution, "i");
		snprintf(r->project, sizeof r->project, "p");
		snprintf(r->resource, sizeof r->resource, "cpu");
		r->quantity = 1;
		r->start_us = r->end_us = 1000000LL * 3600;
		r->canonical = "{\"padding\":\"................................................\"}";
		r->canonical_len = strlen(r->canonical);
		row.book_us = r->end_us;
		row.charge_micro = 7;
		row.charter_version = 1;
		assert_int_equal(store_ledger_insert_q(f->st, &row), ALLOT_OK);
	}
	assert_int_equal(store_ledger_commit(f->st), ALLOT_OK);
}

static int64_t total(struct store *st)
{
	struct ledger_level lv = {NULL, NULL, NULL};
	int64_t sum = -1;
	assert_int_equal(store_ledger_sum_q(st, &lv, 0, INT64_MAX / 2, &sum), ALLOT_OK);
	return sum;
}

static off_t wal_size(const struct sfx *f)
{
	char p[128];
	snprintf(p, sizeof p, "%s-wal", f->db);
	struct stat sb;
	return stat(p, &sb) == 0 ? sb.st_size : -1;
}

/* A DEFERRED commit writes the log without syncing it; the next FULL
 * commit syncs it (and so makes the DEFERRED one durable too). */
static void test_deferred_then_full(void **state)
{
	struct sfx *f = *state;
	store_set_flush_ms(f->st, 10000); /* the flusher stays out of the way */
	struct store_sync_stats s0, s1, s2;
	store_sync_stats(f->st, &s0);
	for (int round = 0; round < 3; round++) {
		int before = my_wal_syncs;
		commit_rows(f, STORE_SYNC_DEFERRED, 2);
		assert_int_equal(my_wal_syncs, before);
	}
	store_sync_stats(f->st, &s1);
	assert_int_equal(s1.deferred_commits - s0.deferred_commits, 3);
	assert_int_equal(s1.full_commits, s0.full_commits);
	assert_int_equal(s1.undurable, 3);
	int before = my_wal_syncs;
	commit_rows(f, STORE_SYNC_FULL, 1);
	assert_true(my_wal_syncs > before);
	store_sync_stats(f->st, &s2);
	assert_int_equal(s2.full_commits - s1.full_commits, 1);
	assert_int_equal(s2.undurable, 0);
	assert_int_equal(total(f->st), 7 * 7);
}

/* The flusher syncs a DEFERRED commit within the interval (plus slack for
 * a loaded machine), in its own thread. */
static void test_flush_bound(void **state)
{
	struct sfx *f = *state;
	static const int intervals[] = {20, 50};
	for (size_t k = 0; k < sizeof intervals / sizeof intervals[0]; k++) {
		store_set_flush_ms(f->st, intervals[k]);
		struct store_sync_stats s;
		store_sync_stats(f->st, &s);
		assert_int_equal(s.flush_ms, intervals[k]);
		uint64_t flushes = s.flushes;
		int mine = my_wal_syncs, all = nwal();
		int64_t t0 = time_mono_us();
		commit_rows(f, STORE_SYNC_DEFERRED, 1);
		assert_int_equal(my_wal_syncs, mine);
		do {
			usleep(2000);
			store_sync_stats(f->st, &s);
		} while (s.undurable && time_mono_us() - t0 < 5 * US_PER_SEC);
		int64_t ms = (time_mono_us() - t0) / 1000;
		assert_int_equal(s.undurable, 0);
		assert_true(s.flushes > flushes);
		/* fdatasync is not a VFS call: the shim sees no log sync from the
		 * flusher, only the stats do; the bound is what matters. */
		assert_int_equal(my_wal_syncs, mine);
		(void)all;
		print_message("  interval %d ms: durable after %lld ms\n", intervals[k], (long long)ms);
		assert_true(ms <= intervals[k] + 500);
	}
}

/* Interval 0: DEFERRED is not honoured, every commit syncs. */
static void test_flush_zero_is_full(void **state)
{
	struct sfx *f = *state;
	store_set_flush_ms(f->st, 0);
	struct store_sync_stats s0, s1;
	store_sync_stats(f->st, &s0);
	int before = my_wal_syncs;
	commit_rows(f, STORE_SYNC_DEFERRED, 1);
	assert_true(my_wal_syncs > before);
	store_sync_stats(f->st, &s1);
	assert_int_equal(s1.full_commits - s0.full_commits, 1);
	assert_int_equal(s1.deferred_commits, s0.deferred_commits);
	assert_int_equal(s1.undurable, 0);
}

/* Enough commits for several checkpoints: none runs in the committing
 * thread (it never syncs the database file), the background checkpoints,
 * the log starts over after an idle second, it is removed at close, and
 * every row is there after a reopen. */
static void test_checkpoints_off_the_commit_path(void **state)
{
	struct sfx *f = *state;
	store_set_flush_ms(f->st, 20);
	store_set_wal_limit(f->st, 16000);
	int db_mine = my_db_syncs;
	int64_t t0 = time_mono_us();
	int n = 0, restarts = 0;
	int64_t max_frames = 0, prev = 0;
	struct store_sync_stats s;
	/* A writer that never pauses: the log must still start over, either
	 * by itself after a passive checkpoint caught up or through the
	 * locked one at the bound; it never grows far past 16,000 frames
	 * (the thread looks every 100 ms). */
	do {
		for (int i = 0; i < 50; i++, n++)
			commit_rows(f, i % 10 ? STORE_SYNC_DEFERRED : STORE_SYNC_FULL, 4);
		store_sync_stats(f->st, &s);
		if (s.wal_frames > max_frames)
			max_frames = s.wal_frames;
		restarts += s.wal_frames < prev;
		prev = s.wal_frames;
	} while ((restarts < 2 || max_frames < 16000) && time_mono_us() - t0 < 20 * US_PER_SEC);
	print_message("  %d commits, %llu background checkpoints (%llu under the lock, longest "
		      "%lld us), %llu by a committing writer, the log started over %d times, at "
		      "most %lld frames\n", n,
		      (unsigned long long)s.checkpoints, (unsigned long long)s.locked_checkpoints,
		      (long long)s.max_locked_us, (unsigned long long)s.commit_checkpoints,
		      restarts, (long long)max_frames);
	assert_true(s.checkpoints > s.locked_checkpoints);
	assert_true(restarts >= 2);
	assert_true(max_frames >= 16000);          /* it did reach the bound... */
	/* ...and was held near it: by the thread, or, where a starved machine
	 * left the thread asleep, by the writer itself at twice the bound
	 * (plus the frames of the commits checkpoints ran beside). */
	assert_true(max_frames < 3 * 16000);
	/* Only a writer's own checkpoint syncs the database on this thread. */
	assert_true(my_db_syncs - db_mine <= 2 * (int)s.commit_checkpoints);
	/* Idle: within about a second the log is wholly checkpointed and
	 * reset, so the next commit starts it over. */
	uint64_t ck = s.checkpoints;
	t0 = time_mono_us();
	do {
		usleep(20000);
		store_sync_stats(f->st, &s);
	} while (s.checkpoints < ck + 2 && time_mono_us() - t0 < 5 * US_PER_SEC);
	assert_true(s.checkpoints >= ck + 2);
	usleep(50000);
	commit_rows(f, STORE_SYNC_DEFERRED, 1);
	store_sync_stats(f->st, &s);
	assert_true(s.wal_frames < 20);
	assert_true(wal_size(f) <= (off_t)3 * 16000 * (4096 + 24) + 32); /* never past the bound's reach */
	assert_true(my_db_syncs - db_mine <= 2 * (int)s.commit_checkpoints);
	/* More work, then close: everything durable and checkpointed. */
	commit_rows(f, STORE_SYNC_DEFERRED, 3);
	int64_t want = (int64_t)(f->seq) * 7;
	assert_int_equal(total(f->st), want);
	store_close(f->st);
	f->st = NULL;
	off_t ws = wal_size(f);
	assert_true(ws <= 0); /* removed at close (or empty) */
	char msg[256];
	assert_int_equal(store_open(f->db, &f->st, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(total(f->st), want);
}

/* A transaction that alone takes the log past twice its bound: the
 * committing writer checkpoints it at once (it does not wait for the
 * thread, which a starved machine can leave asleep for seconds), so the
 * next commit starts the log over; every row is still there. */
static void test_writer_checkpoints_at_twice_the_bound(void **state)
{
	struct sfx *f = *state;
	store_set_wal_limit(f->st, 4000); /* the lowest bound */
	struct store_sync_stats s;
	store_sync_stats(f->st, &s);
	assert_int_equal(s.commit_checkpoints, 0);
	commit_rows(f, STORE_SYNC_DEFERRED, 120000);
	store_sync_stats(f->st, &s);
	print_message("  one transaction of 120,000 rows: %lld frames, %llu checkpoints by the "
		      "writer\n", (long long)s.wal_frames, (unsigned long long)s.commit_checkpoints);
	assert_true(s.wal_frames >= 8000);
	assert_true(s.commit_checkpoints >= 1);
	commit_rows(f, STORE_SYNC_DEFERRED, 1);
	store_sync_stats(f->st, &s);
	assert_true(s.wal_frames < 8000); /* started over */
	assert_int_equal(total(f->st), (int64_t)f->seq * 7);
}

/* kill -9 right after DEFERRED commits, long before any flush: a child
 * process commits and kills itself; every row is there when the parent
 * reopens (the frames were written to the log before COMMIT returned). */
static void test_kill9_keeps_deferred(void **state)
{
	struct sfx *f = *state;
	store_close(f->st); /* the child opens its own */
	f->st = NULL;
	static const int nrows[] = {1, 7, 300};
	int64_t want = 0;
	for (size_t k = 0; k < sizeof nrows / sizeof nrows[0]; k++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			char msg[256];
			if (store_open(f->db, &f->st, msg, sizeof msg))
				_exit(3);
			store_set_flush_ms(f->st, 10000);
			for (int i = 0; i < nrows[k]; i++) {
				if (store_ledger_begin_sync(f->st, STORE_SYNC_DEFERRED))
					_exit(4);
				struct ledger_row row;
				memset(&row, 0, sizeof row);
				snprintf(row.rec.provider, sizeof row.rec.provider, "prov");
				snprintf(row.rec.record_id, sizeof row.rec.record_id, "k%zu-%d", k, i);
				snprintf(row.rec.institution, sizeof row.rec.institution, "i");
				snprintf(row.rec.project, sizeof row.rec.project, "p");
				snprintf(row.rec.resource, sizeof row.rec.resource, "cpu");
				row.rec.quantity = 1;
				row.rec.start_us = row.rec.end_us = 1000000LL * 3600;
				row.rec.canonical = "{}";
				row.rec.canonical_len = 2;
				row.book_us = row.rec.end_us;
				row.charge_micro = 11;
				row.charter_version = 1;
				if (store_ledger_insert_q(f->st, &row) || store_ledger_commit(f->st))
					_exit(5);
			}
			struct store_sync_stats ss;
			store_sync_stats(f->st, &ss);
			if (ss.undurable != (uint64_t)nrows[k] || ss.flushes != 0)
				_exit(6); /* nothing may have been flushed: the test would prove nothing */
			kill(getpid(), SIGKILL);
			_exit(7);
		}
		int status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);
		want += 11 * nrows[k];
		char msg[256];
		assert_int_equal(store_open(f->db, &f->st, msg, sizeof msg), ALLOT_OK);
		assert_int_equal(total(f->st), want);
		store_close(f->st);
		f->st = NULL;
	}
}

/* ---- through the ledger ------------------------------------------------------- */

static const char charter_fmt[] =
	"charter: durability-unit\n"
	"version: 1\n"
	"effective: 2026-01-01T00:00:00Z\n"
	"timezone: UTC\n"
	"rates:\n"
	"  - {resource: tokens_in,  model: m, credits: 0.0001}\n"
	"  - {resource: tokens_out, model: m, credits: 0.0003}\n"
	"  - {resource: cpu_seconds, credits: 0.001}\n"
	"providers:\n"
	"  - {id: local, builtin: true}\n"
	"  - {id: hpc, keys: [\"%s\"], resources: [cpu_seconds]}\n"
	"models:\n"
	"  - {id: m, provider: local, file: absent.gguf}\n"
	"institutions:\n"
	"  - id: epfl\n"
	"    allocation: {credits: 1000000, period: month}\n"
	"    projects:\n"
	"      - id: climate\n"
	"        allocation: {credits: 100000, period: month}\n"
	"        members: [alice@epfl.ch]\n";

struct lfx {
	char dir[64], db[96], keys[96], charter[96];
	struct app app;
	struct ed25519_keypair kp;
	int seq;
};

static int lfx_setup(void **state)
{
	struct lfx *f = calloc(1, sizeof *f);
	tmpdir_make(f->dir, sizeof f->dir, "durability");
	snprintf(f->db, sizeof f->db, "%s/allot.db", f->dir);
	snprintf(f->charter, sizeof f->charter, "%s/charter.yaml", f->dir);
	snprintf(f->keys, sizeof f->keys, "%s/keys", f->dir);
	assert_int_equal(ed25519_keygen(&f->kp), ALLOT_OK);
	char pub[ED25519_PUB_TEXT_MAX];
	ed25519_pub_format(f->kp.pub, pub);
	FILE *fp = fopen(f->charter, "w");
	assert_non_null(fp);
	fprintf(fp, charter_fmt, pub);
	fclose(fp);
	setenv("ALLOT_ADMIN_KEY", "test-durability-admin-key-012345", 1);
	f->app.cfg.db = f->db;
	f->app.cfg.charter = f->charter;
	f->app.cfg.keys = f->keys;
	f->app.cfg.deployment = "test";
	f->app.cfg.no_background = true;
	f->app.cfg.flush_ms = 10000; /* the flusher stays out of the way */
	f->app.cfg.flush_ms_set = true;
	char msg[512] = "";
	if (app_open(&f->app, msg, sizeof msg))
		fail_msg("app_open: %s", msg);
	*state = f;
	return 0;
}

static int lfx_teardown(void **state)
{
	struct lfx *f = *state;
	app_close(&f->app);
	tmpdir_remove(f->dir);
	ed25519_keypair_wipe(&f->kp);
	free(f);
	return 0;
}

/* A provider batch of one signed record. */
static allot_err ingest_one(struct lfx *f, int n)
{
	char a[TIME_FMT_MAX], b[TIME_FMT_MAX], id[32];
	int64_t end = time_now_us() - 60 * US_PER_SEC;
	snprintf(id, sizeof id, "batch-%d", n);
	json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:n,s:s,s:I,s:s,s:s,s:n,s:n,s:s,s:n}", "record_id",
			      id, "provider", "hpc", "institution", "epfl", "project", "climate",
			      "member", "resource", "cpu_seconds", "quantity", (json_int_t)10,
			      "start", time_format_rfc3339(end - 60 * US_PER_SEC, a), "end",
			      time_format_rfc3339(end, b), "class", "model", "kind", "usage",
			      "supersedes");
	assert_non_null(r);
	size_t len = 0;
	char *canon = record_canonical(r, &len);
	assert_non_null(canon);
	uint8_t sig[ED25519_SIG_LEN];
	assert_int_equal(ed25519_sign(&f->kp, canon, len, sig), ALLOT_OK);
	free(canon);
	char s64[100];
	b64_encode(sig, sizeof sig, s64);
	json_object_set_new(r, "sig", json_string(s64));
	json_t *recs = json_pack("[o]", r);
	struct usage_batch ub;
	struct ledger_counts c;
	char msg[256] = "";
	allot_err e = usage_wire_parse_records(recs, &ub, msg, sizeof msg);
	json_decref(recs);
	if (!e)
		e = ledger_ingest(f->app.ledger, "hpc", ub.items, ub.n, msg, sizeof msg);
	if (!e) {
		ledger_count(ub.items, ub.n, &c);
		if (c.accepted != 1)
			fail_msg("batch not accepted: %s: %s", ledger_outcome_name(ub.items[0].o),
				 ub.items[0].reason);
	}
	usage_batch_release(&ub);
	return e;
}

/* A gate-style settlement of two records. */
static allot_err settle_one(struct lfx *f, int n)
{
	struct usage_record recs[2];
	memset(recs, 0, sizeof recs);
	for (int k = 0; k < 2; k++) {
		struct usage_record *r = &recs[k];
		snprintf(r->record_id, sizeof r->record_id, "gate:t:%d-%s", n, k ? "out" : "in");
		snprintf(r->provider, sizeof r->provider, "local");
		snprintf(r->institution, sizeof r->institution, "epfl");
		snprintf(r->project, sizeof r->project, "climate");
		snprintf(r->member, sizeof r->member, "alice@epfl.ch");
		snprintf(r->resource, sizeof r->resource, k ? "tokens_out" : "tokens_in");
		snprintf(r->model, sizeof r->model, "m");
		r->quantity = 5;
		r->end_us = time_now_us();
		r->start_us = r->end_us - 1000;
		r->kind = RECORD_USAGE;
	}
	int64_t charge = 0;
	char reason[320] = "";
	allot_err e = ledger_settle_many(f->app.ledger, recs, 2, &charge, reason, sizeof reason);
	for (int k = 0; k < 2; k++)
		record_release(&recs[k]);
	if (e)
		print_message("settle: %s\n", reason);
	else
		assert_int_equal(charge, 5 * 100 + 5 * 300);
	return e;
}

/* Settlements alone: DEFERRED, no log sync in the answering thread.  A
 * provider batch alone: FULL. */
static void test_group_classes(void **state)
{
	struct lfx *f = *state;
	struct store_sync_stats s0, s1, s2;
	store_sync_stats(f->app.store, &s0);
	int before = my_wal_syncs;
	for (int i = 0; i < 5; i++)
		assert_int_equal(settle_one(f, f->seq++), ALLOT_OK);
	assert_int_equal(my_wal_syncs, before);
	store_sync_stats(f->app.store, &s1);
	assert_int_equal(s1.deferred_commits - s0.deferred_commits, 5);
	assert_int_equal(s1.full_commits, s0.full_commits);
	assert_int_equal(s1.undurable, 5);
	assert_int_equal(ingest_one(f, f->seq++), ALLOT_OK);
	assert_true(my_wal_syncs > before);
	store_sync_stats(f->app.store, &s2);
	assert_int_equal(s2.full_commits - s1.full_commits, 1);
	assert_int_equal(s2.deferred_commits, s1.deferred_commits);
	assert_int_equal(s2.undurable, 0); /* the batch's fsync covered the settlements */
}

struct job {
	struct lfx *f;
	int kind, n;   /* 0 settle, 1 ingest */
	allot_err e;
	bool hold;     /* its log sync may be held */
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	may_hold = j->hold;
	j->e = j->kind ? ingest_one(j->f, j->n) : settle_one(j->f, j->n);
	return NULL;
}

/* A group holding a settlement and a provider batch commits FULL, once:
 * the first group's leader is held inside its log sync while the other two
 * queue behind it. */
static void test_mixed_group_is_full(void **state)
{
	struct lfx *f = *state;
	struct job lead = {f, 1, f->seq++, ALLOT_OK, true}, a = {f, 0, f->seq++, ALLOT_OK, false},
		   b = {f, 1, f->seq++, ALLOT_OK, false};
	pthread_t t0, t1, t2;
	pthread_mutex_lock(&hold_mu);
	hold_armed = true;
	pthread_mutex_unlock(&hold_mu);
	assert_int_equal(pthread_create(&t0, NULL, job_main, &lead), 0);
	pthread_mutex_lock(&hold_mu);
	while (!holding)
		pthread_cond_wait(&hold_cv, &hold_mu);
	pthread_mutex_unlock(&hold_mu);
	/* The leader sits in its commit's sync. */
	struct store_sync_stats s0, s1;
	store_sync_stats(f->app.store, &s0);
	assert_int_equal(pthread_create(&t1, NULL, job_main, &a), 0);
	assert_int_equal(pthread_create(&t2, NULL, job_main, &b), 0);
	int64_t t = time_mono_us();
	while (ledger_group_queued(f->app.ledger) < 2 && time_mono_us() - t < 10 * US_PER_SEC)
		usleep(1000);
	assert_int_equal(ledger_group_queued(f->app.ledger), 2);
	pthread_mutex_lock(&hold_mu);
	holding = false;
	pthread_cond_broadcast(&hold_cv);
	pthread_mutex_unlock(&hold_mu);
	pthread_join(t0, NULL);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(lead.e, ALLOT_OK);
	assert_int_equal(a.e, ALLOT_OK);
	assert_int_equal(b.e, ALLOT_OK);
	store_sync_stats(f->app.store, &s1);
	/* The leader's group (committed after the hold) and one group of
	 * two, both FULL; nothing DEFERRED, nothing left undurable. */
	assert_int_equal(s1.full_commits - s0.full_commits, 2);
	assert_int_equal(s1.deferred_commits, s0.deferred_commits);
	assert_int_equal(s1.undurable, 0);
}

int main(void)
{
	log_set_quiet(true);
	vfs_install();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deferred_then_full, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_flush_bound, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_flush_zero_is_full, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints_off_the_commit_path, sfx_setup,
						sfx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_checkpoints_at_twice_the_bound, sfx_setup,
						sfx_teardown),
		cmocka_unit_test_setup_teardown(test_kill9_keeps_deferred, sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_group_classes, lfx_setup, lfx_teardown),
		cmocka_unit_test_setup_teardown(test_mixed_group_is_full, lfx_setup, lfx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
