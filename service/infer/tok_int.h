/* tok_int.h — private to the tokenizer's files: the vocabulary and its
 * string map (infer/tok.c), the id output, and the two encoders
 * (SentencePiece-style BPE in tok_spm.c, GPT-2 byte-level BPE with its
 * pre-tokenizers in tok_bpe.c).  Not for other modules. */
#ifndef ALLOT_INFER_TOK_INT_H
#define ALLOT_INFER_TOK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infer/tok.h"

/* A GPT-2 pre-tokenized word longer than this is split into chunks before
 * BPE, which is quadratic in the word length (pathological inputs only). */
#define TOK_MAX_WORD 512

struct smap_ent { const char *k; uint32_t len; int32_t v; };
struct smap { struct smap_ent *e; size_t cap; };

enum { PRE_GPT2, PRE_LLAMA3, PRE_QWEN2 };

struct tok_vocab {
	enum tok_kind kind;
	int32_t n;
	char **text;            /* [n] NUL-terminated copies */
	uint32_t *text_len;     /* [n] */
	float *score;           /* [n] */
	int32_t *type;          /* [n] */
	char **piece;           /* [n] decoded bytes */
	uint32_t *piece_len;    /* [n] */
	struct smap by_text;
	char **merge;           /* GPT-2: [n_merge] "a b" copies */
	size_t n_merge;
	struct smap merges;
	int32_t bos, eos, unk;
	bool add_bos, add_space_prefix;
	int pre;                /* GPT-2 pre-tokenizer: PRE_GPT2, PRE_LLAMA3, PRE_QWEN2 */
	int32_t byte_tok[256];  /* SPM: <0xXX> ids; GPT-2: single-byte symbol ids */
	int32_t *special;       /* control/user token ids, longest first */
	size_t n_special;
	int32_t eog[8];
	size_t n_eog;
};


struct ids { int32_t **p; size_t *n, *cap; bool oom; };

/* The value of key k[0..len) in m; -1 when absent. */
int32_t tok_smap_get(const struct smap *m, const char *k, size_t len);
/* GPT-2's map of bytes to printable code points. */
void tok_byte_cps(uint32_t cp[256]);
/* Appends id to the output; o->oom is set when memory runs out. */
void tok_ids_push(struct ids *o, int32_t id);
/* SentencePiece-style BPE of text[0..len) ("\u2581" for spaces, one
 * before the text when prefix, byte fallback), appended to o (tok_spm.c). */
void tok_spm_raw(const struct tok_vocab *v, const char *text, size_t len, bool prefix,
		 struct ids *o);
/* GPT-2 byte-level BPE of text[0..len), pre-tokenized as v->pre says,
 * appended to o (tok_bpe.c). */
void tok_bpe_raw(const struct tok_vocab *v, const char *text, size_t len, struct ids *o);

#endif
