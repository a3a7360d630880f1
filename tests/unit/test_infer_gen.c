/* test_infer_gen.c — issue 14's engine features on the stories model:
 * n sequences (one shared prefill), logit_bias and penalties through the
 * engine, logprobs, streaming chunks, JSON-constrained generation (every
 * sampled document parses and matches its schema: ALLOT_JSON_SAMPLES
 * generations, 200 by default, 1,000 in make soak), and embeddings
 * (bit-identical alone and in a batch of 8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "infer/backend.h"
#include "infer/engine.h"

#define MODEL "../shared/models/stories260K.gguf"

static struct infer_engine *eng;

static int setup(void **state)
{
	struct infer_params p = {.n_threads = 2, .n_slots = 8, .n_ctx = 512, .max_batch = 16};
	char err[256];

	(void)state;
	if (access(MODEL, R_OK) != 0)
		return 0;
	if (infer_open(MODEL, &p, &eng, err, sizeof err) != ALLOT_OK) {
		printf("%s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	infer_close(eng);
	eng = NULL;
	return 0;
}

static void need_model(void)
{
	if (!eng) {
		printf("skipped: " MODEL " absent\n");
		skip();
	}
}

static int32_t *tokens(const char *text, size_t *n)
{
	int32_t *ids;

	assert_int_equal(infer_tokenize(eng, text, strlen(text), true, false, &ids, n), ALLOT_OK);
	return ids;
}

static void generate(const struct infer_request *r, struct infer_result *res)
{
	assert_int_equal(infer_generate(eng, r, res), ALLOT_OK);
}

/* ---- n sequences ------------------------------------------------------- */

static void test_n_sequences(void **state)
{
	(void)state;
	struct infer_request r = {0};
	struct infer_result one, many, again;
	size_t n;
	int32_t *p;
	int sum = 0;

	need_model();
	p = tokens("Once upon a time", &n);
	r.prompt = p;
	r.n_prompt = n;
	r.max_tokens = 24;
	/* greedy: every sequence, from the copied cache, is the solo run */
	generate(&r, &one);
	r.n = 3;
	generate(&r, &many);
	assert_int_equal(many.n_choices, 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(many.choices[i].text, one.text);
		assert_int_equal(many.choices[i].completion_tokens, one.completion_tokens);
	}
	assert_int_equal(many.completion_tokens, 3 * one.completion_tokens);
	assert_int_equal(many.prompt_tokens, (int)n);
	infer_result_release(&one);
	infer_result_release(&many);
	/* sampled: sequence 0 is the n = 1 run of the seed; the others differ
	 * and the whole is reproducible */
	r.temperature = 1.0f;
	r.seed = 1234;
	r.n = 1;
	generate(&r, &one);
	r.n = 4;
	generate(&r, &many);
	generate(&r, &again);
	assert_string_equal(many.choices[0].text, one.text);
	assert_ptr_equal(many.text, many.choices[0].text);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(many.choices[i].text, again.choices[i].text);
		sum += many.choices[i].completion_tokens;
	}
	assert_int_equal(many.completion_tokens, sum);
	assert_true(strcmp(many.choices[1].text, many.choices[2].text) != 0 ||
		    strcmp(many.choices[1].text, many.choices[3].text) != 0);
	infer_result_release(&one);
	infer_result_release(&many);
	infer_result_release(&again);
	/* too many */
	r.n = 9;
	assert_int_equal(infer_generate(eng, &r, &one), ALLOT_E_INVALID);
	r.n = INFER_MAX_N + 1;
	assert_int_equal(infer_generate(eng, &r, &one), ALLOT_E_INVALID);
	free(p);
}

/* ---- logit_bias, penalties, validation ---------------------------------- */

static void test_bias_and_penalties(void **state)
{
	(void)state;
	struct infer_request r = {0};
	struct infer_result base, res;
	struct infer_bias ban;
	size_t n;
	int32_t *p, first;
	int32_t *ids;
	size_t nids;

	need_model();
	p = tokens("Once upon a time", &n);
	r.prompt = p;
	r.n_prompt = n;
	r.max_tokens = 40;
	r.logprobs = true;
	generate(&r, &base);
	first = base.choices[0].logprobs[0].id;
	/* banning the greedy first token changes the first token */
	ban = (struct infer_bias){first, -100};
	r.logit_bias = &ban;
	r.n_logit_bias = 1;
	generate(&r, &res);
	assert_int_not_equal(res.choices[0].logprobs[0].id, first);
	for (size_t i = 0; i < res.choices[0].n_logprobs; i++)
		assert_int_not_equal(res.choices[0].logprobs[i].id, first);
	infer_result_release(&res);
	/* a large positive bias makes a token the greedy choice */
	ban = (struct infer_bias){300, 100};
	generate(&r, &res);
	assert_int_equal(res.choices[0].logprobs[0].id, 300);
	infer_result_release(&res);
	r.logit_bias = NULL;
	r.n_logit_bias = 0;
	/* a strong frequency penalty: no token more than a few times in a
	 * greedy run that, without it, repeats itself */
	r.frequency_penalty = 2.0f;
	r.presence_penalty = 2.0f;
	generate(&r, &res);
	assert_true(strcmp(res.text, base.text) != 0);
	assert_int_equal(infer_tokenize(eng, res.text, res.text_len, false, false, &ids, &nids), ALLOT_OK);
	for (size_t i = 0; i < res.choices[0].n_logprobs; i++) {
		int c = 0;

		for (size_t k = 0; k < res.choices[0].n_logprobs; k++)
			c += res.choices[0].logprobs[k].id == res.choices[0].logprobs[i].id;
		assert_true(c <= 3);
	}
	free(ids);
	infer_result_release(&res);
	infer_result_release(&base);
	/* bad values are refused */
	r.frequency_penalty = 2.5f;
	assert_int_equal(infer_generate(eng, &r, &res), ALLOT_E_INVALID);
	r.frequency_penalty = 0;
	ban = (struct infer_bias){512, 1};
	r.logit_bias = &ban;
	r.n_logit_bias = 1;
	assert_int_equal(infer_generate(eng, &r, &res), ALLOT_E_INVALID);
	ban = (struct infer_bias){5, 101};
	assert_int_equal(infer_generate(eng, &r, &res), ALLOT_E_INVALID);
	r.n_logit_bias = 0;
	r.top_logprobs = 21;
	assert_int_equal(infer_generate(eng, &r, &res), ALLOT_E_INVALID);
	free(p);
}

/* ---- logprobs and chunks -------------------------------------------------- */

struct chunks { struct buf text[2]; size_t n_lp[2]; int calls; };

static int on_chunk(void *ctx, const struct infer_chunk *c)
{
	struct chunks *s = ctx;

	assert_true(c->index >= 0 && c->index < 2);
	buf_append(&s->text[c->index], c->text, c->len);
	s->n_lp[c->index] += c->n_lp;
	s->calls++;
	return 0;
}

static void test_logprobs(void **state)
{
	(void)state;
	struct infer_request r = {0};
	struct infer_result res;
	struct chunks s = {{BUF_INIT, BUF_INIT}, {0, 0}, 0};
	size_t n;
	int32_t *p;

	need_model();
	p = tokens("The cat", &n);
	r.prompt = p;
	r.n_prompt = n;
	r.max_tokens = 30;
	r.logprobs = true;
	r.top_logprobs = 5;
	r.temperature = 0.8f;
	r.seed = 99;
	r.n = 2;
	r.on_chunk = on_chunk;
	r.ctx = &s;
	generate(&r, &res);
	for (int c = 0; c < 2; c++) {
		const struct infer_choice *ch = &res.choices[c];
		struct buf joined = BUF_INIT;

		assert_int_equal((int)ch->n_logprobs, ch->completion_tokens);
		assert_int_equal((int)s.n_lp[c], ch->completion_tokens);
		assert_int_equal(s.text[c].len, ch->text_len);
		assert_memory_equal(buf_str(&s.text[c]), ch->text, ch->text_len);
		for (size_t i = 0; i < ch->n_logprobs; i++) {
			const struct infer_logprob *x = &ch->logprobs[i];
			double mass = 0;
			bool in_top = false;

			assert_int_equal(x->n_top, 5);
			assert_true(x->logprob <= 0);
			for (int k = 0; k < 5; k++) {
				assert_true(x->top[k].logprob <= 0);
				if (k)
					assert_true(x->top[k - 1].logprob >= x->top[k].logprob);
				in_top |= x->top[k].id == x->id;
				if (x->top[k].id == x->id)
					assert_true(x->top[k].logprob == x->logprob);
				mass += exp(x->top[k].logprob);
			}
			assert_true(mass <= 1.0 + 1e-5);
			if (!in_top)
				assert_true(x->logprob <= x->top[4].logprob);
			if (!(i + 1 == ch->n_logprobs && strcmp(ch->finish_reason, "stop") == 0)) {
				size_t len;
				const char *b = infer_token_bytes(eng, x->id, &len);

				assert_non_null(b);
				buf_append(&joined, b, len);
			}
		}
		/* the tokens' bytes are the text (the first piece's space aside) */
		assert_non_null(strstr(buf_str(&joined), ch->text + (ch->text[0] == ' ')));
		buf_release(&joined);
		buf_release(&s.text[c]);
	}
	assert_true(s.calls > 2);
	infer_result_release(&res);
	/* greedy: the chosen token is the most likely one */
	r.temperature = 0;
	r.n = 1;
	r.on_chunk = NULL;
	generate(&r, &res);
	for (size_t i = 0; i < res.choices[0].n_logprobs; i++) {
		assert_int_equal(res.choices[0].logprobs[i].id, res.choices[0].logprobs[i].top[0].id);
		assert_true(res.choices[0].logprobs[i].logprob == res.choices[0].logprobs[i].top[0].logprob);
	}
	infer_result_release(&res);
	free(p);
}

/* ---- JSON ------------------------------------------------------------------ */

/* An independent check of the schema subset (jansson's view of the text). */
static bool matches(const json_t *v, const json_t *s)
{
	const json_t *en = json_object_get(s, "enum"), *props, *req, *x;
	const char *t = json_string_value(json_object_get(s, "type")), *k;
	size_t i;

	if (en) {
		json_array_foreach(en, i, x)
			if (json_equal(x, v))
				return true;
		return false;
	}
	if (strcmp(t, "string") == 0)
		return json_is_string(v);
	if (strcmp(t, "integer") == 0)
		return json_is_integer(v);
	if (strcmp(t, "number") == 0)
		return json_is_number(v);
	if (strcmp(t, "boolean") == 0)
		return json_is_boolean(v);
	if (strcmp(t, "array") == 0) {
		if (!json_is_array(v))
			return false;
		json_array_foreach(v, i, x)
			if (!matches(x, json_object_get(s, "items")))
				return false;
		return true;
	}
	if (!json_is_object(v))
		return false;
	props = json_object_get(s, "properties");
	req = json_object_get(s, "required");
	json_object_foreach((json_t *)v, k, x)
		if (!json_object_get(props, k) || !matches(x, json_object_get(props, k)))
			return false;
	json_array_foreach(req, i, x)
		if (!json_object_get(v, json_string_value(x)))
			return false;
	return true;
}

static const char SCHEMA[] =
	"{\"type\":\"object\",\"properties\":{"
	"\"name\":{\"type\":\"string\"},"
	"\"age\":{\"type\":\"integer\"},"
	"\"mood\":{\"enum\":[\"happy\",\"sad\",3,null]},"
	"\"pets\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
	"\"kind\":{\"type\":\"string\"},\"legs\":{\"type\":\"number\"}},\"required\":[\"kind\"]}},"
	"\"ok\":{\"type\":\"boolean\"}},"
	"\"required\":[\"name\",\"mood\",\"ok\"]}";

static void test_json(void **state)
{
	(void)state;
	const char *env = getenv("ALLOT_JSON_SAMPLES");
	int samples = env ? atoi(env) : 200, parsed = 0, stopped = 0;
	json_t *schema = json_loads(SCHEMA, 0, NULL);
	struct infer_request r = {0};
	struct infer_result res;
	size_t n;
	int32_t *p;
	uint64_t seed = (uint64_t)time(NULL);

	need_model();
	assert_non_null(schema);
	p = tokens("Lily had a dog.", &n);
	r.prompt = p;
	r.n_prompt = n;
	r.temperature = 1.0f;
	printf("JSON: %d samples from seed %llu\n", samples, (unsigned long long)seed);
	for (int i = 0; i < samples; i++) {
		json_t *v;
		json_error_t je;

		r.seed = (int64_t)(seed + (uint64_t)i);
		r.format = i % 2 ? INFER_FMT_JSON_SCHEMA : INFER_FMT_JSON_OBJECT;
		r.json_schema = SCHEMA;
		r.json_schema_len = strlen(SCHEMA);
		r.max_tokens = (r.format == INFER_FMT_JSON_SCHEMA ? 36 : 12) + i % 40;
		generate(&r, &res);
		v = json_loads(res.text, JSON_DECODE_ANY, &je);
		if (!v || !json_is_object(v) || (r.format == INFER_FMT_JSON_SCHEMA && !matches(v, schema)))
			fail_msg("seed %lld, max_tokens %d, %s: %s (%s)", (long long)r.seed, r.max_tokens,
				 res.finish_reason, res.text, v ? "does not match" : je.text);
		if (i < 4)
			printf("  [%s]\n", res.text);
		parsed++;
		stopped += strcmp(res.finish_reason, "stop") == 0;
		assert_true(res.completion_tokens <= r.max_tokens);
		json_decref(v);
		infer_result_release(&res);
	}
	printf("JSON: %d of %d parsed and matched (%d ended by closing the document)\n", parsed, samples,
	       stopped);
	/* a budget below the shortest document: cut, finish_reason length */
	r.format = INFER_FMT_JSON_SCHEMA;
	r.max_tokens = 5;
	generate(&r, &res);
	assert_string_equal(res.finish_reason, "length");
	infer_result_release(&res);
	/* a schema outside the subset */
	r.json_schema = "{\"type\":\"object\",\"properties\":{\"a\":{\"oneOf\":[]}}}";
	r.json_schema_len = strlen(r.json_schema);
	assert_int_equal(infer_generate(eng, &r, &res), ALLOT_E_INVALID);
	json_decref(schema);
	free(p);
}

/* ---- embeddings ------------------------------------------------------------ */

static void test_embeddings(void **state)
{
	(void)state;
	static const char *const texts[8] = {
		"The little dog ran to the park and played with a red ball all day long until the sun went down.",
		"Once upon a time", "Lily", "A big tree.", "Tom and Sue went to the sea to swim with the fish.",
		"She said hello.", "The cat sat.", "Mom made a cake for the birthday party and everyone was happy.",
	};
	int32_t *in[8];
	size_t nt[8];
	struct infer_info info;
	float *alone, *batch, *again;
	double norm = 0, dot = 0;

	need_model();
	infer_get_info(eng, &info);
	assert_true(info.embeddings);
	assert_int_equal(info.n_embd, 64);
	for (int i = 0; i < 8; i++)
		in[i] = tokens(texts[i], &nt[i]);
	assert_true(nt[0] > 16);   /* several chunks (max_batch 16) */
	assert_int_equal(infer_embed(eng, (const int32_t *const *)in, nt, 1, &alone), ALLOT_OK);
	/* text 0 last in a batch of 8, and first */
	{
		int32_t *rev[8];
		size_t nrev[8];

		for (int i = 0; i < 8; i++) {
			rev[i] = in[7 - i];
			nrev[i] = nt[7 - i];
		}
		assert_int_equal(infer_embed(eng, (const int32_t *const *)rev, nrev, 8, &batch), ALLOT_OK);
		assert_memory_equal(alone, batch + 7 * 64, 64 * sizeof(float));
		free(batch);
	}
	assert_int_equal(infer_embed(eng, (const int32_t *const *)in, nt, 8, &batch), ALLOT_OK);
	assert_memory_equal(alone, batch, 64 * sizeof(float));
	/* while generation runs beside it */
	{
		struct infer_request r = {0};
		struct infer_job *j[3];
		struct infer_result res;

		r.prompt = in[1];
		r.n_prompt = nt[1];
		r.max_tokens = 60;
		for (int i = 0; i < 3; i++)
			assert_int_equal(infer_submit(eng, &r, &j[i]), ALLOT_OK);
		assert_int_equal(infer_embed(eng, (const int32_t *const *)in, nt, 8, &again), ALLOT_OK);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(infer_wait(j[i], &res), ALLOT_OK);
			infer_result_release(&res);
		}
		assert_memory_equal(batch, again, 8 * 64 * sizeof(float));
		free(again);
	}
	for (int d = 0; d < 64; d++) {
		norm += (double)alone[d] * alone[d];
		dot += (double)batch[64 + d] * batch[2 * 64 + d];
	}
	assert_true(fabs(norm - 1.0) < 1e-5);
	assert_true(dot < 0.9999);   /* different texts, different vectors */
	/* refusals */
	{
		size_t zero = 0, big = 513;
		int32_t bad = 512;
		const int32_t *pb = &bad;

		assert_int_equal(infer_embed(eng, (const int32_t *const *)in, &zero, 1, &again), ALLOT_E_INVALID);
		assert_int_equal(infer_embed(eng, &pb, &nt[2], 1, &again), ALLOT_E_INVALID);
		assert_int_equal(infer_embed(eng, (const int32_t *const *)in, &big, 1, &again), ALLOT_E_TOO_LARGE);
	}
	free(alone);
	free(batch);
	for (int i = 0; i < 8; i++)
		free(in[i]);
}

/* A backend without the optional operations: n sequences prefill each,
 * with the same results; embeddings are refused. */
static void test_backend_without_options(void **state)
{
	(void)state;
	struct infer_backend_ops bare = infer_backend_cpu;
	struct infer_params p = {.n_threads = 2, .n_slots = 4, .n_ctx = 256, .max_batch = 16, .backend = &bare};
	struct infer_engine *e2;
	struct infer_request r = {0};
	struct infer_result a, b;
	struct infer_info info;
	char err[256];
	size_t n;
	int32_t *ids;
	float *v;

	need_model();
	bare.embed = NULL;
	bare.copy_seq = NULL;
	assert_int_equal(infer_open(MODEL, &p, &e2, err, sizeof err), ALLOT_OK);
	infer_get_info(e2, &info);
	assert_false(info.embeddings);
	ids = tokens("Once upon a time", &n);
	assert_int_equal(infer_embed(e2, (const int32_t *const *)&ids, &n, 1, &v), ALLOT_E_UNSUPPORTED);
	r.prompt = ids;
	r.n_prompt = n;
	r.max_tokens = 20;
	r.temperature = 0.9f;
	r.seed = 77;
	r.n = 3;
	assert_int_equal(infer_generate(e2, &r, &a), ALLOT_OK);
	generate(&r, &b);   /* the engine with copy_seq */
	for (int i = 0; i < 3; i++)
		assert_string_equal(a.choices[i].text, b.choices[i].text);
	infer_result_release(&a);
	infer_result_release(&b);
	infer_close(e2);
	free(ids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_n_sequences),
		cmocka_unit_test(test_bias_and_penalties),
		cmocka_unit_test(test_logprobs),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_embeddings),
		cmocka_unit_test(test_backend_without_options),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
