/* test_infer_sample.c — samplers and chat templates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "common/buf.h"
#include "infer/chat.h"
#include "infer/sample.h"

static void test_greedy(void **state)
{
	(void)state;
	float l[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, 0.0f};
	struct sample_cand c[6];
	struct sample_rng r;
	struct sample_params p = {0, 0, 1, 0};

	sample_seed(&r, 1);
	assert_int_equal(sample_next(l, 6, &p, &r, c), 1); /* ties: lowest id */
	p.temperature = 1.0f;
	p.top_k = 1;
	assert_int_equal(sample_next(l, 6, &p, &r, c), 1);
	p.top_k = 0;
	p.min_p = 1.0f; /* only the best survives; ties keep both */
	for (int i = 0; i < 50; i++) {
		int32_t t = sample_next(l, 6, &p, &r, c);

		assert_true(t == 1 || t == 3);
	}
	p.min_p = 0;
	p.top_p = 0.01f;
	for (int i = 0; i < 50; i++)
		assert_int_equal(sample_next(l, 6, &p, &r, c), 1);
}

static void test_distribution(void **state)
{
	(void)state;
	enum { N = 4, DRAWS = 20000 };
	float l[N] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
	struct sample_cand c[N];
	struct sample_rng r;
	struct sample_params p = {1.0f, 0, 1.0f, 0};
	int cnt[N] = {0};

	sample_seed(&r, 42);
	for (int i = 0; i < DRAWS; i++)
		cnt[sample_next(l, N, &p, &r, c)]++;
	for (int i = 0; i < N; i++)
		assert_true(fabs(cnt[i] / (double)DRAWS - 0.1 * (i + 1)) < 0.02);
	/* top-k 2 keeps ids 3 and 2 in ratio 4:3 */
	memset(cnt, 0, sizeof cnt);
	p.top_k = 2;
	for (int i = 0; i < DRAWS; i++)
		cnt[sample_next(l, N, &p, &r, c)]++;
	assert_int_equal(cnt[0] + cnt[1], 0);
	assert_true(fabs(cnt[3] / (double)DRAWS - 4.0 / 7) < 0.02);
	/* top-p 0.6: {0.4, 0.3} reach 0.7 >= 0.6 */
	memset(cnt, 0, sizeof cnt);
	p.top_k = 0;
	p.top_p = 0.6f;
	for (int i = 0; i < DRAWS; i++)
		cnt[sample_next(l, N, &p, &r, c)]++;
	assert_int_equal(cnt[0] + cnt[1], 0);
	/* min-p 0.6: 0.3 >= 0.24 stays, 0.2 < 0.24 goes */
	memset(cnt, 0, sizeof cnt);
	p.top_p = 1;
	p.min_p = 0.6f;
	for (int i = 0; i < DRAWS; i++)
		cnt[sample_next(l, N, &p, &r, c)]++;
	assert_int_equal(cnt[0] + cnt[1], 0);
	assert_true(cnt[2] > 0);
	/* low temperature sharpens */
	memset(cnt, 0, sizeof cnt);
	p.min_p = 0;
	p.temperature = 0.05f;
	for (int i = 0; i < 1000; i++)
		cnt[sample_next(l, N, &p, &r, c)]++;
	assert_true(cnt[3] > 990);
}

static void test_seed_determinism(void **state)
{
	(void)state;
	float l[100];
	struct sample_cand c[100];
	struct sample_rng a, b;
	struct sample_params p = {0.8f, 20, 0.9f, 0.01f};

	for (int i = 0; i < 100; i++)
		l[i] = sinf((float)i);
	sample_seed(&a, 7);
	sample_seed(&b, 7);
	for (int i = 0; i < 200; i++)
		assert_int_equal(sample_next(l, 100, &p, &a, c), sample_next(l, 100, &p, &b, c));
}

static void test_chat(void **state)
{
	(void)state;
	static const struct { const char *tmpl; enum chat_format want; } detect[] = {
		{NULL, CHAT_CHATML},
		{"{% for m in messages %}<|im_start|>{{m.role}}", CHAT_CHATML},
		{"{{ bos_token }}{% if ... %}[INST] <<SYS>>\n{{ system }}<</SYS>> {{ content }} [/INST]", CHAT_LLAMA2},
		{"{{ bos_token }}{% if ... %}[INST] {{ content }} [/INST]", CHAT_MISTRAL},
		{"{{ bos_token }}{% for m in messages %}<start_of_turn>{{ role }}\n", CHAT_GEMMA},
		{"<|start_header_id|>' + message['role'] + '<|end_header_id|>", CHAT_LLAMA3},
		{"<|user|>\n{{ content }}</s>\n<|assistant|>\n", CHAT_ZEPHYR},
		{"{{ something else }}", CHAT_UNSUPPORTED},
		{"{{- bos_token }}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
		 "{{- \"Cutting Knowledge Date: December 2023\\n\" }}", CHAT_LLAMA31},
		{"{%- set ns = namespace(last_query_index=messages|length - 1) %}<|im_start|>"
		 "{%- if '</think>' in content %}", CHAT_QWEN3},
		{"<|im_start|>{%- set content = message.content.split('</think>')[-1] %}", CHAT_CHATML},
		{"{{- bos_token }}{{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}", CHAT_MISTRAL3},
	};
	static const struct chat_msg msgs[] = {
		{"system", "Be kind."}, {"user", " Hi "}, {"assistant", "Hello."}, {"user", "Bye"},
	};
	static const struct { enum chat_format f; const char *want; } render[] = {
		{CHAT_CHATML, "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\n Hi <|im_end|>\n"
			      "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
			      "<|im_start|>assistant\n"},
		{CHAT_LLAMA2, "[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]"},
		{CHAT_LLAMA3, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe kind.<|eot_id|>"
			      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
			      "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
			      "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
			      "<|start_header_id|>assistant<|end_header_id|>\n\n"},
		{CHAT_ZEPHYR, "<|system|>\nBe kind.</s>\n<|user|>\n Hi </s>\n<|assistant|>\nHello.</s>\n"
			      "<|user|>\nBye</s>\n<|assistant|>\n"},
		/* Gemma 3's template: the system message leads the first turn */
		{CHAT_GEMMA, "<s><start_of_turn>user\nBe kind.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
			     "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"},
		/* Mistral Instruct v0.1/v0.2's template */
		{CHAT_MISTRAL, "<s>[INST] Be kind.\n\n Hi  [/INST]Hello.</s>[INST] Bye [/INST]"},
		/* Llama 3.1's: a system turn with the dates, its date_string default */
		{CHAT_LLAMA31, "<s><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
			       "Today Date: 26 Jul 2024\n\nBe kind.<|eot_id|>"
			       "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
			       "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
			       "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
			       "<|start_header_id|>assistant<|end_header_id|>\n\n"},
		/* Qwen 3's: chatml when no answer reasons */
		{CHAT_QWEN3, "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\n Hi <|im_end|>\n"
			     "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
			     "<|im_start|>assistant\n"},
		/* Mistral v0.3's: no space before [/INST], the system message
		 * before the last user message, answers trimmed after a space */
		{CHAT_MISTRAL3, "<s>[INST]  Hi [/INST] Hello.</s>[INST] Be kind.\n\nBye[/INST]"},
	};
	/* Qwen 3: earlier answers lose their reasoning, the last one (after
	 * the last user query) keeps it; only newlines are stripped around it
	 * (Python's lstrip('\n'), not all white space) */
	static const struct chat_msg think[] = {
		{"user", "Q1"}, {"assistant", "<think>\nhmm\n</think>\n\n A1"}, {"user", "Q2"},
		{"assistant", "<think>\t r2\n</think>A2"},
	};
	static const char think_want[] =
		"<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n A1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n"
		"<|im_start|>assistant\n<think>\n\t r2\n</think>\n\nA2<|im_end|>\n<|im_start|>assistant\n";

	for (size_t i = 0; i < sizeof detect / sizeof detect[0]; i++)
		assert_int_equal(chat_detect(detect[i].tmpl), detect[i].want);
	for (size_t i = 0; i < sizeof render / sizeof render[0]; i++) {
		struct buf b = BUF_INIT;

		assert_int_equal(chat_render(render[i].f, msgs, 4, "<s>", "</s>", NULL, &b), ALLOT_OK);
		if (strcmp(buf_str(&b), render[i].want))
			fail_msg("%s:\n%s", chat_format_name(render[i].f), buf_str(&b));
		buf_release(&b);
	}
	{
		struct buf b = BUF_INIT;

		assert_int_equal(chat_render(CHAT_QWEN3, think, 4, "", "", NULL, &b), ALLOT_OK);
		assert_string_equal(buf_str(&b), think_want);
		buf_release(&b);
		/* the date a llama-3.1 template writes */
		assert_int_equal(chat_render(CHAT_LLAMA31, msgs + 3, 1, "", "", "01 Feb 2025", &b), ALLOT_OK);
		assert_non_null(strstr(buf_str(&b), "system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
					      "Today Date: 01 Feb 2025\n\n<|eot_id|><|start_header_id|>user"));
		buf_release(&b);
	}
	{
		char d[CHAT_DATE_MAX], want[CHAT_DATE_MAX];
		time_t now = time(NULL);
		struct tm tm;

		chat_template_date(NULL, d);
		assert_string_equal(d, "26 Jul 2024");
		chat_template_date("{%- if not date_string is defined %}{%- set date_string = \"03 Mar 2025\" %}", d);
		assert_string_equal(d, "03 Mar 2025");
		/* Llama 3.2's: today's date (strftime in the C locale, UTC) */
		gmtime_r(&now, &tm);
		strftime(want, sizeof want, "%d %b %Y", &tm);
		chat_template_date("{%- if strftime_now is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}"
				   "{%- else %}{%- set date_string = \"26 Jul 2024\" %}", d);
		assert_string_equal(d, want);
	}
	{
		struct chat_msg bad = {NULL, "x"};
		struct buf b = BUF_INIT;

		assert_int_equal(chat_render(CHAT_CHATML, &bad, 1, "", "", NULL, &b), ALLOT_E_INVALID);
		/* a template none of the formats matches is refused */
		assert_int_equal(chat_render(CHAT_UNSUPPORTED, msgs, 4, "<s>", "</s>", NULL, &b), ALLOT_E_UNSUPPORTED);
		assert_int_equal(b.len, 0);
		assert_string_equal(chat_format_name(CHAT_UNSUPPORTED), "unsupported");
		buf_release(&b);
	}
}

/* OpenAI's penalties: logit -= frequency x count + presence (count > 0),
 * exactly, and only for tokens that occurred. */
static void test_penalties(void **state)
{
	(void)state;
	enum { N = 6 };
	float l[N] = {1.0f, 2.0f, 3.0f, -1.0f, 0.5f, 0.0f};
	float want[N];
	int32_t count[N] = {0, 3, 1, 0, 2, 0};
	int32_t uniq[] = {1, 2, 4};

	for (int i = 0; i < N; i++)
		want[i] = l[i] - (count[i] ? 0.5f * (float)count[i] + 0.25f : 0.0f);
	sample_apply_penalties(l, uniq, 3, count, 0.25f, 0.5f);
	for (int i = 0; i < N; i++)
		assert_true(l[i] == want[i]);
	/* negative penalties encourage repetition */
	sample_apply_penalties(l, uniq, 3, count, -0.25f, -0.5f);
	assert_true(l[1] == 2.0f && l[2] == 3.0f && l[4] == 0.5f && l[0] == 1.0f);
	/* the distribution follows: p ~ exp(logit) after penalties */
	{
		float m[2] = {0.0f, 0.0f};
		int32_t c2[2] = {0, 2}, u2[] = {1};
		struct sample_cand c[2];
		struct sample_rng r;
		struct sample_params p = {1.0f, 0, 1.0f, 0};
		int hits = 0;

		sample_apply_penalties(m, u2, 1, c2, 0.0f, logf(3.0f) / 2);   /* p1 / p0 = 1/3 */
		sample_seed(&r, 7);
		for (int i = 0; i < 20000; i++)
			hits += sample_next(m, 2, &p, &r, c) == 1;
		assert_true(fabs(hits / 20000.0 - 0.25) < 0.015);
	}
}

static void test_logit_bias(void **state)
{
	(void)state;
	float l[4] = {5.0f, 1.0f, 1.0f, 1.0f};
	struct sample_bias b[] = {{0, -100.0f}, {2, 3.0f}, {3, -0.5f}};
	struct sample_cand c[4];
	struct sample_rng r;
	struct sample_params p = {2.0f, 0, 1.0f, 0};

	sample_apply_bias(l, 4, b, 3);
	assert_true(isinf(l[0]) && l[0] < 0);
	assert_true(l[1] == 1.0f && l[2] == 4.0f && l[3] == 0.5f);
	sample_seed(&r, 3);
	for (int i = 0; i < 5000; i++)
		assert_int_not_equal(sample_next(l, 4, &p, &r, c), 0);   /* banned */
	p.temperature = 0;
	assert_int_equal(sample_next(l, 4, &p, &r, c), 2);
}

/* log-softmax: exp(logit - lse) sums to 1; the top list is sorted, ties
 * by lower id, and holds the largest. */
static void test_logprobs(void **state)
{
	(void)state;
	enum { N = 300 };
	float l[N];
	struct sample_cand top[20];
	struct sample_rng r;
	double lse, sum = 0;

	sample_seed(&r, 11);
	for (int i = 0; i < N; i++)
		l[i] = 20.0f * sample_uniform(&r) - 10.0f;
	l[17] = l[42] = 12.0f;
	l[5] = -INFINITY;
	lse = sample_logsumexp(l, N);
	for (int i = 0; i < N; i++)
		sum += exp(l[i] - lse);
	assert_true(fabs(sum - 1.0) < 1e-9);
	sample_top(l, N, 20, top);
	assert_int_equal(top[0].id, 17);
	assert_int_equal(top[1].id, 42);
	for (int i = 1; i < 20; i++)
		assert_true(top[i - 1].p >= top[i].p);
	for (int i = 0; i < N; i++) {
		bool in = false;

		for (int k = 0; k < 20; k++)
			in |= top[k].id == i;
		if (!in)
			assert_true(l[i] <= top[19].p);
	}
	l[0] = -INFINITY;
	for (int i = 0; i < N; i++)
		l[i] = -INFINITY;
	assert_true(isinf(sample_logsumexp(l, N)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greedy),
		cmocka_unit_test(test_distribution),
		cmocka_unit_test(test_seed_determinism),
		cmocka_unit_test(test_chat),
		cmocka_unit_test(test_penalties),
		cmocka_unit_test(test_logit_bias),
		cmocka_unit_test(test_logprobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
