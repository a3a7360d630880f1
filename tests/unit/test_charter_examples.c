/* test_charter_examples.c — the shipped charters: policies/default.yaml and
 * policies/examples/national.yaml are valid without warnings; every
 * policies/examples/invalid/NAME.yaml fails and prints exactly
 * NAME.expected (what `allot charter check FILE` prints on stderr); every
 * policies/examples/warnings/NAME.yaml is valid and prints NAME.expected.
 * A NAME.active file names the active charter that NAME.yaml must succeed
 * (charter_check_successor).  Runs from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "charter/charter.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, cap);
			assert_non_null(nb);
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static struct charter *parse_file(const char *path, struct charter_errors *errs)
{
	size_t len;
	char *text = slurp(path, &len);
	assert_non_null(text);
	struct charter *c = NULL;
	charter_parse(path, text, len, &c, errs);
	free(text);
	return c;
}

/* What `allot charter check` prints: rc, stdout, stderr.  With an active
 * charter, the successor errors are part of the check. */
static int check(const char *path, const char *active, char **out, char **err)
{
	size_t on = 0, en = 0;
	FILE *o = open_memstream(out, &on), *e = open_memstream(err, &en);
	assert_non_null(o);
	assert_non_null(e);
	int rc;
	if (!active) {
		rc = charter_check_file(path, o, e);
	} else {
		struct charter_errors errs = CHARTER_ERRORS_INIT, aerrs = CHARTER_ERRORS_INIT;
		struct charter *next = parse_file(path, &errs);
		struct charter *act = parse_file(active, &aerrs);
		assert_non_null(act);
		if (next)
			charter_check_successor(act, next, &errs);
		charter_errors_print(&errs, e);
		rc = errs.nerrors ? 1 : 0;
		if (!rc)
			fputs("charter OK\n", o);
		charter_errors_release(&errs);
		charter_errors_release(&aerrs);
		charter_free(next);
		charter_free(act);
	}
	fclose(o);
	fclose(e);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks every NAME.yaml in dir; want_rc 1 for invalid/, 0 for warnings/. */
static size_t check_dir(const char *dir, int want_rc)
{
	DIR *d = opendir(dir);
	if (!d)
		fail_msg("%s not found: run the tests from the repository root", dir);
	char *names[256];
	size_t n = 0, failed = 0;
	struct dirent *ent;
	while ((ent = readdir(d)) && n < 256) {
		size_t l = strlen(ent->d_name);
		if (l > 5 && strcmp(ent->d_name + l - 5, ".yaml") == 0)
			names[n++] = strdup(ent->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof names[0], name_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[512], exp[512], act[512];
		size_t stem = strlen(names[i]) - 5;
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		snprintf(exp, sizeof exp, "%s/%.*s.expected", dir, (int)stem, names[i]);
		snprintf(act, sizeof act, "%s/%.*s.active", dir, (int)stem, names[i]);
		char *want = slurp(exp, NULL);
		if (!want) {
			fprintf(stderr, "%s: missing %s\n", path, exp);
			failed++;
			free(names[i]);
			continue;
		}
		char *active = slurp(act, NULL);
		if (active)
			active[strcspn(active, "\n")] = '\0';
		char *out = NULL, *err = NULL;
		int rc = check(path, active, &out, &err);
		const char *want_out = want_rc ? "" : "charter OK\n";
		if (rc != want_rc || strcmp(err, want) != 0 || strcmp(out, want_out) != 0) {
			fprintf(stderr, "%s: rc %d, stdout:\n%s--- stderr:\n%s--- expected:\n%s",
				path, rc, out, err, want);
			failed++;
		}
		free(out);
		free(err);
		free(want);
		free(active);
		free(names[i]);
	}
	assert_int_equal(failed, 0);
	return n;
}

static void test_invalid_examples(void **state)
{
	(void)state;
	size_t n = check_dir("policies/examples/invalid", 1);
	assert_true(n >= 20);
	printf("charter examples: %zu invalid charters, each with its exact messages\n", n);
}

static void test_warning_examples(void **state)
{
	(void)state;
	size_t n = check_dir("policies/examples/warnings", 0);
	assert_true(n >= 1);
	printf("charter examples: %zu valid charters with warnings\n", n);
}

static void test_shipped_charters(void **state)
{
	(void)state;
	static const char *const valid[] = {"policies/default.yaml",
					    "policies/examples/national.yaml"};
	for (size_t i = 0; i < 2; i++) {
		char *out = NULL, *err = NULL;
		int rc = check(valid[i], NULL, &out, &err);
		if (rc != 0 || strcmp(err, "") != 0)
			fprintf(stderr, "%s:\n%s", valid[i], err);
		assert_int_equal(rc, 0);
		assert_string_equal(out, "charter OK\n");
		assert_string_equal(err, "");
		free(out);
		free(err);
	}

	/* the default charter is what `make run` serves: check its shape */
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *c = parse_file("policies/default.yaml", &errs);
	assert_non_null(c);
	assert_int_equal(c->ninstitutions, 3);
	assert_string_equal(c->timezone, "Europe/Zurich");
	const struct charter_model *m = charter_model(c, "stories");
	assert_non_null(m);
	assert_string_equal(m->file, "stories260K.gguf");
	assert_true(m->provider->builtin);
	assert_non_null(charter_rate_for(c, "tokens_in", "stories", NULL));
	assert_non_null(charter_rate_for(c, "tokens_out", "stories", NULL));
	size_t soft = 0;
	for (size_t i = 0; i < c->ninstitutions; i++) {
		assert_true(c->institutions[i].nprojects >= 1);
		assert_true(c->institutions[i].projects[0].nmembers >= 1);
		soft += c->institutions[i].overage.mode == CHARTER_OVERAGE_SOFT;
	}
	assert_int_equal(soft, 1);

	/* national: several providers, remote ones with keys and urls */
	struct charter *nat = parse_file("policies/examples/national.yaml", &errs);
	assert_non_null(nat);
	assert_int_equal(errs.nerrors, 0);
	assert_true(nat->nproviders >= 3);
	size_t remote = 0;
	for (size_t i = 0; i < nat->nmodels; i++)
		remote += nat->models[i].url != NULL;
	assert_true(remote >= 2);
	assert_non_null(charter_rate_for(nat, "gpu_seconds", NULL, "h100"));

	/* default -> national is not a valid successor (another charter id) */
	assert_int_equal(charter_check_successor(c, nat, &errs), ALLOT_E_CONFLICT);
	charter_errors_release(&errs);
	charter_free(c);
	charter_free(nat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped_charters),
		cmocka_unit_test(test_invalid_examples),
		cmocka_unit_test(test_warning_examples),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
