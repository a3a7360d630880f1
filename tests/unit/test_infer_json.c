/* test_infer_json.c — the JSON grammar of constrained sampling (jsong):
 * the JSONTestSuite corpus (every y_ file accepted, every n_ file
 * rejected), schema compilation and its refusals, generation-mode limits,
 * and the distance-to-completion that lets the engine close a document
 * before its token budget runs out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/err.h"
#include "infer/engine.h"
#include "infer/jsong.h"

#define CORPUS "../shared/vectors/json"

static bool accepts(const struct jsong_schema *s, bool gen, const char *text, size_t len)
{
	struct jsong g;

	jsong_init(&g, s, gen);
	return jsong_feed(&g, text, len) && jsong_complete(&g);
}

static bool accepts_str(const struct jsong_schema *s, bool gen, const char *text)
{
	return accepts(s, gen, text, strlen(text));
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;

	*len = 0;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void test_corpus(void **state)
{
	(void)state;
	DIR *d = opendir(CORPUS);
	struct dirent *de;
	int y = 0, n = 0, bad = 0;

	if (!d) {
		printf("skipped: " CORPUS " absent\n");
		skip();
	}
	while ((de = readdir(d))) {
		char path[512];
		size_t len;
		char *text;
		bool ok;

		if ((de->d_name[0] != 'y' && de->d_name[0] != 'n') || de->d_name[1] != '_')
			continue;
		snprintf(path, sizeof path, CORPUS "/%s", de->d_name);
		text = slurp(path, &len);
		assert_non_null(text);
		ok = accepts(NULL, false, text, len);
		if (ok != (de->d_name[0] == 'y')) {
			printf("wrong: %s %s\n", de->d_name, ok ? "accepted" : "rejected");
			bad++;
		}
		if (de->d_name[0] == 'y')
			y++;
		else
			n++;
		free(text);
	}
	closedir(d);
	printf("JSONTestSuite: %d y_ accepted, %d n_ rejected, %d wrong\n", y, n, bad);
	assert_true(y > 90 && n > 150);
	assert_int_equal(bad, 0);
}

static void test_generation_mode(void **state)
{
	(void)state;
	/* json_object: an object and nothing after it */
	assert_true(accepts_str(NULL, true, "{}"));
	assert_false(accepts_str(NULL, true, " {}"));     /* the brace first */
	assert_true(accepts_str(NULL, true, "{\"a\": [1, 2.5e3, true, null, \"x\\n\"], \"b\": {}}"));
	assert_false(accepts_str(NULL, true, "[1]"));
	assert_false(accepts_str(NULL, true, "\"s\""));
	assert_false(accepts_str(NULL, true, "{} "));
	assert_false(accepts_str(NULL, true, "{\"a\":1"));
	assert_false(accepts_str(NULL, true, "{\"a\":\"\\u0041\"}"));      /* no \u in generation */
	assert_true(accepts_str(NULL, false, "{\"a\":\"\\u0041\"}"));
	assert_false(accepts_str(NULL, true, "{\"a\":1234567890123456}")); /* 16 digits */
	assert_true(accepts_str(NULL, true, "{\"a\":123456789012345}"));
	assert_false(accepts_str(NULL, true, "{\"a\":1e100}"));
	assert_true(accepts_str(NULL, true, "{\"a\":1e99}"));
	assert_false(accepts_str(NULL, true, "{     \"a\":1}"));             /* 5 spaces */
	assert_true(accepts_str(NULL, true, "{\n   \"a\":1}"));
	assert_false(accepts_str(NULL, true, "{\"a\":\"\xed\xa0\x80\"}"));    /* a surrogate in UTF-8 */
	assert_true(accepts_str(NULL, true, "{\"a\":\"\xf0\x9f\x98\x80\"}"));
}

static struct jsong_schema *compile_ok(const char *text)
{
	struct jsong_schema *s;
	char msg[256];

	if (jsong_schema_compile(text, strlen(text), &s, msg, sizeof msg) != ALLOT_OK)
		fail_msg("%s: %s", text, msg);
	return s;
}

static void test_schema(void **state)
{
	(void)state;
	struct jsong_schema *s = compile_ok(
		"{\"type\":\"object\",\"properties\":{"
		"\"name\":{\"type\":\"string\"},"
		"\"age\":{\"type\":\"integer\",\"description\":\"years\"},"
		"\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"bc\",1,null]}},"
		"\"ok\":{\"type\":\"boolean\"},"
		"\"pos\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"number\"}},\"required\":[\"x\"],"
		"\"additionalProperties\":false}},"
		"\"required\":[\"name\",\"ok\"]}");

	assert_true(accepts_str(s, true, "{\"name\":\"x\",\"ok\":true}"));
	assert_true(accepts_str(s, true, "{\"name\":\"x\",\"age\":-3,\"tags\":[\"bc\",1,null],\"ok\":false,\"pos\":{\"x\":1.5}}"));
	assert_false(accepts_str(s, true, "{\"ok\":true}"));                  /* name required */
	assert_false(accepts_str(s, true, "{\"ok\":true,\"name\":\"x\"}"));   /* order */
	assert_false(accepts_str(s, true, "{\"name\":\"x\",\"age\":1.5,\"ok\":true}"));
	assert_false(accepts_str(s, true, "{\"name\":\"x\",\"tags\":[\"b\"],\"ok\":true}"));
	assert_false(accepts_str(s, true, "{\"name\":\"x\",\"ok\":1}"));
	assert_false(accepts_str(s, true, "{\"name\":\"x\",\"ok\":true,\"pos\":{}}"));
	assert_false(accepts_str(s, true, "{\"name\":\"x\",\"ok\":true,\"zzz\":1}"));
	assert_false(accepts_str(s, true, "{\"name\":1,\"ok\":true}"));
	jsong_schema_free(s);
}

static void test_schema_refusals(void **state)
{
	(void)state;
	static const struct { const char *schema; allot_err e; const char *msg; } cases[] = {
		{"{\"type\":\"object\",\"properties\":{\"a\":{\"anyOf\":[]}}}", ALLOT_E_UNSUPPORTED,
		 "\"anyOf\" is not supported (at properties.a)"},
		{"{\"type\":\"string\"}", ALLOT_E_UNSUPPORTED, "the root must be an object"},
		{"{\"type\":\"object\",\"additionalProperties\":true}", ALLOT_E_UNSUPPORTED, "additionalProperties"},
		{"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"pattern\":\"x\"}}}",
		 ALLOT_E_UNSUPPORTED, "\"pattern\" is not supported"},
		{"{\"type\":\"object\",\"required\":[\"b\"]}", ALLOT_E_INVALID, "\"required\""},
		{"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"strin\"}}}", ALLOT_E_INVALID,
		 "\"strin\" is not a JSON Schema type"},
		{"{\"type\":[\"string\",\"null\"]}", ALLOT_E_UNSUPPORTED, "type lists"},
		{"{\"type\":\"object\"", ALLOT_E_INVALID, ""},
		{"[]", ALLOT_E_INVALID, "must be an object"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct jsong_schema *s = (void *)1;
		char msg[256] = "";
		allot_err e = jsong_schema_compile(cases[i].schema, strlen(cases[i].schema), &s, msg, sizeof msg);

		if (e != cases[i].e || !strstr(msg, cases[i].msg))
			fail_msg("%s: %d %s", cases[i].schema, e, msg);
		assert_null(s);
		assert_int_equal(infer_schema_check(cases[i].schema, strlen(cases[i].schema), msg, sizeof msg),
				 cases[i].e);
	}
}

/* jsong_dist: feeding what it promises completes the document, with
 * exactly that many bytes (checked by the shortest completions). */
static void test_distance(void **state)
{
	(void)state;
	struct jsong_schema *s = compile_ok(
		"{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"
		"\"n\":{\"type\":\"string\"},\"c\":{\"enum\":[\"red\",\"blue\"]},"
		"\"l\":{\"type\":\"array\",\"items\":{\"type\":\"number\"}}},\"required\":[\"id\",\"c\"]}");
	static const struct { const char *prefix, *rest; } cases[] = {
		{"", "{\"id\":0,\"c\":\"red\"}"},
		{"{", "\"id\":0,\"c\":\"red\"}"},
		{"{\"i", "d\":0,\"c\":\"red\"}"},
		{"{\"id\":", "0,\"c\":\"red\"}"},
		{"{\"id\":-", "0,\"c\":\"red\"}"},
		{"{\"id\":12", ",\"c\":\"red\"}"},
		{"{\"id\":12,\"n\":\"ab\\", "n\",\"c\":\"red\"}"},
		{"{\"id\":12,\"c\":\"b", "lue\"}"},
		{"{\"id\":12,\"c\":\"blue\",\"l\":[1.", "0]}"},
		{"{\"id\":12,\"c\":\"blue\"", "}"},
		{"{\"id\":12,\"c\":\"blue\",", "\"l\":[]}"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct jsong g;

		jsong_init(&g, s, true);
		assert_true(jsong_feed(&g, cases[i].prefix, strlen(cases[i].prefix)));
		assert_false(jsong_complete(&g));
		if (jsong_dist(&g) != (int)strlen(cases[i].rest))
			fail_msg("after %s: dist %d, want %zu", cases[i].prefix, jsong_dist(&g), strlen(cases[i].rest));
		assert_true(jsong_feed(&g, cases[i].rest, strlen(cases[i].rest)));
		assert_true(jsong_complete(&g));
		assert_int_equal(jsong_dist(&g), 0);
	}
	jsong_schema_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_generation_mode),
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_schema_refusals),
		cmocka_unit_test(test_distance),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
