/* charter_cmd.c — allot charter check|apply|validate|history. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charter/charter.h"
#include "daemon/fileio.h"

static int charter_send(struct cli *c, const char *method, const char *path,
			const char *file, json_t **out)
{
	char msg[256];
	char *text;
	size_t len;
	if (file_read_all(file, CHARTER_MAX_BYTES, &text, &len, msg, sizeof msg)) {
		fprintf(stderr, "%s: %s\n", c->prog, msg);
		cli_fail_json(c, msg, 0, NULL);
		return CLI_FAIL;
	}
	c->charter_file = file;
	struct cli_resp r;
	int rc = cli_http(c, method, path, "application/yaml", text, len, &r);
	free(text);
	if (rc == CLI_OK)
		rc = cli_json_ok(c, &r, out);
	else
		rc = cli_report_error(c, &r);
	cli_resp_release(&r);
	return rc;
}

static void print_lines(const struct cli *c, FILE *f, json_t *arr)
{
	json_t *lines = cli_diag_lines(c, arr);
	size_t i;
	json_t *v;
	json_array_foreach(lines, i, v)
		fprintf(f, "%s\n", json_string_value(v));
	json_decref(lines);
}

/* `allot charter check FILE` (offline); with --format json
 * {"valid", "errors": [...], "warnings": [...]} on stdout. */
static int charter_check_cmd(struct cli *c, const char *file)
{
	if (!c->json)
		return charter_check_file(file, stdout, stderr);
	char msg[256];
	char *text;
	size_t len;
	if (file_read_all(file, CHARTER_MAX_BYTES, &text, &len, msg, sizeof msg)) {
		fprintf(stderr, "%s: %s\n", c->prog, msg);
		cli_fail_json(c, msg, 0, NULL);
		return CLI_FAIL;
	}
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *ch = NULL;
	allot_err e = charter_parse(file, text, len, &ch, &errs);
	free(text);
	json_t *errors = json_array(), *warnings = json_array();
	for (size_t i = 0; i < errs.nerrors; i++)
		json_array_append_new(errors, json_string(errs.errors[i].text));
	for (size_t i = 0; i < errs.nwarnings; i++)
		json_array_append_new(warnings, json_string(errs.warnings[i].text));
	json_t *j = json_pack("{s:b,s:o,s:o}", "valid", e == ALLOT_OK, "errors", errors,
			      "warnings", warnings);
	cli_print_json(j);
	json_decref(j);
	charter_free(ch);
	charter_errors_release(&errs);
	return e == ALLOT_OK ? CLI_OK : CLI_FAIL;
}

static int charter_history_cmd(struct cli *c)
{
	json_t *j = NULL;
	struct cli_resp r;
	int rc = cli_http(c, "GET", "/v1/charter/history", NULL, NULL, 0, &r);
	rc = rc ? cli_report_error(c, &r) : cli_json_ok(c, &r, &j);
	cli_resp_release(&r);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(j);
		json_decref(j);
		return CLI_OK;
	}
	struct cli_table t;
	cli_table_init(&t, 7);
	const char *head[] = {"VERSION", "CHARTER", "STATUS", "EFFECTIVE", "APPLIED", "AUTHOR",
			      "SHA256"};
	cli_table_add(&t, head);
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(j, "charters"), i, v) {
		char ver[24], sha[17];
		snprintf(ver, sizeof ver, "%lld",
			 (long long)json_integer_value(json_object_get(v, "version")));
		snprintf(sha, sizeof sha, "%.16s", json_string_value(json_object_get(v, "sha256")));
		const char *row[] = {ver, json_string_value(json_object_get(v, "charter")),
				     json_string_value(json_object_get(v, "status")),
				     json_string_value(json_object_get(v, "effective")),
				     json_string_value(json_object_get(v, "applied_at")),
				     json_string_value(json_object_get(v, "author")), sha};
		cli_table_add(&t, row);
	}
	cli_table_print(&t, stdout);
	cli_table_release(&t);
	json_decref(j);
	return CLI_OK;
}

int cli_cmd_charter(struct cli *c, int argc, char **argv)
{
	const char *usage = "charter check FILE | apply FILE | validate FILE | history";
	if (argc < 1)
		return cli_usage(c, usage);
	const char *sub = argv[0];
	json_t *j = NULL;
	int rc;
	if (strcmp(sub, "check") == 0) {
		if (argc != 2)
			return cli_usage(c, "charter check FILE");
		return charter_check_cmd(c, argv[1]);
	}
	if (strcmp(sub, "apply") == 0) {
		if (argc != 2)
			return cli_usage(c, "charter apply FILE");
		if ((rc = charter_send(c, "PUT", "/v1/charter", argv[1], &j)))
			return rc;
		print_lines(c, stderr, json_object_get(j, "warnings"));
		if (c->json)
			cli_print_json(j);
		else
			printf("charter %s version %lld applied (sha256 %s)\n",
			       json_string_value(json_object_get(j, "charter")),
			       (long long)json_integer_value(json_object_get(j, "version")),
			       json_string_value(json_object_get(j, "sha256")));
		json_decref(j);
		return CLI_OK;
	}
	if (strcmp(sub, "validate") == 0) {
		if (argc != 2)
			return cli_usage(c, "charter validate FILE");
		if ((rc = charter_send(c, "POST", "/v1/charter/validate", argv[1], &j)))
			return rc;
		bool valid = json_is_true(json_object_get(j, "valid"));
		if (c->json) {
			json_t *e = cli_diag_lines(c, json_object_get(j, "errors"));
			json_t *w = cli_diag_lines(c, json_object_get(j, "warnings"));
			json_object_set_new(j, "errors", e);
			json_object_set_new(j, "warnings", w);
			cli_print_json(j);
		} else {
			print_lines(c, stderr, json_object_get(j, "errors"));
			print_lines(c, stderr, json_object_get(j, "warnings"));
			if (valid) {
				printf("%s is valid; applying it would change:\n", argv[1]);
				charter_diff_print(json_object_get(j, "changes"), stdout);
			} else {
				fprintf(stderr, "%s: %s is not valid; nothing was changed\n", c->prog,
					argv[1]);
			}
		}
		json_decref(j);
		return valid ? CLI_OK : CLI_FAIL;
	}
	if (strcmp(sub, "history") == 0)
		return argc == 1 ? charter_history_cmd(c) : cli_usage(c, "charter history");
	return cli_usage(c, usage);
}
