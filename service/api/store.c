/* store.c — POST /v1/store/backup (admin): a consistent online copy of the
 * database into a new file on the server's host, with the signed
 * checkpoint of exactly the log it holds (docs/OPERATIONS.md, "Backup and
 * restore").
 *
 * Request {"path": "/abs/file.db"}; answer {"path", "bytes", "size" (the
 * copy's log size), "root" (base64), "checkpoint" (the signed note)}.  The
 * path must be absolute and not exist; the copy is created 0600.  The
 * backup itself is an admin action in the audit log, after the copy (so it
 * is not in the copy). */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/b64.h"
#include "common/json.h"
#include "common/timeutil.h"
#include "ledger/ledgerlog.h"
#include "tlog/checkpoint.h"

/* Longest backup path accepted. */
#define BACKUP_PATH_MAX 1024

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
	const char *path = NULL;
	allot_err e = http_body_json(req, resp, &body);
	if (e)
		return e;
	if ((e = json_only_fields(body, fields, msg, sizeof msg)) ||
	    (e = json_get_str(body, "path", true, &path, msg, sizeof msg)))
		goto bad;
	e = ALLOT_E_INVALID;
	if (path[0] != '/' || strlen(path) > BACKUP_PATH_MAX) {
		snprintf(msg, sizeof msg, "\"path\" must be an absolute path on the server's host "
			 "(at most %d bytes)", BACKUP_PATH_MAX);
		goto bad;
	}
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
		snprintf(msg, sizeof msg, "the backup is in %s, but the audit log could not record it",
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
