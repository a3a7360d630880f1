/* tok.c — tokenizers from GGUF metadata (infer/tok.h): the vocabulary, its
 * string map, decoding, and encoding's outer loop over special tokens; the
 * encoders themselves are in tok_spm.c and tok_bpe.c. */
#include "infer/tok.h"
#include "infer/tok_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "infer/gguf.h"
#include "infer/unicode_tab.h"
#include "infer/utf8.h"

/* ---- string -> int map (open addressing) -------------------------------- */

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static bool smap_init(struct smap *m, size_t n)
{
	m->cap = 16;
	while (m->cap < 2 * n + 16)
		m->cap *= 2;
	m->e = calloc(m->cap, sizeof *m->e);
	return m->e != NULL;
}

/* Keeps the first value for a key. */
static void smap_put(struct smap *m, const char *k, size_t len, int32_t v)
{
	size_t i = hash(k, len) & (m->cap - 1);

	while (m->e[i].k) {
		if (m->e[i].len == len && memcmp(m->e[i].k, k, len) == 0)
			return;
		i = (i + 1) & (m->cap - 1);
	}
	m->e[i].k = k;
	m->e[i].len = (uint32_t)len;
	m->e[i].v = v;
}

int32_t tok_smap_get(const struct smap *m, const char *k, size_t len)
{
	size_t i;

	if (!m->e)
		return -1;
	i = hash(k, len) & (m->cap - 1);
	while (m->e[i].k) {
		if (m->e[i].len == len && memcmp(m->e[i].k, k, len) == 0)
			return m->e[i].v;
		i = (i + 1) & (m->cap - 1);
	}
	return -1;
}

/* ---- the vocabulary ------------------------------------------------------ */

void tok_free(struct tok_vocab *v)
{
	if (!v)
		return;
	for (int32_t i = 0; i < v->n; i++) {
		if (v->text)
			free(v->text[i]);
		if (v->piece)
			free(v->piece[i]);
	}
	free(v->text);
	free(v->text_len);
	free(v->score);
	free(v->type);
	free(v->piece);
	free(v->piece_len);
	free(v->by_text.e);
	for (size_t i = 0; i < v->n_merge; i++)
		free(v->merge[i]);
	free(v->merge);
	free(v->merges.e);
	free(v->special);
	free(v);
}

/* GPT-2's map of bytes to printable code points. */
void tok_byte_cps(uint32_t cp[256])
{
	uint32_t n = 0;

	for (int b = 0; b < 256; b++) {
		if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))
			cp[b] = (uint32_t)b;
		else
			cp[b] = 256 + n++;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

/* "<0xAB>" -> 0xAB, else -1 */
static int byte_token(const char *s, size_t n)
{
	if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
		return -1;
	if (hexval(s[3]) < 0 || hexval(s[4]) < 0)
		return -1;
	return hexval(s[3]) * 16 + hexval(s[4]);
}

static bool make_piece(struct tok_vocab *v, int32_t id, const uint32_t *inv /* cp -> byte+1, for cp < 512 */)
{
	const char *s = v->text[id];
	size_t n = v->text_len[id];
	struct buf b = BUF_INIT;
	int32_t t = v->type[id];

	if (t == TOK_T_BYTE && byte_token(s, n) >= 0) {
		buf_putc(&b, (char)byte_token(s, n));
	} else if (v->kind == TOK_SPM || t == TOK_T_USER || t == TOK_T_CONTROL || t == TOK_T_UNKNOWN) {
		for (size_t i = 0; i < n; i++) {
			if (v->kind == TOK_SPM && i + 2 < n && (unsigned char)s[i] == 0xe2 &&
			    (unsigned char)s[i + 1] == 0x96 && (unsigned char)s[i + 2] == 0x81) {
				buf_putc(&b, ' ');
				i += 2;
			} else {
				buf_putc(&b, s[i]);
			}
		}
	} else {
		size_t i = 0;

		while (i < n) {
			uint32_t cp;
			int l = utf8_decode((const unsigned char *)s + i, n - i, &cp);

			if (l > 0 && cp < 512 && inv[cp]) {
				buf_putc(&b, (char)(inv[cp] - 1));
				i += (size_t)l;
			} else {
				size_t k = l > 0 ? (size_t)l : 1;

				buf_append(&b, s + i, k);
				i += k;
			}
		}
	}
	if (b.oom)
		return false;
	v->piece_len[id] = (uint32_t)b.len;
	v->piece[id] = b.data ? buf_detach(&b, NULL) : strdup("");
	return v->piece[id] != NULL;
}

static int cmp_special(const void *a, const void *b, void *vv)
{
	const struct tok_vocab *v = vv;
	uint32_t la = v->text_len[*(const int32_t *)a], lb = v->text_len[*(const int32_t *)b];

	return la < lb ? 1 : la > lb ? -1 : 0;
}

/* Everything after the arrays are filled. */
static allot_err finish(struct tok_vocab *v)
{
	uint32_t cp[256], inv[512];

	if (!smap_init(&v->by_text, (size_t)v->n))
		return ALLOT_E_NOMEM;
	for (int32_t i = 0; i < v->n; i++)
		smap_put(&v->by_text, v->text[i], v->text_len[i], i);
	if (v->n_merge) {
		if (!smap_init(&v->merges, v->n_merge))
			return ALLOT_E_NOMEM;
		for (size_t i = 0; i < v->n_merge; i++)
			smap_put(&v->merges, v->merge[i], strlen(v->merge[i]), (int32_t)i);
	}
	tok_byte_cps(cp);
	memset(inv, 0, sizeof inv);
	for (int b = 0; b < 256; b++)
		inv[cp[b]] = (uint32_t)b + 1;
	for (int b = 0; b < 256; b++) {
		char s[8];

		if (v->kind == TOK_SPM) {
			snprintf(s, sizeof s, "<0x%02X>", b);
			v->byte_tok[b] = tok_smap_get(&v->by_text, s, 6);
		} else {
			int l = utf8_encode(cp[b], s);

			v->byte_tok[b] = tok_smap_get(&v->by_text, s, (size_t)l);
		}
	}
	v->piece = calloc((size_t)v->n, sizeof *v->piece);
	v->piece_len = calloc((size_t)v->n, sizeof *v->piece_len);
	v->special = calloc((size_t)v->n + 1, sizeof *v->special);
	if (!v->piece || !v->piece_len || !v->special)
		return ALLOT_E_NOMEM;
	for (int32_t i = 0; i < v->n; i++) {
		if (!make_piece(v, i, inv))
			return ALLOT_E_NOMEM;
		if ((v->type[i] == TOK_T_CONTROL || v->type[i] == TOK_T_USER) && v->text_len[i] > 0)
			v->special[v->n_special++] = i;
	}
	qsort_r(v->special, v->n_special, sizeof *v->special, cmp_special, v);
	if (v->eos >= 0)
		v->eog[v->n_eog++] = v->eos;
	{
		static const char *const eog_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|endoftext|>", "<end_of_turn>", "<|eom_id|>"};

		for (size_t i = 0; i < sizeof eog_names / sizeof eog_names[0] && v->n_eog < 8; i++) {
			int32_t id = tok_smap_get(&v->by_text, eog_names[i], strlen(eog_names[i]));

			if (id >= 0 && id != v->eos && v->type[id] == TOK_T_CONTROL)
				v->eog[v->n_eog++] = id;
		}
	}
	return ALLOT_OK;
}

static struct tok_vocab *alloc_vocab(enum tok_kind kind, size_t n)
{
	struct tok_vocab *v = calloc(1, sizeof *v);

	if (!v)
		return NULL;
	v->kind = kind;
	v->bos = v->eos = v->unk = -1;
	v->text = calloc(n ? n : 1, sizeof *v->text);
	v->text_len = calloc(n ? n : 1, sizeof *v->text_len);
	v->score = calloc(n ? n : 1, sizeof *v->score);
	v->type = calloc(n ? n : 1, sizeof *v->type);
	if (!v->text || !v->text_len || !v->score || !v->type) {
		tok_free(v);
		return NULL;
	}
	v->n = (int32_t)n; /* tok_free walks text[] up to n; unset entries are NULL */
	return v;
}

static char *dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

allot_err tok_build(enum tok_kind kind, const char *const *tokens, const float *scores,
		    const int32_t *types, size_t n, const char *const *merges, size_t n_merges,
		    int32_t bos, int32_t eos, struct tok_vocab **out)
{
	struct tok_vocab *v;
	allot_err e;

	if (n == 0 || n > INT32_MAX / 2 || (kind != TOK_SPM && kind != TOK_GPT2))
		return ALLOT_E_INVALID;
	v = alloc_vocab(kind, n);
	if (!v)
		return ALLOT_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		v->text_len[i] = (uint32_t)strlen(tokens[i]);
		v->text[i] = dupn(tokens[i], v->text_len[i]);
		v->score[i] = scores ? scores[i] : 0.0f;
		v->type[i] = types ? types[i] : TOK_T_NORMAL;
		if (!v->text[i]) {
			tok_free(v);
			return ALLOT_E_NOMEM;
		}
	}
	if (n_merges) {
		v->merge = calloc(n_merges, sizeof *v->merge);
		if (!v->merge) {
			tok_free(v);
			return ALLOT_E_NOMEM;
		}
		for (size_t i = 0; i < n_merges; i++) {
			v->merge[i] = strdup(merges[i]);
			v->n_merge = i + 1;
			if (!v->merge[i]) {
				tok_free(v);
				return ALLOT_E_NOMEM;
			}
		}
	}
	v->bos = bos < (int32_t)n ? bos : -1;
	v->eos = eos < (int32_t)n ? eos : -1;
	v->add_bos = v->bos >= 0;
	v->add_space_prefix = kind == TOK_SPM;
	e = finish(v);
	if (e != ALLOT_OK) {
		tok_free(v);
		return e;
	}
	*out = v;
	return ALLOT_OK;
}

/* GPT-2's merges ("a b" per rank) into v. */
static allot_err load_merges(const struct gguf *g, struct tok_vocab *v, char *err,
			     size_t errlen)
{
	enum gguf_type t;
	uint64_t nm = 0;
	const void *d;

	if (!gguf_get_arr(g, "tokenizer.ggml.merges", &t, &nm, &d) || t != GGUF_T_STRING) {
		snprintf(err, errlen, "tokenizer.ggml.merges is missing");
		return ALLOT_E_INVALID;
	}
	v->merge = calloc(nm ? nm : 1, sizeof *v->merge);
	if (!v->merge)
		return ALLOT_E_NOMEM;
	for (uint64_t i = 0; i < nm; i++) {
		const char *s;
		size_t len;

		gguf_arr_str(g, "tokenizer.ggml.merges", i, &s, &len);
		v->merge[i] = dupn(s, len);
		v->n_merge = i + 1;
		if (!v->merge[i])
			return ALLOT_E_NOMEM;
	}
	return ALLOT_OK;
}

/* The special token ids, the pre-tokenizer and the BOS and leading-space
 * options of a vocabulary of n tokens. */
static void load_options(const struct gguf *g, struct tok_vocab *v, uint64_t n)
{
	const char *pre;
	size_t pl;
	uint32_t u;
	bool b;

	if (gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) && u < n)
		v->bos = (int32_t)u;
	if (gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) && u < n)
		v->eos = (int32_t)u;
	if (gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &u) && u < n)
		v->unk = (int32_t)u;
	else if (v->kind == TOK_SPM)
		v->unk = 0;
	v->add_space_prefix = v->kind == TOK_SPM;
	if (gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pl)) {
		if ((pl == 9 && memcmp(pre, "llama-bpe", 9) == 0) || (pl == 6 && memcmp(pre, "llama3", 6) == 0) ||
		    (pl == 9 && memcmp(pre, "smaug-bpe", 9) == 0))
			v->pre = PRE_LLAMA3;
		else if (pl == 5 && memcmp(pre, "qwen2", 5) == 0)
			v->pre = PRE_QWEN2;
	}
	if (gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b))
		v->add_space_prefix = b;
	/* BOS first: tokenizer.ggml.add_bos_token (false for Qwen), else as
	 * llama.cpp: SentencePiece and the Llama 3 pre-tokenizer yes, other
	 * byte-level BPE no; never without a BOS token */
	v->add_bos = v->kind == TOK_SPM || v->pre == PRE_LLAMA3;
	if (gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b))
		v->add_bos = b;
	if (v->bos < 0)
		v->add_bos = false;
}

allot_err tok_load(const struct gguf *g, struct tok_vocab **out, char *err, size_t errlen)
{
	const char *model;
	size_t mlen;
	enum tok_kind kind;
	enum gguf_type t;
	uint64_t n, ns = 0, nt = 0;
	const void *d, *sd = NULL, *td = NULL;
	struct tok_vocab *v;
	allot_err e;

	if (!gguf_get_str(g, "tokenizer.ggml.model", &model, &mlen)) {
		snprintf(err, errlen, "tokenizer.ggml.model is missing");
		return ALLOT_E_INVALID;
	}
	if (mlen == 5 && memcmp(model, "llama", 5) == 0) {
		kind = TOK_SPM;
	} else if (mlen == 4 && memcmp(model, "gpt2", 4) == 0) {
		kind = TOK_GPT2;
	} else {
		snprintf(err, errlen, "tokenizer \"%.*s\" is not supported", (int)(mlen > 64 ? 64 : mlen), model);
		return ALLOT_E_UNSUPPORTED;
	}
	if (!gguf_get_arr(g, "tokenizer.ggml.tokens", &t, &n, &d) || t != GGUF_T_STRING ||
	    n == 0 || n > (1u << 24)) {
		snprintf(err, errlen, "tokenizer.ggml.tokens is missing or not a list of up to 2^24 strings");
		return ALLOT_E_INVALID;
	}
	if (gguf_get_arr(g, "tokenizer.ggml.scores", &t, &ns, &sd) && (t != GGUF_T_F32 || ns != n)) {
		snprintf(err, errlen, "tokenizer.ggml.scores must be %llu f32 values", (unsigned long long)n);
		return ALLOT_E_INVALID;
	}
	if (gguf_get_arr(g, "tokenizer.ggml.token_type", &t, &nt, &td) && (t != GGUF_T_I32 || nt != n)) {
		snprintf(err, errlen, "tokenizer.ggml.token_type must be %llu i32 values", (unsigned long long)n);
		return ALLOT_E_INVALID;
	}
	v = alloc_vocab(kind, (size_t)n);
	if (!v)
		return ALLOT_E_NOMEM;
	for (uint64_t i = 0; i < n; i++) {
		const char *s;
		size_t len;

		gguf_arr_str(g, "tokenizer.ggml.tokens", i, &s, &len);
		if (len > (1u << 16)) {
			snprintf(err, errlen, "token %llu is longer than 64 KiB", (unsigned long long)i);
			tok_free(v);
			return ALLOT_E_INVALID;
		}
		v->text[i] = dupn(s, len);
		v->text_len[i] = (uint32_t)len;
		if (sd)
			memcpy(&v->score[i], (const char *)sd + 4 * i, 4);
		v->type[i] = TOK_T_NORMAL;
		if (td)
			memcpy(&v->type[i], (const char *)td + 4 * i, 4);
		if (!v->text[i]) {
			tok_free(v);
			return ALLOT_E_NOMEM;
		}
	}
	if (kind == TOK_GPT2 && (e = load_merges(g, v, err, errlen))) {
		tok_free(v);
		return e;
	}
	load_options(g, v, n);
	e = finish(v);
	if (e != ALLOT_OK) {
		snprintf(err, errlen, "tokenizer: out of memory");
		tok_free(v);
		return e;
	}
	*out = v;
	return ALLOT_OK;
}

void tok_set_pre(struct tok_vocab *v, const char *pre)
{
	v->pre = strcmp(pre, "llama-bpe") == 0 || strcmp(pre, "llama3") == 0 ? PRE_LLAMA3
		: strcmp(pre, "qwen2") == 0 ? PRE_QWEN2 : PRE_GPT2;
}

enum tok_kind tok_kind(const struct tok_vocab *v) { return v->kind; }
int32_t tok_n_vocab(const struct tok_vocab *v) { return v->n; }
int32_t tok_bos(const struct tok_vocab *v) { return v->bos; }
int32_t tok_eos(const struct tok_vocab *v) { return v->eos; }
bool tok_add_bos(const struct tok_vocab *v) { return v->add_bos; }
bool tok_strips_leading_space(const struct tok_vocab *v) { return v->kind == TOK_SPM && v->add_space_prefix; }

bool tok_is_eog(const struct tok_vocab *v, int32_t id)
{
	for (size_t i = 0; i < v->n_eog; i++)
		if (v->eog[i] == id)
			return true;
	return false;
}

int32_t tok_find(const struct tok_vocab *v, const char *s, size_t len)
{
	return tok_smap_get(&v->by_text, s, len);
}

const char *tok_text(const struct tok_vocab *v, int32_t id, size_t *len)
{
	if (id < 0 || id >= v->n) {
		*len = 0;
		return "";
	}
	*len = v->text_len[id];
	return v->text[id];
}

const char *tok_piece(const struct tok_vocab *v, int32_t id, bool special, size_t *len)
{
	if (id < 0 || id >= v->n) {
		*len = 0;
		return "";
	}
	if (v->type[id] == TOK_T_CONTROL || v->type[id] == TOK_T_UNKNOWN || v->type[id] == TOK_T_UNUSED) {
		if (!special) {
			*len = 0;
			return "";
		}
		*len = v->text_len[id];
		return v->text[id];
	}
	*len = v->piece_len[id];
	return v->piece[id];
}

void tok_decode(const struct tok_vocab *v, const int32_t *ids, size_t n, bool special,
		struct buf *out)
{
	bool at_start = true;

	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *p = tok_piece(v, ids[i], special, &len);

		if (at_start && ids[i] != v->bos && tok_strips_leading_space(v) && len &&
		    p[0] == ' ' && v->type[ids[i]] != TOK_T_CONTROL) {
			p++;
			len--;
		}
		if (ids[i] != v->bos)
			at_start = false;
		buf_append(out, p, len);
	}
}

/* ---- id output ----------------------------------------------------------- */


void tok_ids_push(struct ids *o, int32_t id)
{
	if (o->oom)
		return;
	if (*o->n == *o->cap) {
		size_t c = *o->cap ? 2 * *o->cap : 64;
		int32_t *np = realloc(*o->p, c * sizeof *np);

		if (!np) {
			o->oom = true;
			return;
		}
		*o->p = np;
		*o->cap = c;
	}
	(*o->p)[(*o->n)++] = id;
}

/* ---- encode ---------------------------------------------------------------- */

static int32_t special_at(const struct tok_vocab *v, const char *s, size_t n, size_t *len)
{
	for (size_t k = 0; k < v->n_special; k++) {
		int32_t id = v->special[k];
		size_t l = v->text_len[id];

		if (l <= n && memcmp(s, v->text[id], l) == 0) {
			*len = l;
			return id;
		}
	}
	return -1;
}

allot_err tok_encode(const struct tok_vocab *v, const char *text, size_t len,
		     bool add_bos, bool parse_special, int32_t **ids, size_t *n, size_t *cap)
{
	struct ids o = {ids, n, cap, false};
	bool prev_special = true;
	size_t start = 0, i = 0;

	if (add_bos && v->bos >= 0)
		tok_ids_push(&o, v->bos);
	while (start < len) {
		size_t sl = 0;
		int32_t sp = -1;

		if (parse_special)
			for (i = start; i < len; i++) {
				sp = special_at(v, text + i, len - i, &sl);
				if (sp >= 0)
					break;
			}
		else
			i = len;
		if (i > start) {
			if (v->kind == TOK_SPM)
				tok_spm_raw(v, text + start, i - start, v->add_space_prefix && prev_special, &o);
			else
				tok_bpe_raw(v, text + start, i - start, &o);
			prev_special = false;
		}
		if (sp >= 0) {
			tok_ids_push(&o, sp);
			prev_special = true;
			i += sl;
		}
		start = i;
	}
	return o.oom ? ALLOT_E_NOMEM : ALLOT_OK;
}
