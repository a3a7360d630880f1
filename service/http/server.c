/* server.c — libmicrohttpd glue: bodies, routing, auth, errors, metrics. */
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"

/* ---- metrics -------------------------------------------------------------- */

static const int metric_statuses[] = {200, 201, 204, 400, 401, 402, 403, 404, 405,
				      409, 413, 415, 422, 429, 431, 500, 502, 503};
#define NSTATUS (sizeof metric_statuses / sizeof metric_statuses[0] + 1) /* + other */
static const double metric_buckets_ms[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25,
					   50, 100, 250, 500, 1000, 2500, 10000};
#define NBUCKET (sizeof metric_buckets_ms / sizeof metric_buckets_ms[0])

struct route_metrics {
	atomic_ullong by_status[NSTATUS];
	atomic_ullong buckets[NBUCKET + 1]; /* last: +Inf */
	atomic_ullong sum_us;
	atomic_ullong count;
};

struct http_server {
	struct MHD_Daemon *mhd;
	struct http_server_config cfg;
	unsigned port;
	struct route_metrics *metrics; /* nroutes + 1 (unmatched) */
};

struct req_state {
	struct http_req req;
	struct buf body;
	bool too_large;
	bool has_nul;
	bool responded;
	int status;             /* the status queued (counted when the response ends) */
};

static void metrics_record(struct http_server *srv, const struct http_route *route,
			   int status, int64_t elapsed_us)
{
	size_t ri = route ? (size_t)(route - srv->cfg.routes) : srv->cfg.nroutes;
	struct route_metrics *m = &srv->metrics[ri];
	size_t si = NSTATUS - 1;
	for (size_t i = 0; i < NSTATUS - 1; i++)
		if (metric_statuses[i] == status) {
			si = i;
			break;
		}
	atomic_fetch_add_explicit(&m->by_status[si], 1, memory_order_relaxed);
	size_t b = NBUCKET;
	for (size_t i = 0; i < NBUCKET; i++)
		if ((double)elapsed_us <= metric_buckets_ms[i] * 1000.0) {
			b = i;
			break;
		}
	atomic_fetch_add_explicit(&m->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum_us, (unsigned long long)elapsed_us,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

static const char *route_label(const struct http_server *srv, size_t ri)
{
	if (ri >= srv->cfg.nroutes)
		return "unmatched";
	const struct http_route *r = &srv->cfg.routes[ri];
	return r->name ? r->name : r->pattern;
}

void http_metrics_render(const struct http_server *srv, struct buf *out)
{
	buf_puts(out, "# HELP allot_http_requests_total HTTP requests by route and status.\n"
		      "# TYPE allot_http_requests_total counter\n");
	for (size_t ri = 0; ri <= srv->cfg.nroutes; ri++) {
		struct route_metrics *m = &srv->metrics[ri];
		for (size_t si = 0; si < NSTATUS; si++) {
			unsigned long long n = atomic_load(&m->by_status[si]);
			if (!n)
				continue;
			const char *method = ri < srv->cfg.nroutes ? srv->cfg.routes[ri].method : "";
			if (si < NSTATUS - 1)
				buf_printf(out, "allot_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
					   method, route_label(srv, ri), metric_statuses[si], n);
			else
				buf_printf(out, "allot_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\"} %llu\n",
					   method, route_label(srv, ri), n);
		}
	}
	buf_puts(out, "# HELP allot_http_request_duration_seconds Time to the end of the response "
		      "(a stream's whole length).\n"
		      "# TYPE allot_http_request_duration_seconds histogram\n");
	for (size_t ri = 0; ri <= srv->cfg.nroutes; ri++) {
		struct route_metrics *m = &srv->metrics[ri];
		unsigned long long count = atomic_load(&m->count);
		if (!count)
			continue;
		const char *label = route_label(srv, ri);
		const char *method = ri < srv->cfg.nroutes ? srv->cfg.routes[ri].method : "";
		unsigned long long cum = 0;
		for (size_t b = 0; b < NBUCKET; b++) {
			cum += atomic_load(&m->buckets[b]);
			buf_printf(out, "allot_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
				   method, label, metric_buckets_ms[b] / 1000.0, cum);
		}
		cum += atomic_load(&m->buckets[NBUCKET]);
		buf_printf(out, "allot_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n",
			   method, label, cum);
		buf_printf(out, "allot_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n",
			   method, label, (double)atomic_load(&m->sum_us) / 1e6);
		buf_printf(out, "allot_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
			   method, label, count);
	}
}

const struct http_server *http_req_server(const struct http_req *req)
{
	return req->server;
}

/* ---- helpers for handlers ------------------------------------------------ */

static allot_err verror(struct http_resp *resp, allot_err err, const char *code,
		       const char *param, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	for (char *p = msg; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	/* A message quoting bytes that are not UTF-8 (a path, a header) could
	 * not be JSON: those bytes become '?' so the error is always sent. */
	if (!json_utf8_ok(msg, strlen(msg)))
		for (char *p = msg; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
	json_t *j = http_error_json(err, code, param, msg);
	buf_reset(&resp->body);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (s) {
		buf_puts(&resp->body, s);
		free(s);
	}
	json_decref(j);
	resp->status = err_http_status(err);
	resp->content_type = "application/json";
	resp->err = err;
	return err;
}

json_t *http_error_json(allot_err err, const char *code, const char *param, const char *msg)
{
	/* A param that is not UTF-8 (it names a client's field) is dropped. */
	if (param && !json_utf8_ok(param, strlen(param)))
		param = NULL;
	return json_pack("{s:{s:s,s:s,s:s,s:o}}", "error", "message", msg ? msg : "", "type",
			 err_type(err), "code", code ? code : err_code(err), "param",
			 param ? json_string(param) : json_null());
}

allot_err http_error(struct http_resp *resp, allot_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	allot_err r = verror(resp, err, NULL, NULL, fmt, ap);
	va_end(ap);
	return r;
}

allot_err http_error_ex(struct http_resp *resp, allot_err err, const char *code,
			const char *param, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	allot_err r = verror(resp, err, code, param, fmt, ap);
	va_end(ap);
	return r;
}

allot_err http_json(struct http_resp *resp, int status, json_t *j)
{
	if (!j)
		return http_error(resp, ALLOT_E_NOMEM, "out of memory");
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	if (!s)
		return http_error(resp, ALLOT_E_NOMEM, "out of memory");
	buf_reset(&resp->body);
	buf_puts(&resp->body, s);
	buf_putc(&resp->body, '\n');
	free(s);
	resp->status = status;
	resp->content_type = "application/json";
	return ALLOT_OK;
}

void http_add_header(struct http_resp *resp, const char *name, const char *value)
{
	if (resp->nheaders >= HTTP_MAX_EXTRA_HEADERS)
		return;
	snprintf(resp->headers[resp->nheaders].name, sizeof resp->headers[0].name, "%s", name);
	snprintf(resp->headers[resp->nheaders].value, sizeof resp->headers[0].value, "%s", value);
	resp->nheaders++;
}

const char *http_header(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool http_content_type_is(const struct http_req *req, const char *const types[])
{
	const char *ct = http_header(req, "Content-Type");
	if (!ct)
		return false;
	size_t n = strcspn(ct, "; \t");
	for (size_t i = 0; types[i]; i++)
		if (strlen(types[i]) == n && strncasecmp(ct, types[i], n) == 0)
			return true;
	return false;
}

allot_err http_require_json(struct http_req *req, struct http_resp *resp)
{
	static const char *const json_types[] = {"application/json", NULL};
	if (!http_content_type_is(req, json_types))
		return http_error(resp, ALLOT_E_MEDIA_TYPE,
				  "Content-Type must be application/json");
	return ALLOT_OK;
}

allot_err http_body_json(struct http_req *req, struct http_resp *resp, json_t **out)
{
	char msg[256];
	allot_err e = http_require_json(req, resp);
	if (e)
		return e;
	e = json_parse(req->body, req->body_len, false, out, msg, sizeof msg);
	if (e)
		return http_error(resp, e, "%s", msg);
	return ALLOT_OK;
}

/* ---- CORS ------------------------------------------------------------------ */

/* Longest Origin and Access-Control-Request-Headers values honoured. */
#define CORS_MAX_ORIGIN 256
#define CORS_MAX_REQ_HEADERS 1024

/* One origin: scheme "http" or "https", "://", a host of [A-Za-z0-9.-]
 * (or [v6]), an optional ":port", nothing else. */
static bool origin_ok(const char *o, size_t n)
{
	size_t i = n >= 8 && strncmp(o, "https://", 8) == 0 ? 8
		 : n >= 7 && strncmp(o, "http://", 7) == 0 ? 7 : 0;
	if (i == 0 || i == n || n > CORS_MAX_ORIGIN)
		return false;
	for (; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", o[i]))
			return false;
	return true;
}

bool http_cors_list_ok(const char *list)
{
	if (strcmp(list, "*") == 0)
		return true;
	for (const char *p = list;;) {
		size_t n = strcspn(p, ",");
		if (!origin_ok(p, n))
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

/* The request's Origin when the configuration allows it, else NULL. */
static const char *cors_origin(const struct http_server *srv, struct MHD_Connection *conn)
{
	const char *list = srv->cfg.cors_origins;
	const char *o = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	if (!list || !o || !origin_ok(o, strlen(o)))
		return NULL;
	if (strcmp(list, "*") == 0)
		return o;
	size_t on = strlen(o);
	for (const char *p = list;;) {
		size_t n = strcspn(p, ",");
		if (n == on && strncasecmp(p, o, n) == 0)
			return o;
		if (!p[n])
			return NULL;
		p += n + 1;
	}
}

/* A preflight (OPTIONS with Access-Control-Request-Method) of a known
 * path: 204 with the Access-Control-Allow-* headers for an allowed origin,
 * 403 for any other. */
static void cors_preflight(struct http_server *srv, struct http_req *req, struct http_resp *resp)
{
	const char *o = cors_origin(srv, req->conn);
	if (!o) {
		http_error(resp, ALLOT_E_FORBIDDEN, "this origin may not call the API from a browser "
			   "(allotd --cors-origins)");
		return;
	}
	resp->status = 204;
	http_add_header(resp, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
	/* The headers the page asks for (clients send their own, such as
	 * openai's X-Stainless-*), when they are plain header names. */
	const char *h = http_header(req, "Access-Control-Request-Headers");
	bool plain = h && strlen(h) < CORS_MAX_REQ_HEADERS &&
		     strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_, ") == strlen(h);
	http_add_header(resp, "Access-Control-Allow-Headers", plain ? h : "Authorization, Content-Type");
	http_add_header(resp, "Access-Control-Max-Age", "600");
}

/* ---- routing ------------------------------------------------------------- */

/* Matches path against pattern; fills params.  Segments "{x}" match one
 * non-empty segment. */
static bool route_match(const char *pattern, const char *path, struct http_req *req,
			char *scratch, size_t scratch_sz)
{
	size_t np = 0, used = 0;
	const char *p = pattern, *s = path;
	while (*p && *s) {
		if (*p != '/' || *s != '/')
			return false;
		p++;
		s++;
		size_t pl = strcspn(p, "/"), sl = strcspn(s, "/");
		if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
			if (sl == 0 || np >= HTTP_MAX_PATH_PARAMS || used + sl + 1 > scratch_sz)
				return false;
			memcpy(scratch + used, s, sl);
			scratch[used + sl] = '\0';
			req->params[np++] = scratch + used;
			used += sl + 1;
		} else if (pl != sl || strncmp(p, s, pl) != 0) {
			return false;
		}
		p += pl;
		s += sl;
	}
	if (*p || *s)
		return false;
	req->nparams = np;
	return true;
}

/* ---- request lifecycle ---------------------------------------------------- */

static enum MHD_Result queue(struct MHD_Connection *conn, struct req_state *st,
			     struct http_server *srv, struct http_resp *resp)
{
	struct MHD_Response *r;
	if (resp->stream) {
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
						      resp->stream, resp->stream_cls,
						      resp->stream_cleanup);
	} else {
		size_t len;
		char *body = buf_detach(&resp->body, &len);
		r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		if (!r)
			free(body);
	}
	if (!r) {
		if (resp->stream && resp->stream_cleanup)
			resp->stream_cleanup(resp->stream_cls);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type",
				resp->content_type ? resp->content_type : "application/json");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	bool cache_set = false; /* the dashboard's files set their own (api/web.c) */
	for (size_t i = 0; i < resp->nheaders; i++) {
		MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
		cache_set |= strcasecmp(resp->headers[i].name, "Cache-Control") == 0;
	}
	if (!cache_set)
		MHD_add_response_header(r, "Cache-Control", "no-store");
	if (srv->cfg.cors_origins) {
		const char *o = cors_origin(srv, conn);
		MHD_add_response_header(r, "Vary", "Origin");
		if (o) {
			MHD_add_response_header(r, "Access-Control-Allow-Origin", o);
			MHD_add_response_header(r, "Access-Control-Expose-Headers",
						"X-Allot-Remaining, X-Allot-Remaining-Level, Retry-After");
		}
	}
	int status = resp->status ? resp->status : 200;
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	st->responded = true;
	st->status = status;
	(void)srv;
	return ret;
}

static void dispatch(struct http_server *srv, struct req_state *st, struct http_resp *resp)
{
	struct http_req *req = &st->req;
	char msg[256];
	static char nothing[] = "";

	if (st->too_large) {
		http_error(resp, ALLOT_E_TOO_LARGE, "request body exceeds %u bytes", HTTP_MAX_BODY);
		return;
	}
	req->body = st->body.data ? st->body.data : nothing;
	req->body_len = st->body.len;

	/* Find the route; distinguish 404 from 405. */
	static __thread char scratch[1024];
	bool path_known = false;
	const struct http_route *route = NULL;
	for (size_t i = 0; i < srv->cfg.nroutes; i++) {
		const struct http_route *r = &srv->cfg.routes[i];
		struct http_req probe = *req;
		if (!route_match(r->pattern, req->path, &probe, scratch, sizeof scratch))
			continue;
		path_known = true;
		if (strcmp(r->method, req->method) == 0 ||
		    (strcmp(req->method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
			route = r;
			memcpy(req->params, probe.params, sizeof req->params);
			req->nparams = probe.nparams;
			break;
		}
	}
	if (!route && path_known && strcmp(req->method, "OPTIONS") == 0 &&
	    http_header(req, "Access-Control-Request-Method")) {
		cors_preflight(srv, req, resp);
		return;
	}
	if (!route) {
		if (path_known)
			http_error(resp, ALLOT_E_METHOD, "method %s not allowed on %s", req->method,
				   req->path);
		else
			http_error(resp, ALLOT_E_NOT_FOUND, "no such endpoint: %s", req->path);
		return;
	}
	req->route = route;
	if (st->has_nul) {
		http_error(resp, ALLOT_E_INVALID, "request body contains a NUL byte");
		return;
	}
	if (!(route->roles & HTTP_ROUTE_PUBLIC)) {
		allot_err e = srv->cfg.authenticate(req, msg, sizeof msg);
		if (e) {
			http_error(resp, e, "%s", msg);
			if (e == ALLOT_E_UNAUTHORIZED)
				http_add_header(resp, "WWW-Authenticate", "Bearer");
			return;
		}
		if (!(srv->cfg.role_of(req->who) & route->roles)) {
			http_error(resp, ALLOT_E_FORBIDDEN, "this credential may not use %s %s",
				   route->method, route->pattern);
			return;
		}
	}
	allot_err e = route->fn(req, resp);
	/* A handler that fails without writing its error still answers with
	 * one, never with an empty 200. */
	if (e && !resp->err && resp->status < 400) {
		resp->stream = NULL;
		http_error(resp, e, "%s %s failed (%s)", route->method, route->pattern,
			   err_code(e));
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	struct http_server *srv = cls;
	struct req_state *st = *req_cls;
	(void)version;

	if (!st) {
		st = calloc(1, sizeof *st);
		if (!st)
			return MHD_NO;
		st->req.app = srv->cfg.app;
		st->req.server = srv;
		st->req.conn = conn;
		st->req.method = method;
		st->req.path = url;
		st->req.started_us = time_mono_us();
		*req_cls = st;
		/* Decide an oversized declared body now, before reading it. */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			unsigned long long n = strtoull(cl, &end, 10);
			if (*end != '\0' || n > HTTP_MAX_BODY) {
				struct http_resp resp = {0};
				http_error(&resp, ALLOT_E_TOO_LARGE,
					   "request body exceeds %u bytes", HTTP_MAX_BODY);
				enum MHD_Result r = queue(conn, st, srv, &resp);
				buf_release(&resp.body);
				return r;
			}
		}
		return MHD_YES;
	}
	if (st->responded) {
		*upload_data_size = 0; /* discard what follows an early answer */
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!st->too_large) {
			if (st->body.len + *upload_data_size > HTTP_MAX_BODY) {
				st->too_large = true;
				buf_release(&st->body);
			} else {
				if (memchr(upload_data, '\0', *upload_data_size))
					st->has_nul = true;
				buf_append(&st->body, upload_data, *upload_data_size);
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	struct http_resp resp = {0};
	if (st->body.oom)
		http_error(&resp, ALLOT_E_NOMEM, "out of memory reading the body");
	else
		dispatch(srv, st, &resp);
	enum MHD_Result r = queue(conn, st, srv, &resp);
	buf_release(&resp.body);
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct req_state *st = *req_cls;
	(void)conn;
	(void)toe;
	if (!st)
		return;
	/* Counted when the response has been sent (or the connection ended):
	 * a stream's latency is its whole length. */
	if (st->responded)
		metrics_record(srv, st->req.route, st->status, time_mono_us() - st->req.started_us);
	if (st->req.who && srv->cfg.principal_free)
		srv->cfg.principal_free(st->req.who);
	buf_release(&st->body);
	free(st);
	*req_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("http: %s", line);
}

/* ---- start / stop --------------------------------------------------------- */

allot_err http_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sl,
			    char *msg, size_t msgsz)
{
	char host[128];
	const char *colon = strrchr(listen, ':');
	if (!colon || colon == listen || strlen(colon + 1) == 0 ||
	    (size_t)(colon - listen) >= sizeof host)
		goto bad;
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || port > 65535)
		goto bad;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	memset(ss, 0, sizeof *ss);
	if (host[0] == '[') {
		size_t hl = strlen(host);
		if (hl < 3 || host[hl - 1] != ']')
			goto bad;
		host[hl - 1] = '\0';
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			goto bad;
		*sl = sizeof *a6;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof host, "127.0.0.1");
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			goto bad;
		*sl = sizeof *a4;
	}
	return ALLOT_OK;
bad:
	snprintf(msg, msgsz, "bad listen address \"%s\" (want HOST:PORT, e.g. 127.0.0.1:8080)",
		 listen);
	return ALLOT_E_INVALID;
}

allot_err http_listen(const char *addr, int *fd, char *msg, size_t msgsz)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	allot_err e = http_parse_listen(addr, &ss, &sl, msg, msgsz);
	if (e)
		return e;
	int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	const int on = 1;
	/* SO_REUSEADDR, as libmicrohttpd sets on its own sockets: a restart
	 * binds while old connections are in TIME_WAIT.  Never SO_REUSEPORT,
	 * with which a second allotd would bind the same port and the kernel
	 * would split connections between the two. */
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) ||
	    (ss.ss_family == AF_INET6 && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on)) ||
	    bind(s, (struct sockaddr *)&ss, sl) || listen(s, SOMAXCONN)) {
		if (s >= 0)
			close(s);
		snprintf(msg, msgsz, "cannot listen on %s (address in use or not permitted)", addr);
		return ALLOT_E_IO;
	}
	*fd = s;
	return ALLOT_OK;
}

/* The port fd is bound to (the one chosen for port 0), and whether it is
 * an IPv6 socket. */
static unsigned bound_port(int fd, bool *v6)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	*v6 = false;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return 0;
	*v6 = ss.ss_family == AF_INET6;
	return ntohs(*v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
			 : ((struct sockaddr_in *)&ss)->sin_port);
}

allot_err http_server_start(const struct http_server_config *cfg,
			    struct http_server **out, char *msg, size_t msgsz)
{
	int fd = cfg->listen_fd;
	if (!cfg->listen_fd_set) {
		allot_err e = http_listen(cfg->listen, &fd, msg, msgsz);
		if (e)
			return e;
	}
	struct http_server *srv = calloc(1, sizeof *srv);
	if (srv)
		srv->metrics = calloc(cfg->nroutes + 1, sizeof *srv->metrics);
	if (!srv || !srv->metrics) {
		free(srv);
		close(fd);
		return ALLOT_E_NOMEM;
	}
	bool v6;
	srv->cfg = *cfg;
	srv->port = bound_port(fd, &v6);
	/* MHD_USE_POLL: each connection's thread waits in poll(), not select()
	 * (whose cost grows with the highest descriptor number).  The socket is
	 * bound already (http_listen): libmicrohttpd serves it and closes it in
	 * MHD_stop_daemon. */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_POLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
	srv->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, srv,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS_PER_IP,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MAX_HEADER_BYTES,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_END);
	if (!srv->mhd) {
		/* the socket is not closed here: libmicrohttpd may have closed it */
		snprintf(msg, msgsz, "cannot serve on %s (libmicrohttpd did not start)", cfg->listen);
		free(srv->metrics);
		free(srv);
		return ALLOT_E_IO;
	}
	*out = srv;
	return ALLOT_OK;
}

unsigned http_server_port(const struct http_server *srv) { return srv->port; }

void http_server_stop(struct http_server *srv)
{
	if (!srv)
		return;
	MHD_stop_daemon(srv->mhd);
	free(srv->metrics);
	free(srv);
}
