/* bootstrap.h — what allotd settles once at start-up, before it serves:
 * whether this database may be used with these keys, and the admin key.
 *
 * A deployment is a database and the keys directory beside it: the log key
 * signs checkpoints of the log the database holds, the token keys sign
 * tokens whose revocations the database holds.  A database with an empty
 * log next to keys that already exist would start a second log under the
 * same key (a forked log) and forget every revocation, so it is refused
 * unless --init says a new deployment is meant; --init then retires the old
 * keys (gate/keyset.h) instead of reusing them.  --init on a database that
 * already holds a log is refused.  See docs/OPERATIONS.md.
 *
 * The admin key from ALLOT_ADMIN_KEY is looked up by its SHA-256; a new
 * one gets a random id, and every other admin key that came from
 * ALLOT_ADMIN_KEY is revoked (with an audit entry), so changing the
 * variable rotates the key.  Keys minted through the API are kept.
 */
#ifndef ALLOT_DAEMON_BOOTSTRAP_H
#define ALLOT_DAEMON_BOOTSTRAP_H

#include <stddef.h>

#include "common/err.h"

struct app;
struct app_config;

/* The shortest ALLOT_ADMIN_KEY accepted (bytes). */
#define BOOTSTRAP_ADMIN_KEY_MIN 16
/* The label and creator that mark a key made from ALLOT_ADMIN_KEY. */
#define BOOTSTRAP_ENV_LABEL "from ALLOT_ADMIN_KEY"
#define BOOTSTRAP_ACTOR "bootstrap"

/* Checks ALLOT_ADMIN_KEY's form; called before anything is created. */
allot_err bootstrap_admin_env_check(char *msg, size_t msgsz);

/* Before the store opens (cfg->keys already prepared): refuses a missing
 * or zero-length database file beside existing keys unless cfg->init, so
 * that a refusal creates no database. */
allot_err bootstrap_db_precheck(const struct app_config *cfg, char *msg, size_t msgsz);

/* After the store opens, before the log key is loaded: applies the rule
 * above to the stored log's size; with --init on an empty log, retires the
 * existing keys. */
allot_err bootstrap_deployment(struct app *app, char *msg, size_t msgsz);

/* Ensures an admin key: ALLOT_ADMIN_KEY's (revoking the earlier ones), or a
 * generated one printed once on stdout when no admin key is active. */
allot_err bootstrap_admin(struct app *app, char *msg, size_t msgsz);

#endif
