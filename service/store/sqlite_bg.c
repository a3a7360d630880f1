/* sqlite_bg.c — the SQLite store's background thread: the flusher that
 * makes DEFERRED commits durable within the flush interval, and the
 * checkpointer (the writer connection runs with wal_autocheckpoint=0, so
 * no commit ever pays for a checkpoint).
 *
 * Flushing: a DEFERRED commit runs with synchronous=NORMAL, so its frames
 * are written to the -wal file (the kernel's page cache: a crash or kill -9
 * of the process loses nothing) but not fsynced.  Every flush interval the
 * thread fdatasyncs the -wal file if a DEFERRED commit is newer than the
 * last flush.  A FULL commit fsyncs the same file, so it makes every
 * earlier DEFERRED commit durable too and counts as a flush.  SQLite itself
 * fsyncs the log before a checkpoint copies it into the database and
 * before the log is started over, so no unflushed frame is ever
 * overwritten.
 *
 * Checkpoints, on the thread's own connection:
 *   - PASSIVE once the log holds a quarter of its bound (16,384 frames by
 *     default), without the store's lock: it copies pages beside the
 *     writer's commits and never blocks them.  Not more often: when a
 *     write finds the log wholly copied it starts the log over, and the
 *     first commit of a new log fsyncs the log's header under the store's
 *     lock (SQLite does, against out-of-order writes), so every start over
 *     makes writers wait for one fsync.  At SQLite's usual 1,000 frames
 *     that came several times a second under load, and showed as
 *     settlements waiting 16-100 ms on a busy disk;
 *   - once the log holds SQ_WAL_MAX_FRAMES_DEFAULT (the writer kept appending
 *     while the passive ones ran, so the log was never wholly copied at the
 *     start of a transaction and could not start over): PASSIVE beside the
 *     writer, then, unless a write started the log over meanwhile (it
 *     often does: the passive one copied everything before the next
 *     BEGIN), PASSIVE under the store's lock for what came meanwhile (no
 *     transaction in between, so everything is copied and the next write
 *     starts the log over): the bound on the log's size, at the price of
 *     writers waiting for a small checkpoint's two fsyncs;
 *   - once no commit came for SQ_IDLE_MS: PASSIVE beside the writer, then
 *     RESTART under the store's lock (the next write starts the log over);
 *   - at close: TRUNCATE.
 * The file keeps its size when the log starts over: no journal_size_limit,
 * which would cut the file on the first commit of the new log, under the
 * store's lock, beside the header's fsync (such commits took 16-100 ms
 * with the disk busy).  The bound caps the size.
 */
#include "store/sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"

#define SQ_FLUSH_MS_DEFAULT 50
#define SQ_FLUSH_MS_MAX 10000
#define SQ_CKPT_MIN_FRAMES 1000  /* the lowest passive threshold (tests) */
/* The log's bound (frames), before a checkpoint under the store's lock
 * starts it over: each such checkpoint makes writers wait for two fsyncs
 * (2-12 ms seen), so it should be rare (at 1,000 settlements/s, ~10,000
 * frames/s: every 6-7 s).  Frames older than the last checkpoint cost
 * readers nothing (lookups start past them); only disk space. */
#define SQ_WAL_MAX_FRAMES_DEFAULT 65536  /* 256 MiB of 4 KiB pages */
#define SQ_IDLE_MS 1000
#define SQ_TICK_MAX_MS 100       /* wakes at least this often (checkpoints) */

struct sq_bg {
	struct sqlite_store *s;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;          /* guards everything below */
	pthread_cond_t cv;           /* stop or a new interval */
	bool stop;
	int flush_ms;
	int walfd;                   /* the -wal file, for fdatasync; -1: none */
	sqlite3 *ck;                 /* the checkpointer's connection */
	uint64_t deferred_seq;       /* DEFERRED commits so far */
	uint64_t durable_seq;        /* of those, known to be on disk */
	uint64_t commit_seq;         /* every commit, for idleness */
	int64_t first_undurable_ms;  /* when the oldest undurable commit was made (or earlier) */
	int64_t wal_frames;          /* frames in the log after the last commit */
	int64_t wal_max_frames;      /* the bound (SQ_WAL_MAX_FRAMES_DEFAULT) */
	struct store_sync_stats st;
};

static int64_t bg_now_ms(void) { return time_mono_us() / 1000; }

/* The writer's commit hook: frames now in the log (SQLite calls it after
 * each commit of the writer connection, under the store's lock). */
static int bg_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq_bg *bg = arg;
	pthread_mutex_lock(&bg->mu);
	bg->wal_frames = frames;
	bool behind = frames >= 2 * bg->wal_max_frames;
	pthread_mutex_unlock(&bg->mu);
	if (!behind)
		return SQLITE_OK;
	/* The thread fell behind (a machine starved of CPU can leave it
	 * asleep for seconds): the committing writer checkpoints itself,
	 * still under the store's lock and with no transaction open, so
	 * everything is copied and the next write starts the log over.  The
	 * log never passes twice its bound by more than one transaction. */
	int nlog = 0, nckpt = 0;
	int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
	pthread_mutex_lock(&bg->mu);
	bg->st.commit_checkpoints++;
	pthread_mutex_unlock(&bg->mu);
	if (rc != SQLITE_OK)
		log_warnx("store: checkpoint at the log's bound: %s", sqlite3_errmsg(db));
	return SQLITE_OK;
}

bool sq_bg_deferred_ok(struct sqlite_store *s)
{
	struct sq_bg *bg = s->bg;
	return bg && bg->walfd >= 0 && __atomic_load_n(&bg->flush_ms, __ATOMIC_RELAXED) > 0;
}

void sq_bg_committed(struct sqlite_store *s, enum store_sync sync)
{
	struct sq_bg *bg = s->bg;
	if (!bg)
		return;
	pthread_mutex_lock(&bg->mu);
	bg->commit_seq++;
	if (sync == STORE_SYNC_DEFERRED) {
		if (bg->durable_seq == bg->deferred_seq) {
			/* The first to wait: the flusher sets its deadline. */
			bg->first_undurable_ms = bg_now_ms();
			pthread_cond_signal(&bg->cv);
		}
		bg->deferred_seq++;
		bg->st.deferred_commits++;
	} else {
		bg->durable_seq = bg->deferred_seq; /* the fsync covered the whole file */
		bg->st.full_commits++;
	}
	pthread_mutex_unlock(&bg->mu);
}

/* fdatasync of the log if a DEFERRED commit is not yet on disk.  Called
 * without bg->mu held. */
static allot_err bg_flush(struct sq_bg *bg)
{
	pthread_mutex_lock(&bg->mu);
	uint64_t target = bg->deferred_seq;
	bool need = bg->durable_seq < target && bg->walfd >= 0;
	int64_t started = bg_now_ms(), t0 = time_mono_us();
	pthread_mutex_unlock(&bg->mu);
	if (!need)
		return ALLOT_OK;
	/* Every frame of the commits counted in target was written before
	 * their COMMIT returned, hence before this call. */
	if (fdatasync(bg->walfd) != 0) {
		log_warnx("store: fdatasync of the write-ahead log: %s", strerror(errno));
		return ALLOT_E_STORE;
	}
	metrics_observe(MH_FSYNC_SECONDS, time_mono_us() - t0);
	pthread_mutex_lock(&bg->mu);
	if (bg->durable_seq < target)
		bg->durable_seq = target;
	/* Commits past target came after started: their deadline is no
	 * earlier than started + interval. */
	if (bg->durable_seq < bg->deferred_seq)
		bg->first_undurable_ms = started;
	bg->st.flushes++;
	if (time_mono_us() - t0 > bg->st.max_flush_us)
		bg->st.max_flush_us = time_mono_us() - t0;
	pthread_mutex_unlock(&bg->mu);
	return ALLOT_OK;
}

/* One checkpoint on the thread's connection; locked: under the store's
 * lock (no writer in between).  Returns whether it ran to completion. */
static bool bg_checkpoint(struct sq_bg *bg, int mode, bool locked)
{
	if (locked)
		pthread_mutex_lock(&bg->s->lock);
	int64_t t0 = time_mono_us();
	int nlog = 0, nckpt = 0;
	int rc = sqlite3_wal_checkpoint_v2(bg->ck, NULL, mode, &nlog, &nckpt);
	if (mode == SQLITE_CHECKPOINT_TRUNCATE && rc == SQLITE_OK) {
		pthread_mutex_lock(&bg->mu);
		bg->wal_frames = 0;
		pthread_mutex_unlock(&bg->mu);
	}
	int64_t took = time_mono_us() - t0;
	if (locked)
		pthread_mutex_unlock(&bg->s->lock);
	pthread_mutex_lock(&bg->mu);
	bg->st.checkpoints++;
	if (locked) {
		bg->st.locked_checkpoints++;
		if (took > bg->st.max_locked_us)
			bg->st.max_locked_us = took;
	}
	pthread_mutex_unlock(&bg->mu);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
		log_warnx("store: checkpoint: %s", sqlite3_errmsg(bg->ck));
	return rc == SQLITE_OK && nlog == nckpt;
}

/* The thread: flushes when the oldest undurable commit is flush_ms old
 * (so at most one fdatasync per interval, and no commit waits longer than
 * the interval plus one fdatasync), checkpoints every SQ_TICK_MAX_MS. */
static void *bg_main(void *arg)
{
	struct sq_bg *bg = arg;
	int64_t last_commit_ms = bg_now_ms(), next_tick = last_commit_ms + SQ_TICK_MAX_MS;
	uint64_t seen_commits = 0;
	int64_t ckpt_frames = -1;    /* wal_frames when last checkpointed */
	int64_t locked_at = -1;      /* wal_frames at the last locked checkpoint */
	bool truncated = true;
	pthread_mutex_lock(&bg->mu);
	while (!bg->stop) {
		int64_t now = bg_now_ms();
		int64_t due = bg->durable_seq < bg->deferred_seq
				      ? bg->first_undurable_ms + bg->flush_ms
				      : INT64_MAX;
		if (due > now && next_tick > now) {
			int64_t until = due < next_tick ? due : next_tick;
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			int64_t ns = (int64_t)ts.tv_nsec + (until - now) * 1000000LL;
			ts.tv_sec += (time_t)(ns / 1000000000LL);
			ts.tv_nsec = (long)(ns % 1000000000LL);
			pthread_cond_timedwait(&bg->cv, &bg->mu, &ts);
			continue;
		}
		bool tick = next_tick <= now;
		if (tick)
			next_tick = now + SQ_TICK_MAX_MS;
		if (bg->commit_seq != seen_commits) {
			seen_commits = bg->commit_seq;
			last_commit_ms = now;
			truncated = false;
		}
		int64_t frames = bg->wal_frames, max_frames = bg->wal_max_frames;
		pthread_mutex_unlock(&bg->mu);

		if (due <= now)
			bg_flush(bg);
		if (locked_at >= 0 && (frames < locked_at || frames >= locked_at + max_frames))
			locked_at = -1; /* started over (or never did: try again) */
		if (!tick) {
		} else if (frames >= max_frames && locked_at < 0) {
			/* The bulk beside the writer first, then under the lock
			 * only what came meanwhile. */
			bg_checkpoint(bg, SQLITE_CHECKPOINT_PASSIVE, false);
			/* Often a write started the log over meanwhile (the
			 * passive one copied everything before the next BEGIN):
			 * then nobody needs to wait. */
			pthread_mutex_lock(&bg->mu);
			frames = bg->wal_frames;
			pthread_mutex_unlock(&bg->mu);
			if (frames >= max_frames) {
				bg_checkpoint(bg, SQLITE_CHECKPOINT_PASSIVE, true);
				/* Not again before the log has started over (a slow
				 * first commit can keep the old count a while). */
				locked_at = frames;
			}
			ckpt_frames = frames;
		} else if (frames >= max_frames / 4 && frames != ckpt_frames) {
			bg_checkpoint(bg, SQLITE_CHECKPOINT_PASSIVE, false);
			ckpt_frames = frames;
		} else if (!truncated && now - last_commit_ms >= SQ_IDLE_MS) {
			bg_checkpoint(bg, SQLITE_CHECKPOINT_PASSIVE, false);
			truncated = bg_checkpoint(bg, SQLITE_CHECKPOINT_RESTART, true);
			ckpt_frames = -1;
		}
		pthread_mutex_lock(&bg->mu);
	}
	pthread_mutex_unlock(&bg->mu);
	return NULL;
}

allot_err sq_bg_open(struct sqlite_store *s, const char *path, char *msg, size_t msgsz)
{
	struct sq_bg *bg = calloc(1, sizeof *bg);
	if (!bg) {
		snprintf(msg, msgsz, "out of memory");
		return ALLOT_E_NOMEM;
	}
	bg->s = s;
	bg->walfd = -1;
	bg->flush_ms = SQ_FLUSH_MS_DEFAULT;
	bg->wal_max_frames = SQ_WAL_MAX_FRAMES_DEFAULT;
	pthread_mutex_init(&bg->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&bg->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->bg = bg;
	sqlite3_wal_hook(s->db, bg_wal_hook, bg); /* also keeps autocheckpoints off */

	/* No log file (an in-memory database): every commit stays FULL and
	 * nothing is checkpointed in the background. */
	char wal[4096];
	snprintf(wal, sizeof wal, "%s-wal", path);
	bg->walfd = open(wal, O_RDONLY | O_CLOEXEC);
	if (bg->walfd < 0)
		return ALLOT_OK;
	if (sqlite3_open_v2(path, &bg->ck, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    sq_vfs_name()) !=
		    SQLITE_OK ||
	    sqlite3_exec(bg->ck, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(msg, msgsz, "cannot open the checkpointer's connection to %s: %s", path,
			 bg->ck ? sqlite3_errmsg(bg->ck) : "out of memory");
		return ALLOT_E_STORE;
	}
	sqlite3_db_config(bg->ck, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_wal_autocheckpoint(bg->ck, 0);
	if (pthread_create(&bg->thread, NULL, bg_main, bg) != 0) {
		snprintf(msg, msgsz, "cannot start the store's background thread");
		return ALLOT_E_STORE;
	}
	bg->running = true;
	return ALLOT_OK;
}

void sq_bg_close(struct sqlite_store *s)
{
	struct sq_bg *bg = s->bg;
	if (!bg)
		return;
	if (bg->running) {
		pthread_mutex_lock(&bg->mu);
		bg->stop = true;
		pthread_cond_signal(&bg->cv);
		pthread_mutex_unlock(&bg->mu);
		pthread_join(bg->thread, NULL);
	}
	bg_flush(bg);
	if (bg->ck) {
		bg_checkpoint(bg, SQLITE_CHECKPOINT_TRUNCATE, true);
		sqlite3_close(bg->ck);
	}
	if (bg->walfd >= 0)
		close(bg->walfd);
	sqlite3_wal_hook(s->db, NULL, NULL);
	pthread_mutex_destroy(&bg->mu);
	pthread_cond_destroy(&bg->cv);
	free(bg);
	s->bg = NULL;
}

void sq_set_flush_ms(struct store *st, int ms)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	struct sq_bg *bg = s->bg;
	if (!bg)
		return;
	if (ms < 0)
		ms = 0;
	if (ms > SQ_FLUSH_MS_MAX)
		ms = SQ_FLUSH_MS_MAX;
	pthread_mutex_lock(&bg->mu);
	__atomic_store_n(&bg->flush_ms, ms, __ATOMIC_RELAXED);
	pthread_cond_signal(&bg->cv);
	pthread_mutex_unlock(&bg->mu);
	if (ms == 0)
		bg_flush(bg); /* from now on every commit is FULL; cover the earlier ones */
}

void sq_set_wal_limit(struct store *st, int64_t frames)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	if (!s->bg)
		return;
	pthread_mutex_lock(&s->bg->mu);
	s->bg->wal_max_frames = frames >= 4 * SQ_CKPT_MIN_FRAMES ? frames : 4 * SQ_CKPT_MIN_FRAMES;
	pthread_mutex_unlock(&s->bg->mu);
}

allot_err sq_flush(struct store *st)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	return s->bg ? bg_flush(s->bg) : ALLOT_OK;
}

void sq_sync_stats(struct store *st, struct store_sync_stats *out)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	memset(out, 0, sizeof *out);
	struct sq_bg *bg = s->bg;
	if (!bg)
		return;
	pthread_mutex_lock(&bg->mu);
	*out = bg->st;
	out->undurable = bg->deferred_seq - bg->durable_seq;
	out->wal_frames = bg->wal_frames;
	out->flush_ms = bg->flush_ms;
	pthread_mutex_unlock(&bg->mu);
}
