/* test_infer_engine.c — the engine: streaming, stop sequences, sampling,
 * context limits, cancellation, continuous batching, and the CLI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/buf.h"
#include "infer/engine.h"
#include "infer/gguf.h"
#include "infer/model.h"
#include "infer/utf8.h"
#include "support/inferref.h"

#define MODEL "../shared/models/stories260K.gguf"

static const char REFERENCE[] =
	"Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
	"One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
	"Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. "
	"She said, \"I want to play with your ball, but I can't find it.\"\n"
	"Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\n"
	"Lily didn't want to help her mom, so she";

static bool have_model(void)
{
	if (access(MODEL, R_OK) == 0)
		return true;
	printf("skipped: " MODEL " absent\n");
	return false;
}

static struct infer_engine *open_engine(int slots, int ctx)
{
	struct infer_params p = {.n_threads = 2, .n_slots = slots, .n_ctx = ctx, .max_batch = 16};
	struct infer_engine *e = NULL;
	char err[256];

	if (infer_open(MODEL, &p, &e, err, sizeof err) != ALLOT_OK)
		fail_msg("%s", err);
	return e;
}

struct stream { struct buf all; int pieces; int cancel_after; bool bad_utf8; };

static int collect(void *ctx, const char *t, size_t n)
{
	struct stream *s = ctx;

	if (!utf8_valid(t, n) || n == 0)
		s->bad_utf8 = true;
	buf_append(&s->all, t, n);
	s->pieces++;
	return s->cancel_after && s->pieces >= s->cancel_after;
}

static void test_reference_streamed(void **state)
{
	(void)state;
	struct infer_engine *e;
	struct infer_info info;
	int32_t bos;
	struct stream s = {BUF_INIT, 0, 0, false};
	struct infer_request r = {0};
	struct infer_result res;

	if (!have_model())
		return;
	e = open_engine(4, 0);
	infer_get_info(e, &info);
	assert_int_equal(info.n_ctx, 2048);
	assert_int_equal(info.n_vocab, 512);
	assert_string_equal(info.arch, "llama");
	assert_string_equal(info.weight_type, "F32");
	assert_string_equal(info.chat_format, "chatml");
	bos = info.bos;
	r.prompt = &bos;
	r.n_prompt = 1;
	r.max_tokens = 200;
	r.on_text = collect;
	r.ctx = &s;
	assert_int_equal(infer_generate(e, &r, &res), ALLOT_OK);
	assert_string_equal(res.text, REFERENCE);
	assert_string_equal(buf_str(&s.all), REFERENCE);
	assert_false(s.bad_utf8);
	assert_int_equal(res.prompt_tokens, 1);
	assert_int_equal(res.completion_tokens, 200);
	assert_string_equal(res.finish_reason, "length");
	infer_result_release(&res);
	buf_release(&s.all);

	/* a stop sequence cuts the text and is held back from the stream */
	{
		const char *stop[2] = {"Lily", "zzz"};
		struct stream s2 = {BUF_INIT, 0, 0, false};

		r.stop = stop;
		r.n_stop = 2;
		r.ctx = &s2;
		assert_int_equal(infer_generate(e, &r, &res), ALLOT_OK);
		assert_string_equal(res.text, "Once upon a time, there was a little girl named ");
		assert_string_equal(buf_str(&s2.all), res.text);
		assert_string_equal(res.finish_reason, "stop");
		infer_result_release(&res);
		buf_release(&s2.all);
		r.stop = NULL;
		r.n_stop = 0;
	}
	/* a prompt continues with its own spaces */
	{
		int32_t *ids;
		size_t n;

		assert_int_equal(infer_tokenize(e, "Once upon a time", 16, true, false, &ids, &n), ALLOT_OK);
		assert_int_equal(ids[0], bos);
		r.prompt = ids;
		r.n_prompt = n;
		r.max_tokens = 8;
		r.on_text = NULL;
		assert_int_equal(infer_generate(e, &r, &res), ALLOT_OK);
		assert_true(strncmp(res.text, ", there was a little girl", 25) == 0);
		assert_int_equal(res.prompt_tokens, (int)n);
		assert_int_equal(res.completion_tokens, 8);
		infer_result_release(&res);
		free(ids);
	}
	infer_close(e);
}

static void test_sampling_and_limits(void **state)
{
	(void)state;
	struct infer_engine *e;
	int32_t bos = 1, big[40];
	struct infer_request r = {0};
	struct infer_result a, b, c;

	if (!have_model())
		return;
	e = open_engine(2, 32);
	r.prompt = &bos;
	r.n_prompt = 1;
	r.max_tokens = 20;
	r.temperature = 0.9f;
	r.top_k = 40;
	r.top_p = 0.95f;
	r.min_p = 0.02f;
	r.seed = 1234;
	assert_int_equal(infer_generate(e, &r, &a), ALLOT_OK);
	assert_int_equal(infer_generate(e, &r, &b), ALLOT_OK);
	assert_string_equal(a.text, b.text); /* same seed, same tokens */
	r.seed = 99;
	r.top_k = 0;
	r.temperature = 1.5f;
	assert_int_equal(infer_generate(e, &r, &c), ALLOT_OK);
	assert_string_not_equal(a.text, c.text);
	infer_result_release(&a);
	infer_result_release(&b);
	infer_result_release(&c);
	/* the context length is enforced: 32 positions hold 1 + 31 tokens */
	r.temperature = 0;
	r.max_tokens = 0;
	assert_int_equal(infer_generate(e, &r, &a), ALLOT_OK);
	assert_int_equal(a.completion_tokens, 31);
	assert_string_equal(a.finish_reason, "length");
	infer_result_release(&a);
	for (int i = 0; i < 40; i++)
		big[i] = 300;
	r.prompt = big;
	r.n_prompt = 32;
	assert_int_equal(infer_generate(e, &r, &a), ALLOT_E_TOO_LARGE);
	r.n_prompt = 0;
	assert_int_equal(infer_generate(e, &r, &a), ALLOT_E_INVALID);
	big[0] = 512;
	r.n_prompt = 3;
	assert_int_equal(infer_generate(e, &r, &a), ALLOT_E_INVALID);
	infer_close(e);
}

static void test_tokenize_detokenize(void **state)
{
	(void)state;
	struct infer_engine *e;
	int32_t *ids;
	size_t n, len;
	char *text;
	int32_t bad = 9999;
	struct chat_msg msgs[2] = {{"system", "Be brief."}, {"user", "Hi"}};

	if (!have_model())
		return;
	e = open_engine(1, 64);
	assert_int_equal(infer_tokenize(e, "Lily ran.", 9, true, false, &ids, &n), ALLOT_OK);
	assert_int_equal(ids[0], 1);
	assert_int_equal(infer_detokenize(e, ids, n, &text, &len), ALLOT_OK);
	assert_string_equal(text, "Lily ran.");
	free(text);
	free(ids);
	assert_int_equal(infer_detokenize(e, &bad, 1, &text, &len), ALLOT_E_INVALID);
	/* vocabulary only: tokenizer and chat, no generation */
	{
		struct infer_params vp = {.vocab_only = true};
		struct infer_engine *ve;
		char err[256];
		struct infer_request r = {0};
		struct infer_job *j;
		int32_t bos = 1;
		int32_t *vids;
		size_t vn;
		struct infer_info info;

		assert_int_equal(infer_open(MODEL, &vp, &ve, err, sizeof err), ALLOT_OK);
		infer_get_info(ve, &info);
		assert_int_equal(info.n_vocab, 512);
		assert_int_equal(infer_tokenize(ve, "Lily", 4, true, false, &vids, &vn), ALLOT_OK);
		assert_true(vn >= 2);
		free(vids);
		r.prompt = &bos;
		r.n_prompt = 1;
		assert_int_equal(infer_submit(ve, &r, &j), ALLOT_E_UNAVAILABLE);
		infer_close(ve);
	}
	assert_int_equal(infer_chat(e, msgs, 2, &text, &ids, &n), ALLOT_OK);
	assert_string_equal(text, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
			    "<|im_start|>assistant\n");
	assert_true(n > 10);
	free(text);
	free(ids);
	infer_close(e);
}

/* ---- batching ------------------------------------------------------------------- */

static const char *const PROMPTS[] = {
	"Once upon a time", "Lily and Ben", "The cat", "One day, a big dog",
	"Tom had a red ball", "She was happy", "The sun was hot", "A little bird",
};
enum { NP = sizeof PROMPTS / sizeof PROMPTS[0] };

struct worker {
	struct infer_engine *e;
	int i;
	useconds_t delay;
	struct infer_result res;
	struct stream s;
};

static void request(struct infer_engine *e, int i, struct infer_request *r, int32_t **ids)
{
	size_t n;

	assert_int_equal(infer_tokenize(e, PROMPTS[i], strlen(PROMPTS[i]), true, false, ids, &n), ALLOT_OK);
	memset(r, 0, sizeof *r);
	r->prompt = *ids;
	r->n_prompt = n;
	r->max_tokens = 20 + 9 * i;
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	struct infer_request r;
	int32_t *ids;

	usleep(w->delay);
	request(w->e, w->i, &r, &ids);
	r.on_text = collect;
	r.ctx = &w->s;
	if (infer_generate(w->e, &r, &w->res) != ALLOT_OK)
		w->res.text = NULL;
	free(ids);
	return NULL;
}

static void test_continuous_batching(void **state)
{
	(void)state;
	struct infer_engine *e;
	char *alone[NP];
	struct worker w[NP + 1];
	pthread_t th[NP + 1];

	if (!have_model())
		return;
	e = open_engine(5, 512); /* fewer slots than requests: some wait */
	for (int i = 0; i < NP; i++) {
		struct infer_request r;
		int32_t *ids;
		struct infer_result res;

		request(e, i, &r, &ids);
		assert_int_equal(infer_generate(e, &r, &res), ALLOT_OK);
		alone[i] = strdup(res.text);
		infer_result_release(&res);
		free(ids);
	}
	for (int i = 0; i <= NP; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].e = e;
		w[i].i = i % NP;
		w[i].delay = (useconds_t)(i * 3000);
		if (i == NP)
			w[i].s.cancel_after = 3; /* a client that goes away */
		assert_int_equal(pthread_create(&th[i], NULL, run_worker, &w[i]), 0);
	}
	for (int i = 0; i <= NP; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NP; i++) {
		assert_non_null(w[i].res.text);
		if (strcmp(w[i].res.text, alone[i]) != 0)
			fail_msg("request %d batched:\n%s\nalone:\n%s", i, w[i].res.text, alone[i]);
		assert_string_equal(buf_str(&w[i].s.all), alone[i]);
		assert_int_equal(w[i].res.completion_tokens, 20 + 9 * i);
		infer_result_release(&w[i].res);
		buf_release(&w[i].s.all);
		free(alone[i]);
	}
	assert_string_equal(w[NP].res.finish_reason, "cancelled");
	assert_true(w[NP].res.completion_tokens >= 3 && w[NP].res.completion_tokens < 20);
	infer_result_release(&w[NP].res);
	buf_release(&w[NP].s.all);
	printf("batching: %d concurrent greedy requests match their solo runs; 1 cancelled\n", NP);
	infer_close(e);
}

static void *cancel_later(void *arg)
{
	usleep(20000);
	infer_cancel(arg);
	return NULL;
}

struct waiter { struct infer_job *j; struct infer_result res; };

static void *wait_job(void *arg)
{
	struct waiter *w = arg;

	infer_wait(w->j, &w->res);
	return NULL;
}

static void test_cancel_and_close(void **state)
{
	(void)state;
	struct infer_engine *e;
	struct infer_job *j, *j2;
	struct infer_request r = {0};
	struct infer_result res;
	int32_t bos = 1;
	pthread_t th;

	if (!have_model())
		return;
	e = open_engine(1, 2048);
	r.prompt = &bos;
	r.n_prompt = 1;
	r.max_tokens = 0; /* up to the whole context: long */
	assert_int_equal(infer_submit(e, &r, &j), ALLOT_OK);
	assert_int_equal(infer_submit(e, &r, &j2), ALLOT_OK); /* queued behind: one slot */
	infer_cancel(j2);
	pthread_create(&th, NULL, cancel_later, j);
	assert_int_equal(infer_wait(j, &res), ALLOT_OK);
	pthread_join(th, NULL);
	assert_string_equal(res.finish_reason, "cancelled");
	assert_true(res.completion_tokens < 2047);
	infer_result_release(&res);
	assert_int_equal(infer_wait(j2, &res), ALLOT_OK);
	assert_string_equal(res.finish_reason, "cancelled");
	assert_int_equal(res.completion_tokens, 0);
	infer_result_release(&res);
	/* closing with a request in flight cancels it; its waiter gets it back */
	assert_int_equal(infer_submit(e, &r, &j), ALLOT_OK);
	{
		struct waiter wt = {j, {0}};

		pthread_create(&th, NULL, wait_job, &wt);
		usleep(10000);
		infer_close(e);
		pthread_join(th, NULL);
		assert_string_equal(wt.res.finish_reason, "cancelled");
		infer_result_release(&wt.res);
	}
	{
		char err[256];
		struct infer_engine *e2;

		assert_int_equal(infer_open("/nonexistent.gguf", NULL, &e2, err, sizeof err), ALLOT_E_NOT_FOUND);
	}
}

/* BOS follows the vocabulary: tokenizer.ggml.add_bos_token when present
 * (Qwen's false), else SentencePiece and Llama 3 yes, other byte-level BPE
 * no -- for infer_tokenize(add_bos = true) (completions, the CLI) as for
 * chat prompts; a full engine (weights loaded) generates after either. */
static void test_bos_from_metadata(void **state)
{
	(void)state;
	static const struct { bool gpt2; const char *pre; int add_bos; bool want; } cases[] = {
		{false, NULL, 0, true},        {false, NULL, -1, false},      {true, "qwen2", -1, false},
		{true, "qwen2", 0, false},     {true, "llama-bpe", 0, true},  {true, "llama-bpe", -1, false},
		{true, "gpt2", 1, true},       {true, NULL, 0, false},
	};

	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		struct tiny_spec sp = {.dim = 64, .ffn = 128, .type = GGML_F32, .gpt2 = cases[ci].gpt2,
				       .pre = cases[ci].pre, .add_bos = cases[ci].add_bos};
		struct buf img = BUF_INIT;
		struct llama_model *m;
		char path[] = "/tmp/allot-test-bos-XXXXXX", err[256];
		int fd = mkstemp(path);
		struct infer_params p = {.vocab_only = ci % 2 == 0, .n_threads = 1, .n_ctx = 32};
		struct infer_engine *e;
		struct infer_info info;
		struct chat_msg msg = {"user", "ab"};
		int32_t *ids;
		size_t n;
		char *text;

		m = tiny_model_build(&sp, &img);
		llama_free(m); /* only its image is wanted: it loads */
		assert_true(fd >= 0);
		assert_int_equal(write(fd, img.data, img.len), (ssize_t)img.len);
		close(fd);
		if (infer_open(path, &p, &e, err, sizeof err) != ALLOT_OK)
			fail_msg("%s", err);
		infer_get_info(e, &info);
		assert_int_equal(infer_tokenize(e, "ab", 2, true, false, &ids, &n), ALLOT_OK);
		if ((n > 0 && ids[0] == info.bos) != cases[ci].want)
			fail_msg("case %zu: first id %d, BOS %d, want BOS %d", ci, n ? ids[0] : -1, info.bos,
				 cases[ci].want);
		free(ids);
		assert_int_equal(infer_tokenize(e, "ab", 2, false, false, &ids, &n), ALLOT_OK);
		assert_true(n > 0 && ids[0] != info.bos);
		free(ids);
		assert_int_equal(infer_chat(e, &msg, 1, &text, &ids, &n), ALLOT_OK);
		assert_true((ids[0] == info.bos) == cases[ci].want);
		free(text);
		free(ids);
		if (!p.vocab_only) {
			struct infer_request r = {.max_tokens = 3};
			struct infer_job *j;
			struct infer_result res;
			int32_t one = 5;

			r.prompt = &one;
			r.n_prompt = 1;
			assert_int_equal(infer_submit(e, &r, &j), ALLOT_OK);
			assert_int_equal(infer_wait(j, &res), ALLOT_OK);
			assert_true(res.completion_tokens >= 1);
			infer_result_release(&res);
		}
		infer_close(e);
		unlink(path);
		buf_release(&img);
	}
}

/* ---- the CLI ------------------------------------------------------------------- */

static char *run_cli(int argc, char **argv, int *rc)
{
	char path[] = "/tmp/allot-test-cli-XXXXXX";
	int fd = mkstemp(path), saved;
	FILE *f;
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t k;

	assert_true(fd >= 0);
	fflush(stdout);
	saved = dup(1);
	dup2(fd, 1);
	*rc = infer_cli(argc, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(fd);
	f = fopen(path, "rb");
	while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_append(&b, tmp, k);
	fclose(f);
	unlink(path);
	return buf_detach(&b, NULL);
}

static void test_cli(void **state)
{
	(void)state;
	char *out;
	int rc;

	if (!have_model())
		return;
	{
		char *argv[] = {"allotd", "--model", MODEL, "--prompt", "", "--max-tokens", "200", "--threads", "2"};

		out = run_cli(9, argv, &rc);
		assert_int_equal(rc, 0);
		assert_int_equal(strlen(out), strlen(REFERENCE) + 1);
		assert_memory_equal(out, REFERENCE, strlen(REFERENCE));
		free(out);
	}
	{
		char *argv[] = {"allotd", "--model", MODEL, "--tokenize", "Lily ran"};

		out = run_cli(5, argv, &rc);
		assert_int_equal(rc, 0);
		assert_true(strncmp(out, "1 ", 2) == 0);
		assert_non_null(strchr(out, '\n'));
		free(out);
	}
	{
		char *argv[] = {"allotd", "--model", MODEL, "--prompt", "Hi", "--temperature", "0.8",
				"--seed", "7", "--max-tokens", "5"};
		char *again;

		out = run_cli(11, argv, &rc);
		assert_int_equal(rc, 0);
		again = run_cli(11, argv, &rc);
		assert_string_equal(out, again);
		free(out);
		free(again);
	}
	{
		char *bad1[] = {"allotd", "--model", MODEL, "--prompt", "x", "--max-tokens", "-3"};
		char *bad2[] = {"allotd", "--model", MODEL};
		char *bad3[] = {"allotd", "--model", "/nonexistent.gguf", "--prompt", "x"};
		char *bad4[] = {"allotd", "--model", MODEL, "--prompt", "x", "--bogus", "1"};

		free(run_cli(7, bad1, &rc));
		assert_int_equal(rc, 2);
		free(run_cli(3, bad2, &rc));
		assert_int_equal(rc, 2);
		free(run_cli(5, bad3, &rc));
		assert_int_equal(rc, 1);
		free(run_cli(7, bad4, &rc));
		assert_int_equal(rc, 2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_streamed),
		cmocka_unit_test(test_sampling_and_limits),
		cmocka_unit_test(test_tokenize_detokenize),
		cmocka_unit_test(test_continuous_batching),
		cmocka_unit_test(test_cancel_and_close),
		cmocka_unit_test(test_bos_from_metadata),
		cmocka_unit_test(test_cli),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
