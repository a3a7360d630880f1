/* engine_seq.c — what the engine does with one sequence's logits: logit
 * bias and penalties, logprobs, constrained (JSON) or free sampling, then
 * detokenization, stop sequences, streaming and the end of the sequence.
 * Engine thread only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "common/timeutil.h"
#include "infer/engine_int.h"
#include "infer/model.h"
#include "infer/tok.h"

/* ---- emitting ------------------------------------------------------------ */

enum emit_rc { EMIT_OK, EMIT_STOP, EMIT_CANCEL };

/* The logprobs of q not yet streamed and the text in t[from, to). */
static int deliver(struct infer_seq *q, const char *t, size_t from, size_t to)
{
	struct infer_job *j = q->j;
	struct infer_chunk c = {q->index, t + from, to - from, q->lp + q->lp_sent, q->n_lp - q->lp_sent};
	int rc = 0;

	if (j->on_chunk) {
		if (c.len || c.n_lp)
			rc = j->on_chunk(j->ctx, &c);
		q->lp_sent = q->n_lp;
	} else if (j->on_text && q->index == 0 && c.len) {
		rc = j->on_text(j->ctx, c.text, c.len);
	}
	return rc;
}

/* Passes newly produced text on, holding back a possible start of a stop
 * sequence (unless final) and cutting at a complete one. */
static enum emit_rc emit(struct infer_seq *q, bool final)
{
	struct infer_job *j = q->j;
	size_t len = q->text.len, end = len, hold = 0;
	const char *t = buf_str(&q->text);
	enum emit_rc rc = EMIT_OK;

	for (size_t s = 0; s < j->n_stop; s++) {
		const char *hit = memmem(t + q->emitted, len - q->emitted, j->stop[s], j->stop_len[s]);

		if (hit && (size_t)(hit - t) < end) {
			end = (size_t)(hit - t);
			rc = EMIT_STOP;
		}
	}
	if (rc == EMIT_STOP) {
		q->text.len = end;
		q->text.data[end] = 0;
	} else if (!final) {
		for (size_t s = 0; s < j->n_stop; s++)
			for (size_t l = j->stop_len[s] - 1; l > hold && l > 0; l--)
				if (l <= len - q->emitted && memcmp(t + len - l, j->stop[s], l) == 0) {
					hold = l;
					break;
				}
		end = len - hold;
	}
	if (end < q->emitted)
		end = q->emitted;
	if (deliver(q, t, q->emitted, end) != 0 && rc == EMIT_OK)
		rc = EMIT_CANCEL;
	q->emitted = end;
	return rc;
}

void eng_seq_finish(struct infer_engine *e, struct infer_seq *q, const char *reason, bool flush)
{
	struct infer_job *j = q->j;

	if (flush) {
		utf8_stream_flush(&q->us, &q->text);
		if (emit(q, true) == EMIT_STOP)
			reason = "stop";
	}
	if (q->slot >= 0) {
		e->slot[q->slot] = NULL;
		metrics_gauge_add(MG_INFER_ACTIVE, -1);
	}
	q->slot = -1;
	q->ended = true;
	q->finish = reason;
	if (++j->n_ended < j->n)
		return;
	pthread_mutex_lock(&e->mu);
	j->done = true;
	pthread_cond_broadcast(&e->done);
	pthread_mutex_unlock(&e->mu);
}

/* ---- choosing a token ---------------------------------------------------- */

/* The bytes token t adds to q's text. */
static const char *piece_of(const struct infer_engine *e, const struct infer_seq *q, int32_t t,
			    size_t *len)
{
	const char *p = tok_piece(e->m->vocab, t, false, len);

	if (q->strip_space && *len && p[0] == ' ') {
		p++;
		(*len)--;
	}
	return p;
}

/* Whether token t may come next in q's document with `left` tokens of
 * budget (this one included): its bytes continue the document, and what
 * is left can still close it. */
static bool json_ok(const struct infer_engine *e, const struct infer_seq *q, int32_t t, int left)
{
	struct jsong g;
	size_t len;
	const char *p;

	if (tok_is_eog(e->m->vocab, t))
		return false;
	p = piece_of(e, q, t, &len);
	if (len == 0)
		return false;
	jsong_copy(&g, &q->g);
	return jsong_feed(&g, p, len) && jsong_dist(&g) <= left - 1;
}

/* Samples from l (modified: disallowed tokens become -inf); -1 when no
 * token is allowed.  The unconstrained draw is tried first and kept when
 * allowed; otherwise the whole vocabulary is masked and drawn again.  The
 * mask first rules out tokens by their first byte (256 one-byte feeds), so
 * only tokens starting with a byte that may come next are fed whole. */
static int32_t choose_json(struct infer_engine *e, struct infer_seq *q, float *l, int left)
{
	int n = e->m->hp.n_vocab, ok = 0;
	int32_t t = sample_next(l, n, &q->j->sp, &q->rng, e->cand);
	bool first[256];

	if (json_ok(e, q, t, left))
		return t;
	for (int b = 0; b < 256; b++) {
		struct jsong g;
		char c = (char)b;

		jsong_copy(&g, &q->g);
		first[b] = jsong_feed(&g, &c, 1);
	}
	for (int v = 0; v < n; v++) {
		size_t len;
		const char *p = piece_of(e, q, v, &len);

		if (l[v] != -INFINITY && len && first[(unsigned char)p[0]] && json_ok(e, q, v, left))
			ok++;
		else
			l[v] = -INFINITY;
	}
	if (!ok) {
		/* only banned tokens could continue: allow them rather than fail */
		for (int v = 0; v < n; v++)
			if (json_ok(e, q, v, left)) {
				l[v] = 0;
				ok++;
			}
		if (!ok)
			return -1;
	}
	return sample_next(l, n, &q->j->sp, &q->rng, e->cand);
}

/* The next logprobs entry of q, its alternatives filled from l (the
 * distribution before any JSON mask); NULL when out of memory. */
static struct infer_logprob *logprob_entry(struct infer_engine *e, struct infer_seq *q,
					   const float *l, double lse)
{
	struct infer_logprob *x;
	int k = q->j->top_logprobs;

	if (q->n_lp == q->cap_lp) {
		size_t cap = q->cap_lp ? 2 * q->cap_lp : 16;
		struct infer_logprob *p = realloc(q->lp, cap * sizeof *p);

		if (!p)
			return NULL;   /* (the entry is dropped) */
		q->lp = p;
		q->cap_lp = cap;
	}
	x = &q->lp[q->n_lp];
	memset(x, 0, sizeof *x);
	if (k > e->m->hp.n_vocab)
		k = e->m->hp.n_vocab;
	sample_top(l, e->m->hp.n_vocab, k, e->cand);
	for (int i = 0; i < k; i++)
		x->top[i] = (struct infer_top_logprob){e->cand[i].id, (float)(e->cand[i].p - lse)};
	x->n_top = k;
	return x;
}

static void count_token(struct infer_seq *q, int32_t t)
{
	if (!q->count)
		return;
	if (q->count[t]++ == 0)
		q->uniq[q->n_uniq++] = t;
}

/* Tokens q may still sample, this one included. */
static int budget(const struct infer_engine *e, const struct infer_seq *q)
{
	int ctx_left = e->n_ctx - (int)q->j->n_prompt - q->n_gen;

	if (q->j->max_tokens > 0 && q->j->max_tokens - q->n_gen < ctx_left)
		return q->j->max_tokens - q->n_gen;
	return ctx_left;
}

void eng_seq_logits(struct infer_engine *e, struct infer_seq *q, const float *logits)
{
	struct infer_job *j = q->j;
	const struct tok_vocab *v = e->m->vocab;
	int n = e->m->hp.n_vocab;
	float *l = e->wl;
	double lse = 0;
	struct infer_logprob *x = NULL;
	float chosen;
	int32_t tok;
	size_t len;
	const char *piece;
	enum emit_rc rc;

	memcpy(l, logits, (size_t)n * sizeof *l);
	sample_apply_bias(l, n, j->bias, j->n_bias);
	if (q->count)
		sample_apply_penalties(l, q->uniq, q->n_uniq, q->count, j->presence, j->frequency);
	if (j->logprobs) {
		lse = sample_logsumexp(l, n);
		x = logprob_entry(e, q, l, lse);
	}
	if (j->format != INFER_FMT_TEXT)
		tok = choose_json(e, q, l, budget(e, q));
	else
		tok = sample_next(l, n, &j->sp, &q->rng, e->cand);
	if (tok < 0) {
		/* no token can continue the document within the budget */
		eng_seq_finish(e, q, "length", true);
		return;
	}
	if (x) {
		chosen = l[tok];
		x->id = tok;
		x->logprob = (float)(chosen - lse);
		q->n_lp++;
	}
	count_token(q, tok);
	q->n_gen++;
	metrics_add(MC_INFER_GENERATED_TOKENS, 1);
	if (q->n_gen == 1 && q == &j->seq[0])
		metrics_observe(MH_INFER_TTFT, time_mono_us() - j->submitted_us);
	q->decoding = true;
	q->next_tok = tok;
	if (tok_is_eog(v, tok)) {
		eng_seq_finish(e, q, "stop", true);
		return;
	}
	piece = piece_of(e, q, tok, &len);
	q->strip_space = false;
	if (j->format != INFER_FMT_TEXT)
		jsong_feed(&q->g, piece, len);   /* (checked by choose_json) */
	utf8_stream_push(&q->us, piece, len, &q->text);
	rc = emit(q, false);
	if (rc == EMIT_STOP) {
		eng_seq_finish(e, q, "stop", false);
	} else if (rc == EMIT_CANCEL || atomic_load(&j->cancel)) {
		atomic_store(&j->cancel, true);
		eng_seq_finish(e, q, "cancelled", false);
	} else if (j->format != INFER_FMT_TEXT && jsong_complete(&q->g)) {
		/* the document is complete: nothing may follow (the end of
		 * sequence is forced, without computing it) */
		eng_seq_finish(e, q, "stop", true);
	} else if (budget(e, q) <= 0) {
		eng_seq_finish(e, q, "length", true);
	}
}
