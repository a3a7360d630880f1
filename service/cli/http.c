/* http.c — the CLI's HTTP client (libcurl) and output helpers. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

/* A CLI call that takes longer than this is reported as unreachable. */
#define CLI_HTTP_TIMEOUT_S 120

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
	struct buf *b = ud;
	buf_append(b, p, sz * n);
	return b->oom ? 0 : sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct cli_resp *r = ud;
	size_t len = sz * n;
	static const char name[] = "X-Allot-Checkpoint:";
	if (len > sizeof name && strncasecmp(p, name, sizeof name - 1) == 0) {
		const char *v = p + sizeof name - 1;
		size_t vl = len - (sizeof name - 1);
		while (vl && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		if (vl < sizeof r->checkpoint) {
			memcpy(r->checkpoint, v, vl);
			r->checkpoint[vl] = '\0';
		}
	}
	return len;
}

int cli_http(const struct cli *c, const char *method, const char *path,
	     const char *content_type, const char *body, size_t len, struct cli_resp *out)
{
	memset(out, 0, sizeof *out);
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(out->error, sizeof out->error, "cannot initialise libcurl");
		return CLI_UNREACHABLE;
	}
	struct buf url = BUF_INIT, auth = BUF_INIT, ct = BUF_INIT;
	buf_printf(&url, "%s%s", c->server, path);
	struct curl_slist *hdrs = NULL;
	if (c->key) {
		buf_printf(&auth, "Authorization: Bearer %s", c->key);
		hdrs = curl_slist_append(hdrs, buf_str(&auth));
	}
	if (content_type) {
		buf_printf(&ct, "Content-Type: %s", content_type);
		hdrs = curl_slist_append(hdrs, buf_str(&ct));
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, buf_str(&url));
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)CLI_HTTP_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	CURLcode rc = curl_easy_perform(h);
	int ret = CLI_OK;
	if (rc != CURLE_OK) {
		snprintf(out->error, sizeof out->error, "cannot reach %s: %s", c->server,
			 curl_easy_strerror(rc));
		ret = CLI_UNREACHABLE;
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	buf_release(&url);
	if (auth.data)
		OPENSSL_cleanse(auth.data, auth.len);
	buf_release(&auth);
	buf_release(&ct);
	return ret;
}

void cli_resp_release(struct cli_resp *r) { buf_release(&r->body); }

/* The next step for an HTTP status the CLI user can act on, or NULL. */
static const char *next_step(long status)
{
	if (status == 401)
		return "set ALLOT_KEY to an API key: the admin key is in var/admin.key after "
		       "`make run`; other roles get theirs from `allot keys create`";
	if (status == 403)
		return "this key's role may not do that; ask an admin for a key of the right "
		       "role (`allot keys create --role ...`)";
	return NULL;
}

json_t *cli_diag_lines(const struct cli *c, const json_t *lines)
{
	static const char served[] = "charter.yaml:";
	json_t *out = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(lines, i, v) {
		const char *s = json_string_value(v);
		if (!s)
			continue;
		if (c->charter_file && strncmp(s, served, sizeof served - 1) == 0) {
			struct buf b = BUF_INIT;
			buf_printf(&b, "%s:%s", c->charter_file, s + sizeof served - 1);
			json_array_append_new(out, json_string(buf_str(&b)));
			buf_release(&b);
		} else {
			json_array_append_new(out, json_string(s));
		}
	}
	return out;
}

void cli_fail_json(const struct cli *c, const char *message, long status, json_t *errors)
{
	if (!c->json) {
		json_decref(errors);
		return;
	}
	json_t *j = json_pack("{s:{s:s,s:I}}", "error", "message", message, "status",
			      (json_int_t)status);
	if (j && errors)
		json_object_set_new(json_object_get(j, "error"), "errors", errors);
	else
		json_decref(errors);
	if (j)
		cli_print_json(j);
	json_decref(j);
}

int cli_report_error(const struct cli *c, const struct cli_resp *r)
{
	if (r->status == 0) {
		fprintf(stderr, "%s: %s (is allotd running? set --server or ALLOT_SERVER)\n",
			c->prog, r->error);
		cli_fail_json(c, r->error, 0, NULL);
		return CLI_UNREACHABLE;
	}
	json_error_t je;
	json_t *j = json_loadb(buf_str(&r->body), r->body.len, 0, &je);
	json_t *err = j ? json_object_get(j, "error") : NULL;
	const char *m = json_string_value(json_object_get(err, "message"));
	const char *hint = next_step(r->status);
	fprintf(stderr, "%s: %s (HTTP %ld)\n", c->prog, m ? m : "request failed", r->status);
	if (hint)
		fprintf(stderr, "%s: %s\n", c->prog, hint);
	json_t *lines = cli_diag_lines(c, json_object_get(err, "errors"));
	size_t i;
	json_t *v;
	json_array_foreach(lines, i, v)
		fprintf(stderr, "%s\n", json_string_value(v));
	cli_fail_json(c, m ? m : "request failed", r->status, lines);
	json_decref(j);
	return CLI_FAIL;
}

int cli_json_ok(const struct cli *c, struct cli_resp *r, json_t **out)
{
	if (r->status < 200 || r->status > 299)
		return cli_report_error(c, r);
	json_error_t je;
	*out = json_loadb(buf_str(&r->body), r->body.len, JSON_DECODE_ANY, &je);
	if (!*out) {
		fprintf(stderr, "%s: the server sent malformed JSON: %s\n", c->prog, je.text);
		return CLI_FAIL;
	}
	return CLI_OK;
}

void cli_print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (s) {
		puts(s);
		free(s);
	}
}

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, n) != 0)
		return false;
	if (a[n] == '=') {
		*val = a + n + 1;
		return true;
	}
	if (a[n] != '\0' || *i + 1 >= argc)
		return false;
	*val = argv[++*i];
	return true;
}

int cli_usage(const struct cli *c, const char *text)
{
	fprintf(stderr, "usage: %s %s\n", c->prog, text);
	return CLI_USAGE;
}
