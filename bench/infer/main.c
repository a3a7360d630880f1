/* bench/infer — inference throughput on synthetic llama models.
 *
 *   build/bench/infer [--large] [--threads N] [--types f16,q8_0,q4_0,q4_k_m,q4_k,q5_k,q6_k,q4_1,q5_0,q5_1] [--dir /tmp]
 *                     [--prompt-only] [--reps N]
 *
 * For each weight type: prompt tokens/s (a 64-token prompt in one batch),
 * decode tokens/s at batch 1 and aggregate at batch 8 (each the best of
 * four runs of 16 steps), and decode weight-bytes/s as a fraction of the
 * memory read bandwidth measured in the same run (the best of five reads).  Default: the 110M shape (quick); --large: the 1.1B shape.
 * Models are generated once into --dir (default /tmp) and reused.
 * --prompt-only: just the prompt figure, best of --reps passes (default 3).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infer/backend.h"
#include "infer/gguf.h"
#include "infer/model.h"
#include "synth.h"

#define PROMPT 64
#define DECODE_STEPS 16
#define DECODE_REPS 4
#define BATCH 8
#define BW_BYTES ((size_t)2 << 30) /* well beyond the last-level cache */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- memory read bandwidth ----------------------------------------------- */

struct bw_arg { const uint64_t *p; size_t n; uint64_t sum; };

__attribute__((target("avx2")))
static void *bw_read(void *argv)
{
	struct bw_arg *a = argv;
	typedef long long v4 __attribute__((vector_size(32)));
	const v4 *p = (const v4 *)a->p;
	v4 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};

	for (size_t i = 0; i + 4 <= a->n / 4; i += 4) {
		s0 ^= p[i];
		s1 ^= p[i + 1];
		s2 ^= p[i + 2];
		s3 ^= p[i + 3];
	}
	s0 ^= s1 ^ s2 ^ s3;
	a->sum = (uint64_t)(s0[0] ^ s0[1] ^ s0[2] ^ s0[3]);
	return NULL;
}

static uint64_t *bw_buf;

/* Best of five reads of a 2 GiB buffer with `threads` threads; measured
 * again before each model, since the machine is shared. */
static double bandwidth(int threads)
{
	size_t n = BW_BYTES / 8;
	double best = 0;

	if (!bw_buf) {
		bw_buf = aligned_alloc(64, BW_BYTES);
		if (!bw_buf)
			return 0;
		for (size_t i = 0; i < n; i++)
			bw_buf[i] = i;
	}
	for (int rep = 0; rep < 5; rep++) {
		pthread_t th[64];
		struct bw_arg a[64];
		double t0 = now(), dt;

		for (int i = 0; i < threads; i++) {
			a[i] = (struct bw_arg){bw_buf + n / threads * i, n / threads, 0};
			pthread_create(&th[i], NULL, bw_read, &a[i]);
		}
		for (int i = 0; i < threads; i++)
			pthread_join(th[i], NULL);
		dt = now() - t0;
		if (BW_BYTES / dt > best)
			best = BW_BYTES / dt;
	}
	return best;
}

/* ---- one model ------------------------------------------------------------ */

static int prompt_only, prompt_reps = 3;

static int run(const char *path, int threads)
{
	double bw;
	struct llama_model *m;
	struct infer_backend_params p = {.n_threads = threads, .n_slots = BATCH,
					 .n_ctx = PROMPT + DECODE_REPS * DECODE_STEPS + 8, .max_batch = PROMPT};
	void *st;
	char err[256];
	int32_t tok[PROMPT], pos[PROMPT], slot[PROMPT];
	uint8_t want[PROMPT];
	float *logits;
	double t0, pp, d1, d8;

	if (llama_load(path, &m, err, sizeof err) != ALLOT_OK) {
		fprintf(stderr, "bench: %s\n", err);
		return 1;
	}
	if (infer_backend_cpu.load(m, &p, &st, err, sizeof err) != ALLOT_OK) {
		fprintf(stderr, "bench: %s\n", err);
		llama_free(m);
		return 1;
	}
	logits = malloc((size_t)BATCH * m->hp.n_vocab * sizeof *logits);
	/* warm the page cache and the mapping */
	for (int i = 0; i < PROMPT; i++) {
		tok[i] = 300 + i;
		pos[i] = i;
		slot[i] = 0;
		want[i] = i == PROMPT - 1;
	}
	{
		struct infer_batch b = {1, tok, pos, slot, want + PROMPT - 1};

		infer_backend_cpu.forward(st, &b, logits);
	}
	/* prompt: 64 tokens in one pass, best of 3 (each restarts the slot) */
	pp = 0;
	for (int rep = 0; rep < prompt_reps; rep++) {
		struct infer_batch b = {PROMPT, tok, pos, slot, want};
		double dt;

		t0 = now();
		infer_backend_cpu.forward(st, &b, logits);
		dt = now() - t0;
		if (PROMPT / dt > pp)
			pp = PROMPT / dt;
	}
	if (prompt_only) {
		printf("%-22s %-6s %7.1f MB  prompt %8.1f tok/s (best of %d)  [%s]\n", m->name,
		       ggml_type_name(m->main_type), m->weight_bytes / 1e6, pp, prompt_reps,
		       infer_backend_cpu.describe(st));
		fflush(stdout);
		free(logits);
		infer_backend_cpu.free(st);
		llama_free(m);
		return 0;
	}
	/* decode, batch 1, right after measuring the bandwidth: the best of
	 * DECODE_REPS runs of DECODE_STEPS steps (the bandwidth is a best of
	 * five too; on a shared machine a run that another process's burst
	 * hit says nothing about the engine) */
	bw = bandwidth(threads);
	d1 = 0;
	for (int rep = 0, i = 0; rep < DECODE_REPS; rep++) {
		t0 = now();
		for (int k = 0; k < DECODE_STEPS; k++, i++) {
			int32_t t = 400 + i, ps = PROMPT + i, s = 0;
			uint8_t w = 1;
			struct infer_batch b = {1, &t, &ps, &s, &w};

			infer_backend_cpu.forward(st, &b, logits);
		}
		if (DECODE_STEPS / (now() - t0) > d1)
			d1 = DECODE_STEPS / (now() - t0);
	}
	/* decode, batch 8: eight sequences one step each per pass */
	d8 = 0;
	for (int rep = 0, i = 0; rep < DECODE_REPS; rep++) {
		t0 = now();
		for (int k = 0; k < DECODE_STEPS; k++, i++) {
			int32_t t[BATCH], ps[BATCH], s[BATCH];
			uint8_t w[BATCH];
			struct infer_batch b = {BATCH, t, ps, s, w};

			for (int j = 0; j < BATCH; j++) {
				t[j] = 500 + i + j;
				ps[j] = i;
				s[j] = j;
				w[j] = 1;
			}
			infer_backend_cpu.forward(st, &b, logits);
		}
		if (BATCH * DECODE_STEPS / (now() - t0) > d8)
			d8 = BATCH * DECODE_STEPS / (now() - t0);
	}
	printf("%-22s %-6s %7.1f MB  prompt %8.1f tok/s  decode b1 %7.2f tok/s  b8 %7.2f tok/s (x%.1f)"
	       "  b1 weights %6.2f GB/s = %3.0f%% of %.2f GB/s  [%s]\n",
	       m->name, ggml_type_name(m->main_type), m->weight_bytes / 1e6, pp, d1, d8, d8 / d1,
	       m->weight_bytes * d1 / 1e9, 100.0 * m->weight_bytes * d1 / bw, bw / 1e9,
	       infer_backend_cpu.describe(st));
	fflush(stdout);
	free(logits);
	infer_backend_cpu.free(st);
	llama_free(m);
	return 0;
}

/* whether name is one of the comma-separated items of list */
static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == n && memcmp(p, name, n) == 0)
			return true;
		p += l + (e != NULL);
	}
	return false;
}

int main(int argc, char **argv)
{
	static const struct synth_shape small = {"synthetic-110M", 768, 12, 12, 12, 2048, 32000, 2048};
	static const struct synth_shape large = {"synthetic-1.1B", 2048, 22, 32, 4, 5632, 32000, 2048};
	const struct synth_shape *sh = &small;
	const char *dir = "/tmp", *types = "f16,q8_0,q4_0,q4_k_m,q6_k";
	int threads = 2, rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--large") == 0)
			sh = &large;
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--types") == 0 && i + 1 < argc)
			types = argv[++i];
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--prompt-only") == 0)
			prompt_only = 1;
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			prompt_reps = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 3;
		else {
			fprintf(stderr, "usage: %s [--large] [--threads N] [--types f16,q8_0,q4_0,q4_k_m,q4_k,q5_k,q6_k,q4_1,q5_0,q5_1] [--dir DIR]"
				" [--prompt-only] [--reps N]\n", argv[0]);
			return 2;
		}
	}
	if (threads < 1 || threads > 64)
		threads = 2;
	printf("memory read bandwidth: %d threads reading %zu MiB, best of 5, measured before each model;"
	       " decode: best of %d runs of %d steps\n", threads, BW_BYTES >> 20, DECODE_REPS, DECODE_STEPS);
	{
		static const struct { const char *name; uint32_t type; } tt[] = {
			{"f16", GGML_F16}, {"q8_0", GGML_Q8_0}, {"q4_0", GGML_Q4_0}, {"q4_k_m", SYNTH_Q4_K_M},
			{"q4_k", GGML_Q4_K}, {"q5_k", GGML_Q5_K}, {"q6_k", GGML_Q6_K}, {"q5_0", GGML_Q5_0},
			{"q4_1", GGML_Q4_1}, {"q5_1", GGML_Q5_1}};

		for (size_t i = 0; i < sizeof tt / sizeof tt[0]; i++) {
			char path[512];
			double t0;

			if (!in_list(types, tt[i].name))
				continue;
			snprintf(path, sizeof path, "%s/allot-bench-%s-%s.gguf", dir, sh->name, tt[i].name);
			t0 = now();
			if (synth_write(path, sh, tt[i].type) != ALLOT_OK) {
				fprintf(stderr, "bench: cannot write %s\n", path);
				return 1;
			}
			if (now() - t0 > 1)
				printf("(generated %s in %.1f s)\n", path, now() - t0);
			rc |= run(path, threads);
		}
	}
	free(bw_buf);
	return rc;
}
