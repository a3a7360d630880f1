/* test_tokenizer.c — SPM against llama.cpp's cases, GPT-2 byte-level BPE
 * round trips, special tokens, and the UTF-8 streaming filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/buf.h"
#include "infer/gguf.h"
#include "infer/tok.h"
#include "infer/unicode_tab.h"
#include "infer/utf8.h"
#include "support/xorshift.h"

#define MODELS "../shared/models/"

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t k;

	if (!f)
		return NULL;
	while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_append(&b, tmp, k);
	fclose(f);
	return buf_detach(&b, n);
}

/* Opens a file of ../shared/models: absent (no ../shared beside the
 * checkout) is a skip that says so; present but unreadable is a failure. */
static void open_or_skip(const char *path, struct gguf **g)
{
	char err[GGUF_ERR_MAX];
	if (access(path, F_OK) != 0) {
		printf("skipped: %s absent\n", path);
		skip();
	}
	if (gguf_open(path, g, err, sizeof err) != ALLOT_OK)
		fail_msg("%s: %s", path, err);
}

static void test_spm_llama_cases(void **state)
{
	(void)state;
	struct gguf *g;
	struct tok_vocab *v;
	char err[GGUF_ERR_MAX];
	size_t ni, no, cases = 0;
	char *inp, *outp, *ip, *op;
	static const char SEP[] = "\n__ggml_vocab_test__\n";

	open_or_skip(MODELS "ggml-vocab-llama-spm.gguf", &g);
	assert_int_equal(tok_load(g, &v, err, sizeof err), ALLOT_OK);
	gguf_free(g);
	assert_int_equal(tok_n_vocab(v), 32000);
	inp = slurp(MODELS "ggml-vocab-llama-spm.gguf.inp", &ni);
	outp = slurp(MODELS "ggml-vocab-llama-spm.gguf.out", &no);
	assert_non_null(inp);
	assert_non_null(outp);
	ip = inp;
	op = outp;
	for (;;) {
		char *end = strstr(ip, SEP), *eol;
		int32_t *ids = NULL;
		size_t n = 0, cap = 0, k = 0;

		if (!end)
			break;
		eol = strchr(op, '\n');
		assert_non_null(eol);
		*eol = 0;
		assert_int_equal(tok_encode(v, ip, (size_t)(end - ip), false, false, &ids, &n, &cap), ALLOT_OK);
		for (char *p = op; *p;) {
			char *q;
			long want = strtol(p, &q, 10);

			if (q == p)
				break;
			if (k >= n || ids[k] != want)
				fail_msg("case %zu \"%.*s\": token %zu is %d, want %ld", cases,
					 (int)(end - ip), ip, k, k < n ? ids[k] : -1, want);
			k++;
			p = q;
		}
		if (k != n)
			fail_msg("case %zu: %zu tokens, want %zu", cases, n, k);
		/* decoding gives the text back (SPM drops the added leading space) */
		{
			struct buf b = BUF_INIT;

			tok_decode(v, ids, n, false, &b);
			if (b.len != (size_t)(end - ip) || memcmp(b.data ? b.data : "", ip, b.len))
				fail_msg("case %zu: decodes to \"%s\"", cases, buf_str(&b));
			buf_release(&b);
		}
		free(ids);
		cases++;
		ip = end + strlen(SEP);
		op = eol + 1;
	}
	printf("tokenizer: %zu llama-spm cases match llama.cpp\n", cases);
	assert_int_equal(cases, 46);
	free(inp);
	free(outp);
	tok_free(v);
}

static void test_spm_stories(void **state)
{
	(void)state;
	struct gguf *g;
	struct tok_vocab *v;
	char err[GGUF_ERR_MAX];
	int32_t *ids = NULL;
	size_t n = 0, cap = 0;
	struct buf b = BUF_INIT;
	static const char text[] = "Once upon a time, \xc3\xa9\xf0\x9f\x98\x80!\n";

	open_or_skip(MODELS "stories260K.gguf", &g);
	assert_int_equal(tok_load(g, &v, err, sizeof err), ALLOT_OK);
	gguf_free(g);
	assert_int_equal(tok_n_vocab(v), 512);
	assert_int_equal(tok_bos(v), 1);
	assert_int_equal(tok_eos(v), 2);
	assert_true(tok_add_bos(v));
	assert_int_equal(tok_encode(v, text, strlen(text), true, false, &ids, &n, &cap), ALLOT_OK);
	assert_int_equal(ids[0], 1);
	assert_true(n > 5);
	/* byte fallback carries the accents and the emoji */
	tok_decode(v, ids, n, false, &b);
	assert_string_equal(buf_str(&b), text);
	buf_release(&b);
	free(ids);
	tok_free(v);
}

/* Random bytes, invalid UTF-8 included, through the SentencePiece path:
 * byte fallback makes every string round-trip. */
static void test_spm_random_roundtrip(void **state)
{
	(void)state;
	struct gguf *g;
	struct tok_vocab *v;
	char err[GGUF_ERR_MAX];
	uint64_t rng = 0x2545f4914f6cdd1dull;
	size_t cases = 0;

	open_or_skip(MODELS "stories260K.gguf", &g);
	assert_int_equal(tok_load(g, &v, err, sizeof err), ALLOT_OK);
	gguf_free(g);
	for (int c = 0; c < 1000; c++) {
		char t[300];
		size_t len = (size_t)c % sizeof t;
		int32_t *ids = NULL;
		size_t n = 0, cap = 0;
		struct buf b = BUF_INIT;

		for (size_t i = 0; i < len; i++) {
			xorshift64(&rng);
			t[i] = (rng & 1) ? "Once upon a time, Lily \n"[rng % 24] : (char)(rng >> 16);
			if (i >= 2 && (unsigned char)t[i - 2] == 0xe2 && (unsigned char)t[i - 1] == 0x96 &&
			    (unsigned char)t[i] == 0x81)
				t[i] = 'x'; /* a literal U+2581 decodes as a space */
		}
		assert_int_equal(tok_encode(v, t, len, true, false, &ids, &n, &cap), ALLOT_OK);
		for (size_t i = 0; i < n; i++)
			assert_true(ids[i] >= 0 && ids[i] < tok_n_vocab(v));
		tok_decode(v, ids, n, false, &b);
		if (b.len != len || memcmp(buf_str(&b), t, len))
			fail_msg("case %d does not round-trip", c);
		buf_release(&b);
		free(ids);
		cases++;
	}
	printf("tokenizer: %zu random SPM round trips\n", cases);
	tok_free(v);
}

/* A byte-level vocabulary: the 256 byte symbols, a few merges, specials. */
static struct tok_vocab *gpt2_vocab(void)
{
	static const char *const merges[] = {
		"\xc4\xa0 t", "h e", "\xc4\xa0t he", "i n", "\xc4\xa0 a", "l l", "he ll", "hell o",
		"\xc3\xa2 \xc4\xa2", /* first two bytes of U+2019-ish */
	};
	const char *toks[256 + 16];
	char store[256][4];
	int32_t types[256 + 16];
	size_t n = 0;
	uint32_t m = 0;
	struct tok_vocab *v;

	for (int b = 0; b < 256; b++) {
		uint32_t cp;

		if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))
			cp = (uint32_t)b;
		else
			cp = 256 + m++;
		store[b][utf8_encode(cp, store[b])] = 0;
		types[n] = TOK_T_NORMAL;
		toks[n++] = store[b];
	}
	{
		static const char *const extra[] = {
			"\xc4\xa0t", "he", "\xc4\xa0the", "in", "\xc4\xa0\x61", "ll", "ell", "hell", "hello",
			"\xc3\xa2\xc4\xa2", "<|begin_of_text|>", "<|eot_id|>", "<|user|>",
		};
		for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
			types[n] = i >= 10 ? TOK_T_CONTROL : TOK_T_NORMAL;
			toks[n++] = extra[i];
		}
	}
	assert_int_equal(tok_build(TOK_GPT2, toks, NULL, types, n, merges,
				   sizeof merges / sizeof merges[0], 266, 267, &v), ALLOT_OK);
	return v;
}

static void test_gpt2_roundtrip(void **state)
{
	(void)state;
	struct tok_vocab *v = gpt2_vocab();
	static const char *const fixed[] = {
		"", " ", "hello the in", "  hello   world\n\n\t x", "don't you'll I'M",
		"caf\xc3\xa9 \xe2\x80\x99 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87 123 4.5",
		"\x80\xff\xc3(\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82", /* invalid UTF-8 */
	};
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	size_t cases = 0;
	static const char *const pres[] = {"gpt2", "llama-bpe", "qwen2"};

	for (size_t pi = 0; pi < 3; pi++)
	for (size_t c = 0; c < 300 + sizeof fixed / sizeof fixed[0]; c++) {
		char rnd[200];
		const char *t;
		size_t len;
		int32_t *ids = NULL;
		size_t n = 0, cap = 0;
		struct buf b = BUF_INIT;

		tok_set_pre(v, pres[pi]);
		if (c < sizeof fixed / sizeof fixed[0]) {
			t = fixed[c];
			len = strlen(t);
		} else {
			len = c % sizeof rnd;
			for (size_t i = 0; i < len; i++) {
				xorshift64(&rng);
				/* mostly text-like bytes, some arbitrary */
				rnd[i] = (rng & 3) ? " aehlnot'\n"[rng % 10] : (char)(rng >> 8);
			}
			t = rnd;
		}
		assert_int_equal(tok_encode(v, t, len, false, false, &ids, &n, &cap), ALLOT_OK);
		tok_decode(v, ids, n, false, &b);
		if (b.len != len || memcmp(buf_str(&b), t, len))
			fail_msg("%s case %zu does not round-trip", pres[pi], c);
		buf_release(&b);
		free(ids);
		cases++;
	}
	printf("tokenizer: %zu byte-level BPE round trips\n", cases);
	tok_free(v);
}

static void test_gpt2_merges_and_special(void **state)
{
	(void)state;
	struct tok_vocab *v = gpt2_vocab();
	int32_t *ids = NULL;
	size_t n = 0, cap = 0;
	static const char t[] = "<|user|>hello the<|eot_id|>";
	struct buf b = BUF_INIT;

	assert_int_equal(tok_encode(v, t, strlen(t), true, true, &ids, &n, &cap), ALLOT_OK);
	/* BOS, <|user|>, hello, " the", <|eot_id|> */
	assert_int_equal(n, 5);
	assert_int_equal(ids[0], 266);
	assert_int_equal(ids[1], 268);
	assert_int_equal(ids[2], tok_find(v, "hello", 5));
	assert_int_equal(ids[3], tok_find(v, "\xc4\xa0the", 5));
	assert_int_equal(ids[4], 267);
	assert_true(tok_is_eog(v, 267));
	tok_decode(v, ids, n, false, &b);
	assert_string_equal(buf_str(&b), "hello the");
	buf_reset(&b);
	tok_decode(v, ids, n, true, &b);
	assert_string_equal(buf_str(&b), "<|begin_of_text|><|user|>hello the<|eot_id|>");
	buf_release(&b);
	/* without parse_special the marker is plain text */
	n = 0;
	assert_int_equal(tok_encode(v, t, strlen(t), false, false, &ids, &n, &cap), ALLOT_OK);
	assert_true(n > 5);
	free(ids);
	tok_free(v);
}

/* The pre-tokenizer decides which merges can apply: Llama 3 cuts digits in
 * threes and attaches one non-letter to a word; GPT-2 does neither. */
static void test_pretokenizers(void **state)
{
	(void)state;
	const char *toks[256 + 3];
	char store[256][4];
	static const char *const merges[] = {"1 2", "3 4", "12 3"};
	uint32_t m = 0;
	struct tok_vocab *v;
	static const struct { const char *pre, *text; const char *want[8]; } cases[] = {
		{"gpt2", "12345", {"12", "34", "5"}},
		{"llama-bpe", "12345", {"123", "4", "5"}},
		{"qwen2", "12345", {"1", "2", "3", "4", "5"}},
		{"gpt2", "a\n\nb", {"a", "\xc4\x8a", "\xc4\x8a", "b"}},
		{"llama-bpe", "I'M", {"I", "'", "M"}},
	};

	for (int b = 0; b < 256; b++) {
		uint32_t cp;

		if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))
			cp = (uint32_t)b;
		else
			cp = 256 + m++;
		store[b][utf8_encode(cp, store[b])] = 0;
		toks[b] = store[b];
	}
	toks[256] = "12";
	toks[257] = "34";
	toks[258] = "123";
	assert_int_equal(tok_build(TOK_GPT2, toks, NULL, NULL, 259, merges, 3, -1, -1, &v), ALLOT_OK);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int32_t *ids = NULL;
		size_t n = 0, cap = 0, k = 0;

		tok_set_pre(v, cases[i].pre);
		assert_int_equal(tok_encode(v, cases[i].text, strlen(cases[i].text), false, false, &ids, &n, &cap),
				 ALLOT_OK);
		for (; k < 8 && cases[i].want[k]; k++) {
			size_t l;
			const char *t;

			if (k >= n)
				fail_msg("%s \"%s\": %zu tokens", cases[i].pre, cases[i].text, n);
			t = tok_text(v, ids[k], &l);
			if (l != strlen(cases[i].want[k]) || memcmp(t, cases[i].want[k], l))
				fail_msg("%s \"%s\": token %zu is \"%.*s\"", cases[i].pre, cases[i].text, k, (int)l, t);
		}
		assert_int_equal(n, k);
		free(ids);
	}
	tok_free(v);
}

static void test_utf8_stream(void **state)
{
	(void)state;
	static const struct { const char *in; const char *want; } cases[] = {
		{"abc", "abc"},
		{"\xc3\xa9", "\xc3\xa9"},
		{"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
		{"\x80", "\xef\xbf\xbd"},
		{"a\xc3(", "a\xef\xbf\xbd("},
		{"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
		{"\xe2\x82", "\xef\xbf\xbd"}, /* unfinished at the end: flushed */
		{"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* every split into 1-byte chunks; each chunk must be valid */
		struct utf8_stream st = UTF8_STREAM_INIT;
		struct buf all = BUF_INIT;
		size_t n = strlen(cases[i].in);

		for (size_t k = 0; k < n; k++) {
			struct buf chunk = BUF_INIT;

			utf8_stream_push(&st, cases[i].in + k, 1, &chunk);
			assert_true(utf8_valid(buf_str(&chunk), chunk.len));
			buf_append(&all, chunk.data, chunk.len);
			buf_release(&chunk);
		}
		utf8_stream_flush(&st, &all);
		if (strcmp(buf_str(&all), cases[i].want))
			fail_msg("case %zu: got \"%s\"", i, buf_str(&all));
		buf_release(&all);
		/* and whole */
		{
			struct utf8_stream s2 = UTF8_STREAM_INIT;

			utf8_stream_push(&s2, cases[i].in, n, &all);
			utf8_stream_flush(&s2, &all);
			assert_string_equal(buf_str(&all), cases[i].want);
			buf_release(&all);
		}
	}
}

static void test_unicode_classes(void **state)
{
	(void)state;
	static const struct { uint32_t cp; enum uclass want; } cases[] = {
		{0xe9, UC_LETTER}, {0xdf, UC_LETTER}, {0x4e2d, UC_LETTER}, {0x3042, UC_LETTER},
		{0x0663, UC_NUMBER}, {0xbd, UC_NUMBER}, {0x2167, UC_NUMBER}, {0xff11, UC_NUMBER},
		{0xa0, UC_SPACE}, {0x2003, UC_SPACE}, {0x3000, UC_SPACE}, {0x85, UC_SPACE},
		{0x2014, UC_OTHER}, {0x1f600, UC_OTHER}, {0xd7, UC_OTHER}, {0x10ffff, UC_OTHER},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (unicode_class(cases[i].cp) != cases[i].want)
			fail_msg("U+%04X: class %d", cases[i].cp, unicode_class(cases[i].cp));
}

static void test_load_errors(void **state)
{
	(void)state;
	const char *toks[1] = {"a"};
	struct tok_vocab *v;

	assert_int_equal(tok_build(TOK_SPM, toks, NULL, NULL, 0, NULL, 0, -1, -1, &v), ALLOT_E_INVALID);
	assert_int_equal(tok_build((enum tok_kind)7, toks, NULL, NULL, 1, NULL, 0, -1, -1, &v), ALLOT_E_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spm_llama_cases),
		cmocka_unit_test(test_spm_stories),
		cmocka_unit_test(test_spm_random_roundtrip),
		cmocka_unit_test(test_gpt2_roundtrip),
		cmocka_unit_test(test_gpt2_merges_and_special),
		cmocka_unit_test(test_pretokenizers),
		cmocka_unit_test(test_utf8_stream),
		cmocka_unit_test(test_unicode_classes),
		cmocka_unit_test(test_load_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
