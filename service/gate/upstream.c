/* upstream.c — libcurl forwarding to OpenAI-compatible provider servers. */
#include "gate/upstream.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/buf.h"
#include "gate/usage_scan.h"

struct fwd {
	upstream_data_fn on_data;
	void *ctx;
	bool stream;
	struct buf line;          /* SSE: the current partial line */
	struct buf whole;         /* non-stream: the reply */
	struct upstream_result *res;
};

/* Idle handles: each keeps its connection cache, so a keep-alive upstream
 * costs no new TCP connection per call. */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static CURL *pool[UPSTREAM_POOL_MAX];
static size_t pool_n;

static CURL *pool_take(void)
{
	CURL *c = NULL;
	pthread_mutex_lock(&pool_mu);
	if (pool_n)
		c = pool[--pool_n];
	pthread_mutex_unlock(&pool_mu);
	if (c) /* every option is set again by each call: no reset needed */
		return c;
	return curl_easy_init();
}

static void pool_give(CURL *c, bool reusable)
{
	if (reusable) {
		pthread_mutex_lock(&pool_mu);
		if (pool_n < UPSTREAM_POOL_MAX) {
			pool[pool_n++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&pool_mu);
	}
	if (c)
		curl_easy_cleanup(c);
}

void upstream_cleanup(void)
{
	pthread_mutex_lock(&pool_mu);
	while (pool_n)
		curl_easy_cleanup(pool[--pool_n]);
	pthread_mutex_unlock(&pool_mu);
}

bool upstream_usage_from_json(const char *text, size_t len, int *prompt, int *completion)
{
	/* The scanner answers for plain replies (most of them) without a
	 * tree; the rest are parsed. */
	switch (usage_scan(text, len, prompt, completion)) {
	case USAGE_SCAN_FOUND:
		return true;
	case USAGE_SCAN_NONE:
		return false;
	case USAGE_SCAN_UNSURE:
		break;
	}
	return upstream_usage_parse(text, len, prompt, completion);
}

bool upstream_usage_parse(const char *text, size_t len, int *prompt, int *completion)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);
	json_t *u = json_object_get(j, "usage");
	bool ok = false;
	if (json_is_object(u)) {
		json_t *p = json_object_get(u, "prompt_tokens"), *c = json_object_get(u, "completion_tokens");
		if (json_is_integer(p) && json_is_integer(c) && json_integer_value(p) >= 0 &&
		    json_integer_value(c) >= 0 && json_integer_value(p) < (1 << 30) &&
		    json_integer_value(c) < (1 << 30)) {
			*prompt = (int)json_integer_value(p);
			*completion = (int)json_integer_value(c);
			ok = true;
		}
	}
	json_decref(j);
	return ok;
}

static void sse_scan_line(struct fwd *f, const char *l, size_t n)
{
	if (n >= 6 && memcmp(l, "data:", 5) == 0) {
		l += 5;
		n -= 5;
		while (n && (*l == ' ' || *l == '\t')) {
			l++;
			n--;
		}
		int p, c;
		if (n && l[0] == '{' && upstream_usage_from_json(l, n, &p, &c)) {
			f->res->has_usage = true;
			f->res->prompt_tokens = p;
			f->res->completion_tokens = c;
		}
	}
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct fwd *f = ud;
	size_t n = sz * nm;
	if (f->stream) {
		for (size_t i = 0; i < n; i++) {
			if (p[i] == '\n') {
				size_t ll = f->line.len;
				if (ll && f->line.data[ll - 1] == '\r')
					ll--;
				sse_scan_line(f, f->line.data ? f->line.data : "", ll);
				buf_reset(&f->line);
			} else if (f->line.len < UPSTREAM_MAX_REPLY) {
				buf_putc(&f->line, p[i]);
			}
		}
		if (f->on_data && f->res->status / 100 == 2 && f->on_data(f->ctx, p, n))
			return 0; /* abort */
	} else {
		if (f->whole.len + n > UPSTREAM_MAX_REPLY)
			return 0;
		buf_append(&f->whole, p, n);
	}
	return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
	struct fwd *f = ud;
	size_t n = sz * nm;
	if (n > 9 && strncmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', n);
		if (sp)
			f->res->status = strtol(sp + 1, NULL, 10);
	}
	return n;
}

allot_err upstream_forward(const char *base_url, const char *path, const char *provider,
			   const char *upstream_model, const json_t *body, bool stream,
			   upstream_data_fn on_data, void *ctx, struct upstream_result *res)
{
	memset(res, 0, sizeof *res);
	json_t *b = json_copy((json_t *)body); /* shallow: only top-level keys change */
	json_object_set_new(b, "model", json_string(upstream_model));
	if (stream)
		json_object_set_new(b, "stream_options", json_pack("{s:b}", "include_usage", 1));
	char *text = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	if (!text)
		return ALLOT_E_NOMEM;
	struct buf url = BUF_INIT, auth = BUF_INIT;
	size_t bl = strlen(base_url);
	buf_printf(&url, "%.*s%s", (int)(bl && base_url[bl - 1] == '/' ? bl - 1 : bl), base_url, path);
	char env[128] = "ALLOT_UPSTREAM_KEY_";
	size_t k = strlen(env);
	for (const char *q = provider; *q && k + 1 < sizeof env; q++)
		env[k++] = isalnum((unsigned char)*q) ? (char)toupper((unsigned char)*q) : '_';
	env[k] = '\0';
	const char *key = getenv(env);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	if (key && *key) {
		buf_printf(&auth, "Authorization: Bearer %s", key);
		h = curl_slist_append(h, buf_str(&auth));
	}
	struct fwd f = {.on_data = on_data, .ctx = ctx, .stream = stream, .line = BUF_INIT,
			.whole = BUF_INIT, .res = res};
	CURL *c = pool_take();
	allot_err e = ALLOT_OK;
	if (!c) {
		e = ALLOT_E_NOMEM;
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, buf_str(&url));
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &f);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)UPSTREAM_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)UPSTREAM_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		snprintf(res->error, sizeof res->error, "%s", curl_easy_strerror(rc));
		e = ALLOT_E_UPSTREAM;
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
	}
	if (!stream) {
		int p, q;
		if (f.whole.len && upstream_usage_from_json(f.whole.data, f.whole.len, &p, &q)) {
			res->has_usage = true;
			res->prompt_tokens = p;
			res->completion_tokens = q;
		}
		if (on_data && f.whole.len)
			on_data(ctx, f.whole.data, f.whole.len);
	}
	/* A call aborted mid-reply (client gone) leaves its connection in no
	 * state to reuse: such handles are closed. */
	pool_give(c, rc == CURLE_OK);
out:
	curl_slist_free_all(h);
	if (auth.data)
		memset(auth.data, 0, auth.len);
	buf_release(&auth);
	buf_release(&url);
	buf_release(&f.line);
	buf_release(&f.whole);
	free(text);
	return e;
}
