/* server.h — the HTTP front end on libmicrohttpd.
 *
 * Owns: connection limits and timeouts, body collection with the body limit,
 * routing by method and path pattern, role checks, error bodies, metrics.
 * Handlers receive a parsed request and fill a response; they never touch
 * libmicrohttpd directly except for streaming bodies.
 *
 * Threads: one thread per connection (MHD_USE_THREAD_PER_CONNECTION), so a
 * handler or a streaming callback may block (the gate waits for inference).
 */
#ifndef ALLOT_HTTP_SERVER_H
#define ALLOT_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"

/* ---- limits (named, with reasons) ---------------------------------------- */
/* 16 MiB: a usage batch of 10,000 records at ~600 bytes each fits, with room. */
#define HTTP_MAX_BODY (16u * 1024 * 1024)
/* 32 KiB of headers per connection: far above any real client's; beyond it
 * libmicrohttpd answers 431. */
#define HTTP_MAX_HEADER_BYTES (32u * 1024)
/* Simultaneous connections, and per client address. */
#define HTTP_MAX_CONNECTIONS 1024
#define HTTP_MAX_CONNECTIONS_PER_IP 256
/* Seconds a connection may stay idle before it is closed. */
#define HTTP_IDLE_TIMEOUT_S 60
#define HTTP_MAX_PATH_PARAMS 4

/* A route's roles are bits the application defines (auth/principal.h):
 * the server only tests the caller's bit (http_role_fn) against them.  This
 * one bit it knows: a route for everyone, no credential asked. */
#define HTTP_ROUTE_PUBLIC (1u << 7)

struct principal;  /* auth/principal.h */
struct MHD_Connection;
struct http_req;
struct http_resp;

typedef allot_err (*http_handler_fn)(struct http_req *req, struct http_resp *resp);

struct http_route {
	const char *method;   /* "GET", "POST", ... */
	const char *pattern;  /* "/v1/quotas/{inst}/{proj}" */
	unsigned roles;       /* the roles allowed; HTTP_ROUTE_PUBLIC: anyone */
	http_handler_fn fn;
	const char *name;     /* label in metrics; defaults to pattern */
};

struct http_req {
	void *app;                          /* from http_server_start */
	struct http_server *server;
	struct MHD_Connection *conn;
	const char *method;
	const char *path;                   /* without the query string */
	const char *body;                   /* NUL-terminated copy; may be "" */
	size_t body_len;
	const char *params[HTTP_MAX_PATH_PARAMS]; /* {x} segments, in order */
	size_t nparams;
	const struct http_route *route;
	struct principal *who;              /* set by the authenticator */
	int64_t started_us;                 /* monotonic */
};

/* A streaming body (libmicrohttpd's content reader): returns bytes written
 * to buf (> 0), HTTP_STREAM_END or HTTP_STREAM_ERROR.  It may block.
 * `cleanup` runs once when the response is freed, also when the client went
 * away mid-stream. */
typedef ssize_t (*http_stream_fn)(void *cls, uint64_t pos, char *buf, size_t max);
#define HTTP_STREAM_END ((ssize_t)-1)
#define HTTP_STREAM_ERROR ((ssize_t)-2)

#define HTTP_MAX_EXTRA_HEADERS 8
struct http_resp {
	int status;                         /* default 200 */
	const char *content_type;           /* default application/json */
	struct buf body;
	struct {
		char name[48];
		char value[512];  /* a base64 signed checkpoint fits */
	} headers[HTTP_MAX_EXTRA_HEADERS];
	size_t nheaders;
	http_stream_fn stream;              /* if set, body is ignored */
	void *stream_cls;
	void (*stream_cleanup)(void *cls);
	allot_err err;                      /* set by http_error */
};

/* Authenticator: sets req->who from the Authorization header, or returns
 * ALLOT_E_UNAUTHORIZED with a message.  Called for every non-public route. */
typedef allot_err (*http_auth_fn)(struct http_req *req, char *msg, size_t msgsz);
/* The principal's role as one bit of a route's roles. */
typedef unsigned (*http_role_fn)(const struct principal *who);
typedef void (*http_principal_free_fn)(struct principal *who);

struct http_server_config {
	const char *listen;                 /* "127.0.0.1:8080" or "[::1]:8080" */
	const struct http_route *routes;
	size_t nroutes;
	void *app;
	http_auth_fn authenticate;
	http_role_fn role_of;
	http_principal_free_fn principal_free;
	/* Origins whose pages may call the API from a browser: "*", or a
	 * comma-separated list of exact origins; NULL: none.  Preflights
	 * (OPTIONS with Access-Control-Request-Method) from an allowed origin
	 * get 204 with the Access-Control-Allow-* headers, others 403; answers
	 * to an allowed origin carry Access-Control-Allow-Origin. */
	const char *cors_origins;
	/* listen_fd_set: listen_fd is a socket from http_listen (for `listen`),
	 * which the server takes (http_server_stop closes it; so does a failed
	 * http_server_start before libmicrohttpd has it).  Otherwise
	 * http_server_start binds `listen` itself. */
	int listen_fd;
	bool listen_fd_set;
};

/* Whether list is a valid cors_origins value. */
bool http_cors_list_ok(const char *list);

struct http_server;

/* Parses a --listen address: "IPV4:PORT", "localhost:PORT" or "[IPV6]:PORT"
 * (port 0..65535).  ALLOT_E_INVALID with a message naming the address. */
allot_err http_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sl,
			    char *msg, size_t msgsz);
/* Binds a socket to a --listen address and listens on it (SO_REUSEADDR, so
 * a restart binds while old connections are in TIME_WAIT; never
 * SO_REUSEPORT).  allotd binds first, before it opens or creates anything,
 * so that a start on a busy port fails having changed nothing.  OUT: *fd,
 * for http_server_config.listen_fd.  ALLOT_E_IO: "cannot listen on ADDR
 * (address in use or not permitted)". */
allot_err http_listen(const char *addr, int *fd, char *msg, size_t msgsz);
/* Starts serving on cfg->listen_fd, or binds cfg->listen ("host:port")
 * first. */
allot_err http_server_start(const struct http_server_config *cfg,
			    struct http_server **out, char *msg, size_t msgsz);
/* Port actually bound (useful with port 0). */
unsigned http_server_port(const struct http_server *srv);
void http_server_stop(struct http_server *srv);

/* ---- helpers for handlers ------------------------------------------------- */

/* Writes OpenAI's error shape {"error":{"message","type","code","param"}}
 * (type err_type(err), code err_code(err), param null) with the status of
 * err and returns err.  CR and LF in the message are replaced by spaces. */
allot_err http_error(struct http_resp *resp, allot_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same with a code other than err_code(err) (code NULL: that one) and
 * the request field at fault (param NULL: null), e.g.
 * ("context_length_exceeded", "messages") or ("unsupported", "tools"). */
allot_err http_error_ex(struct http_resp *resp, allot_err err, const char *code,
			const char *param, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* The error object alone (for an SSE stream's error event); NULL on OOM. */
json_t *http_error_json(allot_err err, const char *code, const char *param, const char *msg);
/* Serialises j (compact) as the body with the given status; steals j. */
allot_err http_json(struct http_resp *resp, int status, json_t *j);
void http_add_header(struct http_resp *resp, const char *name, const char *value);

const char *http_header(const struct http_req *req, const char *name);
const char *http_query(const struct http_req *req, const char *name);
/* Content-Type without parameters matches one of a NULL-terminated list. */
bool http_content_type_is(const struct http_req *req, const char *const types[]);
/* Parses the body as a JSON object (duplicate keys, NUL bytes, non-objects
 * rejected); on failure writes the error response and returns its code. */
allot_err http_body_json(struct http_req *req, struct http_resp *resp, json_t **out);
/* The Content-Type check of http_body_json alone (415), for handlers that
 * read the body themselves. */
allot_err http_require_json(struct http_req *req, struct http_resp *resp);

/* Prometheus text of all request metrics. */
void http_metrics_render(const struct http_server *srv, struct buf *out);
const struct http_server *http_req_server(const struct http_req *req);

#endif
