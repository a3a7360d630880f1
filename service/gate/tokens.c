/* tokens.c — mint, verify (cached), revoke. */
#include "gate/tokens.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/json.h"
#include "common/timeutil.h"
#include "common/b64.h"
#include "crypto/tokcache.h"
#include "gate/revwin.h"

struct member_rev {
	char institution[STORE_ID_MAX];
	char member[STORE_MEMBER_MAX];
	int64_t before_us;
};

struct gate_tokens {
	struct keyset *ks;
	struct tokcache *cache;
	char deployment[TOKEN_DEPLOYMENT_MAX + 1];
	char issuer[TOKEN_ISS_MAX + 1];
	pthread_rwlock_t lock;        /* guards the revocation sets */
	json_t *jtis;                 /* object used as a set of revoked jtis */
	json_t *member_keys;          /* set of the members' (institution, member, before) */
	struct member_rev *members;
	size_t nmembers;
	pthread_mutex_t refresh_mu;   /* guards win and rows_read (one refresh at a time) */
	struct revwin win;            /* the revocations still to read (gate/revwin.h) */
	uint64_t rows_read;           /* revocation rows read from the store since open */
};

/* Adds r to the sets unless it is there already (a revocation made on this
 * node comes back from the store at the next tokens_refresh). */
static void add_revocation(void *ctx, const struct token_revocation *r)
{
	struct gate_tokens *t = ctx;
	if (r->jti[0]) {
		json_object_set_new(t->jtis, r->jti, json_true());
		return;
	}
	char key[STORE_ID_MAX + STORE_MEMBER_MAX + 32];
	snprintf(key, sizeof key, "%s\n%s\n%lld", r->institution, r->member,
		 (long long)r->before_us);
	if (json_object_get(t->member_keys, key))
		return;
	if (json_object_set_new(t->member_keys, key, json_true()) != 0)
		return;
	struct member_rev *m = realloc(t->members, (t->nmembers + 1) * sizeof *m);
	if (!m)
		return;
	t->members = m;
	struct member_rev *x = &m[t->nmembers++];
	snprintf(x->institution, sizeof x->institution, "%s", r->institution);
	snprintf(x->member, sizeof x->member, "%s", r->member);
	x->before_us = r->before_us;
}

allot_err tokens_open(struct store *st, const char *keys_dir, const char *deployment,
		      struct gate_tokens **out, char *msg, size_t msgsz)
{
	struct gate_tokens *t = calloc(1, sizeof *t);
	if (!t)
		return ALLOT_E_NOMEM;
	pthread_rwlock_init(&t->lock, NULL);
	pthread_mutex_init(&t->refresh_mu, NULL);
	revwin_init(&t->win);
	snprintf(t->deployment, sizeof t->deployment, "%s", deployment);
	snprintf(t->issuer, sizeof t->issuer, "allotd:%s", deployment);
	t->jtis = json_object();
	t->member_keys = json_object();
	allot_err e = (t->jtis && t->member_keys) ? ALLOT_OK : ALLOT_E_NOMEM;
	if (!e)
		e = token_deployment_check(deployment, msg, msgsz);
	if (!e)
		e = keyset_open(keys_dir, &t->ks, msg, msgsz);
	if (!e && !(t->cache = tokcache_new(TOKENS_CACHE_CAPACITY)))
		e = ALLOT_E_NOMEM;
	if (!e && (e = tokens_refresh(t, st)))
		snprintf(msg, msgsz, "cannot load token revocations");
	if (e) {
		tokens_free(t);
		return e;
	}
	*out = t;
	return ALLOT_OK;
}

void tokens_free(struct gate_tokens *t)
{
	if (!t)
		return;
	keyset_free(t->ks);
	tokcache_free(t->cache);
	json_decref(t->jtis);
	json_decref(t->member_keys);
	revwin_free(&t->win);
	pthread_mutex_destroy(&t->refresh_mu);
	free(t->members);
	pthread_rwlock_destroy(&t->lock);
	free(t);
}

struct keyset *tokens_keyset(struct gate_tokens *t) { return t->ks; }

allot_err tokens_mint(struct gate_tokens *t, struct store *st, struct token_claims *c,
		      const char *actor, char **token, char *msg, size_t msgsz)
{
	uint8_t rnd[12];
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return ALLOT_E_INTERNAL;
	/* "t" and the 12 random bytes in base64url (17 characters): the jti
	 * is in every gate record's id, twice on disk with its index
	 * (docs/GATE.md, "Record ids"); hex took 8 characters more. */
	char b64[17];
	b64url_encode(rnd, sizeof rnd, b64);
	snprintf(c->jti, sizeof c->jti, "t%s", b64);
	snprintf(c->iss, sizeof c->iss, "%s", t->issuer);
	struct ed25519_keypair kp;
	char kid[PASETO_KID_MAX + 1];
	keyset_current(t->ks, &kp, kid);
	size_t len;
	allot_err e = token_mint(&kp, kid, t->deployment, c, token, &len, msg, msgsz);
	ed25519_keypair_wipe(&kp);
	if (e)
		return e;
	struct token_row row = {0};
	snprintf(row.jti, sizeof row.jti, "%s", c->jti);
	snprintf(row.institution, sizeof row.institution, "%s", c->inst);
	snprintf(row.project, sizeof row.project, "%s", c->proj);
	snprintf(row.member, sizeof row.member, "%s", c->sub);
	snprintf(row.kid, sizeof row.kid, "%.64s", kid);
	row.iat = c->iat;
	row.exp = c->exp;
	snprintf(row.minted_by, sizeof row.minted_by, "%s", actor);
	json_t *d = json_pack("{s:s,s:s,s:s,s:s}", "institution", c->inst, "project", c->proj,
			      "member", c->sub, "kid", kid);
	char *dt = json_dump_sorted(d);
	json_decref(d);
	struct audit_entry a = {.at = time_now_us(), .actor = actor, .action = "token.mint",
				.target = c->jti, .detail = dt};
	e = store_token_issued(st, &row, &a);
	free(dt);
	if (e) {
		free(*token);
		*token = NULL;
		snprintf(msg, msgsz, "could not record the token");
	}
	return e;
}

static bool revoked(struct gate_tokens *t, const struct token_claims *c)
{
	bool r = false;
	pthread_rwlock_rdlock(&t->lock);
	if (json_object_get(t->jtis, c->jti))
		r = true;
	for (size_t i = 0; i < t->nmembers && !r; i++)
		r = strcmp(t->members[i].institution, c->inst) == 0 &&
		    strcmp(t->members[i].member, c->sub) == 0 && c->iat < t->members[i].before_us;
	pthread_rwlock_unlock(&t->lock);
	return r;
}

allot_err tokens_verify(struct gate_tokens *t, const char *token, size_t n,
			struct token_claims *c, char *msg, size_t msgsz)
{
	struct token_verify_opts o = {.deployment = t->deployment, .issuer = t->issuer,
				      .lookup = keyset_lookup, .lookup_ctx = t->ks,
				      .now_us = time_now_us()};
	allot_err e = tokcache_verify(t->cache, token, n, &o, c, NULL, msg, msgsz);
	if (e)
		return ALLOT_E_UNAUTHORIZED;
	if (revoked(t, c)) {
		snprintf(msg, msgsz, "token revoked");
		return ALLOT_E_UNAUTHORIZED;
	}
	return ALLOT_OK;
}

allot_err tokens_revoke(struct gate_tokens *t, struct store *st,
			const struct token_revocation *r, const char *actor)
{
	json_t *d = r->jti[0] ? json_pack("{s:s}", "jti", r->jti)
			      : json_pack("{s:s,s:s,s:I}", "institution", r->institution, "member",
					  r->member, "before_us", (json_int_t)r->before_us);
	char *dt = json_dump_sorted(d);
	json_decref(d);
	struct audit_entry a = {.at = r->revoked_at, .actor = actor, .action = "token.revoke",
				.target = r->jti[0] ? r->jti : r->member, .detail = dt};
	allot_err e = store_token_revoke(st, r, &a);
	free(dt);
	if (e)
		return e;
	pthread_rwlock_wrlock(&t->lock);
	add_revocation(t, r);
	pthread_rwlock_unlock(&t->lock);
	return ALLOT_OK;
}

/* The rows read by tokens_refresh, before they are merged. */
struct revocation_list {
	struct token_revocation *v;
	size_t n, cap;
	bool oom;
};

static void list_revocation(void *ctx, const struct token_revocation *r)
{
	struct revocation_list *l = ctx;
	if (l->oom)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct token_revocation *v = realloc(l->v, cap * sizeof *v);
		if (!v) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *r;
}

allot_err tokens_refresh_at(struct gate_tokens *t, struct store *st, int64_t now_us,
			    int64_t overlap_us)
{
	struct revocation_list l = {0};
	pthread_mutex_lock(&t->refresh_mu);
	/* The store is read with no lock of the sets held: verifications go
	 * on meanwhile.  Only the rows past the window's watermark. */
	allot_err e = store_token_revocations(st, revwin_after(&t->win), list_revocation, &l);
	if (!e && l.oom)
		e = ALLOT_E_NOMEM;
	if (!e) {
		pthread_rwlock_wrlock(&t->lock);
		for (size_t i = 0; i < l.n; i++)
			add_revocation(t, &l.v[i]);
		pthread_rwlock_unlock(&t->lock);
		for (size_t i = 0; i < l.n; i++)
			revwin_seen(&t->win, l.v[i].id, now_us);
		revwin_close(&t->win, now_us, overlap_us);
		t->rows_read += l.n;
	}
	pthread_mutex_unlock(&t->refresh_mu);
	free(l.v);
	return e;
}

allot_err tokens_refresh(struct gate_tokens *t, struct store *st)
{
	return tokens_refresh_at(t, st, time_mono_us(), REVWIN_OVERLAP_US);
}

void tokens_refresh_stats(struct gate_tokens *t, uint64_t *rows_read, int64_t *after_id)
{
	pthread_mutex_lock(&t->refresh_mu);
	*rows_read = t->rows_read;
	*after_id = revwin_after(&t->win);
	pthread_mutex_unlock(&t->refresh_mu);
}
