/* engine_int.h — the engine's private structures, shared by engine.c (the
 * queue, the slots and the batching loop), engine_seq.c (what happens to
 * one sequence per sampled token) and engine_embed.c (embeddings).  Not
 * for other modules. */
#ifndef ALLOT_INFER_ENGINE_INT_H
#define ALLOT_INFER_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "infer/engine.h"
#include "infer/jsong.h"
#include "infer/sample.h"
#include "infer/utf8.h"

struct infer_job;

/* One sequence of a job (a job has request.n of them). */
struct infer_seq {
	struct infer_job *j;
	int index;
	int slot;               /* its slot while admitted, else -1 */
	struct sample_rng rng;
	/* engine thread only */
	size_t n_fed;           /* prompt tokens processed in its own slot */
	bool waiting;           /* waits for sequence 0's prefill (copy_seq) */
	bool decoding;          /* the prompt is done; next_tok is to be fed */
	int32_t next_tok;
	int n_gen;
	bool strip_space;       /* SentencePiece: drop the space of the first piece */
	struct utf8_stream us;
	struct buf text;        /* valid UTF-8 produced so far */
	size_t emitted;         /* bytes of text passed to on_text / on_chunk */
	int32_t *count;         /* [n_vocab] occurrences (penalties), or NULL */
	int32_t *uniq;          /* [n_uniq] distinct tokens generated */
	size_t n_uniq;
	struct infer_logprob *lp; /* [n_lp] (request.logprobs) */
	size_t n_lp, cap_lp, lp_sent;
	struct jsong g;         /* constrained sampling: the document so far */
	bool ended;
	const char *finish;
};

struct infer_job {
	struct infer_engine *e;
	/* the request, copied at submit */
	int32_t *prompt;
	size_t n_prompt;
	int max_tokens;
	struct sample_params sp;
	char *stop[INFER_MAX_STOP];
	size_t stop_len[INFER_MAX_STOP], n_stop;
	int (*on_text)(void *ctx, const char *text, size_t len);
	int (*on_chunk)(void *ctx, const struct infer_chunk *c);
	void *ctx;
	float presence, frequency;
	struct sample_bias *bias;
	size_t n_bias;
	bool logprobs;
	int top_logprobs;
	enum infer_format format;
	struct jsong_schema *schema;  /* FMT_JSON_SCHEMA */
	atomic_bool cancel;
	int64_t submitted_us;   /* time_mono_us at submit (time to first token) */
	int n;
	struct infer_seq *seq;  /* [n] */
	int n_ended;            /* engine thread */
	/* under e->mu */
	bool done;
	struct infer_job *qnext;
};

/* An embedding request (engine_embed.c). */
struct infer_ejob;

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
	struct infer_job *qhead, *qtail;  /* waiting for slots (under mu) */
	struct infer_ejob *ehead, *etail; /* embeddings waiting (under mu) */
	int outstanding;                  /* submitted, not yet collected (under mu) */
	bool stopping;                    /* under mu */
	atomic_uint_fast64_t seed_ctr;
	/* engine thread only */
	struct infer_seq **slot;          /* [n_slots] */
	int rr;                           /* round-robin start for prompt chunks */
	int32_t *bt, *bp, *bs;            /* [step_cap] batch tokens, positions, slots */
	uint8_t *bw;                      /* [step_cap] wants logits */
	float *logits;                    /* [n_slots][n_vocab] */
	float *wl;                        /* [n_vocab] one sequence's processed logits */
	struct sample_cand *cand;         /* [n_vocab] */
	float *hidden;                    /* [step_cap][dim] embeddings (NULL: none) */
};

/* engine_seq.c: one sequence's share of a forward pass's logits: sample,
 * record, stream, maybe finish (engine thread). */
void eng_seq_logits(struct infer_engine *e, struct infer_seq *q, const float *logits);
/* Ends an admitted sequence: the rest of its text out (flush), then ended;
 * the job is done when its last sequence ends (engine thread). */
void eng_seq_finish(struct infer_engine *e, struct infer_seq *q, const char *reason, bool flush);

/* engine_embed.c */
/* Processes one chunk of the first queued embedding request, if any
 * (engine thread); true when it did. */
bool eng_embed_step(struct infer_engine *e);
/* Ends every queued embedding request with ALLOT_E_UNAVAILABLE (under mu). */
void eng_embed_cancel_locked(struct infer_engine *e);

#endif
