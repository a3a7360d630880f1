/* app.c — daemon start-up (daemon/bootstrap.c: the checks) and the active charter. */
#include "daemon/app.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/apikey.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "daemon/bootstrap.h"
#include "daemon/dblock.h"
#include "daemon/fileio.h"
#include "daemon/webhooks.h"
#include "gate/gate.h"
#include "gate/keyset.h"
#include "ledger/ledger.h"
#include "ledger/ledgerlog.h"

/* ---- the active charter ------------------------------------------------------- */

struct chist *app_charters(struct app *app)
{
	return app->ledger ? ledger_charters(app->ledger) : NULL;
}

struct active_charter *app_charter_in_force(struct app *app, int64_t t)
{
	struct chist *h = app_charters(app);
	return h ? chist_in_force(h, t) : NULL;
}

struct active_charter *app_charter_get(struct app *app)
{
	return app_charter_in_force(app, time_now_us());
}

struct active_charter *app_charter_latest(struct app *app)
{
	struct chist *h = app_charters(app);
	return h ? chist_latest(h) : NULL;
}

struct active_charter *app_charter_next(struct app *app, int64_t version)
{
	struct chist *h = app_charters(app);
	return h ? chist_next(h, version) : NULL;
}

void app_charter_put(struct app *app, struct active_charter *ac)
{
	if (ac)
		chist_put(app_charters(app), ac);
}

const struct active_charter *app_charter_at(struct app *app, int64_t t)
{
	struct chist *h = app_charters(app);
	return h ? chist_at(h, t) : NULL;
}

const struct active_charter *app_charter_version(struct app *app, int64_t version)
{
	struct chist *h = app_charters(app);
	return h ? chist_version(h, version) : NULL;
}

/* Serializes the installs of new versions: an apply on this node and the
 * load of the versions other nodes applied (app_charter_follow), so one
 * version is never installed twice.  Admissions never take it. */
static pthread_mutex_t app_charter_mu = PTHREAD_MUTEX_INITIALIZER;

static allot_err charter_apply_locked(struct app *app, const char *filename, const char *text,
				      size_t len, const char *author,
				      struct charter_errors *errs, char *msg, size_t msgsz);

allot_err app_charter_apply(struct app *app, const char *filename, const char *text,
			    size_t len, const char *author, struct charter_errors *errs,
			    char *msg, size_t msgsz)
{
	pthread_mutex_lock(&app_charter_mu);
	allot_err e = charter_apply_locked(app, filename, text, len, author, errs, msg, msgsz);
	pthread_mutex_unlock(&app_charter_mu);
	return e;
}

static allot_err charter_apply_locked(struct app *app, const char *filename, const char *text,
				      size_t len, const char *author,
				      struct charter_errors *errs, char *msg, size_t msgsz)
{
	struct charter *c = NULL;
	allot_err e = charter_parse(filename, text, len, &c, errs);
	if (e) {
		snprintf(msg, msgsz, "charter is invalid (%zu error%s)", errs->nerrors,
			 errs->nerrors == 1 ? "" : "s");
		return e == ALLOT_E_NOMEM ? e : ALLOT_E_UNPROCESSABLE;
	}
	struct active_charter *cur = app_charter_latest(app);
	e = charter_check_successor(cur ? cur->c : NULL, c, errs);
	char before[65] = "";
	if (cur)
		snprintf(before, sizeof before, "%s", cur->row.sha256);
	app_charter_put(app, cur);
	if (e) {
		charter_free(c);
		snprintf(msg, msgsz, "charter cannot replace the active one (%zu error%s)",
			 errs->nerrors, errs->nerrors == 1 ? "" : "s");
		return e == ALLOT_E_NOMEM ? e : ALLOT_E_CONFLICT;
	}
	struct active_charter *ac = calloc(1, sizeof *ac);
	char *copy = malloc(len + 1);
	if (!ac || !copy) {
		free(ac);
		free(copy);
		charter_free(c);
		return ALLOT_E_NOMEM;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	ac->c = c;
	ac->row.version = c->version;
	snprintf(ac->row.charter_id, sizeof ac->row.charter_id, "%s", c->id);
	ac->row.text = copy;
	ac->row.text_len = len;
	sha256_hex(text, len, ac->row.sha256);
	snprintf(ac->row.author, sizeof ac->row.author, "%s", author);
	ac->row.applied_at = time_now_us();
	ac->row.effective = c->effective_us;

	char detail[160];
	snprintf(detail, sizeof detail, "{\"charter\":\"%s\",\"version\":%lld}", c->id,
		 (long long)c->version);
	struct audit_entry a = {.at = ac->row.applied_at, .actor = author,
				.action = "charter.apply", .target = c->id,
				.before_sha256 = before[0] ? before : NULL,
				.after_sha256 = ac->row.sha256, .detail = detail};
	e = store_charter_apply(app->store, &ac->row, &a);
	if (e) {
		snprintf(msg, msgsz, "%s", e == ALLOT_E_CONFLICT ? app->store->errmsg
								 : "the store could not save the charter");
		chist_entry_free(ac);
		return e;
	}
	chist_install(app_charters(app), ac);
	log_info("charter %s version %lld applied by %s (sha256 %.16s…)", c->id,
		 (long long)c->version, author, ac->row.sha256);
	/* Its webhook event; one lost to a crash here is sent at the next
	 * start (webhooks_open). */
	webhooks_charter_applied(app, ac);
	/* Its bundled models load (and those it dropped unload) now; a
	 * scheduled one's at its `effective` (gate/engines.h). */
	gate_models_sync(app->gate);
	return ALLOT_OK;
}

/* Loads one stored version and installs it (the newest last becomes active). */
static allot_err app_charter_load_version(struct app *app, int64_t version, char *msg,
					  size_t msgsz)
{
	struct charter_row row;
	allot_err e = store_charter_get(app->store, version, &row);
	if (e) {
		snprintf(msg, msgsz, "cannot read the stored charter: %s", app->store->errmsg);
		return e;
	}
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *c = NULL;
	char name[64];
	snprintf(name, sizeof name, "stored-charter-v%lld", (long long)row.version);
	e = charter_parse(name, row.text, row.text_len, &c, &errs);
	if (e) {
		/* A stored charter that no longer parses (a stricter binary):
		 * refuse to guess, say exactly what is wrong. */
		snprintf(msg, msgsz, "stored charter version %lld no longer validates: %s",
			 (long long)row.version,
			 errs.nerrors ? errs.errors[0].text : "out of memory");
		charter_errors_release(&errs);
		free(row.text);
		return ALLOT_E_STORE;
	}
	charter_errors_release(&errs);
	struct active_charter *ac = calloc(1, sizeof *ac);
	if (!ac) {
		charter_free(c);
		free(row.text);
		return ALLOT_E_NOMEM;
	}
	ac->c = c;
	ac->row = row;
	chist_install(app_charters(app), ac);
	return ALLOT_OK;
}

/* Applies cfg.charter if it is newer than the active charter. */
static allot_err app_charter_from_file(struct app *app, bool startup, char *msg, size_t msgsz)
{
	size_t len;
	char *text = NULL;
	allot_err e = file_read_all(app->cfg.charter, CHARTER_MAX_BYTES, &text, &len, msg, msgsz);
	if (e)
		return e;
	struct active_charter *cur = app_charter_latest(app);
	char h[65];
	sha256_hex(text, len, h);
	bool same = cur && strcmp(cur->row.sha256, h) == 0;
	app_charter_put(app, cur);
	if (same) {
		free(text);
		return ALLOT_OK;
	}
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	char author[STORE_ID_MAX];
	snprintf(author, sizeof author, "file:%.58s", app->cfg.charter);
	e = app_charter_apply(app, app->cfg.charter, text, len, author, &errs, msg, msgsz);
	if (e) {
		for (size_t i = 0; i < errs.nerrors; i++)
			log_warnx("%s", errs.errors[i].text);
		struct active_charter *kept = app_charter_latest(app);
		if (e == ALLOT_E_CONFLICT && kept && startup) {
			/* The stored charter is newer (applied over HTTP): keep it. */
			log_warnx("charter file %s not applied: the stored charter version %lld "
				  "is kept", app->cfg.charter, (long long)kept->row.version);
			e = ALLOT_OK;
		}
		app_charter_put(app, kept);
	}
	charter_errors_release(&errs);
	free(text);
	return e;
}

/* The stored versions' numbers (store_charter_history's fn). */
struct versions {
	int64_t *v;
	size_t n, cap;
	bool oom;
};

static void version_add(void *ctx, const struct charter_row *r)
{
	struct versions *vs = ctx;
	if (vs->n == vs->cap) {
		size_t cap = vs->cap ? vs->cap * 2 : 8;
		int64_t *v = realloc(vs->v, cap * sizeof *v);
		if (!v) {
			vs->oom = true;
			return;
		}
		vs->v = v;
		vs->cap = cap;
	}
	vs->v[vs->n++] = r->version;
}

/* Loads every stored version, oldest first, so the newest ends up active. */
static allot_err app_charter_load_stored(struct app *app, char *msg, size_t msgsz)
{
	struct versions vs = {0};
	allot_err e = store_charter_history(app->store, version_add, &vs);
	if (!e && vs.oom)
		e = ALLOT_E_NOMEM;
	if (e) {
		snprintf(msg, msgsz, "cannot read the charter history: %s",
			 e == ALLOT_E_NOMEM ? "out of memory" : app->store->errmsg);
		free(vs.v);
		return e;
	}
	for (size_t i = 0; i < vs.n && !e; i++)
		e = app_charter_load_version(app, vs.v[i], msg, msgsz);
	free(vs.v);
	return e;
}

allot_err app_charter_follow(struct app *app, char *msg, size_t msgsz)
{
	struct versions vs = {0};
	msg[0] = '\0';
	pthread_mutex_lock(&app_charter_mu);
	allot_err e = store_charter_history(app->store, version_add, &vs);
	if (!e && vs.oom)
		e = ALLOT_E_NOMEM;
	struct active_charter *cur = app_charter_latest(app);
	int64_t have = cur ? cur->row.version : 0;
	app_charter_put(app, cur);
	bool loaded = false;
	/* oldest first (store_charter_history), so the newest ends up latest */
	for (size_t i = 0; i < vs.n && !e; i++) {
		if (vs.v[i] <= have)
			continue;
		if ((e = app_charter_load_version(app, vs.v[i], msg, msgsz)))
			break;
		have = vs.v[i];
		loaded = true;
		log_info("charter version %lld loaded from the database (applied through another "
			 "node)", (long long)have);
	}
	pthread_mutex_unlock(&app_charter_mu);
	if (e && !msg[0])
		snprintf(msg, msgsz, "%s",
			 e == ALLOT_E_NOMEM ? "out of memory" : app->store->errmsg);
	free(vs.v);
	/* Its bundled models load now, as after an apply on this node. */
	if (loaded && app->gate)
		gate_models_sync(app->gate);
	return e;
}

/* This node's stable name on a shared database (its leases' epochs):
 * ALLOT_NODE, else "<host> <listen address>" (docs/POSTGRES.md). */
static const char *node_name(const struct app *app, char *buf, size_t bufsz)
{
	const char *env = getenv("ALLOT_NODE");
	if (env && *env) {
		snprintf(buf, bufsz, "%s", env);
		return buf;
	}
	char host[256] = "";
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "?");
	host[sizeof host - 1] = '\0';
	snprintf(buf, bufsz, "%.100s %.100s", host, app->cfg.listen ? app->cfg.listen : "");
	return buf;
}

allot_err app_gate_open(struct app *app, struct gate **out, char *msg, size_t msgsz)
{
	char node[256];
	const struct gate_config gc = {.models = app->cfg.models, .keys = app->cfg.keys,
				       .deployment = app->cfg.deployment,
				       .threads = app->cfg.threads,
				       .cuda = app->cfg.cuda, .cuda_device = app->cfg.cuda_device,
				       .no_background = app->cfg.no_background,
				       .node = store_uri_is_pg(app->cfg.db)
						       ? node_name(app, node, sizeof node)
						       : NULL};
	return gate_open(app->ledger, &gc, out, msg, msgsz);
}

void app_charter_reload(struct app *app)
{
	char msg[256] = "";
	if (app_charter_follow(app, msg, sizeof msg))
		log_warnx("the charter versions in the database could not be loaded: %s", msg);
	log_info("reloading charter from %s", app->cfg.charter);
	if (app_charter_from_file(app, false, msg, sizeof msg))
		log_warnx("charter reload failed, the active charter is kept: %s", msg);
	/* Models too: one that failed to load (a file that was missing) is
	 * tried again, even when the charter file did not change. */
	gate_models_sync(app->gate);
}

allot_err app_open(struct app *app, char *msg, size_t msgsz)
{
	/* Bad input is refused before anything is created; then one owner
	 * per database (docs/OPERATIONS.md). */
	allot_err e = bootstrap_admin_env_check(msg, msgsz);
	if (e)
		return e;
	if (dblock_needed(app->cfg.db) &&
	    (e = dblock_acquire(app->cfg.db, "allotd", &app->dblock, msg, msgsz)))
		return e;
	if ((e = keyset_dir_prepare(app->cfg.keys, msg, msgsz)) ||
	    (e = bootstrap_db_precheck(&app->cfg, msg, msgsz)))
		return e;
	if ((e = store_open(app->cfg.db, &app->store, msg, msgsz)))
		return e;
	if ((e = ledger_open(app->store, &app->ledger)))
		return e;
	if (app->cfg.flush_ms_set)
		store_set_flush_ms(app->store, app->cfg.flush_ms);
	if ((e = bootstrap_deployment(app, msg, msgsz)))
		return e;
	/* The admin key's leaf before the log key exists: a first start that
	 * fails here leaves no key beside an empty log. */
	if ((e = bootstrap_admin(app, msg, msgsz))) {
		if (!msg[0])
			snprintf(msg, msgsz, "cannot create the admin key: %s", app->store->errmsg);
		return e;
	}
	/* The transparency log's signing key (docs/TLOG.md). */
	if ((e = ledgerlog_open(app->cfg.keys, app->cfg.deployment, app->store, &app->log, msg,
				msgsz)))
		return e;
	if ((e = app_charter_load_stored(app, msg, msgsz)))
		return e;
	if ((e = app_charter_from_file(app, true, msg, msgsz)))
		return e;
	if ((e = webhooks_open(app, &app->webhooks, msg, msgsz)))
		return e;
	return ALLOT_OK;
}

void app_close(struct app *app)
{
	webhooks_close(app->webhooks);
	app->webhooks = NULL;
	ledgerlog_free(app->log);
	app->log = NULL;
	/* The charter history, reservations and group commit, then their store. */
	ledger_free(app->ledger);
	app->ledger = NULL;
	store_close(app->store);
	app->store = NULL;
	/* Last: the database is closed before another process may own it. */
	dblock_release(app->dblock);
	app->dblock = NULL;
}
