/* test_gate.c — admission and settlement of the gate (gate/gate.c) with a
 * controllable clock: requests and tokens per minute per level (windows
 * aligned to the minute, Retry-After to its end), concurrent requests,
 * hard and soft allocations to the exact micro-credit, the token's
 * max_credits, model and max_tokens checks, and settlement through the
 * ledger.  Each test opens a real app (SQLite in a temporary directory, the
 * charter below) and a gate without engines (the model files are absent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>

#include "common/timeutil.h"
#include "daemon/app.h"
#include "gate/gate.h"
#include "ledger/quota.h"
#include "support/appfx.h"
#include "support/rowsfx.h"

/* Rates: 0.0001 per token in, 0.0003 per token out, in micro-credits. */
#define RATE_IN 100
#define RATE_OUT 300
#define MIN (60 * US_PER_SEC)

static const char charter_text[] =
	"charter: gate-unit\n"
	"version: 1\n"
	"effective: 2026-01-01T00:00:00Z\n"
	"timezone: UTC\n"
	"pool: 100000\n"
	"rates:\n"
	"  - {resource: tokens_in,  model: m, credits: 0.0001}\n"
	"  - {resource: tokens_out, model: m, credits: 0.0003}\n"
	"  - {resource: tokens_in,  model: m2, credits: 0.0001}\n"
	"  - {resource: tokens_out, model: m2, credits: 0.0003}\n"
	"providers:\n"
	"  - {id: local, builtin: true}\n"
	"models:\n"
	"  - {id: m, provider: local, file: absent.gguf}\n"
	"  - {id: m2, provider: local, file: absent2.gguf}\n"
	"institutions:\n"
	"  - id: rate\n"
	"    allocation: {credits: 1000, period: month}\n"
	"    limits: {requests_per_minute: 5, max_tokens_per_request: 200}\n"
	"    models: [m]\n"
	"    projects:\n"
	"      - id: p1\n"
	"        allocation: {credits: 100, period: month}\n"
	"        limits: {requests_per_minute: 3, max_tokens_per_request: 100}\n"
	"        members: [a]\n"
	"      - id: p2\n"
	"        allocation: {credits: 100, period: month}\n"
	"        members: [b]\n"
	"  - id: tpm\n"
	"    allocation: {credits: 1000, period: month}\n"
	"    projects:\n"
	"      - id: p\n"
	"        allocation: {credits: 100, period: month}\n"
	"        limits: {tokens_per_minute: 100}\n"
	"        members: [a]\n"
	"  - id: conc\n"
	"    allocation: {credits: 1000, period: month}\n"
	"    limits: {concurrent_requests: 3}\n"
	"    projects:\n"
	"      - id: p\n"
	"        allocation: {credits: 100, period: month}\n"
	"        limits: {concurrent_requests: 2}\n"
	"        members: [a, b]\n"
	"      - id: q\n"
	"        allocation: {credits: 100, period: month}\n"
	"        members: [c]\n"
	"  - id: hard\n"
	"    allocation: {credits: 1000, period: month}\n"
	"    overage: {mode: hard}\n"
	"    projects:\n"
	"      - id: p\n"
	"        allocation: {credits: 1, period: month}\n"
	"        members: [a]\n"
	"  - id: soft\n"
	"    allocation: {credits: 1000, period: month}\n"
	"    overage: {mode: soft, grace_percent: 10}\n"
	"    projects:\n"
	"      - id: p\n"
	"        allocation: {credits: 1, period: month}\n"
	"        members: [a]\n"
	"  - id: tok\n"
	"    allocation: {credits: 1000, period: month}\n"
	"    projects:\n"
	"      - id: p\n"
	"        allocation: {credits: 100, period: month}\n"
	"        members: [a]\n";

/* ---- the controllable clock ------------------------------------------------ */

static int64_t fake_now;
static int64_t fake_clock(void) { return fake_now; }

/* 2026-06-15T10:00:00Z + seconds */
static int64_t at(double seconds)
{
	int64_t base = 0;
	assert_int_equal(time_parse_rfc3339("2026-06-15T10:00:00Z", 20, &base), 0);
	return base + (int64_t)(seconds * US_PER_SEC);
}

/* ---- fixture: an app and a gate on a temporary directory (support/appfx) ---- */

struct fx {
	struct appfx x;
	unsigned jti_seq;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	fake_now = at(30);
	time_set_clock(fake_clock);
	appfx_open(&f->x, charter_text);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	appfx_close(&f->x);
	time_set_clock(NULL);
	free(f);
	return 0;
}

static struct token_claims claims(struct fx *f, const char *inst, const char *proj,
				  const char *sub)
{
	char jti[32];
	snprintf(jti, sizeof jti, "tunit%04u", ++f->jti_seq);
	return appfx_claims(inst, proj, sub, jti, fake_now);
}

/* admit: returns the error; msg and retry for inspection */
static char msg[512];
static int retry;
static allot_err admit(struct fx *f, const struct token_claims *c, const char *model,
		       int prompt, int max_tokens, struct gate_ticket *t)
{
	msg[0] = '\0';
	retry = -1;
	return gate_admit(f->x.gate, c, model, prompt, max_tokens, t, &retry, msg, sizeof msg);
}

static int64_t settle(struct fx *f, struct gate_ticket *t, int prompt, int completion)
{
	int64_t charge = -1;
	assert_int_equal(gate_settle(f->x.gate, t, prompt, completion, &charge), ALLOT_OK);
	return charge;
}

/* One request admitted and settled at once. */
static allot_err once(struct fx *f, const struct token_claims *c, int prompt, int max_tokens)
{
	struct gate_ticket t;
	allot_err e = admit(f, c, "m", prompt, max_tokens, &t);
	if (e == ALLOT_OK)
		settle(f, &t, prompt, max_tokens);
	return e;
}

/* A level's figures now. */
static struct quota_level level_of(struct fx *f, const char *inst, const char *proj,
				   const char *member, enum quota_kind kind)
{
	struct active_charter *ac = app_charter_get(&f->x.app);
	struct quota_level lv[QUOTA_MAX_LEVELS];
	size_t n = 0;
	assert_int_equal(quota_levels(f->x.app.store, ac->c, inst, proj, member, fake_now, NULL, NULL,
				      lv, &n),
			 ALLOT_OK);
	app_charter_put(&f->x.app, ac);
	for (size_t i = 0; i < n; i++)
		if (lv[i].kind == kind)
			return lv[i];
	fail_msg("no level %d", (int)kind);
	return lv[0];
}

static void assert_msg_has(const char *needle)
{
	if (!strstr(msg, needle))
		fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
}

/* ---- requests per minute ------------------------------------------------------------ */

static void test_rpm_window(void **state)
{
	struct fx *f = *state;
	struct token_claims a = claims(f, "rate", "p1", "a");
	fake_now = at(30);
	for (int i = 0; i < 3; i++)
		assert_int_equal(once(f, &a, 10, 10), ALLOT_OK);
	assert_int_equal(once(f, &a, 10, 10), ALLOT_E_RATE);
	assert_msg_has("requests per minute");
	assert_msg_has("rate/p1");
	assert_int_equal(retry, 30); /* to the end of the minute */
	fake_now = at(59.5);
	assert_int_equal(once(f, &a, 10, 10), ALLOT_E_RATE);
	assert_int_equal(retry, 1); /* rounded up */
	fake_now = at(59.999999);
	assert_int_equal(once(f, &a, 10, 10), ALLOT_E_RATE);
	assert_int_equal(retry, 1);
	/* the window resets at the minute, not 60 s after the first request */
	fake_now = at(60);
	assert_int_equal(once(f, &a, 10, 10), ALLOT_OK);
	assert_int_equal(once(f, &a, 10, 10), ALLOT_OK);
	assert_int_equal(once(f, &a, 10, 10), ALLOT_OK);
	assert_int_equal(once(f, &a, 10, 10), ALLOT_E_RATE);
	assert_int_equal(retry, 60);
	/* a whole idle minute later: a fresh window */
	fake_now = at(185);
	assert_int_equal(once(f, &a, 10, 10), ALLOT_OK);
}

static void test_rpm_refusals_do_not_count(void **state)
{
	struct fx *f = *state;
	struct token_claims a = claims(f, "rate", "p1", "a");
	struct gate_ticket t;
	/* refused for other reasons: the window is untouched */
	assert_int_equal(admit(f, &a, "m", 10, 101, &t), ALLOT_E_INVALID);
	assert_int_equal(admit(f, &a, "nosuch", 10, 10, &t), ALLOT_E_NOT_FOUND);
	assert_int_equal(admit(f, &a, "m2", 10, 10, &t), ALLOT_E_FORBIDDEN);
	for (int i = 0; i < 3; i++)
		assert_int_equal(once(f, &a, 10, 10), ALLOT_OK);
	assert_int_equal(once(f, &a, 10, 10), ALLOT_E_RATE);
	/* a rate refusal does not count either: next minute has 3 again */
	assert_int_equal(once(f, &a, 10, 10), ALLOT_E_RATE);
	fake_now = at(61);
	for (int i = 0; i < 3; i++)
		assert_int_equal(once(f, &a, 10, 10), ALLOT_OK);
}

static void test_rpm_per_level(void **state)
{
	struct fx *f = *state;
	/* institution rate: 5 per minute over both projects; p1 alone: 3 */
	struct token_claims a = claims(f, "rate", "p1", "a");
	struct token_claims b = claims(f, "rate", "p2", "b");
	for (int i = 0; i < 3; i++)
		assert_int_equal(once(f, &a, 10, 10), ALLOT_OK);
	assert_int_equal(once(f, &b, 10, 10), ALLOT_OK);
	assert_int_equal(once(f, &b, 10, 10), ALLOT_OK);
	assert_int_equal(once(f, &b, 10, 10), ALLOT_E_RATE);
	assert_msg_has("institution rate:");
	assert_msg_has("5 requests per minute");
	assert_int_equal(once(f, &a, 10, 10), ALLOT_E_RATE);
	/* another institution is not affected */
	struct token_claims o = claims(f, "tok", "p", "a");
	assert_int_equal(once(f, &o, 10, 10), ALLOT_OK);
	fake_now = at(60);
	assert_int_equal(once(f, &b, 10, 10), ALLOT_OK);
}

/* ---- tokens per minute ------------------------------------------------------------------- */

static void test_tpm(void **state)
{
	struct fx *f = *state;
	struct token_claims a = claims(f, "tpm", "p", "a");
	struct gate_ticket t1, t2, t3;
	/* admission counts prompt + max_tokens: 50 + 50 fit 100, a third not */
	assert_int_equal(admit(f, &a, "m", 10, 40, &t1), ALLOT_OK);
	assert_int_equal(admit(f, &a, "m", 10, 40, &t2), ALLOT_OK);
	assert_int_equal(admit(f, &a, "m", 10, 40, &t3), ALLOT_E_RATE);
	assert_msg_has("tokens per minute");
	assert_int_equal(retry, 30);
	assert_int_equal(admit(f, &a, "m", 0, 1, &t3), ALLOT_E_RATE); /* 101 > 100 */
	/* larger than the limit itself: no wait helps, so not a rate refusal */
	assert_int_equal(admit(f, &a, "m", 60, 41, &t3), ALLOT_E_INVALID);
	assert_msg_has("more than project tpm/p's 100 tokens per minute");
	assert_int_equal(admit(f, &a, "m", 50, 50, &t3), ALLOT_E_RATE); /* = 100: waits */
	/* settling gives back what was not generated: 10 + 5 used of 50 */
	settle(f, &t1, 10, 5);
	assert_int_equal(admit(f, &a, "m", 10, 40, &t3), ALLOT_E_RATE); /* 65 + 50 */
	assert_int_equal(admit(f, &a, "m", 10, 25, &t3), ALLOT_OK);     /* 65 + 35 = 100 */
	settle(f, &t3, 10, 25);
	settle(f, &t2, 10, 40);
	assert_int_equal(admit(f, &a, "m", 0, 1, &t3), ALLOT_E_RATE); /* still 100 */
	/* the next minute starts at zero */
	fake_now = at(60);
	assert_int_equal(admit(f, &a, "m", 20, 80, &t3), ALLOT_OK);
	settle(f, &t3, 20, 80);
	/* a request settled in a later minute gives nothing back to the new window */
	fake_now = at(125);
	assert_int_equal(admit(f, &a, "m", 10, 90, &t1), ALLOT_OK);
	fake_now = at(185);
	assert_int_equal(admit(f, &a, "m", 10, 80, &t2), ALLOT_OK); /* new window: 90 */
	settle(f, &t1, 10, 0);                                        /* from the old one */
	assert_int_equal(admit(f, &a, "m", 5, 6, &t3), ALLOT_E_RATE); /* 90 + 11 > 100 */
	assert_int_equal(admit(f, &a, "m", 5, 5, &t3), ALLOT_OK);
	settle(f, &t3, 5, 5);
	settle(f, &t2, 10, 80);
}

/* ---- concurrency ------------------------------------------------------------------------------ */

static void test_concurrent(void **state)
{
	struct fx *f = *state;
	struct token_claims a = claims(f, "conc", "p", "a");
	struct token_claims b = claims(f, "conc", "p", "b");
	struct token_claims c = claims(f, "conc", "q", "c");
	struct gate_ticket t[4];
	assert_int_equal(admit(f, &a, "m", 10, 10, &t[0]), ALLOT_OK);
	assert_int_equal(admit(f, &b, "m", 10, 10, &t[1]), ALLOT_OK);
	assert_int_equal(admit(f, &a, "m", 10, 10, &t[2]), ALLOT_E_RATE);
	assert_msg_has("2 concurrent requests");
	assert_int_equal(retry, 1);
	/* the institution's 3: q may run one more */
	assert_int_equal(admit(f, &c, "m", 10, 10, &t[2]), ALLOT_OK);
	assert_int_equal(admit(f, &c, "m", 10, 10, &t[3]), ALLOT_E_RATE);
	assert_msg_has("institution conc");
	/* a finished request frees its slot at every level, settled or cancelled */
	settle(f, &t[0], 10, 3);
	assert_int_equal(admit(f, &a, "m", 10, 10, &t[0]), ALLOT_OK);
	gate_cancel(f->x.gate, &t[2]);
	assert_int_equal(admit(f, &c, "m", 10, 10, &t[2]), ALLOT_OK);
	/* concurrency has no window: still full a minute later */
	fake_now = at(95);
	assert_int_equal(admit(f, &c, "m", 10, 10, &t[3]), ALLOT_E_RATE);
	for (int i = 0; i < 3; i++)
		gate_cancel(f->x.gate, &t[i]);
	assert_int_equal(admit(f, &c, "m", 10, 10, &t[3]), ALLOT_OK);
	gate_cancel(f->x.gate, &t[3]);
	assert_int_equal(level_of(f, "conc", "p", "a", QUOTA_PROJECT).used, 10 * RATE_IN + 3 * RATE_OUT);
}

/* ---- hard and soft allocations --------------------------------------------------------------- */

/* worst case of (100 in, 100 out): 0.01 + 0.03 = 0.04 credits */
#define WORST (100 * RATE_IN + 100 * RATE_OUT)

static void test_hard_exact(void **state)
{
	struct fx *f = *state;
	struct token_claims a = claims(f, "hard", "p", "a");
	struct gate_ticket t[32];
	/* 1 credit holds exactly 25 worst cases */
	for (int i = 0; i < 25; i++)
		assert_int_equal(admit(f, &a, "m", 100, 100, &t[i]), ALLOT_OK);
	assert_int_equal(t[24].remaining, 0);
	assert_string_equal(t[24].remaining_level, "project");
	assert_int_equal(admit(f, &a, "m", 100, 100, &t[25]), ALLOT_E_QUOTA);
	assert_msg_has("at the project level");
	assert_int_equal(admit(f, &a, "m", 0, 1, &t[25]), ALLOT_E_QUOTA); /* not a micro-credit left */
	/* cancelling releases the room exactly */
	gate_cancel(f->x.gate, &t[24]);
	assert_int_equal(admit(f, &a, "m", 100, 100, &t[24]), ALLOT_OK);
	/* settle all at the worst case: used == allocation, never above */
	for (int i = 0; i < 25; i++)
		assert_int_equal(settle(f, &t[i], 100, 100), WORST);
	struct quota_level p = level_of(f, "hard", "p", "a", QUOTA_PROJECT);
	assert_int_equal(p.used, 1000000);
	assert_int_equal(p.reserved, 0);
	assert_int_equal(admit(f, &a, "m", 1, 1, &t[0]), ALLOT_E_QUOTA);
}

static void test_hard_settle_less(void **state)
{
	struct fx *f = *state;
	struct token_claims a = claims(f, "hard", "p", "a");
	struct gate_ticket t;
	/* settling less than reserved frees the difference */
	int n = 0;
	while (admit(f, &a, "m", 100, 100, &t) == ALLOT_OK) {
		int64_t ch = settle(f, &t, 100, 50);
		assert_int_equal(ch, 100 * RATE_IN + 50 * RATE_OUT);
		assert_true(++n < 100);
	}
	/* each used 0.025: 1 - 38 * 0.025 = 0.05 >= 0.04 admits a 39th; 0.025 < 0.04 then */
	assert_int_equal(n, 39);
	struct quota_level p = level_of(f, "hard", "p", "a", QUOTA_PROJECT);
	assert_int_equal(p.used, 39 * (100 * RATE_IN + 50 * RATE_OUT));
	assert_true(p.used <= p.allocation);
	/* what fits still fits: 0.025 remains */
	assert_int_equal(admit(f, &a, "m", 10, 80, &t), ALLOT_OK); /* 0.001 + 0.024 */
	assert_int_equal(t.remaining, 0);
	settle(f, &t, 10, 80);
	assert_int_equal(level_of(f, "hard", "p", "a", QUOTA_PROJECT).used, 1000000);
}

static void test_soft_grace(void **state)
{
	struct fx *f = *state;
	struct token_claims a = claims(f, "soft", "p", "a");
	struct gate_ticket t[32];
	/* 1 credit + 10 %: 1.1 holds 27 worst cases (1.08), not 28 */
	int n = 0;
	while (n < 32 && admit(f, &a, "m", 100, 100, &t[n]) == ALLOT_OK)
		n++;
	assert_int_equal(n, 27);
	assert_msg_has("at the project level");
	for (int i = 0; i < n; i++)
		settle(f, &t[i], 100, 100);
	struct quota_level p = level_of(f, "soft", "p", "a", QUOTA_PROJECT);
	assert_int_equal(p.used, 27 * WORST);
	assert_true(p.used > p.allocation);              /* overage under soft ... */
	assert_true(p.used <= p.allocation + p.grace);   /* ... within the grace */
	assert_int_equal(p.grace, 100000);
	/* the last 0.02 of the grace still admits a request that fits it */
	assert_int_equal(admit(f, &a, "m", 200, 0, &t[0]), ALLOT_E_QUOTA); /* default max_tokens */
	assert_int_equal(admit(f, &a, "m", 20, 60, &t[0]), ALLOT_OK);      /* 0.002 + 0.018 */
	settle(f, &t[0], 20, 60);
	assert_int_equal(level_of(f, "soft", "p", "a", QUOTA_PROJECT).used, 1100000);
}

/* ---- the token's max_credits -------------------------------------------------------------------- */

static void test_max_credits(void **state)
{
	struct fx *f = *state;
	struct token_claims a = claims(f, "tok", "p", "a");
	a.has_max_credits = true;
	a.max_credits = 100000; /* 0.1 credits: two worst cases of 0.04 */
	struct gate_ticket t[3];
	assert_int_equal(admit(f, &a, "m", 100, 100, &t[0]), ALLOT_OK);
	assert_int_equal(admit(f, &a, "m", 100, 100, &t[1]), ALLOT_OK);
	assert_string_equal(t[1].remaining_level, "token");
	assert_int_equal(t[1].remaining, 20000);
	assert_int_equal(admit(f, &a, "m", 100, 100, &t[2]), ALLOT_E_QUOTA);
	assert_msg_has("token level");
	/* spent (booked) and reserved both count */
	settle(f, &t[0], 100, 100);
	assert_int_equal(admit(f, &a, "m", 100, 100, &t[2]), ALLOT_E_QUOTA);
	assert_int_equal(admit(f, &a, "m", 20, 60, &t[2]), ALLOT_OK); /* 0.02 fits exactly */
	assert_int_equal(t[2].remaining, 0);
	settle(f, &t[1], 100, 10);  /* 0.013 booked: 0.027 freed */
	settle(f, &t[2], 20, 60);
	assert_int_equal(admit(f, &a, "m", 30, 80, &t[0]), ALLOT_OK); /* 0.027 */
	settle(f, &t[0], 30, 80);
	assert_int_equal(admit(f, &a, "m", 1, 0, &t[0]), ALLOT_E_QUOTA);
	int64_t spent = -1;
	assert_int_equal(store_token_spent(f->x.app.store, a.jti, &spent), ALLOT_OK);
	assert_int_equal(spent, 100000);
	/* another token of the same member is not bound by it */
	struct token_claims b = claims(f, "tok", "p", "a");
	assert_int_equal(once(f, &b, 100, 100), ALLOT_OK);
}

/* ---- models, max_tokens, membership ----------------------------------------------------------------- */

static void test_admission_checks(void **state)
{
	struct fx *f = *state;
	struct token_claims a = claims(f, "rate", "p1", "a");
	struct gate_ticket t;
	struct {
		const char *model;
		int max_tokens;
		allot_err want;
		const char *msg;
	} cases[] = {
		{"nosuch", 10, ALLOT_E_NOT_FOUND, "does not exist"},
		{"m2", 10, ALLOT_E_FORBIDDEN, "may not use"},    /* not the institution's */
		{"m", 101, ALLOT_E_INVALID, "limit of 100"},     /* project cap < institution's 200 */
		{"m", 100, ALLOT_OK, NULL},
		{"m", 0, ALLOT_OK, NULL},                        /* default: the cap, 100 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		allot_err e = admit(f, &a, cases[i].model, 5, cases[i].max_tokens, &t);
		assert_int_equal(e, cases[i].want);
		if (cases[i].msg)
			assert_msg_has(cases[i].msg);
		if (e == ALLOT_OK) {
			assert_int_equal(t.max_tokens, 100);
			assert_int_equal(t.reserved, 5 * RATE_IN + 100 * RATE_OUT);
			gate_cancel(f->x.gate, &t);
		}
	}
	/* without a cap the default is GATE_DEFAULT_MAX_TOKENS */
	struct token_claims o = claims(f, "tok", "p", "a");
	assert_int_equal(admit(f, &o, "m", 5, 0, &t), ALLOT_OK);
	assert_int_equal(t.max_tokens, GATE_DEFAULT_MAX_TOKENS);
	gate_cancel(f->x.gate, &t);
	/* a token narrowed to m2 may not use m; m2 is allowed to tok (no models: line) */
	struct token_claims n = claims(f, "tok", "p", "a");
	n.n_models = 1;
	snprintf(n.models[0], sizeof n.models[0], "m2");
	assert_int_equal(admit(f, &n, "m", 5, 5, &t), ALLOT_E_FORBIDDEN);
	assert_int_equal(admit(f, &n, "m2", 5, 5, &t), ALLOT_OK);
	gate_cancel(f->x.gate, &t);
	/* members the charter no longer has, or never had */
	struct token_claims x = claims(f, "tok", "p", "mallory");
	assert_int_equal(admit(f, &x, "m", 5, 5, &t), ALLOT_E_FORBIDDEN);
	struct token_claims y = claims(f, "tok", "nosuch", "a");
	assert_int_equal(admit(f, &y, "m", 5, 5, &t), ALLOT_E_FORBIDDEN);
	struct token_claims z = claims(f, "nosuch", "p", "a");
	assert_int_equal(admit(f, &z, "m", 5, 5, &t), ALLOT_E_FORBIDDEN);
	/* nothing is held after all that */
	assert_int_equal(level_of(f, "rate", "p1", "a", QUOTA_PROJECT).reserved, 0);
	assert_int_equal(level_of(f, "tok", "p", "a", QUOTA_PROJECT).reserved, 0);
}

/* ---- settlement ------------------------------------------------------------------------------------------ */

static void test_settle_books_usage(void **state)
{
	struct fx *f = *state;
	struct token_claims a = claims(f, "tok", "p", "a");
	struct gate_ticket t;
	assert_int_equal(admit(f, &a, "m", 7, 50, &t), ALLOT_OK);
	int64_t before = t.remaining;
	struct quota_level p = level_of(f, "tok", "p", "a", QUOTA_PROJECT);
	assert_int_equal(p.used, 0);
	assert_int_equal(settle(f, &t, 7, 11), 7 * RATE_IN + 11 * RATE_OUT);
	/* remaining in the ticket moves by what was released */
	assert_int_equal(t.remaining, before + (7 * RATE_IN + 50 * RATE_OUT) - (7 * RATE_IN + 11 * RATE_OUT));
	p = level_of(f, "tok", "p", "a", QUOTA_PROJECT);
	assert_int_equal(p.used, 7 * RATE_IN + 11 * RATE_OUT);
	struct quota_level i = level_of(f, "tok", "p", "a", QUOTA_INSTITUTION);
	assert_int_equal(i.used, 7 * RATE_IN + 11 * RATE_OUT);
	struct quota_level pool = level_of(f, "tok", "p", "a", QUOTA_POOL);
	assert_int_equal(pool.used, 7 * RATE_IN + 11 * RATE_OUT);
	/* nothing generated (failed before compute): only the prompt */
	assert_int_equal(admit(f, &a, "m", 9, 50, &t), ALLOT_OK);
	assert_int_equal(settle(f, &t, 9, 0), 9 * RATE_IN);
	/* gate_remaining agrees with the levels */
	char lvl[16];
	int64_t rem = gate_remaining(f->x.gate, &a, lvl);
	assert_string_equal(lvl, "project");
	assert_int_equal(rem, 100000000 - (16 * RATE_IN + 11 * RATE_OUT));
}

/* Many writers settling at once: every settlement returns its charge and
 * is booked exactly once, whichever writer led its group commit (the
 * leader hands off to the next queued writer; each writer sleeps on its
 * own item, ledger.c group_run). */
#define SETTLERS 12
#define SETTLES_EACH 150

struct settler {
	struct fx *f;
	struct token_claims c;
	int64_t charged;
	int errors;
};

static void *settler_main(void *arg)
{
	struct settler *s = arg;
	char m[256];
	for (int i = 0; i < SETTLES_EACH; i++) {
		struct gate_ticket t;
		int r;
		int64_t charge = -1;
		int out = 1 + i % 7;
		if (gate_admit(s->f->x.gate, &s->c, "m", 5, 20, &t, &r, m, sizeof m) ||
		    gate_settle(s->f->x.gate, &t, 5, out, &charge) ||
		    charge != 5 * RATE_IN + out * RATE_OUT)
			s->errors++;
		else
			s->charged += charge;
	}
	return NULL;
}

/* A token with max_credits spent by many writers at once: never over its
 * cap, the gate's running sum equals the ledger's, and a new gate (a
 * restart) reads the same from the ledger. */
struct capped {
	struct fx *f;
	const struct token_claims *c;
	int64_t charged;
	int errors;
};

static void *capped_main(void *arg)
{
	struct capped *s = arg;
	char m[256];
	for (int i = 0;; i++) {
		struct gate_ticket t;
		int r;
		int64_t charge = -1;
		int out = 1 + i % 7;
		allot_err e = gate_admit(s->f->x.gate, s->c, "m", 5, 20, &t, &r, m, sizeof m);
		if (e == ALLOT_E_QUOTA)
			break;
		if (e || gate_settle(s->f->x.gate, &t, 5, out, &charge) ||
		    charge != 5 * RATE_IN + out * RATE_OUT)
			s->errors++;
		else
			s->charged += charge;
	}
	return NULL;
}

static void test_max_credits_many_writers(void **state)
{
	struct fx *f = *state;
	struct token_claims a = claims(f, "tok", "p", "a");
	a.has_max_credits = true;
	a.max_credits = 1000000; /* 1 credit; the worst case is 0.0065 */
	struct capped s[SETTLERS];
	pthread_t th[SETTLERS];
	for (int k = 0; k < SETTLERS; k++) {
		s[k] = (struct capped){.f = f, .c = &a};
		assert_int_equal(pthread_create(&th[k], NULL, capped_main, &s[k]), 0);
	}
	int64_t total = 0;
	for (int k = 0; k < SETTLERS; k++) {
		pthread_join(th[k], NULL);
		assert_int_equal(s[k].errors, 0);
		total += s[k].charged;
	}
	int64_t spent = -1;
	assert_int_equal(store_token_spent(f->x.app.store, a.jti, &spent), ALLOT_OK);
	assert_int_equal(spent, total);
	spent = -1;
	assert_int_equal(gate_token_spent(f->x.gate, a.jti, &spent), ALLOT_OK);
	assert_int_equal(spent, total);
	assert_true(total <= a.max_credits);
	assert_true(a.max_credits - total < 5 * RATE_IN + 20 * RATE_OUT); /* refused only when full */
	/* A restart: the new gate reads the sum from the ledger. */
	gate_free(f->x.gate);
	char m[256];
	assert_int_equal(app_gate_open(&f->x.app, &f->x.gate, m, sizeof m), ALLOT_OK);
	f->x.app.gate = f->x.gate;
	struct gate_ticket t;
	assert_int_equal(admit(f, &a, "m", 5, 20, &t), ALLOT_E_QUOTA);
	int64_t room = a.max_credits - total;
	int fit = (int)((room - RATE_OUT) / RATE_IN); /* the most that fits with 1 token out */
	assert_int_equal(admit(f, &a, "m", fit + 1, 1, &t), ALLOT_E_QUOTA);
	assert_int_equal(admit(f, &a, "m", fit, 1, &t), ALLOT_OK);
	assert_int_equal(t.remaining, room - fit * RATE_IN - RATE_OUT);
	gate_cancel(f->x.gate, &t);
	print_message("max_credits: %d writers spent %lld of %lld\n", SETTLERS, (long long)total,
		      (long long)a.max_credits);
}

static void test_settle_many_writers(void **state)
{
	struct fx *f = *state;
	struct settler s[SETTLERS];
	pthread_t th[SETTLERS];
	int64_t want = 0;
	for (int k = 0; k < SETTLERS; k++) {
		s[k] = (struct settler){.f = f, .c = claims(f, "tok", "p", "a")};
		assert_int_equal(pthread_create(&th[k], NULL, settler_main, &s[k]), 0);
	}
	for (int k = 0; k < SETTLERS; k++) {
		pthread_join(th[k], NULL);
		assert_int_equal(s[k].errors, 0);
		want += s[k].charged;
	}
	int64_t each = 0;
	for (int i = 0; i < SETTLES_EACH; i++)
		each += 5 * RATE_IN + (1 + i % 7) * RATE_OUT;
	assert_int_equal(want, SETTLERS * each);
	assert_int_equal(level_of(f, "tok", "p", "a", QUOTA_PROJECT).used, want);
	assert_int_equal(level_of(f, "tok", "p", "a", QUOTA_POOL).used, want);
	struct ledger_filter flt = {.limit = 4 * SETTLERS * SETTLES_EACH};
	json_t *rows = rowsfx_list(f->x.app.store, &flt);
	assert_int_equal(json_array_size(rows), 2 * SETTLERS * SETTLES_EACH);
	json_decref(rows);
	print_message("%d writers x %d settlements: all booked once\n", SETTLERS, SETTLES_EACH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rpm_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rpm_refusals_do_not_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rpm_per_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tpm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_settle_less, setup, teardown),
		cmocka_unit_test_setup_teardown(test_soft_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_credits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admission_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settle_books_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settle_many_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_credits_many_writers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
