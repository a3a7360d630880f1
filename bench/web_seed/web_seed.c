/* web_seed.c — seeds a dashboard deployment for bench/web_render.sh
 * (docs/DASHBOARD.md, "Render time"): a charter of INSTS institutions with
 * projects and members, three providers, and RECORDS signed usage records
 * posted through POST /v1/usage in batches of 1,000, as providers send them.
 *
 *   web_seed charter DIR INSTS RECORDS   DIR/charter.yaml and DIR/PROVIDER.key
 *   web_seed load DB INSTS RECORDS SPAN_S
 *        books the same records straight into the SQLite database DB
 *        through the store's ledger_insert, before allotd opens it (below)
 *   web_seed post DIR URL INSTS RECORDS SPAN_S [CLIENTS]
 *        reads DIR/PROVIDER.key and DIR/PROVIDER.apikey (a provider API key),
 *        posts RECORDS records ending over the SPAN_S seconds before now, in
 *        time order, signed on CLIENTS threads (default 2) as they are sent
 *   web_seed   (no arguments, as `make bench` runs it): signs 20,000 records
 *        of a 100-institution deployment and prints records/s; no server
 *
 * The deployment: institution 1 is epfl (projects climate, with members of
 * their own allocation, vision, genomics and robotics), the others inst002..
 * with 1 to 5 projects of 1 to 8 members each.  Institutions are unequal, as
 * in life: institution r gets a share of the records proportional to 1/r
 * (epfl, the largest, about a fifth of them with 100 institutions), spread
 * evenly over its projects and members.  Providers cscs (H100 GPUs), lumi
 * (A100) and ovh (H100) send 50/30/20 % of the records, one in seven a CPU
 * job; each provider's seq runs 1, 2, 3, ... without gaps.  Allocations are
 * sized so that the month's use is about three quarters of them.
 * Bench code: ranks and shares are plain doubles; the charges are the
 * server's. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/timeutil.h"
#include "crypto/ed25519.h"
#include "ledger/record.h"
#include "store/store.h"

#define BATCH 1000
#define NPROV 3
#define MAX_CLIENTS 8

static const char *const provs[NPROV] = {"cscs", "lumi", "ovh"};
static const char *const prov_class[NPROV] = {"h100", "a100", "h100"};
static const char *const epfl_projects[] = {"climate", "vision", "genomics", "robotics"};

struct inst {
	char id[16];
	int nproj;
	int nmem[5];
};

static struct inst *g_inst;
static int g_ninst;
static double *g_cum; /* cumulative shares, g_cum[ninst - 1] = 1 */

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "web_seed: %s: %s\n", what, msg);
	exit(1);
}

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void model(int ninst)
{
	if (ninst < 1 || ninst > 999)
		die("institutions", "1..999");
	g_ninst = ninst;
	g_inst = calloc((size_t)ninst, sizeof *g_inst);
	g_cum = calloc((size_t)ninst, sizeof *g_cum);
	if (!g_inst || !g_cum)
		die("model", "out of memory");
	double h = 0;
	for (int i = 0; i < ninst; i++)
		h += 1.0 / (i + 1);
	double acc = 0;
	for (int i = 0; i < ninst; i++) {
		struct inst *in = &g_inst[i];
		uint64_t m = mix((uint64_t)i);
		if (i == 0)
			snprintf(in->id, sizeof in->id, "epfl");
		else
			snprintf(in->id, sizeof in->id, "inst%03d", i + 1);
		in->nproj = i == 0 ? 4 : 1 + (int)(m % 5);
		for (int p = 0; p < in->nproj; p++)
			in->nmem[p] = i == 0 ? (p == 0 ? 6 : 4) : 1 + (int)((m >> (8 * (p + 1))) % 8);
		acc += 1.0 / (i + 1) / h;
		g_cum[i] = acc;
	}
	g_cum[ninst - 1] = 1.0;
}

static const char *proj_id(int i, int p, char out[16])
{
	if (i == 0)
		return epfl_projects[p];
	snprintf(out, 16, "p%d", p + 1);
	return out;
}

static const char *member_id(int i, int p, int m, char out[64])
{
	static const char *const climate[] = {"alice@epfl.ch", "bob@epfl.ch"};
	if (i == 0 && p == 0 && m < 2)
		return climate[m];
	if (i == 0 && p == 1 && m == 0)
		return "carol@epfl.ch";
	if (i == 0)
		snprintf(out, 64, "u%d%d@epfl.ch", p + 1, m + 1);
	else
		snprintf(out, 64, "m%d.%d@inst%03d.org", p + 1, m + 1, i + 1);
	return out;
}

/* ---- the charter ---------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) == EOF || fclose(f) != 0 || chmod(path, mode) != 0)
		die("write", path);
}

static int cmd_charter(const char *dir, int ninst, long long records)
{
	model(ninst);
	struct buf y = BUF_INIT;
	/* about 300 credits a record on average: a month's use at three
	 * quarters of the allocations */
	double monthly = (double)records * 300.0 / 0.75;
	long long pool = 0;
	char pubs[NPROV][ED25519_PUB_TEXT_MAX];
	for (int k = 0; k < NPROV; k++) {
		struct ed25519_keypair kp;
		char name[512], msg[256] = "keygen failed";
		snprintf(name, sizeof name, "%s/%s.key", dir, provs[k]);
		if (ed25519_keygen(&kp) || ed25519_private_write(name, &kp, 1, msg, sizeof msg))
			die("key", msg);
		ed25519_pub_format(kp.pub, pubs[k]);
		ed25519_keypair_wipe(&kp);
	}
	struct buf body = BUF_INIT;
	for (int i = 0; i < ninst; i++) {
		const struct inst *in = &g_inst[i];
		double share = g_cum[i] - (i ? g_cum[i - 1] : 0);
		long long alloc = ((long long)(monthly * share) / 1000 + 1) * 1000;
		long long palloc = alloc * 9 / 10 / in->nproj;
		pool += alloc;
		buf_printf(&body, "  - id: %s\n", in->id);
		if (i == 0)
			buf_puts(&body, "    name: EPFL\n");
		buf_printf(&body, "    allocation: {credits: %lld, period: month%s}\n", alloc,
			   i == 0 ? ", rollover: 0.25" : "");
		if (i == 0)
			buf_puts(&body, "    alerts: [50, 80, 100]\n");
		buf_puts(&body, "    projects:\n");
		for (int p = 0; p < in->nproj; p++) {
			char pb[16], mb[64];
			buf_printf(&body, "      - id: %s\n        allocation: {credits: %lld, period: month}\n",
				   proj_id(i, p, pb), palloc);
			if (i == 0 && p == 0)
				buf_printf(&body, "        member_allocation: {credits: %lld, period: month}\n",
					   palloc / 4);
			buf_puts(&body, "        members: [");
			for (int m = 0; m < in->nmem[p]; m++)
				buf_printf(&body, "%s%s", m ? ", " : "", member_id(i, p, m, mb));
			buf_puts(&body, "]\n");
		}
	}
	buf_printf(&y, "charter: web-bench\nversion: 1\ntitle: Dashboard benchmark commons\n"
		       "effective: 2026-01-01T00:00:00Z\ntimezone: Europe/Zurich\npool: %lld\n"
		       "late_grace: {days: 45}\npublic: true\nrates:\n"
		       "  - {resource: gpu_seconds, class: h100, credits: 0.031415}\n"
		       "  - {resource: gpu_seconds, class: a100, credits: 0.017}\n"
		       "  - {resource: cpu_seconds, credits: 0.000125}\nproviders:\n",
		   pool / 10 * 11);
	for (int k = 0; k < NPROV; k++)
		buf_printf(&y, "  - {id: %s, keys: [\"%s\"], resources: [gpu_seconds, cpu_seconds]}\n",
			   provs[k], pubs[k]);
	buf_printf(&y, "institutions:\n%s", buf_str(&body));
	if (y.oom || body.oom)
		die("charter", "out of memory");
	write_file(dir, "charter.yaml", buf_str(&y), 0644);
	buf_release(&y);
	buf_release(&body);
	return 0;
}

/* ---- records ------------------------------------------------------------------- */

struct rec {
	int64_t end_us, seq, qty;
	uint16_t inst;
	uint8_t proj, mem, prov, cpu;
};

static struct rec *plan(long long n, int64_t span_us, int64_t now)
{
	struct rec *r = calloc((size_t)n, sizeof *r);
	if (!r)
		die("plan", "out of memory");
	int64_t seq[NPROV] = {0};
	int64_t lo = now - span_us, hi = now - 120 * US_PER_SEC;
	for (long long i = 0; i < n; i++) {
		uint64_t h = mix((uint64_t)i * 0x2545f4914f6cdd1dULL);
		double u = (double)(h >> 11) / 9007199254740992.0;
		int a = 0, b = g_ninst - 1; /* first institution whose cumulative share > u */
		while (a < b) {
			int m = (a + b) / 2;
			if (g_cum[m] > u)
				b = m;
			else
				a = m + 1;
		}
		const struct inst *in = &g_inst[a];
		r[i].inst = (uint16_t)a;
		r[i].proj = (uint8_t)((h >> 4) % (uint64_t)in->nproj);
		r[i].mem = (uint8_t)((h >> 12) % (uint64_t)in->nmem[r[i].proj]);
		int pc = (int)((h >> 20) % 10);
		r[i].prov = (uint8_t)(pc < 5 ? 0 : pc < 8 ? 1 : 2);
		r[i].cpu = (h >> 28) % 7 == 3;
		r[i].qty = r[i].cpu ? 3600 + (int64_t)((h >> 32) % 360000)
				    : 600 + (int64_t)((h >> 32) % 28200);
		r[i].end_us = lo + (int64_t)((double)(hi - lo) * (double)(i + 1) / (double)n);
		r[i].seq = ++seq[r[i].prov];
	}
	return r;
}

static const char *record_id(const struct rec *r, char out[48])
{
	snprintf(out, 48, "%s-%lld", provs[r->prov], (long long)r->seq);
	return out;
}

/* The record as JSON (unsigned). */
static json_t *rec_object(const struct rec *r)
{
	char ts[TIME_FMT_MAX], te[TIME_FMT_MAX], id[48], pb[16], mb[64];
	record_id(r, id);
	int64_t dur = r->cpu ? 3600 * US_PER_SEC : r->qty * US_PER_SEC;
	json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "record_id", id,
			      "provider", provs[r->prov], "seq", (json_int_t)r->seq, "institution",
			      g_inst[r->inst].id, "project", proj_id(r->inst, r->proj, pb), "member",
			      member_id(r->inst, r->proj, r->mem, mb), "resource",
			      r->cpu ? "cpu_seconds" : "gpu_seconds", "quantity", (json_int_t)r->qty,
			      "start", time_format_rfc3339(r->end_us - dur, ts), "end",
			      time_format_rfc3339(r->end_us, te), "kind", "usage");
	if (o && !r->cpu)
		json_object_set_new(o, "class", json_string(prov_class[r->prov]));
	if (!o)
		die("json", "out of memory");
	return o;
}

/* One record as signed JSON onto b. */
static void rec_json(const struct rec *r, const struct ed25519_keypair *kp, struct buf *b)
{
	char sig64[100];
	uint8_t sig[ED25519_SIG_LEN];
	json_t *o = rec_object(r);
	size_t clen = 0;
	char *canon = record_canonical(o, &clen);
	if (!canon || ed25519_sign(kp, canon, clen, sig))
		die("sign", "could not sign a record");
	sig64[b64_encode(sig, sizeof sig, sig64)] = '\0';
	json_object_set_new(o, "sig", json_string(sig64));
	char *text = json_dumps(o, JSON_COMPACT);
	if (!text)
		die("json", "out of memory");
	buf_puts(b, text);
	free(text);
	free(canon);
	json_decref(o);
}

/* ---- posting ------------------------------------------------------------------- */

struct job {
	const struct rec *r;
	long long **idx;         /* per provider: indices into r, in time order */
	long long nidx[NPROV];
	long long (*batches)[2]; /* {provider, first position in idx[provider]} */
	long long nbatches;
	atomic_llong next, posted, failed;
	struct ed25519_keypair kp[NPROV];
	char apikey[NPROV][256];
	const char *url;         /* NULL: sign only */
};

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
	buf_append(ud, p, sz * n);
	return sz * n;
}

static void *client(void *arg)
{
	struct job *j = arg;
	CURL *c = j->url ? curl_easy_init() : NULL;
	if (j->url && !c)
		die("curl", "cannot start a client");
	struct buf body = BUF_INIT, resp = BUF_INIT;
	char url[512];
	if (c) {
		snprintf(url, sizeof url, "%s/v1/usage", j->url);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	}
	for (;;) {
		long long b = atomic_fetch_add(&j->next, 1);
		if (b >= j->nbatches)
			break;
		int p = (int)j->batches[b][0];
		long long from = j->batches[b][1], to = from + BATCH;
		if (to > j->nidx[p])
			to = j->nidx[p];
		buf_reset(&body);
		buf_puts(&body, "{\"records\":[");
		for (long long k = from; k < to; k++) {
			if (k > from)
				buf_putc(&body, ',');
			rec_json(&j->r[j->idx[p][k]], &j->kp[p], &body);
		}
		buf_puts(&body, "]}");
		if (!c) {
			atomic_fetch_add(&j->posted, to - from);
			continue;
		}
		char auth[300];
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->apikey[p]);
		struct curl_slist *h = curl_slist_append(NULL, auth);
		h = curl_slist_append(h, "Content-Type: application/json");
		h = curl_slist_append(h, "Expect:");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, buf_str(&body));
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body.len);
		buf_reset(&resp);
		long code = 0;
		CURLcode cc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_slist_free_all(h);
		/* {"summary":{"accepted":N,...: every record of the batch */
		char want[48];
		snprintf(want, sizeof want, "\"accepted\":%lld,", to - from);
		if (cc != CURLE_OK || code != 200 || !resp.data ||
		    !memmem(resp.data, resp.len < 200 ? resp.len : 200, want, strlen(want))) {
			if (atomic_fetch_add(&j->failed, 1) < 3)
				fprintf(stderr, "web_seed: batch %lld: %s %ld %.300s\n", b,
					curl_easy_strerror(cc), code, resp.data ? buf_str(&resp) : "");
			continue;
		}
		atomic_fetch_add(&j->posted, to - from);
	}
	buf_release(&body);
	buf_release(&resp);
	if (c)
		curl_easy_cleanup(c);
	return NULL;
}

static void read_secret(const char *dir, const char *name, char *out, size_t cap)
{
	char path[1100];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(out, (int)cap, f))
		die("read", path);
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
}

/* Signs (and with url, posts) n records over span_us on clients threads. */
static double run(const char *dir, const char *url, long long n, int64_t span_us, int clients)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		die("job", "out of memory");
	int64_t now = time_now_us();
	struct rec *r = plan(n, span_us, now);
	j->r = r;
	j->url = url;
	j->idx = calloc(NPROV, sizeof *j->idx);
	j->batches = calloc((size_t)(n / BATCH + NPROV + 1), sizeof *j->batches);
	for (int p = 0; p < NPROV; p++)
		j->idx[p] = malloc((size_t)n * sizeof **j->idx);
	for (long long i = 0; i < n; i++) { /* batches in time order, as providers send */
		int p = r[i].prov;
		if (j->nidx[p] % BATCH == 0) {
			j->batches[j->nbatches][0] = p;
			j->batches[j->nbatches++][1] = j->nidx[p];
		}
		j->idx[p][j->nidx[p]++] = i;
	}
	for (int p = 0; p < NPROV; p++) {
		char name[512], msg[256];
		if (!dir) {
			if (ed25519_keygen(&j->kp[p]))
				die("key", "keygen failed");
			continue;
		}
		snprintf(name, sizeof name, "%s/%s.key", dir, provs[p]);
		if (ed25519_private_read(name, &j->kp[p], msg, sizeof msg))
			die("key", msg);
		snprintf(name, sizeof name, "%s.apikey", provs[p]);
		read_secret(dir, name, j->apikey[p], sizeof j->apikey[p]);
	}
	pthread_t th[MAX_CLIENTS];
	int64_t t0 = time_mono_us();
	for (int t = 0; t < clients; t++)
		if (pthread_create(&th[t], NULL, client, j))
			die("thread", "cannot start");
	for (int t = 0; t < clients; t++)
		pthread_join(th[t], NULL);
	double dt = (double)(time_mono_us() - t0) / 1e6;
	long long posted = j->posted, failed = j->failed;
	for (int p = 0; p < NPROV; p++) {
		ed25519_keypair_wipe(&j->kp[p]);
		free(j->idx[p]);
	}
	free(j->idx);
	free(j->batches);
	free(r);
	free(j);
	if (failed || posted != n) {
		fprintf(stderr, "web_seed: %lld of %lld records accepted, %lld batches failed\n", posted,
			n, failed);
		exit(1);
	}
	return (double)n / dt;
}

/* ---- loading through the store ---------------------------------------------------
 * The rows ingestion would book (usage records at the charter's rates, their
 * bucket totals, the ledger's bounds and a transparency-log leaf each), written
 * with the store's own ledger_insert into the database allotd then opens:
 * what a ledger of n records looks like, without n signature checks through
 * HTTP (docs/DASHBOARD.md, "Render time"). */

#define LOAD_TX 5000 /* rows per transaction (one fsync each) */

static int64_t rate_of(const struct rec *r)
{
	return r->cpu ? 125 : strcmp(prov_class[r->prov], "a100") == 0 ? 17000 : 31415;
}

static void load_row(struct store *st, const struct rec *r, int64_t now)
{
	struct ledger_row row;
	memset(&row, 0, sizeof row);
	struct usage_record *u = &row.rec;
	char pb[16], mb[64];
	record_id(r, u->record_id);
	snprintf(u->provider, sizeof u->provider, "%s", provs[r->prov]);
	u->has_seq = true;
	u->seq = r->seq;
	snprintf(u->institution, sizeof u->institution, "%s", g_inst[r->inst].id);
	snprintf(u->project, sizeof u->project, "%s", proj_id(r->inst, r->proj, pb));
	snprintf(u->member, sizeof u->member, "%s", member_id(r->inst, r->proj, r->mem, mb));
	snprintf(u->resource, sizeof u->resource, "%s", r->cpu ? "cpu_seconds" : "gpu_seconds");
	snprintf(u->cls, sizeof u->cls, "%s", r->cpu ? "" : prov_class[r->prov]);
	u->quantity = r->qty;
	u->end_us = r->end_us;
	u->start_us = r->end_us - (r->cpu ? 3600 * US_PER_SEC : r->qty * US_PER_SEC);
	u->kind = RECORD_USAGE;
	json_t *o = rec_object(r);
	u->canonical = record_canonical(o, &u->canonical_len);
	json_decref(o);
	if (!u->canonical)
		die("canonical", "out of memory");
	record_sha256(u->canonical, u->canonical_len, u->sha256);
	row.received_us = r->end_us + 60 * US_PER_SEC < now ? r->end_us + 60 * US_PER_SEC : now;
	row.book_us = r->end_us;
	row.charter_version = 1;
	row.rate_micro = rate_of(r);
	row.charge_micro = r->qty * row.rate_micro;
	if (store_ledger_insert_q(st, &row))
		die("insert", st->errmsg);
	free(u->canonical);
}

static int cmd_load(const char *db, long long n, int64_t span_us)
{
	struct store *st;
	char msg[512];
	if (store_open(db, &st, msg, sizeof msg))
		die("store", msg);
	int64_t now = time_now_us(), t0 = time_mono_us();
	struct rec *r = plan(n, span_us, now);
	for (long long i = 0; i < n; i += LOAD_TX) {
		if (store_ledger_begin(st))
			die("begin", st->errmsg);
		for (long long k = i; k < n && k < i + LOAD_TX; k++)
			load_row(st, &r[k], now);
		if (store_ledger_commit(st))
			die("commit", st->errmsg);
	}
	free(r);
	store_close(st);
	printf("web_seed: %lld records booked through the store, %.0f records/s\n", n,
	       (double)n / ((double)(time_mono_us() - t0) / 1e6));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 1) {
		model(100);
		double rate = run(NULL, NULL, 20000, 30LL * 86400 * US_PER_SEC, 2);
		printf("web_seed: 20000 records of 100 institutions signed in batches of %d: "
		       "%.0f records/s (2 threads, no server)\n", BATCH, rate);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "charter") == 0)
		return cmd_charter(argv[2], atoi(argv[3]), atoll(argv[4]));
	if (argc == 6 && strcmp(argv[1], "load") == 0) {
		long long n = atoll(argv[4]), span = atoll(argv[5]);
		if (n < 1 || span < 600)
			die("load", "RECORDS >= 1, SPAN_S >= 600");
		model(atoi(argv[3]));
		return cmd_load(argv[2], n, span * US_PER_SEC);
	}
	if ((argc == 7 || argc == 8) && strcmp(argv[1], "post") == 0) {
		long long n = atoll(argv[5]);
		long long span = atoll(argv[6]);
		int clients = argc == 8 ? atoi(argv[7]) : 2;
		if (n < 1 || span < 600 || clients < 1 || clients > MAX_CLIENTS)
			die("post", "RECORDS >= 1, SPAN_S >= 600, CLIENTS 1..8");
		model(atoi(argv[4]));
		curl_global_init(CURL_GLOBAL_DEFAULT);
		double rate = run(argv[2], argv[3], n, span * US_PER_SEC, clients);
		printf("web_seed: %lld records posted, %.0f records/s\n", n, rate);
		curl_global_cleanup();
		return 0;
	}
	fprintf(stderr, "usage: web_seed charter DIR INSTS RECORDS\n"
			"       web_seed load DB INSTS RECORDS SPAN_S\n"
			"       web_seed post DIR URL INSTS RECORDS SPAN_S [CLIENTS]\n"
			"       web_seed   (signing rate, no server)\n");
	return 2;
}
