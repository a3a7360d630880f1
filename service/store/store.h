/* store.h — durable state behind one interface.
 *
 * A backend is a `const struct store_ops` (SQLite today: store/sqlite.c;
 * PostgreSQL fits beside it).  Callers use the store_* wrappers.  Every
 * operation is one transaction: an admin action and its audit entry commit
 * together or not at all.  Every call is thread-safe.
 */
#ifndef ALLOT_STORE_STORE_H
#define ALLOT_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/ids.h"
#include "store/ledger_types.h"
#include "store/settle_types.h"
#include "store/outbox_types.h"
#include "store/token_types.h"
#include "store/tlog_types.h"
#include "tlog/merkle.h"


struct api_key {
	char id[STORE_ID_MAX];
	uint8_t secret_sha256[32];
	char role[16];                     /* admin auditor institution provider */
	char institution[STORE_ID_MAX];    /* "" unless role institution */
	char provider[STORE_ID_MAX];       /* "" unless role provider */
	char label[129];
	int64_t created_at;                /* µs UTC */
	char created_by[STORE_ID_MAX];
	int64_t revoked_at;                /* 0 when active */
};

struct audit_entry {
	int64_t at;                        /* µs UTC */
	const char *actor;                 /* key id of the admin */
	const char *action;                /* "charter.apply", "key.create", ... */
	const char *target;                /* may be NULL */
	const char *before_sha256;         /* hex, may be NULL */
	const char *after_sha256;          /* hex, may be NULL */
	const char *detail;                /* JSON text, may be NULL */
};

struct charter_row {
	int64_t version;
	char charter_id[STORE_ID_MAX];
	char *text;                        /* from malloc() when read back */
	size_t text_len;
	char sha256[65];                   /* hex of the YAML text */
	char author[STORE_ID_MAX];
	int64_t applied_at;
	int64_t effective;
};

struct store;

/* Groups of store_ledger_buckets: the level's total per bucket, or per
 * institution, project or member under it. */
enum ledger_bucket_by {
	LEDGER_BY_LEVEL,
	LEDGER_BY_INSTITUTION,
	LEDGER_BY_PROJECT,
	LEDGER_BY_MEMBER,
};

/* One (bucket, group) total: the group's ids are set down to its depth
 * (the deeper ones NULL); member "" is the project's rows without one. */
struct ledger_bucket_row {
	int64_t bucket_us;        /* the bucket's start, µs UTC */
	const char *institution, *project, *member;
	int64_t charge;           /* micro-credits */
};

/* Durability of a ledger transaction's commit (see docs/LEDGER.md,
 * "Durability").
 *   FULL      on disk (fsync) before the commit returns: survives power loss.
 *   DEFERRED  written to the write-ahead log before the commit returns
 *             (survives a crash or kill -9 of the process), on disk within
 *             the flush interval (store_set_flush_ms), or at the next FULL
 *             commit, whichever comes first.  With a flush interval of 0
 *             every commit is FULL. */
enum store_sync { STORE_SYNC_FULL, STORE_SYNC_DEFERRED };

/* Counters of the commit path, for tests and metrics. */
struct store_sync_stats {
	uint64_t full_commits;      /* commits fsynced before returning */
	uint64_t deferred_commits;  /* commits left to the flusher */
	uint64_t flushes;           /* fdatasyncs of the log by the flusher */
	uint64_t checkpoints;       /* background checkpoints (any mode) */
	uint64_t undurable;         /* deferred commits not yet known on disk */
	int64_t wal_frames;         /* frames in the write-ahead log after the last commit */
	uint64_t locked_checkpoints;/* of the checkpoints, those under the store's lock */
	int64_t max_locked_us;      /* the longest one (writers waited that long) */
	int64_t max_flush_us;       /* the longest fdatasync of the flusher */
	int flush_ms;
	uint64_t commit_checkpoints;/* by a committing writer, the log at twice
				     * its bound (the thread fell behind) */
};

/* ---- budgets in the database (store_ops.budget_*) ---- */
#define STORE_BUDGET_LEVELS 5      /* pool, institution, project, member, token */
#define STORE_BUDGET_NO_LIMIT (-1)
#define STORE_BUDGET_LEVEL_MAX (STORE_ID_MAX * 2 + STORE_MEMBER_MAX + 8)

enum store_budget_why {
	STORE_BUDGET_OK,
	STORE_BUDGET_QUOTA,        /* settled + reserved + amount > allocation */
	STORE_BUDGET_CONCURRENCY,  /* concurrent reservations at the limit */
	STORE_BUDGET_REQUESTS,     /* requests per minute at the limit */
	STORE_BUDGET_TOKENS,       /* tokens per minute at the limit */
};

/* One level of an admission, in rank order: "*" (pool), "inst",
 * "inst/proj", "inst/proj/member", "token:<jti>". */
struct store_budget_level {
	char level[STORE_BUDGET_LEVEL_MAX];
	int64_t period_start, period_end; /* µs; INT64_MIN / INT64_MAX: total */
	/* What settled + reserved may reach: allocation + rollover (+ grace
	 * under soft overage); a token's max_credits.  Used when the period's
	 * row is created, or when charter_version is newer than the row's. */
	int64_t cap;
	/* Limits at this level, STORE_BUDGET_NO_LIMIT when unset. */
	int64_t concurrent, requests_per_minute, tokens_per_minute;
	/* OUT: the row's figures after the reservation (or as found at the
	 * refusing level). */
	int64_t settled, reserved, allocation;
};

struct store_budget_req {
	const char *id;              /* the reservation's id (unique) */
	int64_t amount;              /* micro-credits held at every level */
	int64_t tokens;              /* prompt + max_tokens (tokens per minute) */
	int64_t charter_version;
	int64_t now_us, expires_us;  /* expires_us: when any node may release it */
	int64_t window_us;           /* start of the rate limits' minute */
	struct store_budget_level lv[STORE_BUDGET_LEVELS];
	size_t n;
	/* OUT: why it was refused (nothing changed), at level lv[refused],
	 * with count: the concurrent requests, requests or tokens found. */
	enum store_budget_why why;
	size_t refused;
	int64_t count;
};

/* A lease (store_ops.lease_*): a slice of one budget row held by one node
 * incarnation. */
struct store_lease {
	int64_t id;                  /* 0: none; -1: fenced (an older epoch) */
	int64_t size, spent;         /* granted in all; settled under it */
	int64_t expires_us;          /* admit from it only before */
	int64_t granted;             /* OUT: by this take or top-up */
};

/* A lease a settlement is booked under (store_ops.lease_settle). */
struct store_lease_ref {
	int64_t id, epoch;
};

struct store_ops {
	const char *name;
	void (*close)(struct store *st);
	allot_err (*key_insert)(struct store *st, const struct api_key *k,
				const struct audit_entry *audit);
	allot_err (*key_find_by_hash)(struct store *st, const uint8_t hash[32],
				      struct api_key *out);
	allot_err (*key_revoke)(struct store *st, const char *id, int64_t at,
				const struct audit_entry *audit);
	allot_err (*key_count_active)(struct store *st, const char *role, int64_t *count);
	/* Calls fn for every key, oldest first (the store's lock held: fn must
	 * not call the store; strings valid during the call only). */
	allot_err (*key_list)(struct store *st, void (*fn)(void *ctx, const struct api_key *k),
			      void *ctx);
	allot_err (*charter_apply)(struct store *st, const struct charter_row *row,
				   const struct audit_entry *audit);
	allot_err (*charter_latest)(struct store *st, struct charter_row *out);
	/* One applied version; ALLOT_E_NOT_FOUND if none. */
	allot_err (*charter_get)(struct store *st, int64_t version, struct charter_row *out);
	/* Calls fn for every applied version, oldest first, without its text
	 * (row.text NULL; as key_list: fn must not call the store). */
	allot_err (*charter_history)(struct store *st,
				     void (*fn)(void *ctx, const struct charter_row *r), void *ctx);
	allot_err (*audit_append)(struct store *st, const struct audit_entry *e);
	/* Calls fn for at most limit entries with id > after_id, in id order
	 * (a NULL column is a NULL pointer; as key_list: fn must not call the
	 * store, strings valid during the call only). */
	allot_err (*audit_list)(struct store *st, int64_t after_id, int64_t limit,
				void (*fn)(void *ctx, int64_t id, const struct audit_entry *a),
				void *ctx);
	int (*schema_version)(struct store *st);

	/* ---- the ledger (store/sqlite_ledger.c) ----
	 * ledger_begin opens a write transaction held by the calling thread until
	 * ledger_commit or ledger_rollback; find/insert/sum/net run inside it
	 * (they also work outside one). */
	allot_err (*ledger_begin)(struct store *st);
	/* ledger_begin with a durability class for its commit (STORE_SYNC_*). */
	allot_err (*ledger_begin_sync)(struct store *st, enum store_sync sync);
	allot_err (*ledger_commit)(struct store *st);
	void (*ledger_rollback)(struct store *st);
	/* OUT: *out with rec.canonical from malloc (record_release). */
	allot_err (*ledger_find)(struct store *st, const char *provider, const char *record_id,
				 struct ledger_row *out);
	/* ALLOT_E_TOO_LARGE, nothing written, reason in errmsg: the row would
	 * take the ledger's total of positive charges or of quantities past
	 * INT64_MAX (docs/LEDGER.md, "Bounds"). */
	allot_err (*ledger_insert)(struct store *st, struct ledger_row *row);
	allot_err (*ledger_sum)(struct store *st, const struct ledger_level *lv, int64_t from_us,
				int64_t to_us, int64_t *sum);
	/* Optional (NULL: ledger_sum for each).  rq[0..n)'s sums at once, as
	 * ledger_sum answers each (PostgreSQL: one statement inside a ledger
	 * transaction). */
	allot_err (*ledger_sums)(struct store *st, struct ledger_sum_req *rq, size_t n);
	/* Net charge of a record and every adjustment of it; whether voided. */
	allot_err (*ledger_net)(struct store *st, const char *provider, const char *record_id,
				int64_t *net, bool *voided);
	/* Calls fn for each row that f selects, in row id order, at most
	 * f->limit: the row (row_id set, rec.canonical its bytes) and its leaf
	 * index (-1 when the row has none: logged by the start-up backfill).
	 * As key_list: fn must not call the store, pointers valid during the
	 * call only. */
	allot_err (*ledger_list)(struct store *st, const struct ledger_filter *f,
				 void (*fn)(void *ctx, const struct ledger_row *row,
					    int64_t leaf_index),
				 void *ctx);
	/* Aggregates: calls fn once per group of the group_by columns
	 * (institution project member provider resource model, at most
	 * LEDGER_GROUP_MAX; others ALLOT_E_INVALID), and of the 15-minute
	 * bucket when by_bucket (day and month are folded by the caller), in
	 * the order of those columns (as key_list: fn must not call the
	 * store). */
	allot_err (*ledger_report)(struct store *st, const struct ledger_filter *f,
				   const char *const *group_by, size_t ngroup, bool by_bucket,
				   void (*fn)(void *ctx, const struct ledger_report_row *r),
				   void *ctx);
	/* Per provider: records, min/max seq, counts of missing ranges and
	 * repeated seqs, and at most `limit` of each with seq > after (-1: all),
	 * in one pass over an index, outside the writer's lock where it can.
	 * OUT: *out on success only (ledger_seq_status_release). */
	allot_err (*ledger_seq_status)(struct store *st, const char *provider, int64_t after,
				       int limit, struct ledger_seq_status *out);
	/* Rejected provider records (migration 0013).  reject_find: OK with
	 * *out filled, or ALLOT_E_NOT_FOUND.  reject_insert runs inside the
	 * ledger transaction of the batch that refused the record;
	 * ALLOT_E_CONFLICT: one is stored under (provider, record_id) already
	 * (PostgreSQL: another node's batch refused it meanwhile; nothing
	 * written, the transaction goes on).
	 * reject_list: provider NULL = all, ids > after, at most limit, in id
	 * order. */
	allot_err (*reject_find)(struct store *st, const char *provider, const char *record_id,
				 struct ledger_rejection *out);
	allot_err (*reject_insert)(struct store *st, const struct ledger_rejection *r);
	allot_err (*reject_list)(struct store *st, const char *provider, int64_t after,
				 int64_t limit,
				 void (*fn)(void *ctx, const struct ledger_rejection *r), void *ctx);
	/* Inside a ledger transaction: a nested savepoint (STORE_SP_*). */
	allot_err (*ledger_savepoint)(struct store *st, int op);
	/* Rows inserted while a hold tag is set (non-zero) stay out of the
	 * cached sums after commit until ledger_release(tag): the gate makes a
	 * settlement visible in the same step as it drops the reservation. */
	void (*ledger_hold)(struct store *st, uint64_t tag);
	void (*ledger_release)(struct store *st, uint64_t tag);
	/* Optional (NULL: nothing to do).  Inside a ledger transaction, before
	 * a provider batch is booked: the store may read at once what
	 * ledger_find and reject_find will be asked about (provider, ids[i]),
	 * and answer those from what it read until the transaction's next
	 * savepoint operation or its end; the answers stay exact (the
	 * PostgreSQL store, docs/POSTGRES.md, "Ingestion in few round trips"). */
	allot_err (*ledger_prefetch)(struct store *st, const char *provider,
				     const char *const *ids, size_t n);
	/* Optional (NULL: not offered; docs/POSTGRES.md, "Settlements in few
	 * round trips").  ledger_begin_sync for a group that books records and
	 * will run without savepoints: the store may take the ledger's locks
	 * at once, with the BEGIN, and keep every record inserted in it to
	 * write them all together later (at the latest before the commit or
	 * a read on the transaction).  A record whose (provider, record_id) is
	 * taken then fails a later statement or the commit, not its insert:
	 * the caller runs the group again the usual way when anything fails. */
	allot_err (*ledger_begin_batch)(struct store *st, enum store_sync sync);
	/* Optional: another group follows the thread's batch transaction (its
	 * writers are queued): once it commits, the store may open the next
	 * batch transaction at once (PostgreSQL: its opening statements sent
	 * with the commit's connection), which the next ledger_begin_batch
	 * takes and any other ledger transaction gives up first. */
	void (*ledger_follow)(struct store *st);

	/* ---- durability (store/sqlite_bg.c) ----
	 * set_flush_ms: the longest a DEFERRED commit waits to be on disk
	 * (0: every commit is FULL).  flush: makes every commit so far durable
	 * now.  sync_stats: the counters above. */
	void (*set_flush_ms)(struct store *st, int ms);
	allot_err (*flush)(struct store *st);
	void (*sync_stats)(struct store *st, struct store_sync_stats *out);
	/* Frames the write-ahead log may reach before a checkpoint under the
	 * store's lock starts it over (default 65,536; tests lower it). */
	void (*set_wal_limit)(struct store *st, int64_t frames);

	/* ---- member tokens (store/sqlite_tokens.c) ---- */
	allot_err (*token_issued)(struct store *st, const struct token_row *t,
				  const struct audit_entry *audit);
	allot_err (*token_revoke)(struct store *st, const struct token_revocation *r,
				  const struct audit_entry *audit);
	/* Calls fn for every revocation with id > after_id, by id (0: all).
	 * Ids are given before commit: on PostgreSQL a smaller id can commit
	 * after a larger one (gate/revwin.h). */
	allot_err (*token_revocations)(struct store *st, int64_t after_id,
				       void (*fn)(void *ctx, const struct token_revocation *r),
				       void *ctx);
	/* Sum of gate charges booked for token jti (record ids "gate:<jti>:..."). */
	allot_err (*token_spent)(struct store *st, const char *jti, int64_t *spent);
	allot_err (*token_find)(struct store *st, const char *jti, struct token_row *out);

	/* ---- the transparency log (store/sqlite_tlog.c, docs/TLOG.md) ----
	 * Every usage record, applied charter and audit entry is a leaf, appended
	 * in the entry's own transaction.  Reads see committed leaves only. */
	/* Committed tree size and root hash. */
	allot_err (*tlog_head)(struct store *st, uint64_t *size, uint8_t root[32]);
	/* Root of the first size leaves (size <= head size). */
	allot_err (*tlog_root_at)(struct store *st, uint64_t size, uint8_t root[32]);
	/* Leaf hash and inclusion proof of index in the tree of size leaves;
	 * ALLOT_E_INVALID unless index < size <= head size. */
	allot_err (*tlog_inclusion)(struct store *st, uint64_t index, uint64_t size,
				    uint8_t leaf[32], struct merkle_proof *p);
	/* ALLOT_E_INVALID unless 1 <= size1 <= size2 <= head size. */
	allot_err (*tlog_consistency)(struct store *st, uint64_t size1, uint64_t size2,
				      struct merkle_proof *p);
	/* Calls fn for each leaf of [start, min(end, head size)), in index
	 * order, with the entry it logs (store/tlog_types.h; as key_list: fn
	 * must not call the store).  ALLOT_E_INVALID when start is past that
	 * end. */
	allot_err (*tlog_entries)(struct store *st, uint64_t start, uint64_t end,
				  void (*fn)(void *ctx, const struct tlog_entry_row *e),
				  void *ctx);
	/* Leaf index of an entry: type "usage" (ref = row id), "charter"
	 * (version), "audit" (id).  ALLOT_E_NOT_FOUND when not logged. */
	allot_err (*tlog_leaf_of)(struct store *st, const char *type, int64_t ref, int64_t *idx);
	/* Benchmarks and tests only: false stops logging new entries. */
	void (*tlog_set_enabled)(struct store *st, bool on);

	/* ---- the gate's retry queue (store/sqlite_settleq.c) ----
	 * put: stores p in its own transaction, fsynced (OUT: p->id);
	 * ALLOT_E_CONFLICT when its record_base is queued already.  delete: inside
	 * the ledger transaction that books its records (or on its own).  list:
	 * calls fn for every queued settlement, oldest first. */
	allot_err (*settleq_put)(struct store *st, struct settle_pending *p);
	allot_err (*settleq_delete)(struct store *st, int64_t id);
	allot_err (*settleq_list)(struct store *st,
				  void (*fn)(void *ctx, const struct settle_pending *p), void *ctx);

	/* A consistent online copy of the whole store into a new file at path
	 * (created 0600; ALLOT_E_CONFLICT if it exists), as of one commit,
	 * while the store goes on serving (store/sqlite_backup.c).  NULL for a
	 * store that cannot. */
	allot_err (*backup)(struct store *st, const char *path, char *msg, size_t msgsz);

	/* ---- the webhook outbox (store/sqlite_outbox.c, docs/WEBHOOKS.md) ----
	 * put: inside the transaction open on this thread (the ledger's, so the
	 * event commits with what caused it), else in its own; an event whose
	 * (dedupe, url) is there already is skipped (ALLOT_OK).  due: calls fn
	 * for up to max undelivered events with next_us <= now, oldest first
	 * (ev->body is freed after fn returns).  done: delivered.  retry: the
	 * next attempt at next_us, with the error. */
	allot_err (*outbox_put)(struct store *st, const struct outbox_event *ev);
	allot_err (*outbox_due)(struct store *st, int64_t now, int max,
				void (*fn)(void *ctx, const struct outbox_event *ev), void *ctx);
	allot_err (*outbox_done)(struct store *st, int64_t seq, int64_t at);
	allot_err (*outbox_retry)(struct store *st, int64_t seq, int attempts, int64_t next_us,
				  const char *error);
	/* Whether an event with this dedupe key exists (any url). */
	allot_err (*outbox_has)(struct store *st, const char *dedupe, bool *has);

	/* ---- charges per 15-minute bucket (store/sqlite_buckets.c) ----
	 * The charges of level lv (as ledger_sum: institution NULL = every
	 * institution, project NULL = the institution's, member NULL = the
	 * project's) booked in [from_us, to_us) (both multiples of
	 * LEDGER_BUCKET_US), per bucket and per group `by`, from the bucket
	 * totals the ledger keeps (no record is read: the cost is the number of
	 * buckets, not of records).  fn is called once per (bucket, group)
	 * that has a bucket row, in bucket order, then group order; the
	 * store's lock is held (fn must not call the store; strings valid
	 * during the call only).  ALLOT_E_INVALID for unaligned or reversed
	 * bounds; ALLOT_E_STORE inside a ledger transaction of this thread. */
	allot_err (*ledger_buckets)(struct store *st, const struct ledger_level *lv,
				    int64_t from_us, int64_t to_us, enum ledger_bucket_by by,
				    void (*fn)(void *ctx, const struct ledger_bucket_row *r),
				    void *ctx);
	/* Deletes up to max delivered events with delivered_us < before_us, in
	 * its own transaction, oldest first; *deleted: how many.  Undelivered
	 * events are never deleted, nor the rows of the newest `charter` event
	 * (the highest seq of type charter, every url: webhooks_open looks for
	 * its dedupe key at start).  NULL for a store that cannot (the
	 * outbox then keeps everything; docs/WEBHOOKS.md, "Retention"). */
	allot_err (*outbox_prune)(struct store *st, int64_t before_us, int max, int64_t *deleted);

	/* ---- budgets in the database (store/pg_budget.c, docs/POSTGRES.md) ----
	 * NULL for a store whose reservations live in the gate's memory
	 * (SQLite: one process per database).  budget_reserve: admission in one
	 * round trip (struct store_budget_req).  budget_settle: the reservation
	 * id is settled at actual (its token level) and released; inside the
	 * calling thread's ledger transaction it happens at that transaction's
	 * commit, with its rows (and not at all if it rolls back); else at
	 * once.  An id that is not there (released already) is no error.
	 * budget_sweep: releases the reservations that expired before now_us,
	 * and with dead those of nodes whose registration ended while the
	 * server ran (docs/POSTGRES.md, "Expiry"); *released: how many.  budget_reserved: the reserved amount of level
	 * in the period holding at_us (0 without a row). */
	allot_err (*budget_reserve)(struct store *st, struct store_budget_req *rq);
	allot_err (*budget_settle)(struct store *st, const char *id, int64_t actual);
	allot_err (*budget_sweep)(struct store *st, int64_t now_us, bool dead, int64_t *released);
	allot_err (*budget_reserved)(struct store *st, const char *level, int64_t at_us,
				     int64_t *reserved);

	/* ---- node epochs and leases (store/pg_lease.c, docs/POSTGRES.md,
	 * "Leases and epochs"); NULL where budget_reserve is ----
	 * node_start: node's new epoch (bumped at every start).  node_heartbeat:
	 * *current false when epoch is no longer node's (fenced).  lease_take:
	 * takes (l->id 0) or tops up (l->id) a lease of want at lv's row, capped
	 * by a fair share (room / nodes seen within live_us); OUT: *l (id -1:
	 * fenced; 0: nothing granted).  lease_return: *back what came back (-1:
	 * no such lease of node under epoch).  lease_settle: actual under the
	 * lease, as budget_settle (at the booking's commit).  lease_sweep:
	 * returns the leases whose expires_us + grace_us is before now_us. */
	allot_err (*node_start)(struct store *st, const char *node, int64_t now_us, int64_t *epoch);
	allot_err (*node_heartbeat)(struct store *st, const char *node, int64_t epoch,
				    int64_t now_us, bool *current);
	allot_err (*lease_take)(struct store *st, const char *node, int64_t epoch,
				const struct store_budget_level *lv, int64_t charter_version,
				int64_t want, int64_t now_us, int64_t expires_us, int64_t live_us,
				struct store_lease *l);
	allot_err (*lease_return)(struct store *st, int64_t id, const char *node, int64_t epoch,
				  int64_t *back);
	allot_err (*lease_settle)(struct store *st, int64_t id, int64_t epoch, int64_t actual);
	allot_err (*lease_sweep)(struct store *st, int64_t now_us, int64_t grace_us,
				 int64_t *returned);
};

struct store {
	const struct store_ops *ops;
	char errmsg[256];                  /* last error, for logs */
};

/* Opens the store named by uri: a path (SQLite) or postgres://... .
 * Applies pending migrations; refuses a schema newer than this binary. */
allot_err store_open(const char *uri, struct store **out, char *msg, size_t msgsz);
void store_close(struct store *st);

allot_err store_sqlite_open(const char *path, struct store **out, char *msg, size_t msgsz);
/* Opens the store read-only (allotd --fsck): the database must exist at this
 * binary's schema version; nothing is migrated, backfilled or written, and
 * every write operation fails.  The reads behave as in store_open. */
allot_err store_open_readonly(const char *uri, struct store **out, char *msg, size_t msgsz);
allot_err store_sqlite_open_readonly(const char *path, struct store **out, char *msg,
				     size_t msgsz);
/* The PostgreSQL store (store/pg_store.c, docs/POSTGRES.md): uri is
 * postgres://... or postgresql://... (or libpq's key=value form); connects,
 * applies the migrations, keeps a pool of connections.  store_open still
 * refuses such URIs until every operation exists (issue 13). */
allot_err store_pg_open(const char *uri, struct store **out, char *msg, size_t msgsz);
allot_err store_pg_open_readonly(const char *uri, struct store **out, char *msg,
				 size_t msgsz);
/* Whether uri names a PostgreSQL database (postgres:// or postgresql://). */
bool store_uri_is_pg(const char *uri);
/* uri as it may be printed (logs, messages): a PostgreSQL URI without its
 * password (user:password@, or a password= parameter), written into buf;
 * a path as it is.  Returns the text to print. */
const char *store_uri_printable(const char *uri, char *buf, size_t bufsz);

/* The nodes of a PostgreSQL database (store/pg_owner.c, docs/POSTGRES.md),
 * as daemon/dblock.c is for a SQLite file: a session-level advisory lock
 * held on a connection of its own until store_pg_owner_release (or the
 * process's end).  what: a short name of the holder; "allotd" takes the
 * shared form (several nodes share one database), anything else ("allotd
 * --fsck") the exclusive one.  ALLOT_E_CONFLICT when a session holds it
 * in a conflicting form: msg names a holder (pid, host, what, since);
 * ALLOT_E_UNAVAILABLE when the server cannot be reached. */
struct store_owner;
allot_err store_pg_owner_acquire(const char *uri, const char *what, struct store_owner **out,
				 char *msg, size_t msgsz);
void store_pg_owner_release(struct store_owner *o);

static inline allot_err store_key_insert(struct store *st, const struct api_key *k,
					 const struct audit_entry *a)
{ return st->ops->key_insert(st, k, a); }
static inline allot_err store_key_find_by_hash(struct store *st, const uint8_t h[32],
					       struct api_key *out)
{ return st->ops->key_find_by_hash(st, h, out); }
static inline allot_err store_key_revoke(struct store *st, const char *id, int64_t at,
					 const struct audit_entry *a)
{ return st->ops->key_revoke(st, id, at, a); }
static inline allot_err store_key_count_active(struct store *st, const char *role,
					       int64_t *count)
{ return st->ops->key_count_active(st, role, count); }
static inline allot_err store_key_list(struct store *st,
					void (*fn)(void *ctx, const struct api_key *k), void *ctx)
{ return st->ops->key_list(st, fn, ctx); }
static inline allot_err store_charter_apply(struct store *st, const struct charter_row *r,
					    const struct audit_entry *a)
{ return st->ops->charter_apply(st, r, a); }
static inline allot_err store_charter_latest(struct store *st, struct charter_row *out)
{ return st->ops->charter_latest(st, out); }
static inline allot_err store_charter_get(struct store *st, int64_t v, struct charter_row *out)
{ return st->ops->charter_get(st, v, out); }
static inline allot_err store_charter_history(struct store *st,
					       void (*fn)(void *ctx, const struct charter_row *r),
					       void *ctx)
{ return st->ops->charter_history(st, fn, ctx); }
static inline allot_err store_audit_append(struct store *st, const struct audit_entry *e)
{ return st->ops->audit_append(st, e); }
static inline allot_err store_audit_list(struct store *st, int64_t after, int64_t limit,
					 void (*fn)(void *ctx, int64_t id,
						    const struct audit_entry *a),
					 void *ctx)
{ return st->ops->audit_list(st, after, limit, fn, ctx); }

static inline allot_err store_ledger_sums(struct store *st, struct ledger_sum_req *rq, size_t n)
{
	if (st->ops->ledger_sums)
		return st->ops->ledger_sums(st, rq, n);
	allot_err e = ALLOT_OK;
	for (size_t i = 0; i < n && !e; i++)
		e = st->ops->ledger_sum(st, &rq[i].lv, rq[i].from_us, rq[i].to_us, &rq[i].sum);
	return e;
}
static inline allot_err store_ledger_sum_q(struct store *st, const struct ledger_level *lv,
				     int64_t from, int64_t to, int64_t *sum)
{ return st->ops->ledger_sum(st, lv, from, to, sum); }
static inline allot_err store_ledger_find_q(struct store *st, const char *provider,
					    const char *record_id, struct ledger_row *out)
{ return st->ops->ledger_find(st, provider, record_id, out); }
static inline allot_err store_ledger_insert_q(struct store *st, struct ledger_row *row)
{ return st->ops->ledger_insert(st, row); }
static inline allot_err store_ledger_net_q(struct store *st, const char *provider,
					   const char *record_id, int64_t *net, bool *voided)
{ return st->ops->ledger_net(st, provider, record_id, net, voided); }
static inline allot_err store_ledger_list_q(struct store *st, const struct ledger_filter *f,
					    void (*fn)(void *ctx, const struct ledger_row *row,
						       int64_t leaf_index),
					    void *ctx)
{ return st->ops->ledger_list(st, f, fn, ctx); }
static inline allot_err store_reject_find(struct store *st, const char *provider,
					  const char *record_id, struct ledger_rejection *out)
{ return st->ops->reject_find(st, provider, record_id, out); }
static inline allot_err store_reject_insert(struct store *st, const struct ledger_rejection *r)
{ return st->ops->reject_insert(st, r); }
static inline allot_err store_reject_list(struct store *st, const char *provider, int64_t after,
					  int64_t limit,
					  void (*fn)(void *ctx, const struct ledger_rejection *r),
					  void *ctx)
{ return st->ops->reject_list(st, provider, after, limit, fn, ctx); }
enum { STORE_SP_BEGIN, STORE_SP_RELEASE, STORE_SP_ROLLBACK };
static inline allot_err store_ledger_savepoint_q(struct store *st, int op)
{ return st->ops->ledger_savepoint(st, op); }
static inline allot_err store_ledger_begin(struct store *st) { return st->ops->ledger_begin(st); }
static inline allot_err store_ledger_commit(struct store *st) { return st->ops->ledger_commit(st); }
static inline allot_err store_ledger_begin_sync(struct store *st, enum store_sync sync)
{ return st->ops->ledger_begin_sync(st, sync); }
static inline void store_set_flush_ms(struct store *st, int ms) { st->ops->set_flush_ms(st, ms); }
static inline allot_err store_flush(struct store *st) { return st->ops->flush(st); }
static inline void store_set_wal_limit(struct store *st, int64_t frames)
{ st->ops->set_wal_limit(st, frames); }
static inline void store_sync_stats(struct store *st, struct store_sync_stats *out)
{ st->ops->sync_stats(st, out); }
static inline void store_ledger_rollback(struct store *st) { st->ops->ledger_rollback(st); }
/* Whether the store keeps the gate's budgets itself (store_ops.budget_*). */
static inline bool store_has_budgets(const struct store *st)
{ return st->ops->budget_reserve != NULL; }
static inline allot_err store_budget_reserve(struct store *st, struct store_budget_req *rq)
{ return st->ops->budget_reserve(st, rq); }
static inline allot_err store_budget_settle(struct store *st, const char *id, int64_t actual)
{ return st->ops->budget_settle(st, id, actual); }
static inline allot_err store_budget_sweep(struct store *st, int64_t now_us, bool dead,
					   int64_t *released)
{ return st->ops->budget_sweep(st, now_us, dead, released); }
static inline allot_err store_budget_reserved(struct store *st, const char *level, int64_t at_us,
					      int64_t *reserved)
{ return st->ops->budget_reserved(st, level, at_us, reserved); }
static inline bool store_has_leases(const struct store *st) { return st->ops->lease_take != NULL; }
static inline allot_err store_node_start(struct store *st, const char *node, int64_t now_us,
					 int64_t *epoch)
{ return st->ops->node_start(st, node, now_us, epoch); }
static inline allot_err store_node_heartbeat(struct store *st, const char *node, int64_t epoch,
					     int64_t now_us, bool *current)
{ return st->ops->node_heartbeat(st, node, epoch, now_us, current); }
static inline allot_err store_lease_take(struct store *st, const char *node, int64_t epoch,
					 const struct store_budget_level *lv,
					 int64_t charter_version, int64_t want, int64_t now_us,
					 int64_t expires_us, int64_t live_us, struct store_lease *l)
{ return st->ops->lease_take(st, node, epoch, lv, charter_version, want, now_us, expires_us,
			     live_us, l); }
static inline allot_err store_lease_return(struct store *st, int64_t id, const char *node,
					   int64_t epoch, int64_t *back)
{ return st->ops->lease_return(st, id, node, epoch, back); }
static inline allot_err store_lease_settle(struct store *st, int64_t id, int64_t epoch,
					   int64_t actual)
{ return st->ops->lease_settle(st, id, epoch, actual); }
static inline allot_err store_lease_sweep(struct store *st, int64_t now_us, int64_t grace_us,
					  int64_t *returned)
{ return st->ops->lease_sweep(st, now_us, grace_us, returned); }
static inline allot_err store_token_spent(struct store *st, const char *jti, int64_t *spent)
{ return st->ops->token_spent(st, jti, spent); }
static inline void store_ledger_hold(struct store *st, uint64_t tag)
{ st->ops->ledger_hold(st, tag); }
static inline void store_ledger_release(struct store *st, uint64_t tag)
{ st->ops->ledger_release(st, tag); }
static inline bool store_has_ledger_batch(const struct store *st)
{ return st->ops->ledger_begin_batch != NULL; }
static inline allot_err store_ledger_begin_batch(struct store *st, enum store_sync sync)
{ return st->ops->ledger_begin_batch(st, sync); }
static inline void store_ledger_follow(struct store *st)
{ if (st->ops->ledger_follow) st->ops->ledger_follow(st); }
static inline allot_err store_ledger_prefetch(struct store *st, const char *provider,
					       const char *const *ids, size_t n)
{ return st->ops->ledger_prefetch ? st->ops->ledger_prefetch(st, provider, ids, n) : ALLOT_OK; }

static inline allot_err store_settleq_put(struct store *st, struct settle_pending *p)
{ return st->ops->settleq_put(st, p); }
static inline allot_err store_settleq_delete(struct store *st, int64_t id)
{ return st->ops->settleq_delete(st, id); }
static inline allot_err store_settleq_list(struct store *st,
					   void (*fn)(void *ctx, const struct settle_pending *p),
					   void *ctx)
{ return st->ops->settleq_list(st, fn, ctx); }

/* ---- the transparency log ---- */
static inline int store_schema_version(struct store *st) { return st->ops->schema_version(st); }
static inline allot_err store_ledger_report_rows(
	struct store *st, const struct ledger_filter *f, const char *const *group_by,
	size_t ngroup, bool by_bucket, void (*fn)(void *ctx, const struct ledger_report_row *r),
	void *ctx)
{ return st->ops->ledger_report(st, f, group_by, ngroup, by_bucket, fn, ctx); }
static inline allot_err store_ledger_seq_status(struct store *st, const char *provider,
						int64_t after, int limit,
						struct ledger_seq_status *out)
{ return st->ops->ledger_seq_status(st, provider, after, limit, out); }
static inline allot_err store_token_issued(struct store *st, const struct token_row *t,
					   const struct audit_entry *audit)
{ return st->ops->token_issued(st, t, audit); }
static inline allot_err store_token_revoke(struct store *st, const struct token_revocation *r,
					   const struct audit_entry *audit)
{ return st->ops->token_revoke(st, r, audit); }
static inline allot_err store_token_revocations(
	struct store *st, int64_t after_id, void (*fn)(void *ctx, const struct token_revocation *r),
	void *ctx)
{ return st->ops->token_revocations(st, after_id, fn, ctx); }
static inline allot_err store_token_find(struct store *st, const char *jti,
					 struct token_row *out)
{ return st->ops->token_find(st, jti, out); }
static inline allot_err store_tlog_root_at(struct store *st, uint64_t size, uint8_t root[32])
{ return st->ops->tlog_root_at(st, size, root); }
static inline void store_tlog_set_enabled(struct store *st, bool on)
{ st->ops->tlog_set_enabled(st, on); }
/* The webhook outbox (docs/WEBHOOKS.md). */
static inline allot_err store_outbox_put(struct store *st, const struct outbox_event *ev)
{ return st->ops->outbox_put(st, ev); }
static inline allot_err store_outbox_due(struct store *st, int64_t now, int max,
					 void (*fn)(void *ctx, const struct outbox_event *ev),
					 void *ctx)
{ return st->ops->outbox_due(st, now, max, fn, ctx); }
static inline allot_err store_outbox_done(struct store *st, int64_t seq, int64_t at)
{ return st->ops->outbox_done(st, seq, at); }
static inline allot_err store_outbox_retry(struct store *st, int64_t seq, int attempts,
					   int64_t next_us, const char *error)
{ return st->ops->outbox_retry(st, seq, attempts, next_us, error); }
static inline allot_err store_outbox_has(struct store *st, const char *dedupe, bool *has)
{ return st->ops->outbox_has(st, dedupe, has); }
/* ALLOT_E_UNSUPPORTED where the backend has no ledger_buckets (yet). */
static inline allot_err store_ledger_buckets(struct store *st, const struct ledger_level *lv,
					     int64_t from_us, int64_t to_us,
					     enum ledger_bucket_by by,
					     void (*fn)(void *ctx, const struct ledger_bucket_row *r),
					     void *ctx)
{
	if (!st->ops->ledger_buckets)
		return ALLOT_E_UNSUPPORTED;
	return st->ops->ledger_buckets(st, lv, from_us, to_us, by, fn, ctx);
}
/* ALLOT_E_UNSUPPORTED where the backend has no outbox_prune. */
static inline allot_err store_outbox_prune(struct store *st, int64_t before_us, int max,
					   int64_t *deleted)
{
	*deleted = 0;
	return st->ops->outbox_prune ? st->ops->outbox_prune(st, before_us, max, deleted)
				     : ALLOT_E_UNSUPPORTED;
}
/* The backend's name ("sqlite", ...). */
static inline const char *store_name(const struct store *st) { return st->ops->name; }
/* ALLOT_E_UNSUPPORTED (msg says so) where the backend has no online backup. */
static inline allot_err store_backup(struct store *st, const char *path, char *msg, size_t msgsz)
{
	if (!st->ops->backup) {
		snprintf(msg, msgsz, "this store (%s) cannot make an online backup", st->ops->name);
		return ALLOT_E_UNSUPPORTED;
	}
	return st->ops->backup(st, path, msg, msgsz);
}
static inline allot_err store_tlog_head(struct store *st, uint64_t *size, uint8_t root[32])
{ return st->ops->tlog_head(st, size, root); }
static inline allot_err store_tlog_inclusion(struct store *st, uint64_t index, uint64_t size,
					     uint8_t leaf[32], struct merkle_proof *p)
{ return st->ops->tlog_inclusion(st, index, size, leaf, p); }
static inline allot_err store_tlog_consistency(struct store *st, uint64_t size1, uint64_t size2,
					       struct merkle_proof *p)
{ return st->ops->tlog_consistency(st, size1, size2, p); }
static inline allot_err store_tlog_entries(struct store *st, uint64_t start, uint64_t end,
					   void (*fn)(void *ctx, const struct tlog_entry_row *e),
					   void *ctx)
{ return st->ops->tlog_entries(st, start, end, fn, ctx); }
static inline allot_err store_tlog_leaf_of(struct store *st, const char *type, int64_t ref,
					   int64_t *idx)
{ return st->ops->tlog_leaf_of(st, type, ref, idx); }

#endif
