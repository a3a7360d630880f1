/* bench_tlog_ingest.c — ingestion throughput with the transparency log on
 * and off, in the same run: two daemons' worth of state (struct app, each
 * with its own SQLite file, WAL, synchronous=FULL), the same signed provider
 * records, usage_wire_parse_records + ledger_ingest in batches, rounds alternating between the two so
 * that the shared machine's noise hits both alike.  The "off" app has the
 * log switched off with the store's tlog_set_enabled (benchmarks and tests
 * only).  Prints records/s for each and the ratio (target: >= 90%).
 *
 *   usage: bench_tlog_ingest [records per mode] [batch]   (default 20000 1000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/usage_wire.h"
#include "common/log.h"
#include "common/b64.h"
#include "crypto/ed25519.h"
#include "daemon/app.h"
#include "ledger/ledger.h"
#include "ledger/record.h"
#include "ledger/ledgerlog.h"

#define ROUNDS 4

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int open_app(struct app *a, const char *dir, const char *name, const char *charter)
{
	static char db[2][256], keys[2][256];
	int k = strcmp(name, "on") == 0;
	snprintf(db[k], sizeof db[k], "%s/%s.db", dir, name);
	snprintf(keys[k], sizeof keys[k], "%s/keys-%s", dir, name);
	memset(a, 0, sizeof *a);
	a->cfg.db = db[k];
	a->cfg.keys = keys[k];
	a->cfg.charter = charter;
	a->cfg.deployment = "bench";
	char msg[512] = "";
	if (app_open(a, msg, sizeof msg)) {
		fprintf(stderr, "bench: %s\n", msg);
		return -1;
	}
	return 0;
}

/* batch b of n signed records. */
static json_t *make_batch(const struct ed25519_keypair *kp, int round, int b, int n)
{
	json_t *arr = json_array();
	char id[64], sig64[96];
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof id, "r%d-b%d-%d", round, b, i);
		json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "record_id", id,
				      "provider", "cscs", "institution", "epfl", "project", "climate",
				      "member", "alice@epfl.ch", "resource", "gpu_seconds", "class",
				      "h100", "quantity", (json_int_t)(1 + i % 1000), "start",
				      "2026-11-01T10:00:00Z", "end", "2026-11-01T11:00:00Z", "kind", "usage");
		size_t len;
		char *canon = record_canonical(r, &len);
		uint8_t sig[ED25519_SIG_LEN];
		if (!canon || ed25519_sign(kp, canon, len, sig))
			abort();
		free(canon);
		sig64[b64_encode(sig, sizeof sig, sig64)] = '\0';
		json_object_set_new(r, "sig", json_string(sig64));
		json_array_append_new(arr, r);
	}
	return arr;
}

static double ingest(struct app *a, json_t *const *batches, int nb, size_t *accepted)
{
	double t0 = now_s();
	for (int b = 0; b < nb; b++) {
		struct usage_batch ub;
		struct ledger_counts c;
		struct buf ans = BUF_INIT;
		char msg[256] = "out of memory";
		if (usage_wire_parse_records(batches[b], &ub, msg, sizeof msg) ||
		    ledger_ingest(a->ledger, "cscs", ub.items, ub.n, msg, sizeof msg) ||
		    usage_wire_answer(&ans, &ub)) {
			fprintf(stderr, "bench: ingest failed: %s\n", msg);
			exit(1);
		}
		ledger_count(ub.items, ub.n, &c);
		*accepted += c.accepted;
		usage_batch_release(&ub);
		buf_release(&ans);
	}
	return now_s() - t0;
}

int main(int argc, char **argv)
{
	int total = argc > 1 ? atoi(argv[1]) : 20000;
	int batch = argc > 2 ? atoi(argv[2]) : 1000;
	if (total < ROUNDS || batch < 1 || batch > LEDGER_BATCH_MAX) {
		fprintf(stderr, "usage: bench_tlog_ingest [records per mode] [batch 1..%d]\n",
			LEDGER_BATCH_MAX);
		return 2;
	}
	log_set_verbose(false);
	char dir[] = "/tmp/allot-bench-tlog.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	setenv("ALLOT_ADMIN_KEY", "bench-admin-key-0123456789", 1);
	struct ed25519_keypair kp;
	char pub[ED25519_PUB_TEXT_MAX], charter[300];
	ed25519_keygen(&kp);
	ed25519_pub_format(kp.pub, pub);
	snprintf(charter, sizeof charter, "%s/charter.yaml", dir);
	FILE *f = fopen(charter, "w");
	if (!f)
		return 1;
	fprintf(f, "charter: bench\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
		   "rates:\n  - {resource: gpu_seconds, class: h100, credits: 0.03}\n"
		   "providers:\n  - {id: cscs, keys: [\"%s\"], resources: [gpu_seconds]}\n"
		   "institutions:\n  - id: epfl\n    allocation: {credits: 1000000000, period: month}\n"
		   "    projects:\n      - id: climate\n        allocation: {credits: 1000000000, "
		   "period: month}\n        members: [alice@epfl.ch]\n", pub);
	fclose(f);
	struct app on, off;
	if (open_app(&on, dir, "on", charter) || open_app(&off, dir, "off", charter))
		return 1;
	store_tlog_set_enabled(off.store, false);
	if (getenv("BENCH_BOTH_OFF"))
		store_tlog_set_enabled(on.store, false);

	int per_round = total / ROUNDS, nb = (per_round + batch - 1) / batch;
	double t_on = 0, t_off = 0;
	size_t n_on = 0, n_off = 0;
	printf("ingestion: %d records per mode in %d rounds, batches of %d, signatures checked, "
	       "SQLite WAL synchronous=FULL\n", per_round * ROUNDS, ROUNDS, batch);
	for (int round = 0; round < ROUNDS; round++) {
		json_t **batches = calloc((size_t)nb, sizeof *batches);
		for (int b = 0; b < nb; b++)
			batches[b] = make_batch(&kp, round, b,
						b == nb - 1 ? per_round - b * batch : batch);
		/* alternate which goes first */
		if (round % 2) {
			t_on += ingest(&on, batches, nb, &n_on);
			t_off += ingest(&off, batches, nb, &n_off);
		} else {
			t_off += ingest(&off, batches, nb, &n_off);
			t_on += ingest(&on, batches, nb, &n_on);
		}
		for (int b = 0; b < nb; b++)
			json_decref(batches[b]);
		free(batches);
	}
	uint64_t size;
	uint8_t root[32];
	store_tlog_head(on.store, &size, root);
	double r_on = (double)n_on / t_on, r_off = (double)n_off / t_off, t0;
	printf("  log off: %8zu records in %6.2f s = %8.0f records/s\n", n_off, t_off, r_off);
	printf("  log on:  %8zu records in %6.2f s = %8.0f records/s  (log size %llu)\n", n_on,
	       t_on, r_on, (unsigned long long)size);
	printf("  with the log: %.1f%% of the throughput without (target >= 90%%)\n",
	       100.0 * r_on / r_off);
	/* proofs from the SQLite tables (one indexed lookup per node) */
	const int PROOFS = 2000;
	struct merkle_proof pr;
	uint8_t leaf[32];
	uint64_t seed = 88172645463325252ULL;
	t0 = 0;
	double t1 = now_s();
	for (int i = 0; i < PROOFS; i++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		if (store_tlog_inclusion(on.store, seed % size, size, leaf, &pr))
			abort();
	}
	double t2 = now_s();
	for (int i = 0; i < PROOFS; i++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		if (store_tlog_consistency(on.store, 1 + seed % size, size, &pr))
			abort();
	}
	double t3 = now_s();
	printf("  proofs from SQLite at %llu leaves: inclusion %.1f us, consistency %.1f us\n",
	       (unsigned long long)size, (t2 - t1) * 1e6 / PROOFS, (t3 - t2) * 1e6 / PROOFS);
	/* signing a checkpoint on every export */
	char *note = NULL, msg[128];
	t0 = now_s();
	const int SIGNS = 200;
	for (int i = 0; i < SIGNS; i++) {
		free(note);
		note = NULL;
		/* fresh, but the tree is unchanged: a cache hit after the first */
		ledgerlog_checkpoint(on.log, true, &note, NULL, msg, sizeof msg);
	}
	printf("  checkpoint for an export (cached tree): %.2f us\n",
	       (now_s() - t0) * 1e6 / SIGNS);
	free(note);
	app_close(&on);
	app_close(&off);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return 0;
}
