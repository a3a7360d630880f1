/* test_charter_diff.c — charter_diff() reports every kind of change the
 * issue found missing (rates, a removed member, soft -> hard, tighter
 * limits, alerts, models, providers, webhooks, `public`), and
 * charter_diff_print() writes them
 * as text lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "charter/charter.h"

static const char v1[] =
	"charter: t\n"
	"version: 1\n"
	"effective: 2026-01-01T00:00:00Z\n"
	"timezone: UTC\n"
	"rates:\n"
	"  - {resource: tokens_in, credits: 0.0001}\n"
	"  - {resource: tokens_out, credits: 0.0003}\n"
	"models:\n"
	"  - {id: stories, provider: local, file: s.gguf}\n"
	"providers:\n"
	"  - {id: local, builtin: true}\n"
	"institutions:\n"
	"  - id: epfl\n"
	"    allocation: {credits: 1000, period: month}\n"
	"    limits: {requests_per_minute: 600}\n"
	"    overage: {mode: soft, grace_percent: 10}\n"
	"    alerts: [80, 100]\n"
	"    projects:\n"
	"      - id: p\n"
	"        allocation: {credits: 500, period: month}\n"
	"        members: [alice, bob]\n";

/* rates x10, bob removed, carol added, soft -> hard, a tighter limit, new
 * alerts, a model list, a new model and provider; allocations unchanged */
static const char v2[] =
	"charter: t\n"
	"version: 2\n"
	"effective: 2026-01-01T00:00:00Z\n"
	"timezone: UTC\n"
	"rates:\n"
	"  - {resource: tokens_in, credits: 0.001}\n"
	"  - {resource: tokens_out, credits: 0.0003}\n"
	"models:\n"
	"  - {id: stories, provider: local, file: s.gguf}\n"
	"  - {id: big, provider: remote, url: \"http://10.0.0.5:8000/v1\"}\n"
	"providers:\n"
	"  - {id: local, builtin: true}\n"
	"  - {id: remote}\n"
	"institutions:\n"
	"  - id: epfl\n"
	"    allocation: {credits: 1000, period: month}\n"
	"    limits: {requests_per_minute: 60}\n"
	"    overage: {mode: hard}\n"
	"    alerts: [50, 80, 100]\n"
	"    models: [stories]\n"
	"    projects:\n"
	"      - id: p\n"
	"        allocation: {credits: 500, period: month}\n"
	"        limits: {concurrent_requests: 2}\n"
	"        members: [alice, carol]\n";

static struct charter *parse(const char *yaml)
{
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *c = NULL;
	allot_err e = charter_parse("t.yaml", yaml, strlen(yaml), &c, &errs);
	if (e)
		charter_errors_print(&errs, stderr);
	charter_errors_release(&errs);
	assert_int_equal(e, ALLOT_OK);
	return c;
}

static char *dump(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(s);
	return s;
}

static void expect(const json_t *j, const char *want)
{
	char *s = dump(j);
	if (strcmp(s, want) != 0)
		fprintf(stderr, "got:  %s\nwant: %s\n", s, want);
	assert_string_equal(s, want);
	free(s);
}

static void test_terms(void **state)
{
	(void)state;
	struct charter *a = parse(v1), *b = parse(v2);
	json_t *d = charter_diff(a, b);
	assert_non_null(d);
	expect(json_object_get(d, "rates"),
	       "[{\"change\":\"changed\",\"class\":null,\"from\":\"0.0001\",\"model\":null,"
	       "\"resource\":\"tokens_in\",\"to\":\"0.001\"}]");
	expect(json_object_get(d, "providers"), "[{\"change\":\"added\",\"id\":\"remote\"}]");
	expect(json_object_get(d, "models"),
	       "[{\"change\":\"added\",\"from\":null,\"id\":\"big\",\"to\":{\"provider\":\"remote\","
	       "\"upstream_model\":\"big\",\"url\":\"http://10.0.0.5:8000/v1\"}}]");
	json_t *in = json_array_get(json_object_get(d, "institutions"), 0);
	assert_non_null(in);
	assert_int_equal(json_array_size(json_object_get(d, "institutions")), 1);
	expect(json_object_get(in, "limits"), "{\"requests_per_minute\":{\"from\":600,\"to\":60}}");
	expect(json_object_get(in, "overage"), "{\"from\":{\"grace_percent\":\"10\",\"mode\":"
					       "\"soft\"},\"to\":{\"mode\":\"hard\"}}");
	expect(json_object_get(in, "alerts"), "{\"from\":[80,100],\"to\":[50,80,100]}");
	expect(json_object_get(in, "models"), "{\"from\":\"all\",\"to\":[\"stories\"]}");
	json_t *p = json_array_get(json_object_get(in, "projects"), 0);
	expect(json_object_get(p, "members"), "{\"added\":[\"carol\"],\"removed\":[\"bob\"]}");
	expect(json_object_get(p, "limits"), "{\"concurrent_requests\":{\"from\":null,\"to\":2}}");
	assert_null(json_object_get(p, "allocation"));

	/* the text form: one line per change */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	charter_diff_print(d, f);
	fclose(f);
	const char *lines[] = {"version 1 -> 2\n", "rate tokens_in: 0.0001 -> 0.001\n",
			       "provider remote: added\n",
			       "institution epfl: changed\n",
			       "  limit requests_per_minute: 600 -> 60\n",
			       "  overage: soft (grace 10%) -> hard\n",
			       "  alerts: 80,100 -> 50,80,100\n", "  models: all -> stories\n",
			       "  project p: changed\n", "    members: +carol -bob\n",
			       "    limit concurrent_requests: - -> 2\n"};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		if (!strstr(text, lines[i]))
			fprintf(stderr, "missing line [%s] in:\n%s", lines[i], text);
		assert_non_null(strstr(text, lines[i]));
	}
	free(text);
	json_decref(d);

	/* the same charter: nothing but the versions */
	d = charter_diff(a, a);
	expect(d, "{\"from_version\":1,\"institutions\":[],\"to_version\":1}");
	json_decref(d);
	/* back again: the rate falls, bob returns, a model and provider go */
	d = charter_diff(b, a);
	expect(json_object_get(d, "providers"), "[{\"change\":\"removed\",\"id\":\"remote\"}]");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(d, "models"), 0), "change")),
			    "removed");
	json_decref(d);
	charter_free(a);
	charter_free(b);
}

/* Webhook receivers added, removed and sent other events; `public`. */
static void test_webhooks_public(void **state)
{
	(void)state;
	char y1[sizeof v1 + 512], y2[sizeof v1 + 512];
	snprintf(y1, sizeof y1, "%swebhooks:\n"
				"  - {url: \"https://a.example/h\", events: [alert]}\n"
				"  - {url: \"https://b.example/h\", events: [charter]}\n", v1);
	snprintf(y2, sizeof y2, "%swebhooks:\n"
				"  - {url: \"https://a.example/h\", events: [alert, overage]}\n"
				"  - {url: \"https://c.example/h\", events: [settlement_failed]}\n"
				"public: true\n", v1);
	char *v = strstr(y2, "version: 1");
	v[9] = '2';
	struct charter *a = parse(y1), *b = parse(y2);
	json_t *d = charter_diff(a, b);
	assert_non_null(d);
	expect(json_object_get(d, "webhooks"),
	       "[{\"change\":\"changed\",\"from\":[\"alert\"],\"to\":[\"alert\",\"overage\"],"
	       "\"url\":\"https://a.example/h\"},{\"change\":\"added\",\"from\":null,\"to\":"
	       "[\"settlement_failed\"],\"url\":\"https://c.example/h\"},{\"change\":\"removed\","
	       "\"from\":[\"charter\"],\"to\":null,\"url\":\"https://b.example/h\"}]");
	expect(json_object_get(d, "public"), "{\"from\":false,\"to\":true}");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	charter_diff_print(d, f);
	fclose(f);
	const char *lines[] = {"webhook https://a.example/h (changed): alert -> alert,overage\n",
			       "webhook https://c.example/h (added): - -> settlement_failed\n",
			       "webhook https://b.example/h (removed): charter -> -\n",
			       "public: false -> true\n"};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		if (!strstr(text, lines[i]))
			fprintf(stderr, "missing line [%s] in:\n%s", lines[i], text);
		assert_non_null(strstr(text, lines[i]));
	}
	free(text);
	json_decref(d);
	/* unchanged webhooks: no entry */
	d = charter_diff(a, a);
	assert_null(json_object_get(d, "webhooks"));
	assert_null(json_object_get(d, "public"));
	json_decref(d);
	charter_free(a);
	charter_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_terms),
					   cmocka_unit_test(test_webhooks_public)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
