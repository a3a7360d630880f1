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
#include <stdio.h>

#include <jansson.h>

#include "common/buf.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_UNREACHABLE = 3 };

struct cli {
	const char *server;   /* --server or ALLOT_SERVER; default http://127.0.0.1:8080 */
	const char *key;      /* ALLOT_KEY */
	bool json;            /* --format json */
	const char *prog;     /* "allot" */
	const char *charter_file; /* the FILE of charter apply|validate: named in
				     the server's "charter.yaml:L:C" lines */
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
/* A copy of an array of diagnostic lines with the server's "charter.yaml:"
 * prefix replaced by c->charter_file (when set). */
json_t *cli_diag_lines(const struct cli *c, const json_t *lines);
/* With --format json: prints {"error":{"message","status"[,"errors"]}} on
 * stdout (the human line stays on stderr); takes errors' reference. */
void cli_fail_json(const struct cli *c, const char *message, long status, json_t *errors);
/* Parses a 2xx JSON body; on error reports and returns non-zero. */
int cli_json_ok(const struct cli *c, struct cli_resp *r, json_t **out);
/* Prints j (pretty) on stdout. */
void cli_print_json(const json_t *j);
/* Option parsing: --name VALUE or --name=VALUE at argv[*i]. */
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **val);
int cli_usage(const struct cli *c, const char *text);

/* An aligned text table (cli/table.c). */
#define CLI_TABLE_MAX_COLS 12
struct cli_table {
	size_t ncols, nrows, cap;
	char **cells;         /* nrows * ncols, each strdup'ed */
	unsigned right_mask;  /* bit i: column i is right-aligned (numbers) */
	bool oom;
};
void cli_table_init(struct cli_table *t, size_t ncols);
/* Adds a row of ncols cells (NULL cells print "-"); copies them. */
void cli_table_add(struct cli_table *t, const char *const *cells);
void cli_table_print(struct cli_table *t, FILE *f);
void cli_table_release(struct cli_table *t);
/* A time from the API as RFC 3339: integer microseconds are formatted,
 * strings copied; "-" for null. */
#define CLI_TIME_MAX 48
const char *cli_time(const json_t *v, char out[CLI_TIME_MAX]);

int cli_cmd_charter(struct cli *c, int argc, char **argv);
int cli_cmd_keys(struct cli *c, int argc, char **argv);
int cli_cmd_keygen(struct cli *c, int argc, char **argv);
int cli_cmd_usage(struct cli *c, int argc, char **argv);
int cli_cmd_quota(struct cli *c, int argc, char **argv);
int cli_cmd_report(struct cli *c, int argc, char **argv);
int cli_cmd_token(struct cli *c, int argc, char **argv);
int cli_keys_rotate(struct cli *c);
int cli_cmd_log(struct cli *c, int argc, char **argv);   /* cli/log_cmd.c */
int cli_cmd_store(struct cli *c, int argc, char **argv); /* cli/store_cmd.c */

#endif
