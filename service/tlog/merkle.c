/* merkle.c — RFC 9162 Merkle tree: hashing, compact-range tree state,
 * proof generation over a node-fetch callback, proof verification, and an
 * in-memory node store. */
#include "tlog/merkle.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/cmsg.h"

/* ---- hashing --------------------------------------------------------------- */

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* Fetching the implementation once saves about half the cost of each hash
 * (EVP_sha256() is re-fetched on every EVP_Digest call).  Held for the life
 * of the process. */
static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md ? sha256_md : EVP_sha256();
}

/* SHA-256 over the concatenation of up to three pieces.  EVP_Digest only
 * fails when OpenSSL cannot allocate a context; we have no way to report
 * that from a void hashing API, and a wrong hash would be worse than
 * stopping, so the process aborts (as OpenSSL itself does on such paths). */
static void hash3(const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn,
		  uint8_t out[MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx;
	unsigned int len = 0;

	if (!bn && !cn) {
		if (EVP_Digest(a, an, out, &len, sha256(), NULL) != 1 || len != MERKLE_HASH_LEN)
			abort();
		return;
	}
	if (!(ctx = EVP_MD_CTX_new()) || EVP_DigestInit_ex2(ctx, sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, a, an) != 1 || EVP_DigestUpdate(ctx, b, bn) != 1 ||
	    EVP_DigestUpdate(ctx, c, cn) != 1 || EVP_DigestFinal_ex(ctx, out, &len) != 1 ||
	    len != MERKLE_HASH_LEN)
		abort();
	EVP_MD_CTX_free(ctx);
}

void merkle_leaf_hash(const void *data, size_t n, uint8_t out[MERKLE_HASH_LEN])
{
	/* Small entries are hashed in one EVP_Digest call (one buffer). */
	uint8_t buf[1 + 256];

	if (n <= sizeof buf - 1) {
		buf[0] = 0x00;
		if (n)
			memcpy(buf + 1, data, n);
		hash3(buf, n + 1, NULL, 0, NULL, 0, out);
		return;
	}
	hash3("\x00", 1, data, n, NULL, 0, out);
}

void merkle_node_hash(const uint8_t left[MERKLE_HASH_LEN], const uint8_t right[MERKLE_HASH_LEN],
		      uint8_t out[MERKLE_HASH_LEN])
{
	uint8_t buf[1 + 2 * MERKLE_HASH_LEN];

	buf[0] = 0x01;
	memcpy(buf + 1, left, MERKLE_HASH_LEN);
	memcpy(buf + 1 + MERKLE_HASH_LEN, right, MERKLE_HASH_LEN);
	hash3(buf, sizeof buf, NULL, 0, NULL, 0, out);
}

void merkle_empty_root(uint8_t out[MERKLE_HASH_LEN])
{
	hash3("", 0, NULL, 0, NULL, 0, out);
}

/* ---- bit helpers ------------------------------------------------------------- */

/* Largest power of two strictly below n; n >= 2. */
static uint64_t split_point(uint64_t n)
{
	return UINT64_C(1) << (63 - __builtin_clzll(n - 1));
}

/* ---- tree state ------------------------------------------------------------ */

void merkle_tree_init(struct merkle_tree *t)
{
	memset(t, 0, sizeof *t);
}

allot_err merkle_tree_load(struct merkle_tree *t, uint64_t size, merkle_get_fn get, void *ctx)
{
	struct merkle_tree tmp;
	allot_err e;

	if (size > MERKLE_SIZE_MAX)
		return ALLOT_E_TOO_LARGE;
	merkle_tree_init(&tmp);
	for (unsigned l = 0; l < 64; l++) {
		if (!(size >> l & 1))
			continue;
		if ((e = get(ctx, l, (size >> l) - 1, tmp.frontier[l])) != ALLOT_OK)
			return e;
	}
	tmp.size = size;
	*t = tmp;
	return ALLOT_OK;
}

allot_err merkle_tree_append(struct merkle_tree *t, const uint8_t leaf[MERKLE_HASH_LEN],
			     merkle_put_fn put, void *ctx)
{
	uint8_t h[MERKLE_HASH_LEN];
	uint64_t idx = t->size;
	unsigned level = 0;
	allot_err e;

	if (t->size >= MERKLE_SIZE_MAX)
		return ALLOT_E_TOO_LARGE;
	memcpy(h, leaf, MERKLE_HASH_LEN);
	if (put && (e = put(ctx, 0, idx, h)) != ALLOT_OK)
		return e;
	/* Each trailing 1 bit of size is a complete subtree that the new leaf's
	 * subtree now pairs with. */
	while (t->size >> level & 1) {
		merkle_node_hash(t->frontier[level], h, h);
		level++;
		idx >>= 1;
		if (put && (e = put(ctx, level, idx, h)) != ALLOT_OK)
			return e;
	}
	memcpy(t->frontier[level], h, MERKLE_HASH_LEN);
	t->size++;
	return ALLOT_OK;
}

void merkle_tree_root(const struct merkle_tree *t, uint8_t out[MERKLE_HASH_LEN])
{
	uint8_t acc[MERKLE_HASH_LEN];
	bool have = false;

	for (unsigned l = 0; l < 64; l++) {
		if (!(t->size >> l & 1))
			continue;
		if (have)
			merkle_node_hash(t->frontier[l], acc, acc);
		else
			memcpy(acc, t->frontier[l], MERKLE_HASH_LEN);
		have = true;
	}
	if (have)
		memcpy(out, acc, MERKLE_HASH_LEN);
	else
		merkle_empty_root(out);
}

/* ---- proofs ------------------------------------------------------------------ */

/* Hash of the RFC 9162 subtree over leaves [a, b), b > a, where a is a
 * multiple of the smallest power of two >= b - a (true of every subtree in
 * an RFC 9162 tree).  Decomposes the range into complete nodes, left to
 * right, largest first, and folds them right to left: popcount(b - a)
 * fetches. */
static allot_err range_hash(uint64_t a, uint64_t b, merkle_get_fn get, void *ctx,
			    uint8_t out[MERKLE_HASH_LEN])
{
	uint8_t parts[64][MERKLE_HASH_LEN];
	unsigned np = 0;
	allot_err e;

	while (a < b) {
		unsigned l = 63 - (unsigned)__builtin_clzll(b - a);
		if (a && (unsigned)__builtin_ctzll(a) < l)
			return ALLOT_E_INTERNAL; /* not an RFC 9162 subtree */
		if ((e = get(ctx, l, a >> l, parts[np])) != ALLOT_OK)
			return e;
		np++;
		a += UINT64_C(1) << l;
	}
	while (np > 1) {
		merkle_node_hash(parts[np - 2], parts[np - 1], parts[np - 2]);
		np--;
	}
	memcpy(out, parts[0], MERKLE_HASH_LEN);
	return ALLOT_OK;
}

static allot_err proof_push(struct merkle_proof *p, uint64_t a, uint64_t b, merkle_get_fn get,
			    void *ctx)
{
	if (p->n >= MERKLE_PROOF_MAX)
		return ALLOT_E_INTERNAL;
	allot_err e = range_hash(a, b, get, ctx, p->h[p->n]);
	if (e == ALLOT_OK)
		p->n++;
	return e;
}

/* PATH(m, D[a:b]) of RFC 9162 section 2.1.3.1, m absolute. */
static allot_err incl_path(uint64_t m, uint64_t a, uint64_t b, merkle_get_fn get, void *ctx,
			   struct merkle_proof *p)
{
	allot_err e;
	uint64_t k;

	if (b - a == 1)
		return ALLOT_OK;
	k = split_point(b - a);
	if (m < a + k) {
		if ((e = incl_path(m, a, a + k, get, ctx, p)) != ALLOT_OK)
			return e;
		return proof_push(p, a + k, b, get, ctx);
	}
	if ((e = incl_path(m, a + k, b, get, ctx, p)) != ALLOT_OK)
		return e;
	return proof_push(p, a, a + k, get, ctx);
}

/* SUBPROOF(m, D[a:b], whole) of RFC 9162 section 2.1.4.1, m relative to a. */
static allot_err subproof(uint64_t m, uint64_t a, uint64_t b, bool whole, merkle_get_fn get,
			  void *ctx, struct merkle_proof *p)
{
	allot_err e;
	uint64_t k;

	if (m == b - a)
		return whole ? ALLOT_OK : proof_push(p, a, b, get, ctx);
	k = split_point(b - a);
	if (m <= k) {
		if ((e = subproof(m, a, a + k, whole, get, ctx, p)) != ALLOT_OK)
			return e;
		return proof_push(p, a + k, b, get, ctx);
	}
	if ((e = subproof(m - k, a + k, b, false, get, ctx, p)) != ALLOT_OK)
		return e;
	return proof_push(p, a, a + k, get, ctx);
}

allot_err merkle_root_at(uint64_t size, merkle_get_fn get, void *ctx,
			 uint8_t out[MERKLE_HASH_LEN])
{
	if (size > MERKLE_SIZE_MAX)
		return ALLOT_E_INVALID;
	if (size == 0) {
		merkle_empty_root(out);
		return ALLOT_OK;
	}
	return range_hash(0, size, get, ctx, out);
}

allot_err merkle_prove_inclusion(uint64_t index, uint64_t size, merkle_get_fn get, void *ctx,
				 struct merkle_proof *p)
{
	struct merkle_proof tmp;
	allot_err e;

	if (index >= size || size > MERKLE_SIZE_MAX)
		return ALLOT_E_INVALID;
	tmp.n = 0;
	e = incl_path(index, 0, size, get, ctx, &tmp);
	if (e == ALLOT_OK)
		memcpy(p, &tmp, sizeof tmp);
	return e;
}

allot_err merkle_prove_consistency(uint64_t size1, uint64_t size2, merkle_get_fn get, void *ctx,
				   struct merkle_proof *p)
{
	struct merkle_proof tmp;
	allot_err e;

	if (size1 == 0 || size1 > size2 || size2 > MERKLE_SIZE_MAX)
		return ALLOT_E_INVALID;
	tmp.n = 0;
	e = subproof(size1, 0, size2, true, get, ctx, &tmp);
	if (e == ALLOT_OK)
		memcpy(p, &tmp, sizeof tmp);
	return e;
}

/* ---- verification ------------------------------------------------------------ */

static bool hash_eq(const uint8_t a[MERKLE_HASH_LEN], const uint8_t b[MERKLE_HASH_LEN])
{
	return CRYPTO_memcmp(a, b, MERKLE_HASH_LEN) == 0;
}

allot_err merkle_verify_inclusion(uint64_t index, uint64_t size,
				  const uint8_t leaf[MERKLE_HASH_LEN],
				  const uint8_t (*proof)[MERKLE_HASH_LEN], size_t n,
				  const uint8_t root[MERKLE_HASH_LEN], char *msg, size_t msgcap)
{
	uint8_t r[MERKLE_HASH_LEN];
	uint64_t fn, sn;

	if (index >= size)
		return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap,
			    "leaf index %llu is not below the tree size %llu",
			    (unsigned long long)index, (unsigned long long)size);
	if (n > MERKLE_PROOF_MAX)
		return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap, "inclusion proof too long (%zu)", n);
	fn = index;
	sn = size - 1;
	memcpy(r, leaf, MERKLE_HASH_LEN);
	for (size_t i = 0; i < n; i++) {
		if (sn == 0)
			return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap,
				    "inclusion proof has %zu extra hashes", n - i);
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(proof[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			merkle_node_hash(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap, "inclusion proof is too short");
	if (!hash_eq(r, root))
		return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap,
			    "inclusion proof does not lead to the root hash");
	return ALLOT_OK;
}

allot_err merkle_verify_consistency(uint64_t size1, uint64_t size2,
				    const uint8_t root1[MERKLE_HASH_LEN],
				    const uint8_t root2[MERKLE_HASH_LEN],
				    const uint8_t (*proof)[MERKLE_HASH_LEN], size_t n, char *msg,
				    size_t msgcap)
{
	uint8_t fr[MERKLE_HASH_LEN], sr[MERKLE_HASH_LEN];
	uint64_t fn, sn;
	size_t i = 0;

	if (size1 == 0)
		return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap,
			    "consistency from an empty tree proves nothing");
	if (size1 > size2)
		return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap,
			    "first tree size %llu is larger than the second %llu",
			    (unsigned long long)size1, (unsigned long long)size2);
	if (size1 == size2) {
		if (n)
			return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap,
				    "equal tree sizes need an empty proof");
		if (!hash_eq(root1, root2))
			return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap,
				    "equal tree sizes with different root hashes");
		return ALLOT_OK;
	}
	if (n == 0)
		return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap, "consistency proof is empty");
	if (n > MERKLE_PROOF_MAX)
		return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap, "consistency proof too long (%zu)", n);
	fn = size1 - 1;
	sn = size2 - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	/* A first tree of exactly 2^k leaves is itself a node of the second:
	 * its root starts the chain; otherwise the proof's first hash does. */
	if ((size1 & (size1 - 1)) == 0) {
		memcpy(fr, root1, MERKLE_HASH_LEN);
	} else {
		memcpy(fr, proof[0], MERKLE_HASH_LEN);
		i = 1;
	}
	memcpy(sr, fr, MERKLE_HASH_LEN);
	for (; i < n; i++) {
		if (sn == 0)
			return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap,
				    "consistency proof has %zu extra hashes", n - i);
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(proof[i], fr, fr);
			merkle_node_hash(proof[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			merkle_node_hash(sr, proof[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap, "consistency proof is too short");
	if (!hash_eq(fr, root1))
		return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap,
			    "consistency proof does not lead to the first root hash");
	if (!hash_eq(sr, root2))
		return cmsg(ALLOT_E_UNPROCESSABLE, msg, msgcap,
			    "consistency proof does not lead to the second root hash");
	return ALLOT_OK;
}

/* ---- in-memory store ---------------------------------------------------------- */

allot_err merkle_memstore_put(void *ctx, unsigned level, uint64_t index,
			      const uint8_t hash[MERKLE_HASH_LEN])
{
	struct merkle_memstore *s = ctx;

	if (level >= 64)
		return ALLOT_E_INVALID;
	if (index < s->count[level])
		return memcmp(s->level[level][index], hash, MERKLE_HASH_LEN) == 0
			       ? ALLOT_OK : ALLOT_E_CONFLICT;
	if (index > s->count[level])
		return ALLOT_E_INVALID;
	if (s->count[level] == s->cap[level]) {
		uint64_t cap = s->cap[level] ? s->cap[level] * 2 : 64;
		void *p = realloc(s->level[level], (size_t)cap * MERKLE_HASH_LEN);
		if (!p)
			return ALLOT_E_NOMEM;
		s->level[level] = p;
		s->cap[level] = cap;
	}
	memcpy(s->level[level][index], hash, MERKLE_HASH_LEN);
	s->count[level]++;
	return ALLOT_OK;
}

allot_err merkle_memstore_get(void *ctx, unsigned level, uint64_t index,
			      uint8_t out[MERKLE_HASH_LEN])
{
	struct merkle_memstore *s = ctx;

	if (level >= 64 || index >= s->count[level])
		return ALLOT_E_NOT_FOUND;
	memcpy(out, s->level[level][index], MERKLE_HASH_LEN);
	return ALLOT_OK;
}

void merkle_memstore_release(struct merkle_memstore *s)
{
	for (unsigned l = 0; l < 64; l++)
		free(s->level[l]);
	memset(s, 0, sizeof *s);
}

void merkle_subtree_fold(uint8_t (*h)[MERKLE_HASH_LEN], uint64_t n, uint8_t out[MERKLE_HASH_LEN])
{
	for (; n > 1; n /= 2)
		for (uint64_t i = 0; i < n / 2; i++)
			merkle_node_hash(h[2 * i], h[2 * i + 1], h[i]);
	memcpy(out, h[0], MERKLE_HASH_LEN);
}
