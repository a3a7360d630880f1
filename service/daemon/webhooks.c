/* webhooks.c — the outbox's delivery worker, its signing key, and the
 * `charter` event (daemon/webhooks.h, docs/WEBHOOKS.md). */
#include "daemon/webhooks.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "crypto/ed25519.h"
#include "ledger/events.h"

#define WEBHOOKS_BATCH 32

struct webhooks {
	struct app *app;
	struct ed25519_keypair kp;
	char pub[ED25519_PUB_TEXT_MAX];
	int64_t backoff_ms;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;                 /* under mu */
	CURL *curl;                /* the worker's */
};

static allot_err key_load(struct webhooks *w, const char *dir, char *msg, size_t msgsz)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(msg, msgsz, "cannot create key directory %s: %s", dir, strerror(errno));
		return ALLOT_E_IO;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, WEBHOOKS_KEY_FILE);
	struct stat sb;
	allot_err e;
	if (stat(path, &sb) < 0 && errno == ENOENT) {
		if ((e = ed25519_keygen(&w->kp)) ||
		    (e = ed25519_private_write(path, &w->kp, 0, msg, msgsz)))
			return e;
		log_info("created the webhook signing key %s", path);
	} else if ((e = ed25519_private_read(path, &w->kp, msg, msgsz))) {
		return e;
	}
	ed25519_pub_format(w->kp.pub, w->pub);
	return ALLOT_OK;
}

/* The next attempt after `attempts` failed ones: backoff * 2^(attempts-1),
 * capped. */
static int64_t backoff_us(const struct webhooks *w, int attempts)
{
	int64_t ms = w->backoff_ms;
	for (int i = 1; i < attempts && ms < WEBHOOKS_BACKOFF_MS_MAX; i++)
		ms *= 2;
	if (ms > WEBHOOKS_BACKOFF_MS_MAX)
		ms = WEBHOOKS_BACKOFF_MS_MAX;
	return ms * 1000;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
	(void)p, (void)ctx;
	return size * n;
}

/* One attempt.  Returns the HTTP status (0: no answer), error text in err. */
static long post(struct webhooks *w, const struct outbox_event *ev, char *err, size_t errsz)
{
	long ts = (long)(time_now_us() / 1000000);
	struct buf signed_text = BUF_INIT, h = BUF_INIT;
	buf_printf(&signed_text, "%s.%ld.%s", ev->id, ts, ev->body);
	uint8_t sig[ED25519_SIG_LEN];
	char sig64[128];
	if (signed_text.oom || ed25519_sign(&w->kp, signed_text.data, signed_text.len, sig)) {
		buf_release(&signed_text);
		snprintf(err, errsz, "could not sign the event");
		return 0;
	}
	buf_release(&signed_text);
	b64_encode(sig, sizeof sig, sig64);
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	hl = curl_slist_append(hl, "Expect:");
	buf_printf(&h, "webhook-id: %s", ev->id);
	hl = curl_slist_append(hl, buf_str(&h));
	buf_reset(&h);
	buf_printf(&h, "webhook-timestamp: %ld", ts);
	hl = curl_slist_append(hl, buf_str(&h));
	buf_reset(&h);
	buf_printf(&h, "webhook-signature: v1a,%s", sig64);
	hl = curl_slist_append(hl, buf_str(&h));
	buf_release(&h);
	CURL *c = w->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, ev->url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, ev->body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)WEBHOOKS_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)WEBHOOKS_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "allot-webhooks/1");
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else
		snprintf(err, errsz, "%s", curl_easy_strerror(rc));
	curl_slist_free_all(hl);
	if (rc == CURLE_OK && (status < 200 || status > 299))
		snprintf(err, errsz, "HTTP %ld", status);
	return status;
}

static void deliver(void *ctx, const struct outbox_event *ev)
{
	struct webhooks *w = ctx;
	struct store *st = w->app->store;
	char err[256] = "";
	long status = post(w, ev, err, sizeof err);
	int64_t now = time_now_us();
	if (status >= 200 && status <= 299) {
		metrics_add(MC_WEBHOOK_DELIVERED, 1);
		if (store_outbox_done(st, ev->seq, now))
			log_warnx("webhooks: %s delivered but not marked so (it will be sent again)",
				  ev->id);
		return;
	}
	metrics_add(MC_WEBHOOK_FAILED, 1);
	int attempts = ev->attempts + 1;
	int64_t next = now + backoff_us(w, attempts);
	log_info("webhooks: %s event %s to %s: %s; attempt %d, next in %lld ms", ev->type, ev->id,
		 ev->url, err, attempts, (long long)(next - now) / 1000);
	store_outbox_retry(st, ev->seq, attempts, next, err);
}

static bool stopping(struct webhooks *w)
{
	pthread_mutex_lock(&w->mu);
	bool stop = w->stop;
	pthread_mutex_unlock(&w->mu);
	return stop;
}

/* Deletes the delivered events older than the retention, a batch per
 * transaction (the store is not held for long). */
static void prune(struct webhooks *w)
{
	int days = w->app->cfg.webhook_retention_days;
	int64_t before = time_now_us() - (int64_t)days * 86400 * US_PER_SEC, n = 0, total = 0;
	allot_err e;
	do {
		e = store_outbox_prune(w->app->store, before, WEBHOOKS_PRUNE_BATCH, &n);
		total += n;
	} while (!e && n == WEBHOOKS_PRUNE_BATCH && !stopping(w));
	if (e && e != ALLOT_E_UNSUPPORTED)
		log_warnx("webhooks: the outbox could not be pruned: %s", w->app->store->errmsg);
	else if (total)
		log_info("webhooks: %lld delivered events older than %d days deleted from the outbox",
			 (long long)total, days);
}

static void *worker(void *arg)
{
	struct webhooks *w = arg;
	int64_t next_prune = 0;
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		pthread_mutex_unlock(&w->mu);
		int64_t now = time_now_us();
		if (now >= next_prune) {
			prune(w);
			next_prune = now + WEBHOOKS_PRUNE_MS * 1000;
		}
		store_outbox_due(w->app->store, now, WEBHOOKS_BATCH, deliver, w);
		pthread_mutex_lock(&w->mu);
		if (w->stop)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)WEBHOOKS_POLL_MS * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

allot_err webhooks_charter_applied(struct app *app, const struct active_charter *ac)
{
	char dedupe[64], eff[TIME_FMT_MAX], at[TIME_FMT_MAX];
	snprintf(dedupe, sizeof dedupe, "charter:%lld", (long long)ac->row.version);
	json_t *d = json_pack("{s:s,s:I,s:s,s:s,s:s,s:s}", "charter", ac->row.charter_id,
			      "version", (json_int_t)ac->row.version, "sha256", ac->row.sha256,
			      "author", ac->row.author, "applied_at",
			      time_format_rfc3339(ac->row.applied_at, at), "effective",
			      time_format_rfc3339(ac->row.effective, eff));
	return events_emit(app->store, ac->c, CHARTER_EV_CHARTER, dedupe, d, time_now_us());
}

allot_err webhooks_open(struct app *app, struct webhooks **out, char *msg, size_t msgsz)
{
	struct webhooks *w = calloc(1, sizeof *w);
	if (!w)
		return ALLOT_E_NOMEM;
	w->app = app;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->backoff_ms = WEBHOOKS_BACKOFF_MS_DEFAULT;
	const char *env = getenv("ALLOT_WEBHOOK_BACKOFF_MS");
	if (env && *env) {
		char *end;
		long long v = strtoll(env, &end, 10);
		if (*end || v < 1 || v > WEBHOOKS_BACKOFF_MS_MAX) {
			snprintf(msg, msgsz, "ALLOT_WEBHOOK_BACKOFF_MS must be an integer of "
				 "milliseconds between 1 and %lld, not \"%s\"",
				 (long long)WEBHOOKS_BACKOFF_MS_MAX, env);
			webhooks_close(w);
			return ALLOT_E_INVALID;
		}
		w->backoff_ms = v;
	}
	allot_err e = key_load(w, app->cfg.keys, msg, msgsz);
	if (e) {
		webhooks_close(w);
		return e;
	}
	/* An apply whose event was lost (a crash between the two writes). */
	struct active_charter *ac = app_charter_latest(app);
	if (ac) {
		char dedupe[64];
		bool has = true;
		snprintf(dedupe, sizeof dedupe, "charter:%lld", (long long)ac->row.version);
		if (store_outbox_has(app->store, dedupe, &has) == ALLOT_OK && !has)
			webhooks_charter_applied(app, ac);
		app_charter_put(app, ac);
	}
	if (app->cfg.no_background) {
		*out = w;
		return ALLOT_OK;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!(w->curl = curl_easy_init())) {
		webhooks_close(w);
		return ALLOT_E_NOMEM;
	}
	if (pthread_create(&w->thread, NULL, worker, w) != 0) {
		snprintf(msg, msgsz, "cannot start the webhook worker");
		webhooks_close(w);
		return ALLOT_E_INTERNAL;
	}
	w->running = true;
	*out = w;
	return ALLOT_OK;
}

void webhooks_close(struct webhooks *w)
{
	if (!w)
		return;
	if (w->running) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	if (w->curl)
		curl_easy_cleanup(w->curl);
	ed25519_keypair_wipe(&w->kp);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

const char *webhooks_pub(const struct webhooks *w) { return w->pub; }
