/* bench_gate.c — what the gate adds in front of a backend.
 *
 * One process, libmicrohttpd servers with a thread per connection on
 * loopback, load clients on kept-alive connections (below), and two backends, each measured raw and gated back to back:
 *   engine   models/stories260K.gguf (one compute thread), max_tokens 1 on
 *            a 5-token prompt.  raw: a minimal OpenAI-style completions
 *            endpoint (parse the JSON body, tokenize, generate, answer JSON
 *            with usage); gated: allotd's own server and routes.
 *   instant  an OpenAI-compatible upstream that answers a fixed completion
 *            with usage at once.  raw: the clients call it directly; gated:
 *            allotd serves model "instant" by url: and forwards with
 *            libcurl (kept-alive connections).
 * gated = token verification (cached), admission with reservations, the
 * backend, settlement through the ledger (SQLite WAL; settlements commit
 * DEFERRED, docs/GATE.md "Durability of settlements").
 *
 * Figures (printed, never asserted; targets from issue 4):
 *   1. in-process costs per call: cached and fresh token verification,
 *      admit+cancel, admit+settle, the engine alone;
 *   2. latency at a paced 1,000 requests/s (4 client threads, each on a
 *      fixed schedule; latency counted from the scheduled send time, so
 *      queueing is not hidden): p50/p99 raw and gated, the difference is
 *      the gate's added latency (target p50 <= 0.3 ms, p99 <= 1 ms);
 *   3. closed-loop throughput with 8 keep-alive clients repeating one token
 *      (target >= 10,000 gated requests/s), then gated again with 16, 32
 *      and 64 clients (ALLOT_BENCH_SWEEP; more clients, larger group
 *      commits);
 *   4. the same clients on GET /v1/models: the HTTP layer and the token
 *      check without engine or ledger (the ceiling of this client/server
 *      pair on this machine).
 * Environment: ALLOT_BENCH_SECONDS (default 3) per HTTP phase;
 * ALLOT_BENCH_BACKEND=engine|instant runs one backend only; ALLOT_FLUSH_MS
 * the settlements' flush interval (0: an fsync per settlement, as before);
 * ALLOT_BENCH_DIR (default /tmp) holds the database (try /dev/shm);
 * ALLOT_BENCH_CLIENT=curl loads with libcurl clients instead of the
 * minimal socket ones; ALLOT_BENCH_SWEEP="16,32,64" the extra client counts.
 * ALLOT_BENCH_PG=URI (a PostgreSQL server, e.g. scripts/with-pg.sh's
 * ALLOT_TEST_PG_URI) then runs the instant backend on 1, 2 and 3 nodes on one
 * new database there (bench/gate/nodes.c, docs/BENCH_PG.md).
 * ALLOT_BENCH_ROWS=N then compares gated req/s on an empty ledger and on one
 * of N records (bench/gate/growth.c, docs/BENCH_GATE.md).
 * Without the model file it prints a line and exits 0.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "daemon/app.h"
#include "gate/gate.h"
#include "gate/tokens.h"
#include "http/server.h"
#include "infer/engine.h"
#include "store/store.h"

#include "bench_gate.h"

#define MODEL_FILE "stories260K.gguf"
#define PROMPT "Once upon a time"
#define BODY "{\"model\":\"stories\",\"prompt\":\"" PROMPT "\",\"max_tokens\":1,\"temperature\":0}"
/* The instant backend: the same body for the model served by url:, and
 * for the upstream called directly (raw) under its own name. */
#define BODY_INSTANT "{\"model\":\"instant\",\"prompt\":\"" PROMPT "\",\"max_tokens\":1,\"temperature\":0}"
#define BODY_UP "{\"model\":\"up\",\"prompt\":\"" PROMPT "\",\"max_tokens\":1,\"temperature\":0}"
#define INSTANT_REPLY "{\"id\":\"cmpl-bench\",\"object\":\"text_completion\",\"created\":1767225600," \
	"\"model\":\"up\",\"choices\":[{\"index\":0,\"text\":\" there\",\"finish_reason\":\"length\"}]," \
	"\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}"
#define PACED_RATE 1000     /* requests per second (the latency target) */
#define PACED_THREADS 4
#define LOOP_CLIENTS 8
/* The gated throughput again at these client counts (ALLOT_BENCH_SWEEP). */
#define SWEEP_DEFAULT "16,32,64"
#define SWEEP_MAX 8
#define MAX_SAMPLES 2000000

static const char charter_fmt[] =
	"charter: bench-gate\n"
	"version: 1\n"
	"effective: 2026-01-01T00:00:00Z\n"
	"timezone: UTC\n"
	"rates:\n"
	"  - {resource: tokens_in,  model: stories, credits: 0.0001}\n"
	"  - {resource: tokens_out, model: stories, credits: 0.0003}\n"
	"  - {resource: tokens_in,  model: instant, credits: 0.0001}\n"
	"  - {resource: tokens_out, model: instant, credits: 0.0003}\n"
	"providers:\n"
	"  - {id: local, builtin: true}\n"
	"  - {id: remote, resources: [tokens_in, tokens_out]}\n"
	"models:\n"
	"  - {id: stories, provider: local, file: " MODEL_FILE "}\n"
	"  - {id: instant, provider: remote, url: \"http://127.0.0.1:%u/v1\", upstream_model: up}\n"
	"institutions:\n"
	"  - id: epfl\n"
	"    allocation: {credits: 100000000, period: month}\n"
	"    projects:\n"
	"      - id: climate\n"
	"        allocation: {credits: 100000000, period: month}\n"
	"        members: [alice@epfl.ch]\n";

/* The first three fields of /proc/loadavg, with a newline. */
const char *loadavg_text(void)
{
	static char text[64];
	snprintf(text, sizeof text, "?\n");
	FILE *f = fopen("/proc/loadavg", "r");
	double a, b, c;
	if (f && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
		snprintf(text, sizeof text, "%.2f %.2f %.2f\n", a, b, c);
	if (f)
		fclose(f);
	return text;
}

static double now_s(void) { return (double)time_mono_us() / 1e6; }

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static double pct(int64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0; /* ns -> µs */
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the raw server: the same engine, no gate ------------------------------ */

struct raw_conn {
	struct buf body;
};

static struct infer_engine *raw_engine;

/* The request body, collected across libmicrohttpd's calls into the
 * connection's raw_conn; true while the call is not yet the last one. */
static bool raw_collect(void **con_cls, const char *upload, size_t *upload_size)
{
	if (!*con_cls) {
		*con_cls = calloc(1, sizeof(struct raw_conn));
		return true;
	}
	if (*upload_size) {
		buf_append(&((struct raw_conn *)*con_cls)->body, upload, *upload_size);
		*upload_size = 0;
		return true;
	}
	return false;
}

static enum MHD_Result raw_answer(struct MHD_Connection *c, int status, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
								  MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result raw_handler(void *cls, struct MHD_Connection *c, const char *url,
				   const char *method, const char *version, const char *upload,
				   size_t *upload_size, void **con_cls)
{
	(void)cls, (void)url, (void)version;
	if (raw_collect(con_cls, upload, upload_size))
		return MHD_YES;
	struct raw_conn *rc = *con_cls;
	if (strcmp(method, "GET") == 0)
		return raw_answer(c, 200, "{\"object\":\"list\",\"data\":[{\"id\":\"stories\","
				  "\"object\":\"model\",\"created\":1767225600,\"owned_by\":\"local\"}]}");
	json_error_t je;
	json_t *b = json_loadb(rc->body.data ? rc->body.data : "", rc->body.len, 0, &je);
	const char *prompt = json_string_value(json_object_get(b, "prompt"));
	int max_tokens = (int)json_integer_value(json_object_get(b, "max_tokens"));
	if (!prompt || max_tokens <= 0) {
		json_decref(b);
		return raw_answer(c, 400, "{\"error\":{\"code\":\"invalid\",\"message\":\"bad body\"}}");
	}
	int32_t *ids = NULL;
	size_t n = 0;
	struct infer_result res;
	if (infer_tokenize(raw_engine, prompt, strlen(prompt), true, false, &ids, &n) ||
	    infer_generate(raw_engine, &(struct infer_request){.prompt = ids, .n_prompt = n,
							     .max_tokens = max_tokens, .seed = 1},
			   &res)) {
		free(ids);
		json_decref(b);
		return raw_answer(c, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"failed\"}}");
	}
	free(ids);
	json_t *out = json_pack("{s:s,s:s,s:[{s:i,s:s%,s:s}],s:{s:i,s:i,s:i}}", "object",
				"text_completion", "model", "stories", "choices", "index", 0, "text",
				res.text, res.text_len, "finish_reason", res.finish_reason, "usage",
				"prompt_tokens", res.prompt_tokens, "completion_tokens",
				res.completion_tokens, "total_tokens",
				res.prompt_tokens + res.completion_tokens);
	infer_result_release(&res);
	json_decref(b);
	char *s = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	enum MHD_Result ret = raw_answer(c, 200, s);
	free(s);
	return ret;
}

static void raw_done(void *cls, struct MHD_Connection *c, void **con_cls,
		     enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)c, (void)toe;
	struct raw_conn *rc = *con_cls;
	if (rc) {
		buf_release(&rc->body);
		free(rc);
	}
	*con_cls = NULL;
}

/* ---- the instant upstream: an OpenAI-compatible server that answers at once ---- */

static enum MHD_Result instant_handler(void *cls, struct MHD_Connection *c, const char *url,
				       const char *method, const char *version, const char *upload,
				       size_t *upload_size, void **con_cls)
{
	(void)cls, (void)url, (void)method, (void)version;
	if (raw_collect(con_cls, upload, upload_size))
		return MHD_YES;
	return raw_answer(c, 200, INSTANT_REPLY);
}

/* ---- HTTP clients ------------------------------------------------------------------ */

struct client {
	char url[128];
	bool get;            /* GET instead of POST body */
	const char *body;
	char auth[1024];
	/* paced mode: period and first send; closed loop: period 0 */
	int64_t period_ns, start_ns, end_ns;
	int64_t *lat;        /* ns, one per request */
	size_t nlat, cap;
	size_t errors;
	double cpu_us;       /* this client thread's own CPU (RUSAGE_THREAD) */
};

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
	(void)p, (void)ud;
	return sz * n;
}

/* A bench server on a free loopback port, in allotd's mode (a thread per
 * connection waiting in poll()); NULL after a message. */
static struct MHD_Daemon *bench_server(MHD_AccessHandlerCallback handler, const char *what,
				       unsigned *port)
{
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL,
		NULL, handler, NULL, MHD_OPTION_NOTIFY_COMPLETED, raw_done, NULL,
		MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "bench_gate: %s did not start\n", what);
		return NULL;
	}
	*port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
	return d;
}

/* ---- the load clients -----------------------------------------------------------
 * Two kinds, one request at a time per client on one kept-alive connection:
 *   socket (default): a minimal HTTP/1.1 client on a blocking socket, the
 *     way load generators such as wrk work: one send of a prepared request,
 *     recv until the answer is whole (Content-Length);
 *   curl (ALLOT_BENCH_CLIENT=curl): a libcurl easy handle per client.  Its
 *     own CPU (about 30 µs a request here) comes out of the same 2 CPUs as
 *     the servers', so it lowers every rate measured with it. */

static bool use_curl_clients(void)
{
	const char *c = getenv("ALLOT_BENCH_CLIENT");
	return c && strcmp(c, "curl") == 0;
}

struct sock_client {
	char host[64], path[128];
	unsigned port;
	int fd;
	char req[4096];
	size_t reqlen;
	char in[16384];
};

static int sock_open(const struct sock_client *sc)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sc->port)};
	int one = 1;
	if (inet_pton(AF_INET, sc->host, &a.sin_addr) != 1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One request on the kept-alive connection (opened on demand); returns the
 * HTTP status, or -1 on any transport or framing error (the connection is
 * then closed and reopened by the next call). */
static int sock_roundtrip(struct sock_client *sc)
{
	if (sc->fd < 0 && (sc->fd = sock_open(sc)) < 0)
		return -1;
	for (size_t off = 0; off < sc->reqlen;) {
		ssize_t n = send(sc->fd, sc->req + off, sc->reqlen - off, MSG_NOSIGNAL);
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	size_t have = 0, need = 0;
	const char *end = NULL;
	int status = -1;
	bool close_after = false;
	for (;;) {
		if (have == sizeof sc->in)
			goto fail;
		ssize_t n = recv(sc->fd, sc->in + have, sizeof sc->in - have, 0);
		if (n <= 0)
			goto fail;
		have += (size_t)n;
		if (!end) {
			end = memmem(sc->in, have, "\r\n\r\n", 4);
			if (!end)
				continue;
			size_t hlen = (size_t)(end - sc->in) + 4;
			char *cl = NULL;
			for (char *p = sc->in; p < end; p++)
				if (*p == '\n' && strncasecmp(p + 1, "content-length:", 15) == 0)
					cl = p + 16;
				else if (*p == '\n' && strncasecmp(p + 1, "connection: close", 17) == 0)
					close_after = true;
			if (sscanf(sc->in, "HTTP/1.%*d %d", &status) != 1 || !cl)
				goto fail;
			need = hlen + strtoul(cl, NULL, 10);
		}
		if (have >= need)
			break;
	}
	if (have != need || close_after) {
		close(sc->fd);
		sc->fd = -1;
	}
	return status;
fail:
	close(sc->fd);
	sc->fd = -1;
	return -1;
}

static bool sock_prepare(struct sock_client *sc, const struct client *cl)
{
	if (sscanf(cl->url, "http://%63[^:]:%u%127s", sc->host, &sc->port, sc->path) != 3)
		return false;
	size_t blen = cl->get ? 0 : strlen(cl->body);
	int n = snprintf(sc->req, sizeof sc->req,
			 "%s %s HTTP/1.1\r\nHost: %s:%u\r\n%s%s"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			 cl->get ? "GET" : "POST", sc->path, sc->host, sc->port, cl->auth,
			 cl->auth[0] ? "\r\n" : "", blen, cl->get ? "" : cl->body);
	if (n < 0 || (size_t)n >= sizeof sc->req)
		return false;
	sc->reqlen = (size_t)n;
	sc->fd = -1;
	return true;
}

/* Waits for the client's next send time; returns its start (ns), or -1
 * when the run is over. */
static int64_t client_next(struct client *cl, int64_t *next)
{
	if (cl->period_ns) {
		if (*next >= cl->end_ns)
			return -1;
		struct timespec ts = {*next / 1000000000, *next % 1000000000};
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		int64_t t0 = *next; /* from the scheduled time: queueing counts */
		*next += cl->period_ns;
		return t0;
	}
	int64_t t0 = mono_ns();
	return t0 >= cl->end_ns ? -1 : t0;
}

static void client_record(struct client *cl, int64_t t0, bool ok)
{
	if (!ok)
		cl->errors++;
	if (cl->nlat < cl->cap)
		cl->lat[cl->nlat++] = mono_ns() - t0;
}

static void *client_run_socket(struct client *cl)
{
	struct sock_client *sc = malloc(sizeof *sc);
	if (!sc || !sock_prepare(sc, cl)) {
		fprintf(stderr, "bench_gate: cannot prepare a request for %s\n", cl->url);
		cl->errors++;
		free(sc);
		return NULL;
	}
	int64_t next = cl->start_ns, t0;
	while ((t0 = client_next(cl, &next)) >= 0)
		client_record(cl, t0, sock_roundtrip(sc) == 200);
	if (sc->fd >= 0)
		close(sc->fd);
	free(sc);
	return NULL;
}

static void *client_run(void *arg)
{
	struct client *cl = arg;
	if (!use_curl_clients())
		return client_run_socket(cl);
	CURL *h = curl_easy_init();
	struct curl_slist *hd = NULL;
	hd = curl_slist_append(hd, "Content-Type: application/json");
	if (cl->auth[0])
		hd = curl_slist_append(hd, cl->auth);
	curl_easy_setopt(h, CURLOPT_URL, cl->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	if (cl->get)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	else
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, cl->body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* SIGPIPE is ignored (main) */
	int64_t next = cl->start_ns, t0;
	while ((t0 = client_next(cl, &next)) >= 0) {
		long code = 0;
		client_record(cl, t0, curl_easy_perform(h) == CURLE_OK &&
					      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) ==
						      CURLE_OK && code == 200);
	}
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	return NULL;
}

static double ru_us(const struct rusage *ru)
{
	return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1e6 +
	       (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec);
}

/* A client thread: its requests, then its own CPU (the clients' share of
 * the process's CPU, bench/gate/nodes.c). */
static void *client_thread(void *arg)
{
	struct client *cl = arg;
	client_run(cl);
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	cl->cpu_us = ru_us(&ru);
	return NULL;
}

static double cpu_now_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* paced: total rate split over nthreads schedules; else closed loop.
 * Client i calls urls[i % nurls] (several nodes: bench/gate/nodes.c). */
struct run_result run_clients_multi(const char *const *urls, int nurls, const char *auth,
				    const char *body, int nthreads, double rate, double seconds)
{
	const char *url = urls[0];
	bool get = strstr(url, "/v1/models") != NULL;
	double cpu0 = cpu_now_us();
	struct client *cl = calloc((size_t)nthreads, sizeof *cl);
	pthread_t *th = calloc((size_t)nthreads, sizeof *th);
	int64_t start = mono_ns() + 20000000, end = start + (int64_t)(seconds * 1e9);
	for (int i = 0; i < nthreads; i++) {
		snprintf(cl[i].url, sizeof cl[i].url, "%s", urls[i % nurls]);
		cl[i].get = get;
		cl[i].body = body;
		if (auth)
			snprintf(cl[i].auth, sizeof cl[i].auth, "Authorization: Bearer %s", auth);
		cl[i].cap = MAX_SAMPLES / (size_t)nthreads;
		cl[i].lat = malloc(cl[i].cap * sizeof(int64_t));
		cl[i].end_ns = end;
		if (rate > 0) {
			cl[i].period_ns = (int64_t)(1e9 * nthreads / rate);
			cl[i].start_ns = start + cl[i].period_ns * i / nthreads;
		}
		pthread_create(&th[i], NULL, client_thread, &cl[i]);
	}
	size_t total = 0, errors = 0;
	double ccpu = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		total += cl[i].nlat;
		errors += cl[i].errors;
		ccpu += cl[i].cpu_us;
	}
	int64_t *all = malloc((total ? total : 1) * sizeof *all);
	size_t k = 0;
	for (int i = 0; i < nthreads; i++) {
		memcpy(all + k, cl[i].lat, cl[i].nlat * sizeof *all);
		k += cl[i].nlat;
		free(cl[i].lat);
	}
	qsort(all, total, sizeof *all, cmp_i64);
	struct run_result r = {.cpu_us = (cpu_now_us() - cpu0) / (double)(total ? total : 1),
			       .rps = (double)total / seconds, .p50 = pct(all, total, 50),
			       .p90 = pct(all, total, 90), .p99 = pct(all, total, 99),
			       .max = total ? (double)all[total - 1] / 1000.0 : 0, .n = total,
			       .errors = errors, .cpu_clients_us = ccpu / (double)(total ? total : 1)};
	free(all);
	free(cl);
	free(th);
	return r;
}

static struct run_result run_clients(const char *url, const char *auth, const char *body,
				     int nthreads, double rate, double seconds)
{
	return run_clients_multi(&url, 1, auth, body, nthreads, rate, seconds);
}

/* ---- main ------------------------------------------------------------------------------ */

static double per_call_us(double t0, size_t n) { return (now_s() - t0) * 1e6 / (double)n; }

/* CPU of the calling thread, µs (wall time is at the mercy of a shared
 * machine; this much less). */
static double thread_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}
static double cpu_per_call(double c0, size_t n) { return (thread_cpu_us() - c0) / (double)n; }

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as allotd does; the clients set CURLOPT_NOSIGNAL */
	const char *models = getenv("ALLOT_MODELS") ? getenv("ALLOT_MODELS") : "models";
	char path[512];
	snprintf(path, sizeof path, "%s/%s", models, MODEL_FILE);
	struct stat sb;
	if (stat(path, &sb) != 0) {
		printf("bench_gate: SKIPPED: %s is absent (make setup copies it)\n", path);
		return 0;
	}
	double seconds = getenv("ALLOT_BENCH_SECONDS") ? atof(getenv("ALLOT_BENCH_SECONDS")) : 3;
	if (seconds <= 0)
		seconds = 3;
	/* ALLOT_BENCH_DIR: where the database lives (default /tmp); try /dev/shm
	 * to see what the settlement's fsync costs. */
	char dir[256];
	snprintf(dir, sizeof dir, "%s/allot-bench-gate.XXXXXX",
		 getenv("ALLOT_BENCH_DIR") ? getenv("ALLOT_BENCH_DIR") : "/tmp");
	if (!mkdtemp(dir)) {
		perror("bench_gate: mkdtemp");
		return 1;
	}
	char db[320], keys[320], charter[320];
	snprintf(db, sizeof db, "%s/allot.db", dir);
	snprintf(keys, sizeof keys, "%s/keys", dir);
	snprintf(charter, sizeof charter, "%s/charter.yaml", dir);
	/* The instant upstream first: the charter names its port. */
	unsigned up_port;
	struct MHD_Daemon *up = bench_server(instant_handler, "the instant upstream", &up_port);
	if (!up)
		return 1;
	FILE *f = fopen(charter, "w");
	fprintf(f, charter_fmt, up_port);
	fclose(f);
	setenv("ALLOT_ADMIN_KEY", "bench-admin-key-0123456789abcdef", 1);
	log_set_verbose(false);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	struct app app = {0};
	app.cfg = (struct app_config){.listen = "127.0.0.1:0", .db = db, .charter = charter,
				      .keys = keys, .models = models, .deployment = "bench",
				      .threads = 1};
	if (getenv("ALLOT_FLUSH_MS")) { /* 0: settlements fsync too (the old behaviour) */
		app.cfg.flush_ms = atoi(getenv("ALLOT_FLUSH_MS"));
		app.cfg.flush_ms_set = true;
	}
	char msg[512] = "";
	if (app_open(&app, msg, sizeof msg) || app_gate_open(&app, &app.gate, msg, sizeof msg)) {
		fprintf(stderr, "bench_gate: %s\n", msg);
		return 1;
	}
	raw_engine = gate_engine(app.gate, "stories");
	if (!raw_engine) {
		fprintf(stderr, "bench_gate: the engine did not load\n");
		return 1;
	}
	struct token_claims cl = {0};
	snprintf(cl.inst, sizeof cl.inst, "epfl");
	snprintf(cl.proj, sizeof cl.proj, "climate");
	snprintf(cl.sub, sizeof cl.sub, "alice@epfl.ch");
	cl.iat = cl.nbf = time_now_us();
	cl.exp = cl.iat + 3600 * US_PER_SEC;
	char *token = NULL;
	if (tokens_mint(gate_tokens(app.gate), app.store, &cl, "bench", &token, msg, sizeof msg)) {
		fprintf(stderr, "bench_gate: mint: %s\n", msg);
		return 1;
	}

	struct store_sync_stats ss0;
	store_sync_stats(app.store, &ss0);
	printf("bench_gate: stories260K (1 compute thread), SQLite on %s (settlements: flush "
	       "interval %d ms), %ld CPUs, %.0f s per HTTP phase, load average %s",
	       dir, ss0.flush_ms, sysconf(_SC_NPROCESSORS_ONLN), seconds, loadavg_text());

	/* ---- 1. in-process costs ---- */
	struct token_claims c;
	size_t n = 200000;
	double t0 = now_s(), c0 = thread_cpu_us();
	for (size_t i = 0; i < n; i++)
		tokens_verify(gate_tokens(app.gate), token, strlen(token), &c, msg, sizeof msg);
	double us_verify_hit = per_call_us(t0, n), cpu_verify_hit = cpu_per_call(c0, n);
	enum { NFRESH = 2000 };
	char **fresh = calloc(NFRESH, sizeof *fresh);
	for (size_t i = 0; i < NFRESH; i++) {
		struct token_claims x = cl;
		tokens_mint(gate_tokens(app.gate), app.store, &x, "bench", &fresh[i], msg, sizeof msg);
	}
	t0 = now_s();
	c0 = thread_cpu_us();
	for (size_t i = 0; i < NFRESH; i++)
		tokens_verify(gate_tokens(app.gate), fresh[i], strlen(fresh[i]), &c, msg, sizeof msg);
	double us_verify_miss = per_call_us(t0, NFRESH), cpu_verify_miss = cpu_per_call(c0, NFRESH);
	for (size_t i = 0; i < NFRESH; i++)
		free(fresh[i]);
	free(fresh);
	tokens_verify(gate_tokens(app.gate), token, strlen(token), &c, msg, sizeof msg);
	struct gate_ticket t;
	int retry;
	n = 20000;
	t0 = now_s();
	c0 = thread_cpu_us();
	for (size_t i = 0; i < n; i++) {
		if (gate_admit(app.gate, &c, "stories", 5, 1, &t, &retry, msg, sizeof msg) == ALLOT_OK)
			gate_cancel(app.gate, &t);
	}
	double us_admit = per_call_us(t0, n), cpu_admit = cpu_per_call(c0, n);
	n = 2000;
	t0 = now_s();
	c0 = thread_cpu_us();
	for (size_t i = 0; i < n; i++) {
		int64_t charge;
		if (gate_admit(app.gate, &c, "stories", 5, 1, &t, &retry, msg, sizeof msg) == ALLOT_OK)
			gate_settle(app.gate, &t, 5, 1, &charge);
	}
	double us_admit_settle = per_call_us(t0, n), cpu_admit_settle = cpu_per_call(c0, n);
	int32_t *ids = NULL;
	size_t nids = 0;
	infer_tokenize(raw_engine, PROMPT, strlen(PROMPT), true, false, &ids, &nids);
	t0 = now_s();
	c0 = thread_cpu_us();
	for (size_t i = 0; i < n; i++) {
		struct infer_result res;
		infer_generate(raw_engine, &(struct infer_request){.prompt = ids, .n_prompt = nids,
								  .max_tokens = 1, .seed = 1},
			       &res);
		infer_result_release(&res);
	}
	double us_engine = per_call_us(t0, n), cpu_engine = cpu_per_call(c0, n);
	free(ids);
	printf("\nin-process, per call (µs):\n");
	printf("  %-44s %9s %9s\n", "", "wall", "CPU");
	printf("  %-44s %9.2f %9.2f\n", "tokens_verify, repeated token (cache hit)", us_verify_hit,
	       cpu_verify_hit);
	printf("  %-44s %9.2f %9.2f\n", "tokens_verify, fresh token (signature)", us_verify_miss,
	       cpu_verify_miss);
	printf("  %-44s %9.2f %9.2f\n", "gate_admit + gate_cancel", us_admit, cpu_admit);
	printf("  %-44s %9.2f %9.2f\n", "gate_admit + gate_settle (ledger commit)", us_admit_settle,
	       cpu_admit_settle);
	printf("  %-44s %9.2f %9.2f\n", "engine: 5-token prompt, max_tokens 1 (engine thread)",
	       us_engine, cpu_engine);

	/* ---- servers ---- */
	unsigned raw_port;
	struct MHD_Daemon *raw = bench_server(raw_handler, "the raw server", &raw_port);
	if (!raw)
		return 1;
	struct http_server *srv = NULL;
	struct http_server_config hc = {.listen = "127.0.0.1:0", .routes = api_routes,
					.nroutes = api_nroutes, .app = &app,
					.authenticate = api_authenticate, .role_of = principal_role_of,
					.principal_free = api_principal_free};
	if (http_server_start(&hc, &srv, msg, sizeof msg)) {
		fprintf(stderr, "bench_gate: %s\n", msg);
		return 1;
	}
	unsigned gate_port = http_server_port(srv);
	char raw_url[128], gate_url[128], up_url[128], raw_models[160], gate_models[160];
	snprintf(raw_url, sizeof raw_url, "http://127.0.0.1:%u/v1/completions", raw_port);
	snprintf(gate_url, sizeof gate_url, "http://127.0.0.1:%u/v1/completions", gate_port);
	snprintf(up_url, sizeof up_url, "http://127.0.0.1:%u/v1/completions", up_port);
	snprintf(raw_models, sizeof raw_models, "http://127.0.0.1:%u/v1/models", raw_port);
	snprintf(gate_models, sizeof gate_models, "http://127.0.0.1:%u/v1/models", gate_port);

	const struct backend {
		const char *title, *raw_url, *raw_body, *gate_body;
	} backends[] = {
		{"engine: stories260K in-process, max_tokens 1 (raw: the same engine behind a "
		 "minimal server)", raw_url, BODY, BODY},
		{"instant: an OpenAI-compatible upstream that answers at once (raw: clients call "
		 "it directly; gated: allotd forwards with libcurl, model served by url:)",
		 up_url, BODY_UP, BODY_INSTANT},
	};
	struct summary {
		double add50, add99, gated_rps, raw_rps, gate_cpu, gated_cpu, gated_cpu_clients;
		double gated_rps24; /* 24 clients (ALLOT_BENCH_PG: the nodes' ratio) */
		double sweep_rps[SWEEP_MAX];
		int sweep_clients[SWEEP_MAX], nsweep;
	} sum[2];
	/* ALLOT_BENCH_SWEEP: client counts for the gated sweep ("" for none). */
	const char *sweep_env = getenv("ALLOT_BENCH_SWEEP") ? getenv("ALLOT_BENCH_SWEEP") : SWEEP_DEFAULT;
	int sweep[SWEEP_MAX], nsweep = 0;
	for (const char *p = sweep_env; *p && nsweep < SWEEP_MAX;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v < 1 || v > 1024) {
			fprintf(stderr, "bench_gate: ALLOT_BENCH_SWEEP: client counts 1-1024, comma-separated\n");
			return 2;
		}
		sweep[nsweep++] = (int)v;
		p = *end == ',' ? end + 1 : end;
	}
	const char *only = getenv("ALLOT_BENCH_BACKEND"); /* "engine" or "instant": one only */
	memset(sum, 0, sizeof sum);
	for (size_t b = 0; b < 2; b++) {
		const struct backend *be = &backends[b];
		if (only && strcmp(only, b ? "instant" : "engine") != 0)
			continue;
		printf("\n== backend %s\n", be->title);
		/* warm-up */
		run_clients(be->raw_url, NULL, be->raw_body, 2, 0, 0.3);
		run_clients(gate_url, token, be->gate_body, 2, 0, 0.3);

		/* paced latency */
		struct run_result pr = run_clients(be->raw_url, NULL, be->raw_body, PACED_THREADS,
						   PACED_RATE, seconds);
		struct run_result pg = run_clients(gate_url, token, be->gate_body, PACED_THREADS,
						   PACED_RATE, seconds);
		printf("latency at a paced %d requests/s (%d client threads), µs:\n", PACED_RATE,
		       PACED_THREADS);
		printf("  %-8s %8s %8s %8s %8s %9s %7s %9s\n", "", "p50", "p90", "p99", "max",
		       "req/s", "errors", "CPU µs/req");
		printf("  %-8s %8.0f %8.0f %8.0f %8.0f %9.0f %7zu %9.1f\n", "raw", pr.p50, pr.p90,
		       pr.p99, pr.max, pr.rps, pr.errors, pr.cpu_us);
		printf("  %-8s %8.0f %8.0f %8.0f %8.0f %9.0f %7zu %9.1f\n", "gated", pg.p50, pg.p90,
		       pg.p99, pg.max, pg.rps, pg.errors, pg.cpu_us);
		sum[b].add50 = pg.p50 - pr.p50;
		sum[b].add99 = pg.p99 - pr.p99;
		printf("  added by the gate: p50 %.0f µs (target <= 300: %.2fx the target), "
		       "p99 %.0f µs (target <= 1000: %.2fx)\n",
		       sum[b].add50, sum[b].add50 / 300.0, sum[b].add99, sum[b].add99 / 1000.0);

		/* closed-loop throughput */
		struct run_result tr = run_clients(be->raw_url, NULL, be->raw_body, LOOP_CLIENTS, 0,
						   seconds);
		struct run_result tg = run_clients(gate_url, token, be->gate_body, LOOP_CLIENTS, 0,
						   seconds);
		printf("throughput, %d closed-loop keep-alive clients, one repeated token:\n",
		       LOOP_CLIENTS);
		printf("  %-8s %9s %8s %8s %7s %9s\n", "", "req/s", "p50 µs", "p99 µs", "errors",
		       "CPU µs/req");
		printf("  %-8s %9.0f %8.0f %8.0f %7zu %9.1f\n", "raw", tr.rps, tr.p50, tr.p99,
		       tr.errors, tr.cpu_us);
		printf("  %-8s %9.0f %8.0f %8.0f %7zu %9.1f\n", "gated", tg.rps, tg.p50, tg.p99,
		       tg.errors, tg.cpu_us);
		sum[b].gated_rps = tg.rps;
		sum[b].raw_rps = tr.rps;
		sum[b].gate_cpu = tg.cpu_us - tr.cpu_us;
		sum[b].gated_cpu = tg.cpu_us;
		sum[b].gated_cpu_clients = tg.cpu_clients_us;
		printf("  gated/raw %.2f; gated vs the target of 10,000 req/s: %.2fx; "
		       "the gate's CPU per request: %.1f µs\n",
		       tg.rps / tr.rps, tg.rps / 10000.0, sum[b].gate_cpu);
		/* The PostgreSQL nodes are measured with 24 clients too: the
		 * SQLite node as well, so that ratio compares like with like. */
		if (b == 1 && getenv("ALLOT_BENCH_PG")) {
			struct run_result t24 = run_clients(gate_url, token, be->gate_body,
							    NODES_LOOP_MAX, 0, seconds);
			printf("  %-8s %9.0f %8.0f %8.0f %7zu %9.1f   (%d clients)\n", "gated",
			       t24.rps, t24.p50, t24.p99, t24.errors, t24.cpu_us, NODES_LOOP_MAX);
			sum[b].gated_rps24 = t24.rps;
		}
		/* More clients: settlements queue more often, so group commits
		 * hold more of them (docs/BENCH_GATE.md). */
		for (int k = 0; k < nsweep; k++) {
			struct run_result sg = run_clients(gate_url, token, be->gate_body, sweep[k], 0,
							   seconds);
			printf("  %-8s %9.0f %8.0f %8.0f %7zu %9.1f   (%d clients)\n", "gated", sg.rps,
			       sg.p50, sg.p99, sg.errors, sg.cpu_us, sweep[k]);
			sum[b].sweep_rps[k] = sg.rps;
			sum[b].sweep_clients[k] = sweep[k];
		}
		sum[b].nsweep = nsweep;
	}

	/* the HTTP path alone: GET /v1/models (token check, no backend, no ledger) */
	struct run_result mr = run_clients(raw_models, NULL, NULL, LOOP_CLIENTS, 0, seconds);
	struct run_result mg = run_clients(gate_models, token, NULL, LOOP_CLIENTS, 0, seconds);
	printf("\n== no backend: GET /v1/models, %d closed-loop clients (HTTP + token check only):\n",
	       LOOP_CLIENTS);
	printf("  %-8s %9.0f req/s  p50 %5.0f µs  p99 %6.0f µs  errors %zu\n", "raw", mr.rps, mr.p50,
	       mr.p99, mr.errors);
	printf("  %-8s %9.0f req/s  p50 %5.0f µs  p99 %6.0f µs  errors %zu\n", "gated", mg.rps, mg.p50,
	       mg.p99, mg.errors);

	struct store_sync_stats ss;
	store_sync_stats(app.store, &ss);
	printf("\nstore: %llu deferred commits, %llu fsynced commits, %llu flushes (longest %.1f ms), "
	       "%llu background checkpoints, %llu of them under the store's lock (longest %.1f ms); "
	       "flush interval %d ms\n",
	       (unsigned long long)ss.deferred_commits, (unsigned long long)ss.full_commits,
	       (unsigned long long)ss.flushes, (double)ss.max_flush_us / 1000.0,
	       (unsigned long long)ss.checkpoints, (unsigned long long)ss.locked_checkpoints,
	       (double)ss.max_locked_us / 1000.0, ss.flush_ms);
	printf("\nsummary (targets: added p50 <= 300 µs, p99 <= 1000 µs at 1,000 req/s; "
	       ">= 10,000 gated req/s):\n");
	for (size_t b = 0; b < 2; b++) {
		printf("  %-8s added p50 %5.0f µs  p99 %5.0f µs   gated %6.0f req/s (raw %6.0f), "
		       "%d clients",
		       b ? "instant" : "engine", sum[b].add50, sum[b].add99, sum[b].gated_rps,
		       sum[b].raw_rps, LOOP_CLIENTS);
		for (int k = 0; k < sum[b].nsweep; k++)
			printf("; %.0f with %d", sum[b].sweep_rps[k], sum[b].sweep_clients[k]);
		printf("\n");
	}
	printf("  load average at the end: %s", loadavg_text());

	/* ALLOT_BENCH_PG: the instant backend again, on 1, 2 and 3 nodes on
	 * one PostgreSQL database (bench/gate/nodes.c). */
	struct nodes_base base = {.sqlite_rps = sum[1].gated_rps,
				  .sqlite_rps24 = sum[1].gated_rps24, .sqlite_add50 = sum[1].add50,
				  .sqlite_add99 = sum[1].add99, .sqlite_cpu = sum[1].gated_cpu,
				  .sqlite_cpu_clients = sum[1].gated_cpu_clients, .up_url = up_url,
				  .raw_body = BODY_UP, .gate_body = BODY_INSTANT,
				  .charter = charter, .models = models, .dir = dir,
				  .seconds = seconds};
	if (getenv("ALLOT_BENCH_PG") && (!only || strcmp(only, "instant") == 0))
		bench_nodes(getenv("ALLOT_BENCH_PG"), &base);
	/* ALLOT_BENCH_ROWS: the same on a ledger of that many records
	 * (bench/gate/growth.c). */
	if (getenv("ALLOT_BENCH_ROWS") && atoll(getenv("ALLOT_BENCH_ROWS")) > 0 &&
	    (!only || strcmp(only, "instant") == 0))
		bench_growth(atoll(getenv("ALLOT_BENCH_ROWS")), &base);

	http_server_stop(srv);
	MHD_stop_daemon(raw);
	MHD_stop_daemon(up);
	free(token);
	gate_free(app.gate);
	app.gate = NULL;
	app_close(&app);
	curl_global_cleanup();
	char cmd[320];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_gate: could not remove %s\n", dir);
	return 0;
}
