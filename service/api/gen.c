/* gen.c — gated requests on the bundled engine: admission of every
 * sequence, generation, settlement (api/gen.h). */
#include "api/gen.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "daemon/app.h"

static void cancel_admitted(struct gen_run *g)
{
	for (size_t i = 0; i < g->nseq; i++)
		if (g->seq[i].admitted) {
			gate_cancel(g->app->gate, &g->seq[i].t);
			g->seq[i].admitted = false;
		}
}

allot_err gen_admit(struct app *app, const struct token_claims *cl, const struct oai_req *r,
		    struct gen_run **out, int *retry_after_s, struct oai_err *er)
{
	struct gen_run *g = calloc(1, sizeof *g);
	if (!g)
		return oai_fail(er, ALLOT_E_NOMEM, NULL, NULL, "out of memory");
	g->app = app;
	g->kind = r->kind;
	g->include_usage = r->include_usage;
	g->logprobs = r->logprobs >= 0;
	g->created = time_now_us() / US_PER_SEC;
	snprintf(g->model, sizeof g->model, "%s", r->model);
	for (size_t p = 0; p < r->nprompts; p++)
		for (int j = 0; j < r->n; j++) {
			struct gen_seq *q = &g->seq[g->nseq];
			char msg[512];
			q->run = g;
			q->index = (int)g->nseq;
			q->prompt = p;
			q->first = true;
			allot_err e = gate_admit(app->gate, cl, r->model, (int)r->nids[p],
						 r->max_tokens, &q->t, retry_after_s, msg, sizeof msg);
			if (e) {
				cancel_admitted(g);
				free(g);
				return oai_fail(er, e, NULL, e == ALLOT_E_INVALID ? "max_tokens" : NULL,
						"%s", msg);
			}
			q->admitted = true;
			g->nseq++;
		}
	const struct gate_ticket *last = &g->seq[g->nseq - 1].t;
	g->remaining = last->remaining;
	snprintf(g->level, sizeof g->level, "%s", last->remaining_level);
	snprintf(g->id, sizeof g->id, "%s-%s%llx",
		 r->kind == OAI_CHAT ? "chatcmpl" : r->kind == OAI_RESPONSES ? "resp" : "cmpl",
		 cl->jti + 1, (unsigned long long)g->seq[0].t.seq);
	*out = g;
	return ALLOT_OK;
}

void gen_cancel(struct gen_run *g)
{
	cancel_admitted(g);
	gen_free(g);
}

void gen_free(struct gen_run *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nseq; i++)
		if (g->seq[i].has_res)
			infer_result_release(&g->seq[i].res);
	if (g->fmt_free)
		g->fmt_free(g->fmt_state);
	free(g);
}

static void gen_free_owner(void *g)
{
	gen_free(g);
}

const char *gen_finish(const struct gen_seq *q)
{
	return q->has_res && strcmp(q->res.finish_reason, "length") == 0 ? "length" : "stop";
}

const struct infer_logprob *gen_logprobs(const struct gen_seq *q, size_t *n)
{
	(void)q;
	*n = 0;
#ifdef OAI_ENGINE_FEATURES
	if (q->has_res && q->res.n_choices > 0 && q->res.choices[0].logprobs) {
		*n = q->res.choices[0].n_logprobs;
		return q->res.choices[0].logprobs;
	}
#endif
	return NULL;
}

/* The engine request of q; with a seed, choice j of a prompt samples with
 * seed + j so that n choices differ and each is reproducible. */
static struct infer_request seq_request(const struct oai_req *r, const struct gen_seq *q)
{
	int64_t j = q->index % r->n, seed = r->seed;
	if (seed >= 0)
		seed = seed > INT64_MAX - j ? seed - j : seed + j;
	struct infer_request ir = {
		.prompt = r->ids[q->prompt], .n_prompt = r->nids[q->prompt],
		.max_tokens = q->t.max_tokens, .temperature = (float)r->temperature,
		.top_k = (int)r->top_k, .top_p = (float)r->top_p, .min_p = (float)r->min_p,
		.seed = seed, .stop = r->stop, .n_stop = r->nstop};
#ifdef OAI_ENGINE_FEATURES
	ir.presence_penalty = (float)r->presence_penalty;
	ir.frequency_penalty = (float)r->frequency_penalty;
	ir.logit_bias = r->bias;
	ir.n_logit_bias = r->nbias;
	ir.logprobs = r->logprobs >= 0;
	ir.top_logprobs = r->kind == OAI_COMPLETIONS ? (r->logprobs > 0 ? r->logprobs : 0)
						     : (r->top_logprobs > 0 ? r->top_logprobs : 0);
	ir.format = r->schema ? INFER_FMT_JSON_SCHEMA
		    : r->response_format ? INFER_FMT_JSON_OBJECT : INFER_FMT_TEXT;
	ir.json_schema = r->schema;
	ir.json_schema_len = r->schema ? strlen(r->schema) : 0;
#endif
	return ir;
}

/* Books what q used: its result, or (a failed generation) its prompt. */
static void settle(struct gen_run *g, struct gen_seq *q)
{
	int64_t charge = 0;
	q->prompt_tokens = q->has_res ? q->res.prompt_tokens : q->t.prompt_tokens;
	q->completion_tokens = q->has_res ? q->res.completion_tokens : 0;
	gate_settle(g->app->gate, &q->t, q->prompt_tokens, q->completion_tokens, &charge);
	q->admitted = false;
	g->prompt_tokens += q->prompt_tokens;
	g->completion_tokens += q->completion_tokens;
}

static void wait_and_settle(struct gen_run *g)
{
	for (size_t i = 0; i < g->nseq; i++) {
		struct gen_seq *q = &g->seq[i];
		if (!q->submitted)
			continue;
		q->err = infer_wait(q->job, &q->res);
		q->has_res = !q->err;
		q->submitted = false;
		settle(g, q);
	}
}

static int seq_on_text(void *ctx, const char *text, size_t len);
#ifdef OAI_ENGINE_FEATURES
static int seq_on_chunk(void *ctx, const struct infer_chunk *c);
#endif

/* Submits every sequence; one that cannot start is released (not
 * charged) and keeps its error. */
static void submit_all(struct infer_engine *eng, const struct oai_req *r, struct gen_run *g,
		       int (*on_text)(void *, const char *, size_t), void *fd)
{
	for (size_t i = 0; i < g->nseq; i++) {
		struct gen_seq *q = &g->seq[i];
		struct infer_request ir = seq_request(r, q);
		ir.on_text = on_text;
		ir.ctx = fd ? fd : q;
#ifdef OAI_ENGINE_FEATURES
		if (on_text == seq_on_text && g->logprobs)
			ir.on_chunk = seq_on_chunk;
#endif
		if ((q->err = infer_submit(eng, &ir, &q->job))) {
			gate_cancel(g->app->gate, &q->t);
			q->admitted = false;
		} else {
			q->submitted = true;
		}
	}
}

/* on_text for answers sent at the end: cancel when the peer hung up. */
static int client_gone(void *ctx, const char *text, size_t len)
{
	(void)text;
	(void)len;
	struct pollfd p = {.fd = *(int *)ctx, .events = POLLRDHUP};
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) ? 1 : 0;
}

void gen_run_sync(struct infer_engine *eng, const struct oai_req *r, struct gen_run *g,
		  int client_fd)
{
	g->eng = eng;
	submit_all(eng, r, g, client_fd >= 0 ? client_gone : NULL,
		   client_fd >= 0 ? &client_fd : NULL);
	wait_and_settle(g);
}

static int seq_piece(struct gen_seq *q, const char *text, size_t len,
		     const struct infer_logprob *lp, size_t n_lp)
{
	struct gen_run *g = q->run;
	struct sse_stream *s = g->s;
	pthread_mutex_lock(&s->mu);
	bool gone = s->gone;
	if (!gone && (len || n_lp)) {
		g->fmt->delta(g, q, text, len, lp, n_lp, &s->pending);
		q->first = false;
		sse_wake_locked(s);
	}
	pthread_mutex_unlock(&s->mu);
	return gone ? 1 : 0; /* the client went away: stop generating */
}

static int seq_on_text(void *ctx, const char *text, size_t len)
{
	return seq_piece(ctx, text, len, NULL, 0);
}

#ifdef OAI_ENGINE_FEATURES
/* With logprobs: each piece of text with its tokens' logprobs. */
static int seq_on_chunk(void *ctx, const struct infer_chunk *c)
{
	return seq_piece(ctx, c->text, c->len, c->lp, c->n_lp);
}
#endif

static void *stream_worker(void *arg)
{
	struct gen_run *g = arg;
	wait_and_settle(g);
	pthread_mutex_lock(&g->s->mu);
	g->fmt->end(g, &g->s->pending);
	sse_finish_locked(g->s);
	return NULL;
}

allot_err gen_run_stream(struct infer_engine *eng, const struct oai_req *r, struct gen_run *g,
			 const struct gen_format *fmt, struct http_resp *resp, struct oai_err *er)
{
	g->fmt = fmt;
	g->eng = eng;
	if (!(g->s = sse_new(g, gen_free_owner))) {
		cancel_admitted(g);
		gen_free(g);
		return oai_fail(er, ALLOT_E_NOMEM, NULL, NULL, "out of memory");
	}
	if (fmt->start)
		fmt->start(g, &g->s->pending);
	submit_all(eng, r, g, seq_on_text, NULL);
	bool failed = false;
	for (size_t i = 0; i < g->nseq; i++)
		failed |= !g->seq[i].submitted;
	pthread_t th;
	if (failed || pthread_create(&th, NULL, stream_worker, g) != 0) {
		/* what started is stopped and settled; the rest was released */
		for (size_t i = 0; i < g->nseq; i++)
			if (g->seq[i].submitted)
				infer_cancel(g->seq[i].job);
		wait_and_settle(g);
		sse_discard(g->s); /* frees g */
		return oai_fail(er, ALLOT_E_INTERNAL, NULL, NULL, "generation could not start");
	}
	pthread_detach(th);
	sse_respond(resp, g->s);
	return ALLOT_OK;
}
