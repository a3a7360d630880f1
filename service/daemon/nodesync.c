/* nodesync.c — the poll that loads other nodes' charters and revocations. */
#include "daemon/nodesync.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "daemon/app.h"
#include "gate/gate.h"
#include "gate/tokens.h"
#include "store/store.h"

struct nodesync {
	struct app *app;
	int interval_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;            /* guarded by mu */
	bool failing;         /* the last round failed (only the thread uses it) */
};

allot_err nodesync_interval(int *ms, char *msg, size_t msgsz)
{
	const char *v = getenv("ALLOT_SYNC_MS");
	*ms = NODESYNC_DEFAULT_MS;
	if (!v || !v[0])
		return ALLOT_OK;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < NODESYNC_MIN_MS || n > NODESYNC_MAX_MS) {
		snprintf(msg, msgsz, "ALLOT_SYNC_MS=%.40s: expected milliseconds, an integer from "
			 "%d to %d", v, NODESYNC_MIN_MS, NODESYNC_MAX_MS);
		return ALLOT_E_INVALID;
	}
	*ms = (int)n;
	return ALLOT_OK;
}

/* One round: charters, then revocations.  Logs a failure once per outage. */
static void round_once(struct nodesync *ns)
{
	char msg[256] = "";
	allot_err e = app_charter_follow(ns->app, msg, sizeof msg);
	if (!e && tokens_refresh(gate_tokens(ns->app->gate), ns->app->store)) {
		e = ALLOT_E_STORE;
		snprintf(msg, sizeof msg, "cannot read the token revocations: %.160s",
			 ns->app->store->errmsg);
	}
	if (e && !ns->failing)
		log_warnx("node sync: %s (retried every %d ms; logged once until it recovers)",
			  msg, ns->interval_ms);
	else if (!e && ns->failing)
		log_info("node sync: the database answers again");
	ns->failing = e != ALLOT_OK;
}

static void *worker(void *arg)
{
	struct nodesync *ns = arg;
	pthread_mutex_lock(&ns->mu);
	while (!ns->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(ns->interval_ms % 1000) * 1000000;
		ts.tv_sec += ns->interval_ms / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&ns->cv, &ns->mu, &ts);
		if (ns->stop)
			break;
		pthread_mutex_unlock(&ns->mu);
		round_once(ns);
		pthread_mutex_lock(&ns->mu);
	}
	pthread_mutex_unlock(&ns->mu);
	return NULL;
}

allot_err nodesync_start(struct app *app, struct nodesync **out, char *msg, size_t msgsz)
{
	*out = NULL;
	int ms;
	allot_err e = nodesync_interval(&ms, msg, msgsz);
	if (e || !store_uri_is_pg(app->cfg.db))
		return e;
	struct nodesync *ns = calloc(1, sizeof *ns);
	if (!ns)
		return ALLOT_E_NOMEM;
	ns->app = app;
	ns->interval_ms = ms;
	pthread_mutex_init(&ns->mu, NULL);
	pthread_cond_init(&ns->cv, NULL);
	if (pthread_create(&ns->thread, NULL, worker, ns) != 0) {
		pthread_mutex_destroy(&ns->mu);
		pthread_cond_destroy(&ns->cv);
		free(ns);
		snprintf(msg, msgsz, "cannot start the node sync thread");
		return ALLOT_E_INTERNAL;
	}
	log_info("node sync: charters and token revocations from the shared database every %d ms",
		 ms);
	*out = ns;
	return ALLOT_OK;
}

void nodesync_stop(struct nodesync *ns)
{
	if (!ns)
		return;
	pthread_mutex_lock(&ns->mu);
	ns->stop = true;
	pthread_cond_signal(&ns->cv);
	pthread_mutex_unlock(&ns->mu);
	pthread_join(ns->thread, NULL);
	pthread_mutex_destroy(&ns->mu);
	pthread_cond_destroy(&ns->cv);
	free(ns);
}
