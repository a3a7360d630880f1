/* test_oai.c — the gate's OpenAI request bodies (api/oai.c), table-driven:
 * what is accepted and into what (content parts, developer, no-ops, prompt
 * arrays, n, the engine fields), and what is refused, with which error,
 * code and param, before anything is admitted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/oai.h"
#include "common/json.h"

static allot_err parse(const char *text, enum oai_kind kind, struct oai_req *r, struct oai_err *er)
{
	json_t *b = NULL;
	char msg[256];
	assert_int_equal(json_parse(text, strlen(text), false, &b, msg, sizeof msg), ALLOT_OK);
	memset(er, 0, sizeof *er);
	allot_err e = oai_parse(b, kind, r, er);
	/* the request borrows strings from the body: keep it alive with r */
	json_decref(b);
	return e;
}

struct bad_case {
	enum oai_kind kind;
	const char *body;
	allot_err e;
	const char *code;   /* NULL: err_code(e) */
	const char *param;  /* "" : none */
};

static void test_refused(void **state)
{
	(void)state;
	static const struct bad_case cases[] = {
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"colour\":1}",
		 ALLOT_E_INVALID, NULL, "colour"},
		{OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", ALLOT_E_INVALID, NULL, "model"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[]}", ALLOT_E_INVALID, NULL, "messages"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":null}]}",
		 ALLOT_E_INVALID, NULL, "messages[0].content"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"u\"}}]}]}",
		 ALLOT_E_UNSUPPORTED, "unsupported", "messages[0].content[1]"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
		 ALLOT_E_INVALID, NULL, "messages[0].content[0]"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
		 ALLOT_E_INVALID, NULL, "messages[0]"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\",\"tool_call_id\":\"c\"}]}",
		 ALLOT_E_UNSUPPORTED, "unsupported", "messages[0]"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\"}]}]}",
		 ALLOT_E_UNSUPPORTED, "unsupported", "messages[0]"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}",
		 ALLOT_E_UNSUPPORTED, "unsupported", "tools"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}",
		 ALLOT_E_UNSUPPORTED, "unsupported", "tool_choice"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"yaml\"}}",
		 ALLOT_E_INVALID, NULL, "response_format"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\"}}}",
		 ALLOT_E_INVALID, NULL, "response_format"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}",
		 ALLOT_E_INVALID, NULL, "top_logprobs"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"a\":1}}",
		 ALLOT_E_INVALID, NULL, "logit_bias"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"5\":101}}",
		 ALLOT_E_INVALID, NULL, "logit_bias"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"presence_penalty\":2.5}",
		 ALLOT_E_INVALID, NULL, "presence_penalty"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":9}",
		 ALLOT_E_INVALID, NULL, "n"},
		{OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":{\"include_usage\":1}}",
		 ALLOT_E_INVALID, NULL, "stream_options.include_usage"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":5}", ALLOT_E_INVALID, NULL, "prompt"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[\"a\",5]}", ALLOT_E_INVALID, NULL, "prompt"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[]}", ALLOT_E_INVALID, NULL, "prompt"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[[1,-2]]}", ALLOT_E_INVALID, NULL, "prompt"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\",\"c\",\"d\",\"e\"],\"n\":2}",
		 ALLOT_E_INVALID, NULL, "prompt"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"echo\":true}", ALLOT_E_UNSUPPORTED, "unsupported", "echo"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"best_of\":3}", ALLOT_E_UNSUPPORTED, "unsupported", "best_of"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"suffix\":\"y\"}", ALLOT_E_UNSUPPORTED, "unsupported", "suffix"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"logprobs\":6}", ALLOT_E_INVALID, NULL, "logprobs"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":0}", ALLOT_E_INVALID, NULL, "max_tokens"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":[\"\"]}", ALLOT_E_INVALID, NULL, "stop"},
		{OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"messages\":[]}", ALLOT_E_INVALID, NULL, "messages"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct oai_req *r = calloc(1, sizeof *r);
		struct oai_err er;
		allot_err e = parse(cases[i].body, cases[i].kind, r, &er);
		if (e != cases[i].e || strcmp(er.param, cases[i].param) ||
		    (cases[i].code ? !er.code || strcmp(er.code, cases[i].code) : er.code != NULL) ||
		    !er.msg[0])
			fail_msg("case %zu %s: got %s code %s param \"%s\" (%s)", i, cases[i].body,
				 err_code(e), er.code ? er.code : "-", er.param, er.msg);
		oai_req_release(r);
		free(r);
	}
}

static void test_chat_accepted(void **state)
{
	(void)state;
	struct oai_req *r = calloc(1, sizeof *r);
	struct oai_err er;
	json_t *b = json_loads("{\"model\":\"m\",\"messages\":["
		"{\"role\":\"developer\",\"content\":\"Be brief.\"},"
		"{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Once \"},{\"type\":\"text\",\"text\":\"upon\"}]},"
		"{\"role\":\"assistant\",\"content\":null,\"refusal\":null,\"tool_calls\":[]}],"
		"\"response_format\":{\"type\":\"text\"},\"logprobs\":false,\"tools\":[],\"tool_choice\":\"none\","
		"\"parallel_tool_calls\":false,\"store\":true,\"service_tier\":\"auto\",\"logit_bias\":{},"
		"\"user\":\"u\",\"metadata\":{\"k\":\"v\"},\"n\":3,\"max_completion_tokens\":7,"
		"\"stream\":true,\"stream_options\":{\"include_usage\":true}}", 0, NULL);
	assert_non_null(b);
	memset(&er, 0, sizeof er);
	assert_int_equal(oai_parse(b, OAI_CHAT, r, &er), ALLOT_OK);
	assert_int_equal(r->nmsgs, 3);
	assert_string_equal(r->msgs[0].role, "system");
	assert_string_equal(r->msgs[1].content, "Once upon");
	assert_string_equal(r->msgs[2].role, "assistant");
	assert_string_equal(r->msgs[2].content, "");
	assert_int_equal(r->n, 3);
	assert_int_equal(oai_nseqs(r), 3);
	assert_int_equal(r->max_tokens, 7);
	assert_true(r->stream && r->include_usage);
	assert_null(r->logit_bias);           /* {} is a no-op */
	assert_null(r->response_format);      /* text is a no-op */
	assert_int_equal(r->logprobs, -1);    /* false is a no-op */
	/* a no-op request asks the engine for nothing it may lack */
	assert_int_equal(oai_engine_features(NULL, r, &er), ALLOT_OK);
	oai_req_release(r);
	free(r);
	json_decref(b);
}

static void test_completions_prompts(void **state)
{
	(void)state;
	struct oai_req *r = calloc(1, sizeof *r);
	struct oai_err er;
	json_t *b = json_loads("{\"model\":\"m\",\"prompt\":[\"ab\",\"cde\"],\"n\":2,\"seed\":5}", 0, NULL);
	assert_int_equal(oai_parse(b, OAI_COMPLETIONS, r, &er), ALLOT_OK);
	assert_int_equal(r->nprompts, 2);
	assert_int_equal(oai_nseqs(r), 4);
	assert_int_equal(r->prompt_len[1], 3);
	/* the remote bound: every prompt's bytes and room for BOS */
	assert_true(oai_prompt_bound(r) >= 5);
	oai_req_release(r);
	json_decref(b);
	b = json_loads("{\"model\":\"m\",\"prompt\":[[1,2,3],[4]]}", 0, NULL);
	assert_int_equal(oai_parse(b, OAI_COMPLETIONS, r, &er), ALLOT_OK);
	assert_int_equal(r->nprompts, 2);
	assert_non_null(r->prompt_ids[0]);
	assert_int_equal(r->prompt_len[0], 3);
	oai_req_release(r);
	json_decref(b);
	b = json_loads("{\"model\":\"m\",\"prompt\":[1,2,3]}", 0, NULL);
	assert_int_equal(oai_parse(b, OAI_COMPLETIONS, r, &er), ALLOT_OK);
	assert_int_equal(r->nprompts, 1);
	assert_int_equal(r->prompt_len[0], 3);
	oai_req_release(r);
	json_decref(b);
	free(r);
}

static void test_engine_fields(void **state)
{
	(void)state;
	struct oai_req *r = calloc(1, sizeof *r);
	struct oai_err er;
	json_t *b = json_loads("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
			       "\"presence_penalty\":0.5,\"frequency_penalty\":-1,\"logit_bias\":{\"7\":-100},"
			       "\"logprobs\":true,\"top_logprobs\":3,\"response_format\":{\"type\":\"json_object\"}}",
			       0, NULL);
	assert_int_equal(oai_parse(b, OAI_CHAT, r, &er), ALLOT_OK);
	assert_true(r->presence_penalty == 0.5 && r->frequency_penalty == -1);
	assert_non_null(r->logit_bias);
	assert_int_equal(r->logprobs, 0);
	assert_int_equal(r->top_logprobs, 3);
	assert_non_null(r->response_format);
#ifndef OAI_ENGINE_FEATURES
	/* an engine without them: each refused, naming the first */
	assert_int_equal(oai_engine_features(NULL, r, &er), ALLOT_E_UNSUPPORTED);
	assert_string_equal(er.param, "presence_penalty");
	assert_string_equal(er.code, "unsupported");
#endif
	oai_req_release(r);
	json_decref(b);
	free(r);
}

static void test_content_parts(void **state)
{
	(void)state;
	struct oai_req *r = calloc(1, sizeof *r);
	struct oai_err er = {0};
	oai_req_init(r, OAI_RESPONSES);
	json_t *c = json_loads("[{\"type\":\"input_text\",\"text\":\"a\"},{\"type\":\"output_text\",\"text\":\"b\",\"annotations\":[]}]", 0, NULL);
	assert_int_equal(oai_add_content(r, "user", c, "input[0].content", &er), ALLOT_OK);
	assert_string_equal(r->msgs[0].content, "ab");
	json_decref(c);
	c = json_loads("[{\"type\":\"input_image\",\"image_url\":\"u\"}]", 0, NULL);
	assert_int_equal(oai_add_content(r, "user", c, "input[1].content", &er), ALLOT_E_UNSUPPORTED);
	assert_string_equal(er.param, "input[1].content[0]");
	json_decref(c);
	assert_int_equal(oai_add_content(r, "user", NULL, "input[2].content", &er), ALLOT_E_INVALID);
	assert_int_equal(r->nmsgs, 1);
	oai_req_release(r);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_chat_accepted),
		cmocka_unit_test(test_completions_prompts),
		cmocka_unit_test(test_engine_fields),
		cmocka_unit_test(test_content_parts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
