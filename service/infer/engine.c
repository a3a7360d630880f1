/* engine.c — request queue, sequence slots and the continuous-batching loop
 * of the bundled inference engine: jobs of n sequences are admitted when n
 * slots are free, sequence 0's prefill is shared through copy_seq.  What
 * happens to each sampled token is engine_seq.c's; embeddings are
 * engine_embed.c's. */
#include "infer/engine.h"
#include "infer/engine_int.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "infer/backend.h"
#include "infer/gguf.h"
#include "infer/jsong.h"
#include "infer/model.h"
#include "infer/sample.h"
#include "infer/tok.h"
#include "infer/utf8.h"

/* Ends a job that never got a slot (under mu). */
static void finish_queued_locked(struct infer_engine *e, struct infer_job *j, const char *reason)
{
	metrics_gauge_add(MG_INFER_QUEUED, -1);
	for (int i = 0; i < j->n; i++)
		if (!j->seq[i].ended) {
			j->seq[i].ended = true;
			j->seq[i].finish = reason;
		}
	j->done = true;
	pthread_cond_broadcast(&e->done);
}

/* ---- one step ---------------------------------------------------------------- */

/* Sequence q's prompt is done in its slot: its waiting siblings get a copy
 * of the KV cache and sample from the same logits. */
static void prefill_done(struct infer_engine *e, struct infer_seq *q, const float *logits)
{
	struct infer_job *j = q->j;
	struct infer_seq *wait[INFER_MAX_N];
	int src = q->slot, nw = 0;   /* (q may end at once, leaving its cache intact) */

	/* (the job may be freed by its waiter as soon as its last sequence
	 * ends: j is not read after that) */
	for (int i = 0; i < j->n; i++)
		if (j->seq[i].waiting && !j->seq[i].ended)
			wait[nw++] = &j->seq[i];
	eng_seq_logits(e, q, logits);
	for (int i = 0; i < nw; i++) {
		struct infer_seq *o = wait[i];

		o->waiting = false;
		o->n_fed = o->j->n_prompt;
		if (e->be->copy_seq(e->bstate, src, o->slot, (int)o->j->n_prompt) != ALLOT_OK)
			eng_seq_finish(e, o, "cancelled", false);
		else
			eng_seq_logits(e, o, logits);
	}
}

static void step(struct infer_engine *e)
{
	struct infer_batch b = {0, e->bt, e->bp, e->bs, e->bw};
	int n = 0, k = 0;

	for (int s = 0; s < e->n_slots; s++)
		if (e->slot[s] && atomic_load(&e->slot[s]->j->cancel))
			eng_seq_finish(e, e->slot[s], "cancelled", false);
	/* decoding sequences first: one token each */
	for (int s = 0; s < e->n_slots; s++) {
		struct infer_seq *q = e->slot[s];

		if (!q || !q->decoding)
			continue;
		e->bt[n] = q->next_tok;
		e->bp[n] = (int32_t)(q->j->n_prompt + (size_t)q->n_gen - 1);
		e->bs[n] = s;
		e->bw[n++] = 1;
	}
	int ndec = n; /* the rest are prompt tokens */
	/* prompt chunks in the room left, round-robin between sequences */
	for (int i = 0; i < e->n_slots && n < e->step_cap; i++) {
		int s = (e->rr + i) % e->n_slots;
		struct infer_seq *q = e->slot[s];

		if (!q || q->decoding || q->waiting)
			continue;
		while (q->n_fed < q->j->n_prompt && n < e->step_cap) {
			e->bt[n] = q->j->prompt[q->n_fed];
			e->bp[n] = (int32_t)q->n_fed;
			e->bs[n] = s;
			e->bw[n++] = q->n_fed + 1 == q->j->n_prompt;
			q->n_fed++;
		}
	}
	e->rr = (e->rr + 1) % e->n_slots;
	if (n == 0)
		return;
	b.n_tokens = n;
	metrics_observe(MH_INFER_BATCH, n);
	metrics_add(MC_INFER_PROMPT_TOKENS, (uint64_t)(n - ndec));
	if (e->be->forward(e->bstate, &b, e->logits) != ALLOT_OK) {
		log_warnx("infer: forward pass failed; cancelling %d sequences", n);
		for (int s = 0; s < e->n_slots; s++)
			if (e->slot[s])
				eng_seq_finish(e, e->slot[s], "cancelled", false);
		return;
	}
	for (int t = 0; t < n; t++) {
		struct infer_seq *q;
		const float *l;

		if (!e->bw[t])
			continue;
		q = e->slot[e->bs[t]];
		l = e->logits + (size_t)k++ * e->m->hp.n_vocab;
		if (!q)
			continue;   /* (ended by a sibling's callback) */
		if (q->decoding)
			eng_seq_logits(e, q, l);
		else
			prefill_done(e, q, l);
	}
}

/* Admits queued jobs, FIFO, while the first one's sequences all fit in
 * free slots (under mu).  Returns the number of occupied slots. */
static int admit_locked(struct infer_engine *e)
{
	int free_slots = 0, active = 0;

	for (int s = 0; s < e->n_slots; s++)
		free_slots += e->slot[s] == NULL;
	while (e->qhead && e->qhead->n <= free_slots) {
		struct infer_job *j = e->qhead;
		int s = 0;

		e->qhead = j->qnext;
		if (!e->qhead)
			e->qtail = NULL;
		metrics_gauge_add(MG_INFER_QUEUED, -1);
		metrics_gauge_add(MG_INFER_ACTIVE, j->n);
		for (int i = 0; i < j->n; i++) {
			while (e->slot[s])
				s++;
			e->slot[s] = &j->seq[i];
			j->seq[i].slot = s;
			/* with copy_seq, sequence 0 alone processes the prompt */
			j->seq[i].waiting = i > 0 && e->be->copy_seq;
		}
		free_slots -= j->n;
	}
	for (int s = 0; s < e->n_slots; s++)
		active += e->slot[s] != NULL;
	return active;
}

static void *engine_main(void *arg)
{
	struct infer_engine *e = arg;

	for (;;) {
		int active;
		bool embeds;

		pthread_mutex_lock(&e->mu);
		/* drop cancelled requests still waiting for a slot */
		for (struct infer_job **pp = &e->qhead; *pp;) {
			if (atomic_load(&(*pp)->cancel) || e->stopping) {
				struct infer_job *j = *pp;

				*pp = j->qnext;
				finish_queued_locked(e, j, "cancelled");
			} else {
				pp = &(*pp)->qnext;
			}
		}
		e->qtail = NULL;
		for (struct infer_job *j = e->qhead; j; j = j->qnext)
			e->qtail = j;
		active = admit_locked(e);
		if (e->stopping) {
			eng_embed_cancel_locked(e);
			pthread_mutex_unlock(&e->mu);
			for (int s = 0; s < e->n_slots; s++)
				if (e->slot[s])
					eng_seq_finish(e, e->slot[s], "cancelled", false);
			return NULL;
		}
		embeds = e->ehead != NULL;
		if (!active && !embeds) {
			pthread_cond_wait(&e->work, &e->mu);
			pthread_mutex_unlock(&e->mu);
			continue;
		}
		pthread_mutex_unlock(&e->mu);
		if (embeds)
			eng_embed_step(e);
		if (active)
			step(e);
	}
}

/* ---- public ------------------------------------------------------------------ */

static void engine_free(struct infer_engine *e)
{
	if (e->bstate)
		e->be->free(e->bstate);
	llama_free(e->m);
	free(e->slot);
	free(e->bt); free(e->bp); free(e->bs); free(e->bw);
	free(e->logits);
	free(e->wl);
	free(e->cand);
	free(e->hidden);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->work);
	pthread_cond_destroy(&e->done);
	free(e);
}

allot_err infer_open(const char *path, const struct infer_params *p,
		     struct infer_engine **out, char *err, size_t errlen)
{
	struct infer_params d = {0};
	struct infer_engine *e;
	struct infer_backend_params bp;
	allot_err rc;

	if (!p)
		p = &d;
	e = calloc(1, sizeof *e);
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return ALLOT_E_NOMEM;
	}
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->work, NULL);
	pthread_cond_init(&e->done, NULL);
	rc = llama_load(path, &e->m, err, errlen);
	if (rc != ALLOT_OK) {
		engine_free(e);
		return rc;
	}
	e->be = p->backend ? p->backend : &infer_backend_cpu;
	e->n_slots = p->n_slots > 0 ? p->n_slots : INFER_DEFAULT_SLOTS;
	e->n_ctx = p->n_ctx > 0 ? p->n_ctx : e->m->hp.n_ctx_train;
	if (p->n_ctx <= 0 && e->n_ctx > INFER_DEFAULT_CTX)
		e->n_ctx = INFER_DEFAULT_CTX;
	if (e->n_ctx > e->m->hp.n_ctx_train)
		e->n_ctx = e->m->hp.n_ctx_train;
	e->max_batch = p->max_batch > 0 ? p->max_batch : INFER_DEFAULT_BATCH;
	e->step_cap = e->max_batch > e->n_slots ? e->max_batch : e->n_slots;
	e->chat = chat_detect(e->m->chat_template);
	bp = (struct infer_backend_params){.n_threads = p->n_threads > 0 ? p->n_threads : 1,
					   /* one more for embeddings (engine_embed.c) */
					   .n_slots = e->n_slots + (e->be->embed != NULL), .n_ctx = e->n_ctx,
					   .max_batch = e->step_cap, .device = p->device};
	if (p->vocab_only) {
		/* tokenizer and metadata only: no weights touched, no threads */
		e->vocab_only = true;
		snprintf(e->backend_desc, sizeof e->backend_desc, "none (vocabulary only)");
		*out = e;
		return ALLOT_OK;
	}
	rc = e->be->load(e->m, &bp, &e->bstate, err, errlen);
	if (rc != ALLOT_OK) {
		e->bstate = NULL;
		engine_free(e);
		return rc;
	}
	snprintf(e->backend_desc, sizeof e->backend_desc, "%s", e->be->describe(e->bstate));
	e->slot = calloc((size_t)e->n_slots, sizeof *e->slot);
	e->bt = malloc((size_t)e->step_cap * sizeof *e->bt);
	e->bp = malloc((size_t)e->step_cap * sizeof *e->bp);
	e->bs = malloc((size_t)e->step_cap * sizeof *e->bs);
	e->bw = malloc((size_t)e->step_cap * sizeof *e->bw);
	e->logits = malloc((size_t)e->n_slots * e->m->hp.n_vocab * sizeof *e->logits);
	e->wl = malloc((size_t)e->m->hp.n_vocab * sizeof *e->wl);
	e->cand = malloc((size_t)e->m->hp.n_vocab * sizeof *e->cand);
	if (e->be->embed)
		e->hidden = malloc((size_t)e->max_batch * e->m->hp.dim * sizeof *e->hidden);
	if (!e->slot || !e->bt || !e->bp || !e->bs || !e->bw || !e->logits || !e->wl || !e->cand ||
	    (e->be->embed && !e->hidden)) {
		snprintf(err, errlen, "out of memory");
		engine_free(e);
		return ALLOT_E_NOMEM;
	}
	if (pthread_create(&e->th, NULL, engine_main, e) != 0) {
		snprintf(err, errlen, "cannot start the engine thread");
		engine_free(e);
		return ALLOT_E_INTERNAL;
	}
	e->th_started = true;
	*out = e;
	return ALLOT_OK;
}

void infer_close(struct infer_engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	e->stopping = true;
	pthread_cond_signal(&e->work);
	pthread_mutex_unlock(&e->mu);
	if (e->th_started)
		pthread_join(e->th, NULL);
	pthread_mutex_lock(&e->mu);
	/* jobs submitted after the thread ended */
	for (struct infer_job *j = e->qhead; j; j = j->qnext)
		finish_queued_locked(e, j, "cancelled");
	e->qhead = e->qtail = NULL;
	eng_embed_cancel_locked(e);
	while (e->outstanding > 0)
		pthread_cond_wait(&e->done, &e->mu);
	pthread_mutex_unlock(&e->mu);
	engine_free(e);
}

void infer_get_info(const struct infer_engine *e, struct infer_info *info)
{
	info->name = e->m->name;
	info->arch = e->m->hp.arch == LLAMA_ARCH_QWEN2 ? "qwen2" : e->m->hp.arch == LLAMA_ARCH_QWEN3 ? "qwen3" : "llama";
	info->weight_type = ggml_type_name(e->m->main_type);
	info->backend = e->backend_desc;
	info->chat_format = chat_format_name(e->chat);
	info->n_ctx = e->n_ctx;
	info->n_ctx_train = e->m->hp.n_ctx_train;
	info->n_vocab = e->m->hp.n_vocab;
	info->n_slots = e->n_slots;
	info->bos = tok_bos(e->m->vocab);
	info->eos = tok_eos(e->m->vocab);
	info->weight_bytes = e->m->weight_bytes;
	info->n_embd = e->m->hp.dim;
	info->embeddings = e->be->embed != NULL && !e->vocab_only;
}

allot_err infer_tokenize(const struct infer_engine *e, const char *text, size_t len,
			 bool add_bos, bool parse_special, int32_t **ids, size_t *n)
{
	size_t cap = 0;
	allot_err rc;

	*ids = NULL;
	*n = 0;
	rc = tok_encode(e->m->vocab, text, len, add_bos && tok_add_bos(e->m->vocab), parse_special, ids, n, &cap);
	if (rc != ALLOT_OK) {
		free(*ids);
		*ids = NULL;
		*n = 0;
	}
	return rc;
}

allot_err infer_detokenize(const struct infer_engine *e, const int32_t *ids, size_t n,
			   char **text, size_t *len)
{
	struct buf raw = BUF_INIT, out = BUF_INIT;
	struct utf8_stream st = UTF8_STREAM_INIT;

	for (size_t i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= e->m->hp.n_vocab)
			return ALLOT_E_INVALID;
	tok_decode(e->m->vocab, ids, n, false, &raw);
	utf8_stream_push(&st, buf_str(&raw), raw.len, &out);
	utf8_stream_flush(&st, &out);
	buf_release(&raw);
	if (out.oom) {
		buf_release(&out);
		return ALLOT_E_NOMEM;
	}
	*text = buf_detach(&out, len);
	return *text ? ALLOT_OK : ALLOT_E_NOMEM;
}

allot_err infer_chat(const struct infer_engine *e, const struct chat_msg *msgs, size_t n,
		     char **text, int32_t **ids, size_t *n_ids)
{
	const struct tok_vocab *v = e->m->vocab;
	struct buf b = BUF_INIT;
	char bos[64] = "", eos[64] = "", date[CHAT_DATE_MAX];
	size_t l;
	const char *s;
	allot_err rc;
	bool add_bos;

	if (tok_bos(v) >= 0 && (s = tok_text(v, tok_bos(v), &l)) && l < sizeof bos)
		memcpy(bos, s, l), bos[l] = 0;
	if (tok_eos(v) >= 0 && (s = tok_text(v, tok_eos(v), &l)) && l < sizeof eos)
		memcpy(eos, s, l), eos[l] = 0;
	chat_template_date(e->m->chat_template, date); /* today's, for templates that ask */
	rc = chat_render(e->chat, msgs, n, bos, eos, date, &b);
	if (rc != ALLOT_OK) {
		buf_release(&b);
		return rc;
	}
	add_bos = tok_add_bos(v) && !(bos[0] && strncmp(buf_str(&b), bos, strlen(bos)) == 0);
	rc = infer_tokenize(e, buf_str(&b), b.len, add_bos, true, ids, n_ids);
	if (rc == ALLOT_OK && text)
		*text = buf_detach(&b, NULL);
	buf_release(&b);
	return rc;
}

static void job_free(struct infer_job *j)
{
	if (!j)
		return;
	free(j->prompt);
	for (size_t i = 0; i < j->n_stop; i++)
		free(j->stop[i]);
	for (int i = 0; j->seq && i < j->n; i++) {
		buf_release(&j->seq[i].text);
		free(j->seq[i].count);
		free(j->seq[i].uniq);
		free(j->seq[i].lp);
	}
	free(j->seq);
	free(j->bias);
	jsong_schema_free(j->schema);
	free(j);
}

static bool bad_penalty(float x)
{
	return !isfinite(x) || x < -2 || x > 2;
}

static allot_err check_request(const struct infer_engine *e, const struct infer_request *r)
{
	if (!r->prompt || r->n_prompt == 0 || r->n_stop > INFER_MAX_STOP || (r->n_stop && !r->stop) ||
	    !isfinite(r->temperature) || !isfinite(r->top_p) || !isfinite(r->min_p) || r->min_p > 1 ||
	    r->n < 0 || r->n > INFER_MAX_N || bad_penalty(r->presence_penalty) ||
	    bad_penalty(r->frequency_penalty) || r->n_logit_bias > INFER_MAX_BIAS ||
	    (r->n_logit_bias && !r->logit_bias) || r->top_logprobs < 0 ||
	    r->top_logprobs > INFER_MAX_TOP_LOGPROBS ||
	    (r->format != INFER_FMT_TEXT && r->format != INFER_FMT_JSON_OBJECT &&
	     r->format != INFER_FMT_JSON_SCHEMA) ||
	    (r->format == INFER_FMT_JSON_SCHEMA && !r->json_schema))
		return ALLOT_E_INVALID;
	if (e->vocab_only)
		return ALLOT_E_UNAVAILABLE;
	if (r->n > e->n_slots)
		return ALLOT_E_INVALID;
	if (r->n_prompt >= (size_t)e->n_ctx)
		return ALLOT_E_TOO_LARGE;
	for (size_t i = 0; i < r->n_prompt; i++)
		if (r->prompt[i] < 0 || r->prompt[i] >= e->m->hp.n_vocab)
			return ALLOT_E_INVALID;
	for (size_t i = 0; i < r->n_stop; i++)
		if (!r->stop[i] || !r->stop[i][0] || strlen(r->stop[i]) > INFER_MAX_STOP_LEN)
			return ALLOT_E_INVALID;
	for (size_t i = 0; i < r->n_logit_bias; i++)
		if (r->logit_bias[i].id < 0 || r->logit_bias[i].id >= e->m->hp.n_vocab ||
		    !(r->logit_bias[i].bias >= -100 && r->logit_bias[i].bias <= 100))
			return ALLOT_E_INVALID;
	return ALLOT_OK;
}

/* The request's inputs copied into j. */
static allot_err copy_request(struct infer_job *j, const struct infer_request *r)
{
	char msg[256];

	j->prompt = malloc(r->n_prompt * sizeof *j->prompt);
	if (!j->prompt)
		return ALLOT_E_NOMEM;
	memcpy(j->prompt, r->prompt, r->n_prompt * sizeof *j->prompt);
	j->n_prompt = r->n_prompt;
	for (size_t i = 0; i < r->n_stop; i++) {
		j->stop[i] = strdup(r->stop[i]);
		if (!j->stop[i])
			return ALLOT_E_NOMEM;
		j->stop_len[i] = strlen(r->stop[i]);
		j->n_stop = i + 1;
	}
	if (r->n_logit_bias) {
		j->bias = malloc(r->n_logit_bias * sizeof *j->bias);
		if (!j->bias)
			return ALLOT_E_NOMEM;
		for (size_t i = 0; i < r->n_logit_bias; i++)
			j->bias[i] = (struct sample_bias){r->logit_bias[i].id, r->logit_bias[i].bias};
		j->n_bias = r->n_logit_bias;
	}
	if (r->format == INFER_FMT_JSON_SCHEMA)
		return jsong_schema_compile(r->json_schema, r->json_schema_len, &j->schema, msg, sizeof msg);
	return ALLOT_OK;
}

/* The job's sequences, each with its own generator (sequence 0 seeded
 * exactly as a single sequence would be). */
static allot_err make_seqs(struct infer_engine *e, struct infer_job *j, const struct infer_request *r)
{
	const struct tok_vocab *v = e->m->vocab;
	uint64_t seed = r->seed >= 0 ? (uint64_t)r->seed
		: (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20) ^ (atomic_fetch_add(&e->seed_ctr, 1) << 40);
	bool penalties = r->presence_penalty != 0 || r->frequency_penalty != 0;

	j->n = r->n > 0 ? r->n : 1;
	j->seq = calloc((size_t)j->n, sizeof *j->seq);
	if (!j->seq)
		return ALLOT_E_NOMEM;
	for (int i = 0; i < j->n; i++) {
		struct infer_seq *q = &j->seq[i];

		q->j = j;
		q->index = i;
		q->slot = -1;
		q->text = (struct buf)BUF_INIT;
		q->us = (struct utf8_stream)UTF8_STREAM_INIT;
		sample_seed(&q->rng, seed + (uint64_t)i * 0xd1b54a32d192ed03ull);
		q->strip_space = tok_strips_leading_space(v) && r->n_prompt == 1 && r->prompt[0] == tok_bos(v);
		if (penalties) {
			q->count = calloc((size_t)e->m->hp.n_vocab, sizeof *q->count);
			q->uniq = malloc((size_t)e->m->hp.n_vocab * sizeof *q->uniq);
			if (!q->count || !q->uniq)
				return ALLOT_E_NOMEM;
		}
		if (r->format != INFER_FMT_TEXT)
			jsong_init(&q->g, j->schema, true);
	}
	return ALLOT_OK;
}

allot_err infer_submit(struct infer_engine *e, const struct infer_request *r,
		       struct infer_job **out)
{
	struct infer_job *j;
	allot_err rc = check_request(e, r);

	if (rc != ALLOT_OK)
		return rc;
	j = calloc(1, sizeof *j);
	if (!j)
		return ALLOT_E_NOMEM;
	j->e = e;
	j->max_tokens = r->max_tokens;
	j->sp = (struct sample_params){r->temperature, r->top_k, r->top_p > 0 ? r->top_p : 1.0f, r->min_p};
	j->on_text = r->on_text;
	j->on_chunk = r->on_chunk;
	j->ctx = r->ctx;
	j->presence = r->presence_penalty;
	j->frequency = r->frequency_penalty;
	j->logprobs = r->logprobs;
	j->top_logprobs = r->logprobs ? r->top_logprobs : 0;
	j->format = r->format;
	atomic_init(&j->cancel, false);
	if ((rc = copy_request(j, r)) != ALLOT_OK || (rc = make_seqs(e, j, r)) != ALLOT_OK) {
		job_free(j);
		return rc == ALLOT_E_NOMEM ? rc : ALLOT_E_INVALID;
	}
	pthread_mutex_lock(&e->mu);
	if (e->stopping) {
		pthread_mutex_unlock(&e->mu);
		job_free(j);
		return ALLOT_E_UNAVAILABLE;
	}
	if (e->qtail)
		e->qtail->qnext = j;
	else
		e->qhead = j;
	e->qtail = j;
	e->outstanding++;
	j->submitted_us = time_mono_us();
	metrics_gauge_add(MG_INFER_QUEUED, 1);
	metrics_add(MC_INFER_REQUESTS, 1);
	pthread_cond_signal(&e->work);
	pthread_mutex_unlock(&e->mu);
	*out = j;
	return ALLOT_OK;
}

void infer_cancel(struct infer_job *j)
{
	atomic_store(&j->cancel, true);
	pthread_mutex_lock(&j->e->mu);
	pthread_cond_signal(&j->e->work);
	pthread_mutex_unlock(&j->e->mu);
}

allot_err infer_wait(struct infer_job *j, struct infer_result *res)
{
	struct infer_engine *e = j->e;
	allot_err rc = ALLOT_OK;

	pthread_mutex_lock(&e->mu);
	while (!j->done)
		pthread_cond_wait(&e->done, &e->mu);
	e->outstanding--;
	pthread_cond_broadcast(&e->done);
	pthread_mutex_unlock(&e->mu);
	memset(res, 0, sizeof *res);
	res->prompt_tokens = (int)j->n_prompt;
	res->choices = calloc((size_t)j->n, sizeof *res->choices);
	if (!res->choices) {
		job_free(j);
		return ALLOT_E_NOMEM;
	}
	res->n_choices = j->n;
	for (int i = 0; i < j->n; i++) {
		struct infer_seq *q = &j->seq[i];
		struct infer_choice *c = &res->choices[i];

		c->text = buf_detach(&q->text, &c->text_len);
		if (!c->text)
			rc = ALLOT_E_NOMEM;
		c->completion_tokens = q->n_gen;
		c->finish_reason = q->finish ? q->finish : "cancelled";
		c->logprobs = q->lp;
		c->n_logprobs = q->n_lp;
		q->lp = NULL;
		res->completion_tokens += q->n_gen;
	}
	res->text = res->choices[0].text;
	res->text_len = res->choices[0].text_len;
	res->finish_reason = res->choices[0].finish_reason;
	job_free(j);
	if (rc != ALLOT_OK)
		infer_result_release(res);
	return rc;
}

allot_err infer_generate(struct infer_engine *e, const struct infer_request *r,
			 struct infer_result *res)
{
	struct infer_job *j;
	allot_err rc = infer_submit(e, r, &j);

	if (rc != ALLOT_OK)
		return rc;
	return infer_wait(j, res);
}

void infer_result_release(struct infer_result *res)
{
	if (res->choices) {
		for (int i = 0; i < res->n_choices; i++) {
			free(res->choices[i].text);
			free(res->choices[i].logprobs);
		}
		free(res->choices);
	} else {
		free(res->text);
	}
	memset(res, 0, sizeof *res);
}

const char *infer_token_bytes(const struct infer_engine *e, int32_t id, size_t *len)
{
	if (id < 0 || id >= e->m->hp.n_vocab)
		return NULL;
	return tok_piece(e->m->vocab, id, false, len);
}

allot_err infer_schema_check(const char *schema, size_t len, char *msg, size_t msgsz)
{
	struct jsong_schema *s;
	allot_err rc = jsong_schema_compile(schema, len, &s, msg, msgsz);

	jsong_schema_free(s);
	return rc;
}
