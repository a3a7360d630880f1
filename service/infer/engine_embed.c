/* engine_embed.c — embeddings: the mean of an input's final hidden states
 * (after the output norm), L2-normalised.
 *
 * An embedding request waits in its own queue; between generation steps
 * the engine thread runs one chunk of it through the backend's embed
 * operation in a slot of its own (the backend has n_slots + 1), so
 * generation is never stalled by more than one chunk.  Each input is
 * processed alone, in chunks of max_batch tokens from its start, whatever
 * the other inputs of the request: the arithmetic of an input's tokens
 * depends only on the input, so its vector is bit-identical alone or in
 * any batch (even where the kernels of a forward pass depend on the number
 * of tokens in it, as AMX-BF16 does).  Sums are in double, in token order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "infer/backend.h"
#include "infer/engine_int.h"
#include "infer/model.h"

struct infer_ejob {
	const int32_t *const *in;   /* the caller's (it waits in infer_embed) */
	const size_t *n_tok;
	size_t n_inputs;
	size_t cur, fed;            /* input being processed, its tokens done */
	double *acc;                /* [dim] sum of its hidden states */
	float *out;                 /* [n_inputs][dim] */
	allot_err rc;
	bool done;                  /* under mu */
	struct infer_ejob *next;    /* under mu */
};

static void ejob_end_locked(struct infer_engine *e, struct infer_ejob *x, allot_err rc)
{
	e->ehead = x->next;
	if (!e->ehead)
		e->etail = NULL;
	x->rc = rc;
	x->done = true;
	pthread_cond_broadcast(&e->done);
}

void eng_embed_cancel_locked(struct infer_engine *e)
{
	while (e->ehead)
		ejob_end_locked(e, e->ehead, ALLOT_E_UNAVAILABLE);
}

/* Input x->cur is done: its mean, normalised, into out. */
static void finish_input(struct infer_engine *e, struct infer_ejob *x)
{
	int dim = e->m->hp.dim;
	float *o = x->out + x->cur * (size_t)dim;
	double norm = 0, n = (double)x->n_tok[x->cur];

	for (int d = 0; d < dim; d++) {
		x->acc[d] /= n;
		norm += x->acc[d] * x->acc[d];
	}
	norm = sqrt(norm);
	for (int d = 0; d < dim; d++)
		o[d] = (float)(norm > 0 ? x->acc[d] / norm : 0);
	memset(x->acc, 0, (size_t)dim * sizeof *x->acc);
	x->cur++;
	x->fed = 0;
}

bool eng_embed_step(struct infer_engine *e)
{
	struct infer_ejob *x;
	struct infer_batch b = {0, e->bt, e->bp, e->bs, e->bw};
	int dim = e->m->hp.dim, n = 0;
	size_t len;

	pthread_mutex_lock(&e->mu);
	x = e->ehead;
	pthread_mutex_unlock(&e->mu);
	if (!x)
		return false;
	len = x->n_tok[x->cur];
	while (x->fed + (size_t)n < len && n < e->max_batch) {
		e->bt[n] = x->in[x->cur][x->fed + (size_t)n];
		e->bp[n] = (int32_t)(x->fed + (size_t)n);
		e->bs[n] = e->n_slots;   /* the embeddings' own slot */
		e->bw[n] = 1;
		n++;
	}
	b.n_tokens = n;
	if (e->be->embed(e->bstate, &b, e->hidden) != ALLOT_OK) {
		pthread_mutex_lock(&e->mu);
		ejob_end_locked(e, x, ALLOT_E_INTERNAL);
		pthread_mutex_unlock(&e->mu);
		return true;
	}
	for (int t = 0; t < n; t++)
		for (int d = 0; d < dim; d++)
			x->acc[d] += e->hidden[(size_t)t * dim + d];
	x->fed += (size_t)n;
	if (x->fed == len)
		finish_input(e, x);
	if (x->cur == x->n_inputs) {
		pthread_mutex_lock(&e->mu);
		ejob_end_locked(e, x, ALLOT_OK);
		pthread_mutex_unlock(&e->mu);
	}
	return true;
}

allot_err infer_embed(struct infer_engine *e, const int32_t *const *inputs,
		      const size_t *n_tokens, size_t n_inputs, float **out)
{
	struct infer_ejob x = {.in = inputs, .n_tok = n_tokens, .n_inputs = n_inputs};
	int dim = e->m->hp.dim;

	*out = NULL;
	if (n_inputs == 0 || !inputs || !n_tokens)
		return ALLOT_E_INVALID;
	for (size_t i = 0; i < n_inputs; i++) {
		if (n_tokens[i] == 0 || !inputs[i])
			return ALLOT_E_INVALID;
		if (n_tokens[i] > (size_t)e->n_ctx)
			return ALLOT_E_TOO_LARGE;
		for (size_t k = 0; k < n_tokens[i]; k++)
			if (inputs[i][k] < 0 || inputs[i][k] >= e->m->hp.n_vocab)
				return ALLOT_E_INVALID;
	}
	if (e->vocab_only)
		return ALLOT_E_UNAVAILABLE;
	if (!e->be->embed)
		return ALLOT_E_UNSUPPORTED;
	x.acc = calloc((size_t)dim, sizeof *x.acc);
	x.out = malloc(n_inputs * (size_t)dim * sizeof *x.out);
	if (!x.acc || !x.out) {
		free(x.acc);
		free(x.out);
		return ALLOT_E_NOMEM;
	}
	pthread_mutex_lock(&e->mu);
	if (e->stopping) {
		pthread_mutex_unlock(&e->mu);
		free(x.acc);
		free(x.out);
		return ALLOT_E_UNAVAILABLE;
	}
	if (e->etail)
		e->etail->next = &x;
	else
		e->ehead = &x;
	e->etail = &x;
	e->outstanding++;
	pthread_cond_signal(&e->work);
	while (!x.done)
		pthread_cond_wait(&e->done, &e->mu);
	e->outstanding--;
	pthread_cond_broadcast(&e->done);
	pthread_mutex_unlock(&e->mu);
	free(x.acc);
	if (x.rc != ALLOT_OK) {
		free(x.out);
		return x.rc;
	}
	*out = x.out;
	return ALLOT_OK;
}
