/* test_outbox.c — the webhook outbox's retention (store/sqlite_outbox.c,
 * docs/WEBHOOKS.md "Retention"): outbox_prune deletes the delivered events
 * delivered before its bound, oldest first and at most max at a time, and
 * keeps the undelivered ones, the ones delivered since, and every row of the
 * newest `charter` event (start-up looks for its dedupe key), until a newer
 * one comes; bad input changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "store/store.h"
#include "support/sqfx.h"

/* Puts one event (id "msg_<dedupe>_<url>") created at t. */
static void put(struct store *st, const char *type, const char *dedupe, const char *url,
		   int64_t t)
{
	struct outbox_event ev = {.dedupe = dedupe, .body = "{}", .created_us = t, .next_us = t};
	snprintf(ev.id, sizeof ev.id, "msg_%s_%s", dedupe, url);
	snprintf(ev.url, sizeof ev.url, "http://%s.example/hook", url);
	snprintf(ev.type, sizeof ev.type, "%s", type);
	assert_int_equal(store_outbox_put(st, &ev), ALLOT_OK);
}

static bool has(struct store *st, const char *dedupe)
{
	bool h = false;
	assert_int_equal(store_outbox_has(st, dedupe, &h), ALLOT_OK);
	return h;
}

struct seen {
	int n;
	int64_t seq[16];
};

static void collect(void *ctx, const struct outbox_event *ev)
{
	struct seen *s = ctx;
	if (s->n < 16)
		s->seq[s->n++] = ev->seq;
}

/* Every event, delivered (at the given instant) or not, by dedupe key. */
static void fill(struct store *st)
{
	put(st, "alert", "old1", "a", 10);
	put(st, "overage", "old2", "a", 11);
	put(st, "charter", "charter:1", "a", 12);
	put(st, "alert", "recent", "a", 13);
	put(st, "alert", "pending", "a", 14);
	put(st, "charter", "charter:2", "a", 15);
	put(st, "charter", "charter:2", "b", 15);
	/* every event is due: deliver all but "pending" (seq order = put order) */
	struct seen s = {0};
	assert_int_equal(store_outbox_due(st, 100, 16, collect, &s), ALLOT_OK);
	assert_int_equal(s.n, 7);
	const int64_t delivered_at[] = {100, 110, 120, 500, 0, 130, 140};
	for (int i = 0; i < s.n; i++)
		if (delivered_at[i])
			assert_int_equal(store_outbox_done(st, s.seq[i], delivered_at[i]), ALLOT_OK);
}

static void test_prune(void **state)
{
	struct sqfx *f = *state;
	struct store *st = f->st;
	int64_t n = -1;
	fill(st);
	/* nothing delivered before 100 */
	assert_int_equal(store_outbox_prune(st, 100, 1000, &n), ALLOT_OK);
	assert_int_equal(n, 0);
	/* before 400, at most one at a time: old1, then old2, then charter:1 */
	assert_int_equal(store_outbox_prune(st, 400, 1, &n), ALLOT_OK);
	assert_int_equal(n, 1);
	assert_false(has(st, "old1"));
	assert_true(has(st, "old2"));
	assert_int_equal(store_outbox_prune(st, 400, 1000, &n), ALLOT_OK);
	assert_int_equal(n, 2);
	assert_false(has(st, "old2"));
	assert_false(has(st, "charter:1"));
	/* delivered after the bound, never delivered, the newest charter event
	 * (both urls, though delivered before the bound): kept */
	assert_true(has(st, "recent"));
	assert_true(has(st, "pending"));
	assert_true(has(st, "charter:2"));
	assert_int_equal(store_outbox_prune(st, 400, 1000, &n), ALLOT_OK);
	assert_int_equal(n, 0);
	/* a later bound takes "recent"; "pending" stays whatever the bound */
	assert_int_equal(store_outbox_prune(st, INT64_MAX, 1000, &n), ALLOT_OK);
	assert_int_equal(n, 1);
	assert_false(has(st, "recent"));
	assert_true(has(st, "pending"));
	assert_true(has(st, "charter:2"));
	struct seen s = {0};
	assert_int_equal(store_outbox_due(st, 1000, 16, collect, &s), ALLOT_OK);
	assert_int_equal(s.n, 1); /* "pending" is still to be delivered */
	/* a newer charter event: the previous newest may go */
	put(st, "charter", "charter:3", "a", 200);
	struct seen s3 = {0};
	assert_int_equal(store_outbox_due(st, 1000, 16, collect, &s3), ALLOT_OK);
	assert_int_equal(s3.n, 2); /* "pending", then charter:3 */
	assert_int_equal(s3.seq[0], s.seq[0]);
	assert_int_equal(store_outbox_done(st, s3.seq[1], 600), ALLOT_OK);
	assert_int_equal(store_outbox_prune(st, INT64_MAX, 1000, &n), ALLOT_OK);
	assert_int_equal(n, 2);
	assert_false(has(st, "charter:2"));
	assert_true(has(st, "charter:3"));
}

static void test_prune_bad_input(void **state)
{
	struct sqfx *f = *state;
	int64_t n = -1;
	fill(f->st);
	assert_int_equal(store_outbox_prune(f->st, INT64_MAX, 0, &n), ALLOT_E_INVALID);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_prune(f->st, INT64_MAX, -5, &n), ALLOT_E_INVALID);
	assert_true(has(f->st, "old1"));
	assert_true(has(f->st, "recent"));
}

int main(void)
{
	log_set_verbose(false);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_prune, sqfx_setup, sqfx_teardown),
		cmocka_unit_test_setup_teardown(test_prune_bad_input, sqfx_setup, sqfx_teardown),
	};
	return cmocka_run_group_tests_name("outbox", tests, NULL, NULL);
}
