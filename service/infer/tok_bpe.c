/* tok_bpe.c — GPT-2 byte-level BPE over ranked merges (infer/tok_int.h):
 * the pre-tokenizers that cut the text into words (GPT-2, Llama 3, Qwen 2),
 * then each word's bytes mapped to printable code points and merged. */
#include "infer/tok_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "infer/unicode_tab.h"
#include "infer/utf8.h"

enum cclass { C_L, C_N, C_S, C_O };

static enum cclass cls(const char *s, size_t n, size_t *len)
{
	uint32_t cp;
	int l = utf8_decode((const unsigned char *)s, n, &cp);

	if (l <= 0) {
		*len = 1;
		return C_O;
	}
	*len = (size_t)l;
	if (cp < 0x80) {
		if ((cp | 32) >= 'a' && (cp | 32) <= 'z')
			return C_L;
		if (cp >= '0' && cp <= '9')
			return C_N;
		if (cp == ' ' || (cp >= 9 && cp <= 13))
			return C_S;
		return C_O;
	}
	switch (unicode_class(cp)) {
	case UC_LETTER: return C_L;
	case UC_NUMBER: return C_N;
	case UC_SPACE: return C_S;
	default: return C_O;
	}
}

/* Length of the next GPT-2 pre-token at s[0..n). */
static size_t gpt2_word(const char *s, size_t n)
{
	size_t l0, l1, i;
	enum cclass c0 = cls(s, n, &l0), c1;

	if (s[0] == '\'' && n >= 2) {
		static const char *const con[] = {"'re", "'ve", "'ll", "'s", "'t", "'m", "'d"};

		for (size_t k = 0; k < 7; k++) {
			size_t cl = strlen(con[k]);

			if (n >= cl && memcmp(s, con[k], cl) == 0)
				return cl;
		}
	}
	i = 0;
	if (s[0] == ' ' && n > 1) {
		c1 = cls(s + 1, n - 1, &l1);
		if (c1 != C_S) {
			c0 = c1;
			i = 1;
		}
	}
	if (c0 == C_L || c0 == C_N || (c0 == C_O)) {
		enum cclass want = c0;

		while (i < n) {
			size_t l;
			enum cclass c = cls(s + i, n - i, &l);

			if (want == C_O ? (c != C_O) : (c != want))
				break;
			i += l;
		}
		return i;
	}
	/* whitespace run */
	i = 0;
	{
		size_t last = 0;

		while (i < n) {
			size_t l;

			if (cls(s + i, n - i, &l) != C_S)
				break;
			last = i;
			i += l;
		}
		if (i < n && last > 0)
			return last; /* \s+(?!\S): leave the last one for the next word */
		return i;
	}
}

static bool is_nl(char c) { return c == '\r' || c == '\n'; }

/* Length of the next pre-token under Llama 3's pattern (Qwen2's when
 * max_digits is 1):
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3} |
 *   ' '?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+ */
static size_t llama3_word(const char *s, size_t n, int max_digits)
{
	size_t l0, l1, i;
	enum cclass c0 = cls(s, n, &l0);

	if (s[0] == '\'' && n >= 2) {
		static const char *const con[] = {"re", "ve", "ll", "s", "t", "m", "d"};

		for (size_t k = 0; k < 7; k++) {
			size_t cl = strlen(con[k]);

			if (n >= cl + 1 && strncasecmp(s + 1, con[k], cl) == 0)
				return cl + 1;
		}
	}
	/* [^\r\n\p{L}\p{N}]?\p{L}+ */
	if (c0 == C_L || (!is_nl(s[0]) && c0 != C_N && l0 < n && cls(s + l0, n - l0, &l1) == C_L)) {
		i = c0 == C_L ? 0 : l0;
		while (i < n) {
			size_t l;

			if (cls(s + i, n - i, &l) != C_L)
				break;
			i += l;
		}
		return i;
	}
	if (c0 == C_N) {
		int d = 0;

		i = 0;
		while (i < n && d < max_digits) {
			size_t l;

			if (cls(s + i, n - i, &l) != C_N)
				break;
			i += l;
			d++;
		}
		return i;
	}
	/* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
	i = s[0] == ' ' && n > 1 ? 1 : 0;
	if (i < n && cls(s + i, n - i, &l1) == C_O) {
		while (i < n) {
			size_t l;

			if (cls(s + i, n - i, &l) != C_O)
				break;
			i += l;
		}
		while (i < n && is_nl(s[i]))
			i++;
		return i;
	}
	/* white space: \s*[\r\n]+ first, then \s+(?!\S), then \s+ */
	{
		size_t end = 0, last_nl = 0, last = 0;

		while (end < n) {
			size_t l;

			if (cls(s + end, n - end, &l) != C_S)
				break;
			if (is_nl(s[end]))
				last_nl = end + 1;
			last = end;
			end += l;
		}
		if (end == 0)
			return l0; /* not reached: every class is handled above */
		if (last_nl)
			return last_nl;
		if (end < n && last > 0)
			return last;
		return end;
	}
}

static void bpe_word(const struct tok_vocab *v, const char *w, size_t n, struct ids *o)
{
	uint32_t cp[256];
	char *sym[TOK_MAX_WORD];
	size_t len[TOK_MAX_WORD], ns = 0;
	char store[TOK_MAX_WORD * 2 * 4];
	size_t used = 0;
	char key[TOK_MAX_WORD * 8 + 2];

	tok_byte_cps(cp);
	for (size_t i = 0; i < n; i++) {
		int l = utf8_encode(cp[(unsigned char)w[i]], store + used);

		sym[ns] = store + used;
		len[ns++] = (size_t)l;
		used += (size_t)l;
	}
	/* symbols are adjacent in store, so a merge just widens the left one */
	for (;;) {
		int32_t best = INT32_MAX;
		size_t bi = 0;

		for (size_t i = 0; i + 1 < ns; i++) {
			int32_t r;

			memcpy(key, sym[i], len[i]);
			key[len[i]] = ' ';
			memcpy(key + len[i] + 1, sym[i + 1], len[i + 1]);
			r = tok_smap_get(&v->merges, key, len[i] + 1 + len[i + 1]);
			if (r >= 0 && r < best) {
				best = r;
				bi = i;
			}
		}
		if (best == INT32_MAX)
			break;
		len[bi] += len[bi + 1];
		memmove(&sym[bi + 1], &sym[bi + 2], (ns - bi - 2) * sizeof *sym);
		memmove(&len[bi + 1], &len[bi + 2], (ns - bi - 2) * sizeof *len);
		ns--;
	}
	for (size_t i = 0; i < ns; i++) {
		int32_t id = tok_smap_get(&v->by_text, sym[i], len[i]);

		if (id >= 0) {
			tok_ids_push(o, id);
			continue;
		}
		/* not in the vocabulary: fall back to its bytes' symbols */
		for (size_t k = 0; k < len[i];) {
			uint32_t c;
			int l = utf8_decode((const unsigned char *)sym[i] + k, len[i] - k, &c);
			int b = -1;

			for (int x = 0; x < 256; x++)
				if (cp[x] == c)
					b = x;
			if (b >= 0 && v->byte_tok[b] >= 0)
				tok_ids_push(o, v->byte_tok[b]);
			else if (v->unk >= 0)
				tok_ids_push(o, v->unk);
			k += l > 0 ? (size_t)l : 1;
		}
	}
}

void tok_bpe_raw(const struct tok_vocab *v, const char *text, size_t len, struct ids *o)
{
	size_t i = 0;

	while (i < len) {
		size_t w = v->pre == PRE_GPT2 ? gpt2_word(text + i, len - i)
			   : llama3_word(text + i, len - i, v->pre == PRE_QWEN2 ? 1 : 3);

		if (w == 0)
			w = 1;
		for (size_t k = 0; k < w; k += TOK_MAX_WORD)
			bpe_word(v, text + i + k, w - k < TOK_MAX_WORD ? w - k : TOK_MAX_WORD, o);
		i += w;
	}
}
