/* webhooks.h — delivery of webhook events from the durable outbox
 * (SPEC section 4, docs/WEBHOOKS.md).
 *
 * Events are written to the store's outbox by ledger/events.c, in the
 * transaction of what causes them.  One worker thread sends every due
 * event with libcurl as a Standard Webhooks message: headers webhook-id
 * (the event's id, the same on every attempt), webhook-timestamp (Unix
 * seconds of the attempt) and webhook-signature "v1a,<base64 Ed25519
 * signature of id.timestamp.body>", with the key in keys_dir/webhook.key
 * (created on first start; public half at GET /v1/webhooks/key).  A 2xx
 * answer marks it delivered; anything else is retried with exponential
 * backoff, forever (at least once; a receiver deduplicates by webhook-id).
 * The same worker deletes delivered events older than
 * --webhook-retention-days, at start and every WEBHOOKS_PRUNE_MS.
 */
#ifndef ALLOT_DAEMON_WEBHOOKS_H
#define ALLOT_DAEMON_WEBHOOKS_H

#include "daemon/app.h"

#define WEBHOOKS_KEY_FILE "webhook.key"
/* The first retry waits this long, each next one twice as long, up to MAX. */
#define WEBHOOKS_BACKOFF_MS_DEFAULT 5000
#define WEBHOOKS_BACKOFF_MS_MAX (6LL * 3600 * 1000)
/* How often the outbox is read for due events. */
#define WEBHOOKS_POLL_MS 250
/* How often delivered events past the retention are deleted, and how many
 * per transaction. */
#define WEBHOOKS_PRUNE_MS (60LL * 1000)
#define WEBHOOKS_PRUNE_BATCH 1000
/* --webhook-retention-days: the default, and the most accepted. */
#define WEBHOOKS_RETENTION_DAYS_DEFAULT 7
#define WEBHOOKS_RETENTION_DAYS_MAX 3650
/* Per attempt. */
#define WEBHOOKS_TIMEOUT_S 10
#define WEBHOOKS_CONNECT_TIMEOUT_S 5

struct webhooks;

/* Reads (or creates, mode 0600) the key, emits the `charter` event of the
 * newest applied charter if it is not in the outbox yet (an apply whose
 * event was lost to a crash), and starts the worker.  backoff_ms <= 0:
 * the default (the environment's ALLOT_WEBHOOK_BACKOFF_MS, for tests). */
allot_err webhooks_open(struct app *app, struct webhooks **out, char *msg, size_t msgsz);
void webhooks_close(struct webhooks *w);

/* "ed25519:BASE64" of the public key. */
const char *webhooks_pub(const struct webhooks *w);

/* The `charter` event of an applied charter row (ALLOT_OK when no webhook
 * of it subscribes). */
allot_err webhooks_charter_applied(struct app *app, const struct active_charter *ac);

#endif
