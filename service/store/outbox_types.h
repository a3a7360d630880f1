/* outbox_types.h — a webhook event waiting in the durable outbox
 * (migrations/sqlite/0014_webhook_outbox.sql, docs/WEBHOOKS.md). */
#ifndef ALLOT_STORE_OUTBOX_TYPES_H
#define ALLOT_STORE_OUTBOX_TYPES_H

#include <stdint.h>

#define OUTBOX_ID_MAX 40     /* "msg_" + 32 hex digits */
#define OUTBOX_TYPE_MAX 24
#define OUTBOX_URL_MAX 2049

struct outbox_event {
	int64_t seq;             /* the row's number (set by the store) */
	char id[OUTBOX_ID_MAX];  /* the webhook-id: unique, the same on every attempt */
	char url[OUTBOX_URL_MAX];
	char type[OUTBOX_TYPE_MAX]; /* alert | overage | charter | settlement_failed */
	const char *dedupe;      /* put: once per (dedupe, url) */
	char *body;              /* the JSON body (put: borrowed; due: from malloc) */
	int64_t created_us;
	int64_t next_us;         /* the next attempt */
	int attempts;            /* attempts made so far */
};

#endif
