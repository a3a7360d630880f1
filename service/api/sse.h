/* sse.h — a server-sent event body fed by a worker thread (api/sse.c):
 * the worker appends events under the stream's lock, the HTTP response
 * reads them as they come.  Shared by the bundled engine's streams
 * (api/gen.c) and the remote ones (api/proxy.c).
 *
 * Lifetime: sse_new gives two references, the HTTP response's (dropped by
 * its cleanup, when the client went away too) and the worker's (dropped by
 * sse_finish_locked).  `gone` tells the worker the client left. */
#ifndef ALLOT_API_SSE_H
#define ALLOT_API_SSE_H

#include <pthread.h>
#include <stdbool.h>

#include <jansson.h>

#include "common/buf.h"
#include "http/server.h"

struct sse_stream {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct buf pending;        /* bytes not yet read by the response */
	size_t sent;
	bool done, gone;
	int refs;
	void *owner;               /* the worker's state, freed with the stream */
	void (*owner_free)(void *owner);
};

/* NULL on out of memory. */
struct sse_stream *sse_new(void *owner, void (*owner_free)(void *owner));
/* Frees a stream whose worker never started (both references). */
void sse_discard(struct sse_stream *s);
/* "data: <j>\n\n" (steals j); with event: "event: <event>\n" first. */
void sse_append(struct buf *b, const char *event, json_t *j);
/* Wakes the reader after appending (s->mu held). */
void sse_wake_locked(struct sse_stream *s);
/* The worker's last words (s->mu held): the stream ends once read; the
 * worker's reference is dropped and the lock released. */
void sse_finish_locked(struct sse_stream *s);
/* Makes resp a 200 text/event-stream reading s. */
void sse_respond(struct http_resp *resp, struct sse_stream *s);

#endif
