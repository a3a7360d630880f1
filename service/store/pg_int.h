/* pg_int.h — private to the PostgreSQL backend's files (store/pg*.c) and
 * their tests.  SPEC section 9; docs/DEPLOY.md.
 *
 * The PostgreSQL store is built in steps (issue 13, docs/POSTGRES.md);
 * store_open opens postgres:// URIs with it (store_pg_open). */
#ifndef ALLOT_STORE_PG_INT_H
#define ALLOT_STORE_PG_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

/* The oldest server the SQL here is written for. */
#define PG_MIN_SERVER_VERSION 130000

/* Connects to uri (postgres:// or postgresql://, or key=value pairs) and
 * sets the session up: UTC, synchronous commit on, the server checked
 * against PG_MIN_SERVER_VERSION.  OUT: *out (PQfinish it). */
allot_err pg_connect(const char *uri, PGconn **out, char *msg, size_t msgsz);

/* Applies the embedded migrations newer than the database's, each in its
 * own transaction, under an advisory lock held for the transaction (nodes
 * starting together apply each migration once).  A database newer than this
 * binary is refused.  OUT: *version (may be NULL), the schema version now. */
allot_err pg_migrate(PGconn *c, int *version, char *msg, size_t msgsz);

/* The database's schema version: 0 for an empty database, -1 on error. */
int pg_schema_version(PGconn *c);

/* msg with its line breaks and runs of blanks folded into single spaces
 * (libpq's messages span lines; the log and errmsg take one). */
void pg_fold(char *msg);

/* ---- the store object (store/pg_store.c) -------------------------------
 * Contract between the backend's files (issue 13, docs/POSTGRES.md):
 *   pg_store.c   open/close, the connection pool, the thread's transaction,
 *                statement helpers, and the plain operations (keys,
 *                charters, audit, tokens, rejections, retry queue, outbox);
 *   pg_ledger*.c the ledger (records, buckets, bounds, sums, reports,
 *                sequence status, holds, durability classes, token_spent);
 *   pg_tlog.c    the transparency log (appends and reads).
 * Each file names its operations in a PG_*_OPS macro below that
 * pg_store.c's ops table lists. */
struct pg_ledger;   /* store/pg_ledger.c: sums, holds, bounds, sync stats */
struct pg_tlog;     /* store/pg_tlog.c: appends of the open transactions */

#define PG_POOL_MAX 16

struct pg_store {
	struct store base;
	char *uri;
	bool readonly;              /* store_open_readonly: every write fails */
	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;     /* a connection came back */
	PGconn *idle[PG_POOL_MAX];  /* connected, no transaction open */
	int nidle, nopen;           /* idle ones; all of them (<= PG_POOL_MAX) */
	struct pg_ledger *ledger;
	struct pg_tlog *tlog;
};

/* A connection for one operation: the calling thread's open transaction's
 * (*own false: do not give it back), else one from the pool, connecting a
 * new one while fewer than PG_POOL_MAX are open, else waiting (*own true:
 * pg_put it).  ALLOT_E_UNAVAILABLE (st->errmsg says why) when the server
 * cannot be reached. */
allot_err pg_get(struct pg_store *ps, PGconn **c, bool *own);
/* The error a failed statement's result r (NULL: none came) on c stands
 * for: unavailable when the server gave no answer (no SQLSTATE, or the
 * connection is gone) or is shutting down, a conflict for an integrity
 * violation, else a database error. */
allot_err pg_result_err(PGconn *c, const PGresult *r);
/* Gives a connection back; broken (or PQstatus not OK): closed instead. */
void pg_put(struct pg_store *ps, PGconn *c, bool broken);
/* The connection of the calling thread's open transaction on ps, or NULL;
 * pg_txn_set(ps, c) marks it (BEGIN done by the caller), pg_txn_set(ps,
 * NULL) clears it (after COMMIT or ROLLBACK). */
PGconn *pg_txn(const struct pg_store *ps);
void pg_txn_set(struct pg_store *ps, PGconn *c);
/* Runs sql with n text parameters (NULL: SQL NULL) on c; statements are
 * prepared once per connection, keyed by the sql pointer (static strings
 * only).  Returns the result when its status is PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK, else NULL with st->errmsg set and *e (may be NULL) the
 * error: ALLOT_E_CONFLICT for a unique or check violation (SQLSTATE 23xxx),
 * ALLOT_E_UNAVAILABLE when the connection is gone, ALLOT_E_STORE else. */
PGresult *pg_run(struct pg_store *ps, PGconn *c, const char *sql, int n,
		 const char *const *vals, allot_err *e);
/* pg_run, the statement planned for its parameters at each run (not
 * prepared): for one whose best plan depends on them, such as a look-up of
 * a batch's 1,000 ids, which a prepared statement's generic plan, made
 * while the table was small, kept as a sequential scan comparing every row
 * with every id (bench/ingest: 50,000 records took 215 ms a batch). */
PGresult *pg_run_custom(struct pg_store *ps, PGconn *c, const char *sql, int n,
			const char *const *vals, allot_err *e);
/* BEGIN / COMMIT / ROLLBACK of the thread's own transaction on c. */
allot_err pg_begin(struct pg_store *ps, PGconn *c);
/* A pipeline (libpq pipeline mode) on c: from pg_pipe_begin, pg_run sends
 * each statement and answers an empty result at once (a caller that needs
 * an answer checks pg_pipelined and says what it expects of the statement
 * it just sent with pg_pipe_expect: its rows affected, its command status
 * or its first cell, and the error message else); pg_pipe_end sends them
 * off and reads every answer, in one round trip: ALLOT_OK, or the first
 * failure (errmsg set; a transaction is then aborted).  An expectation is
 * checked after the fact: a statement the server runs without an error
 * does not stop a COMMIT sent after it, so only a COMMIT's own status
 * fails as ALLOT_E_STORE; any other expectation not met is
 * ALLOT_E_UNAVAILABLE (the outcome is not known).  A statement whose
 * outcome decides whether to commit must fail on the server instead. */
allot_err pg_pipe_begin(struct pg_store *ps, PGconn *c);
bool pg_pipelined(const PGconn *c);
void pg_pipe_expect(PGconn *c, const char *tuples, const char *status, const char *value,
		    const char *why);
allot_err pg_pipe_end(struct pg_store *ps, PGconn *c);
/* A fixed multi-statement text without parameters in one round trip (a
 * simple query; each statement has a snapshot of its own): ALLOT_OK with
 * the nout statements' results in out[] (PQclear each), or the first
 * failure's error (errmsg set, out[] all NULL; the statements after it
 * were not run). */
allot_err pg_run_multi(struct pg_store *ps, PGconn *c, const char *sql, PGresult **out,
		       int nout);
/* pg_run_multi in two halves: the text sent (no answer awaited), and its
 * nout answers read later (by any thread that owns c then). */
allot_err pg_multi_send(struct pg_store *ps, PGconn *c, const char *sql);
allot_err pg_multi_read(struct pg_store *ps, PGconn *c, const char *sql, PGresult **out,
			int nout);
allot_err pg_commit(struct pg_store *ps, PGconn *c);
void pg_rollback(struct pg_store *ps, PGconn *c);
/* Text forms of int64 for parameters; buf at least 24 bytes. */
const char *pg_i64(char *buf, int64_t v);
/* A column's int64 (0 when NULL). */
int64_t pg_col_i64(const PGresult *r, int row, int col);

/* Helpers of pg_store.c for the store's own files (pgs_: not part of the
 * contract above; the other files may use them too). */
/* Sets st->errmsg (under a lock: any thread may fail) and logs it unless
 * e is ALLOT_E_CONFLICT or ALLOT_E_NOT_FOUND (answers, not faults). */
void pgs_fail(struct pg_store *ps, allot_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A bytea parameter's text form ("\\x" and hex), from malloc; NULL: no memory. */
char *pgs_bytea(const void *p, size_t n);
/* A bytea column, from malloc with a NUL after its *len bytes; NULL: no memory. */
uint8_t *pgs_col_blob(const PGresult *r, int row, int col, size_t *len);
/* A bytea column of exactly n bytes into out; false otherwise. */
bool pgs_col_bytes(const PGresult *r, int row, int col, uint8_t *out, size_t n);
/* A text column into dst ("" when NULL); or the value, NULL when NULL. */
void pgs_col_text(const PGresult *r, int row, int col, char *dst, size_t dstsz);
const char *pgs_col_str(const PGresult *r, int row, int col);
/* The error of a write on a read-only store (errmsg set). */
allot_err pgs_readonly(struct pg_store *ps);
/* Ends an operation on c from pg_get: with own, commits when e is OK
 * (else rolls back) and gives c back.  Returns the outcome. */
allot_err pgs_end(struct pg_store *ps, PGconn *c, bool own, allot_err e);
/* Runs a query on a connection from pg_get and calls row for each row
 * (the connection held: row must not call the store).  OUT: *nrows (may
 * be NULL). */
allot_err pgs_query(struct pg_store *ps, const char *sql, int n, const char *const *vals,
		    void (*row)(const PGresult *r, int i, void *ctx), void *ctx, int *nrows);
/* One write and its audit entry (NULL: none) in one transaction: the
 * calling thread's when one is open, else its own (a lone statement
 * commits by itself).  ALLOT_E_CONFLICT on a constraint; with must_change,
 * ALLOT_E_NOT_FOUND when no row changed.  OUT: *id (may be NULL), the first
 * column of the first row returned (RETURNING). */
allot_err pgs_write(struct pg_store *ps, const char *sql, int n, const char *const *vals,
		    const struct audit_entry *audit, bool must_change, int64_t *id);
/* Inserts an audit entry (and its log leaf) on c, inside a transaction. */
allot_err pgs_audit_insert(struct pg_store *ps, PGconn *c, const struct audit_entry *a);

/* The plain operations: store/pg_admin.c (keys, charters, audit, tokens). */
allot_err pga_key_insert(struct store *st, const struct api_key *k,
			 const struct audit_entry *audit);
allot_err pga_key_find_by_hash(struct store *st, const uint8_t hash[32], struct api_key *out);
allot_err pga_key_revoke(struct store *st, const char *id, int64_t at,
			 const struct audit_entry *audit);
allot_err pga_key_count_active(struct store *st, const char *role, int64_t *count);
allot_err pga_key_list(struct store *st, void (*fn)(void *ctx, const struct api_key *k),
		       void *ctx);
allot_err pga_charter_apply(struct store *st, const struct charter_row *row,
			    const struct audit_entry *audit);
allot_err pga_charter_latest(struct store *st, struct charter_row *out);
allot_err pga_charter_get(struct store *st, int64_t version, struct charter_row *out);
allot_err pga_charter_history(struct store *st,
			      void (*fn)(void *ctx, const struct charter_row *r), void *ctx);
allot_err pga_audit_append(struct store *st, const struct audit_entry *a);
allot_err pga_audit_list(struct store *st, int64_t after_id, int64_t limit,
			 void (*fn)(void *ctx, int64_t id, const struct audit_entry *a),
			 void *ctx);
allot_err pga_token_issued(struct store *st, const struct token_row *t,
			   const struct audit_entry *audit);
allot_err pga_token_revoke(struct store *st, const struct token_revocation *rv,
			   const struct audit_entry *audit);
allot_err pga_token_revocations(struct store *st, int64_t after_id,
				void (*fn)(void *ctx, const struct token_revocation *r),
				void *ctx);
allot_err pga_token_find(struct store *st, const char *jti, struct token_row *out);
#define PGS_ADMIN_OPS \
	.key_insert = pga_key_insert, .key_find_by_hash = pga_key_find_by_hash, \
	.key_revoke = pga_key_revoke, .key_count_active = pga_key_count_active, \
	.key_list = pga_key_list, .charter_apply = pga_charter_apply, \
	.charter_latest = pga_charter_latest, .charter_get = pga_charter_get, \
	.charter_history = pga_charter_history, .audit_append = pga_audit_append, \
	.audit_list = pga_audit_list, .token_issued = pga_token_issued, \
	.token_revoke = pga_token_revoke, .token_revocations = pga_token_revocations, \
	.token_find = pga_token_find,

/* store/pg_queue.c: rejections, the gate's retry queue, the webhook outbox. */
/* The columns of usage_rejections that pgq_reject_row reads, in its order. */
#define PGQ_REJECT_COLUMNS "id, provider, record_id, seq, sha256, reason, received_us"
void pgq_reject_row(const PGresult *r, int i, struct ledger_rejection *out);
allot_err pgq_reject_find(struct store *st, const char *provider, const char *record_id,
			  struct ledger_rejection *out);
allot_err pgq_reject_insert(struct store *st, const struct ledger_rejection *rj);
allot_err pgq_reject_list(struct store *st, const char *provider, int64_t after, int64_t limit,
			  void (*fn)(void *ctx, const struct ledger_rejection *r), void *ctx);
allot_err pgq_settleq_put(struct store *st, struct settle_pending *p);
allot_err pgq_settleq_delete(struct store *st, int64_t id);
allot_err pgq_settleq_list(struct store *st,
			   void (*fn)(void *ctx, const struct settle_pending *p), void *ctx);
allot_err pgq_outbox_put(struct store *st, const struct outbox_event *ev);
allot_err pgq_outbox_due(struct store *st, int64_t now, int max,
			 void (*fn)(void *ctx, const struct outbox_event *ev), void *ctx);
allot_err pgq_outbox_done(struct store *st, int64_t seq, int64_t at);
allot_err pgq_outbox_retry(struct store *st, int64_t seq, int attempts, int64_t next_us,
			   const char *error);
allot_err pgq_outbox_has(struct store *st, const char *dedupe, bool *has);
allot_err pgq_outbox_prune(struct store *st, int64_t before_us, int max, int64_t *deleted);
#define PGS_QUEUE_OPS \
	.reject_find = pgq_reject_find, .reject_insert = pgq_reject_insert, \
	.reject_list = pgq_reject_list, .settleq_put = pgq_settleq_put, \
	.settleq_delete = pgq_settleq_delete, .settleq_list = pgq_settleq_list, \
	.outbox_put = pgq_outbox_put, .outbox_due = pgq_outbox_due, \
	.outbox_done = pgq_outbox_done, .outbox_retry = pgq_outbox_retry, \
	.outbox_has = pgq_outbox_has, .outbox_prune = pgq_outbox_prune,

/* ---- the ledger (store/pg_ledger*.c) ----
 * A ledger transaction (ledger_begin .. commit/rollback) holds one pooled
 * connection for the calling thread (pg_txn_set); its bucket charges,
 * bounds and log appends are kept per thread until its commit.  Booking
 * transactions are serialised on the ledger_bounds row and the log head
 * (taken FOR UPDATE before the first record is written), so no two
 * transactions interleave their records or leaves (docs/POSTGRES.md). */
/* A bucket charge of the open transaction (as store/sqlite_ledger.c's). */
struct pg_delta {
	int64_t bucket, charge;
	uint64_t tag;
	char inst[STORE_ID_MAX], proj[STORE_ID_MAX], member[STORE_MEMBER_MAX];
};
/* Open after the migrations, pg_tlog_open first (the log's head is read
 * and checked); close in reverse, before the pool's connections are closed:
 * pg_ledger_close stops the flusher and flushes the deferred commits. */
allot_err pg_ledger_open(struct pg_store *ps, char *msg, size_t msgsz);
void pg_ledger_close(struct pg_store *ps);
allot_err pg_ledger_begin(struct store *st);
allot_err pg_ledger_begin_sync(struct store *st, enum store_sync sync);
allot_err pg_ledger_begin_batch(struct store *st, enum store_sync sync);
allot_err pg_ledger_commit(struct store *st);
void pg_ledger_follow(struct store *st);
void pg_ledger_rollback(struct store *st);
allot_err pg_ledger_savepoint(struct store *st, int op);
allot_err pg_ledger_find(struct store *st, const char *provider, const char *record_id,
			 struct ledger_row *out);
allot_err pg_ledger_insert(struct store *st, struct ledger_row *row);
allot_err pg_ledger_sums(struct store *st, struct ledger_sum_req *rq, size_t n);
/* rq[0..n)'s sums in one statement on c (pg_ledger_read.c; the caller
 * wrote its transaction's charges first). */
allot_err pg_sums_read(struct pg_store *ps, PGconn *c, struct ledger_sum_req *rq, size_t n);
/* The statement of pg_sums_read, over five arrays (institutions,
 * projects, members, first and end buckets). */
#define PG_SUMS_ARRAYS 5
extern const char pg_sums_sql[];
/* Its five arrays' texts for rq[0..n) (a[f] malloc'd; all NULL after a
 * failure), freed by pg_sums_arrays_free; pg_sums_take reads its answer
 * into rq[].sum. */
allot_err pg_sums_arrays(const struct ledger_sum_req *rq, size_t n, char *a[PG_SUMS_ARRAYS]);
void pg_sums_arrays_free(char *a[PG_SUMS_ARRAYS]);
allot_err pg_sums_take(struct pg_store *ps, const PGresult *r, struct ledger_sum_req *rq,
		       size_t n);
/* store/pg_sumpre.c: the last booking group's sums request, read again in
 * the next group's opening round trip.  pg_sumpre_sql: base with an
 * EXECUTE of pg_sums_sql's prepared statement on c appended (malloc'd;
 * key: a copy of the arrays it asks), or NULL (no request yet, the
 * statement not prepared on c yet, or out of memory: key all NULL).  pg_sumpre_match:
 * the same request.  pg_sumpre_remember takes a's strings (a all NULL
 * after). */
struct pg_sumpre;
struct pg_sumpre *pg_sumpre_new(void);
void pg_sumpre_free(struct pg_sumpre *sp);
char *pg_sumpre_sql(struct pg_sumpre *sp, PGconn *c, const char *base,
		    char *key[PG_SUMS_ARRAYS]);
/* store/pg_store.c: the name of sql's prepared statement on c (sql: the
 * pointer pg_run was given), false when it is not prepared there. */
bool pg_stmt_name(PGconn *c, const char *sql, char name[24]);
bool pg_sumpre_match(char *const key[PG_SUMS_ARRAYS], char *const a[PG_SUMS_ARRAYS]);
void pg_sumpre_remember(struct pg_sumpre *sp, char *a[PG_SUMS_ARRAYS]);
allot_err pg_ledger_sum(struct store *st, const struct ledger_level *lv, int64_t from_us,
			int64_t to_us, int64_t *sum);
allot_err pg_ledger_net(struct store *st, const char *provider, const char *record_id,
			int64_t *net, bool *voided);
void pg_ledger_hold(struct store *st, uint64_t tag);
void pg_ledger_release(struct store *st, uint64_t tag);
allot_err pg_token_spent(struct store *st, const char *jti, int64_t *spent);
allot_err pg_ledger_list(struct store *st, const struct ledger_filter *f,
			 void (*fn)(void *ctx, const struct ledger_row *row, int64_t leaf_index),
			 void *ctx);
allot_err pg_ledger_report(struct store *st, const struct ledger_filter *f,
			   const char *const *group_by, size_t ngroup, bool by_bucket,
			   void (*fn)(void *ctx, const struct ledger_report_row *r), void *ctx);
allot_err pg_ledger_seq_status(struct store *st, const char *provider, int64_t after, int limit,
			       struct ledger_seq_status *out);
/* store/pg_buckets.c */
allot_err pg_ledger_buckets(struct store *st, const struct ledger_level *lv, int64_t from_us,
			    int64_t to_us, enum ledger_bucket_by by,
			    void (*fn)(void *ctx, const struct ledger_bucket_row *r), void *ctx);
/* The columns of usage_records that pg_usage_row reads, in its order. */
#define PG_USAGE_COLS \
	"id, provider, record_id, seq, kind, adjustment, supersedes, institution, project, " \
	"member, resource, class, model, quantity, start_us, end_us, received_us, book_us, " \
	"late, charter_version, rate_micro, charge_micro, overage, source, canonical, sha256"
#define PG_USAGE_NCOLS 26
/* Row i of r (the columns PG_USAGE_COLS) into out; rec.canonical from
 * malloc (the caller frees it). */
allot_err pg_usage_row(struct pg_store *ps, const PGresult *r, int i, struct ledger_row *out);
/* store/pg_ledger_rows.c: inserts row (ON CONFLICT DO NOTHING: ALLOT_E_CONFLICT
 * when (provider, record_id) exists, nothing written) on c, and with
 * leaf >= 0 its log leaf (leaf_hash at index leaf) in the same row
 * (migration 0007; leaf_name is the row's provider/record_id, not
 * stored).  OUT: row->row_id. */
allot_err pg_record_insert(struct pg_store *ps, PGconn *c, struct ledger_row *row, int64_t leaf,
			   const uint8_t leaf_hash[32], const char *leaf_name);
/* Rows kept by the transaction and written in one statement (with their
 * leaves in their rows) at
 * pg_rows_flush: only rows whose insert cannot conflict (pgp_absent).
 * keep: *b made on first use; its row_id stays 0.  flush: ALLOT_E_STORE
 * when fewer rows were written (cannot happen), and the buffer is empty
 * after it either way; drop: forgets them (a rollback). */
struct pg_rowbuf;
allot_err pg_rows_keep(struct pg_rowbuf **b, const struct ledger_row *row, int64_t leaf,
		       const uint8_t leaf_hash[32], const char *leaf_name);
allot_err pg_rows_flush(struct pg_store *ps, PGconn *c, struct pg_rowbuf *b);
size_t pg_rows_count(const struct pg_rowbuf *b);
size_t pg_rows_bytes(const struct pg_rowbuf *b);
void pg_rows_drop(struct pg_rowbuf *b);
void pg_rows_free(struct pg_rowbuf *b);
/* pg_ledger.c: writes the rows the thread's ledger transaction on ps keeps
 * (before anything else reads or writes on its connection: pg_get). */
allot_err pg_ledger_flush_rows(struct pg_store *ps);
/* A column that must hold an int64 (a sum is NUMERIC): false when it is
 * NULL, not an integer or out of range. */
bool pg_col_i64_strict(const PGresult *r, int row, int col, int64_t *out);
/* Durability (store/pg_ledger_sync.c): a DEFERRED transaction commits with
 * synchronous_commit off; a flusher thread makes it durable within the
 * flush interval (docs/POSTGRES.md, "Durability"). */
struct pg_sync;
allot_err pg_sync_open(struct pg_store *ps, struct pg_sync **out, char *msg, size_t msgsz);
void pg_sync_close(struct pg_sync *y);
/* May a commit be DEFERRED now (interval > 0)? */
bool pg_sync_deferred_ok(struct pg_sync *y);
/* After a successful COMMIT of class sync. */
void pg_sync_committed(struct pg_sync *y, enum store_sync sync);
struct pg_sync *pg_ledger_sync(struct pg_store *ps);
void pg_set_flush_ms(struct store *st, int ms);
allot_err pg_flush(struct store *st);
void pg_sync_stats(struct store *st, struct store_sync_stats *out);
void pg_set_wal_limit(struct store *st, int64_t frames);
/* store/pg_prefetch.c: a provider batch's records and rejections read in
 * one statement each (store_ops.ledger_prefetch), answered until the
 * thread's transaction's next savepoint operation or its end. */
allot_err pg_ledger_prefetch(struct store *st, const char *provider, const char *const *ids,
			     size_t n);
/* The answers: FOUND (*out filled; a row's canonical from malloc), ABSENT
 * (not in the database), ASK (not known here: read the database). */
enum { PGP_ASK, PGP_ABSENT, PGP_FOUND };
int pgp_find_row(const struct pg_store *ps, const char *provider, const char *id,
		 struct ledger_row *out);
int pgp_find_rejection(const struct pg_store *ps, const char *provider, const char *id,
		       struct ledger_rejection *out);
/* Whether the look-up found no record of (provider, id) and the transaction
 * has not written one since: its insert cannot conflict. */
bool pgp_absent(const struct pg_store *ps, const char *provider, const char *id);
/* The transaction writes a record or rejection of (provider, id): ask the
 * database from now on. */
void pgp_forget(const struct pg_store *ps, const char *provider, const char *id);
/* Drops the thread's answers (of ps; NULL: whichever store's). */
void pgp_clear(const struct pg_store *ps);
/* An array parameter's text form ({"a","b",NULL}; v[i] NULL: an SQL NULL),
 * from malloc; NULL: no memory. */
char *pgs_text_array(const char *const *v, size_t n);
/* store/pg_ledger.c: takes the ledger_bounds row in the thread's ledger
 * transaction (once; as before a booking's first record). */
allot_err pg_ledger_lock_bounds(struct pg_store *ps);
#define PG_LEDGER_OPS \
	.ledger_begin = pg_ledger_begin, .ledger_begin_sync = pg_ledger_begin_sync, \
	.ledger_commit = pg_ledger_commit, .ledger_rollback = pg_ledger_rollback, \
	.ledger_savepoint = pg_ledger_savepoint, .ledger_find = pg_ledger_find, \
	.ledger_insert = pg_ledger_insert, .ledger_sum = pg_ledger_sum, \
	.ledger_sums = pg_ledger_sums, \
	.ledger_net = pg_ledger_net, .ledger_hold = pg_ledger_hold, \
	.ledger_release = pg_ledger_release, .token_spent = pg_token_spent, \
	.ledger_prefetch = pg_ledger_prefetch, .ledger_begin_batch = pg_ledger_begin_batch, \
	.ledger_follow = pg_ledger_follow, \
	.ledger_list = pg_ledger_list, .ledger_report = pg_ledger_report, \
	.ledger_seq_status = pg_ledger_seq_status, .ledger_buckets = pg_ledger_buckets, \
	.set_flush_ms = pg_set_flush_ms, .flush = pg_flush, .sync_stats = pg_sync_stats, \
	.set_wal_limit = pg_set_wal_limit,

/* ---- the transparency log (store/pg_tlog.c) ----
 * The head row (tlog_head, migrations 0004 and 0011) is the log's lock and
 * its committed size, root and frontier (the tree's state, so that a node
 * behind the head reads no nodes to catch up).  An append inside a ledger transaction (the
 * thread's, on its connection) takes the head FOR UPDATE once and writes
 * it back at pg_tlog_txn_precommit; an append inside any other transaction
 * (a charter, an audit entry) takes it and writes it back at once. */
allot_err pg_tlog_open(struct pg_store *ps, char *msg, size_t msgsz);
void pg_tlog_close(struct pg_store *ps);
/* Append the entry's leaf, on the entry's own transaction's connection c. */
allot_err pg_tlog_append_charter(struct pg_store *ps, PGconn *c, const struct charter_row *r);
allot_err pg_tlog_append_audit(struct pg_store *ps, PGconn *c, int64_t id,
			       const struct audit_entry *a);
/* A usage record's leaf written by the record's own INSERT (pg_ledger_rows.c,
 * one round trip): its hash and name first; once the row and the leaf are
 * in (at the index pg_tlog_next_index said), pg_tlog_usage_written adds it
 * to the transaction's tree (and writes the nodes it completes). */
allot_err pg_tlog_usage_leaf(const struct ledger_row *row, uint8_t hash[32],
			     char name[STORE_LEAF_NAME_MAX]);
allot_err pg_tlog_usage_written(struct pg_store *ps, PGconn *c, const uint8_t hash[32]);
/* Writes the nodes those appends completed (kept until then: one statement
 * per savepoint step); pg_ledger.c calls it before a savepoint begins or is
 * released, and pg_tlog_txn_precommit before the head. */
allot_err pg_tlog_txn_flush(struct pg_store *ps);
/* The ledger transaction's hooks (store/pg_ledger.c calls them): begin on
 * connection c; a savepoint (STORE_SP_*, after the SQL); before COMMIT
 * (writes the head); after the end (committed or not). */
allot_err pg_tlog_txn_begin(struct pg_store *ps, PGconn *c);
void pg_tlog_txn_savepoint(struct pg_store *ps, int op);
allot_err pg_tlog_txn_precommit(struct pg_store *ps, PGconn *c);
void pg_tlog_txn_end(struct pg_store *ps, bool committed);
/* Inside a ledger transaction: takes the head (once) and says the index
 * the next append gets; -1 when the log is switched off. */
allot_err pg_tlog_next_index(struct pg_store *ps, PGconn *c, int64_t *idx);
/* The head row locked (its columns as head_take reads them), for a
 * transaction that takes it with other statements in one round trip;
 * pg_tlog_txn_taken(ps, r) then takes its result (consumed) as the
 * transaction's head, as its first append would.  pg_tlog_enabled: the log
 * is written at all. */
#define PG_TLOG_HEAD_LOCK_SQL \
	"SELECT size, encode(root, 'hex'), encode(frontier, 'hex') FROM tlog_head WHERE id = 1 " \
	"FOR UPDATE"
allot_err pg_tlog_txn_taken(struct pg_store *ps, PGresult *r);
bool pg_tlog_enabled(const struct pg_store *ps);
allot_err pg_tlog_head(struct store *st, uint64_t *size, uint8_t root[32]);
allot_err pg_tlog_root_at(struct store *st, uint64_t size, uint8_t root[32]);
allot_err pg_tlog_inclusion(struct store *st, uint64_t index, uint64_t size, uint8_t leaf[32],
			    struct merkle_proof *p);
allot_err pg_tlog_consistency(struct store *st, uint64_t size1, uint64_t size2,
			      struct merkle_proof *p);
allot_err pg_tlog_entries(struct store *st, uint64_t start, uint64_t end,
			  void (*fn)(void *ctx, const struct tlog_entry_row *e), void *ctx);
allot_err pg_tlog_leaf_of(struct store *st, const char *type, int64_t ref, int64_t *idx);
void pg_tlog_set_enabled(struct store *st, bool on);
#define PG_TLOG_OPS \
	.tlog_head = pg_tlog_head, .tlog_root_at = pg_tlog_root_at, \
	.tlog_inclusion = pg_tlog_inclusion, .tlog_consistency = pg_tlog_consistency, \
	.tlog_entries = pg_tlog_entries, .tlog_leaf_of = pg_tlog_leaf_of, \
	.tlog_set_enabled = pg_tlog_set_enabled,

/* ---- budgets in the database (store/pg_budget.c, migration 0005) ----
 * Admission (allot_reserve), settlement (allot_budget_book, inside the
 * booking transaction before its COMMIT), expiry (allot_budget_sweep);
 * docs/POSTGRES.md, "Budgets in the database". */
allot_err pgb_reserve(struct store *st, struct store_budget_req *rq);
allot_err pgb_settle(struct store *st, const char *id, int64_t actual);
allot_err pgb_sweep(struct store *st, int64_t now_us, bool dead, int64_t *released);
/* store/pg_owner.c: this process's registration as a node, "pid N on host
 * H (allotd)": its owner session's application_name, and the node column
 * of its reservations. */
void pg_node_name(char *out, size_t outsz);
allot_err pgb_reserved(struct store *st, const char *level, int64_t at_us, int64_t *reserved);
/* Inside the ledger transaction on c, before its COMMIT: settles the n
 * reservations s and adds the nd bucket charges d to the
 * budget rows that hold them. */
struct pg_settle {
	char id[128];
	int64_t actual;
};
allot_err pg_budget_commit(struct pg_store *ps, PGconn *c, const struct pg_settle *s, size_t n,
			   const struct pg_delta *d, size_t nd);
/* store/pg_ledger.c: defers budget_settle(id, actual) to the commit of the
 * calling thread's ledger transaction on ps (undone with a savepoint
 * rolled back).  ALLOT_E_NOT_FOUND when the thread has none open. */
allot_err pg_ledger_defer_settle(struct pg_store *ps, const char *id, int64_t actual);
/* store/pg_owner.c: whether this process holds a node registration now
 * (allot_reserve then checks that the server still sees it). */
bool pg_node_registered(void);
/* store/pg_lease.c: node epochs and leases (migration 0006). */
allot_err pgl_node_start(struct store *st, const char *node, int64_t now_us, int64_t *epoch);
allot_err pgl_node_heartbeat(struct store *st, const char *node, int64_t epoch, int64_t now_us,
			     bool *current);
allot_err pgl_take(struct store *st, const char *node, int64_t epoch,
		   const struct store_budget_level *lv, int64_t charter_version, int64_t want,
		   int64_t now_us, int64_t expires_us, int64_t live_us, struct store_lease *l);
allot_err pgl_return(struct store *st, int64_t id, const char *node, int64_t epoch,
		     int64_t *back);
allot_err pgl_settle(struct store *st, int64_t id, int64_t epoch, int64_t actual);
allot_err pgl_sweep(struct store *st, int64_t now_us, int64_t grace_us, int64_t *returned);
/* The ledger buckets [from, to) a level's settled counts (pg_budget.c). */
void pgb_level_buckets(const struct store_budget_level *l, int64_t *from, int64_t *to);
#define PG_BUDGET_OPS \
	.budget_reserve = pgb_reserve, .budget_settle = pgb_settle, \
	.budget_sweep = pgb_sweep, .budget_reserved = pgb_reserved, \
	.node_start = pgl_node_start, .node_heartbeat = pgl_node_heartbeat, \
	.lease_take = pgl_take, .lease_return = pgl_return, .lease_settle = pgl_settle, \
	.lease_sweep = pgl_sweep,

#endif
