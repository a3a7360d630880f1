/* test_ledger.c — the ledger end to end in C: a real SQLite store and app in a
 * temporary directory, records signed here with keys generated here, and
 * batches booked through POST /v1/usage's parser (api/usage_wire.c) and
 * ledger_ingest, called directly.
 *
 * Cases: exactness of pricing and aggregation over many random records
 * (checked against sums computed here in __int128), idempotency and
 * conflicts, signatures, bad input field by field, late records, rollover,
 * corrections, and pricing by the charter version in force at "end".
 *
 * The clock is fixed with time_set_clock() so that periods are known.
 * ALLOT_TEST_SCALE sets the number of random records of the exactness case
 * (default 100000; 10000 in sanitizer builds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>

#include "api/usage_wire.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "common/b64.h"
#include "crypto/ed25519.h"
#include "daemon/app.h"
#include "ledger/ledger.h"
#include "ledger/quota.h"
#include "store/store.h"
#include "support/rowsfx.h"
#include "support/tmpdir.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifdef TEST_SANITIZED
#define SCALE_DEFAULT 10000
#else
#define SCALE_DEFAULT 100000
#endif
#define BATCH 1000

/* ---- the clock ------------------------------------------------------------- */

static int64_t g_now;
static int64_t fake_clock(void) { return g_now; }

static int64_t T(const char *s)
{
	int64_t us = 0;
	if (time_parse_rfc3339(s, strlen(s), &us) != 0)
		fail_msg("bad time literal %s", s);
	return us;
}

/* ---- the fixture: a store, an app, keys ------------------------------------ */

struct fix {
	char dir[64];
	char db[128], charter[128], keys[128];
	struct app app;
	struct ed25519_keypair cscs, cloud, rogue;
	/* Same keys and charter, its own database: ingest() sends every batch
	 * to f through the text path and to the twin through jansson, and
	 * checks that the answers are the same bytes. */
	struct fix *twin;
};

static const char charter_fmt[] =
	"charter: ledger-unit\n"
	"version: %d\n"
	"effective: %s\n"
	"timezone: Europe/Zurich\n"
	"pool: 100000000\n"
	"late_grace: {days: 3}\n"
	"rates:\n"
	"  - {resource: gpu_seconds, class: h100, credits: %s}\n"
	"  - {resource: gpu_seconds, class: a100, credits: 0.017}\n"
	"  - {resource: gpu_seconds, credits: 0.01}\n"
	"  - {resource: cpu_seconds, credits: 0.000125}\n"
	"  - {resource: storage_gb_hours, credits: 1.234567}\n"
	"  - {resource: tokens_in, model: m1, credits: 0.000001}\n"
	"  - {resource: tokens_out, model: m1, credits: 0.000003}\n"
	"providers:\n"
	"  - {id: cscs, keys: [\"%s\"], resources: [gpu_seconds, cpu_seconds, storage_gb_hours]}\n"
	"  - {id: cloud, keys: [\"%s\"], resources: [gpu_seconds, tokens_in, tokens_out]}\n"
	"models:\n"
	"  - {id: m1, provider: cloud, url: \"http://127.0.0.1:9/v1\", upstream_model: m1}\n"
	"institutions:\n"
	"  - id: epfl\n"
	"    allocation: {credits: 1000000, period: month, rollover: 0.25}\n"
	"    overage: {mode: hard}\n"
	"    alerts: [80, 100]\n"
	"    projects:\n"
	"      - id: climate\n"
	"        allocation: {credits: 400000, period: month, rollover: 0.5}\n"
	"        member_allocation: {credits: 1000, period: month}\n"
	"        members: [alice@epfl.ch, bob@epfl.ch, carol@epfl.ch]\n"
	"      - id: vision\n"
	"        allocation: {credits: 300000, period: month}\n"
	"        members: [dan@epfl.ch, erin@epfl.ch]\n"
	"  - id: ethz\n"
	"    allocation: {credits: 500000, period: month}\n"
	"    overage: {mode: soft, grace_percent: 10}\n"
	"    projects:\n"
	"      - id: robotics\n"
	"        allocation: {credits: 300000, period: month}\n"
	"        members: [frank@ethz.ch, gina@ethz.ch]\n"
	"      - id: nlp\n"
	"        allocation: {credits: 200000, period: month}\n"
	"        members: [hana@ethz.ch]\n";

static char *charter_text(const struct fix *f, int version, const char *effective,
			  const char *h100_rate)
{
	char a[ED25519_PUB_TEXT_MAX], b[ED25519_PUB_TEXT_MAX];
	ed25519_pub_format(f->cscs.pub, a);
	ed25519_pub_format(f->cloud.pub, b);
	size_t n = sizeof charter_fmt + 512;
	char *s = malloc(n);
	assert_non_null(s);
	snprintf(s, n, charter_fmt, version, effective, h100_rate, a, b);
	return s;
}

/* Opens a fixture; keys from `keys` when given (a twin), else new ones. */
static struct fix *fix_open(const struct fix *keys)
{
	struct fix *f = calloc(1, sizeof *f);
	assert_non_null(f);
	tmpdir_make(f->dir, sizeof f->dir, "ledger");
	snprintf(f->db, sizeof f->db, "%s/allot.db", f->dir);
	snprintf(f->charter, sizeof f->charter, "%s/charter.yaml", f->dir);
	snprintf(f->keys, sizeof f->keys, "%s/keys", f->dir);
	if (keys) {
		f->cscs = keys->cscs;
		f->cloud = keys->cloud;
		f->rogue = keys->rogue;
	} else {
		assert_int_equal(ed25519_keygen(&f->cscs), ALLOT_OK);
		assert_int_equal(ed25519_keygen(&f->cloud), ALLOT_OK);
		assert_int_equal(ed25519_keygen(&f->rogue), ALLOT_OK);
	}
	char *text = charter_text(f, 1, "2026-01-01T00:00:00Z", "0.031415");
	FILE *fp = fopen(f->charter, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	free(text);
	g_now = T("2026-12-20T12:00:00Z");
	time_set_clock(fake_clock);
	setenv("ALLOT_ADMIN_KEY", "test-ledger-admin-key-0123456789", 1);
	log_set_quiet(true);
	f->app.cfg.db = f->db;
	f->app.cfg.charter = f->charter;
	f->app.cfg.keys = f->keys;
	f->app.cfg.deployment = "test";
	f->app.cfg.no_background = true;
	char msg[512] = "";
	allot_err e = app_open(&f->app, msg, sizeof msg);
	if (e)
		fail_msg("app_open: %s", msg);
	return f;
}

static int fix_setup(void **state)
{
	*state = fix_open(NULL);
	return 0;
}

/* A fixture with a twin (see struct fix). */
static int fix_setup_twin(void **state)
{
	struct fix *f = fix_open(NULL);
	f->twin = fix_open(f);
	*state = f;
	return 0;
}

static void fix_close(struct fix *f)
{
	app_close(&f->app);
	tmpdir_remove(f->dir);
	if (f->twin) {
		fix_close(f->twin);
		f->twin = NULL;
	} else {
		ed25519_keypair_wipe(&f->cscs);
		ed25519_keypair_wipe(&f->cloud);
		ed25519_keypair_wipe(&f->rogue);
	}
	free(f);
}

static int fix_teardown(void **state)
{
	fix_close(*state);
	time_set_clock(NULL);
	return 0;
}

/* ---- records --------------------------------------------------------------- */

struct rspec {
	const char *id, *provider, *inst, *proj, *member, *resource, *cls, *model;
	int64_t qty;
	int64_t start, end;   /* 0: an hour before now, and now */
	const char *kind, *adjustment, *supersedes;
	int64_t seq;          /* < 0: none */
};

static json_t *mkrec(const struct rspec *s)
{
	char a[TIME_FMT_MAX], b[TIME_FMT_MAX];
	int64_t end = s->end ? s->end : g_now;
	int64_t start = s->start ? s->start : end - 3600 * US_PER_SEC;
	json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s}", "record_id", s->id,
			      "provider", s->provider ? s->provider : "cscs", "institution",
			      s->inst ? s->inst : "epfl", "project", s->proj ? s->proj : "climate",
			      "resource", s->resource ? s->resource : "gpu_seconds", "quantity",
			      (json_int_t)s->qty, "start", time_format_rfc3339(start, a), "end",
			      time_format_rfc3339(end, b));
	assert_non_null(r);
	json_object_set_new(r, "member", s->member ? json_string(s->member) : json_null());
	json_object_set_new(r, "class", s->cls ? json_string(s->cls) : json_null());
	json_object_set_new(r, "model", s->model ? json_string(s->model) : json_null());
	json_object_set_new(r, "kind", json_string(s->kind ? s->kind : "usage"));
	if (s->adjustment)
		json_object_set_new(r, "adjustment", json_string(s->adjustment));
	json_object_set_new(r, "supersedes", s->supersedes ? json_string(s->supersedes) : json_null());
	if (s->seq >= 0)
		json_object_set_new(r, "seq", json_integer(s->seq));
	return r;
}

/* Signs r (its canonical bytes, without "sig") with kp; sets "sig". */
static json_t *sign(json_t *r, const struct ed25519_keypair *kp)
{
	json_object_del(r, "sig");
	size_t n = 0;
	char *canon = record_canonical(r, &n);
	assert_non_null(canon);
	uint8_t sig[ED25519_SIG_LEN];
	assert_int_equal(ed25519_sign(kp, canon, n, sig), ALLOT_OK);
	free(canon);
	char s64[100];
	b64_encode(sig, sizeof sig, s64);
	json_object_set_new(r, "sig", json_string(s64));
	return r;
}

/* records (a JSON array, borrowed) through the jansson path:
 * usage_wire_parse_records, ledger_ingest and the answer, read back.  OUT:
 * *outcomes (the answer's "results", a new reference) and *cnt. */
static allot_err ingest_json(struct ledger *led, const char *provider, const json_t *records,
			     json_t **outcomes, struct ledger_counts *cnt, char *msg, size_t msgsz)
{
	struct usage_batch b;
	struct buf ans = BUF_INIT;
	allot_err e = usage_wire_parse_records(records, &b, msg, msgsz);
	if (!e)
		e = ledger_ingest(led, provider, b.items, b.n, msg, msgsz);
	if (!e) {
		ledger_count(b.items, b.n, cnt);
		assert_int_equal(usage_wire_answer(&ans, &b), ALLOT_OK);
		json_t *a = json_loadb(ans.data, ans.len, JSON_REJECT_DUPLICATES, NULL);
		assert_non_null(a);
		*outcomes = json_incref(json_object_get(a, "results"));
		json_decref(a);
	}
	usage_batch_release(&b);
	buf_release(&ans);
	return e;
}

/* A POST /v1/usage body through usage_wire_ingest; with a twin, the same
 * body through the jansson path there, and the answers compared byte for
 * byte.  Returns the error; the answer in out. */
static allot_err ingest_text(struct fix *f, const char *provider, const char *body, size_t len,
			     struct buf *out, char *msg, size_t msgsz)
{
	allot_err e = usage_wire_ingest(f->app.ledger, provider, body, len, true, out, msg, msgsz);
	if (f->twin) {
		struct buf b = BUF_INIT;
		char m[256] = "";
		allot_err e2 = usage_wire_ingest(f->twin->app.ledger, provider, body, len, false, &b, m,
						 sizeof m);
		if (e != e2 || (e && strcmp(msg, m)) || (!e && strcmp(buf_str(out), buf_str(&b))))
			fail_msg("text and jansson paths differ on %.300s:\n%d %s %.2000s\n%d %s %.2000s",
				 body, e, e ? msg : "", e ? "" : buf_str(out), e2, e2 ? m : "",
				 e2 ? "" : buf_str(&b));
		buf_release(&b);
	}
	return e;
}

/* Ingests records (stolen) for provider as a POST /v1/usage body (text
 * path, compact or indented); returns the outcomes array. */
static json_t *ingest(struct fix *f, const char *provider, json_t *records,
		      struct ledger_counts *cnt)
{
	static unsigned turn;
	json_t *body = json_pack("{s:o}", "records", records);
	char *text = json_dumps(body, turn++ % 3 ? JSON_COMPACT : JSON_INDENT(1));
	json_decref(body);
	assert_non_null(text);
	struct buf ans = BUF_INIT;
	char msg[256] = "";
	allot_err e = ingest_text(f, provider, text, strlen(text), &ans, msg, sizeof msg);
	free(text);
	if (e)
		fail_msg("usage_wire_ingest: %s", msg);
	json_t *a = json_loadb(ans.data, ans.len, JSON_REJECT_DUPLICATES, NULL);
	buf_release(&ans);
	assert_non_null(a);
	json_t *sum = json_object_get(a, "summary"), *out = json_object_get(a, "results");
	assert_non_null(sum);
	assert_true(json_is_array(out));
	json_incref(out);
	if (cnt) {
		cnt->accepted = (size_t)json_integer_value(json_object_get(sum, "accepted"));
		cnt->duplicate = (size_t)json_integer_value(json_object_get(sum, "duplicate"));
		cnt->conflict = (size_t)json_integer_value(json_object_get(sum, "conflict"));
		cnt->rejected = (size_t)json_integer_value(json_object_get(sum, "rejected"));
	}
	json_decref(a);
	return out;
}

/* One signed record through usage_wire_ingest; returns its outcome (a new ref). */
static json_t *ingest_one(struct fix *f, const char *provider, json_t *rec)
{
	json_t *out = ingest(f, provider, json_pack("[o]", rec), NULL);
	assert_int_equal(json_array_size(out), 1);
	json_t *o = json_incref(json_array_get(out, 0));
	json_decref(out);
	return o;
}

static const char *ostatus(const json_t *o)
{
	return json_string_value(json_object_get(o, "status"));
}

static const char *oreason(const json_t *o)
{
	const char *r = json_string_value(json_object_get(o, "reason"));
	return r ? r : "";
}

static const char *ocharge(const json_t *o)
{
	const char *r = json_string_value(json_object_get(o, "charge"));
	return r ? r : "(none)";
}

/* Exact decimal of micro-credits, written independently of money_format. */
static char *fmt_micro(__int128 v, char out[64])
{
	char tmp[64];
	int neg = v < 0, n = 0;
	unsigned __int128 u = neg ? (unsigned __int128)(-v) : (unsigned __int128)v;
	unsigned __int128 ip = u / 1000000;
	unsigned frac = (unsigned)(u % 1000000);
	do {
		tmp[n++] = (char)('0' + (int)(ip % 10));
		ip /= 10;
	} while (ip);
	size_t k = 0;
	if (neg)
		out[k++] = '-';
	while (n)
		out[k++] = tmp[--n];
	if (frac) {
		char fs[8];
		snprintf(fs, sizeof fs, "%06u", frac);
		int last = 5;
		while (fs[last] == '0')
			last--;
		out[k++] = '.';
		for (int i = 0; i <= last; i++)
			out[k++] = fs[i];
	}
	out[k] = '\0';
	return out;
}

/* Records and net charge in the whole ledger (the store's own report). */
static void ledger_totals(struct fix *f, int64_t *records, int64_t *charge)
{
	struct ledger_filter flt = {0};
	json_t *rows = rowsfx_report(f->app.store, &flt, NULL, 0, false);
	assert_int_equal(json_array_size(rows), 1);
	*records = json_integer_value(json_object_get(json_array_get(rows, 0), "records"));
	*charge = json_integer_value(json_object_get(json_array_get(rows, 0), "charge"));
	json_decref(rows);
}

static int64_t nrecords(struct fix *f)
{
	int64_t n, c;
	ledger_totals(f, &n, &c);
	return n;
}

/* "used" of a level kind for (inst, proj, member) at instant at. */
static int64_t used_at(struct fix *f, const char *inst, const char *proj, const char *member,
		       enum quota_kind kind, int64_t at, int64_t *rollover)
{
	struct active_charter *ac = app_charter_get(&f->app);
	struct quota_level lv[QUOTA_MAX_LEVELS];
	size_t n = 0;
	assert_int_equal(quota_levels(f->app.store, ac->c, inst, proj, member, at, NULL, NULL, lv, &n),
			 ALLOT_OK);
	app_charter_put(&f->app, ac);
	for (size_t i = 0; i < n; i++)
		if (lv[i].kind == kind) {
			if (rollover)
				*rollover = lv[i].rollover;
			return lv[i].used;
		}
	fail_msg("no %s level for %s/%s/%s", quota_kind_name(kind), inst, proj ? proj : "-",
		 member ? member : "-");
	return 0;
}

/* ---- (a) exactness ------------------------------------------------------------ */

/* Who may be charged: institution, project, member ("" = none). */
static const struct who {
	const char *inst, *proj, *member;
} whos[] = {
	{"epfl", "climate", "alice@epfl.ch"}, {"epfl", "climate", "bob@epfl.ch"},
	{"epfl", "climate", "carol@epfl.ch"}, {"epfl", "climate", ""},
	{"epfl", "vision", "dan@epfl.ch"},    {"epfl", "vision", "erin@epfl.ch"},
	{"epfl", "vision", ""},               {"ethz", "robotics", "frank@ethz.ch"},
	{"ethz", "robotics", "gina@ethz.ch"}, {"ethz", "nlp", "hana@ethz.ch"},
	{"ethz", "nlp", ""},
};
#define NWHO (sizeof whos / sizeof whos[0])

/* What is metered, with its rate in micro-credits written out by hand (the
 * charter says 0.031415 etc.), and which provider may report it. */
static const struct variant {
	const char *resource, *cls, *model;
	int64_t rate_micro;
	int provider; /* bit 0: cscs, bit 1: cloud */
	int64_t qty_max;
} variants[] = {
	{"gpu_seconds", "h100", NULL, 31415, 3, 1000000},
	{"gpu_seconds", "a100", NULL, 17000, 3, 1000000},
	{"gpu_seconds", NULL, NULL, 10000, 3, 1000000},
	{"gpu_seconds", "v100", NULL, 10000, 3, 1000000}, /* no class rate: the plain one */
	{"cpu_seconds", NULL, NULL, 125, 1, 100000000},
	{"storage_gb_hours", NULL, NULL, 1234567, 1, 100000},
	{"tokens_in", NULL, "m1", 1, 2, 1000000000000LL},
	{"tokens_out", NULL, "m1", 3, 2, 1000000000},
};
#define NVAR (sizeof variants / sizeof variants[0])
static const char *const providers[] = {"cscs", "cloud"};

struct acc {
	__int128 charge, qty;
	int64_t records;
};

static uint64_t rng_state;
static uint64_t rnd(void)
{
	/* splitmix64: deterministic per seed */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Records end in one of NSLOTS 15-minute buckets spread over the month so
 * far (1,800 of its ~1,880), anywhere inside the bucket, so the day and
 * bucket sums cover many rows. */
#define NSLOTS 1800

static size_t scale(void)
{
	const char *s = getenv("ALLOT_TEST_SCALE");
	if (s && *s) {
		long v = strtol(s, NULL, 10);
		if (v >= 100)
			return (size_t)v;
	}
	return SCALE_DEFAULT;
}

/* A report's project and member keys are qualified: "epfl/climate",
 * "epfl/climate/alice@epfl.ch" ("epfl/climate" for project-level usage). */
static const char *qual_proj(size_t w, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", whos[w].inst, whos[w].proj);
	return buf;
}

static const char *qual_member(size_t w, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s%s%s", whos[w].inst, whos[w].proj, whos[w].member[0] ? "/" : "",
		 whos[w].member);
	return buf;
}

/* Expected sums for one report row: every (who, provider, variant) that the
 * row's group values select. */
static struct acc expect_row(struct acc (*acc)[2][NVAR], const json_t *row)
{
	struct acc e = {0};
	const char *ginst = json_string_value(json_object_get(row, "institution"));
	const char *gproj = json_string_value(json_object_get(row, "project"));
	const char *gmem = json_string_value(json_object_get(row, "member"));
	const char *gprov = json_string_value(json_object_get(row, "provider"));
	const char *gres = json_string_value(json_object_get(row, "resource"));
	const char *gmod = json_string_value(json_object_get(row, "model"));
	for (size_t w = 0; w < NWHO; w++) {
		char qp[160], qm[300];
		if ((ginst && strcmp(ginst, whos[w].inst)) ||
		    (gproj && strcmp(gproj, qual_proj(w, qp, sizeof qp))) ||
		    (gmem && strcmp(gmem, qual_member(w, qm, sizeof qm))))
			continue;
		for (size_t p = 0; p < 2; p++) {
			if (gprov && strcmp(gprov, providers[p]))
				continue;
			for (size_t v = 0; v < NVAR; v++) {
				const char *m = variants[v].model ? variants[v].model : "";
				if ((gres && strcmp(gres, variants[v].resource)) || (gmod && strcmp(gmod, m)))
					continue;
				e.charge += acc[w][p][v].charge;
				e.qty += acc[w][p][v].qty;
				e.records += acc[w][p][v].records;
			}
		}
	}
	return e;
}

static void check_report(struct fix *f, struct acc (*acc)[2][NVAR], const char *const *gb,
			 size_t ng)
{
	struct ledger_filter flt = {0};
	json_t *rows = rowsfx_report(f->app.store, &flt, gb, ng, false);
	int64_t nonempty = 0, seen = 0;
	/* Count the groups that should exist. */
	{
		/* Distinct combinations of the grouped columns among non-empty cells. */
		json_t *keys = json_object();
		for (size_t w = 0; w < NWHO; w++)
			for (size_t p = 0; p < 2; p++)
				for (size_t v = 0; v < NVAR; v++) {
					if (!acc[w][p][v].records)
						continue;
					char k[1024] = "", qp[160], qm[300];
					for (size_t g = 0; g < ng; g++) {
						const char *val =
							!strcmp(gb[g], "institution") ? whos[w].inst
							: !strcmp(gb[g], "project")   ? qual_proj(w, qp, sizeof qp)
							: !strcmp(gb[g], "member")    ? qual_member(w, qm, sizeof qm)
							: !strcmp(gb[g], "provider")  ? providers[p]
							: !strcmp(gb[g], "resource")  ? variants[v].resource
							: variants[v].model ? variants[v].model : "";
						strcat(k, val);
						strcat(k, "|");
					}
					json_object_set_new(keys, k, json_true());
				}
		nonempty = (int64_t)json_object_size(keys);
		json_decref(keys);
	}
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		struct acc e = expect_row(acc, row);
		char a[64], b[64];
		int64_t charge = json_integer_value(json_object_get(row, "charge"));
		int64_t qty = json_integer_value(json_object_get(row, "quantity"));
		int64_t recs = json_integer_value(json_object_get(row, "records"));
		if (e.charge != charge || e.qty != qty || e.records != recs) {
			char *d = json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS);
			fail_msg("group %s: expected charge %s quantity %s records %lld", d,
				 fmt_micro(e.charge, a), fmt_micro(e.qty * 1000000, b),
				 (long long)e.records);
		}
		seen++;
	}
	assert_int_equal(seen, nonempty);
	json_decref(rows);
}

/* Bulk signing: the same Ed25519 signature as ed25519_sign (the scheme is
 * deterministic; checked below), with the key object built once instead of
 * per call, which halves the test's signing time. */
struct fast_signer {
	EVP_PKEY *pk;
};

static void fast_signer_init(struct fast_signer *fs, const struct ed25519_keypair *kp)
{
	fs->pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, kp->seed, ED25519_SEED_LEN);
	assert_non_null(fs->pk);
}

static json_t *fast_sign(const struct fast_signer *fs, json_t *r)
{
	size_t n = 0, sl = ED25519_SIG_LEN;
	char *canon = record_canonical(r, &n);
	uint8_t sig[ED25519_SIG_LEN];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!canon || !ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, fs->pk) != 1 ||
	    EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)canon, n) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	free(canon);
	char s64[100];
	b64_encode(sig, sizeof sig, s64);
	json_object_set_new(r, "sig", json_string(s64));
	return r;
}

/* The generator runs in its own thread, one batch ahead of ingestion. */
struct gen_batch {
	json_t *records;
	int provider;
	size_t n;
	__int128 want[BATCH];
};

struct gen {
	struct fix *f;
	size_t total;
	struct acc (*acc)[2][NVAR];
	__int128 *bucket;
	int64_t month_start, span, bucket0;
	struct fast_signer signer[2];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct gen_batch *ready; /* one slot */
	bool done;
	char error[512];         /* the first failure of a consumer */
};

static void *gen_main(void *arg)
{
	struct gen *g = arg;
	size_t done = 0, batchno = 0;
	int64_t seq[2] = {0, 0};
	while (done < g->total) {
		struct gen_batch *b = calloc(1, sizeof *b);
		if (!b)
			abort();
		b->n = g->total - done < BATCH ? g->total - done : BATCH;
		int p = b->provider = (int)(rnd() % 2);
		b->records = json_array();
		for (size_t k = 0; k < b->n; k++) {
			size_t w = rnd() % NWHO, v;
			do
				v = rnd() % NVAR;
			while (!(variants[v].provider & (1 << p)));
			/* quantities over every order of magnitude up to the variant's max */
			int64_t mag = 1;
			int64_t digits = (int64_t)(rnd() % 13);
			for (int64_t d = 0; d < digits && mag <= variants[v].qty_max / 10; d++)
				mag *= 10;
			int64_t q = 1 + (int64_t)(rnd() % (uint64_t)mag);
			/* one of NSLOTS buckets (see there) */
			int64_t slot = (int64_t)(rnd() % NSLOTS) * (g->span / NSLOTS / LEDGER_BUCKET_US);
			int64_t end = g->month_start + slot * LEDGER_BUCKET_US +
				      (int64_t)(rnd() % (uint64_t)LEDGER_BUCKET_US);
			int64_t start = end - (int64_t)(rnd() % (uint64_t)(3600 * US_PER_SEC * 48));
			char id[64];
			snprintf(id, sizeof id, "x-%zu-%zu", batchno, k);
			struct rspec s = {.id = id, .provider = providers[p], .inst = whos[w].inst,
					  .proj = whos[w].proj,
					  .member = whos[w].member[0] ? whos[w].member : NULL,
					  .resource = variants[v].resource, .cls = variants[v].cls,
					  .model = variants[v].model, .qty = q, .start = start, .end = end,
					  .seq = ++seq[p]};
			json_array_append_new(b->records, fast_sign(&g->signer[p], mkrec(&s)));
			__int128 c = (__int128)q * variants[v].rate_micro;
			b->want[k] = c;
			g->acc[w][p][v].charge += c;
			g->acc[w][p][v].qty += q;
			g->acc[w][p][v].records++;
			g->bucket[end / LEDGER_BUCKET_US - g->bucket0] += c;
		}
		pthread_mutex_lock(&g->mu);
		while (g->ready)
			pthread_cond_wait(&g->cv, &g->mu);
		g->ready = b;
		pthread_cond_broadcast(&g->cv);
		pthread_mutex_unlock(&g->mu);
		done += b->n;
		batchno++;
	}
	pthread_mutex_lock(&g->mu);
	g->done = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

static struct gen_batch *gen_next(struct gen *g)
{
	pthread_mutex_lock(&g->mu);
	while (!g->ready && !g->done)
		pthread_cond_wait(&g->cv, &g->mu);
	struct gen_batch *b = g->ready;
	g->ready = NULL;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return b;
}

/* Batches are ingested by NCONSUMERS threads at once, as concurrent requests
 * are (verification in parallel, booking in group commits), while the
 * generator signs the next one.  100,000 records: ~25 s with 2 consumers,
 * ~31 s with 1 on the 2-core machine when it is quiet (under heavy load
 * from other jobs 1 was faster).  cmocka's assertions may only fail on the
 * test's own thread: consumers record the first failure and go on draining. */
#define NCONSUMERS 2

static void consume_fail(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void consume_fail(struct gen *g, const char *fmt, ...)
{
	pthread_mutex_lock(&g->mu);
	if (!g->error[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(g->error, sizeof g->error, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&g->mu);
}

static void *consume_main(void *arg)
{
	struct gen *g = arg;
	struct gen_batch *b;
	while ((b = gen_next(g))) {
		json_t *out = NULL;
		struct ledger_counts cnt;
		char msg[256] = "";
		allot_err e;
		static atomic_uint turn;
		if (atomic_fetch_add(&turn, 1) % 2) {
			e = ingest_json(g->f->app.ledger, providers[b->provider], b->records, &out, &cnt,
					msg, sizeof msg);
		} else {
			/* half the batches as POST /v1/usage bodies, the text path */
			json_t *body = json_pack("{s:O}", "records", b->records);
			char *text = json_dumps(body, JSON_COMPACT);
			struct buf ans = BUF_INIT;
			e = usage_wire_ingest(g->f->app.ledger, providers[b->provider], text, strlen(text),
					      true, &ans, msg, sizeof msg);
			json_t *a = e ? NULL : json_loadb(ans.data, ans.len, 0, NULL);
			out = json_incref(json_object_get(a, "results"));
			if (!e && json_array_size(out) != b->n)
				consume_fail(g, "answer: %.200s", buf_str(&ans));
			json_decref(a);
			buf_release(&ans);
			free(text);
			json_decref(body);
		}
		json_decref(b->records);
		if (e) {
			consume_fail(g, "ledger_ingest: %s", msg);
		} else {
			for (size_t k = 0; k < b->n; k++) {
				char want[64];
				const json_t *o = json_array_get(out, k);
				if (strcmp(ostatus(o), "accepted")) {
					consume_fail(g, "record %zu: %s: %s", k, ostatus(o), oreason(o));
					break;
				}
				if (strcmp(ocharge(o), fmt_micro(b->want[k], want))) {
					consume_fail(g, "record %zu: charge %s, expected %s", k, ocharge(o), want);
					break;
				}
				if (json_is_true(json_object_get(o, "late"))) {
					consume_fail(g, "record %zu: late", k);
					break;
				}
			}
		}
		json_decref(out);
		free(b);
	}
	return NULL;
}

static void test_exactness(void **state)
{
	struct fix *f = *state;
	size_t total = scale();
	static struct acc acc[NWHO][2][NVAR];
	memset(acc, 0, sizeof acc);
	rng_state = 20261220;
	/* All records end in the current month (December in Zurich), so none is
	 * late and every one is in this period's "used". */
	int64_t month_start = T("2026-11-30T23:00:00Z");
	int64_t span = g_now - month_start;
	/* 15-minute buckets since month_start, for the by_bucket report. */
	size_t nb = (size_t)(span / LEDGER_BUCKET_US) + 2;
	__int128 *bucket = calloc(nb, sizeof *bucket);
	assert_non_null(bucket);
	struct gen g = {.f = f, .total = total, .acc = acc, .bucket = bucket,
			.month_start = month_start, .span = span,
			.bucket0 = month_start / LEDGER_BUCKET_US};
	int64_t month_bucket0 = g.bucket0;
	fast_signer_init(&g.signer[0], &f->cscs);
	fast_signer_init(&g.signer[1], &f->cloud);
	/* the fast signer signs exactly as ed25519_sign */
	{
		struct rspec s = {.id = "check", .cls = "h100", .qty = 1, .seq = -1};
		json_t *a = sign(mkrec(&s), &f->cscs), *b = fast_sign(&g.signer[0], mkrec(&s));
		assert_true(json_equal(a, b));
		json_decref(a);
		json_decref(b);
	}
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, gen_main, &g), 0);
	print_message("exactness: %zu random records in batches of %d, %d ingesting threads\n",
		      total, BATCH, NCONSUMERS);
	pthread_t cth[NCONSUMERS];
	for (int t = 0; t < NCONSUMERS; t++)
		assert_int_equal(pthread_create(&cth[t], NULL, consume_main, &g), 0);
	for (int t = 0; t < NCONSUMERS; t++)
		pthread_join(cth[t], NULL);
	if (g.error[0])
		fail_msg("%s", g.error);
	pthread_join(th, NULL);
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
	EVP_PKEY_free(g.signer[0].pk);
	EVP_PKEY_free(g.signer[1].pk);

	/* Every grouping the store offers. */
	static const char *const g_all[] = {"institution", "project", "member", "provider",
					    "resource", "model"};
	static const char *const g_ip[] = {"institution", "project"};
	static const char *const g_ipm[] = {"institution", "project", "member"};
	static const char *const g_ipr[] = {"institution", "project", "resource"};
	static const char *const g_prov[] = {"provider"};
	static const char *const g_res[] = {"resource"};
	static const char *const g_model[] = {"model"};
	static const char *const g_inst[] = {"institution"};
	check_report(f, acc, NULL, 0);
	check_report(f, acc, g_inst, 1);
	check_report(f, acc, g_ip, 2);
	check_report(f, acc, g_ipm, 3);
	check_report(f, acc, g_ipr, 3);
	check_report(f, acc, g_prov, 1);
	check_report(f, acc, g_res, 1);
	check_report(f, acc, g_model, 1);
	check_report(f, acc, g_all, 6);
	int ncases = 9;

	/* Per 15-minute bucket (what day and month reports fold). */
	struct ledger_filter flt = {0};
	json_t *rows = rowsfx_report(f->app.store, &flt, NULL, 0, true);
	size_t i;
	json_t *row;
	size_t nonempty = 0;
	for (size_t k = 0; k < nb; k++)
		nonempty += bucket[k] != 0;
	json_array_foreach(rows, i, row) {
		int64_t k = json_integer_value(json_object_get(row, "bucket_us")) / LEDGER_BUCKET_US -
			    month_bucket0;
		assert_true(k >= 0 && (size_t)k < nb);
		char x[64];
		if (bucket[k] != json_integer_value(json_object_get(row, "charge")))
			fail_msg("bucket %lld: expected %s", (long long)k, fmt_micro(bucket[k], x));
	}
	assert_int_equal(json_array_size(rows), nonempty);
	json_decref(rows);
	free(bucket);
	ncases++;

	/* Every quota level's "used" for the current period. */
	__int128 pool = 0;
	for (size_t w = 0; w < NWHO; w++) {
		__int128 inst = 0, proj = 0, mem = 0;
		for (size_t w2 = 0; w2 < NWHO; w2++)
			for (size_t p = 0; p < 2; p++)
				for (size_t v = 0; v < NVAR; v++) {
					__int128 c = acc[w2][p][v].charge;
					if (strcmp(whos[w2].inst, whos[w].inst))
						continue;
					inst += c;
					if (strcmp(whos[w2].proj, whos[w].proj))
						continue;
					proj += c;
					if (!strcmp(whos[w2].member, whos[w].member))
						mem += c;
				}
		const char *m = whos[w].member[0] ? whos[w].member : NULL;
		assert_true(used_at(f, whos[w].inst, whos[w].proj, m, QUOTA_PROJECT, g_now, NULL) == proj);
		assert_true(used_at(f, whos[w].inst, NULL, NULL, QUOTA_INSTITUTION, g_now, NULL) == inst);
		if (m && !strcmp(whos[w].proj, "climate"))
			assert_true(used_at(f, whos[w].inst, whos[w].proj, m, QUOTA_MEMBER, g_now, NULL) == mem);
		ncases += 3;
	}
	for (size_t w = 0; w < NWHO; w++)
		for (size_t p = 0; p < 2; p++)
			for (size_t v = 0; v < NVAR; v++)
				pool += acc[w][p][v].charge;
	assert_true(used_at(f, "epfl", NULL, NULL, QUOTA_POOL, g_now, NULL) == pool);
	/* Nothing in the previous month. */
	assert_int_equal(used_at(f, "epfl", NULL, NULL, QUOTA_POOL, T("2026-11-15T00:00:00Z"), NULL), 0);
	int64_t n, c;
	ledger_totals(f, &n, &c);
	assert_int_equal(n, (int64_t)total);
	char x[64];
	print_message("exactness: %zu records, total %s credits, %d aggregate checks\n", total,
		      fmt_micro(pool, x), ncases + 2);
}

/* ---- (b) idempotency ------------------------------------------------------------ */

static void test_idempotency(void **state)
{
	struct fix *f = *state;
	json_t *batch = json_array();
	for (int i = 0; i < 5; i++) {
		char id[32];
		snprintf(id, sizeof id, "job-%d", i);
		struct rspec s = {.id = id, .member = "alice@epfl.ch", .cls = "h100",
				  .qty = 1000 * (i + 1), .seq = -1};
		json_array_append_new(batch, sign(mkrec(&s), &f->cscs));
	}
	/* 1000+2000+...+5000 = 15000 s at 0.031415 = 471.225 credits */
	for (int round = 0; round < 3; round++) {
		struct ledger_counts c;
		json_t *out = ingest(f, "cscs", json_deep_copy(batch), &c);
		assert_int_equal(c.accepted, round == 0 ? 5 : 0);
		assert_int_equal(c.duplicate, round == 0 ? 0 : 5);
		assert_string_equal(ocharge(json_array_get(out, 4)), "157.075");
		assert_string_equal(ostatus(json_array_get(out, 4)), round ? "duplicate" : "accepted");
		json_decref(out);
		assert_int_equal(nrecords(f), 5);
		assert_int_equal(used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT, g_now, NULL),
				 471225000);
	}
	/* The same record twice in one batch: the second is a duplicate. */
	struct rspec s = {.id = "twice", .cls = "a100", .qty = 10, .seq = -1};
	json_t *r = sign(mkrec(&s), &f->cscs);
	struct ledger_counts c;
	json_decref(ingest(f, "cscs", json_pack("[O,O]", r, r), &c));
	json_decref(r);
	assert_int_equal(c.accepted, 1);
	assert_int_equal(c.duplicate, 1);
	assert_int_equal(nrecords(f), 6);

	/* Same id, other content: a conflict, and nothing changes. */
	static const char *const changes[] = {
		"{\"quantity\":1001}", "{\"member\":\"bob@epfl.ch\"}", "{\"class\":\"a100\"}",
		"{\"seq\":7}", "{\"member\":null}", "{\"end\":\"2026-12-20T11:59:59Z\"}"};
	for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
		json_t *x = json_deep_copy(json_array_get(batch, 0));
		json_t *p = json_loads(changes[i], 0, NULL);
		assert_non_null(p);
		json_object_update(x, p);
		json_decref(p);
		json_t *o = ingest_one(f, "cscs", sign(x, &f->cscs));
		assert_string_equal(ostatus(o), "conflict");
		assert_non_null(strstr(oreason(o), "job-0"));
		json_decref(o);
	}
	assert_int_equal(nrecords(f), 6);
	assert_int_equal(used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT, g_now, NULL),
			 471225000 + 170000);
	/* The same record_id from another provider is a different record. */
	struct rspec s2 = {.id = "job-0", .provider = "cloud", .cls = "h100", .qty = 1000, .seq = -1};
	json_t *o = ingest_one(f, "cloud", sign(mkrec(&s2), &f->cloud));
	assert_string_equal(ostatus(o), "accepted");
	json_decref(o);
	assert_int_equal(nrecords(f), 7);
	/* A larger batch through both paths: repeats and conflicts of records
	 * earlier in the same batch, some rejected; the answers are the same. */
	{
		json_t *big = json_array();
		for (int i = 0; i < 1300; i++) {
			char id[32];
			int k = i >= 900 && i < 920 ? i - 900          /* repeats */
				: i >= 920 && i < 930 ? i - 920 + 600  /* conflicts */
				: i;
			snprintf(id, sizeof id, "part-%d", k);
			struct rspec ps = {.id = id, .member = k % 7 ? "bob@epfl.ch" : NULL,
					   .cls = k % 3 ? "h100" : "a100", .qty = 10 + k + (i >= 920 && i < 930),
					   .seq = k};
			json_t *rec = sign(mkrec(&ps), &f->cscs);
			if (i % 97 == 5)
				json_object_set_new(rec, "quantity", json_integer(0)); /* rejected */
			json_array_append_new(big, rec);
		}
		struct ledger_counts pc;
		json_decref(ingest(f, "cscs", big, &pc));
		assert_int_equal(pc.duplicate, 20 - 1);
		assert_int_equal(pc.conflict, 10);
		assert_true(pc.rejected >= 13);
	}
	/* A duplicate after a restart of the app returns the original outcome. */
	app_close(&f->app);
	memset(&f->app, 0, sizeof f->app);
	f->app.cfg.db = f->db;
	f->app.cfg.charter = f->charter;
	f->app.cfg.keys = f->keys;
	f->app.cfg.deployment = "test";
	f->app.cfg.no_background = true;
	char msg[256];
	assert_int_equal(app_open(&f->app, msg, sizeof msg), ALLOT_OK);
	json_t *out = ingest(f, "cscs", json_deep_copy(batch), &c);
	assert_int_equal(c.duplicate, 5);
	assert_string_equal(ocharge(json_array_get(out, 0)), "31.415");
	json_decref(out);
	json_decref(batch);
}

/* ---- (c) signatures ---------------------------------------------------------------- */

enum sigcase { SIG_ROGUE, SIG_OTHER_PROVIDER, SIG_FIELD_CHANGED, SIG_BIT_FLIPPED, SIG_MISSING,
	       SIG_EMPTY, SIG_SHORT, SIG_NOT_B64, SIG_FOR_OTHER_PROVIDER, SIG_WRONG_TYPE };

static void test_signatures(void **state)
{
	struct fix *f = *state;
	static const struct {
		enum sigcase c;
		const char *what, *reason;
	} cases[] = {
		{SIG_ROGUE, "a key no provider has", "signature does not verify"},
		{SIG_OTHER_PROVIDER, "another provider's key", "signature does not verify"},
		{SIG_FIELD_CHANGED, "a field changed after signing", "signature does not verify"},
		{SIG_BIT_FLIPPED, "one bit of the signature flipped", "signature does not verify"},
		{SIG_MISSING, "no sig", "missing field \"sig\""},
		{SIG_EMPTY, "empty sig", "\"sig\""},
		{SIG_SHORT, "a 63-byte sig", "\"sig\""},
		{SIG_NOT_B64, "sig not base64", "\"sig\""},
		{SIG_FOR_OTHER_PROVIDER, "a record for another provider", "belongs to provider"},
		{SIG_WRONG_TYPE, "sig a number", "\"sig\""},
	};
	int64_t before_n = nrecords(f);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char id[32];
		snprintf(id, sizeof id, "sig-%zu", i);
		struct rspec s = {.id = id, .cls = "h100", .qty = 100, .seq = -1};
		json_t *r = mkrec(&s);
		const char *as = "cscs";
		switch (cases[i].c) {
		case SIG_ROGUE: sign(r, &f->rogue); break;
		case SIG_OTHER_PROVIDER: sign(r, &f->cloud); break;
		case SIG_FIELD_CHANGED:
			sign(r, &f->cscs);
			json_object_set_new(r, "quantity", json_integer(101));
			break;
		case SIG_BIT_FLIPPED: {
			sign(r, &f->cscs);
			uint8_t raw[64];
			size_t n;
			const char *s64 = json_string_value(json_object_get(r, "sig"));
			assert_int_equal(b64_decode(s64, strlen(s64), raw, sizeof raw, &n), ALLOT_OK);
			raw[17] ^= 0x08;
			char o[100];
			b64_encode(raw, 64, o);
			json_object_set_new(r, "sig", json_string(o));
			break;
		}
		case SIG_MISSING: break;
		case SIG_EMPTY: json_object_set_new(r, "sig", json_string("")); break;
		case SIG_SHORT: {
			uint8_t raw[63] = {1};
			char o[100];
			b64_encode(raw, sizeof raw, o);
			json_object_set_new(r, "sig", json_string(o));
			break;
		}
		case SIG_NOT_B64: json_object_set_new(r, "sig", json_string("!!!!")); break;
		case SIG_FOR_OTHER_PROVIDER:
			/* signed correctly by cscs, but submitted with cloud's credential */
			sign(r, &f->cscs);
			as = "cloud";
			break;
		case SIG_WRONG_TYPE: json_object_set_new(r, "sig", json_integer(5)); break;
		}
		json_t *o = ingest_one(f, as, r);
		if (strcmp(ostatus(o), "rejected") || !strstr(oreason(o), cases[i].reason))
			fail_msg("%s: %s: %s (expected a reason with %s)", cases[i].what, ostatus(o),
				 oreason(o), cases[i].reason);
		json_decref(o);
		assert_int_equal(nrecords(f), before_n);
	}
	/* A good record next to bad ones in one batch: only it is written. */
	struct rspec good = {.id = "sig-good", .cls = "h100", .qty = 100, .seq = -1};
	struct rspec badr = {.id = "sig-bad", .cls = "h100", .qty = 100, .seq = -1};
	struct ledger_counts c;
	json_decref(ingest(f, "cscs", json_pack("[o,o]", sign(mkrec(&badr), &f->rogue),
						sign(mkrec(&good), &f->cscs)), &c));
	assert_int_equal(c.accepted, 1);
	assert_int_equal(c.rejected, 1);
	assert_int_equal(nrecords(f), before_n + 1);
	assert_int_equal(used_at(f, "epfl", NULL, NULL, QUOTA_POOL, g_now, NULL), 3141500);
	/* cloud's own key works for cloud. */
	struct rspec cl = {.id = "sig-cloud", .provider = "cloud", .cls = "h100", .qty = 100, .seq = -1};
	json_t *o = ingest_one(f, "cloud", sign(mkrec(&cl), &f->cloud));
	assert_string_equal(ostatus(o), "accepted");
	json_decref(o);
	print_message("signatures: %zu rejection cases\n", sizeof cases / sizeof cases[0]);
}

/* ---- (d) bad input ----------------------------------------------------------------------- */

static void test_bad_input(void **state)
{
	struct fix *f = *state;
	/* Each: fields merged over a good record (JSON), a field to delete, and
	 * a substring the reason must contain (naming the field). */
	static const struct {
		const char *patch, *del, *reason;
	} cases[] = {
		{NULL, "record_id", "missing field \"record_id\""},
		{"{\"record_id\":\"\"}", NULL, "\"record_id\""},
		{"{\"record_id\":\"has space\"}", NULL, "\"record_id\""},
		{"{\"record_id\":\"a/b\"}", NULL, "\"record_id\""},
		{"{\"record_id\":5}", NULL, "field \"record_id\" must be a string"},
		{"{\"quantity\":1e3}", NULL, "field \"quantity\" must be an integer"},
		{NULL, "provider", "missing field \"provider\""},
		{"{\"provider\":7}", NULL, "\"provider\""},
		{NULL, "institution", "missing field \"institution\""},
		{"{\"institution\":\"mit\"}", NULL, "unknown institution \"mit\""},
		{"{\"institution\":[1]}", NULL, "field \"institution\" must be a string"},
		{NULL, "project", "missing field \"project\""},
		{"{\"project\":\"nope\"}", NULL, "unknown project \"nope\""},
		{"{\"member\":\"eve@epfl.ch\"}", NULL, "\"eve@epfl.ch\" is not a member"},
		{"{\"member\":\"hana@ethz.ch\"}", NULL, "is not a member"},
		{"{\"member\":true}", NULL, "field \"member\" must be a string"},
		{NULL, "resource", "missing field \"resource\""},
		{"{\"resource\":\"tpu_seconds\"}", NULL, "resource \"tpu_seconds\""},
		{"{\"resource\":\"tokens_in\"}", NULL, "resource \"tokens_in\""},
		{"{\"class\":\"h100 x\"}", NULL, "\"class\""},
		{"{\"model\":\"ghost\"}", NULL, "unknown model \"ghost\""},
		{NULL, "quantity", "missing field \"quantity\""},
		{"{\"quantity\":0}", NULL, "field \"quantity\" must be between"},
		{"{\"quantity\":-5}", NULL, "field \"quantity\" must be between"},
		{"{\"quantity\":1.5}", NULL, "field \"quantity\" must be an integer"},
		{"{\"quantity\":\"10\"}", NULL, "field \"quantity\" must be an integer"},
		{"{\"quantity\":1000000000001}", NULL, "field \"quantity\" must be between"},
		{NULL, "start", "missing field \"start\""},
		{"{\"start\":\"yesterday\"}", NULL, "field \"start\" must be an RFC 3339"},
		{NULL, "end", "missing field \"end\""},
		{"{\"end\":\"2026-13-01T00:00:00Z\"}", NULL, "field \"end\" must be an RFC 3339"},
		{"{\"start\":\"2026-12-20T12:00:00Z\",\"end\":\"2026-12-20T11:00:00Z\"}", NULL, "\"end\" is before \"start\""},
		{"{\"start\":\"2026-12-20T12:00:00Z\",\"end\":\"2026-12-20T12:05:01Z\"}", NULL, "\"end\" is more than 5 minutes in the future"},
		{"{\"start\":\"2025-06-01T00:00:00Z\",\"end\":\"2025-06-01T01:00:00Z\"}", NULL, "no charter was in force at \"end\""},
		{"{\"kind\":\"refund\"}", NULL, "field \"kind\" must be"},
		{"{\"kind\":\"adjustment\",\"supersedes\":\"x\"}", NULL, "\"adjustment\""},
		{"{\"kind\":\"adjustment\",\"adjustment\":\"bonus\",\"supersedes\":\"x\"}", NULL, "field \"adjustment\" must be"},
		{"{\"adjustment\":\"credit\"}", NULL, "\"adjustment\" is only allowed"},
		{"{\"supersedes\":\"x\"}", NULL, "\"supersedes\" is only allowed"},
		{"{\"kind\":\"void\"}", NULL, "\"supersedes\""},
		{"{\"seq\":-1}", NULL, "field \"seq\" must be between"},
		{"{\"seq\":\"1\"}", NULL, "field \"seq\" must be an integer"},
		{"{\"colour\":\"red\"}", NULL, "unknown field \"colour\""},
		{"{\"member\":\"al\\u0001ice\"}", NULL, "control characters"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char id[32];
		snprintf(id, sizeof id, "bad-%zu", i);
		struct rspec s = {.id = id, .member = "alice@epfl.ch", .cls = "h100", .qty = 100,
				  .seq = -1};
		json_t *r = mkrec(&s);
		if (cases[i].patch) {
			json_error_t je;
			json_t *p = json_loads(cases[i].patch, 0, &je);
			if (!p)
				fail_msg("case %zu: bad patch: %s", i, je.text);
			json_object_update(r, p);
			json_decref(p);
		}
		if (cases[i].del)
			json_object_del(r, cases[i].del);
		json_t *o = ingest_one(f, "cscs", sign(r, &f->cscs));
		if (strcmp(ostatus(o), "rejected") || !strstr(oreason(o), cases[i].reason))
			fail_msg("case %zu (%s%s%s): %s: \"%s\" (expected a reason with %s)", i,
				 cases[i].patch ? cases[i].patch : "", cases[i].del ? "-" : "",
				 cases[i].del ? cases[i].del : "", ostatus(o), oreason(o), cases[i].reason);
		json_decref(o);
		assert_int_equal(nrecords(f), 0);
	}
	/* A record_id of 129 bytes (the limit is 128). */
	{
		char id[130];
		memset(id, 'r', 129);
		id[129] = '\0';
		struct rspec s = {.id = id, .cls = "h100", .qty = 1, .seq = -1};
		json_t *o = ingest_one(f, "cscs", sign(mkrec(&s), &f->cscs));
		if (strcmp(ostatus(o), "rejected") || !strstr(oreason(o), "field \"record_id\" must be 1..128"))
			fail_msg("long record_id: %s: %s", ostatus(o), oreason(o));
		json_decref(o);
		id[128] = '\0';
		o = ingest_one(f, "cscs", sign(mkrec(&s), &f->cscs));
		assert_string_equal(ostatus(o), "accepted");
		json_decref(o);
		assert_int_equal(nrecords(f), 1);
	}
	/* A resource without a rate for this model and class (cloud may report
	 * tokens_in, but only m1's tokens have a rate). */
	struct rspec nr = {.id = "norate", .provider = "cloud", .resource = "tokens_in", .qty = 5,
			   .seq = -1};
	json_t *o = ingest_one(f, "cloud", sign(mkrec(&nr), &f->cloud));
	if (strcmp(ostatus(o), "rejected") || !strstr(oreason(o), "no rate for resource \"tokens_in\""))
		fail_msg("no rate: %s: %s", ostatus(o), oreason(o));
	json_decref(o);
	assert_int_equal(nrecords(f), 1);
	/* The good record itself is accepted (the table is not rejecting everything). */
	struct rspec s = {.id = "good", .member = "alice@epfl.ch", .cls = "h100", .qty = 100, .seq = -1};
	o = ingest_one(f, "cscs", sign(mkrec(&s), &f->cscs));
	assert_string_equal(ostatus(o), "accepted");
	json_decref(o);
	assert_int_equal(nrecords(f), 2);
	/* Exactly at the 5-minute bound is accepted. */
	struct rspec s5 = {.id = "edge", .cls = "h100", .qty = 1, .seq = -1,
			   .end = g_now + 300 * US_PER_SEC};
	o = ingest_one(f, "cscs", sign(mkrec(&s5), &f->cscs));
	assert_string_equal(ostatus(o), "accepted");
	json_decref(o);
	/* Batch-level errors. */
	json_t *out = NULL;
	struct ledger_counts c;
	char msg[256];
	json_t *empty = json_array(), *notarr = json_object(), *big = json_array();
	assert_int_equal(ingest_json(f->app.ledger, "cscs", empty, &out, &c, msg, sizeof msg),
			 ALLOT_E_INVALID);
	assert_int_equal(ingest_json(f->app.ledger, "cscs", notarr, &out, &c, msg, sizeof msg),
			 ALLOT_E_INVALID);
	for (int i = 0; i <= LEDGER_BATCH_MAX; i++)
		json_array_append_new(big, json_integer(i));
	assert_int_equal(ingest_json(f->app.ledger, "cscs", big, &out, &c, msg, sizeof msg),
			 ALLOT_E_INVALID);
	json_decref(empty);
	json_decref(notarr);
	json_decref(big);
	/* The ledger itself refuses an empty or oversized batch of items. */
	struct ledger_item one[1] = {{.o = LEDGER_OUT_ACCEPTED}};
	assert_int_equal(ledger_ingest(f->app.ledger, "cscs", one, 0, msg, sizeof msg),
			 ALLOT_E_INVALID);
	assert_int_equal(ledger_ingest(f->app.ledger, "cscs", one, LEDGER_BATCH_MAX + 1, msg,
				       sizeof msg), ALLOT_E_INVALID);
	/* Bodies the text path leaves to jansson, or reads itself: the same
	 * answer or error either way (ingest_text compares with the twin). */
	{
		struct rspec gs = {.id = "body-ok", .cls = "h100", .qty = 3, .seq = 9};
		json_t *g = sign(mkrec(&gs), &f->cscs);
		char *rec = json_dumps(g, JSON_COMPACT);
		json_decref(g);
		char *many = malloc((size_t)(LEDGER_BATCH_MAX + 1) * 4 + 64);
		assert_non_null(many);
		size_t bl = (size_t)sprintf(many, "{\"records\":[");
		for (int i = 0; i <= LEDGER_BATCH_MAX; i++)
			bl += (size_t)sprintf(many + bl, "%s{}", i ? "," : "");
		bl += (size_t)sprintf(many + bl, "]}");
		const char *const fmts[] = {
			"", "{", "[]", "{}", "{\"records\":[]}", "{\"records\":{}}", "{\"records\":7}",
			"{\"records\":[%s]", "{\"records\":[%s,]}", "{\"records\":[%s]} x",
			"{\"records\":[%s],\"extra\":1}", "{\"extra\":1,\"records\":[%s]}",
			"{\"records\":[%s],\"records\":[%s]}", "{\"records\":[%s %s]}",
			"{\"records\":[1,\"x\",null,[],%s]}", "{\"records\":[{\"a\":1,\"a\":2}]}",
			"{\"records\":[{\"quantity\":1,\"quantity\":2}]}",
			"{\"records\":[{\"quantity\":007}]}", "{\"records\":[{\"quantity\":-0}]}",
			"{\"records\":[{\"quantity\":12345678901234567890123}]}",
			"{\"records\":[{\"colour\":\"red\",\"colour\":\"blue\"}]}",
			"{\"records\":[{\"colour\":\"red\",\"size\":true}]}",
			"{\"records\":[{\"record_id\":\"caf\u00e9\"}]}", "{\"records\":[{\"record_id\":\"\xff\"}]}",
			"\xef\xbb\xbf{\"records\":[%s]}", " \t\r\n{ \"records\" : [ %s ] } \n",
			"{\"records\":[%s,%s,{}]}", "{\"records\":[{\"seq\":1.0}]}",
			"{\"records\":[{\"seq\":1e2}]}", "{\"records\":[{\"seq\":-}]}",
			"{\"records\":[{\"seq\":tru}]}", "{\"records\":[{\"seq\":nul}]}",
			"{\"records\":[{\"seq\" 1}]}", "{\"records\":[{,}]}", "{\"records\":[{}]}",
		};
		for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
			char body[4096];
			int n = snprintf(body, sizeof body, fmts[i], rec, rec);
			assert_true(n >= 0 && (size_t)n < sizeof body);
			struct buf ans = BUF_INIT;
			char m[256] = "";
			(void)ingest_text(f, "cscs", body, (size_t)n, &ans, m, sizeof m);
			buf_release(&ans);
		}
		/* a NUL byte inside, and more records than allowed */
		char nul[] = "{\"records\":[{\"record_id\":\"a\0b\"}]}";
		struct buf ans = BUF_INIT;
		char m[256] = "";
		assert_int_equal(ingest_text(f, "cscs", nul, sizeof nul - 1, &ans, m, sizeof m),
				 ALLOT_E_INVALID);
		assert_int_equal(ingest_text(f, "cscs", many, bl, &ans, m, sizeof m), ALLOT_E_INVALID);
		assert_non_null(strstr(m, "1..10000"));
		buf_release(&ans);
		free(many);
		free(rec);
	}
	/* A non-object in a batch is rejected on its own. */
	json_t *mixed = json_pack("[i,s]", 1, "x");
	out = ingest(f, "cscs", mixed, &c);
	assert_int_equal(c.rejected, 2);
	assert_non_null(strstr(oreason(json_array_get(out, 0)), "JSON object"));
	json_decref(out);
	assert_int_equal(nrecords(f), 4); /* with "body-ok" */
	print_message("bad input: %zu field cases\n", sizeof cases / sizeof cases[0]);
}

/* ---- (e) late records ---------------------------------------------------------------------- */

static void test_late(void **state)
{
	struct fix *f = *state;
	/* November in Zurich: [2026-10-31T23:00Z, 2026-11-30T23:00Z); grace 3 days,
	 * so November records are late from 2026-12-03T23:00Z on. */
	static const struct {
		const char *now, *end;
		bool late;
		const char *booked_month; /* an instant in the month charged */
	} cases[] = {
		{"2026-12-02T10:00:00Z", "2026-11-20T10:00:00Z", false, "2026-11-15T00:00:00Z"},
		{"2026-12-03T22:59:59.999999Z", "2026-11-30T22:59:59Z", false, "2026-11-15T00:00:00Z"},
		{"2026-12-03T23:00:00Z", "2026-11-30T22:59:59Z", true, "2026-12-15T00:00:00Z"},
		{"2026-12-05T12:00:00Z", "2026-11-20T10:00:00Z", true, "2026-12-15T00:00:00Z"},
		{"2026-12-05T12:00:00Z", "2026-11-30T23:00:00Z", false, "2026-12-15T00:00:00Z"},
		{"2027-01-10T12:00:00Z", "2026-10-05T00:00:00Z", true, "2027-01-15T00:00:00Z"},
		{"2027-01-02T12:00:00Z", "2026-12-31T22:00:00Z", false, "2026-12-15T00:00:00Z"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		g_now = T(cases[i].now);
		int64_t at = T(cases[i].booked_month);
		int64_t before = used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT, at, NULL);
		char id[32];
		snprintf(id, sizeof id, "late-%zu", i);
		struct rspec s = {.id = id, .cls = "a100", .qty = 1000, .seq = -1,
				  .end = T(cases[i].end)};
		json_t *o = ingest_one(f, "cscs", sign(mkrec(&s), &f->cscs));
		if (strcmp(ostatus(o), "accepted"))
			fail_msg("case %zu: %s: %s", i, ostatus(o), oreason(o));
		if (json_is_true(json_object_get(o, "late")) != cases[i].late)
			fail_msg("case %zu: late is %d, expected %d", i,
				 json_is_true(json_object_get(o, "late")), cases[i].late);
		json_decref(o);
		/* 1000 s at 0.017 = 17 credits, in the month where it is booked */
		assert_int_equal(used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT, at, NULL),
				 before + 17000000);
		/* and the listing shows the booking instant */
		struct ledger_filter flt = {.provider = "cscs", .limit = 1000};
		json_t *rows = rowsfx_list(f->app.store, &flt);
		json_t *last = json_array_get(rows, json_array_size(rows) - 1);
		int64_t book = json_integer_value(json_object_get(last, "book_us"));
		assert_int_equal(book, cases[i].late ? g_now : T(cases[i].end));
		assert_int_equal(json_integer_value(json_object_get(last, "late")), cases[i].late);
		json_decref(rows);
	}
	/* The late record of October charged nothing to October. */
	assert_int_equal(used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT,
				 T("2026-10-15T00:00:00Z"), NULL), 0);
	/* A duplicate of a late record keeps its original outcome. */
	g_now = T("2027-02-10T00:00:00Z");
	struct rspec s = {.id = "late-3", .cls = "a100", .qty = 1000, .seq = -1,
			  .end = T("2026-11-20T10:00:00Z")};
	json_t *o = ingest_one(f, "cscs", sign(mkrec(&s), &f->cscs));
	assert_string_equal(ostatus(o), "duplicate");
	assert_true(json_is_true(json_object_get(o, "late")));
	json_decref(o);
	print_message("late: %zu cases\n", sizeof cases / sizeof cases[0]);
}

/* ---- (f) rollover ------------------------------------------------------------------------------ */

static int64_t roll(int64_t alloc, int64_t used, int64_t ppm)
{
	__int128 unused = alloc - used;
	if (unused < 0)
		unused = 0;
	if (unused > alloc)
		unused = alloc;
	return (int64_t)(unused * ppm / 1000000);
}

static void test_rollover(void **state)
{
	struct fix *f = *state;
	const int64_t inst_alloc = 1000000LL * 1000000, proj_alloc = 400000LL * 1000000;
	g_now = T("2026-11-25T12:00:00Z");
	/* 100001 GB-hours at 1.234567 = 123457.934567 credits in November */
	struct rspec s = {.id = "nov-1", .member = "alice@epfl.ch", .resource = "storage_gb_hours",
			  .qty = 100001, .seq = -1};
	json_t *o = ingest_one(f, "cscs", sign(mkrec(&s), &f->cscs));
	assert_string_equal(ocharge(o), "123457.934567");
	json_decref(o);
	const int64_t used = 123457934567;
	int64_t dec = T("2026-12-10T00:00:00Z"), r = -1;
	/* December: project carries floor((400000 - used) * 0.5), the institution
	 * floor((1000000 - used) * 0.25); a level without rollover carries 0. */
	assert_int_equal(used_at(f, "epfl", "climate", "alice@epfl.ch", QUOTA_PROJECT, dec, &r), 0);
	assert_int_equal(r, roll(proj_alloc, used, 500000));
	assert_int_equal(r, 138271032716);
	assert_int_equal(used_at(f, "epfl", NULL, NULL, QUOTA_INSTITUTION, dec, &r), 0);
	assert_int_equal(r, roll(inst_alloc, used, 250000));
	assert_int_equal(r, 219135516358);
	used_at(f, "epfl", "climate", "alice@epfl.ch", QUOTA_MEMBER, dec, &r);
	assert_int_equal(r, 0);
	used_at(f, "epfl", "vision", NULL, QUOTA_PROJECT, dec, &r);
	assert_int_equal(r, 0);
	used_at(f, "epfl", NULL, NULL, QUOTA_POOL, dec, &r);
	assert_int_equal(r, 0);
	/* November itself has the rollover of an empty October: its whole
	 * allocation times the fraction. */
	used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT, g_now, &r);
	assert_int_equal(r, proj_alloc / 2);
	/* January: December's own allocation, unused, times the fraction; the
	 * rollover December received is not compounded. */
	used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT, T("2027-01-10T00:00:00Z"), &r);
	assert_int_equal(r, proj_alloc / 2);
	used_at(f, "epfl", NULL, NULL, QUOTA_INSTITUTION, T("2027-01-10T00:00:00Z"), &r);
	assert_int_equal(r, inst_alloc / 4);
	/* More November usage elsewhere takes the institution past its
	 * allocation: nothing rolls over there; the project is unchanged. */
	struct rspec s2 = {.id = "nov-2", .proj = "vision", .resource = "storage_gb_hours",
			   .qty = 800000, .seq = -1};
	o = ingest_one(f, "cscs", sign(mkrec(&s2), &f->cscs));
	assert_string_equal(ocharge(o), "987653.6");
	assert_true(json_is_true(json_object_get(o, "overage")));
	json_decref(o);
	used_at(f, "epfl", NULL, NULL, QUOTA_INSTITUTION, dec, &r);
	assert_int_equal(r, 0);
	used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT, dec, &r);
	assert_int_equal(r, 138271032716);
	/* A refund in November (at the same time) gives part back. */
	struct rspec s3 = {.id = "nov-3", .proj = "vision", .resource = "storage_gb_hours",
			   .qty = 100000, .kind = "adjustment", .adjustment = "refund",
			   .supersedes = "nov-2", .seq = -1};
	o = ingest_one(f, "cscs", sign(mkrec(&s3), &f->cscs));
	assert_string_equal(ostatus(o), "accepted");
	assert_string_equal(ocharge(o), "-123456.7");
	json_decref(o);
	/* institution November used: 123457.934567 + 987653.6 - 123456.7 = 987654.834567 */
	assert_int_equal(used_at(f, "epfl", NULL, NULL, QUOTA_INSTITUTION, g_now, NULL), 987654834567);
	used_at(f, "epfl", NULL, NULL, QUOTA_INSTITUTION, dec, &r);
	assert_int_equal(r, roll(inst_alloc, 987654834567, 250000));
	assert_int_equal(r, 3086291358);
}

/* ---- (g) corrections ---------------------------------------------------------------------------- */

static json_t *correction(struct fix *f, const char *id, const char *kind, const char *adj,
			  const char *supersedes, int64_t qty)
{
	struct rspec s = {.id = id, .member = "alice@epfl.ch", .cls = "h100", .qty = qty,
			  .kind = kind, .adjustment = adj, .supersedes = supersedes, .seq = -1};
	return ingest_one(f, "cscs", sign(mkrec(&s), &f->cscs));
}

static void test_corrections(void **state)
{
	struct fix *f = *state;
	/* u1, u2: 1000 h100-seconds each = 31.415 credits */
	for (int i = 1; i <= 3; i++) {
		char id[16];
		snprintf(id, sizeof id, "u%d", i);
		struct rspec s = {.id = id, .member = "alice@epfl.ch", .cls = "h100", .qty = 1000,
				  .seq = -1};
		json_t *o = ingest_one(f, "cscs", sign(mkrec(&s), &f->cscs));
		assert_string_equal(ocharge(o), "31.415");
		json_decref(o);
	}
	struct rspec other = {.id = "o1", .provider = "cloud", .member = "alice@epfl.ch",
			      .cls = "h100", .qty = 1000, .seq = -1};
	json_decref(ingest_one(f, "cloud", sign(mkrec(&other), &f->cloud)));
	int64_t used = 4 * 31415000;
	static const struct {
		const char *id, *kind, *adj, *supersedes;
		int64_t qty;
		const char *status, *charge_or_reason;
		int64_t delta;
	} steps[] = {
		{"a1", "adjustment", "refund", "u1", 100, "accepted", "-3.1415", -3141500},
		{"a2", "adjustment", "credit", "u1", 50, "accepted", "-1.57075", -1570750},
		{"a3", "adjustment", "debit", "u1", 10, "accepted", "0.31415", 314150},
		/* net of u1 is now 31.415 - 3.1415 - 1.57075 + 0.31415 = 27.0169 */
		{"a4", "adjustment", "refund", "u1", 861, "rejected", "would take \"u1\" below zero", 0},
		{"a5", "adjustment", "refund", "u1", 860, "accepted", "-27.0169", -27016900}, /* net 0 */
		{"a6", "adjustment", "credit", "u1", 1, "rejected", "below zero", 0},
		{"a7", "adjustment", "debit", "u1", 1, "accepted", "0.031415", 31415},
		/* void u1: charge = -(its net), the debit a7 */
		{"v0", "void", NULL, "u1", 999, "rejected", "a void must repeat the quantity of \"u1\" (1000)", 0},
		{"v1", "void", NULL, "u1", 1000, "accepted", "-0.031415", -31415},
		{"v2", "void", NULL, "u1", 1000, "rejected", "that record is void", 0},
		{"a8", "adjustment", "debit", "u1", 1, "rejected", "that record is void", 0},
		{"a9", "adjustment", "debit", "a1", 1, "rejected", "it is an adjustment, not a usage record", 0},
		{"a10", "adjustment", "refund", "v1", 1, "rejected", "it is a void, not a usage record", 0},
		{"a11", "adjustment", "refund", "nothing", 1, "rejected", "no such record of provider \"cscs\"", 0},
		{"a12", "adjustment", "refund", "o1", 1, "rejected", "no such record of provider \"cscs\"", 0},
		/* void of an untouched record: its whole charge */
		{"v3", "void", NULL, "u2", 1000, "accepted", "-31.415", -31415000},
		/* refund of everything, then a void of the rest (zero) */
		{"a13", "adjustment", "refund", "u3", 1000, "accepted", "-31.415", -31415000},
		{"v4", "void", NULL, "u3", 1000, "accepted", "0", 0},
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		json_t *o = correction(f, steps[i].id, steps[i].kind, steps[i].adj, steps[i].supersedes,
				       steps[i].qty);
		bool ok = !strcmp(ostatus(o), steps[i].status);
		if (ok && !strcmp(steps[i].status, "accepted"))
			ok = !strcmp(ocharge(o), steps[i].charge_or_reason);
		else if (ok)
			ok = strstr(oreason(o), steps[i].charge_or_reason) != NULL;
		if (!ok)
			fail_msg("step %s: %s %s %s (expected %s %s)", steps[i].id, ostatus(o), ocharge(o),
				 oreason(o), steps[i].status, steps[i].charge_or_reason);
		json_decref(o);
		used += steps[i].delta;
		assert_int_equal(used_at(f, "epfl", "climate", "alice@epfl.ch", QUOTA_MEMBER, g_now, NULL),
				 used);
	}
	/* A correction must name the same institution, project, member, resource. */
	static const char *const patches[] = {
		"{\"project\":\"vision\",\"member\":\"dan@epfl.ch\"}", "{\"member\":\"bob@epfl.ch\"}",
		"{\"class\":\"a100\"}", "{\"resource\":\"tokens_in\",\"class\":null,\"model\":\"m1\"}",
		"{\"member\":null}"};
	for (size_t i = 0; i < sizeof patches / sizeof patches[0]; i++) {
		char id[16];
		snprintf(id, sizeof id, "m%zu", i);
		struct rspec s = {.id = id, .member = "alice@epfl.ch", .cls = "h100", .qty = 1,
				  .kind = "adjustment", .adjustment = "debit", .supersedes = "o1",
				  .provider = "cloud", .seq = -1};
		json_t *r = mkrec(&s);
		json_t *p = json_loads(patches[i], 0, NULL);
		json_object_update(r, p);
		json_decref(p);
		json_t *o = ingest_one(f, "cloud", sign(r, &f->cloud));
		if (strcmp(ostatus(o), "rejected") || !strstr(oreason(o), "must name the same"))
			fail_msg("patch %s: %s %s", patches[i], ostatus(o), oreason(o));
		json_decref(o);
	}
	/* The originals are never changed. */
	struct ledger_row row;
	assert_int_equal(store_ledger_find_q(f->app.store, "cscs", "u1", &row), ALLOT_OK);
	assert_int_equal(row.charge_micro, 31415000);
	assert_int_equal(row.rec.quantity, 1000);
	record_release(&row.rec);
	/* The report's net equals the quota's used. */
	int64_t n, c;
	ledger_totals(f, &n, &c);
	assert_int_equal(c, used);
	assert_int_equal(n, 4 + 9);
	print_message("corrections: %zu steps\n", sizeof steps / sizeof steps[0]);
}

/* ---- (h) pricing by the charter version in force at "end" ------------------------------------- */

static void test_charter_versions(void **state)
{
	struct fix *f = *state;
	struct rspec s = {.id = "p1", .member = "alice@epfl.ch", .cls = "h100", .qty = 1000,
			  .seq = -1, .end = T("2026-12-10T00:00:00Z")};
	json_decref(ingest_one(f, "cscs", sign(mkrec(&s), &f->cscs)));
	/* Version 2 doubles the h100 rate from 2026-12-15 on. */
	char *text = charter_text(f, 2, "2026-12-15T00:00:00Z", "0.06283");
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	char msg[256];
	allot_err e = app_charter_apply(&f->app, "v2.yaml", text, strlen(text), "test", &errs, msg,
					sizeof msg);
	if (e)
		fail_msg("apply v2: %s: %s", msg, errs.nerrors ? errs.errors[0].text : "");
	charter_errors_release(&errs);
	free(text);
	static const struct {
		const char *id, *end, *charge;
		int version;
	} cases[] = {
		{"p2", "2026-12-14T23:59:59Z", "31.415", 1},
		{"p3", "2026-12-15T00:00:00Z", "62.83", 2},
		{"p4", "2026-12-20T11:00:00Z", "62.83", 2},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct rspec r = {.id = cases[i].id, .member = "alice@epfl.ch", .cls = "h100",
				  .qty = 1000, .seq = -1, .end = T(cases[i].end)};
		json_t *o = ingest_one(f, "cscs", sign(mkrec(&r), &f->cscs));
		assert_string_equal(ocharge(o), cases[i].charge);
		assert_int_equal(json_integer_value(json_object_get(o, "charter_version")),
				 cases[i].version);
		json_decref(o);
	}
	/* A refund of p1 after version 2 is priced at p1's own rate. */
	struct rspec a = {.id = "p1-refund", .member = "alice@epfl.ch", .cls = "h100", .qty = 100,
			  .kind = "adjustment", .adjustment = "refund", .supersedes = "p1", .seq = -1};
	json_t *o = ingest_one(f, "cscs", sign(mkrec(&a), &f->cscs));
	assert_string_equal(ocharge(o), "-3.1415");
	json_decref(o);
}

/* ---- rollover across charter versions --------------------------------------------------
 *
 * Rollover carries from any period that ended after the ledger began (the
 * first applied charter's `effective`), whichever version is active now:
 *  - applying a new version (here: only a rate changes, effective 2026-12-15)
 *    keeps December's rollover from November and January's from December;
 *  - with the first charter effective 2026-01-01T00:00:00Z and the zone
 *    Europe/Zurich, January began at 2025-12-31T23:00Z, an hour earlier; it
 *    still rolls into February. */
static void test_rollover_new_version(void **state)
{
	struct fix *f = *state;
	const int64_t proj_alloc = 400000LL * 1000000;
	/* January: nothing used; February carries half of January's allocation. */
	int64_t r = -1;
	used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT, T("2026-02-10T00:00:00Z"), &r);
	if (r != proj_alloc / 2)
		fail_msg("February's rollover from January: %lld, expected %lld (January began "
			 "an hour before the charter's effective)", (long long)r,
			 (long long)(proj_alloc / 2));
	g_now = T("2026-11-25T12:00:00Z");
	struct rspec s = {.id = "nov-1", .member = "alice@epfl.ch", .resource = "storage_gb_hours",
			  .qty = 100001, .seq = -1};
	json_decref(ingest_one(f, "cscs", sign(mkrec(&s), &f->cscs)));
	int64_t dec = T("2026-12-20T00:00:00Z");
	used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT, dec, &r);
	assert_int_equal(r, 138271032716);
	/* Version 2 changes one rate from 2026-12-15 on; allocations are the same. */
	g_now = T("2026-12-10T00:00:00Z");
	char *text = charter_text(f, 2, "2026-12-15T00:00:00Z", "0.06283");
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	char msg[256];
	allot_err e = app_charter_apply(&f->app, "v2.yaml", text, strlen(text), "test", &errs, msg,
					sizeof msg);
	charter_errors_release(&errs);
	free(text);
	assert_int_equal(e, ALLOT_OK);
	used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT, dec, &r);
	if (r != 138271032716)
		fail_msg("December's rollover from November after version 2: %lld, expected "
			 "138271032716", (long long)r);
	used_at(f, "epfl", "climate", NULL, QUOTA_PROJECT, T("2027-01-10T00:00:00Z"), &r);
	if (r != proj_alloc / 2)
		fail_msg("January's rollover from December after version 2: %lld, expected %lld",
			 (long long)r, (long long)(proj_alloc / 2));
}

/* ---- sequence gaps are reported -------------------------------------------------------------- */

static void test_sequence(void **state)
{
	struct fix *f = *state;
	static const int64_t seqs[] = {1, 2, 3, 5, 5, 9};
	json_t *arr = json_array();
	for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
		char id[16];
		snprintf(id, sizeof id, "q%zu", i);
		struct rspec s = {.id = id, .cls = "h100", .qty = 1, .seq = seqs[i]};
		json_array_append_new(arr, sign(mkrec(&s), &f->cscs));
	}
	json_decref(ingest(f, "cscs", arr, NULL));
	struct ledger_seq_status ss;
	assert_int_equal(store_ledger_seq_status(f->app.store, "cscs", -1, 100, &ss), ALLOT_OK);
	assert_int_equal(ss.ngaps, 2);
	assert_int_equal(ss.gaps[0].from, 4);
	assert_int_equal(ss.gaps[0].to, 4);
	assert_int_equal(ss.gaps[1].from, 6);
	assert_int_equal(ss.gaps[1].to, 8);
	assert_int_equal(ss.nrepeats, 1);
	assert_int_equal(ss.repeats[0], 5);
	assert_false(ss.has_next);
	ledger_seq_status_release(&ss);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_idempotency, fix_setup_twin, fix_teardown),
		cmocka_unit_test_setup_teardown(test_signatures, fix_setup_twin, fix_teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, fix_setup_twin, fix_teardown),
		cmocka_unit_test_setup_teardown(test_late, fix_setup_twin, fix_teardown),
		cmocka_unit_test_setup_teardown(test_rollover, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_corrections, fix_setup_twin, fix_teardown),
		cmocka_unit_test_setup_teardown(test_charter_versions, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_sequence, fix_setup_twin, fix_teardown),
		cmocka_unit_test_setup_teardown(test_rollover_new_version, fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_exactness, fix_setup, fix_teardown),
	};
	return cmocka_run_group_tests_name("ledger", tests, NULL, NULL);
}
