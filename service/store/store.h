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

#include <jansson.h>

#include "common/err.h"

#define STORE_ID_MAX 65      /* ids are at most 64 bytes (SPEC charter ids) */
#define STORE_MEMBER_MAX 257 /* member ids may be e-mail addresses */

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
	allot_err (*key_list)(struct store *st, json_t **out);
	allot_err (*charter_apply)(struct store *st, const struct charter_row *row,
				   const struct audit_entry *audit);
	allot_err (*charter_latest)(struct store *st, struct charter_row *out);
	allot_err (*charter_history)(struct store *st, json_t **out);
	allot_err (*audit_append)(struct store *st, const struct audit_entry *e);
	allot_err (*audit_list)(struct store *st, int64_t after_id, int64_t limit,
				json_t **out);
	int (*schema_version)(struct store *st);
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
static inline allot_err store_key_list(struct store *st, json_t **out)
{ return st->ops->key_list(st, out); }
static inline allot_err store_charter_apply(struct store *st, const struct charter_row *r,
					    const struct audit_entry *a)
{ return st->ops->charter_apply(st, r, a); }
static inline allot_err store_charter_latest(struct store *st, struct charter_row *out)
{ return st->ops->charter_latest(st, out); }
static inline allot_err store_charter_history(struct store *st, json_t **out)
{ return st->ops->charter_history(st, out); }
static inline allot_err store_audit_append(struct store *st, const struct audit_entry *e)
{ return st->ops->audit_append(st, e); }
static inline allot_err store_audit_list(struct store *st, int64_t after, int64_t limit,
					 json_t **out)
{ return st->ops->audit_list(st, after, limit, out); }

#endif
