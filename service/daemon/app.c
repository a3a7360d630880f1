/* app.c — daemon start-up (daemon/bootstrap.c: the checks) and the active charter. */
#include "daemon/app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* The version in force at t (charter_lock held): the newest whose
 * `effective` is <= t.  `effective` never moves back from one version to
 * the next (charter_check_successor), so the newest such is found first
 * from the end, and in the usual case (nothing scheduled) at once. */
static struct active_charter *app_charter_find(struct app *app, int64_t t)
{
	for (size_t i = app->nversions; i-- > 0;)
		if (app->versions[i]->c->effective_us <= t)
			return app->versions[i];
	/* Not listed (out of memory at install): the newest applied one, if
	 * it is in force. */
	if (app->active && app->active->c->effective_us <= t)
		return app->active;
	return NULL;
}

struct active_charter *app_charter_in_force(struct app *app, int64_t t)
{
	pthread_mutex_lock(&app->charter_lock);
	struct active_charter *ac = app_charter_find(app, t);
	if (ac)
		ac->refs++;
	pthread_mutex_unlock(&app->charter_lock);
	return ac;
}

struct active_charter *app_charter_get(struct app *app)
{
	return app_charter_in_force(app, time_now_us());
}

struct active_charter *app_charter_latest(struct app *app)
{
	pthread_mutex_lock(&app->charter_lock);
	struct active_charter *ac = app->active;
	if (ac)
		ac->refs++;
	pthread_mutex_unlock(&app->charter_lock);
	return ac;
}

struct active_charter *app_charter_next(struct app *app, int64_t version)
{
	struct active_charter *ac = NULL;
	pthread_mutex_lock(&app->charter_lock);
	for (size_t i = 0; i < app->nversions && !ac; i++)
		if (app->versions[i]->row.version > version)
			ac = app->versions[i];
	if (ac)
		ac->refs++;
	pthread_mutex_unlock(&app->charter_lock);
	return ac;
}

static void active_free(struct active_charter *ac)
{
	charter_free(ac->c);
	free(ac->row.text);
	free(ac);
}

void app_charter_put(struct app *app, struct active_charter *ac)
{
	if (!ac)
		return;
	pthread_mutex_lock(&app->charter_lock);
	bool last = --ac->refs == 0;
	pthread_mutex_unlock(&app->charter_lock);
	if (last)
		active_free(ac);
}

static void app_charter_install(struct app *app, struct active_charter *ac)
{
	ac->refs = 2; /* the app's active reference and the version list's */
	pthread_mutex_lock(&app->charter_lock);
	/* Versions are installed oldest first and `effective` never moves back,
	 * so the first one's is where the ledger begins. */
	ac->c->ledger_start_us = app->nversions ? app->versions[0]->c->effective_us
						: ac->c->effective_us;
	struct active_charter **v = realloc(app->versions, (app->nversions + 1) * sizeof *v);
	if (v) {
		app->versions = v;
		app->versions[app->nversions++] = ac;
	} else {
		ac->refs = 1; /* not listed: pricing falls back to older versions */
	}
	struct active_charter *old = app->active;
	app->active = ac;
	pthread_mutex_unlock(&app->charter_lock);
	if (old)
		app_charter_put(app, old);
}

const struct active_charter *app_charter_at(struct app *app, int64_t t)
{
	pthread_mutex_lock(&app->charter_lock);
	const struct active_charter *best = app_charter_find(app, t);
	pthread_mutex_unlock(&app->charter_lock);
	return best;
}

const struct active_charter *app_charter_version(struct app *app, int64_t version)
{
	const struct active_charter *found = NULL;
	pthread_mutex_lock(&app->charter_lock);
	for (size_t i = 0; i < app->nversions && !found; i++)
		if (app->versions[i]->row.version == version)
			found = app->versions[i];
	pthread_mutex_unlock(&app->charter_lock);
	return found;
}

allot_err app_charter_apply(struct app *app, const char *filename, const char *text,
			    size_t len, const char *author, struct charter_errors *errs,
			    char *msg, size_t msgsz)
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
		active_free(ac);
		return e;
	}
	app_charter_install(app, ac);
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
	app_charter_install(app, ac);
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
		if (e == ALLOT_E_CONFLICT && app->active && startup) {
			/* The stored charter is newer (applied over HTTP): keep it. */
			log_warnx("charter file %s not applied: the stored charter version %lld "
				  "is kept", app->cfg.charter, (long long)app->active->row.version);
			e = ALLOT_OK;
		}
	}
	charter_errors_release(&errs);
	free(text);
	return e;
}

/* Loads every stored version, oldest first, so the newest ends up active. */
static allot_err app_charter_load_stored(struct app *app, char *msg, size_t msgsz)
{
	json_t *hist = NULL;
	allot_err e = store_charter_history(app->store, &hist);
	if (e) {
		snprintf(msg, msgsz, "cannot read the charter history: %s", app->store->errmsg);
		return e;
	}
	size_t i;
	json_t *row;
	json_array_foreach(hist, i, row) {
		e = app_charter_load_version(app, json_integer_value(json_object_get(row, "version")),
					     msg, msgsz);
		if (e)
			break;
	}
	json_decref(hist);
	return e;
}

void app_charter_reload(struct app *app)
{
	char msg[256] = "";
	log_info("reloading charter from %s", app->cfg.charter);
	if (app_charter_from_file(app, false, msg, sizeof msg))
		log_warnx("charter reload failed, the active charter is kept: %s", msg);
	/* Models too: one that failed to load (a file that was missing) is
	 * tried again, even when the charter file did not change. */
	gate_models_sync(app->gate);
}

allot_err app_open(struct app *app, char *msg, size_t msgsz)
{
	pthread_mutex_init(&app->charter_lock, NULL);
	if (!(app->reserve = reserve_new()) || !(app->ledger_group = ledger_group_new()))
		return ALLOT_E_NOMEM;
	/* Bad input is refused before anything is created; then one owner
	 * per database (docs/OPERATIONS.md). */
	allot_err e = bootstrap_admin_env_check(msg, msgsz);
	if (e)
		return e;
	if (dblock_applies(app->cfg.db) &&
	    (e = dblock_acquire(app->cfg.db, "allotd", &app->dblock, msg, msgsz)))
		return e;
	if ((e = keyset_dir_prepare(app->cfg.keys, msg, msgsz)) ||
	    (e = bootstrap_db_precheck(&app->cfg, msg, msgsz)))
		return e;
	if ((e = store_open(app->cfg.db, &app->store, msg, msgsz)))
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
	if (app->active)
		app_charter_put(app, app->active);
	app->active = NULL;
	for (size_t i = 0; i < app->nversions; i++)
		app_charter_put(app, app->versions[i]);
	free(app->versions);
	app->versions = NULL;
	app->nversions = 0;
	ledgerlog_free(app->log);
	app->log = NULL;
	store_close(app->store);
	app->store = NULL;
	reserve_free(app->reserve);
	app->reserve = NULL;
	ledger_group_free(app->ledger_group);
	app->ledger_group = NULL;
	pthread_mutex_destroy(&app->charter_lock);
	/* Last: the database is closed before another process may own it. */
	dblock_release(app->dblock);
	app->dblock = NULL;
}
