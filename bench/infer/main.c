/* bench/infer — inference throughput on synthetic llama-family models.
 *
 *   build/bench/infer [--models llama3-1b,qwen2-0.5b,tinyllama-1.1b,110m] [--large]
 *                     [--types q4_0,q4_k_m,q6_k,q8_0,f16,q4_k,q5_k,q5_0,q4_1,q5_1]
 *                     [--threads N] [--layers N] [--dir /tmp] [--prompt-only] [--reps N]
 *                     [--device cuda[:N]]
 *
 * For each model and weight type: prompt tokens/s (a 64-token prompt in
 * one batch) and the weight bytes/s that makes (prompt tokens/s x the bytes
 * of weights a token reads), decode tokens/s at batch 1 and aggregate at
 * batch 8 (each the best of four runs of 16 steps), and batch-1 decode
 * weight bytes/s as a fraction of the memory read bandwidth measured in the
 * same seconds (the best of two reads before each batch-1 run, the best of
 * the eight; the lowest run's best printed beside it as the spread).  Then
 * a summary against
 * the targets of issue 17: batch 1 at >= 90% of the bandwidth, batch 8 at
 * >= 4x batch 1, prompt weight bytes/s at >= Q4_0's on the same shape in
 * the same run.  Default: the Llama 3.2 1B and Qwen2.5 0.5B shapes in Q4_0,
 * Q4_K_M, Q6_K and Q8_0; --large: the TinyLlama 1.1B shape (the earlier
 * figures of docs/INFER.md).  --layers N: only N layers (quick runs while
 * developing; the output matrix then weighs more).  Models are generated
 * once into --dir (default /tmp) and reused.  --prompt-only: just the
 * prompt figure, best of --reps passes (default 3).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infer/backend.h"
#include "infer/backend_cuda.h"
#include "infer/gguf.h"
#include "infer/model.h"
#include "synth.h"

#define PROMPT 64
#define DECODE_STEPS 16
#define DECODE_REPS 4
#define BATCH 8
#define BW_BYTES ((size_t)2 << 30) /* well beyond the last-level cache */
#define BW_READS 2                 /* reads before each batch-1 run */
#define MAX_RESULTS 64
/* the targets of issue 17 */
#define TARGET_BW 0.90
#define TARGET_B8 4.0
#define TARGET_PROMPT 1.0

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double loadavg(void)
{
	double l[1];

	return getloadavg(l, 1) == 1 ? l[0] : -1;
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

/* Best of `reads` reads of a 2 GiB buffer with `threads` threads; measured
 * again beside each batch-1 decode run (measure_decode), since the machine
 * is shared. */
static double bandwidth(int threads, int reads)
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
	for (int rep = 0; rep < reads; rep++) {
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

struct result {
	char model[64], type[16];
	bool baseline;          /* the Q4_0 of this shape */
	double bytes;           /* weight bytes a token reads */
	double pp, d1, d8, bw;  /* tok/s, tok/s, tok/s, bytes/s (the best read) */
	double bw_lo;           /* the lowest of the best reads beside each batch-1 run */
	double load;
};

static int prompt_only, prompt_reps = 3;
/* --device cuda[:N]: the CUDA backend on device N (docs/CUDA.md); the
 * bandwidth is then the device's (a device-to-device copy) */
static const struct infer_backend_ops *be = &infer_backend_cpu;
static int device;

/* prompt: PROMPT tokens in one pass, best of prompt_reps (each restarts
 * slot 0) */
static double measure_prompt(void *st, float *logits)
{
	int32_t tok[PROMPT], pos[PROMPT], slot[PROMPT];
	uint8_t want[PROMPT];
	double pp = 0;

	for (int i = 0; i < PROMPT; i++) {
		tok[i] = 300 + i;
		pos[i] = i;
		slot[i] = 0;
		want[i] = i == PROMPT - 1;
	}
	{	/* warm the page cache and the mapping */
		struct infer_batch b = {1, tok, pos, slot, want + PROMPT - 1};

		be->forward(st, &b, logits);
	}
	for (int rep = 0; rep < prompt_reps; rep++) {
		struct infer_batch b = {PROMPT, tok, pos, slot, want};
		double t0 = now(), dt;

		be->forward(st, &b, logits);
		dt = now() - t0;
		if (PROMPT / dt > pp)
			pp = PROMPT / dt;
	}
	return pp;
}

/* decode at batch `batch` (1: slot 0 after the prompt; else slots 0..batch
 * from position 0): the best of DECODE_REPS runs of DECODE_STEPS steps (on
 * a shared machine a run that another process's burst hit says nothing
 * about the engine), in tokens/s over all sequences.  With bw (CPU, batch
 * 1): the memory bandwidth is measured right before each run (best of
 * BW_READS reads), bw[0] the best of all, bw[1] the lowest of the runs'
 * bests (the spread: how much the machine's state moved meanwhile), so
 * that the fraction compares the best run with the best read of the same
 * seconds rather than with one measurement before them all. */
static double measure_decode(void *st, float *logits, int batch, int threads, double bw[2])
{
	double best = 0;

	if (bw)
		bw[0] = 0, bw[1] = 1e300;
	for (int rep = 0, i = 0; rep < DECODE_REPS; rep++) {
		double t0, r;

		if (bw) {
			double b = bandwidth(threads, BW_READS);

			bw[0] = b > bw[0] ? b : bw[0];
			bw[1] = b < bw[1] ? b : bw[1];
		}
		t0 = now();

		for (int k = 0; k < DECODE_STEPS; k++, i++) {
			int32_t t[BATCH], ps[BATCH], s[BATCH];
			uint8_t w[BATCH];
			struct infer_batch b = {batch, t, ps, s, w};

			for (int j = 0; j < batch; j++) {
				t[j] = (batch == 1 ? 400 : 500 + j) + i;
				ps[j] = batch == 1 ? PROMPT + i : i;
				s[j] = j;
				w[j] = 1;
			}
			be->forward(st, &b, logits);
		}
		r = batch * DECODE_STEPS / (now() - t0);
		if (r > best)
			best = r;
	}
	return best;
}

static int run(const char *path, int threads, struct result *res)
{
	struct llama_model *m;
	struct infer_backend_params p = {.n_threads = threads, .n_slots = BATCH, .device = device,
					 .n_ctx = PROMPT + DECODE_REPS * DECODE_STEPS + 8, .max_batch = PROMPT};
	void *st;
	char err[256];
	float *logits;

	if (llama_load(path, &m, err, sizeof err) != ALLOT_OK) {
		fprintf(stderr, "bench: %s\n", err);
		return 1;
	}
	if (be->load(m, &p, &st, err, sizeof err) != ALLOT_OK) {
		fprintf(stderr, "bench: %s\n", err);
		llama_free(m);
		return 1;
	}
	logits = malloc((size_t)BATCH * m->hp.n_vocab * sizeof *logits);
	if (!logits) {
		be->free(st);
		llama_free(m);
		return 1;
	}
	res->bytes = (double)m->weight_bytes;
	res->load = loadavg();
	res->pp = measure_prompt(st, logits);
	if (prompt_only) {
		printf("%-22s %-7s %7.1f MB  prompt %8.1f tok/s = %6.1f GB/s of weights (best of %d)  [%s]\n",
		       res->model, res->type, res->bytes / 1e6, res->pp, res->pp * res->bytes / 1e9, prompt_reps,
		       be->describe(st));
	} else {
		/* batch 1 interleaved with the bandwidth reads (CPU) */
		if (be == &infer_backend_cuda) {
			res->bw = res->bw_lo = infer_cuda_bandwidth(device);
			res->d1 = measure_decode(st, logits, 1, threads, NULL);
		} else {
			double bw[2];

			res->d1 = measure_decode(st, logits, 1, threads, bw);
			res->bw = bw[0];
			res->bw_lo = bw[1];
		}
		res->d8 = measure_decode(st, logits, BATCH, threads, NULL);
		printf("%-22s %-7s %7.1f MB  prompt %8.1f tok/s  decode b1 %7.2f tok/s  b8 %7.2f tok/s (x%.1f)"
		       "  b1 weights %6.2f GB/s = %3.0f%% of %.2f GB/s (reads %.2f-%.2f)  load %.1f  [%s]\n",
		       res->model, res->type, res->bytes / 1e6, res->pp, res->d1, res->d8, res->d8 / res->d1,
		       res->bytes * res->d1 / 1e9, 100.0 * res->bytes * res->d1 / res->bw, res->bw / 1e9,
		       res->bw_lo / 1e9, res->bw / 1e9, res->load, be->describe(st));
	}
	fflush(stdout);
	free(logits);
	be->free(st);
	llama_free(m);
	return 0;
}

/* The figures of issue 17 against its targets */
static void summary(const struct result *r, int n)
{
	printf("\nissue 17 targets: batch-1 decode >= %.0f%% of the bandwidth measured beside it; batch 8 >= %.0fx"
	       " batch 1; prompt weight bytes/s >= Q4_0's on the same shape (this run)\n",
	       100 * TARGET_BW, TARGET_B8);
	printf("%-22s %-7s %9s %9s %9s %11s %8s %8s %6s %11s %9s %9s\n", "model", "type", "weights", "prompt",
	       "prompt", "vs Q4_0", "b1", "b1", "bw", "b1 of bw", "b8", "b8/b1");
	printf("%-22s %-7s %9s %9s %9s %11s %8s %8s %6s %11s %9s %9s\n", "", "", "MB", "tok/s", "GB/s", "per byte",
	       "tok/s", "GB/s", "GB/s", "", "tok/s", "");
	for (int i = 0; i < n; i++) {
		const struct result *x = &r[i], *base = NULL;
		char vs[32] = "-", b1[32] = "-", b8[32] = "-";

		for (int j = 0; j < n; j++)
			if (r[j].baseline && strcmp(r[j].model, x->model) == 0)
				base = &r[j];
		if (base && base->pp > 0) {
			double q = x->pp * x->bytes / (base->pp * base->bytes);

			snprintf(vs, sizeof vs, "%.2f %s", q, q >= TARGET_PROMPT ? "ok" : "MISS");
		}
		if (!prompt_only) {
			double f = x->bytes * x->d1 / x->bw, q = x->d8 / x->d1;

			snprintf(b1, sizeof b1, "%3.0f%% %s", 100 * f, f >= TARGET_BW ? "ok" : "MISS");
			snprintf(b8, sizeof b8, "%.2fx %s", q, q >= TARGET_B8 ? "ok" : "MISS");
		}
		printf("%-22s %-7s %9.1f %9.1f %9.1f %11s %8.2f %8.2f %6.2f %11s %9.2f %9s\n", x->model, x->type,
		       x->bytes / 1e6, x->pp, x->pp * x->bytes / 1e9, vs, x->d1, x->bytes * x->d1 / 1e9, x->bw / 1e9,
		       b1, x->d8, b8);
	}
	printf("load average now %.2f\n", loadavg());
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

static const struct { const char *key; struct synth_shape sh; } SHAPES[] = {
	/* Llama 3.2 1B: GQA 8 KV heads, 128256 tokens, tied embeddings, rope
	 * base 500000 with rope_freqs (1.24B parameters) */
	{"llama3-1b", {"synthetic-llama3-1B", 2048, 16, 32, 8, 8192, 128256, 131072, SYNTH_LLAMA, 500000.0f, true,
		       true, 1e-5f}},
	/* Qwen2.5 0.5B: 896 wide (not a multiple of 256), QKV biases, tied,
	 * 151936 tokens, rope base 1e6 */
	{"qwen2-0.5b", {"synthetic-qwen2-0.5B", 896, 24, 14, 2, 4864, 151936, 32768, SYNTH_QWEN2, 1000000.0f, true,
			false, 1e-6f}},
	{"tinyllama-1.1b", {"synthetic-1.1B", 2048, 22, 32, 4, 5632, 32000, 2048, SYNTH_LLAMA, 0, false, false, 0}},
	{"110m", {"synthetic-110M", 768, 12, 12, 12, 2048, 32000, 2048, SYNTH_LLAMA, 0, false, false, 0}},
};

/* q4_0 first: the baseline of the prompt target */
static const struct { const char *name, *label; uint32_t type; } TYPES[] = {
	{"q4_0", "Q4_0", GGML_Q4_0}, {"q4_k_m", "Q4_K_M", SYNTH_Q4_K_M}, {"q6_k", "Q6_K", GGML_Q6_K},
	{"q8_0", "Q8_0", GGML_Q8_0}, {"f16", "F16", GGML_F16}, {"q4_k", "Q4_K", GGML_Q4_K},
	{"q5_k", "Q5_K", GGML_Q5_K}, {"q5_0", "Q5_0", GGML_Q5_0}, {"q4_1", "Q4_1", GGML_Q4_1},
	{"q5_1", "Q5_1", GGML_Q5_1},
};

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--models llama3-1b,qwen2-0.5b,tinyllama-1.1b,110m] [--large]"
		" [--types q4_0,q4_k_m,q6_k,q8_0,f16,q4_k,q5_k,q5_0,q4_1,q5_1] [--threads N] [--layers N] [--device cuda[:N]]"
		" [--dir DIR] [--prompt-only] [--reps N]\n", argv0);
	return 2;
}

int main(int argc, char **argv)
{
	const char *dir = "/tmp", *types = "q4_0,q4_k_m,q6_k,q8_0", *models = "llama3-1b,qwen2-0.5b";
	int threads = 2, layers = 0, rc = 0, nres = 0;
	static struct result res[MAX_RESULTS];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--large") == 0)
			models = "tinyllama-1.1b";
		else if (strcmp(argv[i], "--models") == 0 && i + 1 < argc)
			models = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--layers") == 0 && i + 1 < argc)
			layers = atoi(argv[++i]);
		else if (strcmp(argv[i], "--types") == 0 && i + 1 < argc)
			types = argv[++i];
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--prompt-only") == 0)
			prompt_only = 1;
		else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc && strcmp(argv[i + 1], "cpu") == 0)
			i++;
		else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc && strncmp(argv[i + 1], "cuda", 4) == 0) {
			be = &infer_backend_cuda;
			device = argv[++i][4] == ':' ? atoi(argv[i] + 5) : 0;
		} else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			prompt_reps = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 3;
		else
			return usage(argv[0]);
	}
	if (threads < 1 || threads > 64)
		threads = 2;
	printf("threads %d; memory read bandwidth: %d threads reading %zu MiB, best of %d reads before each of"
	       " the %d batch-1 runs, the best of all (and the runs' lowest best); decode: best of %d runs of %d"
	       " steps; load average %.2f\n", threads, threads, BW_BYTES >> 20, BW_READS, DECODE_REPS, DECODE_REPS,
	       DECODE_STEPS, loadavg());
	for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
		struct synth_shape sh = SHAPES[s].sh;
		char name[64];

		if (!in_list(models, SHAPES[s].key))
			continue;
		if (layers > 0 && layers < sh.n_layer) {
			snprintf(name, sizeof name, "%s-L%d", sh.name, layers);
			sh.name = name;
			sh.n_layer = layers;
		}
		for (size_t t = 0; t < sizeof TYPES / sizeof TYPES[0] && nres < MAX_RESULTS; t++) {
			char path[512];
			double t0;
			struct result *r = &res[nres];

			if (!in_list(types, TYPES[t].name))
				continue;
			/* v2: the mixes of this version (file names of older ones differ) */
			snprintf(path, sizeof path, "%s/allot-bench-v2-%s-%s.gguf", dir, sh.name, TYPES[t].name);
			t0 = now();
			if (synth_write(path, &sh, TYPES[t].type) != ALLOT_OK) {
				fprintf(stderr, "bench: cannot write %s\n", path);
				return 1;
			}
			if (now() - t0 > 1)
				printf("(generated %s in %.1f s)\n", path, now() - t0);
			memset(r, 0, sizeof *r);
			snprintf(r->model, sizeof r->model, "%s", sh.name);
			snprintf(r->type, sizeof r->type, "%s", TYPES[t].label);
			r->baseline = TYPES[t].type == GGML_Q4_0;
			if (run(path, threads, r) == 0)
				nres++;
			else
				rc = 1;
		}
	}
	if (nres)
		summary(res, nres);
	free(bw_buf);
	return rc;
}
