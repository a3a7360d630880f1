/* tok.h — tokenizers built from GGUF metadata.
 *
 * Two models: SentencePiece-style BPE over scores (tokenizer.ggml.model =
 * "llama": "▁" for spaces, a leading space, byte fallback <0xXX>) and
 * GPT-2-style byte-level BPE over ranked merges ("gpt2": Llama 3, Qwen,
 * SmolLM).  Control and user-defined tokens are recognised in the text only
 * when the caller asks (parse_special), e.g. for chat templates.
 *
 * A vocabulary is immutable after tok_load() and may be shared by threads.
 * Memory: everything is owned by the vocabulary (copied out of the GGUF
 * image), so the GGUF context may be freed afterwards.
 */
#ifndef ALLOT_INFER_TOK_H
#define ALLOT_INFER_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

struct gguf;
struct tok_vocab;

enum tok_kind { TOK_SPM = 1, TOK_GPT2 = 2 };

/* Token types as GGUF numbers them (tokenizer.ggml.token_type). */
enum tok_type {
	TOK_T_NORMAL = 1, TOK_T_UNKNOWN = 2, TOK_T_CONTROL = 3,
	TOK_T_USER = 4, TOK_T_UNUSED = 5, TOK_T_BYTE = 6,
};

/* Reads the vocabulary of g (err: one line, errlen bytes). */
allot_err tok_load(const struct gguf *g, struct tok_vocab **out, char *err, size_t errlen);
/* Builds a vocabulary directly (tests): tokens[n] with scores (SPM, may be
 * NULL) and types (may be NULL: all normal), merges[n_merges] as "a b"
 * (GPT-2 only). */
allot_err tok_build(enum tok_kind kind, const char *const *tokens, const float *scores,
		    const int32_t *types, size_t n, const char *const *merges, size_t n_merges,
		    int32_t bos, int32_t eos, struct tok_vocab **out);
void tok_free(struct tok_vocab *v);
/* GPT-2 vocabularies: the pre-tokenizer by its tokenizer.ggml.pre name
 * ("llama-bpe", "qwen2"; anything else: GPT-2's pattern). */
void tok_set_pre(struct tok_vocab *v, const char *pre);

enum tok_kind tok_kind(const struct tok_vocab *v);
int32_t tok_n_vocab(const struct tok_vocab *v);
int32_t tok_bos(const struct tok_vocab *v);   /* -1 if none */
int32_t tok_eos(const struct tok_vocab *v);   /* -1 if none */
/* Extra end-of-generation ids (e.g. <|eot_id|>, <|im_end|>) found in the
 * vocabulary besides eos. */
bool tok_is_eog(const struct tok_vocab *v, int32_t id);
bool tok_add_bos(const struct tok_vocab *v);  /* tokenizer.ggml.add_bos_token */
/* Id of the token whose text is exactly s, or -1. */
int32_t tok_find(const struct tok_vocab *v, const char *s, size_t len);
/* The token's raw text as stored in the vocabulary. */
const char *tok_text(const struct tok_vocab *v, int32_t id, size_t *len);

/* Tokenizes text[0..len) and appends the ids to *ids (a growing array from
 * realloc(); *n and *cap track it; the caller frees *ids).  add_bos puts
 * BOS first when the vocabulary has one. */
allot_err tok_encode(const struct tok_vocab *v, const char *text, size_t len,
		     bool add_bos, bool parse_special, int32_t **ids, size_t *n, size_t *cap);

/* The bytes that token id stands for: "▁" turned into a space, byte tokens
 * into their byte, byte-level symbols into bytes.  Control tokens give ""
 * unless special.  Never NULL; ids out of range give "". */
const char *tok_piece(const struct tok_vocab *v, int32_t id, bool special, size_t *len);
/* Appends the bytes of ids[0..n) to out.  When the vocabulary adds a
 * leading space (SPM), the space of the first piece after BOS (or at the
 * start) is dropped, as SentencePiece does. */
void tok_decode(const struct tok_vocab *v, const int32_t *ids, size_t n, bool special,
		struct buf *out);
/* Whether the SPM leading-space rule applies (see tok_decode). */
bool tok_strips_leading_space(const struct tok_vocab *v);

#endif
