/* nodesync.h — several nodes on one database: the background poll that
 * brings in what the other nodes wrote (docs/DEPLOY.md, "Several nodes").
 *
 * One thread, every ALLOT_SYNC_MS milliseconds (default 1000): loads the
 * charter versions stored since this node's latest (app_charter_follow) and
 * merges the token revocations stored since its watermark into the gate's
 * set (tokens_refresh; gate/revwin.h: ids that commit out of order are
 * waited for, so the read is bounded without skipping one).
 * No lock that admissions take is held across a database call.  A failing
 * database is logged once, then retried at every interval; its recovery is
 * logged too.  Started only on PostgreSQL: a SQLite database has one owner.
 */
#ifndef ALLOT_DAEMON_NODESYNC_H
#define ALLOT_DAEMON_NODESYNC_H

#include <stddef.h>

#include "common/err.h"

#define NODESYNC_DEFAULT_MS 1000
#define NODESYNC_MIN_MS 50
#define NODESYNC_MAX_MS 3600000

struct app;
struct nodesync;

/* Reads ALLOT_SYNC_MS (an integer from NODESYNC_MIN_MS to NODESYNC_MAX_MS;
 * anything else is refused, msg says why) into *ms. */
allot_err nodesync_interval(int *ms, char *msg, size_t msgsz);

/* Starts the poll when app's database is shared (PostgreSQL); *out stays
 * NULL on SQLite.  app->gate must be open. */
allot_err nodesync_start(struct app *app, struct nodesync **out, char *msg, size_t msgsz);
/* Stops and joins the thread (NULL: nothing). */
void nodesync_stop(struct nodesync *ns);

#endif
