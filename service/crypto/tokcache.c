/* tokcache.c — set-associative cache of verified tokens (SHA-256 keyed). */
#include "crypto/tokcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/cmsg.h"

/* Mutex stripes: enough that two gate threads rarely contend, few enough to
 * stay small. */
#define STRIPES 64

struct entry {
	uint8_t key[32];         /* SHA-256 of the token */
	bool used;
	uint64_t last;           /* stripe-local tick of the last use */
	struct token_claims cl;
};

struct tokcache {
	size_t nsets;            /* power of two */
	struct entry *e;         /* nsets * TOKCACHE_WAYS, from calloc() */
	pthread_mutex_t lock[STRIPES];
	uint64_t tick[STRIPES];
	struct tokcache_stats st[STRIPES]; /* per stripe, summed on demand */
};

struct tokcache *tokcache_new(size_t capacity)
{
	struct tokcache *c;
	size_t sets = 1;

	if (capacity == 0 || capacity > TOKCACHE_CAPACITY_MAX)
		return NULL;
	while (sets * TOKCACHE_WAYS < capacity)
		sets *= 2;
	if (!(c = calloc(1, sizeof *c)))
		return NULL;
	if (!(c->e = calloc(sets * TOKCACHE_WAYS, sizeof *c->e))) {
		free(c);
		return NULL;
	}
	c->nsets = sets;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&c->lock[i], NULL);
	return c;
}

void tokcache_free(struct tokcache *c)
{
	if (!c)
		return;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&c->lock[i]);
	free(c->e);
	free(c);
}

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* Fetched once for the process: EVP_sha256() would re-fetch the
 * implementation on every call, about as costly as the rest of a hit. */
static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Key of a token; false when hashing failed (then the cache is bypassed). */
static bool key_of(const char *token, size_t n, uint8_t key[32])
{
	unsigned int len = 0;

	pthread_once(&sha256_once, sha256_fetch);
	return EVP_Digest(token, n, key, &len, sha256_md ? sha256_md : EVP_sha256(), NULL) == 1 &&
	       len == 32;
}

static size_t set_of(const struct tokcache *c, const uint8_t key[32])
{
	uint64_t v;
	memcpy(&v, key, sizeof v);
	return (size_t)(v & (c->nsets - 1));
}

static unsigned stripe_of(size_t set) { return (unsigned)(set % STRIPES); }

bool tokcache_get(struct tokcache *c, const char *token, size_t n, int64_t now_us,
		  struct token_claims *out)
{
	uint8_t key[32];
	size_t set;
	unsigned s;
	bool hit = false;

	if (!key_of(token, n, key))
		return false;
	set = set_of(c, key);
	s = stripe_of(set);
	pthread_mutex_lock(&c->lock[s]);
	for (size_t w = 0; w < TOKCACHE_WAYS; w++) {
		struct entry *e = &c->e[set * TOKCACHE_WAYS + w];
		if (!e->used || memcmp(e->key, key, 32) != 0)
			continue;
		if (e->cl.exp + TOKEN_SKEW_US < now_us) {
			e->used = false; /* expired for good */
			c->st[s].expired++;
			break;
		}
		if (token_claims_check_time(&e->cl, now_us, NULL, 0) != ALLOT_OK)
			break; /* not yet valid: keep, do not serve */
		e->last = ++c->tick[s];
		*out = e->cl;
		hit = true;
		break;
	}
	if (hit)
		c->st[s].hits++;
	else
		c->st[s].misses++;
	pthread_mutex_unlock(&c->lock[s]);
	return hit;
}

void tokcache_put(struct tokcache *c, const char *token, size_t n, const struct token_claims *cl,
		  int64_t now_us)
{
	struct entry *same = NULL, *free_e = NULL, *expired = NULL, *lru = NULL, *victim;
	uint8_t key[32];
	size_t set;
	unsigned s;

	if (!key_of(token, n, key))
		return;
	set = set_of(c, key);
	s = stripe_of(set);
	pthread_mutex_lock(&c->lock[s]);
	for (size_t w = 0; w < TOKCACHE_WAYS; w++) {
		struct entry *e = &c->e[set * TOKCACHE_WAYS + w];
		if (!e->used) {
			if (!free_e)
				free_e = e;
		} else if (memcmp(e->key, key, 32) == 0) {
			same = e;
		} else if (e->cl.exp + TOKEN_SKEW_US < now_us) {
			if (!expired)
				expired = e;
		} else if (!lru || e->last < lru->last) {
			lru = e;
		}
	}
	victim = same ? same : free_e ? free_e : expired ? expired : lru;
	if (victim == expired && expired)
		c->st[s].expired++;
	else if (victim == lru)
		c->st[s].evictions++;
	memcpy(victim->key, key, 32);
	victim->used = true;
	victim->last = ++c->tick[s];
	victim->cl = *cl;
	c->st[s].inserts++;
	pthread_mutex_unlock(&c->lock[s]);
}

bool tokcache_remove(struct tokcache *c, const char *token, size_t n)
{
	uint8_t key[32];
	size_t set;
	unsigned s;
	bool found = false;

	if (!key_of(token, n, key))
		return false;
	set = set_of(c, key);
	s = stripe_of(set);
	pthread_mutex_lock(&c->lock[s]);
	for (size_t w = 0; w < TOKCACHE_WAYS; w++) {
		struct entry *e = &c->e[set * TOKCACHE_WAYS + w];
		if (e->used && memcmp(e->key, key, 32) == 0) {
			e->used = false;
			found = true;
		}
	}
	pthread_mutex_unlock(&c->lock[s]);
	return found;
}

void tokcache_clear(struct tokcache *c)
{
	for (size_t set = 0; set < c->nsets; set++) {
		unsigned s = stripe_of(set);
		pthread_mutex_lock(&c->lock[s]);
		for (size_t w = 0; w < TOKCACHE_WAYS; w++)
			c->e[set * TOKCACHE_WAYS + w].used = false;
		pthread_mutex_unlock(&c->lock[s]);
	}
}

void tokcache_get_stats(struct tokcache *c, struct tokcache_stats *out)
{
	struct tokcache_stats t = {0};

	for (unsigned s = 0; s < STRIPES; s++) {
		pthread_mutex_lock(&c->lock[s]);
		t.hits += c->st[s].hits;
		t.misses += c->st[s].misses;
		t.inserts += c->st[s].inserts;
		t.evictions += c->st[s].evictions;
		t.expired += c->st[s].expired;
		pthread_mutex_unlock(&c->lock[s]);
	}
	t.capacity = c->nsets * TOKCACHE_WAYS;
	*out = t;
}

allot_err tokcache_verify(struct tokcache *c, const char *token, size_t n,
			  const struct token_verify_opts *o, struct token_claims *out,
			  char kid[PASETO_KID_MAX + 1], char *msg, size_t msgcap)
{
	struct token_claims cl;
	allot_err e;

	if (n > PASETO_TOKEN_MAX)
		return cmsg(ALLOT_E_UNAUTHORIZED, msg, msgcap, "token longer than %d bytes",
			    PASETO_TOKEN_MAX);
	if (tokcache_get(c, token, n, o->now_us, out)) {
		if (kid)
			kid[0] = '\0';
		return ALLOT_OK;
	}
	if ((e = token_verify(token, n, o, &cl, kid, msg, msgcap)) != ALLOT_OK)
		return e;
	tokcache_put(c, token, n, &cl, o->now_us);
	*out = cl;
	return ALLOT_OK;
}
