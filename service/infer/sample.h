/* sample.h — choosing the next token from logits.
 *
 * temperature <= 0 (or top_k == 1) is greedy: the highest logit, the lowest
 * id on ties.  Otherwise, in this order: softmax(logits / temperature),
 * top-k (k > 0), min-p (drop tokens below min_p x the best probability),
 * top-p (the smallest set of most likely tokens whose mass reaches top_p),
 * then a draw from what remains, renormalised.  The draw uses the caller's
 * generator, so a seed gives the same tokens every time.
 */
#ifndef ALLOT_INFER_SAMPLE_H
#define ALLOT_INFER_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sample_params {
	float temperature;  /* <= 0: greedy */
	int top_k;          /* <= 0: off */
	float top_p;        /* >= 1: off */
	float min_p;        /* <= 0: off */
};

struct sample_rng { uint64_t s; };

void sample_seed(struct sample_rng *r, uint64_t seed);
/* uniform in [0, 1) */
float sample_uniform(struct sample_rng *r);

/* scratch: n entries, owned by the caller (struct sample_cand[n]). */
struct sample_cand { float p; int32_t id; };

int32_t sample_next(const float *logits, int n, const struct sample_params *p,
		    struct sample_rng *r, struct sample_cand *scratch);

/* ---- logit processing (issue 14), applied before sample_next ---- */

/* A logit_bias entry; bias <= SAMPLE_BAN bans the token (logit -inf). */
struct sample_bias { int32_t id; float bias; };
#define SAMPLE_BAN (-100.0f)

/* logits[id] += bias for each entry (ids < n assumed). */
void sample_apply_bias(float *logits, int n, const struct sample_bias *b, size_t nb);
/* OpenAI's penalties over the generated tokens: for each distinct token
 * uniq[i] that occurred count[uniq[i]] > 0 times,
 * logits[t] -= frequency x count + presence. */
void sample_apply_penalties(float *logits, const int32_t *uniq, size_t n_uniq,
			    const int32_t *count, float presence, float frequency);
/* log-sum-exp of logits[0..n) (in double; -inf when every logit is), so
 * that logits[t] - lse is t's log probability. */
double sample_logsumexp(const float *logits, int n);
/* The k most likely ids (k <= n), most likely first (ties: lower id),
 * into top[0..k). */
void sample_top(const float *logits, int n, int k, struct sample_cand *top);

#endif
