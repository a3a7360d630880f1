/* usage_cmd.c — allot usage sign|submit, allot quota show, allot report usage. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/b64.h"
#include "crypto/ed25519.h"
#include "daemon/fileio.h"
#include "ledger/record.h"

/* Records per HTTP batch when submitting, and attempts per batch. */
#define SUBMIT_BATCH 1000
#define SUBMIT_ATTEMPTS 5
/* Longest JSON Lines line accepted (one record). */
#define LINE_MAX_BYTES (64 * 1024)

static int usage_sign(struct cli *c, int argc, char **argv)
{
	const char *keyfile = NULL;
	for (int i = 0; i < argc; i++) {
		if (cli_opt(argc, argv, &i, "--key", &keyfile))
			continue;
		return cli_usage(c, "usage sign --key FILE < records.jsonl > signed.jsonl");
	}
	if (!keyfile)
		return cli_usage(c, "usage sign --key FILE < records.jsonl > signed.jsonl");
	struct ed25519_keypair kp;
	char msg[256] = "";
	if (ed25519_private_read(keyfile, &kp, msg, sizeof msg)) {
		fprintf(stderr, "%s: %s\n", c->prog, msg);
		return CLI_FAIL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int rc = CLI_OK;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		json_error_t je;
		json_t *rec = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(rec)) {
			fprintf(stderr, "%s: stdin:%ld: not a JSON object: %s\n", c->prog, lineno,
				rec ? "" : je.text);
			json_decref(rec);
			rc = CLI_FAIL;
			break;
		}
		size_t clen;
		char *canon = record_canonical(rec, &clen);
		uint8_t sig[ED25519_SIG_LEN];
		char sig64[96];
		if (!canon || ed25519_sign(&kp, canon, clen, sig)) {
			free(canon);
			json_decref(rec);
			fprintf(stderr, "%s: stdin:%ld: signing failed\n", c->prog, lineno);
			rc = CLI_FAIL;
			break;
		}
		free(canon);
		sig64[b64_encode(sig, sizeof sig, sig64)] = '\0';
		json_object_set_new(rec, "sig", json_string(sig64));
		char *out = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
		puts(out);
		free(out);
		json_decref(rec);
	}
	free(line);
	ed25519_keypair_wipe(&kp);
	return rc;
}

/* Posts one batch; retries transport failures and 5xx (a retry is safe:
 * records already stored come back as duplicates). */
static int submit_batch(struct cli *c, json_t *batch, size_t *acc, size_t *dup, size_t *bad)
{
	json_t *body = json_pack("{s:O}", "records", batch);
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	int rc = CLI_UNREACHABLE;
	for (int attempt = 0; attempt < SUBMIT_ATTEMPTS; attempt++) {
		struct cli_resp r;
		rc = cli_http(c, "POST", "/v1/usage", "application/json", text, strlen(text), &r);
		if (rc == CLI_OK && r.status >= 500)
			rc = CLI_UNREACHABLE;
		if (rc == CLI_UNREACHABLE) {
			cli_resp_release(&r);
			sleep(1u << attempt);
			continue;
		}
		json_t *j = NULL;
		rc = cli_json_ok(c, &r, &j);
		cli_resp_release(&r);
		if (rc)
			break;
		size_t i;
		json_t *o;
		json_array_foreach(json_object_get(j, "results"), i, o) {
			const char *st = json_string_value(json_object_get(o, "status"));
			if (strcmp(st, "accepted") == 0)
				(*acc)++;
			else if (strcmp(st, "duplicate") == 0)
				(*dup)++;
			else {
				(*bad)++;
				fprintf(stderr, "%s: record %s %s: %s\n", c->prog,
					json_string_value(json_object_get(o, "record_id")), st,
					json_string_value(json_object_get(o, "reason")));
			}
		}
		json_decref(j);
		break;
	}
	free(text);
	return rc;
}

static int usage_submit(struct cli *c, int argc, char **argv)
{
	if (argc != 1)
		return cli_usage(c, "usage submit FILE   (JSON Lines of signed records; - for stdin)");
	FILE *f = strcmp(argv[0], "-") == 0 ? stdin : fopen(argv[0], "r");
	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", c->prog, argv[0], strerror(errno));
		return CLI_FAIL;
	}
	size_t acc = 0, dup = 0, bad = 0;
	json_t *batch = json_array();
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int rc = CLI_OK;
	while (rc == CLI_OK && (n = getline(&line, &cap, f)) > 0) {
		lineno++;
		if (n > LINE_MAX_BYTES) {
			fprintf(stderr, "%s: %s:%ld: line longer than %d bytes\n", c->prog, argv[0], lineno, LINE_MAX_BYTES);
			rc = CLI_FAIL;
			break;
		}
		json_error_t je;
		json_t *rec = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &je);
		if (!rec) {
			if (strspn(line, " \t\r\n") == (size_t)n)
				continue;
			fprintf(stderr, "%s: %s:%ld: %s\n", c->prog, argv[0], lineno, je.text);
			rc = CLI_FAIL;
			break;
		}
		json_array_append_new(batch, rec);
		if (json_array_size(batch) == SUBMIT_BATCH) {
			rc = submit_batch(c, batch, &acc, &dup, &bad);
			json_array_clear(batch);
		}
	}
	if (rc == CLI_OK && json_array_size(batch))
		rc = submit_batch(c, batch, &acc, &dup, &bad);
	json_decref(batch);
	free(line);
	if (f != stdin)
		fclose(f);
	if (c->json && rc == CLI_OK) {
		json_t *j = json_pack("{s:I,s:I,s:I}", "accepted", (json_int_t)acc, "duplicate",
				      (json_int_t)dup, "refused", (json_int_t)bad);
		cli_print_json(j);
		json_decref(j);
	} else if (c->json) {
		/* the error object is printed already; the counts go to stderr */
		fprintf(stderr, "%s: accepted %zu, duplicate %zu, refused %zu before the failure\n",
			c->prog, acc, dup, bad);
	} else {
		printf("accepted %zu, duplicate %zu, refused %zu\n", acc, dup, bad);
	}
	if (rc)
		return rc;
	return bad ? CLI_FAIL : CLI_OK;
}

int cli_cmd_usage(struct cli *c, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "sign") == 0)
		return usage_sign(c, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "submit") == 0)
		return usage_submit(c, argc - 1, argv + 1);
	return cli_usage(c, "usage sign --key FILE | usage submit FILE");
}

static int get_json(struct cli *c, const char *path, json_t **j)
{
	struct cli_resp r;
	int rc = cli_http(c, "GET", path, NULL, NULL, 0, &r);
	rc = rc ? cli_report_error(c, &r) : cli_json_ok(c, &r, j);
	cli_resp_release(&r);
	return rc;
}

/* The quota of each level as an aligned table. */
static void quota_table(const json_t *j)
{
	struct cli_table t;
	cli_table_init(&t, 8);
	t.right_mask = 0x7c; /* ALLOCATION .. REMAINING */
	const char *head[] = {"LEVEL", "ID", "ALLOCATION", "ROLLOVER", "USED", "RESERVED",
			      "REMAINING", "PERIOD"};
	cli_table_add(&t, head);
	const json_t *lists[3] = {json_object_get(j, "levels"), json_object_get(j, "projects"),
				  json_object_get(j, "members")};
	for (int l = 0; l < 3; l++) {
		size_t i;
		json_t *v;
		json_array_foreach(lists[l], i, v) {
			const char *ps = json_string_value(json_object_get(v, "period_start"));
			char period[128];
			snprintf(period, sizeof period, "%s%s%s",
				 json_string_value(json_object_get(v, "period")) ?
					 json_string_value(json_object_get(v, "period")) : "-",
				 ps ? " from " : "", ps ? ps : "");
			const char *row[] = {json_string_value(json_object_get(v, "level")),
					     json_string_value(json_object_get(v, "id")),
					     json_string_value(json_object_get(v, "allocation")),
					     json_string_value(json_object_get(v, "rollover")),
					     json_string_value(json_object_get(v, "used")),
					     json_string_value(json_object_get(v, "reserved")),
					     json_string_value(json_object_get(v, "remaining")), period};
			cli_table_add(&t, row);
		}
	}
	cli_table_print(&t, stdout);
	cli_table_release(&t);
}

int cli_cmd_quota(struct cli *c, int argc, char **argv)
{
	if (argc != 2 || strcmp(argv[0], "show") || strlen(argv[1]) > 200 ||
	    strpbrk(argv[1], "?#% "))
		return cli_usage(c, "quota show INSTITUTION[/PROJECT]");
	char path[256];
	snprintf(path, sizeof path, "/v1/quotas/%s", argv[1]);
	json_t *j;
	int rc = get_json(c, path, &j);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(j);
	} else {
		quota_table(j);
	}
	json_decref(j);
	return CLI_OK;
}

/* Decodes the base64 checkpoint into OUT.checkpoint. */
static bool write_checkpoint(struct cli *c, const char *out, const char *b64)
{
	uint8_t note[600];
	size_t n = 0;
	char path[1024];
	if (b64_decode(b64, strlen(b64), note, sizeof note, &n) != ALLOT_OK)
		return true; /* not ours to judge: the report itself is written */
	snprintf(path, sizeof path, "%s.checkpoint", out);
	FILE *f = fopen(path, "w");
	if (!f || fwrite(note, 1, n, f) != n || fclose(f)) {
		fprintf(stderr, "%s: %s: %s\n", c->prog, path, strerror(errno));
		return false;
	}
	fprintf(stderr, "%s: signed checkpoint of the log written to %s\n", c->prog, path);
	return true;
}

int cli_cmd_report(struct cli *c, int argc, char **argv)
{
	const char *from = NULL, *to = NULL, *gb = NULL, *fmt = "csv", *out = NULL;
	const char *usage = "report usage --from DATE --to DATE [--group-by a,b] "
			    "[--format csv|json] [--out FILE]";
	if (argc < 1 || strcmp(argv[0], "usage"))
		return cli_usage(c, usage);
	for (int i = 1; i < argc; i++) {
		if (cli_opt(argc, argv, &i, "--from", &from) || cli_opt(argc, argv, &i, "--to", &to) ||
		    cli_opt(argc, argv, &i, "--group-by", &gb) ||
		    cli_opt(argc, argv, &i, "--format", &fmt) || cli_opt(argc, argv, &i, "--out", &out))
			continue;
		return cli_usage(c, usage);
	}
	if (!from || !to || (strcmp(fmt, "csv") && strcmp(fmt, "json")))
		return cli_usage(c, usage);
	struct buf path = BUF_INIT;
	buf_printf(&path, "/v1/reports/usage?from=%s&to=%s&format=%s", from, to, fmt);
	if (gb)
		buf_printf(&path, "&group_by=%s", gb);
	if (strpbrk(from, "&# ") || strpbrk(to, "&# ") || (gb && strpbrk(gb, "&# "))) {
		buf_release(&path);
		return cli_usage(c, usage);
	}
	struct cli_resp r;
	int rc = cli_http(c, "GET", buf_str(&path), NULL, NULL, 0, &r);
	buf_release(&path);
	if (rc == CLI_OK && (r.status < 200 || r.status > 299))
		rc = cli_report_error(c, &r);
	else if (rc)
		rc = cli_report_error(c, &r);
	if (rc == CLI_OK) {
		FILE *f = out ? fopen(out, "w") : stdout;
		if (!f) {
			fprintf(stderr, "%s: %s: %s\n", c->prog, out, strerror(errno));
			rc = CLI_FAIL;
		} else {
			fwrite(buf_str(&r.body), 1, r.body.len, f);
			/* A CSV report's signed checkpoint goes beside it, for
			 * `allot log verify --since`. */
			if (out && r.checkpoint[0] && !write_checkpoint(c, out, r.checkpoint))
				rc = CLI_FAIL;
			if (f != stdout && fclose(f)) {
				fprintf(stderr, "%s: %s: %s\n", c->prog, out, strerror(errno));
				rc = CLI_FAIL;
			}
		}
	}
	cli_resp_release(&r);
	return rc;
}
