/* test_pg_store.c — the store's plain operations (keys, charters, audit,
 * tokens, rejections, retry queue, outbox) as a conformance test: every
 * case runs on SQLite and on PostgreSQL, so the two backends cannot drift
 * apart (the PostgreSQL store's own machinery: test_pg_pool.c).
 *
 * The server comes from ALLOT_TEST_PG_URI (`make unit` sets it to a
 * throwaway cluster, scripts/with-pg.sh); without it the PostgreSQL cases
 * skip and say so.  Each case works in a database (or file) of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/migrate.h"
#include "store/pg_int.h"
#include "support/pgfx.h"
#include "support/sqfx.h"

struct fx {
	struct store *st;  /* the store of one of: */
	struct pgfx *pg;   /* PostgreSQL: its database (support/pgfx.h) */
	struct sqfx *sq;   /* SQLite: its file (support/sqfx.h) */
};

/* fx around the store's own fixture (NULL: a PostgreSQL case without a
 * server, skipped). */
static int setup_pg(void **state)
{
	void *pg = NULL;
	pgfx_setup(&pg);
	struct fx *f = NULL;
	if (pg) {
		f = calloc(1, sizeof *f);
		assert_non_null(f);
		f->pg = pg;
		f->st = f->pg->st;
	}
	*state = f;
	return 0;
}

static int setup_sqlite(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	void *sq = NULL;
	sqfx_setup(&sq);
	f->sq = sq;
	f->st = f->sq->st;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	void *own = f->pg ? (void *)f->pg : (void *)f->sq;
	if (f->pg)
		pgfx_teardown(&own);
	else
		sqfx_teardown(&own);
	free(f);
	return 0;
}

static const struct audit_entry AUDIT = {.at = 5, .actor = "admin", .action = "test.action",
					 .target = "t", .detail = "{\"k\":1}"};

static void count_audit(void *ctx, int64_t id, const struct audit_entry *a)
{
	(void)id;
	(void)a;
	(*(int *)ctx)++;
}

static int audit_count(struct store *st)
{
	int n = 0;
	assert_int_equal(store_audit_list(st, 0, -1, count_audit, &n), ALLOT_OK);
	return n;
}

/* Leaves in the transparency log: one per applied charter and audit entry,
 * appended in the entry's own transaction. */
static uint64_t log_size(struct store *st)
{
	uint64_t size = 0;
	uint8_t root[32];
	assert_int_equal(store_tlog_head(st, &size, root), ALLOT_OK);
	return size;
}

/* ---- keys ---------------------------------------------------------------------- */

static struct api_key key_of(const char *id, const char *role, uint8_t fill, int64_t at)
{
	struct api_key k;
	memset(&k, 0, sizeof k);
	snprintf(k.id, sizeof k.id, "%s", id);
	snprintf(k.role, sizeof k.role, "%s", role);
	memset(k.secret_sha256, fill, 32);
	k.secret_sha256[0] = 0; /* a NUL byte inside the hash */
	snprintf(k.label, sizeof k.label, "label of %s", id);
	k.created_at = at;
	snprintf(k.created_by, sizeof k.created_by, "admin");
	return k;
}

struct ids {
	char v[8][STORE_ID_MAX];
	int n;
};

static void key_id(void *ctx, const struct api_key *k)
{
	struct ids *ids = ctx;
	if (ids->n < 8)
		snprintf(ids->v[ids->n++], STORE_ID_MAX, "%s", k->id);
}

static void case_keys(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct store *st = f->st;
	struct api_key k = key_of("k1", "admin", 0xab, 100), out;
	assert_int_equal(store_key_insert(st, &k, &AUDIT), ALLOT_OK);
	/* the same id, the same hash, an institution key without institution:
	 * refused, and no audit entry left behind */
	struct api_key dup = key_of("k1", "admin", 0xcd, 100);
	assert_int_equal(store_key_insert(st, &dup, &AUDIT), ALLOT_E_CONFLICT);
	dup = key_of("k9", "admin", 0xab, 100);
	assert_int_equal(store_key_insert(st, &dup, &AUDIT), ALLOT_E_CONFLICT);
	dup = key_of("k8", "institution", 0x11, 100);
	assert_int_equal(store_key_insert(st, &dup, &AUDIT), ALLOT_E_CONFLICT);
	assert_int_equal(audit_count(st), 1);
	assert_int_equal(log_size(st), 1);

	assert_int_equal(store_key_find_by_hash(st, k.secret_sha256, &out), ALLOT_OK);
	assert_string_equal(out.id, "k1");
	assert_string_equal(out.role, "admin");
	assert_string_equal(out.institution, "");
	assert_string_equal(out.label, "label of k1");
	assert_int_equal(out.created_at, 100);
	assert_string_equal(out.created_by, "admin");
	assert_int_equal(out.revoked_at, 0);
	assert_memory_equal(out.secret_sha256, k.secret_sha256, 32);
	uint8_t other[32] = {1};
	assert_int_equal(store_key_find_by_hash(st, other, &out), ALLOT_E_NOT_FOUND);

	struct api_key inst = key_of("k2", "institution", 0x22, 50);
	snprintf(inst.institution, sizeof inst.institution, "epfl");
	assert_int_equal(store_key_insert(st, &inst, NULL), ALLOT_OK);
	int64_t n = -1;
	assert_int_equal(store_key_count_active(st, "admin", &n), ALLOT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_key_revoke(st, "k1", 777, &AUDIT), ALLOT_OK);
	assert_int_equal(store_key_revoke(st, "k1", 778, &AUDIT), ALLOT_E_NOT_FOUND);
	assert_int_equal(store_key_revoke(st, "nope", 778, &AUDIT), ALLOT_E_NOT_FOUND);
	assert_int_equal(audit_count(st), 2);
	assert_int_equal(store_key_count_active(st, "admin", &n), ALLOT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_key_find_by_hash(st, k.secret_sha256, &out), ALLOT_OK);
	assert_int_equal(out.revoked_at, 777);
	assert_int_equal(store_key_find_by_hash(st, inst.secret_sha256, &out), ALLOT_OK);
	assert_string_equal(out.institution, "epfl");

	/* oldest first, then the ids in byte order whatever the collation */
	struct api_key b = key_of("b", "auditor", 0x31, 100), B = key_of("B", "auditor", 0x32, 100);
	assert_int_equal(store_key_insert(st, &b, NULL), ALLOT_OK);
	assert_int_equal(store_key_insert(st, &B, NULL), ALLOT_OK);
	struct ids ids = {0};
	assert_int_equal(store_key_list(st, key_id, &ids), ALLOT_OK);
	assert_int_equal(ids.n, 4);
	assert_string_equal(ids.v[0], "k2");
	assert_string_equal(ids.v[1], "B");
	assert_string_equal(ids.v[2], "b");
	assert_string_equal(ids.v[3], "k1");
}

/* ---- charters -------------------------------------------------------------------- */

static const char CHARTER_TEXT[] = "charter: t\n\0zero\xc3\xa9\xff end";

static struct charter_row charter_of(int64_t version)
{
	struct charter_row r;
	memset(&r, 0, sizeof r);
	r.version = version;
	snprintf(r.charter_id, sizeof r.charter_id, "c-%lld", (long long)version);
	r.text = (char *)CHARTER_TEXT;
	r.text_len = sizeof CHARTER_TEXT - 1;
	snprintf(r.sha256, sizeof r.sha256, "%064d", (int)version);
	snprintf(r.author, sizeof r.author, "admin");
	r.applied_at = 1000 + version;
	r.effective = 2000 + version;
	return r;
}

static void hist_version(void *ctx, const struct charter_row *r)
{
	struct ids *ids = ctx;
	assert_null(r->text);
	assert_string_equal(r->author, "admin");
	assert_int_equal(r->effective, 2000 + r->version);
	if (ids->n < 8)
		snprintf(ids->v[ids->n++], STORE_ID_MAX, "%lld", (long long)r->version);
}

static void case_charters(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct store *st = f->st;
	struct charter_row out;
	assert_int_equal(store_charter_latest(st, &out), ALLOT_E_NOT_FOUND);
	struct charter_row c1 = charter_of(1), c3 = charter_of(3), c2 = charter_of(2);
	assert_int_equal(store_charter_apply(st, &c1, &AUDIT), ALLOT_OK);
	assert_int_equal(store_charter_apply(st, &c1, &AUDIT), ALLOT_E_CONFLICT);
	assert_non_null(strstr(st->errmsg, "does not increase"));
	assert_int_equal(store_charter_apply(st, &c3, &AUDIT), ALLOT_OK);
	assert_int_equal(store_charter_apply(st, &c2, &AUDIT), ALLOT_E_CONFLICT);
	assert_int_equal(audit_count(st), 2);
	assert_int_equal(log_size(st), 4); /* two charters, two audit entries */
	int64_t idx = -1;
	assert_int_equal(store_tlog_leaf_of(st, "charter", 3, &idx), ALLOT_OK);
	assert_int_equal(idx, 2);
	assert_int_equal(store_tlog_leaf_of(st, "charter", 2, &idx), ALLOT_E_NOT_FOUND);

	assert_int_equal(store_charter_latest(st, &out), ALLOT_OK);
	assert_int_equal(out.version, 3);
	assert_string_equal(out.charter_id, "c-3");
	assert_int_equal(out.text_len, sizeof CHARTER_TEXT - 1);
	assert_memory_equal(out.text, CHARTER_TEXT, out.text_len);
	assert_int_equal(out.text[out.text_len], '\0');
	assert_string_equal(out.sha256, c3.sha256);
	assert_int_equal(out.applied_at, 1003);
	free(out.text);
	assert_int_equal(store_charter_get(st, 1, &out), ALLOT_OK);
	assert_string_equal(out.charter_id, "c-1");
	assert_int_equal(out.effective, 2001);
	free(out.text);
	assert_int_equal(store_charter_get(st, 2, &out), ALLOT_E_NOT_FOUND);
	assert_int_equal(store_charter_get(st, 0, &out), ALLOT_E_NOT_FOUND);
	assert_int_equal(store_charter_get(st, -1, &out), ALLOT_E_NOT_FOUND);
	struct ids ids = {0};
	assert_int_equal(store_charter_history(st, hist_version, &ids), ALLOT_OK);
	assert_int_equal(ids.n, 2);
	assert_string_equal(ids.v[0], "1");
	assert_string_equal(ids.v[1], "3");
}

/* ---- audit ------------------------------------------------------------------------ */

struct seen {
	int n;
	int64_t ids[8];
	char actor[8][32];
	bool target_null[8], detail_null[8];
	int64_t at[8];
};

static void audit_seen(void *ctx, int64_t id, const struct audit_entry *a)
{
	struct seen *s = ctx;
	if (s->n >= 8)
		return;
	s->ids[s->n] = id;
	snprintf(s->actor[s->n], sizeof s->actor[0], "%s", a->actor);
	s->target_null[s->n] = a->target == NULL;
	s->detail_null[s->n] = a->detail == NULL;
	s->at[s->n] = a->at;
	s->n++;
}

static void case_audit(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct store *st = f->st;
	struct audit_entry a = {.at = 1, .actor = "alice", .action = "key.create"};
	struct audit_entry b = {.at = 2, .actor = "bob", .action = "x", .target = "tg",
				.before_sha256 = "00", .after_sha256 = "11", .detail = "{}"};
	struct audit_entry c = {.at = 3, .actor = "carol", .action = "y", .target = ""};
	assert_int_equal(store_audit_append(st, &a), ALLOT_OK);
	assert_int_equal(store_audit_append(st, &b), ALLOT_OK);
	assert_int_equal(store_audit_append(st, &c), ALLOT_OK);
	assert_int_equal(log_size(st), 3);
	struct seen s = {0};
	assert_int_equal(store_audit_list(st, 0, 10, audit_seen, &s), ALLOT_OK);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.actor[0], "alice");
	assert_true(s.target_null[0] && s.detail_null[0]);
	assert_false(s.target_null[1] || s.detail_null[1]);
	assert_true(s.target_null[2]); /* "" is stored as NULL, as on SQLite */
	assert_int_equal(s.at[2], 3);
	assert_true(s.ids[0] < s.ids[1] && s.ids[1] < s.ids[2]);
	struct seen t = {0};
	assert_int_equal(store_audit_list(st, s.ids[0], 1, audit_seen, &t), ALLOT_OK);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.actor[0], "bob");
	struct seen u = {0};
	assert_int_equal(store_audit_list(st, s.ids[2], 10, audit_seen, &u), ALLOT_OK);
	assert_int_equal(u.n, 0);
}

/* ---- tokens ------------------------------------------------------------------------ */

struct revs {
	int n;
	struct token_revocation r[4];
};

static void rev_seen(void *ctx, const struct token_revocation *r)
{
	struct revs *rv = ctx;
	if (rv->n < 4)
		rv->r[rv->n++] = *r;
}

static void case_tokens(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct store *st = f->st;
	struct token_row t = {.jti = "j1", .institution = "epfl", .project = "climate",
			      .member = "alice@epfl.ch", .kid = "kid1", .iat = 10, .exp = 20,
			      .minted_by = "admin"}, out;
	assert_int_equal(store_token_issued(st, &t, &AUDIT), ALLOT_OK);
	assert_int_equal(store_token_issued(st, &t, &AUDIT), ALLOT_E_CONFLICT);
	assert_int_equal(audit_count(st), 1);
	assert_int_equal(store_token_find(st, "j1", &out), ALLOT_OK);
	assert_string_equal(out.jti, "j1");
	assert_string_equal(out.member, "alice@epfl.ch");
	assert_string_equal(out.kid, "kid1");
	assert_int_equal(out.iat, 10);
	assert_int_equal(out.exp, 20);
	assert_int_equal(store_token_find(st, "j2", &out), ALLOT_E_NOT_FOUND);

	struct token_revocation one = {.jti = "j1", .revoked_at = 30, .revoked_by = "admin"};
	struct token_revocation all = {.institution = "epfl", .member = "bob@epfl.ch",
				       .before_us = 25, .revoked_at = 31, .revoked_by = "admin"};
	struct token_revocation none = {.revoked_at = 32, .revoked_by = "admin"};
	assert_int_equal(store_token_revoke(st, &one, &AUDIT), ALLOT_OK);
	assert_int_equal(store_token_revoke(st, &all, &AUDIT), ALLOT_OK);
	assert_int_equal(store_token_revoke(st, &none, &AUDIT), ALLOT_E_CONFLICT);
	assert_int_equal(audit_count(st), 3);
	struct revs rv = {0};
	assert_int_equal(store_token_revocations(st, 0, rev_seen, &rv), ALLOT_OK);
	assert_int_equal(rv.n, 2);
	assert_string_equal(rv.r[0].jti, "j1");
	assert_int_equal(rv.r[0].before_us, 0);
	assert_string_equal(rv.r[0].member, "");
	assert_string_equal(rv.r[1].jti, "");
	assert_string_equal(rv.r[1].institution, "epfl");
	assert_string_equal(rv.r[1].member, "bob@epfl.ch");
	assert_int_equal(rv.r[1].before_us, 25);
	assert_int_equal(rv.r[1].revoked_at, 31);
}

/* ---- rejections ---------------------------------------------------------------------- */

static struct ledger_rejection rej_of(const char *prov, const char *id, bool has_seq,
				      int64_t seq)
{
	struct ledger_rejection r;
	memset(&r, 0, sizeof r);
	snprintf(r.provider, sizeof r.provider, "%s", prov);
	snprintf(r.record_id, sizeof r.record_id, "%s", id);
	r.has_seq = has_seq;
	r.seq = seq;
	memset(r.sha256, 0x5a, 32);
	snprintf(r.reason, sizeof r.reason, "unknown project");
	r.received_us = 99;
	return r;
}

struct rejs {
	int n;
	struct ledger_rejection r[4];
};

static void rej_seen(void *ctx, const struct ledger_rejection *r)
{
	struct rejs *rs = ctx;
	if (rs->n < 4)
		rs->r[rs->n++] = *r;
}

static void case_rejections(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct store *st = f->st;
	struct ledger_rejection out;
	assert_int_equal(store_reject_find(st, "cscs", "r1", &out), ALLOT_E_NOT_FOUND);
	struct ledger_rejection a = rej_of("cscs", "r1", true, 0), b = rej_of("cscs", "r2", false, 0),
				c = rej_of("lumi", "r1", true, 7);
	assert_int_equal(store_reject_insert(st, &a), ALLOT_OK);
	assert_int_equal(store_reject_insert(st, &b), ALLOT_OK);
	assert_int_equal(store_reject_insert(st, &c), ALLOT_OK);
	/* decided for good; on PostgreSQL "decided already" (another node's
	 * batch, store.h), and the transaction is not aborted */
	assert_int_equal(store_reject_insert(st, &a), f->pg ? ALLOT_E_CONFLICT : ALLOT_E_STORE);
	assert_int_equal(store_reject_find(st, "cscs", "r1", &out), ALLOT_OK);
	assert_true(out.has_seq);
	assert_int_equal(out.seq, 0);
	assert_memory_equal(out.sha256, a.sha256, 32);
	assert_string_equal(out.reason, "unknown project");
	assert_int_equal(out.received_us, 99);
	assert_int_equal(store_reject_find(st, "cscs", "r2", &out), ALLOT_OK);
	assert_false(out.has_seq);
	struct rejs all = {0}, cscs = {0}, page = {0};
	assert_int_equal(store_reject_list(st, NULL, 0, 10, rej_seen, &all), ALLOT_OK);
	assert_int_equal(all.n, 3);
	assert_true(all.r[0].id < all.r[1].id && all.r[1].id < all.r[2].id);
	assert_int_equal(store_reject_list(st, "cscs", 0, 10, rej_seen, &cscs), ALLOT_OK);
	assert_int_equal(cscs.n, 2);
	assert_int_equal(store_reject_list(st, NULL, all.r[0].id, 1, rej_seen, &page), ALLOT_OK);
	assert_int_equal(page.n, 1);
	assert_string_equal(page.r[0].record_id, "r2");
}

/* ---- the retry queue and the outbox ----------------------------------------------------- */

struct pend {
	int n;
	struct settle_pending p[4];
};

static void pend_seen(void *ctx, const struct settle_pending *p)
{
	struct pend *ps = ctx;
	if (ps->n < 4)
		ps->p[ps->n++] = *p;
}

static void case_settleq(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct store *st = f->st;
	struct settle_pending p = {.record_base = "gate:j1:b-1", .provider = "gate",
				   .institution = "epfl", .project = "climate",
				   .member = "alice@epfl.ch", .model = "m", .tokens_in = 3,
				   .tokens_out = 4, .start_us = 10, .end_us = 11,
				   .charter_version = 2, .queued_us = 12, .reason = "busy"};
	assert_int_equal(store_settleq_put(st, &p), ALLOT_OK);
	assert_true(p.id > 0);
	struct settle_pending q = p;
	q.id = 0;
	assert_int_equal(store_settleq_put(st, &q), ALLOT_E_CONFLICT);
	snprintf(q.record_base, sizeof q.record_base, "gate:j1:b-2");
	q.end_us = 5; /* before its start */
	assert_int_equal(store_settleq_put(st, &q), ALLOT_E_CONFLICT);
	struct pend l = {0};
	assert_int_equal(store_settleq_list(st, pend_seen, &l), ALLOT_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.p[0].id, p.id);
	assert_string_equal(l.p[0].record_base, "gate:j1:b-1");
	assert_string_equal(l.p[0].member, "alice@epfl.ch");
	assert_int_equal(l.p[0].tokens_out, 4);
	assert_int_equal(l.p[0].charter_version, 2);
	assert_string_equal(l.p[0].reason, "busy");
	assert_int_equal(store_settleq_delete(st, p.id), ALLOT_OK);
	struct pend e = {0};
	assert_int_equal(store_settleq_list(st, pend_seen, &e), ALLOT_OK);
	assert_int_equal(e.n, 0);
}

struct due {
	int n;
	int64_t seq;
	int attempts;
	char body[64], id[OUTBOX_ID_MAX];
};

static void due_seen(void *ctx, const struct outbox_event *ev)
{
	struct due *d = ctx;
	d->n++;
	d->seq = ev->seq;
	d->attempts = ev->attempts;
	snprintf(d->body, sizeof d->body, "%s", ev->body);
	snprintf(d->id, sizeof d->id, "%s", ev->id);
}

static void case_outbox(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct store *st = f->st;
	struct outbox_event ev = {.id = "msg_1", .url = "http://127.0.0.1:9/h", .type = "alert",
				  .dedupe = "alert:epfl:80", .body = (char *)"{\"a\":1}",
				  .created_us = 100, .next_us = 100};
	assert_int_equal(store_outbox_put(st, &ev), ALLOT_OK);
	struct outbox_event again = ev;
	snprintf(again.id, sizeof again.id, "msg_2");
	again.body = (char *)"{\"a\":2}";
	assert_int_equal(store_outbox_put(st, &again), ALLOT_OK); /* skipped */
	bool has = false;
	assert_int_equal(store_outbox_has(st, "alert:epfl:80", &has), ALLOT_OK);
	assert_true(has);
	assert_int_equal(store_outbox_has(st, "alert:epfl:90", &has), ALLOT_OK);
	assert_false(has);
	struct due d = {0};
	assert_int_equal(store_outbox_due(st, 99, 10, due_seen, &d), ALLOT_OK);
	assert_int_equal(d.n, 0);
	/* max 0: nothing, and no error (SQLite once answered a store error) */
	assert_int_equal(store_outbox_due(st, 100, 0, due_seen, &d), ALLOT_OK);
	assert_int_equal(d.n, 0);
	assert_int_equal(store_outbox_due(st, 100, 10, due_seen, &d), ALLOT_OK);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.body, "{\"a\":1}");
	assert_string_equal(d.id, "msg_1");
	assert_int_equal(d.attempts, 0);
	assert_int_equal(store_outbox_retry(st, d.seq, 1, 500, "HTTP 500"), ALLOT_OK);
	struct due d2 = {0};
	assert_int_equal(store_outbox_due(st, 499, 10, due_seen, &d2), ALLOT_OK);
	assert_int_equal(d2.n, 0);
	assert_int_equal(store_outbox_due(st, 500, 10, due_seen, &d2), ALLOT_OK);
	assert_int_equal(d2.n, 1);
	assert_int_equal(d2.attempts, 1);
	assert_int_equal(store_outbox_done(st, d2.seq, 600), ALLOT_OK);
	struct due d3 = {0};
	assert_int_equal(store_outbox_due(st, 1000, 10, due_seen, &d3), ALLOT_OK);
	assert_int_equal(d3.n, 0);
}

/* Five events: charter c1, alert a1, charter c2, alert a2, alert a3 (next_us
 * 1..5), their seqs in that order. */
struct seqs {
	int n;
	int64_t seq[8];
};

static void seq_seen(void *ctx, const struct outbox_event *ev)
{
	struct seqs *s = ctx;
	if (s->n < 8)
		s->seq[s->n++] = ev->seq;
}

static void case_outbox_prune(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	struct store *st = f->st;
	static const char *const ids[] = {"c1", "a1", "c2", "a2", "a3"};
	for (int i = 0; i < 5; i++) {
		struct outbox_event ev = {.url = "http://127.0.0.1:9/h", .body = (char *)"{}",
					  .created_us = i + 1, .next_us = i + 1};
		snprintf(ev.id, sizeof ev.id, "%s", ids[i]);
		snprintf(ev.type, sizeof ev.type, "%s", ids[i][0] == 'c' ? "charter" : "alert");
		char dedupe[32];
		snprintf(dedupe, sizeof dedupe, "%s:%s", ev.type, ids[i]);
		ev.dedupe = dedupe;
		assert_int_equal(store_outbox_put(st, &ev), ALLOT_OK);
	}
	struct seqs s = {0};
	assert_int_equal(store_outbox_due(st, 10, 10, seq_seen, &s), ALLOT_OK);
	assert_int_equal(s.n, 5);
	/* delivered: c1 at 100, a1 at 600, c2 (the newest charter) at 200, a2 at 700 */
	static const int64_t at[] = {100, 600, 200, 700};
	for (int i = 0; i < 4; i++)
		assert_int_equal(store_outbox_done(st, s.seq[i], at[i]), ALLOT_OK);
	int64_t n = -1;
	assert_int_equal(store_outbox_prune(st, 650, 0, &n), ALLOT_E_INVALID);
	assert_int_equal(n, 0);
	/* before 650: c1 and a1; c2 stays (the newest charter), a2 too late */
	assert_int_equal(store_outbox_prune(st, 650, 10, &n), ALLOT_OK);
	assert_int_equal(n, 2);
	bool has = true;
	assert_int_equal(store_outbox_has(st, "charter:c1", &has), ALLOT_OK);
	assert_false(has);
	assert_int_equal(store_outbox_has(st, "alert:a1", &has), ALLOT_OK);
	assert_false(has);
	assert_int_equal(store_outbox_has(st, "charter:c2", &has), ALLOT_OK);
	assert_true(has);
	/* at most max, oldest first: a2; never c2 nor the undelivered a3 */
	assert_int_equal(store_outbox_prune(st, 1000000, 1, &n), ALLOT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_outbox_has(st, "alert:a2", &has), ALLOT_OK);
	assert_false(has);
	assert_int_equal(store_outbox_prune(st, 1000000, 10, &n), ALLOT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_has(st, "charter:c2", &has), ALLOT_OK);
	assert_true(has);
	assert_int_equal(store_outbox_has(st, "alert:a3", &has), ALLOT_OK);
	assert_true(has);
}

static void case_schema_version(void **state)
{
	struct fx *f = *state;
	PGFX_NEED(f);
	int want = migrate_latest(f->pg ? migrations_postgres : migrations_sqlite);
	assert_int_equal(store_schema_version(f->st), want);
	assert_string_equal(store_name(f->st), f->pg ? "postgres" : "sqlite");
}

#define BOTH(fn)                                                                    \
	{"sqlite: " #fn, fn, setup_sqlite, teardown, NULL},                         \
	{"postgres: " #fn, fn, setup_pg, teardown, NULL}

int main(void)
{
	pgfx_note_skips("test_pg_store");
	const struct CMUnitTest tests[] = {
		BOTH(case_keys),
		BOTH(case_charters),
		BOTH(case_audit),
		BOTH(case_tokens),
		BOTH(case_rejections),
		BOTH(case_settleq),
		BOTH(case_outbox),
		BOTH(case_outbox_prune),
		BOTH(case_schema_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
