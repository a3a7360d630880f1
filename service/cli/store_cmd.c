/* store_cmd.c — allot store backup --out FILE (POST /v1/store/backup), and
 * allot store copy FROM TO (local: store/store_copy.c, no server).
 *
 * FILE is written by allotd on the server's host; a relative FILE is made
 * absolute from this command's working directory (so on the same host it
 * lands where it was asked).  The signed checkpoint of the copy's log is
 * written beside it by this command, as FILE.checkpoint: the `--since` of a
 * later `allot log verify`, and the root a restore must show
 * (docs/OPERATIONS.md, "Backup and restore"). */
#include "cli/cli.h"

#include "common/b64.h"
#include "store/store_copy.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char backup_usage[] = "store backup --out FILE   (FILE on the server's host)";
static const char store_usage[] =
	"store backup --out FILE   (FILE on the server's host)\n"
	"       allot store copy FROM TO   (a SQLite file and a postgres:// database, either "
	"way; stop allotd first)";

static int write_note(struct cli *c, const char *path, const char *note)
{
	char cp[PATH_MAX + 16];
	snprintf(cp, sizeof cp, "%s.checkpoint", path);
	FILE *f = fopen(cp, "wx");
	size_t n = strlen(note);
	if (!f || fwrite(note, 1, n, f) != n || fclose(f)) {
		fprintf(stderr, "%s: cannot write %s: %s (the backup itself is in %s)\n", c->prog,
			cp, strerror(errno), path);
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int store_backup(struct cli *c, int argc, char **argv)
{
	const char *out = NULL;
	for (int i = 0; i < argc; i++) {
		if (cli_opt(argc, argv, &i, "--out", &out))
			continue;
		return cli_usage(c, backup_usage);
	}
	if (!out || !*out)
		return cli_usage(c, backup_usage);
	char path[PATH_MAX];
	if (out[0] == '/') {
		snprintf(path, sizeof path, "%s", out);
	} else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof cwd) ||
		    (size_t)snprintf(path, sizeof path, "%s/%s", cwd, out) >= sizeof path) {
			fprintf(stderr, "%s: --out %s: cannot make the path absolute\n", c->prog, out);
			return CLI_FAIL;
		}
	}
	json_t *body = json_pack("{s:s}", "path", path);
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct cli_resp r;
	json_t *j = NULL;
	int rc = cli_http(c, "POST", "/v1/store/backup", "application/json", text, strlen(text), &r);
	free(text);
	rc = rc ? cli_report_error(c, &r) : cli_json_ok(c, &r, &j);
	cli_resp_release(&r);
	if (rc)
		return rc;
	rc = write_note(c, path, json_string_value(json_object_get(j, "checkpoint")));
	if (rc == CLI_OK) {
		if (c->json)
			cli_print_json(j);
		else
			printf("backup written to %s (%lld bytes, log size %lld, root %s); its signed "
			       "checkpoint in %s.checkpoint\n", path,
			       (long long)json_integer_value(json_object_get(j, "bytes")),
			       (long long)json_integer_value(json_object_get(j, "size")),
			       json_string_value(json_object_get(j, "root")), path);
	}
	json_decref(j);
	return rc;
}

static void copy_progress(void *ctx, const char *table, int64_t rows)
{
	(void)ctx;
	fprintf(stderr, "allot: copied %s: %lld rows\n", table, (long long)rows);
}

/* Works on the files and databases directly, like allotd --fsck. */
static int store_copy_cmd(struct cli *c, int argc, char **argv)
{
	if (argc != 2 || argv[0][0] == '-' || argv[1][0] == '-')
		return cli_usage(c, store_usage);
	struct store_copy_report rep;
	char msg[1024] = "";
	allot_err e = store_copy(argv[0], argv[1], &rep, copy_progress, NULL, msg, sizeof msg);
	if (e) {
		fprintf(stderr, "%s: store copy: %s\n", c->prog, msg);
		return e == ALLOT_E_UNSUPPORTED || e == ALLOT_E_INVALID ? CLI_USAGE : CLI_FAIL;
	}
	char root[65];
	hex_encode(rep.root, sizeof rep.root, root);
	printf("copied %lld rows in %d tables; the log has %llu leaves and root %s on both "
	       "sides\n", (long long)rep.rows, rep.tables, (unsigned long long)rep.log_size, root);
	return CLI_OK;
}

int cli_cmd_store(struct cli *c, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "backup") == 0)
		return store_backup(c, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "copy") == 0)
		return store_copy_cmd(c, argc - 1, argv + 1);
	return cli_usage(c, store_usage);
}
