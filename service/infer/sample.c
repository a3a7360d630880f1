/* sample.c — greedy, temperature, top-k, min-p, top-p sampling. */
#include "infer/sample.h"

#include <math.h>
#include <stdlib.h>

void sample_seed(struct sample_rng *r, uint64_t seed)
{
	/* splitmix64 of the seed, never the all-zero state */
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	r->s = (z ^ (z >> 31)) | 1;
}

float sample_uniform(struct sample_rng *r)
{
	/* xorshift64* */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return (float)((r->s * 0x2545f4914f6cdd1dull) >> 40) / 16777216.0f;
}

static int argmax(const float *x, int n)
{
	int best = 0;

	for (int i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}

static int cmp_desc(const void *a, const void *b)
{
	const struct sample_cand *x = a, *y = b;

	if (x->p != y->p)
		return x->p > y->p ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* min-heap on p (ties: larger id is "smaller", so lower ids win) */
static int heap_less(const struct sample_cand *a, const struct sample_cand *b)
{
	return a->p < b->p || (a->p == b->p && a->id > b->id);
}

static void sift_down(struct sample_cand *h, int n, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		struct sample_cand t;

		if (l < n && heap_less(&h[l], &h[m])) m = l;
		if (r < n && heap_less(&h[r], &h[m])) m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

int32_t sample_next(const float *logits, int n, const struct sample_params *p,
		    struct sample_rng *r, struct sample_cand *c)
{
	float mx, sum = 0, pmax, cut = 0, mass = 0, u;
	int nc = 0;
	bool sorted = false;

	if (n <= 0)
		return 0;
	if (!(p->temperature > 0) || p->top_k == 1)
		return argmax(logits, n);
	mx = logits[argmax(logits, n)];
	for (int i = 0; i < n; i++)
		sum += expf((logits[i] - mx) / p->temperature);
	pmax = 1.0f / sum;
	if (p->min_p > 0)
		cut = p->min_p * pmax;
	if (p->top_k > 0 && p->top_k < n) {
		int k = p->top_k;

		for (int i = 0; i < n; i++) {
			struct sample_cand x = {expf((logits[i] - mx) / p->temperature) / sum, i};

			if (nc < k) {
				c[nc++] = x;
				if (nc == k)
					for (int j = k / 2 - 1; j >= 0; j--)
						sift_down(c, k, j);
			} else if (heap_less(&c[0], &x)) {
				c[0] = x;
				sift_down(c, k, 0);
			}
		}
		qsort(c, (size_t)nc, sizeof *c, cmp_desc);
		sorted = true;
	} else {
		/* tokens below (1 - top_p) / (n - 1) can never be in the nucleus */
		float pc = p->top_p < 1.0f && n > 1 ? (1.0f - p->top_p) / (float)(n - 1) : 0;
		float lim = cut > pc ? cut : pc;

		for (int i = 0; i < n; i++) {
			float pi = expf((logits[i] - mx) / p->temperature) / sum;

			if (pi >= lim)
				c[nc++] = (struct sample_cand){pi, i};
		}
		if (p->top_p < 1.0f) {
			qsort(c, (size_t)nc, sizeof *c, cmp_desc);
			sorted = true;
		}
	}
	/* min-p */
	if (cut > 0) {
		int k = 0;

		for (int i = 0; i < nc; i++)
			if (c[i].p >= cut)
				c[k++] = c[i];
		nc = k;
	}
	for (int i = 0; i < nc; i++)
		mass += c[i].p;
	/* top-p over what is left, renormalised */
	if (sorted && p->top_p < 1.0f && p->top_p > 0) {
		float cum = 0;

		for (int i = 0; i < nc; i++) {
			cum += c[i].p;
			if (cum >= p->top_p * mass) {
				nc = i + 1;
				mass = cum;
				break;
			}
		}
	}
	if (nc == 0)
		return argmax(logits, n);
	u = sample_uniform(r) * mass;
	for (int i = 0; i < nc; i++) {
		u -= c[i].p;
		if (u < 0)
			return c[i].id;
	}
	return c[nc - 1].id;
}

/* ---- logit processing ---------------------------------------------------- */

void sample_apply_bias(float *logits, int n, const struct sample_bias *b, size_t nb)
{
	for (size_t i = 0; i < nb; i++) {
		if (b[i].id < 0 || b[i].id >= n)
			continue;
		if (b[i].bias <= SAMPLE_BAN)
			logits[b[i].id] = -INFINITY;
		else
			logits[b[i].id] += b[i].bias;
	}
}

void sample_apply_penalties(float *logits, const int32_t *uniq, size_t n_uniq,
			    const int32_t *count, float presence, float frequency)
{
	for (size_t i = 0; i < n_uniq; i++) {
		int32_t t = uniq[i];

		if (count[t] > 0)
			logits[t] -= frequency * (float)count[t] + presence;
	}
}

double sample_logsumexp(const float *logits, int n)
{
	float mx = -INFINITY;
	double sum = 0;

	for (int i = 0; i < n; i++)
		if (logits[i] > mx)
			mx = logits[i];
	if (mx == -INFINITY)
		return -INFINITY;
	for (int i = 0; i < n; i++)
		sum += exp((double)logits[i] - mx);
	return mx + log(sum);
}

void sample_top(const float *logits, int n, int k, struct sample_cand *top)
{
	int nc = 0;

	if (k > n)
		k = n;
	if (k <= 0)
		return;
	for (int i = 0; i < n; i++) {
		struct sample_cand x = {logits[i], i};

		if (nc < k) {
			top[nc++] = x;
			if (nc == k)
				for (int j = k / 2 - 1; j >= 0; j--)
					sift_down(top, k, j);
		} else if (heap_less(&top[0], &x)) {
			top[0] = x;
			sift_down(top, k, 0);
		}
	}
	qsort(top, (size_t)nc, sizeof *top, cmp_desc);
}
