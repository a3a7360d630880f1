/* gen.h — a gated request on the bundled engine (api/gen.c): one sequence
 * per prompt and choice (prompts x n), each admitted with its own
 * reservation, run together (the engine batches them), and each settled
 * with what it actually used.  The caller formats the answer: from the
 * results (gen_run_sync) or as server-sent events written by a
 * struct gen_format (gen_run_stream). */
#ifndef ALLOT_API_GEN_H
#define ALLOT_API_GEN_H

#include "api/oai.h"
#include "api/sse.h"
#include "gate/gate.h"

struct gen_run;
struct infer_logprob; /* infer/engine.h, where the engine has logprobs */

struct gen_seq {
	struct gen_run *run;
	int index;                 /* the choice's index: prompt * n + j */
	size_t prompt;             /* which of the request's prompts */
	bool admitted, submitted, first;
	struct gate_ticket t;
	struct infer_job *job;
	allot_err err;             /* of the generation */
	bool has_res;              /* res holds a result to release */
	struct infer_result res;   /* valid when !err */
	int prompt_tokens, completion_tokens; /* settled */
	size_t text_offset;        /* streamed text so far (completions' logprobs) */
};

/* The events of a streamed answer; called with the stream's lock held. */
struct gen_format {
	/* optional: the format's state (g->fmt_state, for the stream and the
	 * whole answer alike), NULL on out of memory; freed by state_free */
	void *(*state_new)(const struct oai_req *r);
	void (*state_free)(void *state);
	/* optional: the events before any text (no lock needed: nothing
	 * else has the stream yet) */
	void (*start)(struct gen_run *g, struct buf *out);
	/* a piece of text of q, and the logprobs of its tokens (n_lp 0
	 * unless the request asked for logprobs) */
	void (*delta)(struct gen_run *g, struct gen_seq *q, const char *text, size_t len,
		      const struct infer_logprob *lp, size_t n_lp, struct buf *out);
	/* once every sequence ended and was settled */
	void (*end)(struct gen_run *g, struct buf *out);
};

struct gen_run {
	struct app *app;
	struct infer_engine *eng;
	enum oai_kind kind;
	bool include_usage;
	bool logprobs;             /* the request asked for them */
	size_t nseq;
	struct gen_seq seq[OAI_MAX_SEQS];
	char id[64];
	char model[STORE_ID_MAX];  /* as the client named it */
	int64_t created;           /* seconds */
	int64_t remaining;         /* X-Allot-Remaining after admission */
	char level[16];
	int prompt_tokens, completion_tokens; /* totals settled */
	struct sse_stream *s;      /* streaming only */
	const struct gen_format *fmt;
	void *fmt_state;           /* the format's, freed by fmt_free */
	void (*fmt_free)(void *fmt_state);
};

/* Admits every sequence of r (tokenized): on refusal nothing stays
 * reserved, *retry_after_s is set for rate limits and er says why.
 * OUT: *out from malloc(), gen_free it. */
allot_err gen_admit(struct app *app, const struct token_claims *cl, const struct oai_req *r,
		    struct gen_run **out, int *retry_after_s, struct oai_err *er);
void gen_free(struct gen_run *g);
/* Releases the reservations of a g that never ran, and frees it. */
void gen_cancel(struct gen_run *g);
/* Runs every sequence to its end and settles each; client_fd >= 0: stop
 * when that connection closes.  A generation error is in seq[i].err. */
void gen_run_sync(struct infer_engine *eng, const struct oai_req *r, struct gen_run *g,
		  int client_fd);
/* Starts the sequences and answers resp with their event stream; the
 * stream owns g from here on (also on failure: g is freed). */
allot_err gen_run_stream(struct infer_engine *eng, const struct oai_req *r, struct gen_run *g,
			 const struct gen_format *fmt, struct http_resp *resp, struct oai_err *er);
/* The logprobs of q's result (NULL, 0 without them). */
const struct infer_logprob *gen_logprobs(const struct gen_seq *q, size_t *n);
/* "stop" or "length" for an OpenAI finish_reason. */
const char *gen_finish(const struct gen_seq *q);

#endif
