/* cli.h — the `allot` command-line client: shared context, HTTP calls and
 * output.  One file per command group (cli/charter_cmd.c, cli/keys_cmd.c, ...).
 *
 * Exit status: 0 success; 1 the server or a check said no; 2 usage error;
 * 3 the server could not be reached.  Errors go to stderr, one line each.
 */
#ifndef ALLOT_CLI_CLI_H
#define ALLOT_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/buf.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_UNREACHABLE = 3 };

struct cli {
	const char *server;   /* --server or ALLOT_SERVER; default http://127.0.0.1:8080 */
	const char *key;      /* ALLOT_KEY */
	bool json;            /* --format json */
	const char *prog;     /* "allot" */
};

struct cli_resp {
	long status;          /* HTTP status; 0 when unreachable */
	struct buf body;
	char error[256];      /* transport error when status == 0 */
	char checkpoint[600]; /* X-Allot-Checkpoint (base64), "" if none */
};

/* One HTTP request.  body may be NULL. */
int cli_http(const struct cli *c, const char *method, const char *path,
	     const char *content_type, const char *body, size_t len, struct cli_resp *out);
void cli_resp_release(struct cli_resp *r);
/* Prints the server's error body (message and any "errors" lines) on stderr
 * and returns the exit status for it. */
int cli_report_error(const struct cli *c, const struct cli_resp *r);
/* Parses a 2xx JSON body; on error reports and returns non-zero. */
int cli_json_ok(const struct cli *c, struct cli_resp *r, json_t **out);
/* Prints j (pretty) on stdout. */
void cli_print_json(const json_t *j);
/* Option parsing: --name VALUE or --name=VALUE at argv[*i]. */
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **val);
int cli_usage(const struct cli *c, const char *text);

int cli_cmd_charter(struct cli *c, int argc, char **argv);
int cli_cmd_keys(struct cli *c, int argc, char **argv);
int cli_cmd_keygen(struct cli *c, int argc, char **argv);
int cli_cmd_usage(struct cli *c, int argc, char **argv);
int cli_cmd_quota(struct cli *c, int argc, char **argv);
int cli_cmd_report(struct cli *c, int argc, char **argv);
int cli_cmd_token(struct cli *c, int argc, char **argv);
int cli_keys_rotate(struct cli *c);
int cli_cmd_log(struct cli *c, int argc, char **argv);   /* cli/log_cmd.c */

#endif
