/* confcheck.c — allotd --check (daemon/confcheck.h, docs/OPERATIONS.md). */
#include "daemon/confcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "charter/charter.h"
#include "daemon/fileio.h"
#include "daemon/nodesync.h"
#include "gate/glease.h"
#include "http/server.h"
#include "ledger/ledgerlog.h"
#include "store/store.h"

struct cc {
	FILE *out, *err;
	int problems;
};

static void problem(struct cc *c, const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(c->err, "allotd --check: %s: ", what);
	vfprintf(c->err, fmt, ap);
	fputc('\n', c->err);
	va_end(ap);
	c->problems++;
}

static void check_listen(struct cc *c, const char *listen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char msg[256];
	if (http_parse_listen(listen, &ss, &sl, msg, sizeof msg))
		problem(c, "--listen", "%s", msg);
}

/* Whether the keys directory holds a log key (an earlier deployment). */
static bool keys_have_log(const char *keys)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", keys, LEDGERLOG_KEY_FILE);
	return access(path, F_OK) == 0;
}

/* Opens db read-only: readable and current, older (migrated on start), or
 * the store's reason. */
static void check_db_open(struct cc *c, const char *db)
{
	struct store *st = NULL;
	char msg[512] = "", shown[1024];
	const char *name = store_uri_printable(db, shown, sizeof shown);
	if (store_open_readonly(db, &st, msg, sizeof msg) == ALLOT_OK) {
		store_close(st);
		fprintf(c->out, "database %s readable, schema current\n", name);
	} else if (strstr(msg, "start allotd on it once to migrate it")) {
		fprintf(c->out, "database %s: an older schema, migrated on start\n", name);
	} else {
		problem(c, "--db", "%s", msg);
	}
}

static void check_db(struct cc *c, const struct app_config *cfg)
{
	const char *db = cfg->db;
	const char *scheme = strstr(db, "://");
	if (store_uri_is_pg(db)) {
		check_db_open(c, db);
		return;
	}
	if (scheme) {
		problem(c, "--db", "unknown scheme \"%.*s://\": --db is a SQLite file path or a "
			"postgres:// URI", (int)(scheme - db), db);
		return;
	}
	struct stat sb;
	if (stat(db, &sb) != 0) {
		char dir[4096];
		snprintf(dir, sizeof dir, "%s", db);
		const char *parent = dirname(dir);
		if (access(parent, W_OK | X_OK) != 0)
			problem(c, "--db", "%s does not exist and its directory %s is not writable "
				"(%s)", db, parent, strerror(errno));
		else if (keys_have_log(cfg->keys) && !cfg->init)
			problem(c, "--db", "%s does not exist but %s holds the log key of an earlier "
				"deployment: restore its database, or start a new deployment with "
				"--init (docs/OPERATIONS.md)", db, cfg->keys);
		else
			fprintf(c->out, "database %s will be created on first start\n", db);
		return;
	}
	if (!S_ISREG(sb.st_mode)) {
		problem(c, "--db", "%s is not a regular file", db);
		return;
	}
	if (sb.st_mode & 077)
		problem(c, "--db", "%s is readable by its group or others (mode %04o): chmod 600 it",
			db, (unsigned)(sb.st_mode & 07777));
	check_db_open(c, db);
}

/* The settings read from the environment at start (allotd refuses them). */
static void check_env(struct cc *c)
{
	char msg[256];
	int ms;
	struct glease_cfg lc;
	if (nodesync_interval(&ms, msg, sizeof msg))
		problem(c, "environment", "%s", msg);
	if (glease_config(&lc, msg, sizeof msg))
		problem(c, "environment", "%s", msg);
}

static void check_keys(struct cc *c, const char *keys)
{
	struct stat sb;
	if (stat(keys, &sb) != 0) {
		if (errno != ENOENT)
			problem(c, "--keys", "%s: %s", keys, strerror(errno));
		else
			fprintf(c->out, "keys directory %s will be created (0700) on first start\n",
				keys);
		return;
	}
	if (!S_ISDIR(sb.st_mode)) {
		problem(c, "--keys", "%s is not a directory", keys);
		return;
	}
	if (sb.st_mode & 077)
		problem(c, "--keys", "%s is accessible by its group or others (mode %04o): "
			"chmod 700 it (allotd refuses it)", keys, (unsigned)(sb.st_mode & 07777));
	if (access(keys, R_OK | W_OK | X_OK) != 0)
		problem(c, "--keys", "%s: %s", keys, strerror(errno));
}

/* Every file model of the charter exists in --models and is a GGUF file. */
static void check_models(struct cc *c, const struct charter *ch, const char *dir)
{
	for (size_t i = 0; i < ch->nmodels; i++) {
		const struct charter_model *m = &ch->models[i];
		if (!m->file)
			continue;
		char path[4096], magic[4];
		snprintf(path, sizeof path, "%s/%s", dir, m->file);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			problem(c, "model", "%s (model %s): %s", path, m->id, strerror(errno));
			continue;
		}
		ssize_t n = read(fd, magic, sizeof magic);
		close(fd);
		if (n != 4 || memcmp(magic, "GGUF", 4) != 0)
			problem(c, "model", "%s (model %s) is not a GGUF file", path, m->id);
	}
}

int confcheck_run(const struct app_config *cfg, FILE *out, FILE *err)
{
	struct cc c = {out, err, 0};
	if (charter_check_file(cfg->charter, out, err) != 0)
		c.problems++;
	check_listen(&c, cfg->listen);
	check_db(&c, cfg);
	check_keys(&c, cfg->keys);
	check_env(&c);
	/* The models of the charter, when it parses. */
	char msg[256];
	char *text = NULL;
	size_t len;
	if (file_read_all(cfg->charter, CHARTER_MAX_BYTES, &text, &len, msg, sizeof msg) ==
	    ALLOT_OK) {
		struct charter_errors errs = CHARTER_ERRORS_INIT;
		struct charter *ch = NULL;
		if (charter_parse(cfg->charter, text, len, &ch, &errs) == ALLOT_OK)
			check_models(&c, ch, cfg->models);
		charter_free(ch);
		charter_errors_release(&errs);
		free(text);
	}
	if (c.problems == 0)
		fprintf(out, "configuration OK\n");
	else
		fprintf(err, "allotd --check: %d problem%s\n", c.problems, c.problems == 1 ? "" : "s");
	return c.problems ? 1 : 0;
}
