/* gate.c — engines, rate windows, admission and settlement. */
#include "gate/gate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/money.h"
#include "common/strmap.h"
#include "common/timeutil.h"
#include "gate/budget.h"
#include "gate/engines.h"
#include "gate/settleq.h"
#include "gate/tokens.h"
#include "gate/upstream.h"
#include "infer/engine.h"
#include "ledger/events.h"
#include "ledger/ledger.h"
#include "ledger/reserve.h"

#define GATE_RATE_BUCKETS 1024
#define GATE_SPENT_MAX 65536  /* tokens whose spent sum is kept */

struct rate_entry {
	int64_t window;          /* start of the current minute window */
	int64_t requests, tokens;
};

/* What a token with max_credits has been charged, kept from its first
 * admission on so that admission does not sum the token's ledger rows
 * each time (that grew with every request, under the admission lock).
 * Loaded from the ledger only while none of the token's requests is in
 * flight: a settlement's charge is committed before its reservation is
 * dropped, so a load beside one could count it twice.  From then on each
 * settlement adds its charge in the same step as it drops its reservation
 * (gate_settle), so the sum is exact, as the quota sums are.  An entry is
 * forgotten only when none of its requests is in flight (GATE_SPENT_MAX). */
struct spent_entry {
	int64_t spent;
};

struct gate {
	struct gate_tokens *tokens;
	struct gate_engines *engines; /* bundled engines of the charter in force */
	struct strmap *rates;    /* level key -> rate_entry; guarded by the reserve lock */
	struct strmap *spent;    /* jti -> spent_entry; likewise */
	atomic_ullong seq;
	uint64_t boot;           /* distinguishes settlement ids across restarts */
	struct settleq *settleq; /* settlements waiting to be booked */
	struct ledger *led;      /* not owned; its parts: */
	struct store *store;
	struct chist *charters;
	struct reserve_table *reserve;
	struct glease *leases;   /* this node's leases (PostgreSQL), or NULL */
};

static void gate_spent_booked(void *ctx, const char *jti, int64_t charge);

/* ---- engines (gate/engines.c) ------------------------------------------------ */

struct infer_engine *gate_engine(struct gate *g, const char *model)
{
	return engines_get(g->engines, model);
}

void gate_engine_state(struct gate *g, char *out, size_t outsz)
{
	engines_describe(g->engines, out, outsz);
}

struct gate_engines *gate_engines(struct gate *g) { return g->engines; }

const char *gate_model_status(struct gate *g, const char *model)
{
	const char *st = engines_model_state(g->engines, model);
	return st ? st : "failed";
}

void gate_models_sync(struct gate *g)
{
	if (g)
		engines_kick(g->engines);
}

struct gate_tokens *gate_tokens(struct gate *g) { return g->tokens; }

/* Frees what gate_open allocates before the tokens, and g. */
static void gate_discard(struct gate *g)
{
	strmap_free(g->rates);
	strmap_free(g->spent);
	free(g);
}

allot_err gate_open(struct ledger *led, const struct gate_config *cfg, struct gate **out,
		    char *msg, size_t msgsz)
{
	struct gate *g = calloc(1, sizeof *g);
	if (!g)
		return ALLOT_E_NOMEM;
	if (!(g->rates = strmap_new(GATE_RATE_BUCKETS, sizeof(struct rate_entry))) ||
	    !(g->spent = strmap_new(GATE_RATE_BUCKETS, sizeof(struct spent_entry)))) {
		strmap_free(g->rates);
		free(g);
		return ALLOT_E_NOMEM;
	}
	g->led = led;
	g->store = ledger_store(led);
	g->charters = ledger_charters(led);
	g->reserve = ledger_reserve(led);
	allot_err e = tokens_open(g->store, cfg->keys, cfg->deployment, &g->tokens, msg, msgsz);
	if (e) {
		gate_discard(g);
		return e;
	}
	g->boot = (uint64_t)time_now_us();
	/* What a previous process left unbooked is booked before anything is
	 * admitted. */
	if ((e = settleq_open(led, gate_spent_booked, g, &g->settleq, msg, msgsz))) {
		tokens_free(g->tokens);
		gate_discard(g);
		return e;
	}
	if (store_has_budgets(g->store)) {
		/* The reservations a node that died left (this one's earlier
		 * incarnation too) go now, not at their expiry. */
		int64_t n = 0;
		if (store_budget_sweep(g->store, time_now_us(), true, &n))
			log_warn("the reservations of nodes that died could not be released: %s",
				 g->store->errmsg);
		else if (n)
			log_info("released %lld reservations of nodes that died", (long long)n);
		n = 0;
		if (store_has_leases(g->store) &&
		    store_lease_sweep(g->store, time_now_us(), glease_grace_us(), &n))
			log_warn("the expired leases could not be returned: %s", g->store->errmsg);
		else if (n)
			log_info("returned %lld expired leases", (long long)n);
	}
	if (store_has_leases(g->store) && cfg->node &&
	    (e = glease_open(g->store, cfg->node, &g->leases, msg, msgsz))) {
		settleq_close(g->settleq);
		tokens_free(g->tokens);
		gate_discard(g);
		return e;
	}
	if ((e = engines_open(g->charters, cfg, &g->engines))) {
		glease_free(g->leases);
		settleq_close(g->settleq);
		tokens_free(g->tokens);
		gate_discard(g);
		snprintf(msg, msgsz, "out of memory");
		return e;
	}
	*out = g;
	return ALLOT_OK;
}

struct settleq *gate_settleq(struct gate *g) { return g->settleq; }

struct glease *gate_leases(struct gate *g) { return g->leases; }

void gate_free(struct gate *g)
{
	if (!g)
		return;
	settleq_close(g->settleq);
	glease_free(g->leases);
	engines_close(g->engines);
	tokens_free(g->tokens);
	upstream_cleanup();
	gate_discard(g);
}

/* ---- rate windows (called with the reserve lock held) ------------------------------ */

static struct rate_entry *rate_get(struct gate *g, const char *key, int64_t now)
{
	struct rate_entry *r = strmap_put(g->rates, key);
	if (!r)
		return NULL;
	int64_t w = now - now % GATE_RATE_WINDOW_US;
	if (r->window != w) {
		r->window = w;
		r->requests = 0;
		r->tokens = 0;
	}
	return r;
}

/* ---- what tokens with max_credits have spent (called with the reserve lock held) ---- */

static struct spent_entry *spent_find(struct gate *g, const char *jti)
{
	return strmap_get(g->spent, jti);
}

static void token_key(char *out, size_t outsz, const char *jti)
{
	snprintf(out, outsz, "token:%s", jti);
}

/* Forgets the entries of tokens with nothing in flight (they are loaded
 * again when next used). */
static bool spent_idle(void *ctx, const char *jti, void *value)
{
	struct gate *g = ctx;
	(void)value;
	char tkey[STORE_ID_MAX + 8];
	token_key(tkey, sizeof tkey, jti);
	return reserve_inflight(g->reserve, tkey) == 0;
}

static void spent_trim(struct gate *g)
{
	strmap_remove_if(g->spent, spent_idle, g);
}

/* The token's spent sum: from the map, else from the ledger (and kept when
 * nothing of the token's is in flight). */
static allot_err spent_get(struct gate *g, const char *jti, const char *tkey,
			   int64_t *spent)
{
	struct spent_entry *se = spent_find(g, jti);
	if (se) {
		*spent = se->spent;
		return ALLOT_OK;
	}
	allot_err e = store_token_spent(g->store, jti, spent);
	if (e || reserve_inflight(g->reserve, tkey) != 0)
		return e;
	if (strmap_count(g->spent) >= GATE_SPENT_MAX)
		spent_trim(g);
	if (strmap_count(g->spent) < GATE_SPENT_MAX && (se = strmap_put(g->spent, jti)))
		se->spent = *spent;
	return ALLOT_OK;
}

/* settleq_booked_fn: a queued settlement of a capped token was booked
 * (called with the reserve lock held). */
static void gate_spent_booked(void *ctx, const char *jti, int64_t charge)
{
	struct spent_entry *se = spent_find(ctx, jti);
	if (se)
		se->spent = money_add_sat(se->spent, charge);
}

allot_err gate_token_spent(struct gate *g, const char *jti, int64_t *spent)
{
	if (store_has_budgets(g->store)) /* other nodes book too: the ledger's sum */
		return store_token_spent(g->store, jti, spent);
	char tkey[STORE_ID_MAX + 8];
	token_key(tkey, sizeof tkey, jti);
	reserve_lock(g->reserve);
	allot_err e = spent_get(g, jti, tkey, spent);
	reserve_unlock(g->reserve);
	return e;
}

/* ---- admission ------------------------------------------------------------------------ */

bool gate_model_allowed(const struct charter *c, const struct token_claims *cl,
			const char *model)
{
	const struct charter_institution *inst = charter_institution(c, cl->inst);
	if (!inst || !charter_institution_allows_model(c, inst, model))
		return false;
	if (cl->n_models == 0)
		return true;
	for (size_t i = 0; i < cl->n_models; i++)
		if (strcmp(cl->models[i], model) == 0)
			return true;
	return false;
}

static int64_t reserved_cb(void *ctx, const char *key)
{
	/* Called with the reserve lock held (it is recursive). */
	return reserve_amount(ctx, key);
}

/* Membership, the model, its rates and max_tokens (the default when <= 0,
 * else at most the tightest limit of the levels that set one), under ch. */
static enum metrics_level metrics_level_of(enum quota_kind k)
{
	switch (k) {
	case QUOTA_MEMBER: return MLVL_MEMBER;
	case QUOTA_PROJECT: return MLVL_PROJECT;
	case QUOTA_INSTITUTION: return MLVL_INSTITUTION;
	default: return MLVL_POOL;
	}
}

/* allot_gate_admissions_total for a refusal. */
static void metrics_refused(allot_err e, enum metrics_level lvl)
{
	enum metrics_adm_outcome o = e == ALLOT_E_QUOTA ? MADM_QUOTA
				     : e == ALLOT_E_RATE ? MADM_RATE
				     : e == ALLOT_E_FORBIDDEN ? MADM_FORBIDDEN
				     : e == ALLOT_E_NOT_FOUND ? MADM_NOT_FOUND
				     : e == ALLOT_E_INVALID ? MADM_INVALID
				     : e == ALLOT_E_UNAVAILABLE ? MADM_UNAVAILABLE
								: MADM_ERROR;
	metrics_admission(o, lvl);
}

static allot_err admit_check(const struct charter *ch, const struct token_claims *c,
			     const char *model, int *max_tokens, const struct charter_model **m,
			     const struct charter_rate **rin, const struct charter_rate **rout,
			     char *msg, size_t msgsz)
{
	const struct charter_institution *inst = charter_institution(ch, c->inst);
	const struct charter_project *proj = inst ? charter_project(inst, c->proj) : NULL;
	if (!proj || !charter_member(proj, c->sub)) {
		snprintf(msg, msgsz, "%s is not a member of %s/%s under the charter in force "
			 "(version %lld)", c->sub, c->inst, c->proj, (long long)ch->version);
		return ALLOT_E_FORBIDDEN;
	}
	if (!(*m = charter_model(ch, model))) {
		snprintf(msg, msgsz, "model \"%s\" does not exist", model);
		return ALLOT_E_NOT_FOUND;
	}
	if (!gate_model_allowed(ch, c, model)) {
		snprintf(msg, msgsz, "this token may not use model \"%s\"", model);
		return ALLOT_E_FORBIDDEN;
	}
	*rin = charter_rate_for(ch, "tokens_in", model, NULL);
	*rout = charter_rate_for(ch, "tokens_out", model, NULL);
	if (!*rin || !*rout) {
		snprintf(msg, msgsz, "model \"%s\" has no token rates in the charter", model);
		return ALLOT_E_UNAVAILABLE;
	}
	/* max_tokens: the tightest limit of the levels that set one. */
	int64_t cap = INT32_MAX;
	if (inst->limits.max_tokens_per_request != CHARTER_UNSET)
		cap = inst->limits.max_tokens_per_request;
	if (proj->limits.max_tokens_per_request != CHARTER_UNSET &&
	    proj->limits.max_tokens_per_request < cap)
		cap = proj->limits.max_tokens_per_request;
	if (*max_tokens <= 0)
		*max_tokens = (int)(cap < GATE_DEFAULT_MAX_TOKENS ? cap : GATE_DEFAULT_MAX_TOKENS);
	else if (*max_tokens > cap) {
		snprintf(msg, msgsz, "max_tokens %d exceeds this project's limit of %lld", *max_tokens,
			 (long long)cap);
		return ALLOT_E_INVALID;
	}
	return ALLOT_OK;
}

/* Rate and concurrency limits at the levels that set them (the reserve
 * lock held). */
static allot_err admit_rates(struct gate *g, const struct quota_level *lv, size_t n, int64_t now,
			     int prompt_tokens, int max_tokens, int *retry_after_s,
			     enum metrics_level *lvl, char *msg, size_t msgsz)
{
	for (size_t i = 0; i < n; i++) {
		const struct charter_limits *l = lv[i].limits;
		if (!l)
			continue;
		*lvl = metrics_level_of(lv[i].kind); /* the level, if it refuses */
		struct rate_entry *r = rate_get(g, lv[i].key, now);
		if (!r) {
			return ALLOT_E_NOMEM;
		}
		int wait = (int)((r->window + GATE_RATE_WINDOW_US - now + 999999) / 1000000);
		if (l->requests_per_minute != CHARTER_UNSET && r->requests + 1 > l->requests_per_minute) {
			snprintf(msg, msgsz, "%s %s: %lld requests per minute reached",
				 quota_kind_name(lv[i].kind), lv[i].key, (long long)l->requests_per_minute);
			*retry_after_s = wait;
			return ALLOT_E_RATE;
		}
		if (l->tokens_per_minute != CHARTER_UNSET &&
		    (int64_t)prompt_tokens + max_tokens > l->tokens_per_minute) {
			/* No wait can admit it: not a rate limit but a bad request. */
			snprintf(msg, msgsz, "this request may use %lld tokens, more than %s %s's "
				 "%lld tokens per minute", (long long)prompt_tokens + max_tokens,
				 quota_kind_name(lv[i].kind), lv[i].key, (long long)l->tokens_per_minute);
			return ALLOT_E_INVALID;
		}
		if (l->tokens_per_minute != CHARTER_UNSET &&
		    r->tokens + prompt_tokens + max_tokens > l->tokens_per_minute) {
			snprintf(msg, msgsz, "%s %s: %lld tokens per minute reached",
				 quota_kind_name(lv[i].kind), lv[i].key, (long long)l->tokens_per_minute);
			*retry_after_s = wait;
			return ALLOT_E_RATE;
		}
		if (l->concurrent_requests != CHARTER_UNSET &&
		    reserve_inflight(g->reserve, lv[i].key) + 1 > l->concurrent_requests) {
			snprintf(msg, msgsz, "%s %s: %lld concurrent requests already running",
				 quota_kind_name(lv[i].kind), lv[i].key, (long long)l->concurrent_requests);
			*retry_after_s = 1;
			return ALLOT_E_RATE;
		}
	}
	return ALLOT_OK;
}

/* Room for the worst case at every level and under the token's
 * max_credits; sets t->remaining (the reserve lock held). */
static allot_err admit_room(struct gate *g, const struct token_claims *c,
			    const struct quota_level *lv, size_t n, int64_t worst,
			    struct gate_ticket *t, enum metrics_level *lvl, char *msg, size_t msgsz)
{
	t->remaining = INT64_MAX;
	for (size_t i = 0; i < n; i++) {
		int64_t room = quota_room(&lv[i]);
		*lvl = metrics_level_of(lv[i].kind); /* the level, if it refuses */
		if (worst > room) {
			char w[MONEY_FMT_MAX], r[MONEY_FMT_MAX];
			snprintf(msg, msgsz, "quota exhausted at the %s level (%s): this request may cost "
				 "up to %s, %s remains", quota_kind_name(lv[i].kind),
				 lv[i].kind == QUOTA_POOL ? "pool" : lv[i].key, money_format(worst, w),
				 money_format(room > 0 ? room : 0, r));
			return ALLOT_E_QUOTA;
		}
		if (room - worst < t->remaining) {
			t->remaining = room - worst;
			snprintf(t->remaining_level, sizeof t->remaining_level, "%s",
				 quota_kind_name(lv[i].kind));
		}
	}
	*lvl = MLVL_NONE;
	if (!c->has_max_credits)
		return ALLOT_OK;
	*lvl = MLVL_TOKEN;
	int64_t spent = 0;
	char tkey[STORE_ID_MAX + 8];
	token_key(tkey, sizeof tkey, c->jti);
	if (spent_get(g, c->jti, tkey, &spent) != ALLOT_OK)
		return ALLOT_E_STORE;
	int64_t room = money_sub_sat(money_sub_sat(c->max_credits, spent),
				     reserve_amount(g->reserve, tkey));
	if (worst > room) {
		char w[MONEY_FMT_MAX], r[MONEY_FMT_MAX];
		snprintf(msg, msgsz, "quota exhausted at the token level: this request may "
			 "cost up to %s, %s of the token's max_credits remains",
			 money_format(worst, w), money_format(room > 0 ? room : 0, r));
		return ALLOT_E_QUOTA;
	}
	if (room - worst < t->remaining) {
		t->remaining = room - worst;
		snprintf(t->remaining_level, sizeof t->remaining_level, "token");
	}
	return ALLOT_OK;
}

/* Reserves worst at every level key (and the token's) and counts the
 * request in the rate windows (the reserve lock held). */
static allot_err admit_reserve(struct gate *g, const struct token_claims *c,
			       const struct quota_level *lv, size_t n, int64_t now, int64_t worst,
			       struct gate_ticket *t)
{
	const char *keys[QUOTA_MAX_LEVELS + 1];
	for (size_t i = 0; i < n; i++) {
		snprintf(t->keys[i], sizeof t->keys[i], "%s", lv[i].key);
		keys[i] = t->keys[i];
	}
	t->nkeys = n;
	if (c->has_max_credits) {
		token_key(t->keys[n], sizeof t->keys[n], c->jti);
		keys[n] = t->keys[n];
		t->nkeys = n + 1;
	}
	if (!reserve_add_locked(g->reserve, keys, t->nkeys, worst))
		return ALLOT_E_NOMEM;
	t->reserved = worst;
	for (size_t i = 0; i < n; i++) {
		if (!lv[i].limits)
			continue;
		struct rate_entry *r = rate_get(g, lv[i].key, now);
		if (r) {
			r->requests++;
			r->tokens += t->prompt_tokens + t->max_tokens;
		}
	}
	return ALLOT_OK;
}

/* The settlement's record base "gate:<jti>:<boot>.<seq>": unique, and the
 * id of its reservation in the store's budgets.  boot (the gate's start, in
 * microseconds) and seq are written in the sortable base-64 digits of
 * b64sort_u64 (common/b64.h), seq with at least 6 of them ('-', the zero
 * digit, in front), so a token's record ids sort as they are made and each
 * new one goes at the end of the token's run in the (provider, record_id)
 * index.  Unpadded decimal ids of 1000..9999 sorted among those of
 * 100..999 (and so on at every power of ten): on PostgreSQL every insert
 * then split a page in the middle of the index and left it half full
 * (docs/BENCH_PG.md, "Bytes per gated request").  The digits are fewer than
 * hex ones (9 for boot, 6 for seq, against 13 and 8): the id is in the
 * record's row and in the unique index.  '.' is in neither jti nor the
 * digits, so the id reads back one way.  Past 2^36 requests of one boot
 * the ids grow a digit and sort among the earlier ones once. */
static void ticket_base(const struct gate *g, const struct gate_ticket *t, char *out,
			size_t outsz)
{
	char boot[12], seq[12];
	b64sort_u64(g->boot, 1, boot);
	b64sort_u64(t->seq, 6, seq);
	snprintf(out, outsz, "gate:%s:%s.%s", t->claims.jti, boot, seq);
}

/* Admission against the store's budgets (gate/budget.h): nothing in
 * memory; the reservation is the store's row t->budget_id. */
static allot_err admit_db(struct gate *g, const struct token_claims *c, struct gate_ticket *t,
			  int64_t now, int64_t worst, int *retry_after_s, enum metrics_level *lvl,
			  char *msg, size_t msgsz)
{
	t->seq = atomic_fetch_add(&g->seq, 1) + 1;
	ticket_base(g, t, t->budget_id, sizeof t->budget_id);
	struct gbudget_result res;
	allot_err e = gbudget_admit(g->store, g->leases, t->ac->c, c, t->budget_id,
				    t->prompt_tokens, t->max_tokens, worst, now, &t->lease, &res,
				    msg, msgsz);
	if (e) {
		*lvl = res.refused_kind < 0 ? MLVL_TOKEN
					    : metrics_level_of((enum quota_kind)res.refused_kind);
		if (e == ALLOT_E_RATE)
			*retry_after_s = res.retry_after_s;
		return e;
	}
	t->budget_db = t->lease.n == 0; /* else held in this node's leases */
	t->nkeys = 0; /* nothing held in the reserve table */
	t->reserved = worst;
	t->remaining = res.remaining;
	snprintf(t->remaining_level, sizeof t->remaining_level, "%s", res.remaining_level);
	return ALLOT_OK;
}

allot_err gate_admit(struct gate *g, const struct token_claims *c,
		     const char *model, int prompt_tokens, int max_tokens,
		     struct gate_ticket *t, int *retry_after_s, char *msg, size_t msgsz)
{
	enum metrics_level lvl = MLVL_NONE; /* the level that refused */
	memset(t, 0, sizeof *t);
	t->claims = *c;
	t->started_us = time_now_us();
	struct active_charter *ac = chist_get(g->charters);
	if (!ac) {
		snprintf(msg, msgsz, "no charter has been applied");
		metrics_refused(ALLOT_E_UNAVAILABLE, lvl);
		return ALLOT_E_UNAVAILABLE;
	}
	const struct charter *ch = ac->c;
	const struct charter_model *m;
	const struct charter_rate *rin, *rout;
	allot_err e = admit_check(ch, c, model, &max_tokens, &m, &rin, &rout, msg, msgsz);
	if (e)
		goto refuse;
	t->ac = ac;
	t->model = m;
	t->rate_in = rin->credits;
	t->rate_out = rout->credits;
	t->prompt_tokens = prompt_tokens;
	t->max_tokens = max_tokens;
	/* Saturated at INT64_MAX when it does not fit: past any unsaturated room. */
	int64_t worst = money_add_sat(money_mul_sat(prompt_tokens, rin->credits),
				      money_mul_sat(max_tokens, rout->credits));
	int64_t now = time_now_us();
	if (store_has_budgets(g->store)) {
		e = admit_db(g, c, t, now, worst, retry_after_s, &lvl, msg, msgsz);
		if (e)
			goto refuse_held;
		goto admitted;
	}

	reserve_lock(g->reserve);
	struct quota_level lv[QUOTA_MAX_LEVELS];
	size_t n = 0;
	e = quota_levels(g->store, ch, c->inst, c->proj, c->sub, now, reserved_cb, g->reserve,
			 lv, &n);
	if (e) {
		reserve_unlock(g->reserve);
		snprintf(msg, msgsz, "could not read the quota");
		goto refuse_held;
	}
	if (!(e = admit_rates(g, lv, n, now, prompt_tokens, max_tokens, retry_after_s, &lvl, msg,
			      msgsz)) &&
	    !(e = admit_room(g, c, lv, n, worst, t, &lvl, msg, msgsz)))
		e = admit_reserve(g, c, lv, n, now, worst, t);
	reserve_unlock(g->reserve);
	if (e)
		goto refuse_held;
	t->seq = atomic_fetch_add(&g->seq, 1) + 1;
admitted:
	metrics_admission(MADM_ADMITTED, MLVL_NONE);
	/* The engine stays loaded while the request runs (gate/engines.h). */
	t->engine_hold = m->file ? engines_hold(g->engines, model) : NULL;
	metrics_gauge_add(MG_RESERVATIONS, 1);
	metrics_gauge_add(MG_RESERVED_CREDITS, t->reserved);
	return ALLOT_OK;
refuse:
	metrics_refused(e, lvl);
	chist_put(g->charters, ac);
	return e;
refuse_held:
	metrics_refused(e, lvl);
	t->ac = NULL;
	chist_put(g->charters, ac);
	return e;
}

static void ticket_release(struct gate *g, struct gate_ticket *t,
			   int used_tokens)
{
	const char *keys[QUOTA_MAX_LEVELS + 1];
	for (size_t i = 0; i < t->nkeys; i++)
		keys[i] = t->keys[i];
	reserve_release(g->reserve, keys, t->nkeys, t->reserved);
	metrics_gauge_add(MG_RESERVATIONS, -1);
	metrics_gauge_add(MG_RESERVED_CREDITS, -t->reserved);
	engines_release(g->engines, t->engine_hold);
	t->engine_hold = NULL;
	/* Give back the unused part of the tokens-per-minute count. */
	int64_t unused = (int64_t)t->prompt_tokens + t->max_tokens - used_tokens;
	if (unused > 0) {
		reserve_lock(g->reserve);
		int64_t now = time_now_us();
		for (size_t i = 0; i < t->nkeys; i++) {
			struct rate_entry *r = rate_get(g, t->keys[i], now);
			if (r && r->window <= t->started_us && r->tokens >= unused)
				r->tokens -= unused;
		}
		reserve_unlock(g->reserve);
	}
	chist_put(g->charters, t->ac);
	t->ac = NULL;
}

/* Releases t's reservation in the store's budgets without a booking (a
 * failure leaves it to expire: docs/POSTGRES.md, "Expiry"). */
static void budget_release(struct gate *g, struct gate_ticket *t)
{
	if (t->budget_db && store_budget_settle(g->store, t->budget_id, 0))
		log_warn("reservation %s could not be released (it expires): %s", t->budget_id,
			 g->store->errmsg);
}

void gate_cancel(struct gate *g, struct gate_ticket *t)
{
	if (!t->ac)
		return;
	budget_release(g, t);
	glease_done(g->leases, &t->lease, 0);
	ticket_release(g, t, 0);
}

/* The settlement of t: its records' fields (settleq_records makes them). */
static void ticket_pending(const struct gate *g, const struct gate_ticket *t, int prompt_tokens,
			   int completion_tokens, int64_t now, struct settle_pending *p)
{
	memset(p, 0, sizeof *p);
	ticket_base(g, t, p->record_base, sizeof p->record_base);
	snprintf(p->provider, sizeof p->provider, "%s", t->model->provider_id);
	snprintf(p->institution, sizeof p->institution, "%s", t->claims.inst);
	snprintf(p->project, sizeof p->project, "%s", t->claims.proj);
	snprintf(p->member, sizeof p->member, "%s", t->claims.sub);
	snprintf(p->model, sizeof p->model, "%s", t->model->id);
	p->tokens_in = prompt_tokens > 0 ? prompt_tokens : 0;
	p->tokens_out = completion_tokens > 0 ? completion_tokens : 0;
	p->start_us = t->started_us;
	p->end_us = now;
	p->charter_version = t->ac->c->version;
	p->queued_us = now;
}

/* What the settlement will cost at the ticket's rates, at most what it
 * reserved (what stays reserved while it waits in the retry queue). */
static int64_t ticket_expected(const struct gate_ticket *t, const struct settle_pending *p)
{
	int64_t a, b, sum;
	if (money_mul(p->tokens_in, t->rate_in, &a) || money_mul(p->tokens_out, t->rate_out, &b) ||
	    money_add(a, b, &sum) || sum > t->reserved)
		return t->reserved;
	return sum < 0 ? 0 : sum;
}

/* The settlement_failed webhook event (best effort: the store is failing;
 * the settlement itself is kept in the retry queue either way). */
static void settle_failed_event(struct gate *g, const struct charter *ch,
				const struct settle_pending *p)
{
	if (!ch->nwebhooks)
		return;
	char dedupe[sizeof p->record_base + 32], at[TIME_FMT_MAX];
	snprintf(dedupe, sizeof dedupe, "settlement_failed:%s", p->record_base);
	json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s}", "settlement",
			      p->record_base, "provider", p->provider, "institution",
			      p->institution, "project", p->project, "member", p->member, "model",
			      p->model, "tokens_in", (json_int_t)p->tokens_in, "tokens_out",
			      (json_int_t)p->tokens_out, "charter_version",
			      (json_int_t)p->charter_version, "queued_at",
			      time_format_rfc3339(p->queued_us, at), "reason", p->reason);
	events_emit(g->store, ch, CHARTER_EV_SETTLEMENT_FAILED, dedupe, d, time_now_us());
}

allot_err gate_settle(struct gate *g, struct gate_ticket *t,
		      int prompt_tokens, int completion_tokens, int64_t *charge)
{
	struct settle_pending p;
	ticket_pending(g, t, prompt_tokens, completion_tokens, time_now_us(), &p);
	/* Applied versions live until the ledger is freed: valid after the
	 * ticket's release. */
	const struct charter *ch = t->ac->c;
	struct usage_record recs[2];
	size_t nrec = settleq_records(&p, recs);
	char reason[320] = "";
	allot_err e = ALLOT_OK;
	*charge = 0;
	/* Priced and checked under the charter that admitted it.  The booked
	 * charge stays out of the quota sums until the reservation is
	 * dropped, and both happen under the admission lock: no admission
	 * sees the charge twice (booked and reserved) or not at all. */
	const struct ledger_settle_opts o = {.charter = t->ac->c, .hold = t->seq,
					     .budget_id = t->budget_db ? t->budget_id : NULL,
					     .leases = t->lease.ref, .nleases = t->lease.n};
	if (nrec)
		e = ledger_settle(g->led, &o, recs, nrec, charge, reason, sizeof reason);
	else
		budget_release(g, t); /* nothing to book: the reservation goes */
	for (size_t i = 0; i < nrec; i++)
		record_release(&recs[i]);
	int64_t keep = 0;
	const char *keys[QUOTA_MAX_LEVELS + 1];
	for (size_t i = 0; i < t->nkeys; i++)
		keys[i] = t->keys[i];
	reserve_lock(g->reserve);
	store_ledger_release(g->store, t->seq);
	/* The store's budgets: a failed booking leaves the reservation in the
	 * database (its transaction rolled back) until the retry queue books
	 * it or it expires. */
	if (e && !t->budget_db) {
		/* Served, not booked: never dropped.  The expected charge stays
		 * reserved at every level until the retry queue books it. */
		keep = ticket_expected(t, &p);
		if (keep && !reserve_hold_locked(g->reserve, keys, t->nkeys, keep))
			keep = 0;
	}
	/* a failed booking counts in the leases at what it may cost */
	glease_done(g->leases, &t->lease, e ? ticket_expected(t, &p) : *charge);
	if (t->claims.has_max_credits) {
		struct spent_entry *se = spent_find(g, t->claims.jti);
		if (se)
			se->spent = money_add_sat(se->spent, *charge);
	}
	t->remaining += t->reserved - *charge - keep;
	ticket_release(g, t, prompt_tokens + completion_tokens);
	reserve_unlock(g->reserve);
	metrics_add(e ? MC_SETTLEMENTS_FAILED : MC_SETTLEMENTS_BOOKED, 1);
	if (e) {
		snprintf(p.reason, sizeof p.reason, "%.255s", reason);
		settleq_add(g->settleq, &p, keys, keep ? t->nkeys : 0, keep,
			    t->claims.has_max_credits ? t->claims.jti : NULL);
		settle_failed_event(g, ch, &p);
	}
	return e;
}

int64_t gate_remaining(struct gate *g, const struct token_claims *c, char level[16])
{
	struct active_charter *ac = chist_get(g->charters);
	int64_t best = INT64_MAX;
	snprintf(level, 16, "none");
	if (ac) {
		struct quota_level lv[QUOTA_MAX_LEVELS];
		size_t n = 0;
		bool db = store_has_budgets(g->store);
		if (quota_levels(g->store, ac->c, c->inst, c->proj, c->sub, time_now_us(),
				 db ? gbudget_reserved : reserved_cb,
				 db ? (void *)g->store : (void *)g->reserve, lv, &n) == ALLOT_OK)
			for (size_t i = 0; i < n; i++)
				if (quota_remaining(&lv[i]) < best) {
					best = quota_remaining(&lv[i]);
					snprintf(level, 16, "%s", quota_kind_name(lv[i].kind));
				}
	}
	chist_put(g->charters, ac);
	return best == INT64_MAX ? 0 : best;
}
