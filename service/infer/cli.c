/* cli.c — `allotd --model FILE --prompt TEXT | --tokenize TEXT`: run the
 * bundled engine once from the command line. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "infer/engine.h"

/* Completion tokens when --max-tokens is not given. */
#define CLI_DEFAULT_MAX_TOKENS 256
/* Threads when neither --threads nor ALLOT_THREADS is given: the online
 * CPUs, at most this many. */
#define CLI_MAX_DEFAULT_THREADS 8

static int usage(void)
{
	fputs("usage: allotd --model FILE --prompt TEXT [--max-tokens N] [--temperature T]\n"
	      "              [--top-k K] [--top-p P] [--min-p P] [--seed S] [--threads N] [--ctx N]\n"
	      "       allotd --model FILE --tokenize TEXT\n", stderr);
	return 2;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_float(const char *s, float lo, float hi, float *out)
{
	char *end;
	float v;

	errno = 0;
	v = strtof(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int on_text(void *ctx, const char *text, size_t len)
{
	(void)ctx;
	if (fwrite(text, 1, len, stdout) != len)
		return 1; /* stdout closed: stop */
	fflush(stdout);
	return 0;
}

/* Over 120 lines on purpose (issue 12): one flat pass over the options,
 * then load, tokenize or generate, each a few lines; a split would only
 * pass a dozen option values between functions. */
int infer_cli(int argc, char **argv)
{
	const char *model = NULL, *prompt = NULL, *tokenize = NULL;
	long max_tokens = CLI_DEFAULT_MAX_TOKENS, threads = 0, top_k = 0, ctx = 0, seed = -1;
	float temperature = 0, top_p = 1, min_p = 0;
	struct infer_params p = {0};
	struct infer_engine *e;
	char err[256];
	int32_t *ids = NULL;
	size_t n = 0;
	int rc = 1;
	allot_err ae;

	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = true;

		if (!v) {
			fprintf(stderr, "allotd: %s needs a value\n", a);
			return usage();
		}
		if (strcmp(a, "--model") == 0)
			model = v;
		else if (strcmp(a, "--prompt") == 0)
			prompt = v;
		else if (strcmp(a, "--tokenize") == 0)
			tokenize = v;
		else if (strcmp(a, "--max-tokens") == 0)
			ok = parse_long(v, 1, INT_MAX, &max_tokens);
		else if (strcmp(a, "--temperature") == 0)
			ok = parse_float(v, 0, 100, &temperature);
		else if (strcmp(a, "--top-k") == 0)
			ok = parse_long(v, 0, INT_MAX, &top_k);
		else if (strcmp(a, "--top-p") == 0)
			ok = parse_float(v, 0, 1, &top_p);
		else if (strcmp(a, "--min-p") == 0)
			ok = parse_float(v, 0, 1, &min_p);
		else if (strcmp(a, "--seed") == 0)
			ok = parse_long(v, 0, LONG_MAX, &seed);
		else if (strcmp(a, "--threads") == 0)
			ok = parse_long(v, 1, 1024, &threads);
		else if (strcmp(a, "--ctx") == 0)
			ok = parse_long(v, 1, 1 << 20, &ctx);
		else {
			fprintf(stderr, "allotd: unknown option %s\n", a);
			return usage();
		}
		if (!ok) {
			fprintf(stderr, "allotd: bad value for %s: %s\n", a, v);
			return usage();
		}
	}
	if (!model || (!prompt == !tokenize)) {
		fprintf(stderr, "allotd: --model and one of --prompt or --tokenize are required\n");
		return usage();
	}
	if (!threads && getenv("ALLOT_THREADS") && !parse_long(getenv("ALLOT_THREADS"), 1, 1024, &threads)) {
		fprintf(stderr, "allotd: bad ALLOT_THREADS\n");
		return 2;
	}
	if (!threads) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		threads = cpus < 1 ? 1 : cpus > CLI_MAX_DEFAULT_THREADS ? CLI_MAX_DEFAULT_THREADS : cpus;
	}
	p.n_threads = (int)threads;
	p.n_slots = 1;
	p.n_ctx = (int)ctx;
	p.vocab_only = tokenize != NULL;
	ae = infer_open(model, &p, &e, err, sizeof err);
	if (ae != ALLOT_OK) {
		fprintf(stderr, "allotd: %s\n", err);
		return 1;
	}
	if (tokenize) {
		if (infer_tokenize(e, tokenize, strlen(tokenize), true, false, &ids, &n) != ALLOT_OK) {
			fprintf(stderr, "allotd: cannot tokenize\n");
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			printf("%s%d", i ? " " : "", ids[i]);
		printf("\n");
		rc = 0;
		goto out;
	}
	{
		struct infer_info info;
		struct infer_request r = {0};
		struct infer_result res;

		infer_get_info(e, &info);
		if (prompt[0]) {
			if (infer_tokenize(e, prompt, strlen(prompt), true, false, &ids, &n) != ALLOT_OK) {
				fprintf(stderr, "allotd: cannot tokenize the prompt\n");
				goto out;
			}
		}
		if (n == 0) {
			/* empty prompt (or a model that adds no BOS): start from BOS */
			free(ids);
			ids = malloc(sizeof *ids);
			if (!ids || info.bos < 0) {
				fprintf(stderr, "allotd: the model has no BOS token to start from\n");
				goto out;
			}
			ids[0] = info.bos;
			n = 1;
		}
		r.prompt = ids;
		r.n_prompt = n;
		r.max_tokens = (int)max_tokens;
		r.temperature = temperature;
		r.top_k = (int)top_k;
		r.top_p = top_p;
		r.min_p = min_p;
		r.seed = seed;
		r.on_text = on_text;
		ae = infer_generate(e, &r, &res);
		if (ae != ALLOT_OK) {
			fprintf(stderr, "allotd: %s\n", ae == ALLOT_E_TOO_LARGE ?
				"the prompt does not fit in the context" : "generation failed");
			goto out;
		}
		printf("\n");
		fflush(stdout);
		infer_result_release(&res);
		rc = 0;
	}
out:
	free(ids);
	infer_close(e);
	return rc;
}
