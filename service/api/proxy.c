/* proxy.c — gated requests to models with `url:` (api/proxy.h). */
#include "api/proxy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/gate_int.h"
#include "api/sse.h"
#include "common/log.h"
#include "gate/gate.h"
#include "gate/upstream.h"

/* A streamed upstream call: the worker's state, owned by its sse_stream. */
struct proxy_call {
	struct app *app;
	struct gate_ticket t;
	json_t *body;
	const char *path;
	char model[STORE_ID_MAX];  /* the client's id */
	bool include_usage;
	struct buf line;           /* a partial SSE line from the upstream */
	struct sse_stream *s;
};

static void call_free(void *p)
{
	struct proxy_call *c = p;
	json_decref(c->body);
	buf_release(&c->line);
	free(c);
}

/* Settles what an upstream reply said it used; without usage, the
 * reservation (never zero) and an error in the log. */
static void remote_settle(struct app *app, struct gate_ticket *t, const struct upstream_result *r,
			  bool replied)
{
	int64_t charge = 0;
	if (r->has_usage) {
		gate_settle(app->gate, t, r->prompt_tokens, r->completion_tokens, &charge);
	} else if (replied) {
		log_warnx("gate: upstream %s replied without usage%s%s; charging the reservation "
			  "(%d prompt, %d completion tokens)", t->model->url, r->error[0] ? ": " : "",
			  r->error, t->prompt_tokens, t->max_tokens);
		gate_settle(app->gate, t, t->prompt_tokens, t->max_tokens, &charge);
	} else {
		gate_cancel(app->gate, t);
	}
}

/* One SSE line of the upstream's as the client gets it: "model" is the
 * client's id; the usage the gate asked for is dropped unless the client
 * asked for it too (a chunk of usage alone goes entirely). */
static void rewrite_line(struct proxy_call *c, const char *line, size_t len, struct buf *out)
{
	json_t *j = NULL;
	if (len > 6 && memcmp(line, "data: {", 7) == 0)
		j = json_loadb(line + 6, len - 6, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		buf_append(out, line, len);
		buf_putc(out, '\n');
		return;
	}
	json_t *choices = json_object_get(j, "choices");
	if (!c->include_usage && json_object_get(j, "usage")) {
		if (json_is_array(choices) && json_array_size(choices) == 0) {
			json_decref(j);
			return;
		}
		json_object_del(j, "usage");
	}
	gapi_set_model(j, c->model);
	size_t before = out->len;
	sse_append(out, NULL, j); /* "data: ...\n\n", but the upstream's blank */
	if (out->len > before)    /* line that follows is passed on too */
		out->len--;
}

static int stream_data(void *ctx, const char *data, size_t len)
{
	struct proxy_call *c = ctx;
	struct sse_stream *s = c->s;
	pthread_mutex_lock(&s->mu);
	bool gone = s->gone;
	if (!gone) {
		buf_append(&c->line, data, len);
		size_t start = 0;
		for (size_t i = 0; i < c->line.len; i++)
			if (c->line.data[i] == '\n') {
				rewrite_line(c, c->line.data + start, i - start, &s->pending);
				start = i + 1;
			}
		memmove(c->line.data, c->line.data + start, c->line.len - start);
		c->line.len -= start;
		sse_wake_locked(s);
	}
	pthread_mutex_unlock(&s->mu);
	return gone ? 1 : 0;
}

static void *stream_worker(void *arg)
{
	struct proxy_call *c = arg;
	struct upstream_result r;
	const struct charter_model *m = c->t.model;
	upstream_forward(m->url, c->path, m->provider_id, m->upstream_model ? m->upstream_model : m->id,
			 c->body, true, stream_data, c, &r);
	bool replied = r.status / 100 == 2;
	remote_settle(c->app, &c->t, &r, replied);
	pthread_mutex_lock(&c->s->mu);
	if (c->line.len)
		rewrite_line(c, c->line.data, c->line.len, &c->s->pending);
	if (!replied || r.error[0] || !r.has_usage) {
		char m2[300];
		snprintf(m2, sizeof m2, "upstream %s", r.error[0] ? r.error : !replied ? "refused the request" : "sent no usage");
		sse_append(&c->s->pending, NULL, http_error_json(ALLOT_E_UPSTREAM, NULL, NULL, m2));
		buf_puts(&c->s->pending, "data: [DONE]\n\n");
	}
	sse_finish_locked(c->s);
	return NULL;
}

static int collect(void *ctx, const char *data, size_t len)
{
	buf_append(ctx, data, len);
	return 0;
}

/* The prompt tokens of an embeddings reply (no completion_tokens). */
static void embeddings_usage(const struct buf *reply, struct upstream_result *r)
{
	json_t *j = json_loadb(reply->data, reply->len, 0, NULL);
	json_t *pt = json_object_get(json_object_get(j, "usage"), "prompt_tokens");
	if (json_is_integer(pt) && json_integer_value(pt) >= 0 && json_integer_value(pt) < (1 << 30)) {
		r->has_usage = true;
		r->prompt_tokens = (int)json_integer_value(pt);
		r->completion_tokens = 0;
	}
	json_decref(j);
}

static allot_err forward_sync(struct http_resp *resp, struct app *app, struct gate_ticket *t,
			      json_t *fwd, const struct oai_req *r, const char *path,
			      struct oai_err *er)
{
	const struct charter_model *m = t->model;
	struct upstream_result ur;
	struct buf reply = BUF_INIT;
	upstream_forward(m->url, path, m->provider_id, m->upstream_model ? m->upstream_model : m->id,
			 fwd, false, collect, &reply, &ur);
	json_decref(fwd);
	bool replied = ur.status / 100 == 2 && reply.len > 0;
	if (replied && !ur.has_usage && strcmp(path, "/embeddings") == 0)
		embeddings_usage(&reply, &ur);
	remote_settle(app, t, &ur, replied);
	if (!replied) {
		buf_release(&reply);
		return oai_fail(er, ALLOT_E_UPSTREAM, NULL, NULL, "upstream %s: %s", m->provider_id,
				ur.error[0] ? ur.error : "the provider refused the request");
	}
	gapi_remaining_header(resp, t->remaining, t->remaining_level);
	json_t *j = json_loadb(reply.data, reply.len, 0, NULL);
	if (json_is_object(j)) {
		gapi_set_model(j, r->model);
		buf_release(&reply);
		return http_json(resp, 200, j);
	}
	json_decref(j);
	resp->status = 200;
	resp->content_type = "application/json";
	buf_release(&resp->body);
	resp->body = reply;
	return ALLOT_OK;
}

allot_err proxy_forward(struct http_req *req, struct http_resp *resp, const json_t *body,
			const struct oai_req *r, const char *path, struct oai_err *er)
{
	struct app *app = api_app(req);
	bool embed = strcmp(path, "/embeddings") == 0;
	if (oai_nseqs(r) > 1)
		return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", r->n > 1 ? "n" : "prompt",
				"several prompts or choices per request are not supported for "
				"remote models; send one request each");
	struct gate_ticket t;
	int retry = 0;
	char msg[512] = "";
	allot_err e = gate_admit(app->gate, gapi_claims(req), r->model, oai_prompt_bound(r),
				 embed ? 1 : r->max_tokens, &t, &retry, msg, sizeof msg);
	if (e) {
		gapi_refusal_headers(resp, e, retry);
		return oai_fail(er, e, NULL, e == ALLOT_E_INVALID ? "max_tokens" : NULL, "%s", msg);
	}
	/* The upstream must not generate past what was reserved. */
	json_t *fwd = json_copy((json_t *)body); /* shallow: only top-level keys change */
	if (!embed)
		json_object_set_new(fwd, r->kind == OAI_CHAT && json_object_get(body, "max_completion_tokens")
					 ? "max_completion_tokens" : "max_tokens", json_integer(t.max_tokens));
	if (!r->stream)
		return forward_sync(resp, app, &t, fwd, r, path, er);
	struct proxy_call *c = calloc(1, sizeof *c);
	if (c && !(c->s = sse_new(c, call_free))) {
		free(c);
		c = NULL;
	}
	if (!c) {
		gate_cancel(app->gate, &t);
		json_decref(fwd);
		return oai_fail(er, ALLOT_E_NOMEM, NULL, NULL, "out of memory");
	}
	c->app = app;
	c->t = t;
	c->body = fwd;
	c->path = path;
	c->include_usage = r->include_usage;
	snprintf(c->model, sizeof c->model, "%s", r->model);
	pthread_t th;
	if (pthread_create(&th, NULL, stream_worker, c) != 0) {
		gate_cancel(app->gate, &c->t);
		sse_discard(c->s);
		return oai_fail(er, ALLOT_E_INTERNAL, NULL, NULL, "could not start the upstream call");
	}
	pthread_detach(th);
	gapi_remaining_header(resp, t.remaining, t.remaining_level);
	sse_respond(resp, c->s);
	return ALLOT_OK;
}
