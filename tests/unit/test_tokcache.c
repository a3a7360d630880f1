/* test_tokcache.c — the verified-token cache: hits, expiry, nbf, eviction
 * (expired first, then least recently used), removal, verification through
 * the cache, and concurrent use. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto/tokcache.h"

#define T0 (1796256000LL * US_PER_SEC)
#define HOUR (3600LL * US_PER_SEC)
#define SEC US_PER_SEC

static struct token_claims claims(const char *jti, int64_t exp)
{
	struct token_claims c;
	memset(&c, 0, sizeof c);
	strcpy(c.iss, "i");
	strcpy(c.sub, "alice");
	strcpy(c.inst, "epfl");
	strcpy(c.proj, "climate");
	snprintf(c.jti, sizeof c.jti, "%s", jti);
	c.iat = c.nbf = T0;
	c.exp = exp;
	return c;
}

static void test_basic(void **state)
{
	(void)state;
	struct tokcache *c = tokcache_new(10);
	struct token_claims in = claims("a", T0 + HOUR), out;
	struct tokcache_stats st;

	assert_non_null(c);
	tokcache_get_stats(c, &st);
	assert_int_equal(st.capacity, 16); /* 2 sets of 8 */
	assert_false(tokcache_get(c, "tokA", 4, T0, &out));
	tokcache_put(c, "tokA", 4, &in, T0);
	assert_true(tokcache_get(c, "tokA", 4, T0, &out));
	assert_memory_equal(&out, &in, sizeof in);
	/* Another token string, even a prefix, misses. */
	assert_false(tokcache_get(c, "tokA", 3, T0, &out));
	assert_false(tokcache_get(c, "tokB", 4, T0, &out));
	/* Valid until exp + 60 s, then gone for good. */
	assert_true(tokcache_get(c, "tokA", 4, T0 + HOUR + 60 * SEC, &out));
	assert_false(tokcache_get(c, "tokA", 4, T0 + HOUR + 61 * SEC, &out));
	assert_false(tokcache_get(c, "tokA", 4, T0, &out)); /* dropped */
	tokcache_get_stats(c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.inserts, 1);

	/* Not yet valid: kept, not served until nbf - 60 s. */
	in = claims("b", T0 + 3 * HOUR);
	in.nbf = T0 + HOUR;
	tokcache_put(c, "tokB", 4, &in, T0);
	assert_false(tokcache_get(c, "tokB", 4, T0, &out));
	assert_true(tokcache_get(c, "tokB", 4, T0 + HOUR - 60 * SEC, &out));

	/* Remove and clear. */
	assert_true(tokcache_remove(c, "tokB", 4));
	assert_false(tokcache_remove(c, "tokB", 4));
	assert_false(tokcache_get(c, "tokB", 4, T0 + HOUR, &out));
	tokcache_put(c, "tokC", 4, &in, T0);
	tokcache_clear(c);
	assert_false(tokcache_get(c, "tokC", 4, T0 + HOUR, &out));
	tokcache_free(c);
	tokcache_free(NULL);
	assert_null(tokcache_new(0));
	assert_null(tokcache_new((size_t)TOKCACHE_CAPACITY_MAX + 1));
}

static void test_eviction(void **state)
{
	(void)state;
	struct tokcache *c = tokcache_new(TOKCACHE_WAYS); /* a single set */
	struct token_claims out, in;
	struct tokcache_stats st;
	char tok[16];

	assert_non_null(c);
	for (int i = 0; i < TOKCACHE_WAYS; i++) {
		snprintf(tok, sizeof tok, "t%d", i);
		in = claims(tok, T0 + HOUR);
		tokcache_put(c, tok, strlen(tok), &in, T0);
	}
	/* Touch all but t3: t3 is now the least recently used. */
	for (int i = 0; i < TOKCACHE_WAYS; i++) {
		snprintf(tok, sizeof tok, "t%d", i);
		if (i != 3)
			assert_true(tokcache_get(c, tok, strlen(tok), T0, &out));
	}
	in = claims("new", T0 + HOUR);
	tokcache_put(c, "new", 3, &in, T0);
	assert_false(tokcache_get(c, "t3", 2, T0, &out));
	assert_true(tokcache_get(c, "new", 3, T0, &out));
	assert_string_equal(out.jti, "new");
	for (int i = 0; i < TOKCACHE_WAYS; i++) {
		snprintf(tok, sizeof tok, "t%d", i);
		if (i != 3)
			assert_true(tokcache_get(c, tok, strlen(tok), T0, &out));
	}
	tokcache_get_stats(c, &st);
	assert_int_equal(st.evictions, 1);

	/* An expired entry goes before the least recently used live one. */
	in = claims("short", T0 + 10 * SEC);
	tokcache_remove(c, "t5", 2);
	tokcache_put(c, "short", 5, &in, T0);
	assert_true(tokcache_get(c, "short", 5, T0, &out));
	in = claims("later", T0 + 2 * HOUR);
	tokcache_put(c, "later", 5, &in, T0 + HOUR); /* "short" expired by then */
	assert_false(tokcache_get(c, "short", 5, T0, &out));
	assert_true(tokcache_get(c, "t0", 2, T0, &out)); /* the LRU survived */
	tokcache_get_stats(c, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.expired, 1);
	/* Same token again refreshes in place. */
	in = claims("later2", T0 + 2 * HOUR);
	tokcache_put(c, "later", 5, &in, T0);
	assert_true(tokcache_get(c, "later", 5, T0, &out));
	assert_string_equal(out.jti, "later2");
	tokcache_free(c);
}

struct keyset {
	struct ed25519_keypair k;
	int lookups;
};

static allot_err lookup(void *ctx, const char *kid, uint8_t pub[32])
{
	struct keyset *ks = ctx;
	ks->lookups++;
	if (strcmp(kid, "k1") != 0)
		return ALLOT_E_UNAUTHORIZED;
	memcpy(pub, ks->k.pub, 32);
	return ALLOT_OK;
}

static void test_verify_through_cache(void **state)
{
	(void)state;
	struct tokcache *c = tokcache_new(64);
	struct keyset ks = {0};
	struct token_claims in = claims("j1", T0 + HOUR), out;
	struct token_verify_opts o = {"prod", NULL, lookup, &ks, T0};
	char *tok = NULL, kid[PASETO_KID_MAX + 1], msg[200];
	size_t len;

	assert_int_equal(ed25519_keygen(&ks.k), ALLOT_OK);
	assert_int_equal(token_mint(&ks.k, "k1", "prod", &in, &tok, &len, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(tokcache_verify(c, tok, len, &o, &out, kid, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(ks.lookups, 1);
	assert_string_equal(kid, "k1");
	assert_memory_equal(&out, &in, sizeof in);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(tokcache_verify(c, tok, len, &o, &out, kid, NULL, 0), ALLOT_OK);
		assert_memory_equal(&out, &in, sizeof in);
	}
	assert_int_equal(ks.lookups, 1); /* no signature check on a hit */
	/* A cached token past exp + skew is refused, through the full path. */
	o.now_us = T0 + HOUR + 61 * SEC;
	assert_int_equal(tokcache_verify(c, tok, len, &o, &out, NULL, msg, sizeof msg),
			 ALLOT_E_UNAUTHORIZED);
	assert_non_null(strstr(msg, "expired"));
	/* A tampered token is never cached, and fails every time. */
	o.now_us = T0;
	tok[len - 5] = tok[len - 5] == 'A' ? 'B' : 'A';
	for (int i = 0; i < 2; i++)
		assert_int_equal(tokcache_verify(c, tok, len, &o, &out, NULL, NULL, 0),
				 ALLOT_E_UNAUTHORIZED);
	free(tok);
	ed25519_keypair_wipe(&ks.k);
	tokcache_free(c);
}

/* ---- concurrency ---- */

#define NTOK 64
#define NTHREADS 4
#define OPS 20000

struct shared {
	struct tokcache *c;
	unsigned seed;
	int bad;
};

static void *worker(void *arg)
{
	struct shared *s = arg;
	unsigned r = s->seed;
	char tok[16];
	struct token_claims in, out;

	for (int i = 0; i < OPS; i++) {
		r = r * 1103515245u + 12345u;
		int k = (int)(r >> 16) % NTOK;
		snprintf(tok, sizeof tok, "tok%d", k);
		if ((r >> 8) & 1) {
			in = claims(tok, T0 + HOUR);
			tokcache_put(s->c, tok, strlen(tok), &in, T0);
		} else if (tokcache_get(s->c, tok, strlen(tok), T0, &out)) {
			if (strcmp(out.jti, tok) != 0)
				s->bad++;
		}
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	struct tokcache *c = tokcache_new(32); /* smaller than the token set */
	struct shared sh[NTHREADS];
	pthread_t th[NTHREADS];
	struct tokcache_stats st;

	assert_non_null(c);
	for (int i = 0; i < NTHREADS; i++) {
		sh[i] = (struct shared){c, (unsigned)i * 7919u + 1, 0};
		assert_int_equal(pthread_create(&th[i], NULL, worker, &sh[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(sh[i].bad, 0);
	}
	tokcache_get_stats(c, &st);
	assert_int_equal(st.hits + st.misses + st.inserts, (uint64_t)NTHREADS * OPS);
	assert_true(st.evictions > 0);
	printf("tokcache: %d threads x %d ops: %llu hits, %llu misses, %llu evictions\n", NTHREADS,
	       OPS, (unsigned long long)st.hits, (unsigned long long)st.misses,
	       (unsigned long long)st.evictions);
	tokcache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_verify_through_cache),
		cmocka_unit_test(test_concurrent),
	};
	return cmocka_run_group_tests_name("tokcache", tests, NULL, NULL);
}
