/* bootstrap.c — start-up checks of the deployment and the admin key. */
#include "daemon/bootstrap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "auth/apikey.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "daemon/app.h"
#include "daemon/dblock.h"
#include "daemon/fileio.h"
#include "gate/keyset.h"

/* ---- the deployment: database and keys ------------------------------------------ */

static allot_err refuse_fresh(const struct app_config *cfg, const char *state,
			      const char *keyname, char *msg, size_t msgsz)
{
	char db[1024];
	snprintf(msg, msgsz,
		 "database %s %s, but the keys directory %s holds %s of an earlier deployment: "
		 "serving would sign a second log with the same key (a forked log) and forget "
		 "its revocations. Restore the database from a backup, or start once with --init "
		 "(ALLOT_INIT=1) to begin a new deployment; --init moves the old keys to "
		 "%s/retired-<time>/",
		 store_uri_printable(cfg->db, db, sizeof db), state, cfg->keys, keyname, cfg->keys);
	return ALLOT_E_CONFLICT;
}

allot_err bootstrap_db_precheck(const struct app_config *cfg, char *msg, size_t msgsz)
{
	if (cfg->init || !dblock_applies(cfg->db))
		return ALLOT_OK;
	struct stat sb;
	const char *state = NULL;
	if (stat(cfg->db, &sb) < 0) {
		if (errno != ENOENT)
			return ALLOT_OK; /* the store's open says what is wrong */
		state = "does not exist";
	} else if (S_ISREG(sb.st_mode) && sb.st_size == 0) {
		state = "is empty";
	}
	if (!state)
		return ALLOT_OK; /* opened and checked by bootstrap_deployment */
	bool has;
	char name[256];
	allot_err e = keyset_dir_has_keys(cfg->keys, &has, name, sizeof name, msg, msgsz);
	if (e || !has)
		return e;
	return refuse_fresh(cfg, state, name, msg, msgsz);
}

allot_err bootstrap_deployment(struct app *app, char *msg, size_t msgsz)
{
	const struct app_config *cfg = &app->cfg;
	uint64_t size = 0;
	uint8_t root[32];
	char db[1024];
	allot_err e = store_tlog_head(app->store, &size, root);
	if (e) {
		snprintf(msg, msgsz, "cannot read the log's size: %s", app->store->errmsg);
		return e;
	}
	if (size > 0) {
		if (!cfg->init)
			return ALLOT_OK;
		snprintf(msg, msgsz,
			 "--init begins a new deployment, but database %s already holds a log of "
			 "%llu entries; start without --init (and without ALLOT_INIT)",
			 store_uri_printable(cfg->db, db, sizeof db), (unsigned long long)size);
		return ALLOT_E_CONFLICT;
	}
	bool has;
	char name[256];
	if ((e = keyset_dir_has_keys(cfg->keys, &has, name, sizeof name, msg, msgsz)) || !has)
		return e;
	if (!cfg->init)
		return refuse_fresh(cfg, "holds no log entries", name, msg, msgsz);
	char sub[1024];
	if ((e = keyset_dir_retire(cfg->keys, sub, sizeof sub, msg, msgsz)))
		return e;
	log_info("--init: a new deployment begins in %s; the keys of the earlier one were moved "
		 "to %s (kept to verify what they signed, never used again)",
		 store_uri_printable(cfg->db, db, sizeof db), sub);
	return ALLOT_OK;
}

/* ---- the admin key ----------------------------------------------------------------- */

allot_err bootstrap_admin_env_check(char *msg, size_t msgsz)
{
	const char *env = getenv("ALLOT_ADMIN_KEY");
	if (env && *env && strlen(env) < BOOTSTRAP_ADMIN_KEY_MIN) {
		snprintf(msg, msgsz, "ALLOT_ADMIN_KEY must be at least %d characters",
			 BOOTSTRAP_ADMIN_KEY_MIN);
		return ALLOT_E_INVALID;
	}
	return ALLOT_OK;
}

/* The active admin keys made from ALLOT_ADMIN_KEY (store_key_list's fn). */
struct env_keys {
	char (*ids)[STORE_ID_MAX];
	size_t n, cap;
	bool oom;
};

static void env_key_add(void *ctx, const struct api_key *k)
{
	struct env_keys *ek = ctx;
	if (strcmp(k->role, "admin") != 0 || strcmp(k->label, BOOTSTRAP_ENV_LABEL) != 0 ||
	    strcmp(k->created_by, BOOTSTRAP_ACTOR) != 0 || k->revoked_at != 0)
		return;
	if (ek->n == ek->cap) {
		size_t cap = ek->cap ? ek->cap * 2 : 4;
		char (*ids)[STORE_ID_MAX] = realloc(ek->ids, cap * sizeof *ids);
		if (!ids) {
			ek->oom = true;
			return;
		}
		ek->ids = ids;
		ek->cap = cap;
	}
	snprintf(ek->ids[ek->n++], STORE_ID_MAX, "%s", k->id);
}

/* Revokes every active admin key made from ALLOT_ADMIN_KEY except keep. */
static allot_err revoke_earlier_env_keys(struct app *app, const char *keep, char *msg,
					 size_t msgsz)
{
	struct env_keys ek = {0};
	allot_err e = store_key_list(app->store, env_key_add, &ek);
	if (!e && ek.oom)
		e = ALLOT_E_NOMEM;
	if (e) {
		snprintf(msg, msgsz, "cannot list the API keys: %s",
			 e == ALLOT_E_NOMEM ? "out of memory" : app->store->errmsg);
		free(ek.ids);
		return e;
	}
	for (size_t i = 0; i < ek.n; i++) {
		const char *id = ek.ids[i];
		if (strcmp(id, keep) == 0)
			continue;
		char detail[160];
		snprintf(detail, sizeof detail,
			 "{\"reason\":\"ALLOT_ADMIN_KEY changed\",\"replaced_by\":\"%s\"}", keep);
		int64_t now = time_now_us();
		struct audit_entry a = {.at = now, .actor = BOOTSTRAP_ACTOR, .action = "key.revoke",
					.target = id, .detail = detail};
		e = store_key_revoke(app->store, id, now, &a);
		if (e == ALLOT_E_NOT_FOUND) {
			e = ALLOT_OK; /* revoked meanwhile */
			continue;
		}
		if (e) {
			snprintf(msg, msgsz, "cannot revoke the earlier admin key %s: %s", id,
				 app->store->errmsg);
			break;
		}
		log_info("revoked admin key %s: it came from an earlier ALLOT_ADMIN_KEY", id);
	}
	free(ek.ids);
	return e;
}

/* Before ids were random, an env key's id was "admin_" and the first 12 hex
 * digits of its secret's SHA-256: shown in the audit log, a start for a
 * guess of a weak secret. */
static bool legacy_env_id(const char *id, const char *env)
{
	char h[65], legacy[32];
	sha256_hex(env, strlen(env), h);
	snprintf(legacy, sizeof legacy, "admin_%.12s", h);
	return strcmp(id, legacy) == 0;
}

static allot_err admin_from_env(struct app *app, const char *env, char *msg, size_t msgsz)
{
	struct api_key k = {0}, found;
	apikey_hash(env, strlen(env), k.secret_sha256);
	allot_err e = store_key_find_by_hash(app->store, k.secret_sha256, &found);
	if (e == ALLOT_OK) {
		if (found.revoked_at) {
			snprintf(msg, msgsz,
				 "ALLOT_ADMIN_KEY is the secret of key %s, which was revoked; a "
				 "revoked key does not come back: set a new ALLOT_ADMIN_KEY",
				 found.id);
			return ALLOT_E_INVALID;
		}
		if (strcmp(found.role, "admin") != 0) {
			snprintf(msg, msgsz,
				 "ALLOT_ADMIN_KEY is the secret of key %s, a %s key, not an admin key",
				 found.id, found.role);
			return ALLOT_E_INVALID;
		}
		if (legacy_env_id(found.id, env))
			log_warnx("the admin key %s from ALLOT_ADMIN_KEY has an id made from its "
				  "secret's hash (an older allotd); set a new ALLOT_ADMIN_KEY to "
				  "replace it", found.id);
		return revoke_earlier_env_keys(app, found.id, msg, msgsz);
	}
	if (e != ALLOT_E_NOT_FOUND)
		return e;
	if ((e = apikey_random_id("admin_", k.id)))
		return e;
	snprintf(k.role, sizeof k.role, "admin");
	snprintf(k.label, sizeof k.label, "%s", BOOTSTRAP_ENV_LABEL);
	snprintf(k.created_by, sizeof k.created_by, "%s", BOOTSTRAP_ACTOR);
	k.created_at = time_now_us();
	struct audit_entry a = {.at = k.created_at, .actor = BOOTSTRAP_ACTOR,
				.action = "key.create", .target = k.id,
				.detail = "{\"role\":\"admin\",\"source\":\"ALLOT_ADMIN_KEY\"}"};
	/* The new key first, then the old ones go: a failure in between leaves
	 * both valid until the next start finishes the rotation, never none. */
	if ((e = store_key_insert(app->store, &k, &a)))
		return e;
	log_info("admin key %s from ALLOT_ADMIN_KEY", k.id);
	return revoke_earlier_env_keys(app, k.id, msg, msgsz);
}

allot_err bootstrap_admin(struct app *app, char *msg, size_t msgsz)
{
	const char *env = getenv("ALLOT_ADMIN_KEY");
	if (env && *env) {
		allot_err e = bootstrap_admin_env_check(msg, msgsz);
		return e ? e : admin_from_env(app, env, msg, msgsz);
	}
	struct api_key k = {0};
	int64_t n = 0;
	allot_err e = store_key_count_active(app->store, "admin", &n);
	if (e || n > 0)
		return e;
	char secret[APIKEY_SECRET_MAX];
	if ((e = apikey_generate(secret, k.secret_sha256, k.id)))
		return e;
	snprintf(k.role, sizeof k.role, "admin");
	snprintf(k.label, sizeof k.label, "bootstrap admin key");
	snprintf(k.created_by, sizeof k.created_by, "%s", BOOTSTRAP_ACTOR);
	k.created_at = time_now_us();
	struct audit_entry a = {.at = k.created_at, .actor = BOOTSTRAP_ACTOR,
				.action = "key.create", .target = k.id,
				.detail = "{\"role\":\"admin\",\"source\":\"generated\"}"};
	if ((e = store_key_insert(app->store, &k, &a)))
		return e;
	/* Shown once, on stdout, never logged. */
	printf("allotd: bootstrap admin key (shown once, store it now): %s\n", secret);
	fflush(stdout);
	OPENSSL_cleanse_str(secret);
	return ALLOT_OK;
}
