/* store.c — POST /v1/store/backup (admin): a consistent online copy of the
 * database into a new file on the server's host, with the signed
 * checkpoint of exactly the log it holds (docs/OPERATIONS.md, "Backup and
 * restore").
 *
 * Request {"path": "/abs/file.db"}; answer {"path" (as resolved), "bytes",
 * "size" (the copy's log size), "root" (base64), "checkpoint" (the signed
 * note)}.  The path must be absolute, in allotd's --backup-dir (default: the
 * database's directory) once ".." and symbolic links are resolved, and not
 * exist: anything else is a 400 and nothing is written.  The copy is
 * created 0600.  The backup itself is an admin action in the audit log,
 * after the copy (so it is not in the copy). */
#include "api/api.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/json.h"
#include "common/timeutil.h"
#include "ledger/ledgerlog.h"
#include "tlog/checkpoint.h"

/* Longest backup path accepted. */
#define BACKUP_PATH_MAX 1024

/* The directory backups may be written to, as configured: --backup-dir,
 * else the database's directory ("." for a bare file name); NULL for a
 * database that is not a file. */
static const char *backup_dir(const struct app_config *cfg, char *buf, size_t bufsz)
{
	if (cfg->backup_dir)
		return cfg->backup_dir;
	if (strstr(cfg->db, "://") || strcmp(cfg->db, ":memory:") == 0)
		return NULL;
	const char *slash = strrchr(cfg->db, '/');
	if (!slash)
		return ".";
	if (slash == cfg->db)
		return "/";
	snprintf(buf, bufsz, "%.*s", (int)(slash - cfg->db), cfg->db);
	return buf;
}

/* Checks path (absolute, its directory inside the backup directory once
 * ".." and symbolic links are resolved, not there yet) and writes the
 * resolved path to out.  ALLOT_E_INVALID with msg otherwise. */
static allot_err backup_path(const struct app_config *cfg, const char *path, char *out,
			     size_t outsz, char *msg, size_t msgsz)
{
	char conf[PATH_MAX], root[PATH_MAX], dir[PATH_MAX], real[PATH_MAX];
	const char *bd = backup_dir(cfg, conf, sizeof conf);
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (path[0] != '/' || strlen(path) > BACKUP_PATH_MAX) {
		snprintf(msg, msgsz, "\"path\" must be an absolute path on the server's host "
			 "(at most %d bytes)", BACKUP_PATH_MAX);
		return ALLOT_E_INVALID;
	}
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		snprintf(msg, msgsz, "\"path\" must name a file, not a directory: %.200s", path);
		return ALLOT_E_INVALID;
	}
	if (!bd) {
		snprintf(msg, msgsz, "this database is not a file: start allotd with --backup-dir "
			 "to say where backups may be written");
		return ALLOT_E_INVALID;
	}
	if (!realpath(bd, root)) {
		snprintf(msg, msgsz, "the backup directory %.200s (allotd --backup-dir) cannot be "
			 "resolved: %s", bd, strerror(errno));
		return ALLOT_E_INVALID;
	}
	snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (!realpath(dir, real)) {
		snprintf(msg, msgsz, "the directory of \"path\" cannot be resolved (%s): %.200s",
			 strerror(errno), path);
		return ALLOT_E_INVALID;
	}
	size_t rl = strlen(root);
	if (strncmp(real, root, rl) != 0 ||
	    (real[rl] != '\0' && real[rl] != '/' && strcmp(root, "/") != 0)) {
		snprintf(msg, msgsz, "\"path\" must be in the backup directory %.200s (allotd "
			 "--backup-dir), after resolving \"..\" and symbolic links: %.200s", root, path);
		return ALLOT_E_INVALID;
	}
	if ((size_t)snprintf(out, outsz, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base) >=
	    outsz) {
		snprintf(msg, msgsz, "\"path\" is too long");
		return ALLOT_E_INVALID;
	}
	struct stat sb;
	if (lstat(out, &sb) == 0) {
		snprintf(msg, msgsz, "%.200s already exists: a backup never overwrites a file", out);
		return ALLOT_E_INVALID;
	}
	if (errno != ENOENT) {
		snprintf(msg, msgsz, "cannot check %.200s: %s", out, strerror(errno));
		return ALLOT_E_INVALID;
	}
	return ALLOT_OK;
}

/* Opens the copy read-only and signs its log's head. */
static allot_err backup_checkpoint(struct app *app, const char *path, char **note,
				   struct checkpoint *cp, char *msg, size_t msgsz)
{
	struct store *copy = NULL;
	allot_err e = store_open_readonly(path, &copy, msg, msgsz);
	if (e)
		return e;
	e = ledgerlog_checkpoint_of(app->log, copy, note, cp, msg, msgsz);
	store_close(copy);
	return e;
}

allot_err api_store_backup(struct http_req *req, struct http_resp *resp)
{
	static const char *const fields[] = {"path", NULL};
	struct app *app = api_app(req);
	json_t *body = NULL;
	char msg[512];
	const char *asked = NULL;
	char path[PATH_MAX];
	allot_err e = http_body_json(req, resp, &body);
	if (e)
		return e;
	if ((e = json_only_fields(body, fields, msg, sizeof msg)) ||
	    (e = json_get_str(body, "path", true, &asked, msg, sizeof msg)) ||
	    (e = backup_path(&app->cfg, asked, path, sizeof path, msg, sizeof msg)))
		goto bad;
	if ((e = store_backup(app->store, path, msg, sizeof msg)))
		goto bad;
	char *note = NULL;
	struct checkpoint cp;
	if ((e = backup_checkpoint(app, path, &note, &cp, msg, sizeof msg))) {
		remove(path);
		goto bad;
	}
	struct stat sb;
	char root[64];
	root[b64_encode(cp.root, sizeof cp.root, root)] = '\0';
	json_t *detail = json_pack("{s:s,s:I}", "root", root, "size", (json_int_t)cp.size);
	char *dtext = json_dump_sorted(detail);
	json_decref(detail);
	struct audit_entry a = {.at = time_now_us(), .actor = api_actor(req),
				.action = "store.backup", .target = path, .detail = dtext};
	e = store_audit_append(app->store, &a);
	free(dtext);
	if (e) {
		free(note);
		snprintf(msg, sizeof msg, "the backup is in %.300s, but the audit log could not record it",
			 path);
		goto bad;
	}
	json_t *j = json_pack("{s:s,s:I,s:I,s:s,s:s}", "path", path, "bytes",
			      (json_int_t)(stat(path, &sb) == 0 ? sb.st_size : 0), "size",
			      (json_int_t)cp.size, "root", root, "checkpoint", note);
	free(note);
	json_decref(body);
	return http_json(resp, 200, j);
bad:
	json_decref(body);
	return http_error(resp, e, "%s", msg);
}
