/* gate.c — the OpenAI-compatible gate: GET /v1/models, POST /v1/completions,
 * POST /v1/chat/completions (stream or not), GET /v1/quotas/me,
 * POST /v1/tokenize, POST /v1/detokenize.  Admission and settlement are in
 * gate/gate.c; this file speaks OpenAI's JSON and server-sent events. */
#include "api/api.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "gate/gate.h"
#include "gate/upstream.h"
#include "infer/engine.h"

/* Longest prompt text accepted (bytes); the context length bounds tokens. */
#define GATE_MAX_PROMPT_BYTES (1024 * 1024)
/* Messages per chat request. */
#define GATE_MAX_MESSAGES 256

static struct token_claims *member_claims(struct http_req *req)
{
	/* The principal of a member carries its claims right after it. */
	return (struct token_claims *)(req->who + 1);
}

static void remaining_header(struct http_resp *resp, int64_t remaining, const char *level)
{
	char b[MONEY_FMT_MAX];
	http_add_header(resp, "X-Allot-Remaining", money_format(remaining > 0 ? remaining : 0, b));
	http_add_header(resp, "X-Allot-Remaining-Level", level);
}

/* The member's remaining now, for answers that reserved nothing. */
static void member_remaining_header(struct http_req *req, struct http_resp *resp)
{
	char lvl[16];
	int64_t rem = gate_remaining(api_app(req), member_claims(req), lvl);
	remaining_header(resp, rem, lvl);
}

/* ---- request parsing -------------------------------------------------------- */

struct gen_req {
	const char *model;
	bool chat, stream, include_usage;
	int max_tokens;
	double temperature, top_p, min_p;
	int64_t top_k, seed;
	const char *stop[INFER_MAX_STOP];
	size_t nstop;
	int32_t *ids;
	size_t nids;
};

static allot_err parse_common(const json_t *b, struct gen_req *g, char *msg, size_t msgsz)
{
	allot_err e;
	int64_t mt = -1, n = 1;
	double pen = 0;
	g->temperature = 1.0;
	g->top_p = 1.0;
	g->seed = -1;
	if ((e = json_get_str(b, "model", true, &g->model, msg, msgsz)) ||
	    (e = json_get_int(b, "max_tokens", false, 1, 1 << 20, &mt, msg, msgsz)) ||
	    (e = json_get_num(b, "temperature", false, 0, 2, &g->temperature, msg, msgsz)) ||
	    (e = json_get_num(b, "top_p", false, 0, 1, &g->top_p, msg, msgsz)) ||
	    (e = json_get_num(b, "min_p", false, 0, 1, &g->min_p, msg, msgsz)) ||
	    (e = json_get_int(b, "top_k", false, 0, 1 << 20, &g->top_k, msg, msgsz)) ||
	    (e = json_get_int(b, "seed", false, INT64_MIN, INT64_MAX, &g->seed, msg, msgsz)) ||
	    (e = json_get_bool(b, "stream", false, &g->stream, msg, msgsz)) ||
	    (e = json_get_int(b, "n", false, 1, 1, &n, msg, msgsz)) ||
	    (e = json_get_num(b, "presence_penalty", false, 0, 0, &pen, msg, msgsz)) ||
	    (e = json_get_num(b, "frequency_penalty", false, 0, 0, &pen, msg, msgsz)))
		return e;
	if (mt < 0 && (e = json_get_int(b, "max_completion_tokens", false, 1, 1 << 20, &mt, msg, msgsz)))
		return e;
	g->max_tokens = (int)mt;
	const char *user = NULL;
	if ((e = json_get_str(b, "user", false, &user, msg, msgsz)))
		return e;
	json_t *so = json_object_get(b, "stream_options");
	if (so && !json_is_null(so)) {
		static const char *const sof[] = {"include_usage", NULL};
		if (!json_is_object(so) || json_only_fields(so, sof, msg, msgsz)) {
			snprintf(msg, msgsz, "stream_options may only hold include_usage");
			return ALLOT_E_INVALID;
		}
		/* Checked and accepted for OpenAI clients; the final usage chunk is
		 * sent either way (SPEC section 7). */
		if ((e = json_get_bool(so, "include_usage", false, &g->include_usage, msg, msgsz)))
			return e;
	}
	/* "stop": a string or an array of them, each checked the same way here,
	 * before anything is admitted or booked. */
	json_t *stop = json_object_get(b, "stop");
	if (json_is_string(stop) || json_is_array(stop)) {
		size_t i, nstop = json_is_string(stop) ? 1 : json_array_size(stop);
		if (nstop > INFER_MAX_STOP) {
			snprintf(msg, msgsz, "at most %d stop sequences", INFER_MAX_STOP);
			return ALLOT_E_INVALID;
		}
		for (i = 0; i < nstop; i++) {
			json_t *s = json_is_string(stop) ? stop : json_array_get(stop, i);
			if (!json_is_string(s) || json_string_length(s) == 0 ||
			    json_string_length(s) > INFER_MAX_STOP_LEN) {
				snprintf(msg, msgsz, "stop sequences must be non-empty strings of at most %d bytes",
					 INFER_MAX_STOP_LEN);
				return ALLOT_E_INVALID;
			}
			g->stop[g->nstop++] = json_string_value(s);
		}
	} else if (stop && !json_is_null(stop)) {
		snprintf(msg, msgsz, "\"stop\" must be a string or an array of strings");
		return ALLOT_E_INVALID;
	}
	return ALLOT_OK;
}

/* Checks the prompt or messages and tokenizes them (completions) or renders
 * the chat (chat) with eng; eng NULL (a remote model): checks only. */
static allot_err parse_prompt(struct infer_engine *eng, const json_t *b, struct gen_req *g,
			      char *msg, size_t msgsz)
{
	allot_err e;
	if (!g->chat) {
		json_t *p = json_object_get(b, "prompt");
		if (json_is_array(p) && json_array_size(p) == 1)
			p = json_array_get(p, 0);
		if (!json_is_string(p)) {
			snprintf(msg, msgsz, "\"prompt\" must be a string");
			return ALLOT_E_INVALID;
		}
		if (json_string_length(p) > GATE_MAX_PROMPT_BYTES) {
			snprintf(msg, msgsz, "prompt longer than %d bytes", GATE_MAX_PROMPT_BYTES);
			return ALLOT_E_TOO_LARGE;
		}
		if (!eng)
			return ALLOT_OK;
		e = infer_tokenize(eng, json_string_value(p), json_string_length(p), true, false,
				   &g->ids, &g->nids);
	} else {
		json_t *ms = json_object_get(b, "messages");
		size_t n = json_array_size(ms), total = 0;
		if (!json_is_array(ms) || n == 0 || n > GATE_MAX_MESSAGES) {
			snprintf(msg, msgsz, "\"messages\" must be an array of 1..%d messages", GATE_MAX_MESSAGES);
			return ALLOT_E_INVALID;
		}
		struct chat_msg cm[GATE_MAX_MESSAGES];
		for (size_t i = 0; i < n; i++) {
			static const char *const mf[] = {"role", "content", "name", NULL};
			json_t *m = json_array_get(ms, i);
			const char *role = NULL, *content = NULL;
			if (!json_is_object(m) || json_only_fields(m, mf, msg, msgsz) ||
			    json_get_str(m, "role", true, &role, msg, msgsz) ||
			    json_get_str(m, "content", true, &content, msg, msgsz)) {
				char inner[200];
				snprintf(inner, sizeof inner, "%.190s", msg);
				snprintf(msg, msgsz, "messages[%zu]: %s", i,
					 json_is_object(m) ? inner : "must be an object with role and content");
				return ALLOT_E_INVALID;
			}
			if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) {
				snprintf(msg, msgsz, "messages[%zu]: role must be system, user or assistant", i);
				return ALLOT_E_INVALID;
			}
			total += strlen(content);
			cm[i] = (struct chat_msg){role, content};
		}
		if (total > GATE_MAX_PROMPT_BYTES) {
			snprintf(msg, msgsz, "messages longer than %d bytes", GATE_MAX_PROMPT_BYTES);
			return ALLOT_E_TOO_LARGE;
		}
		if (!eng)
			return ALLOT_OK;
		e = infer_chat(eng, cm, n, NULL, &g->ids, &g->nids);
	}
	if (e == ALLOT_E_UNSUPPORTED) {
		/* infer_chat: the model's chat template is none the engine can
		 * render (docs/INFER.md, "Chat formats"); completions still work. */
		snprintf(msg, msgsz, "this model's chat template is not one allot can render; "
			 "use /v1/completions with a prompt");
		return e;
	}
	if (e) {
		snprintf(msg, msgsz, "the prompt could not be tokenized");
		return e;
	}
	struct infer_info info;
	infer_get_info(eng, &info);
	if (g->nids == 0 || g->nids >= (size_t)info.n_ctx) {
		snprintf(msg, msgsz, "the prompt has %zu tokens; this model's context is %d", g->nids,
			 info.n_ctx);
		return ALLOT_E_TOO_LARGE;
	}
	return ALLOT_OK;
}

/* ---- responses ------------------------------------------------------------------- */

static json_t *usage_json(int p, int c)
{
	return json_pack("{s:i,s:i,s:i}", "prompt_tokens", p, "completion_tokens", c,
			 "total_tokens", p + c);
}

static const char *finish_name(const char *r)
{
	return strcmp(r, "length") == 0 ? "length" : "stop";
}

static json_t *chunk_json(bool chat, const char *id, int64_t created, const char *model,
			  const char *text, size_t len, const char *finish, bool first)
{
	json_t *choice;
	if (chat) {
		json_t *delta = json_object();
		if (first)
			json_object_set_new(delta, "role", json_string("assistant"));
		if (text)
			json_object_set_new(delta, "content", json_stringn(text, len));
		choice = json_pack("{s:i,s:o,s:o}", "index", 0, "delta", delta, "finish_reason",
				   finish ? json_string(finish) : json_null());
	} else {
		choice = json_pack("{s:i,s:s%,s:n,s:o}", "index", 0, "text", text ? text : "",
				   text ? len : 0, "logprobs", "finish_reason",
				   finish ? json_string(finish) : json_null());
	}
	return json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", id, "object",
			 chat ? "chat.completion.chunk" : "text_completion", "created",
			 (json_int_t)created, "model", model, "choices", choice);
}

static void sse_append(struct buf *b, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return;
	buf_puts(b, "data: ");
	buf_puts(b, s);
	buf_puts(b, "\n\n");
	free(s);
}

/* ---- streaming ----------------------------------------------------------------------- */

struct stream {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct buf pending;
	size_t sent;
	bool done, gone;
	int refs;
	/* request */
	struct app *app;
	struct gate_ticket ticket;     /* the worker's once it has started */
	int64_t admitted_remaining;    /* X-Allot-Remaining: the ticket's at admission */
	char admitted_level[16];
	struct infer_job *job;
	bool chat, first;
	char id[64], model[STORE_ID_MAX];
	int64_t created;
	int prompt_tokens;
	/* remote models */
	json_t *body;
	const char *path;
};

static void stream_unref(struct stream *s)
{
	pthread_mutex_lock(&s->mu);
	bool last = --s->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (!last)
		return;
	buf_release(&s->pending);
	json_decref(s->body);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

/* A stream shared by the HTTP response and a worker thread. */
static struct stream *stream_new(struct app *app, const struct gate_ticket *t)
{
	struct stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->refs = 2; /* the HTTP response and the worker */
	s->app = app;
	s->ticket = *t;
	s->admitted_remaining = t->remaining;
	snprintf(s->admitted_level, sizeof s->admitted_level, "%s", t->remaining_level);
	s->first = true;
	return s;
}

/* The worker's last words (s->mu held): wake the reader, drop its reference. */
static void stream_finish_locked(struct stream *s)
{
	s->done = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	stream_unref(s);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max);
static void stream_cleanup(void *cls);

/* Answers with the stream as a server-sent event body. */
static allot_err stream_respond(struct http_resp *resp, struct stream *s)
{
	/* Not s->ticket: the worker, already running, settles it. */
	remaining_header(resp, s->admitted_remaining, s->admitted_level);
	resp->status = 200;
	resp->content_type = "text/event-stream";
	http_add_header(resp, "X-Accel-Buffering", "no");
	resp->stream = stream_read;
	resp->stream_cls = s;
	resp->stream_cleanup = stream_cleanup;
	return ALLOT_OK;
}

/* A refused admission's headers: Retry-After for rate limits. */
static void refusal_headers(struct http_resp *resp, allot_err e, int retry)
{
	if (e == ALLOT_E_RATE) {
		char ra[16];
		snprintf(ra, sizeof ra, "%d", retry > 0 ? retry : 1);
		http_add_header(resp, "Retry-After", ra);
	}
}

static int stream_on_text(void *ctx, const char *text, size_t len)
{
	struct stream *s = ctx;
	pthread_mutex_lock(&s->mu);
	bool gone = s->gone;
	if (!gone && len) {
		sse_append(&s->pending, chunk_json(s->chat, s->id, s->created, s->model, text, len,
						   NULL, s->first));
		s->first = false;
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return gone ? 1 : 0; /* the client went away: stop generating */
}

static void *stream_worker(void *arg)
{
	struct stream *s = arg;
	struct infer_result res;
	allot_err e = infer_wait(s->job, &res);
	int64_t charge = 0;
	int comp = e ? 0 : res.completion_tokens;
	int prompt = e ? s->prompt_tokens : res.prompt_tokens;
	gate_settle(s->app, s->app->gate, &s->ticket, prompt, comp, &charge);
	pthread_mutex_lock(&s->mu);
	if (!e) {
		sse_append(&s->pending, chunk_json(s->chat, s->id, s->created, s->model, NULL, 0,
						   finish_name(res.finish_reason), s->first));
		/* the final chunk carries usage (SPEC); OpenAI's include_usage
		 * shape: empty choices */
		json_t *u = json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", s->id, "object",
				      s->chat ? "chat.completion.chunk" : "text_completion", "created",
				      (json_int_t)s->created, "model", s->model, "choices", "usage",
				      usage_json(prompt, comp));
		sse_append(&s->pending, u);
		infer_result_release(&res);
	} else {
		json_t *err = json_pack("{s:{s:s,s:s}}", "error", "code", "internal", "message",
					"generation failed");
		sse_append(&s->pending, err);
	}
	buf_puts(&s->pending, "data: [DONE]\n\n");
	stream_finish_locked(s);
	return NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct stream *s = cls;
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

static void stream_cleanup(void *cls)
{
	struct stream *s = cls;
	pthread_mutex_lock(&s->mu);
	s->gone = true; /* on_text now cancels; the worker settles what ran */
	pthread_mutex_unlock(&s->mu);
	stream_unref(s);
}

/* ---- remote providers --------------------------------------------------------------------- */

/* An upper bound on the prompt's tokens without the model's tokenizer:
 * no tokenizer emits more tokens than bytes, plus room for BOS and each
 * message's chat-template tokens. */
static int remote_prompt_bound(const json_t *body, bool chat)
{
	size_t n = 8;
	if (!chat) {
		json_t *p = json_object_get(body, "prompt");
		if (json_is_array(p))
			p = json_array_get(p, 0);
		n += json_string_length(p);
	} else {
		size_t i;
		json_t *m;
		json_array_foreach(json_object_get(body, "messages"), i, m)
			n += 16 + json_string_length(json_object_get(m, "content")) +
			     json_string_length(json_object_get(m, "role"));
	}
	return n > (size_t)INT32_MAX / 2 ? INT32_MAX / 2 : (int)n;
}

/* Settles what an upstream reply said it used; without usage, the
 * reservation (never zero) and an error in the log. */
static void remote_settle(struct app *app, struct gate_ticket *t, const struct upstream_result *r,
			  bool replied)
{
	int64_t charge = 0;
	if (r->has_usage) {
		gate_settle(app, app->gate, t, r->prompt_tokens, r->completion_tokens, &charge);
	} else if (replied) {
		log_warnx("gate: upstream %s replied without usage%s%s; charging the reservation "
			  "(%d prompt, %d completion tokens)", t->model->url, r->error[0] ? ": " : "",
			  r->error, t->prompt_tokens, t->max_tokens);
		gate_settle(app, app->gate, t, t->prompt_tokens, t->max_tokens, &charge);
	} else {
		gate_cancel(app, app->gate, t);
	}
}

static int remote_stream_data(void *ctx, const char *data, size_t len)
{
	struct stream *s = ctx;
	pthread_mutex_lock(&s->mu);
	bool gone = s->gone;
	if (!gone) {
		buf_append(&s->pending, data, len);
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return gone ? 1 : 0;
}

static void *remote_stream_worker(void *arg)
{
	struct stream *s = arg;
	struct upstream_result r;
	const struct charter_model *m = s->ticket.model;
	upstream_forward(m->url, s->path, m->provider_id, m->upstream_model ? m->upstream_model : m->id,
			 s->body, true, remote_stream_data, s, &r);
	bool replied = r.status / 100 == 2;
	remote_settle(s->app, &s->ticket, &r, replied);
	pthread_mutex_lock(&s->mu);
	if (!replied || r.error[0] || !r.has_usage) {
		char m2[300];
		snprintf(m2, sizeof m2, "upstream %s", r.error[0] ? r.error : !replied ? "refused the request" : "sent no usage");
		sse_append(&s->pending, json_pack("{s:{s:s,s:s}}", "error", "code", "upstream_error",
						  "message", m2));
		buf_puts(&s->pending, "data: [DONE]\n\n");
	}
	stream_finish_locked(s);
	return NULL;
}

static int collect(void *ctx, const char *data, size_t len)
{
	buf_append(ctx, data, len);
	return 0;
}

static allot_err remote_generate(struct http_req *req, struct http_resp *resp, bool chat,
				 json_t *body, struct gen_req *g)
{
	struct app *app = api_app(req);
	struct token_claims *cl = member_claims(req);
	char msg[512] = "";
	struct gate_ticket t;
	int retry = 0;
	allot_err e = gate_admit(app, app->gate, cl, g->model, remote_prompt_bound(body, chat),
				 g->max_tokens, &t, &retry, msg, sizeof msg);
	if (e) {
		refusal_headers(resp, e, retry);
		return http_error(resp, e, "%s", msg);
	}
	/* The upstream must not generate past what was reserved. */
	json_t *fwd = json_copy(body); /* shallow: only top-level keys change */
	json_object_set_new(fwd, chat && json_object_get(body, "max_completion_tokens")
				 ? "max_completion_tokens" : "max_tokens", json_integer(t.max_tokens));
	const char *path = chat ? "/chat/completions" : "/completions";
	const struct charter_model *m = t.model;
	if (g->stream) {
		struct stream *s = stream_new(app, &t);
		pthread_t th;
		if (!s) {
			gate_cancel(app, app->gate, &t);
			json_decref(fwd);
			return http_error(resp, ALLOT_E_NOMEM, "out of memory");
		}
		s->body = fwd;
		s->path = path;
		if (pthread_create(&th, NULL, remote_stream_worker, s) != 0) {
			gate_cancel(app, app->gate, &s->ticket);
			json_decref(fwd);
			free(s);
			return http_error(resp, ALLOT_E_INTERNAL, "could not start the upstream call");
		}
		pthread_detach(th);
		return stream_respond(resp, s);
	}
	struct upstream_result r;
	struct buf reply = BUF_INIT;
	upstream_forward(m->url, path, m->provider_id, m->upstream_model ? m->upstream_model : m->id,
			 fwd, false, collect, &reply, &r);
	json_decref(fwd);
	bool replied = r.status / 100 == 2 && reply.len > 0;
	remote_settle(app, &t, &r, replied);
	if (!replied) {
		buf_release(&reply);
		return http_error(resp, ALLOT_E_UPSTREAM, "upstream %s: %s", m->provider_id,
				  r.error[0] ? r.error : "the provider refused the request");
	}
	remaining_header(resp, t.remaining, t.remaining_level);
	resp->status = 200;
	resp->content_type = "application/json";
	buf_release(&resp->body);
	resp->body = reply;
	return ALLOT_OK;
}

/* on_text for answers sent at the end: cancel when the peer hung up. */
static int client_gone(void *ctx, const char *text, size_t len)
{
	(void)text;
	(void)len;
	struct pollfd p = {.fd = *(int *)ctx, .events = POLLRDHUP};
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) ? 1 : 0;
}

/* ---- the generation handlers ------------------------------------------------------------- */

static allot_err generate(struct http_req *req, struct http_resp *resp, bool chat)
{
	static const char *const cfields[] = {"model", "prompt", "max_tokens", "temperature",
		"top_p", "top_k", "min_p", "seed", "stop", "stream", "stream_options", "n", "user",
		"presence_penalty", "frequency_penalty", "logprobs", "echo", NULL};
	static const char *const chfields[] = {"model", "messages", "max_tokens",
		"max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop",
		"stream", "stream_options", "n", "user", "presence_penalty", "frequency_penalty", NULL};
	struct app *app = api_app(req);
	struct token_claims *cl = member_claims(req);
	json_t *body = NULL;
	char msg[512] = "";
	struct gen_req g = {.chat = chat};
	allot_err e = http_body_json(req, resp, &body);
	if (e)
		return e;
	if ((e = json_only_fields(body, chat ? chfields : cfields, msg, sizeof msg)) ||
	    (e = parse_common(body, &g, msg, sizeof msg)))
		goto bad;
	if (!chat) {
		json_t *lp = json_object_get(body, "logprobs"), *echo = json_object_get(body, "echo");
		if ((lp && !json_is_null(lp)) || json_is_true(echo)) {
			e = ALLOT_E_UNSUPPORTED;
			snprintf(msg, sizeof msg, "logprobs and echo are not supported");
			goto bad;
		}
	}
	struct active_charter *ac = app_charter_get(app);
	bool allowed = ac && charter_model(ac->c, g.model) && gate_model_allowed(ac->c, cl, g.model);
	app_charter_put(app, ac);
	if (!allowed) {
		e = ALLOT_E_NOT_FOUND;
		snprintf(msg, sizeof msg, "model \"%.64s\" does not exist or this token may not use it", g.model);
		goto bad;
	}
	ac = app_charter_get(app);
	const struct charter_model *cm = ac ? charter_model(ac->c, g.model) : NULL;
	bool remote = cm && cm->url;
	app_charter_put(app, ac);
	if (remote) {
		if ((e = parse_prompt(NULL, body, &g, msg, sizeof msg)))
			goto bad;
		e = remote_generate(req, resp, chat, body, &g);
		json_decref(body);
		return e;
	}
	struct infer_engine *eng = gate_engine(app->gate, g.model);
	if (!eng) {
		e = ALLOT_E_UNAVAILABLE;
		snprintf(msg, sizeof msg, "model \"%.64s\" is not loaded on this gate", g.model);
		goto bad;
	}
	if ((e = parse_prompt(eng, body, &g, msg, sizeof msg)))
		goto bad;
	struct gate_ticket t;
	int retry = 0;
	e = gate_admit(app, app->gate, cl, g.model, (int)g.nids, g.max_tokens, &t, &retry, msg,
		       sizeof msg);
	if (e) {
		refusal_headers(resp, e, retry);
		goto bad;
	}
	int64_t created = time_now_us() / US_PER_SEC;
	char id[64];
	snprintf(id, sizeof id, "%s-%s%llx", chat ? "chatcmpl" : "cmpl", cl->jti + 1,
		 (unsigned long long)t.seq);
	struct infer_request ir = {
		.prompt = g.ids, .n_prompt = g.nids, .max_tokens = t.max_tokens,
		.temperature = (float)g.temperature, .top_k = (int)g.top_k, .top_p = (float)g.top_p,
		.min_p = (float)g.min_p, .seed = g.seed, .stop = g.stop, .n_stop = g.nstop};
	if (g.stream) {
		struct stream *s = stream_new(app, &t);
		if (!s) {
			gate_cancel(app, app->gate, &t);
			e = ALLOT_E_NOMEM;
			snprintf(msg, sizeof msg, "out of memory");
			goto bad;
		}
		s->chat = chat;
		s->created = created;
		s->prompt_tokens = (int)g.nids;
		snprintf(s->id, sizeof s->id, "%s", id);
		snprintf(s->model, sizeof s->model, "%s", g.model);
		ir.on_text = stream_on_text;
		ir.ctx = s;
		pthread_t th;
		if ((e = infer_submit(eng, &ir, &s->job)) ||
		    pthread_create(&th, NULL, stream_worker, s) != 0) {
			if (!e) {
				infer_cancel(s->job);
				struct infer_result tmp;
				infer_wait(s->job, &tmp);
				infer_result_release(&tmp);
			}
			gate_cancel(app, app->gate, &s->ticket);
			buf_release(&s->pending);
			free(s);
			e = e ? e : ALLOT_E_INTERNAL;
			snprintf(msg, sizeof msg, "generation could not start");
			goto bad;
		}
		pthread_detach(th);
		free(g.ids);
		json_decref(body);
		return stream_respond(resp, s);
	}
	struct infer_result res;
	/* A client that hangs up stops generation here too: each piece of text
	 * checks the connection (one poll(2), no wait). */
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	int client_fd = ci ? ci->connect_fd : -1;
	if (client_fd >= 0) {
		ir.on_text = client_gone;
		ir.ctx = &client_fd;
	}
	e = infer_generate(eng, &ir, &res);
	int64_t charge = 0;
	gate_settle(app, app->gate, &t, e ? (int)g.nids : res.prompt_tokens,
		    e ? 0 : res.completion_tokens, &charge);
	if (e) {
		snprintf(msg, sizeof msg, "generation failed");
		goto bad;
	}
	json_t *choice = chat
		? json_pack("{s:i,s:{s:s,s:s%},s:s}", "index", 0, "message", "role", "assistant",
			    "content", res.text, res.text_len, "finish_reason", finish_name(res.finish_reason))
		: json_pack("{s:i,s:s%,s:n,s:s}", "index", 0, "text", res.text, res.text_len,
			    "logprobs", "finish_reason", finish_name(res.finish_reason));
	json_t *out = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:o}", "id", id, "object",
				chat ? "chat.completion" : "text_completion", "created",
				(json_int_t)created, "model", g.model, "choices", choice, "usage",
				usage_json(res.prompt_tokens, res.completion_tokens));
	infer_result_release(&res);
	free(g.ids);
	json_decref(body);
	remaining_header(resp, t.remaining, t.remaining_level);
	return http_json(resp, 200, out);
bad:
	free(g.ids);
	json_decref(body);
	return http_error(resp, e, "%s", msg);
}

/* Every answer of the gate carries X-Allot-Remaining (SPEC section 7). */
static allot_err with_remaining(struct http_req *req, struct http_resp *resp, allot_err e)
{
	for (size_t i = 0; i < resp->nheaders; i++)
		if (strcmp(resp->headers[i].name, "X-Allot-Remaining") == 0)
			return e;
	member_remaining_header(req, resp);
	return e;
}

allot_err api_completions(struct http_req *req, struct http_resp *resp)
{
	return with_remaining(req, resp, generate(req, resp, false));
}

allot_err api_chat_completions(struct http_req *req, struct http_resp *resp)
{
	return with_remaining(req, resp, generate(req, resp, true));
}

allot_err api_models(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	struct token_claims *cl = member_claims(req);
	struct active_charter *ac = app_charter_get(app);
	json_t *data = json_array();
	for (size_t i = 0; ac && i < ac->c->nmodels; i++) {
		const struct charter_model *m = &ac->c->models[i];
		if (gate_model_allowed(ac->c, cl, m->id))
			json_array_append_new(data, json_pack("{s:s,s:s,s:I,s:s,s:s}", "id", m->id, "object",
				"model", "created", (json_int_t)(ac->c->effective_us / US_PER_SEC), "owned_by",
				m->provider_id, "status", m->file ? gate_model_status(app->gate, m->id) : "ready"));
	}
	app_charter_put(app, ac);
	member_remaining_header(req, resp);
	return http_json(resp, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

allot_err api_quotas_me(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	struct token_claims *cl = member_claims(req);
	struct active_charter *ac = app_charter_get(app);
	if (!ac)
		return http_error(resp, ALLOT_E_UNAVAILABLE, "no charter has been applied");
	allot_err e;
	json_t *j = api_quota_view(app, ac->c, cl->inst, cl->proj, cl->sub, time_now_us(), &e);
	app_charter_put(app, ac);
	if (!j)
		return http_error(resp, e == ALLOT_E_NOT_FOUND ? ALLOT_E_FORBIDDEN : e,
				  "this token's member is not in the active charter");
	json_t *tok = json_pack("{s:s}", "jti", cl->jti);
	if (cl->has_max_credits) {
		int64_t spent = 0;
		char b[MONEY_FMT_MAX];
		if ((e = gate_token_spent(app, app->gate, cl->jti, &spent))) {
			json_decref(tok);
			json_decref(j);
			return http_error(resp, e, "could not read the token's spending");
		}
		json_object_set_new(tok, "max_credits", json_string(money_format(cl->max_credits, b)));
		json_object_set_new(tok, "spent", json_string(money_format(spent, b)));
	}
	json_object_set_new(j, "token", tok);
	member_remaining_header(req, resp);
	return http_json(resp, 200, j);
}

static allot_err tok_engine(struct http_req *req, struct http_resp *resp, json_t *body,
			    struct infer_engine **eng)
{
	struct app *app = api_app(req);
	const char *model = NULL;
	char msg[256];
	allot_err e = json_get_str(body, "model", true, &model, msg, sizeof msg);
	if (e)
		return http_error(resp, e, "%s", msg);
	struct active_charter *ac = app_charter_get(app);
	bool ok = ac && gate_model_allowed(ac->c, member_claims(req), model);
	app_charter_put(app, ac);
	if (!ok || !(*eng = gate_engine(app->gate, model)))
		return http_error(resp, ALLOT_E_NOT_FOUND, "model \"%.64s\" is not available here", model);
	return ALLOT_OK;
}

static allot_err tokenize(struct http_req *req, struct http_resp *resp)
{
	static const char *const f[] = {"model", "text", "add_bos", NULL};
	json_t *body = NULL;
	char msg[256];
	allot_err e = http_body_json(req, resp, &body);
	if (e)
		return e;
	struct infer_engine *eng = NULL;
	const char *text = NULL;
	bool bos = true;
	if ((e = json_only_fields(body, f, msg, sizeof msg)) ||
	    (e = json_get_str(body, "text", true, &text, msg, sizeof msg)) ||
	    (e = json_get_bool(body, "add_bos", false, &bos, msg, sizeof msg))) {
		json_decref(body);
		return http_error(resp, e, "%s", msg);
	}
	if (json_string_length(json_object_get(body, "text")) > GATE_MAX_PROMPT_BYTES) {
		json_decref(body);
		return http_error(resp, ALLOT_E_TOO_LARGE, "text longer than %d bytes", GATE_MAX_PROMPT_BYTES);
	}
	if ((e = tok_engine(req, resp, body, &eng))) {
		json_decref(body);
		return e;
	}
	int32_t *ids = NULL;
	size_t n = 0;
	e = infer_tokenize(eng, text, json_string_length(json_object_get(body, "text")), bos, false, &ids, &n);
	json_decref(body);
	if (e)
		return http_error(resp, e, "could not tokenize");
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_integer(ids[i]));
	free(ids);
	return http_json(resp, 200, json_pack("{s:o,s:I}", "tokens", arr, "count", (json_int_t)n));
}

static allot_err detokenize(struct http_req *req, struct http_resp *resp)
{
	static const char *const f[] = {"model", "tokens", NULL};
	json_t *body = NULL;
	char msg[256];
	allot_err e = http_body_json(req, resp, &body);
	if (e)
		return e;
	struct infer_engine *eng = NULL;
	json_t *toks = json_object_get(body, "tokens");
	if ((e = json_only_fields(body, f, msg, sizeof msg)) || !json_is_array(toks) ||
	    json_array_size(toks) > 1000000) {
		json_decref(body);
		return http_error(resp, ALLOT_E_INVALID, "%s", e ? msg : "\"tokens\" must be an array of token ids");
	}
	if ((e = tok_engine(req, resp, body, &eng))) {
		json_decref(body);
		return e;
	}
	size_t n = json_array_size(toks);
	int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
	for (size_t i = 0; ids && i < n; i++) {
		json_t *v = json_array_get(toks, i);
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
			free(ids);
			json_decref(body);
			return http_error(resp, ALLOT_E_INVALID, "tokens[%zu] is not a token id", i);
		}
		ids[i] = (int32_t)json_integer_value(v);
	}
	json_decref(body);
	if (!ids)
		return http_error(resp, ALLOT_E_NOMEM, "out of memory");
	char *text = NULL;
	size_t len = 0;
	e = infer_detokenize(eng, ids, n, &text, &len);
	free(ids);
	if (e)
		return http_error(resp, e, "a token id is out of range for this model");
	json_t *j = json_pack("{s:s%}", "text", text, len);
	free(text);
	return http_json(resp, 200, j);
}

allot_err api_tokenize(struct http_req *req, struct http_resp *resp)
{
	return with_remaining(req, resp, tokenize(req, resp));
}

allot_err api_detokenize(struct http_req *req, struct http_resp *resp)
{
	return with_remaining(req, resp, detokenize(req, resp));
}
