/* sqlite_int.h — private to the SQLite backend's files (store/sqlite*.c). */
#ifndef ALLOT_STORE_SQLITE_INT_H
#define ALLOT_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"
#include "store/sumcache.h"

#define SQ_MAX_STMTS 96

/* Bucket charges of the open ledger transaction not yet written: summed
 * per (institution, project, member, bucket, hold tag) and upserted once
 * per key (store/sqlite_ledger.c, "bucket deltas"). */
#define SQ_BUCKET_DELTAS 256
struct sq_bucket_delta {
	int64_t bucket, charge;
	uint64_t tag;
	char inst[STORE_ID_MAX], proj[STORE_ID_MAX], member[STORE_MEMBER_MAX];
};

/* The ledger's totals of positive charges and of quantities (table
 * ledger_bounds, migration 0009): a record that would take either past
 * int64 is refused, so no sum of any rows can overflow
 * (store/sqlite_ledger.c, "bounds"). */
struct sq_bounds {
	bool loaded;                /* committed read from ledger_bounds */
	int64_t charge, quantity;   /* committed */
	int64_t unwritten;          /* committed rows not in the table's totals */
	int64_t tx_charge, tx_quantity, tx_rows; /* added by the open transaction */
	int64_t sp_charge, sp_quantity, sp_rows; /* tx_* at the open savepoint */
	bool tx_written;            /* the open transaction wrote the table */
};

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	pthread_mutex_t lock;       /* guards db and stmts */
	struct {
		const char *sql;        /* static string; the cache key */
		sqlite3_stmt *st;
	} stmts[SQ_MAX_STMTS];
	size_t nstmts;
	struct sumcache *sums;      /* ledger sums; see sumcache.h */
	size_t sp_mark;             /* pending deltas at the open savepoint */
	uint64_t hold_tag;          /* see store_ops.ledger_hold */
	struct sq_tlog *tlog;       /* transparency log state (store/sqlite_tlog.c) */
	int sync_level;             /* PRAGMA synchronous in force: 1 NORMAL, 2 FULL */
	enum store_sync tx_sync;    /* class of the open transaction's commit */
	struct sq_bg *bg;           /* flusher and checkpointer (store/sqlite_bg.c) */
	size_t nbk;                 /* bucket deltas pending in bk */
	bool bk_failed;             /* writing them failed: the commit must fail */
	bool readonly;              /* store_sqlite_open_readonly: nothing is written */
	struct sq_bucket_delta bk[SQ_BUCKET_DELTAS];
	struct sq_bounds bounds;    /* the ledger's totals (store/sqlite_ledger.c) */
	/* Whether usage_rejections may hold a row (store/sqlite_reject.c):
	 * 0 not known yet, 1 empty (a lookup can be skipped), 2 maybe not. */
	int rej_state;
};

/* The store's VFS (store/sqlite_vfs.c): the default one with each
 * connection's -wal writes gathered into one write per commit.  NULL (the
 * default VFS) if it could not be registered. */
const char *sq_vfs_name(void);

/* store_ops.backup (store/sqlite_backup.c). */
allot_err sq_backup(struct store *st, const char *path, char *msg, size_t msgsz);

/* ---- admin rows: API keys, charters, the audit log (store/sqlite_admin.c) ---- */
allot_err sq_key_insert(struct store *st, const struct api_key *k,
			const struct audit_entry *audit);
allot_err sq_key_find_by_hash(struct store *st, const uint8_t hash[32], struct api_key *out);
allot_err sq_key_revoke(struct store *st, const char *id, int64_t at,
			const struct audit_entry *audit);
allot_err sq_key_count_active(struct store *st, const char *role, int64_t *count);
allot_err sq_key_list(struct store *st, void (*fn)(void *ctx, const struct api_key *k),
		      void *ctx);
allot_err sq_charter_apply(struct store *st, const struct charter_row *r,
			   const struct audit_entry *audit);
allot_err sq_charter_latest(struct store *st, struct charter_row *out);
allot_err sq_charter_get(struct store *st, int64_t version, struct charter_row *out);
allot_err sq_charter_history(struct store *st,
			     void (*fn)(void *ctx, const struct charter_row *r), void *ctx);
allot_err sq_audit_append(struct store *st, const struct audit_entry *e);
allot_err sq_audit_list(struct store *st, int64_t after_id, int64_t limit,
			void (*fn)(void *ctx, int64_t id, const struct audit_entry *a), void *ctx);
#define SQ_ADMIN_OPS \
	.key_insert = sq_key_insert, .key_find_by_hash = sq_key_find_by_hash, \
	.key_revoke = sq_key_revoke, .key_count_active = sq_key_count_active, \
	.key_list = sq_key_list, .charter_apply = sq_charter_apply, \
	.charter_latest = sq_charter_latest, .charter_get = sq_charter_get, \
	.charter_history = sq_charter_history, .audit_append = sq_audit_append, \
	.audit_list = sq_audit_list,

/* Ledger operations live in store/sqlite_ledger.c. */
allot_err sq_ledger_begin(struct store *st);
allot_err sq_ledger_commit(struct store *st);
void sq_ledger_rollback(struct store *st);
allot_err sq_ledger_find(struct store *st, const char *provider, const char *record_id,
			 struct ledger_row *out);
allot_err sq_ledger_insert(struct store *st, struct ledger_row *row);
allot_err sq_ledger_sum(struct store *st, const struct ledger_level *lv, int64_t from_us,
			int64_t to_us, int64_t *sum);
allot_err sq_ledger_net(struct store *st, const char *provider, const char *record_id,
			int64_t *net, bool *voided);
/* The columns of usage_records that sq_usage_row reads, in its order. */
#define SQ_USAGE_COLS \
	"id, provider, record_id, seq, kind, adjustment, supersedes, institution, project, " \
	"member, resource, class, model, quantity, start_us, end_us, received_us, book_us, " \
	"late, charter_version, rate_micro, charge_micro, overage, source, canonical, sha256"
#define SQ_USAGE_NCOLS 26
/* A row from the columns SQ_USAGE_COLS of q's current row; rec.canonical
 * from malloc (record_release), stored or rebuilt.  ALLOT_E_NOMEM. */
allot_err sq_usage_row(sqlite3_stmt *q, struct ledger_row *out);
allot_err sq_ledger_list(struct store *st, const struct ledger_filter *f,
			 void (*fn)(void *ctx, const struct ledger_row *row, int64_t leaf_index),
			 void *ctx);
allot_err sq_ledger_report(struct store *st, const struct ledger_filter *f,
			   const char *const *group_by, size_t ngroup, bool by_bucket,
			   void (*fn)(void *ctx, const struct ledger_report_row *r), void *ctx);
allot_err sq_ledger_seq_status(struct store *st, const char *provider, int64_t after, int limit,
			       struct ledger_seq_status *out);
allot_err sq_ledger_savepoint(struct store *st, int op);
void sq_ledger_hold(struct store *st, uint64_t tag);
void sq_ledger_release(struct store *st, uint64_t tag);
allot_err sq_token_issued(struct store *st, const struct token_row *t,
			  const struct audit_entry *audit);
allot_err sq_token_revoke(struct store *st, const struct token_revocation *r,
			  const struct audit_entry *audit);
allot_err sq_token_revocations(struct store *st, int64_t after_id,
			       void (*fn)(void *ctx, const struct token_revocation *r), void *ctx);
allot_err sq_token_spent(struct store *st, const char *jti, int64_t *spent);
allot_err sq_token_find(struct store *st, const char *jti, struct token_row *out);
#define SQ_TOKEN_OPS \
	.token_issued = sq_token_issued, .token_revoke = sq_token_revoke, \
	.token_revocations = sq_token_revocations, .token_spent = sq_token_spent, \
	.token_find = sq_token_find,
#define SQ_LEDGER_OPS \
	.ledger_begin = sq_ledger_begin, .ledger_commit = sq_ledger_commit, \
	.ledger_rollback = sq_ledger_rollback, .ledger_find = sq_ledger_find, \
	.ledger_insert = sq_ledger_insert, .ledger_sum = sq_ledger_sum, \
	.ledger_net = sq_ledger_net, .ledger_list = sq_ledger_list, \
	.ledger_report = sq_ledger_report, .ledger_seq_status = sq_ledger_seq_status, \
	.ledger_savepoint = sq_ledger_savepoint, .ledger_hold = sq_ledger_hold, \
	.ledger_release = sq_ledger_release,

/* ---- charges per bucket (store/sqlite_buckets.c) ---- */
allot_err sq_ledger_buckets(struct store *st, const struct ledger_level *lv, int64_t from_us,
			    int64_t to_us, enum ledger_bucket_by by,
			    void (*fn)(void *ctx, const struct ledger_bucket_row *r), void *ctx);

/* ---- rejected provider records (store/sqlite_reject.c) ---- */
allot_err sq_reject_find(struct store *st, const char *provider, const char *record_id,
			 struct ledger_rejection *out);
allot_err sq_reject_insert(struct store *st, const struct ledger_rejection *r);
allot_err sq_reject_list(struct store *st, const char *provider, int64_t after, int64_t limit,
			 void (*fn)(void *ctx, const struct ledger_rejection *r), void *ctx);
#define SQ_REJECT_OPS \
	.reject_find = sq_reject_find, .reject_insert = sq_reject_insert, \
	.reject_list = sq_reject_list,

/* ---- the gate's retry queue (store/sqlite_settleq.c) ---- */
allot_err sq_settleq_put(struct store *st, struct settle_pending *p);
allot_err sq_settleq_delete(struct store *st, int64_t id);
allot_err sq_settleq_list(struct store *st,
			  void (*fn)(void *ctx, const struct settle_pending *p), void *ctx);
#define SQ_SETTLEQ_OPS \
	.settleq_put = sq_settleq_put, .settleq_delete = sq_settleq_delete, \
	.settleq_list = sq_settleq_list,

/* ---- the webhook outbox (store/sqlite_outbox.c) ---- */
allot_err sq_outbox_put(struct store *st, const struct outbox_event *ev);
allot_err sq_outbox_due(struct store *st, int64_t now, int max,
			void (*fn)(void *ctx, const struct outbox_event *ev), void *ctx);
allot_err sq_outbox_done(struct store *st, int64_t seq, int64_t at);
allot_err sq_outbox_retry(struct store *st, int64_t seq, int attempts, int64_t next_us,
			  const char *error);
allot_err sq_outbox_has(struct store *st, const char *dedupe, bool *has);
allot_err sq_outbox_prune(struct store *st, int64_t before_us, int max, int64_t *deleted);
#define SQ_OUTBOX_OPS \
	.outbox_put = sq_outbox_put, .outbox_due = sq_outbox_due, \
	.outbox_done = sq_outbox_done, .outbox_retry = sq_outbox_retry, \
	.outbox_has = sq_outbox_has, .outbox_prune = sq_outbox_prune,

/* ---- the transparency log (store/sqlite_tlog.c) ---- */
struct sq_tlog;
/* Loads the tree state at open (after the migrations).  OUT: s->tlog. */
allot_err sq_tlog_open(struct sqlite_store *s, char *msg, size_t msgsz);
void sq_tlog_close(struct sqlite_store *s);
/* Called by sq_commit (committed) and sq_rollback (not): promotes or drops
 * the appends of the transaction that ended. */
void sq_tlog_txn_end(struct sqlite_store *s, bool committed);
/* Called by sq_ledger_savepoint: STORE_SP_BEGIN remembers the tree state,
 * STORE_SP_ROLLBACK (after ROLLBACK TO) returns to it. */
void sq_tlog_savepoint(struct sqlite_store *s, int op);
/* The index the next append gets; -1 when the log is switched off. */
int64_t sq_tlog_next_index(struct sqlite_store *s);
/* Append the entry's leaf; inside the entry's own transaction only. */
allot_err sq_tlog_append_usage(struct sqlite_store *s, const struct ledger_row *row);
allot_err sq_tlog_append_charter(struct sqlite_store *s, const struct charter_row *r);
allot_err sq_tlog_append_audit(struct sqlite_store *s, int64_t id, const struct audit_entry *a);
allot_err sq_tlog_head(struct store *st, uint64_t *size, uint8_t root[32]);
allot_err sq_tlog_root_at(struct store *st, uint64_t size, uint8_t root[32]);
allot_err sq_tlog_inclusion(struct store *st, uint64_t index, uint64_t size, uint8_t leaf[32],
			    struct merkle_proof *p);
allot_err sq_tlog_consistency(struct store *st, uint64_t size1, uint64_t size2,
			      struct merkle_proof *p);
allot_err sq_tlog_entries(struct store *st, uint64_t start, uint64_t end,
			  void (*fn)(void *ctx, const struct tlog_entry_row *e), void *ctx);
allot_err sq_tlog_leaf_of(struct store *st, const char *type, int64_t ref, int64_t *idx);
void sq_tlog_set_enabled(struct store *st, bool on);
#define SQ_TLOG_OPS \
	.tlog_head = sq_tlog_head, .tlog_root_at = sq_tlog_root_at, \
	.tlog_inclusion = sq_tlog_inclusion, .tlog_consistency = sq_tlog_consistency, \
	.tlog_entries = sq_tlog_entries, .tlog_leaf_of = sq_tlog_leaf_of, \
	.tlog_set_enabled = sq_tlog_set_enabled,

/* ---- durability: the flusher and checkpointer (store/sqlite_bg.c) ----
 * One background thread per store, with its own connection for
 * checkpoints (the writer runs with wal_autocheckpoint=0).  Starts after
 * the migrations; sq_bg_close makes everything durable, truncates the log
 * and joins it. */
struct sq_bg;
allot_err sq_bg_open(struct sqlite_store *s, const char *path, char *msg, size_t msgsz);
void sq_bg_close(struct sqlite_store *s);
/* May a commit be DEFERRED now (a flusher runs, interval > 0)? */
bool sq_bg_deferred_ok(struct sqlite_store *s);
/* Called by sq_commit after a successful COMMIT of class sync. */
void sq_bg_committed(struct sqlite_store *s, enum store_sync sync);
void sq_set_flush_ms(struct store *st, int ms);
allot_err sq_flush(struct store *st);
void sq_set_wal_limit(struct store *st, int64_t frames);
void sq_sync_stats(struct store *st, struct store_sync_stats *out);
allot_err sq_ledger_begin_sync(struct store *st, enum store_sync sync);
#define SQ_BG_OPS \
	.set_flush_ms = sq_set_flush_ms, .flush = sq_flush, .sync_stats = sq_sync_stats, \
	.set_wal_limit = sq_set_wal_limit, \
	.ledger_begin_sync = sq_ledger_begin_sync,

allot_err sq_fail(struct sqlite_store *s, const char *what);
sqlite3_stmt *sq_prep(struct sqlite_store *s, const char *sql);
void sq_bind_text(sqlite3_stmt *st, int i, const char *v);
void sq_copy_text(sqlite3_stmt *st, int col, char *dst, size_t dstsz);
allot_err sq_exec(struct sqlite_store *s, const char *sql);
/* sq_exec of a static statement kept prepared (sql is the cache key). */
allot_err sq_exec_cached(struct sqlite_store *s, const char *sql);
allot_err sq_begin(struct sqlite_store *s);
/* BEGIN IMMEDIATE whose COMMIT has durability class sync (sq_begin: FULL). */
allot_err sq_begin_sync(struct sqlite_store *s, enum store_sync sync);
/* True in the thread that holds an open write transaction. */
bool sq_in_tx(void);
allot_err sq_commit(struct sqlite_store *s);
void sq_rollback(struct sqlite_store *s);
allot_err sq_audit_insert(struct sqlite_store *s, const struct audit_entry *e);
/* One write statement and its audit entry in one transaction: bind fills the
 * statement from arg.  ALLOT_E_CONFLICT on a constraint; with must_change,
 * ALLOT_E_NOT_FOUND when no row changed. */
typedef void (*sq_bind_fn)(sqlite3_stmt *st, const void *arg);
/* Ends a write begun under s->lock: on success (e ALLOT_OK) the audit
 * entry (may be NULL) is added and the transaction committed, otherwise
 * (or if either fails) it is rolled back; the lock is released.  Returns
 * the outcome. */
allot_err sq_write_end(struct sqlite_store *s, allot_err e, const struct audit_entry *audit);
allot_err sq_write1(struct sqlite_store *s, const char *sql, sq_bind_fn bind, const void *arg,
		    const struct audit_entry *audit, const char *what, bool must_change);

#endif
