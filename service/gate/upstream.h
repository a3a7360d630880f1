/* upstream.h — forwarding gated requests to a provider's OpenAI-compatible
 * server (models with `url:` in the charter) with libcurl.
 *
 * The body is forwarded with "model" replaced by the charter's
 * upstream_model and, when streaming, stream_options.include_usage set so
 * the server reports usage in its last chunk.  Every byte of the reply is
 * passed to on_data as it arrives (SSE passes through unchanged); the
 * `usage` object is picked out of the reply (the JSON body, or the last
 * SSE chunk carrying one).  A reply without usage is reported as such: the
 * caller charges the reservation, never zero.
 */
#ifndef ALLOT_GATE_UPSTREAM_H
#define ALLOT_GATE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/err.h"

/* Seconds an upstream call may take in all, and to connect. */
#define UPSTREAM_TIMEOUT_S 600
#define UPSTREAM_CONNECT_TIMEOUT_S 10
/* Largest non-streamed upstream reply kept (bytes). */
#define UPSTREAM_MAX_REPLY (8u * 1024 * 1024)

struct upstream_result {
	long status;               /* HTTP status, 0 if none */
	bool has_usage;
	int prompt_tokens, completion_tokens;
	char error[256];           /* transport error, "" if none */
};

/* on_data returns non-zero to abort (client gone). */
typedef int (*upstream_data_fn)(void *ctx, const char *data, size_t len);

/* POSTs body (a JSON object; copied and rewritten) to base_url + path
 * ("/completions" or "/chat/completions").  provider names the env var
 * ALLOT_UPSTREAM_KEY_<PROVIDER> holding an optional bearer key. */
allot_err upstream_forward(const char *base_url, const char *path, const char *provider,
			   const char *upstream_model, const json_t *body, bool stream,
			   upstream_data_fn on_data, void *ctx, struct upstream_result *res);

/* Connections to upstreams are kept alive: finished calls return their
 * libcurl handle (and its open connection) to a small pool the next call
 * takes from.  upstream_cleanup closes them (gate_free calls it). */
#define UPSTREAM_POOL_MAX 64
void upstream_cleanup(void);

/* Picks "usage" from one JSON text (a reply or an SSE data payload):
 * usage_scan (gate/usage_scan.h), else upstream_usage_parse. */
bool upstream_usage_from_json(const char *text, size_t len, int *prompt, int *completion);
/* The same with jansson alone (the reference the scanner is tested on). */
bool upstream_usage_parse(const char *text, size_t len, int *prompt, int *completion);

#endif
