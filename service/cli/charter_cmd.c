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
		return CLI_FAIL;
	}
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

static void print_lines(FILE *f, json_t *arr)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		fprintf(f, "%s\n", json_string_value(v));
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
		return charter_check_file(argv[1], stdout, stderr);
	}
	if (strcmp(sub, "apply") == 0) {
		if (argc != 2)
			return cli_usage(c, "charter apply FILE");
		if ((rc = charter_send(c, "PUT", "/v1/charter", argv[1], &j)))
			return rc;
		print_lines(stderr, json_object_get(j, "warnings"));
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
			cli_print_json(j);
		} else {
			print_lines(stderr, json_object_get(j, "errors"));
			print_lines(stderr, json_object_get(j, "warnings"));
			if (valid) {
				printf("charter valid; changes:\n");
				cli_print_json(json_object_get(j, "changes"));
			}
		}
		json_decref(j);
		return valid ? CLI_OK : CLI_FAIL;
	}
	if (strcmp(sub, "history") == 0) {
		struct cli_resp r;
		rc = cli_http(c, "GET", "/v1/charter/history", NULL, NULL, 0, &r);
		rc = rc ? cli_report_error(c, &r) : cli_json_ok(c, &r, &j);
		cli_resp_release(&r);
		if (rc)
			return rc;
		if (c->json) {
			cli_print_json(j);
		} else {
			size_t i;
			json_t *v;
			printf("%-8s %-24s %-21s %-20s %s\n", "VERSION", "CHARTER", "APPLIED", "AUTHOR", "SHA256");
			json_array_foreach(json_object_get(j, "charters"), i, v)
				printf("%-8lld %-24s %-21s %-20s %.16s\n",
				       (long long)json_integer_value(json_object_get(v, "version")),
				       json_string_value(json_object_get(v, "charter")),
				       json_string_value(json_object_get(v, "applied_at")),
				       json_string_value(json_object_get(v, "author")),
				       json_string_value(json_object_get(v, "sha256")));
		}
		json_decref(j);
		return CLI_OK;
	}
	return cli_usage(c, usage);
}
