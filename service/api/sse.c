/* sse.c — server-sent event bodies fed by a worker thread (api/sse.h). */
#include "api/sse.h"

#include <stdlib.h>
#include <string.h>

static void sse_unref(struct sse_stream *s)
{
	pthread_mutex_lock(&s->mu);
	bool last = --s->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (!last)
		return;
	buf_release(&s->pending);
	if (s->owner_free)
		s->owner_free(s->owner);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

struct sse_stream *sse_new(void *owner, void (*owner_free)(void *owner))
{
	struct sse_stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->refs = 2; /* the HTTP response and the worker */
	s->owner = owner;
	s->owner_free = owner_free;
	return s;
}

void sse_discard(struct sse_stream *s)
{
	s->refs = 1;
	sse_unref(s);
}

void sse_append(struct buf *b, const char *event, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return;
	if (event) {
		buf_puts(b, "event: ");
		buf_puts(b, event);
		buf_puts(b, "\n");
	}
	buf_puts(b, "data: ");
	buf_puts(b, s);
	buf_puts(b, "\n\n");
	free(s);
}

void sse_wake_locked(struct sse_stream *s)
{
	pthread_cond_signal(&s->cv);
}

void sse_finish_locked(struct sse_stream *s)
{
	s->done = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	sse_unref(s);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct sse_stream *s = cls;
	(void)pos;
	pthread_mutex_lock(&s->mu);
	while (s->sent == s->pending.len && !s->done)
		pthread_cond_wait(&s->cv, &s->mu);
	size_t avail = s->pending.len - s->sent;
	ssize_t r;
	if (avail == 0) {
		r = HTTP_STREAM_END;
	} else {
		size_t n = avail < max ? avail : max;
		memcpy(out, s->pending.data + s->sent, n);
		s->sent += n;
		if (s->sent == s->pending.len) {
			s->sent = 0;
			buf_reset(&s->pending);
		}
		r = (ssize_t)n;
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

static void sse_cleanup(void *cls)
{
	struct sse_stream *s = cls;
	pthread_mutex_lock(&s->mu);
	s->gone = true; /* the worker now stops; it settles what ran */
	pthread_mutex_unlock(&s->mu);
	sse_unref(s);
}

void sse_respond(struct http_resp *resp, struct sse_stream *s)
{
	resp->status = 200;
	resp->content_type = "text/event-stream";
	http_add_header(resp, "X-Accel-Buffering", "no");
	resp->stream = sse_read;
	resp->stream_cls = s;
	resp->stream_cleanup = sse_cleanup;
}
