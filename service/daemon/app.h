/* app.h — the running daemon's shared state: store, active charter, config.
 *
 * The active charter is reference-counted: a request takes a reference with
 * app_charter_get() and drops it with app_charter_put(), so a charter applied
 * mid-request never changes what that request sees and is freed only when the
 * last request using the old one finishes.
 */
#ifndef ALLOT_DAEMON_APP_H
#define ALLOT_DAEMON_APP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "charter/charter.h"
#include "common/err.h"
#include "ledger/chist.h"
#include "store/store.h"

struct app_config {
	const char *listen;      /* --listen, default 127.0.0.1:8080 */
	const char *db;          /* --db, default var/allot.db */
	const char *charter;     /* --charter, default policies/default.yaml */
	const char *keys;        /* --keys, default var/keys */
	const char *models;      /* --models, default models */
	const char *deployment;  /* --deployment, default "local" */
	int threads;             /* --threads, default: online CPUs */
	/* --device cpu|cuda[:N]: the engines on CUDA device N, else the CPU
	 * (docs/CUDA.md); checked at parse time: a build without CUDA or a
	 * machine without a CUDA device is refused with one line */
	bool cuda;
	int cuda_device;
	/* --flush-ms: the longest a gate settlement's commit waits to be on
	 * disk (docs/LEDGER.md, "Durability"); 0: every commit fsyncs.  Unset:
	 * the store's default (50 ms). */
	int flush_ms;
	bool flush_ms_set;
	bool check;              /* --check */
	/* --init (ALLOT_INIT=1): a new deployment is meant.  Allowed only on an
	 * empty database; retires the keys of an earlier deployment found in
	 * --keys (docs/OPERATIONS.md, "A deployment"). */
	bool init;
	bool verbose;
	/* --cors-origins: browser origins allowed to call the API
	 * ("https://a.example,https://b.example", or "*"); NULL: none
	 * (docs/GATE.md, "CORS"). */
	const char *cors_origins;
	/* --backup-dir: the only directory POST /v1/store/backup may write into
	 * (after resolving ".." and symbolic links); NULL: the database's
	 * directory (docs/OPERATIONS.md, "Backup and restore"). */
	const char *backup_dir;
	/* --webhook-retention-days (default 7): delivered webhook events older
	 * than this are deleted from the outbox (docs/WEBHOOKS.md, "Retention"). */
	int webhook_retention_days;
	/* Not a flag: unit tests (their fake clocks) start no model loader
	 * (models load at gate_open and when a charter is applied, on the
	 * caller's thread) and no webhook worker (events stay in the outbox). */
	bool no_background;
};

struct dblock;
struct gate;
struct ledger;
struct ledgerlog;
struct webhooks;

struct app {
	struct app_config cfg;
	struct dblock *dblock;         /* held from app_open to app_close (daemon/dblock.h) */
	struct store *store;
	/* The charter history, reservations and group commit (ledger/ledger.h);
	 * created by app_open once the store is open. */
	struct ledger *ledger;
	struct gate *gate;             /* tokens, engines, admission (gate/gate.h) */
	struct ledgerlog *log;         /* log key and checkpoints (ledger/ledgerlog.h) */
	struct webhooks *webhooks;     /* the outbox's delivery (daemon/webhooks.h) */
};

/* Parses argv and ALLOT_* environment into cfg.  Returns 0, 1 on a usage
 * error (message printed), 2 when --help was printed. */
int app_config_parse(struct app_config *cfg, int argc, char **argv);

/* Takes the database's lock, checks the keys directory, opens the store
 * (refusing an empty database beside an earlier deployment's keys unless
 * cfg.init), ensures the admin key (revoking earlier ALLOT_ADMIN_KEY keys),
 * loads the active charter (applying cfg.charter when its version is newer
 * than the stored one).  On failure msg says why; call app_close. */
allot_err app_open(struct app *app, char *msg, size_t msgsz);
void app_close(struct app *app);

/* The ledger's charter history (ledger/chist.h: what each of these means);
 * NULL before app_open has opened the store, and then these return NULL.
 *
 * The charter in force now (SPEC section 2, "Effective dates"); a
 * reference, dropped with app_charter_put. */
struct chist *app_charters(struct app *app);
struct active_charter *app_charter_get(struct app *app);
/* The same at instant t. */
struct active_charter *app_charter_in_force(struct app *app, int64_t t);
/* The newest applied version, in force or scheduled (what a new charter
 * must succeed); a reference. */
struct active_charter *app_charter_latest(struct app *app);
/* The first applied version newer than `version` (a reference), or NULL. */
struct active_charter *app_charter_next(struct app *app, int64_t version);
void app_charter_put(struct app *app, struct active_charter *ac);

/* The charter in force at instant t, without a reference: valid until
 * app_close. */
const struct active_charter *app_charter_at(struct app *app, int64_t t);
/* The applied version numbered `version`, or NULL.  Valid until app_close. */
const struct active_charter *app_charter_version(struct app *app, int64_t version);

/* Parses, validates against the active charter, stores with its audit entry
 * and activates text.  On validation failure errs holds every error and the
 * active charter is untouched.  author: the key id (or "file:PATH"). */
allot_err app_charter_apply(struct app *app, const char *filename, const char *text,
			    size_t len, const char *author, struct charter_errors *errs,
			    char *msg, size_t msgsz);
/* Opens the gate over the app's ledger with the app's configuration
 * (gate_open); *out is what app->gate should be set to. */
allot_err app_gate_open(struct app *app, struct gate **out, char *msg, size_t msgsz);

/* Loads the stored charter versions newer than the latest one loaded:
 * those another node on the same database applied (docs/DEPLOY.md,
 * "Charters on several nodes"); their models are synced.  Logs each version
 * it loads; on an error (msg says why) the versions loaded are kept.  Called
 * by SIGHUP and by the node sync (daemon/nodesync.h). */
allot_err app_charter_follow(struct app *app, char *msg, size_t msgsz);

/* SIGHUP: loads the versions another node applied to the same database,
 * then re-reads cfg.charter and applies it if its version is newer. */
void app_charter_reload(struct app *app);

#endif
