/* glease.c — a node's leases of busy levels (gate/glease.h; tier B of
 * issue 13, docs/POSTGRES.md "Leases and epochs").
 *
 * One entry per level and period this node admitted at recently.  An
 * entry counts the admissions of each second; a level with at least
 * `busy` of them in the last second is busy, and the keeper thread takes
 * a lease there (size: the level's admitted worst cases over `ahead`, at
 * least four of the largest, capped in the database by a fair share).  A
 * request is admitted from leases only when every level it has holds an
 * unexpired lease with room for its worst case (and it has no token level
 * and no level with concurrency or rate limits, which only the database
 * counts across nodes); else tier A decides.  The keeper tops a lease up
 * at half used or half its validity gone, returns it once unused for
 * `idle` with nothing in flight, and beats.  A fenced answer (another
 * incarnation of this node started) drops every lease: their room comes
 * back at their expiry + grace through any node's sweep. */
#include "gate/glease.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/money.h"
#include "common/timeutil.h"

#define GL_MAX 64              /* entries (levels and periods) */
#define GL_TICK_MS 100         /* the keeper's period */
#define GL_WINDOW_US 1000000LL /* the busy count's window */

struct gl_entry {
	bool used;
	struct store_budget_level lv;  /* level, period, cap */
	int64_t version;               /* the charter version of cap */
	/* busy accounting: this window's and the last one's */
	int64_t win_start, win_n, win_amount, last_n, last_amount, max_worst;
	int64_t last_use_us;
	/* the lease (id 0: none) */
	struct store_lease l;
	int64_t held, spent;           /* in flight (worst cases); settled here */
};

struct glease {
	struct store *st;
	char node[128];
	int64_t epoch;
	struct glease_cfg cfg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, fenced;
	pthread_t th;
	struct gl_entry e[GL_MAX];
	uint64_t admitted, db;
};

/* Reads the integer variable name into *v: unset or empty gives def,
 * anything but an integer from lo to hi is refused (msg names the variable
 * and the range). */
static allot_err env_int(const char *name, int64_t def, int64_t lo, int64_t hi, const char *unit,
			 int64_t *v, char *msg, size_t msgsz)
{
	const char *s = getenv(name);
	*v = def;
	if (!s || !*s)
		return ALLOT_OK;
	char *end = NULL;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno || end == s || *end || n < lo || n > hi) {
		snprintf(msg, msgsz, "%s=%.40s: expected %s, an integer from %lld to %lld", name, s,
			 unit, (long long)lo, (long long)hi);
		return ALLOT_E_INVALID;
	}
	*v = n;
	return ALLOT_OK;
}

static allot_err grace_ms(int64_t *ms, char *msg, size_t msgsz)
{
	/* the longest request (600 s) and a minute for the nodes' clocks */
	return env_int("ALLOT_LEASE_GRACE_MS", GLEASE_DEFAULT_GRACE_MS, 0, GLEASE_MAX_MS,
		       "milliseconds", ms, msg, msgsz);
}

allot_err glease_config(struct glease_cfg *c, char *msg, size_t msgsz)
{
	int64_t ttl_ms, g_ms;
	allot_err e = env_int("ALLOT_LEASE_BUSY", GLEASE_DEFAULT_BUSY, 0, GLEASE_MAX_BUSY,
			      "admissions a second (0: leases off)", &c->busy, msg, msgsz);
	if (!e)
		e = env_int("ALLOT_LEASE_TTL_MS", GLEASE_DEFAULT_TTL_MS, GLEASE_MIN_TTL_MS,
			    GLEASE_MAX_MS, "milliseconds", &ttl_ms, msg, msgsz);
	if (!e)
		e = grace_ms(&g_ms, msg, msgsz);
	if (e)
		return e;
	c->ttl_us = ttl_ms * 1000;
	c->grace_us = g_ms * 1000;
	c->ahead_us = 2 * 1000000LL;
	c->idle_us = c->ttl_us / 2;
	return ALLOT_OK;
}

int64_t glease_grace_us(void)
{
	/* allotd refused a bad value at its start (glease_config) */
	char msg[128];
	int64_t ms;
	if (grace_ms(&ms, msg, sizeof msg))
		ms = GLEASE_DEFAULT_GRACE_MS;
	return ms * 1000;
}

/* The entry of level l (creating it when make), or NULL. */
static struct gl_entry *entry(struct glease *L, const struct store_budget_level *l, bool make)
{
	struct gl_entry *free_e = NULL;
	for (int i = 0; i < GL_MAX; i++) {
		struct gl_entry *e = &L->e[i];
		if (!e->used) {
			if (!free_e)
				free_e = e;
			continue;
		}
		if (e->lv.period_start == l->period_start && e->lv.period_end == l->period_end &&
		    strcmp(e->lv.level, l->level) == 0)
			return e;
	}
	if (!make || !free_e)
		return NULL;
	memset(free_e, 0, sizeof *free_e);
	free_e->used = true;
	free_e->lv = *l;
	return free_e;
}

static bool eligible(const struct store_budget_req *rq)
{
	for (size_t i = 0; i < rq->n; i++) {
		const struct store_budget_level *l = &rq->lv[i];
		if (strncmp(l->level, "token:", 6) == 0 || l->concurrent != STORE_BUDGET_NO_LIMIT ||
		    l->requests_per_minute != STORE_BUDGET_NO_LIMIT ||
		    l->tokens_per_minute != STORE_BUDGET_NO_LIMIT)
			return false;
	}
	return rq->n > 0;
}

static void count(struct gl_entry *e, int64_t amount, int64_t now)
{
	if (now - e->win_start >= GL_WINDOW_US) {
		bool next = now - e->win_start < 2 * GL_WINDOW_US;
		e->last_n = next ? e->win_n : 0;
		e->last_amount = next ? e->win_amount : 0;
		e->win_start = now - now % GL_WINDOW_US;
		e->win_n = e->win_amount = 0;
	}
	e->win_n++;
	e->win_amount = money_add_sat(e->win_amount, amount);
	if (amount > e->max_worst)
		e->max_worst = amount;
	e->last_use_us = now;
}

void glease_note(struct glease *L, const struct store_budget_req *rq, int64_t now)
{
	if (!L)
		return;
	pthread_mutex_lock(&L->mu);
	L->db++;
	if (!eligible(rq)) {
		pthread_mutex_unlock(&L->mu);
		return;
	}
	for (size_t i = 0; i < rq->n; i++) {
		struct gl_entry *e = entry(L, &rq->lv[i], true);
		if (e) {
			e->lv.cap = rq->lv[i].cap;
			e->version = rq->charter_version;
			count(e, rq->amount, now);
		}
	}
	pthread_mutex_unlock(&L->mu);
}

bool glease_admit(struct glease *L, const struct store_budget_req *rq, int64_t now,
		  struct glease_use *u, int64_t *remaining, size_t *at)
{
	memset(u, 0, sizeof *u);
	if (!L || !eligible(rq))
		return false;
	pthread_mutex_lock(&L->mu);
	struct gl_entry *es[STORE_BUDGET_LEVELS] = {0};
	bool ok = !L->fenced;
	for (size_t i = 0; ok && i < rq->n; i++) {
		struct gl_entry *e = es[i] = entry(L, &rq->lv[i], false);
		ok = e && e->l.id > 0 && now < e->l.expires_us && e->version >= rq->charter_version &&
		     e->l.size - e->held - e->spent >= rq->amount;
	}
	if (ok) {
		*remaining = INT64_MAX;
		for (size_t i = 0; i < rq->n; i++) {
			struct gl_entry *e = es[i];
			e->held += rq->amount;
			count(e, rq->amount, now);
			u->slot[i] = (int)(e - L->e);
			u->ref[i] = (struct store_lease_ref){e->l.id, L->epoch};
			int64_t room = e->l.size - e->held - e->spent;
			if (room < *remaining) {
				*remaining = room;
				*at = i;
			}
		}
		u->n = rq->n;
		u->held = rq->amount;
		L->admitted++;
	}
	pthread_mutex_unlock(&L->mu);
	return ok;
}

void glease_done(struct glease *L, const struct glease_use *u, int64_t actual)
{
	if (!L || !u->n)
		return;
	pthread_mutex_lock(&L->mu);
	for (size_t i = 0; i < u->n; i++) {
		struct gl_entry *e = &L->e[u->slot[i]];
		if (e->l.id != u->ref[i].id)
			continue; /* dropped (fenced) meanwhile */
		e->held -= u->held;
		/* never less than what it may have cost */
		e->spent = money_add_sat(e->spent, actual < u->held ? actual : u->held);
	}
	pthread_mutex_unlock(&L->mu);
}

void glease_stats(struct glease *L, struct glease_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!L)
		return;
	pthread_mutex_lock(&L->mu);
	for (int i = 0; i < GL_MAX; i++)
		out->held += L->e[i].used && L->e[i].l.id > 0;
	out->admitted = L->admitted;
	out->db = L->db;
	pthread_mutex_unlock(&L->mu);
}

/* ---- the keeper ------------------------------------------------------------------------ */

static void drop_all(struct glease *L)
{
	L->fenced = true;
	for (int i = 0; i < GL_MAX; i++)
		memset(&L->e[i].l, 0, sizeof L->e[i].l);
	log_warnx("this node's leases are fenced (another allotd started as node %s): it admits "
		  "through the database only", L->node);
}

/* What entry e should do now (under the lock): 't' take or top up, 'r'
 * return, 0 nothing; *want the size asked. */
static int plan(const struct glease *L, const struct gl_entry *e, int64_t now, int64_t *want)
{
	/* the admissions of the last whole second, or of this one if more */
	int64_t age = now - e->win_start, n = 0, amount = 0;
	if (age < GL_WINDOW_US) {
		n = e->last_n;
		amount = e->last_amount;
	}
	if (age < 2 * GL_WINDOW_US && e->win_n > n) {
		n = e->win_n;
		amount = e->win_amount;
	}
	bool busy = L->cfg.busy > 0 && n >= L->cfg.busy;
	*want = money_add_sat(money_mul_sat(amount, L->cfg.ahead_us / GL_WINDOW_US),
			      money_mul_sat(e->max_worst, 4));
	if (e->l.id <= 0)
		return busy ? 't' : 0;
	int64_t used = e->held + e->spent;
	if (e->held == 0 && (now >= e->l.expires_us || now - e->last_use_us >= L->cfg.idle_us))
		return 'r';
	if (now < e->l.expires_us &&
	    (2 * used >= e->l.size || 2 * (e->l.expires_us - now) <= L->cfg.ttl_us))
		return 't';
	return 0;
}

/* A lease answered "no such lease of this epoch": fenced (another
 * incarnation started: every lease is dropped) or only that lease gone (it
 * was swept: forgotten).  The heartbeat tells which.  Outside the lock. */
static void lease_gone(struct glease *L, int i, int64_t id)
{
	bool cur = true;
	allot_err err = store_node_heartbeat(L->st, L->node, L->epoch, time_now_us(), &cur);
	pthread_mutex_lock(&L->mu);
	if (!err && !cur) {
		if (!L->fenced)
			drop_all(L);
	} else if (L->e[i].l.id == id) {
		memset(&L->e[i].l, 0, sizeof L->e[i].l);
		L->e[i].spent = 0;
	}
	pthread_mutex_unlock(&L->mu);
}

/* Takes or tops up (t), or returns (r), entry i, outside the lock. */
static void act(struct glease *L, int i, int what, int64_t want, int64_t now)
{
	pthread_mutex_lock(&L->mu);
	struct gl_entry *e = &L->e[i];
	struct store_budget_level lv = e->lv;
	int64_t version = e->version;
	struct store_lease l = e->l;
	if (what == 'r') {
		if (e->held != 0 || e->l.id != l.id || l.id <= 0) { /* admitted meanwhile */
			pthread_mutex_unlock(&L->mu);
			return;
		}
		e->l.expires_us = 0; /* no admission from it from here on */
	}
	pthread_mutex_unlock(&L->mu);
	if (what == 'r') {
		int64_t back = 0;
		allot_err err = store_lease_return(L->st, l.id, L->node, L->epoch, &back);
		if (!err && back < 0) {
			lease_gone(L, i, l.id);
			return;
		}
		pthread_mutex_lock(&L->mu);
		if (!err && e->l.id == l.id) {
			memset(&e->l, 0, sizeof e->l);
			e->spent = 0;
		}
		/* a failure leaves it: its room comes back at expiry + grace */
		pthread_mutex_unlock(&L->mu);
		return;
	}
	struct store_lease t = l.id > 0 ? l : (struct store_lease){0};
	allot_err err = store_lease_take(L->st, L->node, L->epoch, &lv, version, want, now,
					 now + L->cfg.ttl_us, 3 * L->cfg.ttl_us, &t);
	if (!err && t.id < 0) {
		lease_gone(L, i, l.id);
		return;
	}
	pthread_mutex_lock(&L->mu);
	if (!err && t.id > 0 && (l.id == 0 || e->l.id == l.id)) {
		if (l.id == 0)
			e->spent = 0;
		e->l = t;
	}
	pthread_mutex_unlock(&L->mu);
}

static void tick(struct glease *L, int64_t *beat)
{
	int64_t now = time_now_us();
	if (now - *beat >= 1000000) {
		bool cur = true;
		if (!store_node_heartbeat(L->st, L->node, L->epoch, now, &cur) && !cur) {
			pthread_mutex_lock(&L->mu);
			if (!L->fenced)
				drop_all(L);
			pthread_mutex_unlock(&L->mu);
		}
		*beat = now;
	}
	for (int i = 0; i < GL_MAX; i++) {
		pthread_mutex_lock(&L->mu);
		int64_t want = 0;
		int what = L->e[i].used && !L->fenced ? plan(L, &L->e[i], now, &want) : 0;
		/* forget a level unused for long with no lease */
		if (L->e[i].used && L->e[i].l.id == 0 && L->e[i].held == 0 &&
		    now - L->e[i].last_use_us > 60 * 1000000LL)
			L->e[i].used = false;
		pthread_mutex_unlock(&L->mu);
		if (what)
			act(L, i, what, want, now);
	}
}

static void *keeper(void *arg)
{
	struct glease *L = arg;
	int64_t beat = 0;
	pthread_mutex_lock(&L->mu);
	while (!L->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += GL_TICK_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&L->cv, &L->mu, &ts);
		if (L->stop)
			break;
		pthread_mutex_unlock(&L->mu);
		tick(L, &beat);
		pthread_mutex_lock(&L->mu);
	}
	pthread_mutex_unlock(&L->mu);
	return NULL;
}

allot_err glease_open(struct store *st, const char *node, struct glease **out, char *msg,
		      size_t msgsz)
{
	*out = NULL;
	if (!store_has_leases(st))
		return ALLOT_OK;
	struct glease *L = calloc(1, sizeof *L);
	if (!L)
		return ALLOT_E_NOMEM;
	L->st = st;
	snprintf(L->node, sizeof L->node, "%s", node);
	allot_err e = glease_config(&L->cfg, msg, msgsz);
	if (e) {
		free(L);
		return e;
	}
	e = store_node_start(st, L->node, time_now_us(), &L->epoch);
	if (e) {
		snprintf(msg, msgsz, "cannot register node %s's epoch: %s", L->node, st->errmsg);
		free(L);
		return e;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&L->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&L->mu, NULL);
	if (L->cfg.busy > 0 && pthread_create(&L->th, NULL, keeper, L) != 0) {
		snprintf(msg, msgsz, "cannot start the leases' thread");
		pthread_cond_destroy(&L->cv);
		pthread_mutex_destroy(&L->mu);
		free(L);
		return ALLOT_E_NOMEM;
	}
	if (L->cfg.busy == 0)
		L->fenced = true; /* leases off: nothing is ever taken */
	log_info("node %s, epoch %lld; leases %s", L->node, (long long)L->epoch,
		 L->cfg.busy ? "for levels admitting often" : "off (ALLOT_LEASE_BUSY=0)");
	*out = L;
	return ALLOT_OK;
}

void glease_free(struct glease *L)
{
	if (!L)
		return;
	if (L->cfg.busy > 0) {
		pthread_mutex_lock(&L->mu);
		L->stop = true;
		pthread_cond_signal(&L->cv);
		pthread_mutex_unlock(&L->mu);
		pthread_join(L->th, NULL);
	}
	/* Requests still in flight have settled (the gate is closing):
	 * return what is left. */
	for (int i = 0; i < GL_MAX && !L->fenced; i++) {
		struct gl_entry *e = &L->e[i];
		int64_t back = 0;
		if (e->used && e->l.id > 0 && e->held == 0 &&
		    store_lease_return(L->st, e->l.id, L->node, L->epoch, &back))
			log_warnx("lease %lld could not be returned (it comes back at its expiry): "
				  "%s", (long long)e->l.id, L->st->errmsg);
	}
	pthread_cond_destroy(&L->cv);
	pthread_mutex_destroy(&L->mu);
	free(L);
}
