/* engine.c — request queue, sequence slots and the continuous-batching loop
 * of the bundled inference engine. */
#include "infer/engine.h"

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
#include "infer/model.h"
#include "infer/sample.h"
#include "infer/tok.h"
#include "infer/utf8.h"

struct infer_job {
	struct infer_engine *e;
	/* the request, copied at submit */
	int32_t *prompt;
	size_t n_prompt;
	int max_tokens;
	struct sample_params sp;
	struct sample_rng rng;
	char *stop[INFER_MAX_STOP];
	size_t stop_len[INFER_MAX_STOP], n_stop;
	int (*on_text)(void *ctx, const char *text, size_t len);
	void *ctx;
	atomic_bool cancel;
	int64_t submitted_us;   /* time_mono_us at submit (time to first token) */
	/* engine thread only */
	size_t n_fed;           /* prompt tokens processed */
	bool decoding;          /* the prompt is done; next_tok is to be fed */
	int32_t next_tok;
	int n_gen;
	bool strip_space;       /* SentencePiece: drop the space of the first piece */
	struct utf8_stream us;
	struct buf text;        /* valid UTF-8 produced so far */
	size_t emitted;         /* bytes of text passed to on_text */
	/* under e->mu */
	bool done;
	const char *finish;
	struct infer_job *qnext;
};

struct infer_engine {
	struct llama_model *m;
	const struct infer_backend_ops *be;
	void *bstate;
	int n_slots, n_ctx, max_batch, step_cap;
	enum chat_format chat;
	bool vocab_only;                  /* infer_params.vocab_only: no backend */
	char backend_desc[64];
	pthread_t th;
	bool th_started;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	struct infer_job *qhead, *qtail;  /* waiting for a slot (under mu) */
	int outstanding;                  /* submitted, not yet collected (under mu) */
	bool stopping;                    /* under mu */
	atomic_uint_fast64_t seed_ctr;
	/* engine thread only */
	struct infer_job **slot;          /* [n_slots] */
	int rr;                           /* round-robin start for prompt chunks */
	int32_t *bt, *bp, *bs;            /* [step_cap] batch tokens, positions, slots */
	uint8_t *bw;                      /* [step_cap] wants logits */
	struct infer_job **bj;            /* [step_cap] */
	float *logits;                    /* [n_slots][n_vocab] */
	struct sample_cand *cand;         /* [n_vocab] */
};

/* ---- finishing ---------------------------------------------------------------- */

enum emit_rc { EMIT_OK, EMIT_STOP, EMIT_CANCEL };

/* Passes newly produced text to on_text, holding back a possible start of
 * a stop sequence (unless final) and cutting at a complete one. */
static enum emit_rc emit(struct infer_job *j, bool final)
{
	size_t len = j->text.len, end = len, hold = 0;
	const char *t = buf_str(&j->text);
	enum emit_rc rc = EMIT_OK;

	for (size_t s = 0; s < j->n_stop; s++) {
		const char *hit = memmem(t + j->emitted, len - j->emitted, j->stop[s], j->stop_len[s]);

		if (hit && (size_t)(hit - t) < end) {
			end = (size_t)(hit - t);
			rc = EMIT_STOP;
		}
	}
	if (rc == EMIT_STOP) {
		j->text.len = end;
		j->text.data[end] = 0;
	} else if (!final) {
		for (size_t s = 0; s < j->n_stop; s++)
			for (size_t l = j->stop_len[s] - 1; l > hold && l > 0; l--)
				if (l <= len - j->emitted && memcmp(t + len - l, j->stop[s], l) == 0) {
					hold = l;
					break;
				}
		end = len - hold;
	}
	if (end > j->emitted) {
		if (j->on_text && j->on_text(j->ctx, t + j->emitted, end - j->emitted) != 0 && rc == EMIT_OK)
			rc = EMIT_CANCEL;
		j->emitted = end;
	}
	return rc;
}

/* Ends an admitted job: the rest of its text out, then done (engine thread). */
static void finish(struct infer_engine *e, int s, const char *reason, bool flush)
{
	struct infer_job *j = e->slot[s];

	metrics_gauge_add(MG_INFER_ACTIVE, -1);
	if (flush) {
		utf8_stream_flush(&j->us, &j->text);
		if (emit(j, true) == EMIT_STOP)
			reason = "stop";
	}
	e->slot[s] = NULL;
	pthread_mutex_lock(&e->mu);
	j->finish = reason;
	j->done = true;
	pthread_cond_broadcast(&e->done);
	pthread_mutex_unlock(&e->mu);
}

/* Ends a job that never got a slot (under mu). */
static void finish_queued_locked(struct infer_engine *e, struct infer_job *j, const char *reason)
{
	metrics_gauge_add(MG_INFER_QUEUED, -1);
	j->finish = reason;
	j->done = true;
	pthread_cond_broadcast(&e->done);
}

/* ---- one step ---------------------------------------------------------------- */

static void on_logits(struct infer_engine *e, int s, const float *logits)
{
	struct infer_job *j = e->slot[s];
	const struct tok_vocab *v = e->m->vocab;
	int32_t tok = sample_next(logits, e->m->hp.n_vocab, &j->sp, &j->rng, e->cand);
	size_t len;
	const char *piece;
	enum emit_rc rc;

	j->n_gen++;
	metrics_add(MC_INFER_GENERATED_TOKENS, 1);
	if (j->n_gen == 1)
		metrics_observe(MH_INFER_TTFT, time_mono_us() - j->submitted_us);
	j->decoding = true;
	j->next_tok = tok;
	if (tok_is_eog(v, tok)) {
		finish(e, s, "stop", true);
		return;
	}
	piece = tok_piece(v, tok, false, &len);
	if (j->strip_space && len && piece[0] == ' ') {
		piece++;
		len--;
	}
	j->strip_space = false;
	utf8_stream_push(&j->us, piece, len, &j->text);
	rc = emit(j, false);
	if (rc == EMIT_STOP) {
		finish(e, s, "stop", false);
	} else if (rc == EMIT_CANCEL || atomic_load(&j->cancel)) {
		finish(e, s, "cancelled", false);
	} else if ((j->max_tokens > 0 && j->n_gen >= j->max_tokens) ||
		   j->n_prompt + (size_t)j->n_gen >= (size_t)e->n_ctx) {
		finish(e, s, "length", true);
	}
}

static void step(struct infer_engine *e)
{
	struct infer_batch b = {0, e->bt, e->bp, e->bs, e->bw};
	int n = 0, k = 0;

	for (int s = 0; s < e->n_slots; s++)
		if (e->slot[s] && atomic_load(&e->slot[s]->cancel))
			finish(e, s, "cancelled", false);
	/* decoding sequences first: one token each */
	for (int s = 0; s < e->n_slots; s++) {
		struct infer_job *j = e->slot[s];

		if (!j || !j->decoding)
			continue;
		e->bt[n] = j->next_tok;
		e->bp[n] = (int32_t)(j->n_prompt + (size_t)j->n_gen - 1);
		e->bs[n] = s;
		e->bw[n] = 1;
		e->bj[n++] = j;
	}
	int ndec = n; /* the rest are prompt tokens */
	/* prompt chunks in the room left, round-robin between sequences */
	for (int i = 0; i < e->n_slots && n < e->step_cap; i++) {
		int s = (e->rr + i) % e->n_slots;
		struct infer_job *j = e->slot[s];

		if (!j || j->decoding)
			continue;
		while (j->n_fed < j->n_prompt && n < e->step_cap) {
			e->bt[n] = j->prompt[j->n_fed];
			e->bp[n] = (int32_t)j->n_fed;
			e->bs[n] = s;
			e->bw[n] = j->n_fed + 1 == j->n_prompt;
			e->bj[n++] = j;
			j->n_fed++;
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
				finish(e, s, "cancelled", false);
		return;
	}
	for (int t = 0; t < n; t++)
		if (e->bw[t])
			on_logits(e, e->bs[t], e->logits + (size_t)k++ * e->m->hp.n_vocab);
}

static void *engine_main(void *arg)
{
	struct infer_engine *e = arg;

	for (;;) {
		int active = 0;

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
		for (int s = 0; s < e->n_slots; s++) {
			if (!e->slot[s] && e->qhead) {
				metrics_gauge_add(MG_INFER_QUEUED, -1);
				metrics_gauge_add(MG_INFER_ACTIVE, 1);
				e->slot[s] = e->qhead;
				e->qhead = e->qhead->qnext;
				if (!e->qhead)
					e->qtail = NULL;
			}
			active += e->slot[s] != NULL;
		}
		if (e->stopping) {
			pthread_mutex_unlock(&e->mu);
			for (int s = 0; s < e->n_slots; s++)
				if (e->slot[s])
					finish(e, s, "cancelled", false);
			return NULL;
		}
		if (!active) {
			pthread_cond_wait(&e->work, &e->mu);
			pthread_mutex_unlock(&e->mu);
			continue;
		}
		pthread_mutex_unlock(&e->mu);
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
	free(e->bt); free(e->bp); free(e->bs); free(e->bw); free(e->bj);
	free(e->logits);
	free(e->cand);
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
					   .n_slots = e->n_slots, .n_ctx = e->n_ctx,
					   .max_batch = e->step_cap};
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
	e->bj = malloc((size_t)e->step_cap * sizeof *e->bj);
	e->logits = malloc((size_t)e->n_slots * e->m->hp.n_vocab * sizeof *e->logits);
	e->cand = malloc((size_t)e->m->hp.n_vocab * sizeof *e->cand);
	if (!e->slot || !e->bt || !e->bp || !e->bs || !e->bw || !e->bj || !e->logits || !e->cand) {
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
	char bos[64] = "", eos[64] = "";
	size_t l;
	const char *s;
	allot_err rc;
	bool add_bos;

	if (tok_bos(v) >= 0 && (s = tok_text(v, tok_bos(v), &l)) && l < sizeof bos)
		memcpy(bos, s, l), bos[l] = 0;
	if (tok_eos(v) >= 0 && (s = tok_text(v, tok_eos(v), &l)) && l < sizeof eos)
		memcpy(eos, s, l), eos[l] = 0;
	rc = chat_render(e->chat, msgs, n, bos, eos, &b);
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
	buf_release(&j->text);
	free(j);
}

allot_err infer_submit(struct infer_engine *e, const struct infer_request *r,
		       struct infer_job **out)
{
	struct infer_job *j;
	const struct tok_vocab *v = e->m->vocab;
	uint64_t seed;

	if (!r->prompt || r->n_prompt == 0 || r->n_stop > INFER_MAX_STOP || (r->n_stop && !r->stop) ||
	    !isfinite(r->temperature) || !isfinite(r->top_p) || !isfinite(r->min_p) || r->min_p > 1)
		return ALLOT_E_INVALID;
	if (e->vocab_only)
		return ALLOT_E_UNAVAILABLE;
	if (r->n_prompt >= (size_t)e->n_ctx)
		return ALLOT_E_TOO_LARGE;
	for (size_t i = 0; i < r->n_prompt; i++)
		if (r->prompt[i] < 0 || r->prompt[i] >= e->m->hp.n_vocab)
			return ALLOT_E_INVALID;
	for (size_t i = 0; i < r->n_stop; i++)
		if (!r->stop[i] || !r->stop[i][0] || strlen(r->stop[i]) > INFER_MAX_STOP_LEN)
			return ALLOT_E_INVALID;
	j = calloc(1, sizeof *j);
	if (!j)
		return ALLOT_E_NOMEM;
	j->e = e;
	j->prompt = malloc(r->n_prompt * sizeof *j->prompt);
	if (!j->prompt) {
		job_free(j);
		return ALLOT_E_NOMEM;
	}
	memcpy(j->prompt, r->prompt, r->n_prompt * sizeof *j->prompt);
	j->n_prompt = r->n_prompt;
	for (size_t i = 0; i < r->n_stop; i++) {
		j->stop[i] = strdup(r->stop[i]);
		if (!j->stop[i]) {
			job_free(j);
			return ALLOT_E_NOMEM;
		}
		j->stop_len[i] = strlen(r->stop[i]);
		j->n_stop = i + 1;
	}
	j->max_tokens = r->max_tokens;
	j->sp = (struct sample_params){r->temperature, r->top_k, r->top_p > 0 ? r->top_p : 1.0f, r->min_p};
	seed = r->seed >= 0 ? (uint64_t)r->seed
		: (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20) ^ (atomic_fetch_add(&e->seed_ctr, 1) << 40);
	sample_seed(&j->rng, seed);
	j->on_text = r->on_text;
	j->ctx = r->ctx;
	atomic_init(&j->cancel, false);
	j->strip_space = tok_strips_leading_space(v) && r->n_prompt == 1 && r->prompt[0] == tok_bos(v);
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

	pthread_mutex_lock(&e->mu);
	while (!j->done)
		pthread_cond_wait(&e->done, &e->mu);
	e->outstanding--;
	pthread_cond_broadcast(&e->done);
	pthread_mutex_unlock(&e->mu);
	memset(res, 0, sizeof *res);
	res->prompt_tokens = (int)j->n_prompt;
	res->completion_tokens = j->n_gen;
	res->finish_reason = j->finish;
	res->text = buf_detach(&j->text, &res->text_len);
	job_free(j);
	return res->text ? ALLOT_OK : ALLOT_E_NOMEM;
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
	free(res->text);
	res->text = NULL;
}
