/* log_cmd.c — allot log verify|monitor|checkpoint|export (docs/TLOG.md).
 *
 *   allot log verify EXPORT --key ed25519:BASE64|VKEY [--since CHECKPOINT]
 *       offline: every leaf recomputed, inclusion in the export's signed
 *       checkpoint, consistency with an earlier checkpoint; names the first
 *       entry that fails (exit 1).
 *   allot log monitor [--server URL] --state FILE [--key ed25519:BASE64]
 *       a witness: fetches the checkpoint, checks it against the one saved in
 *       FILE (consistency proof from the server), saves it; a split view or
 *       rewritten history exits 1 and keeps FILE as it was.
 *   allot log checkpoint                       prints the signed checkpoint
 *   allot log key                              prints the key for --key
 *   allot log export [--start N] [--end N] [--since N] [--out FILE]
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/b64.h"
#include "crypto/ed25519.h"
#include "daemon/fileio.h"
#include "tlog/checkpoint.h"
#include "tlog/merkle.h"
#include "tlog/verify.h"

/* Largest export file `allot log verify` reads: LEDGERLOG_EXPORT_MAX
 * leaves at ~2 KiB each, with room. */
#define LOG_EXPORT_FILE_MAX (1024u * 1024 * 1024)
/* A monitor state file: a key and one checkpoint. */
#define LOG_STATE_MAX (64u * 1024)

static const char verify_usage[] =
	"log verify EXPORT --key ed25519:BASE64|VKEY [--since CHECKPOINT_FILE]";
static const char monitor_usage[] =
	"log monitor [--server URL] --state FILE [--key ed25519:BASE64]";

/* Replaces *note (JSON text) by its "checkpoint" string; true (and a
 * message naming --since) when there is none. */
static bool since_note_from_json(struct cli *c, const char *file, char **note, size_t *len)
{
	json_t *j = json_loadb(*note, *len, 0, NULL);
	const char *cp = json_string_value(json_object_get(j, "checkpoint"));
	if (!cp) {
		fprintf(stderr, "%s: --since %s: a JSON file without a \"checkpoint\" note; give "
			"the note itself (`allot log checkpoint > FILE`, a report's or a backup's "
			"FILE.checkpoint), a log export or a `log monitor` state file\n", c->prog, file);
		json_decref(j);
		free(*note);
		*note = NULL;
		return true;
	}
	char *copy = strdup(cp);
	json_decref(j);
	free(*note);
	*note = copy;
	*len = copy ? strlen(copy) : 0;
	return copy == NULL;
}

static int log_verify(struct cli *c, int argc, char **argv)
{
	const char *path = NULL, *key = NULL, *since = NULL;
	for (int i = 0; i < argc; i++) {
		if (cli_opt(argc, argv, &i, "--key", &key) || cli_opt(argc, argv, &i, "--since", &since))
			continue;
		if ((argv[i][0] == '-' && argv[i][1]) || path)
			return cli_usage(c, verify_usage);
		path = argv[i];
	}
	if (!path || !key)
		return cli_usage(c, verify_usage);
	char msg[512] = "";
	char *text = NULL, *old = NULL;
	size_t len = 0, old_len = 0;
	if (file_read_all(path, LOG_EXPORT_FILE_MAX, &text, &len, msg, sizeof msg) ||
	    (since && file_read_all(since, NOTE_MAX, &old, &old_len, msg, sizeof msg))) {
		fprintf(stderr, "%s: %s\n", c->prog, msg);
		free(text);
		return CLI_FAIL;
	}
	/* --since may name a JSON file that holds a "checkpoint" note: an
	 * export, a monitor state file, a backup's answer. */
	if (old && old_len && old[0] == '{' && since_note_from_json(c, since, &old, &old_len)) {
		free(text);
		return CLI_USAGE;
	}
	/* A saved note often gains a final newline (jq -r, editors). */
	while (old && old_len >= 2 && old[old_len - 1] == '\n' && old[old_len - 2] == '\n')
		old[--old_len] = '\0';
	json_error_t je;
	json_t *x = json_loadb(text, len, 0, &je);
	free(text);
	if (!x) {
		fprintf(stderr, "%s: %s: not JSON (line %d: %s)\n", c->prog, path, je.line, je.text);
		free(old);
		return CLI_FAIL;
	}
	struct tlog_verify_report rep;
	allot_err e = tlog_verify_export(x, key, old, old_len, &rep);
	json_decref(x);
	free(old);
	if (e) {
		fprintf(stderr, "%s: %s: verification FAILED: %s\n", c->prog, path, rep.failure);
		cli_fail_json(c, rep.failure, 0, NULL);
		return e == ALLOT_E_INVALID ? CLI_USAGE : CLI_FAIL;
	}
	if (c->json) {
		json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:b,s:b}", "result", "ok", "origin",
				      rep.cp.origin, "size", (json_int_t)rep.cp.size, "checked",
				      (json_int_t)rep.checked, "complete", rep.complete,
				      "consistent_with_since", rep.since_checked);
		cli_print_json(j);
		json_decref(j);
	} else {
		printf("OK: %llu %s verified against the signed checkpoint of %s at size %llu%s\n",
		       (unsigned long long)rep.checked, rep.log_export ? "log entries" : "usage records",
		       rep.cp.origin, (unsigned long long)rep.cp.size,
		       rep.complete ? " (the complete log)" : "");
		if (rep.since_checked)
			printf("OK: consistent with the earlier checkpoint at size %llu\n",
			       (unsigned long long)rep.since_size);
	}
	return CLI_OK;
}

/* GET path; the body as text (2xx only). */
static int get_text(struct cli *c, const char *path, char **out, size_t *len)
{
	struct cli_resp r;
	int rc = cli_http(c, "GET", path, NULL, NULL, 0, &r);
	if (rc == CLI_OK && (r.status < 200 || r.status > 299))
		rc = cli_report_error(c, &r);
	else if (rc)
		rc = cli_report_error(c, &r);
	if (rc) {
		cli_resp_release(&r);
		return rc;
	}
	*len = r.body.len;
	*out = buf_detach(&r.body, NULL);
	if (!*out)
		*out = strdup("");
	return CLI_OK;
}

static int save_state(struct cli *c, const char *path, const char *vkey, const char *note)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	json_t *j = json_pack("{s:s,s:s}", "vkey", vkey, "checkpoint", note);
	int rc = json_dump_file(j, tmp, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	if (rc || rename(tmp, path)) {
		fprintf(stderr, "%s: cannot write %s\n", c->prog, path);
		unlink(tmp);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* The monitor's saved state, if there is one: the key it trusts and its
 * last checkpoint.  OUT: *saved (NULL when the file does not exist). */
static int monitor_state(struct cli *c, const char *state, json_t **saved)
{
	char msg[512] = "", *text = NULL;
	size_t len = 0;
	*saved = NULL;
	if (access(state, F_OK) != 0)
		return CLI_OK;
	if (file_read_all(state, LOG_STATE_MAX, &text, &len, msg, sizeof msg)) {
		fprintf(stderr, "%s: %s\n", c->prog, msg);
		return CLI_FAIL;
	}
	json_t *j = json_loadb(text, len, 0, NULL);
	free(text);
	if (!json_is_string(json_object_get(j, "vkey")) ||
	    !json_is_string(json_object_get(j, "checkpoint"))) {
		fprintf(stderr, "%s: %s is not a monitor state file\n", c->prog, state);
		json_decref(j);
		return CLI_FAIL;
	}
	*saved = j;
	return CLI_OK;
}

/* The server's proof that the tree of `from` leaves is a prefix of the tree
 * of `to` leaves.  OUT: *p. */
static int monitor_proof(struct cli *c, uint64_t from, uint64_t to, struct merkle_proof *p)
{
	char path[128], *text = NULL;
	size_t len;
	snprintf(path, sizeof path, "/v1/log/proof/consistency?from=%llu&to=%llu",
		 (unsigned long long)from, (unsigned long long)to);
	int rc = get_text(c, path, &text, &len);
	if (rc)
		return rc;
	json_t *pj = json_loadb(text, len, 0, NULL);
	free(text);
	json_t *a = json_object_get(pj, "proof");
	size_t i;
	json_t *h;
	p->n = 0;
	json_array_foreach(a, i, h) {
		size_t n;
		const char *s = json_string_value(h);
		if (!s || p->n == MERKLE_PROOF_MAX ||
		    b64_decode(s, strlen(s), p->h[p->n], MERKLE_HASH_LEN, &n) || n != 32) {
			fprintf(stderr, "%s: the consistency proof is malformed\n", c->prog);
			rc = CLI_FAIL;
			break;
		}
		p->n++;
	}
	json_decref(pj);
	return rc;
}

/* The checkpoint now (cp, note) against the saved one (old_note): it
 * verifies, the log did not shrink, and the old tree is a prefix of the new
 * one.  OUT: *old, the saved checkpoint. */
static int monitor_against(struct cli *c, const struct note_verifier *v, const char *old_note,
			   const struct checkpoint *cp, const char *note, struct checkpoint *old)
{
	char msg[512] = "";
	if (checkpoint_open(old_note, strlen(old_note), v, old, msg, sizeof msg)) {
		fprintf(stderr, "%s: the saved checkpoint does not verify: %s\n", c->prog, msg);
		return CLI_FAIL;
	}
	if (cp->size < old->size) {
		fprintf(stderr, "%s: ALERT: history rewritten: the log shrank from %llu to %llu "
			"leaves\n--- saved\n%s--- now\n%s", c->prog, (unsigned long long)old->size,
			(unsigned long long)cp->size, old_note, note);
		return CLI_FAIL;
	}
	struct merkle_proof p = {0};
	int rc;
	if (old->size > 0 && cp->size > old->size &&
	    (rc = monitor_proof(c, old->size, cp->size, &p)))
		return rc;
	if (old->size > 0 &&
	    merkle_verify_consistency(old->size, cp->size, old->root, cp->root,
				      (const uint8_t(*)[32])p.h, p.n, msg, sizeof msg)) {
		fprintf(stderr, "%s: ALERT: %s: the log at size %llu is not consistent with "
			"the saved checkpoint at size %llu (%s)\n--- saved\n%s--- now\n%s",
			c->prog, cp->size == old->size ? "split view" : "history rewritten",
			(unsigned long long)cp->size, (unsigned long long)old->size, msg,
			old_note, note);
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int log_monitor(struct cli *c, int argc, char **argv)
{
	const char *state = NULL, *pin = NULL, *server;
	for (int i = 0; i < argc; i++) {
		if (cli_opt(argc, argv, &i, "--state", &state) || cli_opt(argc, argv, &i, "--key", &pin))
			continue;
		if (cli_opt(argc, argv, &i, "--server", &server)) {
			c->server = server;
			continue;
		}
		return cli_usage(c, monitor_usage);
	}
	if (!state)
		return cli_usage(c, monitor_usage);
	char msg[512] = "";
	json_t *saved = NULL;
	if (monitor_state(c, state, &saved))
		return CLI_FAIL;
	int rc = CLI_FAIL;
	char *keyj = NULL, *note = NULL;
	size_t kl, nl;
	json_t *kj = NULL;
	struct note_verifier v;
	if ((rc = get_text(c, "/v1/log/key", &keyj, &kl)))
		goto out;
	rc = CLI_FAIL;
	kj = json_loadb(keyj, kl, 0, NULL);
	const char *vkey = json_string_value(json_object_get(kj, "vkey"));
	if (!vkey || note_vkey_parse(vkey, strlen(vkey), &v, msg, sizeof msg)) {
		fprintf(stderr, "%s: the server's log key is malformed: %s\n", c->prog, msg);
		goto out;
	}
	if (pin) {
		uint8_t pub[ED25519_PUB_LEN];
		if (ed25519_pub_parse(pin, strlen(pin), pub, msg, sizeof msg)) {
			fprintf(stderr, "%s: --key: %s\n", c->prog, msg);
			rc = CLI_USAGE;
			goto out;
		}
		if (memcmp(pub, v.pub, sizeof pub) != 0) {
			fprintf(stderr, "%s: ALERT: the server signs with another key than --key\n", c->prog);
			goto out;
		}
	}
	const char *saved_vkey = json_string_value(json_object_get(saved, "vkey"));
	if (saved_vkey && strcmp(saved_vkey, vkey) != 0) {
		fprintf(stderr, "%s: ALERT: the log key changed from %s to %s\n", c->prog, saved_vkey,
			vkey);
		goto out;
	}
	if ((rc = get_text(c, "/v1/log/checkpoint", &note, &nl)))
		goto out;
	rc = CLI_FAIL;
	struct checkpoint cp, old;
	if (checkpoint_open(note, nl, &v, &cp, msg, sizeof msg)) {
		fprintf(stderr, "%s: ALERT: the checkpoint does not verify: %s\n", c->prog, msg);
		goto out;
	}
	const char *old_note = json_string_value(json_object_get(saved, "checkpoint"));
	if (old_note && (rc = monitor_against(c, &v, old_note, &cp, note, &old)))
		goto out;
	if ((rc = save_state(c, state, vkey, note)))
		goto out;
	if (c->json) {
		json_t *j = json_pack("{s:s,s:s,s:I,s:o}", "result", "ok", "origin", cp.origin,
				      "size", (json_int_t)cp.size, "saved_size",
				      old_note ? json_integer((json_int_t)old.size) : json_null());
		cli_print_json(j);
		json_decref(j);
	} else if (old_note)
		printf("OK: %s at size %llu, consistent with the saved size %llu\n", cp.origin,
		       (unsigned long long)cp.size, (unsigned long long)old.size);
	else
		printf("OK: %s at size %llu (first checkpoint saved; key %s)\n", cp.origin,
		       (unsigned long long)cp.size, vkey);
	rc = CLI_OK;
out:
	if (rc == CLI_FAIL)
		cli_fail_json(c, "the log failed a check (the reason is on stderr)", 0, NULL);
	json_decref(saved);
	json_decref(kj);
	free(keyj);
	free(note);
	return rc;
}

/* `allot log key`: the log's public key as `log verify --key` and `log
 * monitor --key` take it (ed25519:BASE64); --format json: the whole
 * GET /v1/log/key object (origin, vkey, key). */
static int log_key(struct cli *c)
{
	char *text = NULL;
	size_t n;
	int rc = get_text(c, "/v1/log/key", &text, &n);
	if (rc)
		return rc;
	json_t *j = json_loadb(text, n, 0, NULL);
	free(text);
	const char *key = json_string_value(json_object_get(j, "key"));
	if (!key) {
		fprintf(stderr, "%s: the server's /v1/log/key has no \"key\"\n", c->prog);
		json_decref(j);
		return CLI_FAIL;
	}
	if (c->json)
		cli_print_json(j);
	else
		printf("%s\n", key);
	json_decref(j);
	return CLI_OK;
}

static int log_checkpoint(struct cli *c)
{
	char *note = NULL;
	size_t n;
	int rc = get_text(c, "/v1/log/checkpoint", &note, &n);
	if (!rc)
		fwrite(note, 1, n, stdout);
	free(note);
	return rc;
}

static int log_export(struct cli *c, int argc, char **argv)
{
	const char *start = "0", *end = "0", *since = "0", *out = NULL;
	for (int i = 0; i < argc; i++) {
		if (cli_opt(argc, argv, &i, "--start", &start) || cli_opt(argc, argv, &i, "--end", &end) ||
		    cli_opt(argc, argv, &i, "--since", &since) || cli_opt(argc, argv, &i, "--out", &out))
			continue;
		return cli_usage(c, "log export [--start N] [--end N] [--since N] [--out FILE]");
	}
	char path[256];
	snprintf(path, sizeof path, "/v1/log/export?start=%.20s&end=%.20s&since=%.20s", start, end,
		 since);
	char *body = NULL;
	size_t n;
	int rc = get_text(c, path, &body, &n);
	if (rc)
		return rc;
	FILE *f = out ? fopen(out, "w") : stdout;
	if (!f || fwrite(body, 1, n, f) != n || (out && fclose(f))) {
		fprintf(stderr, "%s: cannot write %s\n", c->prog, out ? out : "stdout");
		rc = CLI_FAIL;
	}
	free(body);
	return rc;
}

int cli_cmd_log(struct cli *c, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "verify") == 0)
		return log_verify(c, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "monitor") == 0)
		return log_monitor(c, argc - 1, argv + 1);
	if (argc == 1 && strcmp(argv[0], "checkpoint") == 0)
		return log_checkpoint(c);
	if (argc == 1 && strcmp(argv[0], "key") == 0)
		return log_key(c);
	if (argc >= 1 && strcmp(argv[0], "export") == 0)
		return log_export(c, argc - 1, argv + 1);
	return cli_usage(c, "log verify|monitor|checkpoint|key|export ...");
}
