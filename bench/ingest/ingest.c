/* ingest.c — usage ingestion and report benchmark (docs/BENCH_INGEST.md).
 *
 * One run measures, on the same records:
 *   (a) records/s through HTTP: POST /v1/usage, signed batches of 1,000,
 *       durable acknowledgements, CLIENTS client threads (libcurl, keep-alive)
 *       against the HTTP server started in this process with allotd's own
 *       route table, app and SQLite store (WAL, synchronous=FULL);
 *   (b) baseline: raw SQLite inserts of the same rows (same table, same
 *       durability, one transaction per 1,000);
 *   (c) baseline: Ed25519 verification alone of the same records on CLIENTS
 *       threads (ed25519_verifier_check over the canonical bytes, the key
 *       parsed once, as ingestion does);
 *   (d) GET /v1/reports/usage?group_by=institution,project,resource over
 *       1,000,000 records (loaded with one SQL statement straight into
 *       usage_records, not through ingestion);
 *   (e) ingestion cost against ledger size: batches whose records are spread
 *       over the month, through ledger_ingest directly (records parsed
 *       from JSON objects and answered: api/usage_wire.h).
 *   (v) (c)'s first figure alone (for comparing CPU time with (a) under
 *       perf stat or getrusage).
 * (a) and (c) also print CPU time per record and the CPUs kept busy.
 * Figures are printed; nothing is asserted about time.
 *
 *   build/bench/ingest [--quick] [--records N] [--report-rows N] [--spread N]
 *                      [--clients N] [--phases abcdev] [--pg URI]
 * --pg URI: a PostgreSQL server (scripts/with-pg.sh's ALLOT_TEST_PG_URI);
 * (a) and (d) run again with the store on a new database there (made and
 * dropped by the benchmark), the same records and rows.  (a) prints the
 * bytes on disk per record on each store (docs/BENCH_PG.md);
 * ALLOT_BENCH_EXPLAIN=1 prints the plan of (d)'s report on PostgreSQL.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "api/api.h"
#include "api/usage_wire.h"
#include "auth/apikey.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/b64.h"
#include "crypto/ed25519.h"
#include "daemon/app.h"
#include "http/server.h"
#include "ledger/ledger.h"
#include "ledger/record.h"
#include "store/ledger_sql.h"

#include "../common/relsize.h"

#define BATCH 1000
#define ADMIN_KEY "bench-ingest-admin-key-0123456789"

static struct {
	size_t records;      /* for (a), (b), (c) */
	size_t report_rows;  /* for (d) */
	size_t spread;       /* for (e) */
	int clients;
	const char *phases;  /* which of a..e to run */
	const char *pg;      /* a PostgreSQL server: (a) and (d) again on it */
} opt = {40000, 1000000, 10000, 2, "abcde", NULL};

static char g_dir[64];
static struct ed25519_keypair g_kp;

static double now_s(void) { return (double)time_mono_us() / 1e6; }

/* CPU time (user + system) of the process or of the calling thread, s. */
static double cpu_s(int who)
{
	struct rusage ru;
	getrusage(who, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* CPU seconds of the last timed phase (process) and of (a)'s clients. */
static double g_cpu, g_cpu_clients;

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench ingest: %s: %s\n", what, msg);
	exit(1);
}

/* ---- the charter and the app ----------------------------------------------- */

static const char charter_fmt[] =
	"charter: bench-ingest\n"
	"version: 1\n"
	"effective: 2026-01-01T00:00:00Z\n"
	"timezone: Europe/Zurich\n"
	"pool: 100000000\n"
	"late_grace: {days: 90}\n"
	"rates:\n"
	"  - {resource: gpu_seconds, class: h100, credits: 0.031415}\n"
	"  - {resource: gpu_seconds, class: a100, credits: 0.017}\n"
	"  - {resource: cpu_seconds, credits: 0.000125}\n"
	"  - {resource: storage_gb_hours, credits: 1.234567}\n"
	"providers:\n"
	"  - {id: cscs, keys: [\"%s\"], resources: [gpu_seconds, cpu_seconds, storage_gb_hours]}\n"
	"institutions:\n"
	"  - id: epfl\n"
	"    allocation: {credits: 10000000, period: month, rollover: 0.25}\n"
	"    projects:\n"
	"      - id: climate\n"
	"        allocation: {credits: 4000000, period: month, rollover: 0.5}\n"
	"        member_allocation: {credits: 100000, period: month}\n"
	"        members: [alice@epfl.ch, bob@epfl.ch, carol@epfl.ch]\n"
	"      - id: vision\n"
	"        allocation: {credits: 3000000, period: month}\n"
	"        members: [dan@epfl.ch, erin@epfl.ch]\n"
	"  - id: ethz\n"
	"    allocation: {credits: 5000000, period: month}\n"
	"    projects:\n"
	"      - id: robotics\n"
	"        allocation: {credits: 3000000, period: month}\n"
	"        members: [frank@ethz.ch, gina@ethz.ch]\n"
	"      - id: nlp\n"
	"        allocation: {credits: 2000000, period: month}\n"
	"        members: [hana@ethz.ch]\n";

struct inst {
	char name[32];
	char db[512], charter[128], keys[128];
	char pgdb[64];       /* on PostgreSQL: the database made for it */
	struct app app;
	struct http_server *srv;
	unsigned port;
	char provider_key[APIKEY_SECRET_MAX];
};

/* One statement on the PostgreSQL server (opt.pg's own database). */
static void pg_admin(const char *sql)
{
	PGconn *c = PQconnectdb(opt.pg);
	if (PQstatus(c) != CONNECTION_OK)
		die("PostgreSQL", PQerrorMessage(c));
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die(sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

/* pg: the instance's store is a new PostgreSQL database on opt.pg. */
static void inst_open(struct inst *in, const char *name, bool serve, bool pg)
{
	memset(in, 0, sizeof *in);
	snprintf(in->name, sizeof in->name, "%s", name);
	snprintf(in->db, sizeof in->db, "%s/%s.db", g_dir, name);
	if (pg) {
		char sql[128];
		snprintf(in->pgdb, sizeof in->pgdb, "allot_bench_%s_%d", name, (int)getpid());
		snprintf(sql, sizeof sql, "CREATE DATABASE %s", in->pgdb);
		pg_admin(sql);
		snprintf(in->db, sizeof in->db, "%s%sdbname=%s", opt.pg,
			 strchr(opt.pg, '?') ? "&" : "?", in->pgdb);
	}
	snprintf(in->charter, sizeof in->charter, "%s/charter.yaml", g_dir);
	snprintf(in->keys, sizeof in->keys, "%s/keys-%s%s", g_dir, name, pg ? "-pg" : "");
	in->app.cfg.db = in->db;
	in->app.cfg.charter = in->charter;
	in->app.cfg.keys = in->keys;
	in->app.cfg.deployment = "bench";
	char msg[512] = "";
	if (app_open(&in->app, msg, sizeof msg))
		die("app_open", msg);
	/* a provider key for cscs */
	struct api_key k = {0};
	if (apikey_generate(in->provider_key, k.secret_sha256, k.id))
		die("apikey", "generate");
	snprintf(k.role, sizeof k.role, "provider");
	snprintf(k.provider, sizeof k.provider, "cscs");
	snprintf(k.created_by, sizeof k.created_by, "bench");
	k.created_at = time_now_us();
	if (store_key_insert(in->app.store, &k, NULL))
		die("key insert", in->app.store->errmsg);
	if (!serve)
		return;
	struct http_server_config hc = {
		.listen = "127.0.0.1:0",
		.routes = api_routes,
		.nroutes = api_nroutes,
		.app = &in->app,
		.authenticate = api_authenticate,
		.role_of = principal_role_of,
		.principal_free = api_principal_free,
	};
	if (http_server_start(&hc, &in->srv, msg, sizeof msg))
		die("http_server_start", msg);
	in->port = http_server_port(in->srv);
}

static void inst_close(struct inst *in)
{
	if (in->srv)
		http_server_stop(in->srv);
	app_close(&in->app);
	if (in->pgdb[0]) {
		char sql[128];
		snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", in->pgdb);
		pg_admin(sql);
	}
}

/* Bytes the instance's store takes on disk now: on PostgreSQL the sum of
 * pg_total_relation_size over its tables (rows, indexes, TOAST; not the
 * server's shared WAL); on SQLite the file and its WAL after a checkpoint
 * that moves the WAL into the file. */
static double store_bytes(const struct inst *in)
{
	if (in->pgdb[0]) {
		PGconn *c = PQconnectdb(in->db);
		if (PQstatus(c) != CONNECTION_OK)
			die("PostgreSQL", PQerrorMessage(c));
		PGresult *r = PQexec(c, "SELECT coalesce(sum(pg_total_relation_size(oid)), 0) "
					"FROM pg_class WHERE relkind IN ('r', 'm') "
					"AND relnamespace = 'public'::regnamespace");
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			die("size", PQresultErrorMessage(r));
		double b = strtod(PQgetvalue(r, 0, 0), NULL);
		PQclear(r);
		PQfinish(c);
		return b;
	}
	sqlite3 *db;
	if (sqlite3_open(in->db, &db) != SQLITE_OK)
		die("sqlite3_open", in->db);
	sqlite3_busy_timeout(db, 10000);
	/* The store's own checkpointer may hold the WAL at that moment: the
	 * pragma then answers busy = 1 and leaves the file as it is (once
	 * 1,693 bytes per record were printed for 336).  Tried again. */
	int busy = 1;
	for (int k = 0; k < 50 && busy; k++) {
		sqlite3_stmt *s = NULL;
		busy = 1;
		if (k)
			usleep(100000);
		if (sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &s, NULL) ==
			    SQLITE_OK &&
		    sqlite3_step(s) == SQLITE_ROW)
			busy = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	if (busy)
		printf("    (the WAL could not be checkpointed: its size is counted)\n");
	sqlite3_close(db);
	double b = 0;
	char wal[sizeof in->db + 8];
	struct stat st;
	if (stat(in->db, &st) == 0)
		b += (double)st.st_size;
	snprintf(wal, sizeof wal, "%s-wal", in->db);
	if (stat(wal, &st) == 0)
		b += (double)st.st_size;
	return b;
}

/* Where the bytes are (ALLOT_BENCH_SIZES=1): the largest tables and
 * indexes, each in bytes per record of the run (their whole size: the
 * store starts nearly empty). */
static void store_sizes(const struct inst *in, double n)
{
	if (!getenv("ALLOT_BENCH_SIZES") || n <= 0)
		return;
	struct relsizes *rs = calloc(1, sizeof *rs);
	char why[256];
	if (rs && relsize_read(in->db, in->pgdb[0] != 0, rs, why, sizeof why))
		relsize_print(rs, 12, n, "bytes/record");
	else if (rs)
		printf("      (%s)\n", why);
	free(rs);
}

/* ---- records ------------------------------------------------------------------ */

static const struct {
	const char *inst, *proj, *member;
} whos[] = {
	{"epfl", "climate", "alice@epfl.ch"}, {"epfl", "climate", "bob@epfl.ch"},
	{"epfl", "climate", "carol@epfl.ch"}, {"epfl", "climate", NULL},
	{"epfl", "vision", "dan@epfl.ch"},    {"epfl", "vision", "erin@epfl.ch"},
	{"ethz", "robotics", "frank@ethz.ch"}, {"ethz", "robotics", "gina@ethz.ch"},
	{"ethz", "nlp", "hana@ethz.ch"},       {"ethz", "nlp", NULL},
};
static const struct {
	const char *resource, *cls;
} what[] = {
	{"gpu_seconds", "h100"}, {"gpu_seconds", "a100"}, {"cpu_seconds", NULL},
	{"storage_gb_hours", NULL},
};

/* A signed record: its JSON text, and its canonical bytes and signature
 * (for the baselines). */
struct srec {
	char *json;
	char *canon;
	size_t canon_len;
	uint8_t sig[64];
	uint8_t sha[32];
	int who, what;
	int64_t qty, start, end;
};

struct gen_arg {
	struct srec *r;
	size_t from, to;
	const char *prefix;
	int64_t end_lo, end_hi; /* ends spread uniformly over [lo, hi) */
	EVP_PKEY *pk;
};

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void *gen_main(void *p)
{
	struct gen_arg *g = p;
	char ts[TIME_FMT_MAX], te[TIME_FMT_MAX], id[64];
	for (size_t i = g->from; i < g->to; i++) {
		struct srec *r = &g->r[i];
		uint64_t h = mix(i * 7 + (uint64_t)g->end_lo);
		r->who = (int)(h % (sizeof whos / sizeof whos[0]));
		r->what = (int)((h >> 8) % (sizeof what / sizeof what[0]));
		r->qty = 1 + (int64_t)((h >> 16) % 100000);
		r->end = g->end_lo + (int64_t)((h >> 24) % (uint64_t)(g->end_hi - g->end_lo));
		r->start = r->end - 3600 * US_PER_SEC;
		snprintf(id, sizeof id, "%s-%zu", g->prefix, i);
		json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "record_id", id,
				      "provider", "cscs", "seq", (json_int_t)i, "institution",
				      whos[r->who].inst, "project", whos[r->who].proj, "resource",
				      what[r->what].resource, "quantity", (json_int_t)r->qty, "start",
				      time_format_rfc3339(r->start, ts), "end",
				      time_format_rfc3339(r->end, te), "kind", "usage");
		if (whos[r->who].member)
			json_object_set_new(o, "member", json_string(whos[r->who].member));
		if (what[r->what].cls)
			json_object_set_new(o, "class", json_string(what[r->what].cls));
		r->canon = record_canonical(o, &r->canon_len);
		size_t sl = 64;
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		if (!r->canon || !ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, g->pk) != 1 ||
		    EVP_DigestSign(ctx, r->sig, &sl, (const unsigned char *)r->canon, r->canon_len) != 1)
			die("sign", "EVP_DigestSign failed");
		EVP_MD_CTX_free(ctx);
		unsigned hl = 32;
		EVP_Digest(r->canon, r->canon_len, r->sha, &hl, EVP_sha256(), NULL);
		char s64[100];
		b64_encode(r->sig, 64, s64);
		json_object_set_new(o, "sig", json_string(s64));
		r->json = json_dumps(o, JSON_COMPACT);
		json_decref(o);
	}
	return NULL;
}

/* n signed records, generated on `threads` threads. */
static struct srec *gen_records(size_t n, const char *prefix, int64_t lo, int64_t hi, int threads)
{
	struct srec *r = calloc(n, sizeof *r);
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, g_kp.seed, 32);
	if (!r || !pk)
		die("gen", "out of memory");
	pthread_t th[16];
	struct gen_arg ga[16];
	for (int t = 0; t < threads; t++) {
		ga[t] = (struct gen_arg){r, n * (size_t)t / (size_t)threads,
					 n * (size_t)(t + 1) / (size_t)threads, prefix, lo, hi, pk};
		pthread_create(&th[t], NULL, gen_main, &ga[t]);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	EVP_PKEY_free(pk);
	return r;
}

static void free_records(struct srec *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].json);
		free(r[i].canon);
	}
	free(r);
}

/* {"records":[...]} for records [from, to). */
static char *batch_body(const struct srec *r, size_t from, size_t to, size_t *len)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "{\"records\":[");
	for (size_t i = from; i < to; i++) {
		if (i > from)
			buf_putc(&b, ',');
		buf_puts(&b, r[i].json);
	}
	buf_puts(&b, "]}");
	return buf_detach(&b, len);
}

/* ---- (a) HTTP ingestion ---------------------------------------------------------- */

struct http_job {
	struct inst *in;
	char **bodies;
	size_t *lens;
	size_t nbatches;
	atomic_size_t next;
	atomic_size_t accepted, failed;
	pthread_mutex_t mu;
	double client_cpu;
};

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
	struct buf *b = ud;
	buf_append(b, p, sz * n);
	return sz * n;
}

static void *http_client(void *p)
{
	struct http_job *j = p;
	CURL *c = curl_easy_init();
	char url[128], auth[160];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/usage", j->in->port);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->in->provider_key);
	struct curl_slist *h = curl_slist_append(NULL, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	struct buf resp = BUF_INIT;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= j->nbatches)
			break;
		buf_reset(&resp);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->bodies[i]);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)j->lens[i]);
		long code = 0;
		if (curl_easy_perform(c) != CURLE_OK ||
		    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 200) {
			atomic_fetch_add(&j->failed, 1);
			continue;
		}
		/* The answer starts {"summary":{"accepted":N,...: read N without
		 * parsing the 1,000 outcomes (client CPU counts against (a)). */
		static const char key[] = "\"accepted\":";
		const char *at = resp.len > 64 ? memmem(resp.data, 64, key, sizeof key - 1) : NULL;
		if (at)
			atomic_fetch_add(&j->accepted, strtoul(at + sizeof key - 1, NULL, 10));
	}
	double cpu = cpu_s(RUSAGE_THREAD);
	pthread_mutex_lock(&j->mu);
	j->client_cpu += cpu;
	pthread_mutex_unlock(&j->mu);
	buf_release(&resp);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

static double bench_http(struct inst *in, const struct srec *r, size_t n)
{
	struct http_job j = {.in = in, .nbatches = (n + BATCH - 1) / BATCH};
	j.bodies = calloc(j.nbatches, sizeof *j.bodies);
	j.lens = calloc(j.nbatches, sizeof *j.lens);
	for (size_t b = 0; b < j.nbatches; b++)
		j.bodies[b] = batch_body(r, b * BATCH, b * BATCH + BATCH < n ? b * BATCH + BATCH : n,
					 &j.lens[b]);
	pthread_mutex_init(&j.mu, NULL);
	pthread_t th[16];
	double c0 = cpu_s(RUSAGE_SELF), t0 = now_s();
	for (int t = 0; t < opt.clients; t++)
		pthread_create(&th[t], NULL, http_client, &j);
	for (int t = 0; t < opt.clients; t++)
		pthread_join(th[t], NULL);
	double dt = now_s() - t0;
	g_cpu = cpu_s(RUSAGE_SELF) - c0;
	g_cpu_clients = j.client_cpu;
	pthread_mutex_destroy(&j.mu);
	for (size_t b = 0; b < j.nbatches; b++)
		free(j.bodies[b]);
	free(j.bodies);
	free(j.lens);
	if (j.accepted != n || j.failed)
		fprintf(stderr, "bench ingest: WARNING: %zu of %zu records accepted, %zu batches failed\n",
			(size_t)j.accepted, n, (size_t)j.failed);
	return (double)j.accepted / dt;
}

/* ---- (b) raw SQLite -------------------------------------------------------------- */

static double bench_sqlite(const struct srec *r, size_t n)
{
	/* The same table as the ledger's (migrations/sqlite/0002_ledger.sql,
	 * created by the store), a fresh file, the store's durability. */
	struct inst tmp;
	inst_open(&tmp, "raw", false, false);
	inst_close(&tmp);
	sqlite3 *db;
	char path[160];
	snprintf(path, sizeof path, "%s/raw.db", g_dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("sqlite3_open", sqlite3_errmsg(db));
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", NULL, NULL, NULL);
	sqlite3_stmt *st;
	const char *sql =
		"INSERT INTO usage_records(provider, record_id, seq, kind, institution, project, member, "
		"resource, class, model, quantity, start_us, end_us, received_us, book_us, late, "
		"charter_version, rate_micro, charge_micro, overage, source, canonical, sha256) VALUES "
		"('cscs', ?1, ?2, 'usage', ?3, ?4, ?5, ?6, ?7, '', ?8, ?9, ?10, ?11, ?10, 0, 1, ?12, ?13, 0, "
		"'provider', ?14, ?15)";
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die("prepare", sqlite3_errmsg(db));
	static const int64_t rates[] = {31415, 17000, 125, 1234567};
	double t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		if (i % BATCH == 0)
			sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		char id[64];
		snprintf(id, sizeof id, "http-%zu", i);
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		sqlite3_bind_text(st, 3, whos[r[i].who].inst, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, whos[r[i].who].proj, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, whos[r[i].who].member ? whos[r[i].who].member : "", -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(st, 6, what[r[i].what].resource, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, what[r[i].what].cls ? what[r[i].what].cls : "", -1,
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 8, r[i].qty);
		sqlite3_bind_int64(st, 9, r[i].start);
		sqlite3_bind_int64(st, 10, r[i].end);
		sqlite3_bind_int64(st, 11, time_now_us());
		sqlite3_bind_int64(st, 12, rates[r[i].what]);
		sqlite3_bind_int64(st, 13, r[i].qty * rates[r[i].what]);
		sqlite3_bind_blob(st, 14, r[i].canon, (int)r[i].canon_len, SQLITE_STATIC);
		sqlite3_bind_blob(st, 15, r[i].sha, 32, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("insert", sqlite3_errmsg(db));
		sqlite3_reset(st);
		if (i % BATCH == BATCH - 1 || i == n - 1)
			if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
				die("commit", sqlite3_errmsg(db));
	}
	double dt = now_s() - t0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return (double)n / dt;
}

/* ---- (c) verification alone -------------------------------------------------------- */

enum verify_mode {
	V_VERIFIER,  /* ed25519_verifier_check: the key parsed once (as ingestion does) */
	V_PER_CALL,  /* ed25519_verify: the key object built on every call */
	V_PARSE,     /* record_parse_text (schema, canonical form, SHA-256) + verifier */
};

struct verify_job {
	const struct srec *r;
	size_t n;
	atomic_size_t next, bad;
	enum verify_mode mode;
	struct ed25519_verifier *v;
};

static void *verify_main(void *p)
{
	struct verify_job *j = p;
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 64);
		if (i >= j->n)
			break;
		size_t end = i + 64 < j->n ? i + 64 : j->n;
		for (; i < end; i++) {
			bool ok;
			if (j->mode == V_PARSE) {
				/* what the server does per record before verifying */
				const char *t = j->r[i].json;
				struct usage_record ur;
				char why[256];
				bool plain;
				ok = !record_parse_text(&t, t + strlen(t), true, &ur, &plain, why, sizeof why) &&
				     !ed25519_verifier_check(j->v, ur.canonical, ur.canonical_len, ur.sig, 64);
				record_release(&ur);
			} else if (j->mode == V_PER_CALL) {
				ok = !ed25519_verify(g_kp.pub, j->r[i].canon, j->r[i].canon_len, j->r[i].sig, 64);
			} else {
				ok = !ed25519_verifier_check(j->v, j->r[i].canon, j->r[i].canon_len, j->r[i].sig,
							     64);
			}
			if (!ok)
				atomic_fetch_add(&j->bad, 1);
		}
	}
	return NULL;
}

static double bench_verify(const struct srec *r, size_t n, int threads, enum verify_mode mode)
{
	struct verify_job j = {.r = r, .n = n, .mode = mode};
	if (ed25519_verifier_new(g_kp.pub, &j.v))
		die("verifier", "cannot parse the key");
	pthread_t th[16];
	double c0 = cpu_s(RUSAGE_SELF), t0 = now_s();
	for (int t = 0; t < threads; t++)
		pthread_create(&th[t], NULL, verify_main, &j);
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	double dt = now_s() - t0;
	g_cpu = cpu_s(RUSAGE_SELF) - c0;
	ed25519_verifier_free(j.v);
	if (j.bad)
		fprintf(stderr, "bench ingest: WARNING: %zu signatures did not verify\n", (size_t)j.bad);
	return (double)n / dt;
}

/* ---- (d) the report over many rows --------------------------------------------------- */

static double get_timed(unsigned port, const char *path, size_t *bytes, long *code)
{
	CURL *c = curl_easy_init();
	char url[512];
	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
	struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " ADMIN_KEY);
	struct buf resp = BUF_INIT;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
	double t0 = now_s();
	if (curl_easy_perform(c) != CURLE_OK)
		die("GET", path);
	double dt = now_s() - t0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
	*bytes = resp.len;
	if (*code != 200)
		fprintf(stderr, "bench ingest: GET %s: %ld %.*s\n", path, *code, (int)resp.len,
			resp.data ? resp.data : "");
	buf_release(&resp);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return dt;
}

/* 1M rows straight into usage_records with one INSERT ... SELECT (not
 * through ingestion; the canonical bytes are a 420-byte placeholder, the
 * size of a real record's, so rows take their real space): 40
 * institutions x 10 projects x 5 members, 4 resources, 3 providers,
 * book_us over 60 days.  The same rows on either store (in each one's
 * column types: PostgreSQL's kind and source are one-letter codes, its
 * late and overage flags booleans, migration 0009). */
static void load_sqlite(const struct inst *in, size_t rows, int64_t t_end)
{
	sqlite3 *db;
	if (sqlite3_open(in->db, &db) != SQLITE_OK)
		die("sqlite3_open", in->db);
	sqlite3_busy_timeout(db, 10000);
	char sql[2048];
	snprintf(sql, sizeof sql,
		 "PRAGMA synchronous=OFF; BEGIN; "
		 "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < %zu) "
		 "INSERT INTO usage_records(provider, record_id, seq, kind, institution, project, "
		 "member, resource, class, model, quantity, start_us, end_us, received_us, book_us, "
		 "late, charter_version, rate_micro, charge_micro, overage, source, canonical, sha256) "
		 "SELECT 'prov' || (i %% 3), 'r-' || i, i, 'usage', 'inst' || (i %% 40), "
		 "'proj' || ((i / 40) %% 10), 'm' || ((i / 400) %% 5) || '@example.org', "
		 "CASE i %% 4 WHEN 0 THEN 'gpu_seconds' WHEN 1 THEN 'cpu_seconds' WHEN 2 THEN "
		 "'tokens_in' ELSE 'tokens_out' END, '', '', 1 + (i * 7919) %% 100000, "
		 "%lld - (i * 5183) %% 5184000000000 - 3600000000, %lld - (i * 5183) %% 5184000000000, "
		 "%lld, %lld - (i * 5183) %% 5184000000000, 0, 1, 31415, (1 + (i * 7919) %% 100000) * 31415, "
		 "0, 'provider', zeroblob(420), randomblob(32) FROM c; COMMIT",
		 rows - 1, (long long)t_end, (long long)t_end, (long long)t_end, (long long)t_end);
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		die("load", err ? err : "?");
	sqlite3_close(db);
}

static void load_pg(const struct inst *in, size_t rows, int64_t t_end)
{
	PGconn *c = PQconnectdb(in->db);
	if (PQstatus(c) != CONNECTION_OK)
		die("PostgreSQL", PQerrorMessage(c));
	char sql[2048];
	snprintf(sql, sizeof sql,
		 "SET synchronous_commit = off; "
		 "INSERT INTO usage_records(provider, record_id, seq, kind, institution, project, "
		 "member, resource, class, model, quantity, start_us, end_us, received_us, book_us, "
		 "late, charter_version, rate_micro, charge_micro, overage, source, canonical, sha256) "
		 "SELECT 'prov' || (i %% 3), 'r-' || i, i, 'u', 'inst' || (i %% 40), "
		 "'proj' || ((i / 40) %% 10), 'm' || ((i / 400) %% 5) || '@example.org', "
		 "CASE i %% 4 WHEN 0 THEN 'gpu_seconds' WHEN 1 THEN 'cpu_seconds' WHEN 2 THEN "
		 "'tokens_in' ELSE 'tokens_out' END, '', '', 1 + (i * 7919) %% 100000, "
		 "%lld - (i * 5183) %% 5184000000000 - 3600000000, %lld - (i * 5183) %% 5184000000000, "
		 "%lld, %lld - (i * 5183) %% 5184000000000, false, 1, 31415, "
		 "(1 + (i * 7919) %% 100000) * 31415, false, 'p', decode(repeat('00', 420), 'hex'), sha256(int8send(i)) "
		 "FROM generate_series(0::bigint, %zu) i; ANALYZE",
		 (long long)t_end, (long long)t_end, (long long)t_end, (long long)t_end, rows - 1);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die("load", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

/* ALLOT_BENCH_EXPLAIN: the plan of the PostgreSQL store's report statement
 * (store/ledger_sql.c's, grouped by institution, project, resource) over
 * the loaded rows, with its run times (EXPLAIN ANALYZE). */
static void explain_report(const struct inst *in, int64_t from_us, int64_t to_us)
{
	static const char *const g[] = {"institution", "project", "resource"};
	struct ledger_filter f = {.from_us = from_us, .to_us = to_us};
	struct ledger_sql w;
	ledger_sql_init(&w, LEDGER_SQL_PG);
	if (ledger_sql_report(&w, &f, g, 3, false))
		die("explain", "report statement");
	struct buf q = BUF_INIT;
	buf_printf(&q, "EXPLAIN (ANALYZE, BUFFERS) %s", buf_str(&w.sql));
	const char *vals[LEDGER_SQL_PARAMS];
	char ints[LEDGER_SQL_PARAMS][24];
	for (int i = 0; i < w.n; i++) {
		snprintf(ints[i], sizeof ints[i], "%lld", (long long)w.ints[i]);
		vals[i] = w.text[i] ? w.text[i] : ints[i];
	}
	PGconn *c = PQconnectdb(in->db);
	if (PQstatus(c) != CONNECTION_OK)
		die("PostgreSQL", PQerrorMessage(c));
	PQclear(PQexec(c, "SET jit = off")); /* as the store's sessions (store/pg_conn.c) */
	PGresult *r = PQexecParams(c, buf_str(&q), w.n, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die("explain", PQresultErrorMessage(r));
	printf("    EXPLAIN ANALYZE of the report statement:\n");
	for (int i = 0; i < PQntuples(r); i++)
		printf("      %s\n", PQgetvalue(r, i, 0));
	PQclear(r);
	PQfinish(c);
	buf_release(&q);
	ledger_sql_release(&w);
}

static void bench_report(size_t rows, bool pg)
{
	struct inst in;
	inst_open(&in, "report", true, pg);
	int64_t t_end = time_now_us();
	double t0 = now_s();
	if (pg)
		load_pg(&in, rows, t_end);
	else
		load_sqlite(&in, rows, t_end);
	double load = now_s() - t0;
	printf("(d%s) report: %zu rows loaded with SQL in %.1f s (not part of the figure)\n",
	       pg ? ", PostgreSQL" : "", rows, load);
	char from[TIME_FMT_MAX], to[TIME_FMT_MAX], path[256];
	time_format_rfc3339(t_end - 70LL * 86400 * US_PER_SEC, from);
	time_format_rfc3339(t_end + 86400 * US_PER_SEC, to);
	if (pg && getenv("ALLOT_BENCH_EXPLAIN"))
		explain_report(&in, t_end - 70LL * 86400 * US_PER_SEC, t_end + 86400 * US_PER_SEC);
	static const char *const groups[] = {"institution,project,resource", "institution,project,resource&format=csv",
					     "institution,month", ""};
	for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
		snprintf(path, sizeof path, "/v1/reports/usage?from=%s&to=%s&group_by=%s", from, to,
			 groups[g]);
		for (int k = 0; k < (g == 0 ? 3 : 1); k++) {
			size_t bytes;
			long code;
			double dt = get_timed(in.port, path, &bytes, &code);
			printf("    GET /v1/reports/usage group_by=%-40s %6.3f s  (%ld, %zu bytes)%s\n",
			       groups[g][0] ? groups[g] : "(none)", dt, code, bytes,
			       g == 0 ? (k == 0 ? "  first" : "  again") : "");
		}
	}
	inst_close(&in);
}

/* ---- (e) ingestion against ledger size ----------------------------------------------- */

static void bench_spread(size_t n)
{
	struct inst in;
	inst_open(&in, "spread", false, false);
	int64_t t_end = time_now_us();
	/* ends over the last 28 days: the month's (member, 15-minute bucket)
	 * rows grow with every batch */
	struct srec *r = gen_records(n, "spread", t_end - 28LL * 86400 * US_PER_SEC, t_end - 60 * US_PER_SEC,
				     2);
	printf("(e) ledger_ingest directly, batches of %d, records ending anywhere in the last 28 days:\n",
	       BATCH);
	printf("    batch  records/s  bucket rows before\n");
	for (size_t b = 0; b * BATCH < n; b++) {
		size_t to = (b + 1) * BATCH < n ? (b + 1) * BATCH : n;
		json_t *arr = json_array();
		for (size_t i = b * BATCH; i < to; i++)
			json_array_append_new(arr, json_loads(r[i].json, 0, NULL));
		sqlite3 *db;
		int64_t buckets = 0;
		if (sqlite3_open_v2(in.db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
			sqlite3_stmt *st;
			if (sqlite3_prepare_v2(db, "SELECT count(*) FROM usage_buckets", -1, &st, NULL) == SQLITE_OK &&
			    sqlite3_step(st) == SQLITE_ROW)
				buckets = sqlite3_column_int64(st, 0);
			sqlite3_finalize(st);
		}
		sqlite3_close(db);
		struct usage_batch ub;
		struct ledger_counts cnt;
		struct buf ans = BUF_INIT;
		char msg[256] = "out of memory";
		double t0 = now_s();
		if (usage_wire_parse_records(arr, &ub, msg, sizeof msg) ||
		    ledger_ingest(in.app.ledger, "cscs", ub.items, ub.n, msg, sizeof msg) ||
		    usage_wire_answer(&ans, &ub))
			die("ledger_ingest", msg);
		double dt = now_s() - t0;
		ledger_count(ub.items, ub.n, &cnt);
		usage_batch_release(&ub);
		buf_release(&ans);
		if (cnt.accepted != to - b * BATCH)
			fprintf(stderr, "bench ingest: WARNING: %zu accepted\n", cnt.accepted);
		printf("    %5zu  %9.0f  %lld\n", b + 1, (double)(to - b * BATCH) / dt, (long long)buckets);
		json_decref(arr);
	}
	free_records(r, n);
	inst_close(&in);
}

/* ---- main ------------------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			opt.records = 10000;
			opt.report_rows = 200000;
			opt.spread = 5000;
		} else if (!strcmp(argv[i], "--records") && i + 1 < argc) {
			opt.records = strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--report-rows") && i + 1 < argc) {
			opt.report_rows = strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--spread") && i + 1 < argc) {
			opt.spread = strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--phases") && i + 1 < argc) {
			opt.phases = argv[++i];
		} else if (!strcmp(argv[i], "--clients") && i + 1 < argc) {
			opt.clients = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--pg") && i + 1 < argc) {
			opt.pg = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [--quick] [--records N] [--report-rows N] "
					"[--spread N] [--clients N] [--phases abcdev] [--pg URI]\n",
				argv[0]);
			return 2;
		}
	}
	if (opt.clients < 1 || opt.clients > 16 || opt.records < 1 || opt.report_rows < 1)
		die("options", "out of range");
	setvbuf(stdout, NULL, _IOLBF, 0);
	setenv("ALLOT_ADMIN_KEY", ADMIN_KEY, 1);
	log_set_quiet(true);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	snprintf(g_dir, sizeof g_dir, "/tmp/allot-bench-ingest.XXXXXX");
	if (!mkdtemp(g_dir))
		die("mkdtemp", strerror(errno));
	if (ed25519_keygen(&g_kp))
		die("keygen", "failed");
	char pub[ED25519_PUB_TEXT_MAX], path[128];
	ed25519_pub_format(g_kp.pub, pub);
	snprintf(path, sizeof path, "%s/charter.yaml", g_dir);
	FILE *f = fopen(path, "w");
	if (!f)
		die("charter", strerror(errno));
	fprintf(f, charter_fmt, pub);
	fclose(f);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	printf("bench ingest: %zu records, batches of %d, %d client threads, %ld CPUs, in %s\n",
	       opt.records, BATCH, opt.clients, ncpu, g_dir);

#define PHASE(x) (strchr(opt.phases, (x)) != NULL)
	struct srec *r = NULL;
	if (PHASE('a') || PHASE('b') || PHASE('c') || PHASE('v')) {
		int64_t t_end = time_now_us();
		double t0 = now_s();
		r = gen_records(opt.records, "http", t_end - 3600 * US_PER_SEC,
				t_end - 60 * US_PER_SEC, opt.clients);
		printf("    (signing %zu records took %.1f s, not measured below)\n", opt.records,
		       now_s() - t0);
	}

	double a = 0, b = 0, c = 0, c1 = 0, p = 0, cpu_a = 0, cpu_c = 0;
	double n = (double)opt.records;
	if (PHASE('a')) {
		struct inst in;
		inst_open(&in, "http", true, false);
		double b0 = store_bytes(&in);
		a = bench_http(&in, r, opt.records);
		cpu_a = g_cpu;
		double per = (store_bytes(&in) - b0) / n;
		store_sizes(&in, n);
		inst_close(&in);
		printf("(a) HTTP POST /v1/usage, durable acks:        %9.0f records/s\n", a);
		printf("    CPU %.1f us/record (of it the client threads %.1f), %.2f CPUs busy\n",
		       1e6 * cpu_a / n, 1e6 * g_cpu_clients / n, cpu_a * a / n);
		printf("    on disk: %.0f bytes per record (the database file, after a checkpoint)\n",
		       per);
		if (opt.pg) {
			/* the same records, a new PostgreSQL database (their ids
			 * are new to it) */
			inst_open(&in, "http", true, true);
			b0 = store_bytes(&in);
			double ap = bench_http(&in, r, opt.records);
			double cpu_p = g_cpu, per_p = (store_bytes(&in) - b0) / n;
			store_sizes(&in, n);
			inst_close(&in);
			printf("(a, PostgreSQL) the same, on PostgreSQL:     %9.0f records/s  "
			       "(%.2f x SQLite's in this run)\n", ap, ap / a);
			printf("    CPU of this process %.1f us/record (the server's not counted)\n",
			       1e6 * cpu_p / n);
			printf("    on disk: %.0f bytes per record (tables, indexes, TOAST; %.2f x "
			       "SQLite's)\n", per_p, per > 0 ? per_p / per : 0.0);
		}
	}
	if (PHASE('b')) {
		b = bench_sqlite(r, opt.records);
		printf("(b) raw SQLite inserts, same rows/durability: %9.0f records/s\n", b);
	}
	if (PHASE('c')) {
		c = bench_verify(r, opt.records, opt.clients, V_VERIFIER);
		cpu_c = g_cpu;
		c1 = bench_verify(r, opt.records, 1, V_VERIFIER);
		double pc = bench_verify(r, opt.records, opt.clients, V_PER_CALL);
		p = bench_verify(r, opt.records, opt.clients, V_PARSE);
		printf("(c) Ed25519 verification alone, %d threads:    %9.0f records/s  (1 thread: %.0f)\n",
		       opt.clients, c, c1);
		printf("    CPU %.1f us/record, %.2f CPUs busy\n", 1e6 * cpu_c / n, cpu_c * c / n);
		printf("    the same with the key object built per call (ed25519_verify): %.0f records/s\n",
		       pc);
		printf("    record_parse_text (schema, canonical, SHA-256) + verify, %d threads: %.0f records/s\n",
		       opt.clients, p);
	}
	if (PHASE('v') && !PHASE('c')) {
		/* (c)'s first figure alone: with --phases a and --phases v under
		 * perf stat, the difference is what ingestion adds to verification */
		c = bench_verify(r, opt.records, opt.clients, V_VERIFIER);
		printf("(v) Ed25519 verification alone, %d threads:    %9.0f records/s, CPU %.1f us/record\n",
		       opt.clients, c, 1e6 * g_cpu / n);
	}
	if (PHASE('a') && PHASE('c'))
	{
		printf("    (a)/(c) = %.0f%%  (target >= 80%%)\n", 100.0 * a / c);
		/* With (c)'s CPUs busy all the time, 80% leaves this much CPU per
		 * record for everything but verification. */
		printf("    CPU per record besides verification: %.1f us (%.1f us at 80%% with %.2f CPUs)\n",
		       1e6 * (cpu_a - cpu_c) / n, 1e6 * (cpu_c / n) * (1 / 0.8 - 1), cpu_c * c / n);
	}
	if (r)
		free_records(r, opt.records);

	if (PHASE('d'))
		bench_report(opt.report_rows, false);
	if (PHASE('d') && opt.pg)
		bench_report(opt.report_rows, true);
	if (PHASE('e'))
		bench_spread(opt.spread);

	if (getenv("ALLOT_BENCH_KEEP"))
		printf("kept %s (ALLOT_BENCH_KEEP)\n", g_dir);
	else
		nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	ed25519_keypair_wipe(&g_kp);
	curl_global_cleanup();
	return 0;
}
