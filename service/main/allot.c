/* allot.c — the command-line client: global options, then a command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/cli.h"

static const char usage[] =
	"usage: allot [--server URL] [--format json] COMMAND ...\n"
	"The API key comes from ALLOT_KEY; the server from --server or ALLOT_SERVER\n"
	"(default http://127.0.0.1:8080).\n"
	"commands:\n"
	"  charter check FILE | apply FILE | validate FILE | history\n"
	"  keygen --out FILE\n"
	"  keys create --role ROLE [--institution ID] [--provider ID] | keys revoke ID | keys list\n"
	"  usage sign --key FILE < records.jsonl > signed.jsonl | usage submit FILE\n"
	"  keys rotate                                   (new token signing key)\n"
	"  token mint --institution ID --project ID --member ID [--ttl S] [--models a,b] [--max-credits X]\n"
	"  token revoke --jti ID | --member ID [--institution ID] | token inspect TOKEN\n"
	"  quota show INSTITUTION[/PROJECT]\n"
	"  report usage --from DATE --to DATE [--group-by a,b] [--format csv|json] [--out FILE]\n"
	"  log verify EXPORT --key ed25519:BASE64 [--since CHECKPOINT]   (offline)\n"
	"  log monitor [--server URL] --state FILE [--key ed25519:BASE64]\n"
	"  log key                                       (the log's ed25519:BASE64, for --key)\n"
	"  log checkpoint | log export [--start N] [--end N] [--since N] [--out FILE]\n"
	"  store backup --out FILE                       (a consistent copy, on the server's host)\n"
	"  store copy FROM TO                            (SQLite <-> postgres://; allotd stopped)\n"
	"exit status: 0 ok, 1 refused or failed, 2 usage error, 3 server unreachable\n";

int main(int argc, char **argv)
{
	struct cli c = {.server = getenv("ALLOT_SERVER"), .key = getenv("ALLOT_KEY"),
			.prog = "allot"};
	if (!c.server || !*c.server)
		c.server = "http://127.0.0.1:8080";
	if (c.key && !*c.key)
		c.key = NULL;
	int i = 1;
	for (; i < argc && strncmp(argv[i], "-", 1) == 0; i++) {
		const char *v;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (cli_opt(argc, argv, &i, "--server", &v)) {
			c.server = v;
		} else if (cli_opt(argc, argv, &i, "--format", &v)) {
			if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0) {
				fputs("allot: --format must be json or text\n", stderr);
				return 2;
			}
			c.json = strcmp(v, "json") == 0;
		} else {
			fprintf(stderr, "allot: unknown option \"%s\"\n%s", argv[i], usage);
			return 2;
		}
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return 2;
	}
	const char *cmd = argv[i];
	int sub_argc = argc - i - 1;
	char **sub_argv = argv + i + 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc;
	if (strcmp(cmd, "charter") == 0)
		rc = cli_cmd_charter(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "keys") == 0)
		rc = cli_cmd_keys(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "keygen") == 0)
		rc = cli_cmd_keygen(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "usage") == 0)
		rc = cli_cmd_usage(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "quota") == 0)
		rc = cli_cmd_quota(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "report") == 0)
		rc = cli_cmd_report(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "token") == 0)
		rc = cli_cmd_token(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "log") == 0)
		rc = cli_cmd_log(&c, sub_argc, sub_argv);
	else if (strcmp(cmd, "store") == 0)
		rc = cli_cmd_store(&c, sub_argc, sub_argv);
	else {
		fprintf(stderr, "allot: unknown command \"%s\"\n%s", cmd, usage);
		rc = 2;
	}
	curl_global_cleanup();
	return rc;
}
