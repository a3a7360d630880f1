/* test_pg_revocations.c — a node's poll of the token revocations other
 * nodes store (tokens_refresh, gate/revwin.h; docs/POSTGRES.md, "Nodes of
 * one database") on a real PostgreSQL database, with a second session as
 * the other node: a revocation whose transaction took its id before a
 * larger one committed, and commits after the poll saw the larger one, is
 * still read and enforced; a rolled-back id stops being waited for once the
 * overlap has passed; and each poll reads only the rows past its
 * watermark (a counter of rows read), not the whole table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "gate/revwin.h"
#include "gate/tokens.h"
#include "store/store.h"
#include "support/appfx.h"
#include "support/pgfx.h"
#include "support/tmpdir.h"

#define S 1000000LL

struct fx {
	struct pgfx *pg;
	char dir[64];
	struct gate_tokens *t;
	PGconn *other; /* the other node's session */
	uint64_t read; /* rows read so far, as last seen */
};

/* Mints a token; OUT: its text in tok (malloc) and jti. */
static char *mint(struct fx *f, char jti[TOKEN_ID_MAX + 1])
{
	struct token_claims c = appfx_claims("epfl", "climate", "alice@epfl.ch", "x", time_now_us());
	char *tok = NULL, msg[256] = "";
	if (tokens_mint(f->t, f->pg->st, &c, "admin", &tok, msg, sizeof msg))
		fail_msg("mint: %s", msg);
	snprintf(jti, TOKEN_ID_MAX + 1, "%s", c.jti);
	return tok;
}

static bool revoked(struct fx *f, const char *tok)
{
	struct token_claims c;
	char msg[256];
	return tokens_verify(f->t, tok, strlen(tok), &c, msg, sizeof msg) != ALLOT_OK;
}

/* The other node's revocation of jti, in its session (a transaction the
 * caller opened, or one of its own). */
static void other_revokes(struct fx *f, const char *jti)
{
	char sql[256];
	snprintf(sql, sizeof sql,
		 "INSERT INTO token_revocations(jti, revoked_at, revoked_by) VALUES ('%s', 1, 'b')",
		 jti);
	pgfx_exec(f->other, sql);
}

/* One poll at now; returns the rows it read. */
static uint64_t poll_at(struct fx *f, int64_t now)
{
	assert_int_equal(tokens_refresh_at(f->t, f->pg->st, now, REVWIN_OVERLAP_US), ALLOT_OK);
	uint64_t n;
	int64_t after;
	tokens_refresh_stats(f->t, &n, &after);
	uint64_t d = n - f->read;
	f->read = n;
	return d;
}

static int64_t after_id(struct fx *f)
{
	uint64_t n;
	int64_t after;
	tokens_refresh_stats(f->t, &n, &after);
	return after;
}

static int setup(void **state)
{
	void *pg = NULL;
	pgfx_setup(&pg);
	if (!pg) {
		*state = NULL;
		return 0;
	}
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->pg = pg;
	tmpdir_make(f->dir, sizeof f->dir, "pgrev");
	char msg[256] = "";
	if (tokens_open(f->pg->st, f->dir, "unit", &f->t, msg, sizeof msg))
		fail_msg("tokens_open: %s", msg);
	f->other = pgfx_connect(f->pg->uri);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	PQfinish(f->other);
	tokens_free(f->t);
	void *pg = f->pg;
	pgfx_teardown(&pg);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void test_late_commit_is_read(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	char j1[TOKEN_ID_MAX + 1], j2[TOKEN_ID_MAX + 1], j3[TOKEN_ID_MAX + 1];
	char *t1 = mint(f, j1), *t2 = mint(f, j2), *t3 = mint(f, j3);
	int64_t now = 1000 * S;
	assert_int_equal(poll_at(f, now), 0);

	other_revokes(f, j1);                  /* id 1, committed */
	pgfx_exec(f->other, "BEGIN");
	other_revokes(f, j2);                  /* id 2, not committed yet */
	PGconn *third = pgfx_connect(f->pg->uri);
	char sql[256];
	snprintf(sql, sizeof sql,
		 "INSERT INTO token_revocations(jti, revoked_at, revoked_by) VALUES ('%s', 1, 'c')",
		 j3);
	pgfx_exec(third, sql);                 /* id 3, committed before 2 */
	assert_int_equal(poll_at(f, now + 1 * S), 2);
	assert_true(revoked(f, t1));
	assert_false(revoked(f, t2));
	assert_true(revoked(f, t3));
	assert_int_equal(after_id(f), 1);      /* 2 missing: read from 1 again */

	pgfx_exec(f->other, "COMMIT");         /* 2 commits late */
	assert_int_equal(poll_at(f, now + 2 * S), 2);   /* 2 and 3 */
	assert_true(revoked(f, t2));
	assert_int_equal(after_id(f), 3);
	assert_int_equal(poll_at(f, now + 3 * S), 0);   /* nothing new: nothing read */
	PQfinish(third);
	free(t1);
	free(t2);
	free(t3);
}

static void test_rollback_and_bounded(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	char jti[TOKEN_ID_MAX + 1];
	int64_t now = 1000 * S;
	/* 40 revocations stored and read */
	for (int i = 0; i < 40; i++) {
		free(mint(f, jti));
		other_revokes(f, jti);
	}
	assert_int_equal(poll_at(f, now), 40);
	assert_int_equal(poll_at(f, now), 0);
	/* one more: one row read, not 41 */
	free(mint(f, jti));
	other_revokes(f, jti);
	assert_int_equal(poll_at(f, now + 1 * S), 1);
	assert_int_equal(after_id(f), 41);
	/* id 42 rolled back, 43 committed: 43 read again until the overlap ends */
	pgfx_exec(f->other, "BEGIN");
	other_revokes(f, "rolledback");
	pgfx_exec(f->other, "ROLLBACK");
	char *tok = mint(f, jti);
	other_revokes(f, jti);
	assert_int_equal(poll_at(f, now + 2 * S), 1);
	assert_true(revoked(f, tok));
	assert_int_equal(after_id(f), 41);
	assert_int_equal(poll_at(f, now + 2 * S + REVWIN_OVERLAP_US - 1), 1);
	assert_int_equal(after_id(f), 41);
	assert_int_equal(poll_at(f, now + 2 * S + REVWIN_OVERLAP_US), 1);
	assert_int_equal(after_id(f), 43);
	assert_int_equal(poll_at(f, now + 3 * S + REVWIN_OVERLAP_US), 0);
	free(tok);
}

/* The store's read from an id: rows past it only, with their ids. */
static void count_row(void *ctx, const struct token_revocation *r)
{
	int64_t *last = ctx;
	assert_true(r->id > *last);
	*last = r->id;
}

static void test_store_after_id(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	for (int i = 0; i < 5; i++)
		other_revokes(f, "j");
	int64_t last = 3;
	assert_int_equal(store_token_revocations(f->pg->st, 3, count_row, &last), ALLOT_OK);
	assert_int_equal(last, 5);
}

int main(void)
{
	log_set_quiet(true);
	pgfx_note_skips("test_pg_revocations");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_late_commit_is_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_and_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_after_id, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
