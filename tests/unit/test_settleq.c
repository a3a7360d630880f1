/* test_settleq.c — nothing served is ever unbooked (gate/settleq.c), and
 * one charter per request (SPEC section 2):
 *   - a settlement whose booking fails (an injected disk-full on the
 *     write-ahead log) is queued, its expected charge stays reserved so
 *     admission never counts it as room, and once the store works again a
 *     retry books it exactly once;
 *   - a queued settlement that reached the queue table survives a restart
 *     and is booked when the gate opens, before anything is admitted;
 *   - a retry that finds its records already booked counts them once;
 *   - a request is settled under the charter version that admitted it,
 *     and a scheduled version changes nothing before its instant, then
 *     members, allocations and prices together. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "common/timeutil.h"
#include "gate/gate.h"
#include "gate/settleq.h"
#include "ledger/ledger.h"
#include "ledger/quota.h"
#include "ledger/reserve.h"
#include "support/appfx.h"
#include "support/rowsfx.h"
#include "support/shimvfs.h"

#define RATE_IN 100   /* micro-credits per token: 0.0001 */
#define RATE_OUT 300  /* 0.0003 */

static const char charter_v1[] =
	"charter: settleq-unit\n"
	"version: 1\n"
	"effective: 2026-01-01T00:00:00Z\n"
	"timezone: UTC\n"
	"rates:\n"
	"  - {resource: tokens_in,  model: m, credits: 0.0001}\n"
	"  - {resource: tokens_out, model: m, credits: 0.0003}\n"
	"providers:\n"
	"  - {id: local, builtin: true}\n"
	"models:\n"
	"  - {id: m, provider: local, file: absent.gguf}\n"
	"institutions:\n"
	"  - id: hard\n"
	"    allocation: {credits: 1000, period: month}\n"
	"    overage: {mode: hard}\n"
	"    projects:\n"
	"      - id: p\n"
	"        allocation: {credits: 1, period: month}\n"
	"        members: [a]\n";

/* ---- the clock and the injected faults ------------------------------------------ */

static int64_t fake_now;
static int64_t fake_clock(void) { return fake_now; }

static int64_t at(const char *rfc3339)
{
	int64_t t = 0;
	assert_int_equal(time_parse_rfc3339(rfc3339, strlen(rfc3339), &t), 0);
	return t;
}

/* Writes to a write-ahead log fail with fault_code (disk full by default)
 * while fail_wal > 0 (each failed write counts one down; -1: fail every
 * one); its fsyncs fail with SQLITE_IOERR_FSYNC (EIO) while fail_fsync is
 * set. */
static int fail_wal, fault_code = SQLITE_FULL;
static bool fail_fsync;
static int fault_write(bool wal)
{
	if (!wal || fail_wal == 0)
		return SQLITE_OK;
	if (fail_wal > 0)
		fail_wal--;
	return fault_code;
}
static int fault_sync(bool wal) { return wal && fail_fsync ? SQLITE_IOERR_FSYNC : SQLITE_OK; }

/* ---- helpers ------------------------------------------------------------------ */

static int setup(void **state)
{
	struct appfx *f = calloc(1, sizeof *f);
	fake_now = at("2026-06-15T10:00:00Z");
	time_set_clock(fake_clock);
	fail_wal = 0;
	fault_code = SQLITE_FULL;
	fail_fsync = false;
	appfx_open(f, charter_v1);
	/* Retries only when a test asks (settleq_retry_now), never behind it. */
	settleq_set_backoff(gate_settleq(f->gate), 3600 * 1000, 3600 * 1000);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct appfx *f = *state;
	fail_wal = 0;
	fail_fsync = false;
	appfx_close(f);
	time_set_clock(NULL);
	free(f);
	return 0;
}

static struct token_claims claims(const char *inst, const char *proj, const char *sub,
				  const char *jti)
{
	return appfx_claims(inst, proj, sub, jti, fake_now);
}

static char msg[512];
static allot_err admit(struct appfx *f, const struct token_claims *c, int prompt, int max_tokens,
		       struct gate_ticket *t)
{
	int retry = 0;
	msg[0] = '\0';
	return gate_admit(f->gate, c, "m", prompt, max_tokens, t, &retry, msg, sizeof msg);
}

static int64_t reserved_cb(void *ctx, const char *key) { return reserve_amount(ctx, key); }

/* The project level of hard/p now: used and reserved. */
static struct quota_level project(struct appfx *f)
{
	struct active_charter *ac = app_charter_get(&f->app);
	assert_non_null(ac);
	struct quota_level lv[QUOTA_MAX_LEVELS];
	size_t n = 0;
	assert_int_equal(quota_levels(f->app.store, ac->c, "hard", "p", "a", fake_now, reserved_cb,
				      ledger_reserve(f->app.ledger), lv, &n),
			 ALLOT_OK);
	app_charter_put(&f->app, ac);
	for (size_t i = 0; i < n; i++)
		if (lv[i].kind == QUOTA_PROJECT)
			return lv[i];
	fail_msg("no project level");
	return lv[0];
}

/* The ledger's rows (a JSON array; the caller decrefs). */
static json_t *rows(struct appfx *f)
{
	struct ledger_filter lf = {.institution = "hard", .limit = 1000};
	json_t *out = rowsfx_list(f->app.store, &lf);
	assert_true(json_is_array(out));
	return out;
}

static size_t nrows(struct appfx *f)
{
	json_t *r = rows(f);
	size_t n = json_array_size(r);
	json_decref(r);
	return n;
}

static void count_row(void *ctx, const struct settle_pending *p)
{
	(void)p;
	++*(size_t *)ctx;
}

static size_t queue_rows(struct appfx *f)
{
	size_t n = 0;
	assert_int_equal(store_settleq_list(f->app.store, count_row, &n), ALLOT_OK);
	return n;
}

static struct settleq_stats stats(struct appfx *f)
{
	struct settleq_stats st;
	settleq_stats(gate_settleq(f->gate), &st);
	return st;
}

/* ---- the retry queue ---------------------------------------------------------- */

static void test_disk_full_then_retried(void **state)
{
	struct appfx *f = *state;
	struct token_claims a = claims("hard", "p", "a", "tq1");
	struct gate_ticket t;
	/* worst case 1000 x 100 + 1000 x 300 = 400,000 of the project's 1,000,000 */
	assert_int_equal(admit(f, &a, 1000, 1000, &t), ALLOT_OK);
	fail_wal = -1; /* the disk is full: the booking and the queue row both fail */
	int64_t charge = -1;
	assert_int_not_equal(gate_settle(f->gate, &t, 1000, 500, &charge), ALLOT_OK);
	assert_int_equal(charge, 0);
	struct settleq_stats st = stats(f);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.unstored, 1);
	assert_int_equal(st.failures, 1);
	/* Nothing booked, and the expected charge (100,000 + 150,000) stays
	 * reserved: admission sees 750,000 of room, not 1,000,000. */
	struct quota_level p = project(f);
	assert_int_equal(p.used, 0);
	assert_int_equal(p.reserved, 1000 * RATE_IN + 500 * RATE_OUT);
	struct gate_ticket t2;
	assert_int_equal(admit(f, &a, 1000, 2334, &t2), ALLOT_E_QUOTA); /* 800,200 */
	/* A retry while the disk is still full books nothing. */
	assert_int_equal(settleq_retry_now(gate_settleq(f->gate)), 1);
	fail_wal = 0;
	assert_int_equal(settleq_retry_now(gate_settleq(f->gate)), 0);
	st = stats(f);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.booked, 1);
	p = project(f);
	assert_int_equal(p.used, 1000 * RATE_IN + 500 * RATE_OUT);
	assert_int_equal(p.reserved, 0);
	assert_int_equal(nrows(f), 2);
	assert_int_equal(queue_rows(f), 0);
	/* Again: nothing left, nothing booked twice. */
	assert_int_equal(settleq_retry_now(gate_settleq(f->gate)), 0);
	assert_int_equal(nrows(f), 2);
	/* The room is exactly what is left. */
	assert_int_equal(admit(f, &a, 1000, 2166, &t2), ALLOT_OK); /* 749,800 */
	gate_cancel(f->gate, &t2);
}

/* The outbox's undelivered events of a type (their bodies, in order). */
struct outbox_seen {
	const char *type;
	size_t n;
	char body[1024];
};

static void outbox_seen_cb(void *ctx, const struct outbox_event *ev)
{
	struct outbox_seen *o = ctx;
	if (strcmp(ev->type, o->type) == 0) {
		o->n++;
		snprintf(o->body, sizeof o->body, "%s", ev->body);
	}
}

/* A settlement that cannot be booked sends a settlement_failed webhook
 * event (docs/WEBHOOKS.md), once. */
static void test_settlement_failed_event(void **state)
{
	struct appfx *f = *state;
	char yaml[sizeof charter_v1 + 256];
	snprintf(yaml, sizeof yaml, "%s", charter_v1);
	char *v = strstr(yaml, "version: 1");
	v[9] = '2';
	strcat(yaml, "webhooks:\n  - {url: \"http://127.0.0.1:9/h\", events: [settlement_failed]}\n");
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	char m[256];
	assert_int_equal(app_charter_apply(&f->app, "w.yaml", yaml, strlen(yaml), "test", &errs, m,
					   sizeof m), ALLOT_OK);
	charter_errors_release(&errs);
	struct token_claims a = claims("hard", "p", "a", "tq-ev");
	struct gate_ticket t;
	assert_int_equal(admit(f, &a, 10, 10, &t), ALLOT_OK);
	fail_wal = 1; /* the booking's commit fails; the queue row and the event are written */
	int64_t charge = -1;
	assert_int_not_equal(gate_settle(f->gate, &t, 10, 5, &charge), ALLOT_OK);
	struct outbox_seen o = {.type = "settlement_failed"};
	assert_int_equal(store_outbox_due(f->app.store, INT64_MAX, 100,
							outbox_seen_cb, &o), ALLOT_OK);
	assert_int_equal(o.n, 1);
	json_t *b = json_loads(o.body, 0, NULL);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "type")), "settlement_failed");
	json_t *d = json_object_get(b, "data");
	assert_string_equal(json_string_value(json_object_get(d, "member")), "a");
	assert_int_equal(json_integer_value(json_object_get(d, "tokens_out")), 5);
	assert_int_equal(json_integer_value(json_object_get(d, "charter_version")), 2);
	json_decref(b);
	/* Booked by the retry: no second event. */
	assert_int_equal(settleq_retry_now(gate_settleq(f->gate)), 0);
	o.n = 0;
	assert_int_equal(store_outbox_due(f->app.store, INT64_MAX, 100,
							outbox_seen_cb, &o), ALLOT_OK);
	assert_int_equal(o.n, 1);
}

/* An I/O error (EIO) on the write, or on the fsync of a settlement that
 * must be on disk before its answer (--flush-ms 0): queued, then booked. */
static void test_eio_write_and_fsync(void **state)
{
	struct appfx *f = *state;
	struct token_claims a = claims("hard", "p", "a", "tq7");
	struct gate_ticket t;
	int64_t charge = -1;
	fault_code = SQLITE_IOERR_WRITE;
	assert_int_equal(admit(f, &a, 10, 10, &t), ALLOT_OK);
	fail_wal = -1;
	assert_int_not_equal(gate_settle(f->gate, &t, 10, 10, &charge), ALLOT_OK);
	fail_wal = 0;
	store_set_flush_ms(f->app.store, 0); /* every commit fsyncs */
	assert_int_equal(admit(f, &a, 20, 20, &t), ALLOT_OK);
	fail_fsync = true;
	assert_int_not_equal(gate_settle(f->gate, &t, 20, 20, &charge), ALLOT_OK);
	struct settleq_stats st = stats(f);
	assert_int_equal(st.queued, 2);
	assert_int_equal(st.unstored, 2); /* the queue's own fsync failed too */
	assert_int_equal(project(f).reserved, 30 * RATE_IN + 30 * RATE_OUT);
	assert_int_equal(nrows(f), 0);
	fail_fsync = false;
	assert_int_equal(settleq_retry_now(gate_settleq(f->gate)), 0);
	assert_int_equal(nrows(f), 4);
	struct quota_level p = project(f);
	assert_int_equal(p.used, 30 * RATE_IN + 30 * RATE_OUT);
	assert_int_equal(p.reserved, 0);
}

static void test_queued_survives_restart(void **state)
{
	struct appfx *f = *state;
	struct token_claims a = claims("hard", "p", "a", "tq2");
	struct gate_ticket t;
	assert_int_equal(admit(f, &a, 10, 10, &t), ALLOT_OK);
	fail_wal = 1; /* the booking's commit fails; the queue row after it is stored */
	int64_t charge = -1;
	assert_int_not_equal(gate_settle(f->gate, &t, 10, 10, &charge), ALLOT_OK);
	struct settleq_stats st = stats(f);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.unstored, 0);
	assert_int_equal(queue_rows(f), 1);
	assert_int_equal(nrows(f), 0);
	/* The process goes away before any retry. */
	appfx_stop(f);
	appfx_start(f);
	/* Opening the gate booked it, once, and emptied the queue. */
	st = stats(f);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.booked, 1);
	assert_int_equal(queue_rows(f), 0);
	assert_int_equal(nrows(f), 2);
	assert_int_equal(project(f).used, 10 * RATE_IN + 10 * RATE_OUT);
	appfx_stop(f);
	appfx_start(f);
	assert_int_equal(nrows(f), 2);
}

static void test_retry_finds_it_booked(void **state)
{
	struct appfx *f = *state;
	/* A settlement whose commit did land although it was reported failed:
	 * its records are there when the retry comes. */
	struct settle_pending p = {.tokens_in = 7, .tokens_out = 3, .charter_version = 1};
	snprintf(p.record_base, sizeof p.record_base, "gate:tq3:1-1");
	snprintf(p.provider, sizeof p.provider, "local");
	snprintf(p.institution, sizeof p.institution, "hard");
	snprintf(p.project, sizeof p.project, "p");
	snprintf(p.member, sizeof p.member, "a");
	snprintf(p.model, sizeof p.model, "m");
	p.start_us = fake_now - US_PER_SEC;
	p.end_us = fake_now;
	struct usage_record recs[2];
	size_t n = settleq_records(&p, recs);
	assert_int_equal(n, 2);
	int64_t charge = 0;
	char reason[256] = "";
	const struct ledger_settle_opts o = {0};
	assert_int_equal(ledger_settle(f->app.ledger, &o, recs, n, &charge, reason, sizeof reason),
			 ALLOT_OK);
	for (size_t i = 0; i < n; i++)
		record_release(&recs[i]);
	assert_int_equal(charge, 7 * RATE_IN + 3 * RATE_OUT);
	settleq_add(gate_settleq(f->gate), &p, NULL, 0, 0, NULL);
	assert_int_equal(queue_rows(f), 1);
	assert_int_equal(settleq_retry_now(gate_settleq(f->gate)), 0);
	assert_int_equal(queue_rows(f), 0);
	assert_int_equal(nrows(f), 2);
	assert_int_equal(project(f).used, 7 * RATE_IN + 3 * RATE_OUT);
}

/* ---- one charter per request ----------------------------------------------------- */

static void apply(struct appfx *f, const char *text)
{
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	char m[256] = "";
	allot_err e = app_charter_apply(&f->app, "unit.yaml", text, strlen(text), "unit", &errs, m,
					sizeof m);
	if (e)
		fail_msg("apply: %s: %s", m, errs.nerrors ? errs.errors[0].text : "");
	charter_errors_release(&errs);
}

/* charter_v1 with another version, effective, token rate out and members. */
static char *charter_with(int version, const char *effective, const char *rate_out,
			  const char *members, const char *project_credits)
{
	static char buf[2048];
	snprintf(buf, sizeof buf,
		 "charter: settleq-unit\nversion: %d\neffective: %s\ntimezone: UTC\nrates:\n"
		 "  - {resource: tokens_in,  model: m, credits: 0.0001}\n"
		 "  - {resource: tokens_out, model: m, credits: %s}\n"
		 "providers:\n  - {id: local, builtin: true}\n"
		 "models:\n  - {id: m, provider: local, file: absent.gguf}\n"
		 "institutions:\n  - id: hard\n    allocation: {credits: 1000, period: month}\n"
		 "    overage: {mode: hard}\n    projects:\n      - id: p\n"
		 "        allocation: {credits: %s, period: month}\n        members: [%s]\n",
		 version, effective, rate_out, project_credits, members);
	return buf;
}

static void test_settled_under_admitting_version(void **state)
{
	struct appfx *f = *state;
	struct token_claims a = claims("hard", "p", "a", "tq4");
	struct gate_ticket t;
	assert_int_equal(admit(f, &a, 10, 10, &t), ALLOT_OK);
	/* Version 2 takes effect while the request runs: output tokens cost
	 * ten times more. */
	apply(f, charter_with(2, "2026-06-01T00:00:00Z", "0.003", "a", "1"));
	int64_t charge = -1;
	assert_int_equal(gate_settle(f->gate, &t, 10, 10, &charge), ALLOT_OK);
	assert_int_equal(charge, 10 * RATE_IN + 10 * RATE_OUT);
	json_t *r = rows(f);
	assert_int_equal(json_array_size(r), 2);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(json_integer_value(json_object_get(json_array_get(r, i),
								    "charter_version")), 1);
	json_decref(r);
	/* The next request is admitted and settled under version 2. */
	assert_int_equal(admit(f, &a, 10, 10, &t), ALLOT_OK);
	assert_int_equal(gate_settle(f->gate, &t, 10, 10, &charge), ALLOT_OK);
	assert_int_equal(charge, 10 * RATE_IN + 10 * 3000);
}

static void test_scheduled_version(void **state)
{
	struct appfx *f = *state;
	/* Version 2, effective in an hour: adds member b, doubles the
	 * project's allocation, raises the output rate. */
	apply(f, charter_with(2, "2026-06-15T11:00:00Z", "0.003", "a, b", "2"));
	struct token_claims b = claims("hard", "p", "b", "tq5");
	struct token_claims a = claims("hard", "p", "a", "tq6");
	struct gate_ticket t;
	assert_int_equal(admit(f, &b, 10, 10, &t), ALLOT_E_FORBIDDEN);
	assert_int_equal(project(f).allocation, 1000000);
	assert_int_equal(admit(f, &a, 10, 10, &t), ALLOT_OK);
	int64_t charge = -1;
	assert_int_equal(gate_settle(f->gate, &t, 10, 10, &charge), ALLOT_OK);
	assert_int_equal(charge, 10 * RATE_IN + 10 * RATE_OUT);
	struct active_charter *ac = app_charter_get(&f->app);
	assert_int_equal(ac->row.version, 1);
	app_charter_put(&f->app, ac);
	ac = app_charter_latest(&f->app);
	assert_int_equal(ac->row.version, 2);
	app_charter_put(&f->app, ac);
	/* A version 3 must succeed version 2, the newest applied. */
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	char m[256];
	const char *v2again = charter_with(2, "2026-06-15T12:00:00Z", "0.003", "a", "1");
	assert_int_not_equal(app_charter_apply(&f->app, "x.yaml", v2again, strlen(v2again), "unit",
					       &errs, m, sizeof m),
			     ALLOT_OK);
	charter_errors_release(&errs);
	/* At its instant everything switches together. */
	fake_now = at("2026-06-15T11:00:00Z");
	assert_int_equal(project(f).allocation, 2000000);
	assert_int_equal(admit(f, &b, 10, 10, &t), ALLOT_OK);
	assert_int_equal(gate_settle(f->gate, &t, 10, 10, &charge), ALLOT_OK);
	assert_int_equal(charge, 10 * RATE_IN + 10 * 3000);
}

int main(void)
{
	shimvfs_install("test-settleq", &(struct shimvfs_hooks){.on_write = fault_write,
								.fail_sync = fault_sync});
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_disk_full_then_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settlement_failed_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eio_write_and_fsync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queued_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_finds_it_booked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settled_under_admitting_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduled_version, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
