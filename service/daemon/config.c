/* config.c — allotd's flags; each also ALLOT_<NAME> in the environment. */
#include "daemon/app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/webhooks.h"
#include "http/server.h"
#include "infer/backend_cuda.h"

static const char usage[] =
	"usage: allotd [--listen ADDR] [--db PATH|URI] [--charter FILE] [--keys DIR]\n"
	"              [--models DIR] [--deployment NAME] [--threads N] [--flush-ms MS]\n"
"              [--device cpu|cuda[:N]]\n"
	"              [--cors-origins ORIGIN,...|*] [--backup-dir DIR]\n"
	"              [--webhook-retention-days N] [--init] [--check] [-v]\n"
	"       allotd --model FILE --prompt TEXT [--max-tokens N] [--temperature T] [--seed S]\n"
	"       allotd --model FILE --tokenize TEXT\n"
	"       allotd --fsck [--db PATH|URI] [--format text|json]\n"
	"Each flag may also be given as ALLOT_<NAME> in the environment (ALLOT_DB, ...;\n"
	"ALLOT_INIT=1 for --init).\n";

struct flag {
	const char *name;  /* without "--" */
	const char *env;
	const char **dst;
};

/* Whether a --cors-origins list holds "*" and is not "*" alone: "*" allows
 * every origin, so a list that also names some says two things at once
 * (docs/OPERATIONS.md, "Browsers on other origins"). */
static bool cors_star_in_list(const char *list)
{
	if (strcmp(list, "*") == 0)
		return false;
	for (const char *p = list;;) {
		size_t n = strcspn(p, ",");
		if (n == 1 && *p == '*')
			return true;
		if (!p[n])
			return false;
		p += n + 1;
	}
}

/* A decimal integer flag within lo..hi; otherwise one line on stderr. */
static int int_flag(const char *name, const char *s, long lo, long hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < lo || v > hi) {
		fprintf(stderr, "allotd: --%s must be %ld..%ld\n", name, lo, hi);
		return 1;
	}
	*out = (int)v;
	return 0;
}

/* --device: "cpu" (or unset) the CPU; "cuda" device 0; "cuda:N".  A CUDA device
 * must exist now: a build without CUDA, or no device, is one line on
 * stderr, not a failure later when the first model loads. */
static int device_flag(const char *s, bool *cuda, int *out)
{
	char why[200];
	int n;

	*cuda = false;
	*out = 0;
	if (!s || strcmp(s, "cpu") == 0)
		return 0;
	if (strncmp(s, "cuda:", 5) == 0) {
		char *end;
		long v;

		errno = 0;
		v = strtol(s + 5, &end, 10);
		if (end == s + 5 || *end || errno || v < 0 || v > 63)
			goto bad;
		*out = (int)v;
	} else if (strcmp(s, "cuda") != 0) {
		goto bad;
	}
	*cuda = true;
	n = infer_cuda_devices(why, sizeof why);
	if (n < 0) {
		fprintf(stderr, "allotd: --device %s: %s\n", s, why);
		return 1;
	}
	if (*out >= n) {
		fprintf(stderr, "allotd: --device %s: no CUDA device %d (%d found)\n", s, *out, n);
		return 1;
	}
	return 0;
bad:
	fprintf(stderr, "allotd: --device must be cpu, cuda or cuda:N (N 0..63)\n");
	return 1;
}

int app_config_parse(struct app_config *cfg, int argc, char **argv)
{
	static const char *threads_s, *flush_s, *retention_s, *device_s;
	memset(cfg, 0, sizeof *cfg);
	cfg->listen = "127.0.0.1:8080";
	cfg->db = "var/allot.db";
	cfg->charter = "policies/default.yaml";
	cfg->keys = "var/keys";
	cfg->models = "models";
	cfg->deployment = "local";
	cfg->webhook_retention_days = WEBHOOKS_RETENTION_DAYS_DEFAULT;
	threads_s = NULL;
	device_s = NULL;
	flush_s = NULL;
	retention_s = NULL;
	const char *init_env = getenv("ALLOT_INIT");
	if (init_env && *init_env) {
		if (strcmp(init_env, "1") != 0 && strcmp(init_env, "0") != 0) {
			fprintf(stderr, "allotd: ALLOT_INIT must be 1 or 0\n");
			return 1;
		}
		cfg->init = init_env[0] == '1';
	}
	const struct flag flags[] = {
		{"listen", "ALLOT_LISTEN", &cfg->listen},
		{"db", "ALLOT_DB", &cfg->db},
		{"charter", "ALLOT_CHARTER", &cfg->charter},
		{"keys", "ALLOT_KEYS", &cfg->keys},
		{"models", "ALLOT_MODELS", &cfg->models},
		{"deployment", "ALLOT_DEPLOYMENT", &cfg->deployment},
		{"threads", "ALLOT_THREADS", &threads_s},
		{"device", "ALLOT_DEVICE", &device_s},
		{"flush-ms", "ALLOT_FLUSH_MS", &flush_s},
		{"cors-origins", "ALLOT_CORS_ORIGINS", &cfg->cors_origins},
		{"backup-dir", "ALLOT_BACKUP_DIR", &cfg->backup_dir},
		{"webhook-retention-days", "ALLOT_WEBHOOK_RETENTION_DAYS", &retention_s},
	};
	const size_t nflags = sizeof flags / sizeof flags[0];
	for (size_t i = 0; i < nflags; i++) {
		const char *v = getenv(flags[i].env);
		if (v && *v)
			*flags[i].dst = v;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 2;
		}
		if (strcmp(a, "--check") == 0) {
			cfg->check = true;
			continue;
		}
		if (strcmp(a, "--init") == 0) {
			cfg->init = true;
			continue;
		}
		if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			cfg->verbose = true;
			continue;
		}
		bool matched = false;
		for (size_t f = 0; f < nflags && !matched; f++) {
			size_t n = strlen(flags[f].name);
			if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, flags[f].name, n) != 0)
				continue;
			if (a[2 + n] == '=') {
				*flags[f].dst = a + 3 + n;
				matched = true;
			} else if (a[2 + n] == '\0') {
				if (i + 1 >= argc) {
					fprintf(stderr, "allotd: --%s needs a value\n", flags[f].name);
					return 1;
				}
				*flags[f].dst = argv[++i];
				matched = true;
			}
		}
		if (!matched) {
			fprintf(stderr, "allotd: unknown argument \"%s\"\n%s", a, usage);
			return 1;
		}
	}
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->threads = nproc > 0 ? (int)nproc : 1;
	if (threads_s && int_flag("threads", threads_s, 1, 256, &cfg->threads))
		return 1;
	if (device_flag(device_s, &cfg->cuda, &cfg->cuda_device))
		return 1;
	if (flush_s) {
		if (int_flag("flush-ms", flush_s, 0, 10000, &cfg->flush_ms))
			return 1;
		cfg->flush_ms_set = true;
	}
	if (strlen(cfg->deployment) == 0 || strlen(cfg->deployment) > 64 ||
	    strspn(cfg->deployment, "abcdefghijklmnopqrstuvwxyz0123456789-_.") !=
		    strlen(cfg->deployment)) {
		fprintf(stderr, "allotd: --deployment must be 1..64 of [a-z0-9-_.]\n");
		return 1;
	}
	if (retention_s && int_flag("webhook-retention-days", retention_s, 0,
				    WEBHOOKS_RETENTION_DAYS_MAX, &cfg->webhook_retention_days))
		return 1;
	if (cfg->backup_dir && !*cfg->backup_dir) {
		fprintf(stderr, "allotd: --backup-dir must name a directory\n");
		return 1;
	}
	if (cfg->cors_origins && cors_star_in_list(cfg->cors_origins)) {
		fprintf(stderr, "allotd: --cors-origins \"%s\": \"*\" allows every origin and "
				"cannot be listed with others; give \"*\" alone, or only the "
				"origins\n", cfg->cors_origins);
		return 1;
	}
	if (cfg->cors_origins && !http_cors_list_ok(cfg->cors_origins)) {
		fprintf(stderr, "allotd: --cors-origins must be \"*\" or a comma-separated list of "
				"origins such as https://app.example.org or http://localhost:3000\n");
		return 1;
	}
	return 0;
}
