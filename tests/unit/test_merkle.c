/* test_merkle.c — RFC 9162 Merkle tree: known answers, the
 * transparency-dev vectors in ../shared/vectors/merkle, and a sampled
 * property test over random tree sizes up to 2,000. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <jansson.h>

#include "common/b64.h"
#include "tlog/merkle.h"

static const char *shared_dir(void)
{
	const char *d = getenv("ALLOT_SHARED");
	return d && *d ? d : "../shared";
}

static void unhex32(const char *s, uint8_t out[32])
{
	size_t n;
	assert_int_equal(hex_decode(s, strlen(s), out, 32, &n), ALLOT_OK);
	assert_int_equal(n, 32);
}

/* ---- known answers (the RFC 6962 / 9162 reference tree of 8 leaves) ---- */

static const char *kat_leaves[] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};
static const char *kat_roots[] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};
static const struct { uint64_t a, b; const char *proof[4]; } kat_incl[] = {
	{0, 1, {NULL}},
	{0, 8, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{5, 8, {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
		"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
	{1, 5, {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};
static const struct { uint64_t a, b; const char *proof[4]; } kat_cons[] = {
	{1, 1, {NULL}},
	{1, 8, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{6, 8, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
		"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2, 5, {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
	{6, 7, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
		"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

static void test_known_answers(void **state)
{
	(void)state;
	struct merkle_memstore st = MERKLE_MEMSTORE_INIT;
	struct merkle_tree t;
	struct merkle_proof p;
	uint8_t h[32], want[32], leaf[32];
	size_t n;

	merkle_empty_root(h);
	unhex32("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want);
	assert_memory_equal(h, want, 32);
	merkle_tree_init(&t);
	merkle_tree_root(&t, h);
	assert_memory_equal(h, want, 32);

	for (size_t i = 0; i < 8; i++) {
		uint8_t data[16];
		assert_int_equal(hex_decode(kat_leaves[i], strlen(kat_leaves[i]), data, sizeof data, &n),
				 ALLOT_OK);
		merkle_leaf_hash(data, n, leaf);
		assert_int_equal(merkle_tree_append(&t, leaf, merkle_memstore_put, &st), ALLOT_OK);
		merkle_tree_root(&t, h);
		unhex32(kat_roots[i], want);
		assert_memory_equal(h, want, 32);
	}
	for (uint64_t s = 1; s <= 8; s++) {
		assert_int_equal(merkle_root_at(s, merkle_memstore_get, &st, h), ALLOT_OK);
		unhex32(kat_roots[s - 1], want);
		assert_memory_equal(h, want, 32);
	}
	for (size_t i = 0; i < sizeof kat_incl / sizeof kat_incl[0]; i++) {
		assert_int_equal(merkle_prove_inclusion(kat_incl[i].a, kat_incl[i].b, merkle_memstore_get,
							&st, &p), ALLOT_OK);
		for (n = 0; kat_incl[i].proof[n]; n++) {
			unhex32(kat_incl[i].proof[n], want);
			assert_memory_equal(p.h[n], want, 32);
		}
		assert_int_equal(p.n, n);
		assert_int_equal(merkle_memstore_get(&st, 0, kat_incl[i].a, leaf), ALLOT_OK);
		unhex32(kat_roots[kat_incl[i].b - 1], want);
		assert_int_equal(merkle_verify_inclusion(kat_incl[i].a, kat_incl[i].b, leaf,
							 (const uint8_t(*)[32])p.h, p.n, want, NULL, 0),
				 ALLOT_OK);
	}
	for (size_t i = 0; i < sizeof kat_cons / sizeof kat_cons[0]; i++) {
		uint8_t r1[32];
		assert_int_equal(merkle_prove_consistency(kat_cons[i].a, kat_cons[i].b,
							  merkle_memstore_get, &st, &p), ALLOT_OK);
		for (n = 0; kat_cons[i].proof[n]; n++) {
			unhex32(kat_cons[i].proof[n], want);
			assert_memory_equal(p.h[n], want, 32);
		}
		assert_int_equal(p.n, n);
		unhex32(kat_roots[kat_cons[i].a - 1], r1);
		unhex32(kat_roots[kat_cons[i].b - 1], want);
		assert_int_equal(merkle_verify_consistency(kat_cons[i].a, kat_cons[i].b, r1, want,
							   (const uint8_t(*)[32])p.h, p.n, NULL, 0),
				 ALLOT_OK);
	}
	/* Misuse of the generators. */
	assert_int_equal(merkle_prove_inclusion(8, 8, merkle_memstore_get, &st, &p), ALLOT_E_INVALID);
	assert_int_equal(merkle_prove_inclusion(0, 0, merkle_memstore_get, &st, &p), ALLOT_E_INVALID);
	assert_int_equal(merkle_prove_consistency(0, 5, merkle_memstore_get, &st, &p),
			 ALLOT_E_INVALID);
	assert_int_equal(merkle_prove_consistency(6, 5, merkle_memstore_get, &st, &p),
			 ALLOT_E_INVALID);
	/* A node the store does not hold: the store's error comes back. */
	assert_int_equal(merkle_prove_inclusion(3, 9, merkle_memstore_get, &st, &p),
			 ALLOT_E_NOT_FOUND);
	merkle_memstore_release(&st);
	printf("merkle: RFC 9162 reference tree: 8 roots, %zu inclusion and %zu consistency proofs "
	       "OK\n", sizeof kat_incl / sizeof kat_incl[0], sizeof kat_cons / sizeof kat_cons[0]);
}

/* ---- transparency-dev vectors ---- */

/* Decodes a base64 hash; false when it is not 32 bytes of valid base64. */
static bool dec_hash(const json_t *j, uint8_t out[32])
{
	const char *s = json_string_value(j);
	uint8_t tmp[64];
	size_t n;

	if (!s || b64_decode(s, strlen(s), tmp, sizeof tmp, &n) != ALLOT_OK || n != 32)
		return false;
	memcpy(out, tmp, 32);
	return true;
}

/* Decodes a proof array (null = empty); false when any element is not a
 * 32-byte hash. */
static bool dec_proof(const json_t *j, uint8_t (*out)[32], size_t cap, size_t *n)
{
	size_t i;
	json_t *v;

	*n = 0;
	if (json_is_null(j) || !j)
		return true;
	if (!json_is_array(j) || json_array_size(j) > cap)
		return false;
	json_array_foreach(j, i, v) {
		if (!dec_hash(v, out[i]))
			return false;
	}
	*n = json_array_size(j);
	return true;
}

/* The vectors hold uint64 values such as 2^64 - 1 (index 0 minus one), beyond
 * jansson's json_int_t, so numbers are loaded as doubles (exact below 2^53,
 * which covers every real size in the files) and saturated. */
static uint64_t u64_of(const json_t *j)
{
	double d = json_number_value(j);
	if (d >= 18446744073709551615.0)
		return UINT64_MAX;
	assert_true(d >= 0);
	return (uint64_t)d;
}

struct vec_counts {
	size_t incl, cons, must_fail, deviations;
};

static void run_vector(const char *path, bool inclusion, struct vec_counts *c)
{
	json_error_t jerr;
	json_t *v = json_load_file(path, JSON_DECODE_INT_AS_REAL, &jerr);
	uint8_t proof[80][32], a[32], b[32];
	size_t n;
	bool want_err, ok, decodable;
	char msg[160] = "";

	if (!v)
		fail_msg("%s: %s", path, jerr.text);
	want_err = json_is_true(json_object_get(v, "wantErr"));
	if (inclusion) {
		uint64_t idx = u64_of(json_object_get(v, "leafIdx"));
		uint64_t size = u64_of(json_object_get(v, "treeSize"));
		decodable = dec_hash(json_object_get(v, "root"), a) &&
			    dec_hash(json_object_get(v, "leafHash"), b) &&
			    dec_proof(json_object_get(v, "proof"), proof, 80, &n);
		ok = decodable && merkle_verify_inclusion(idx, size, b,
							   (const uint8_t(*)[32])proof, n, a, msg,
							   sizeof msg) == ALLOT_OK;
		c->incl++;
	} else {
		uint64_t s1 = u64_of(json_object_get(v, "size1"));
		uint64_t s2 = u64_of(json_object_get(v, "size2"));
		decodable = dec_hash(json_object_get(v, "root1"), a) &&
			    dec_hash(json_object_get(v, "root2"), b) &&
			    dec_proof(json_object_get(v, "proof"), proof, 80, &n);
		ok = decodable && merkle_verify_consistency(s1, s2, a, b,
							     (const uint8_t(*)[32])proof, n, msg,
							     sizeof msg) == ALLOT_OK;
		c->cons++;
	}
	if (want_err) {
		c->must_fail++;
		if (ok)
			fail_msg("%s: accepted a proof that must fail", path);
	} else if (!ok) {
		/* Upstream compares roots as opaque byte strings when the sizes
		 * are equal, so it accepts two equal 12-byte "roots".  Our
		 * verifier takes 32-byte hashes only: such input cannot even be
		 * expressed, and is counted as a deliberate deviation. */
		if (!decodable && strstr(path, "sizes-are-equal-one-and-proof-is-empty")) {
			c->deviations++;
		} else {
			fail_msg("%s: rejected a valid proof: %s", path, msg);
		}
	}
	json_decref(v);
}

static void walk(const char *dir, bool inclusion, struct vec_counts *c)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[1024];
	struct stat st;

	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode))
			walk(path, inclusion, c);
		else if (strstr(e->d_name, ".json"))
			run_vector(path, inclusion, c);
	}
	closedir(d);
}

static void test_vectors(void **state)
{
	(void)state;
	char dir[512];
	struct vec_counts c = {0};
	struct stat st;

	snprintf(dir, sizeof dir, "%s/vectors/merkle", shared_dir());
	if (stat(dir, &st) != 0) {
		printf("merkle: SKIP vectors: %s not found\n", dir);
		skip();
	}
	snprintf(dir, sizeof dir, "%s/vectors/merkle/inclusion", shared_dir());
	walk(dir, true, &c);
	snprintf(dir, sizeof dir, "%s/vectors/merkle/consistency", shared_dir());
	walk(dir, false, &c);
	printf("merkle: vectors: %zu inclusion + %zu consistency files, %zu as expected "
	       "(%zu must-fail rejected), %zu deliberate deviation (12-byte \"roots\")\n",
	       c.incl, c.cons, c.incl + c.cons - c.deviations, c.must_fail, c.deviations);
	assert_int_equal(c.incl + c.cons, 196);
	assert_true(c.deviations <= 1);
}

/* ---- property test ---- */

#define PROP_MAX 2000

struct prop {
	struct merkle_memstore st;
	uint8_t roots[PROP_MAX + 1][32];
	uint8_t leaves[PROP_MAX][32];
	uint64_t rng;
};

static uint64_t rnd(struct prop *p)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return p->rng * 0x2545F4914F6CDD1DULL;
}

/* Naive recursive MTH over leaf hashes [a, b), straight from RFC 9162. */
static void naive_mth(const uint8_t (*l)[32], uint64_t a, uint64_t b, uint8_t out[32])
{
	uint8_t x[32], y[32];
	uint64_t k = 1;

	if (b - a == 1) {
		memcpy(out, l[a], 32);
		return;
	}
	while (k * 2 < b - a)
		k *= 2;
	naive_mth(l, a, a + k, x);
	naive_mth(l, a + k, b, y);
	merkle_node_hash(x, y, out);
}

static int prop_setup(void **state)
{
	struct prop *p = calloc(1, sizeof *p);
	struct merkle_tree t;

	if (!p)
		return -1;
	p->rng = 0x9E3779B97F4A7C15ULL;
	merkle_tree_init(&t);
	merkle_tree_root(&t, p->roots[0]);
	for (uint64_t i = 0; i < PROP_MAX; i++) {
		uint64_t le = i;
		merkle_leaf_hash(&le, sizeof le, p->leaves[i]);
		if (merkle_tree_append(&t, p->leaves[i], merkle_memstore_put, &p->st) != ALLOT_OK)
			return -1;
		merkle_tree_root(&t, p->roots[i + 1]);
	}
	*state = p;
	return 0;
}

static int prop_teardown(void **state)
{
	struct prop *p = *state;
	merkle_memstore_release(&p->st);
	free(p);
	return 0;
}

static void test_roots_and_load(void **state)
{
	struct prop *p = *state;
	uint8_t h[32];

	for (uint64_t s = 1; s <= PROP_MAX; s += (s < 70 ? 1 : 37)) {
		naive_mth((const uint8_t(*)[32])p->leaves, 0, s, h);
		assert_memory_equal(h, p->roots[s], 32);
		assert_int_equal(merkle_root_at(s, merkle_memstore_get, &p->st, h), ALLOT_OK);
		assert_memory_equal(h, p->roots[s], 32);
		/* Reloading the state from the store and appending further gives
		 * the same roots as the tree that was never reloaded. */
		struct merkle_tree t;
		assert_int_equal(merkle_tree_load(&t, s, merkle_memstore_get, &p->st), ALLOT_OK);
		merkle_tree_root(&t, h);
		assert_memory_equal(h, p->roots[s], 32);
		for (uint64_t k = s; k < s + 3 && k < PROP_MAX; k++) {
			assert_int_equal(merkle_tree_append(&t, p->leaves[k], merkle_memstore_put, &p->st),
					 ALLOT_OK);
			merkle_tree_root(&t, h);
			assert_memory_equal(h, p->roots[k + 1], 32);
		}
	}
}

static int expect_incl_fail(uint64_t i, uint64_t s, const uint8_t leaf[32],
			    const uint8_t (*pr)[32], size_t n, const uint8_t root[32])
{
	if (merkle_verify_inclusion(i, s, leaf, pr, n, root, NULL, 0) == ALLOT_OK)
		fail_msg("inclusion accepted: index %llu size %llu n %zu", (unsigned long long)i,
			 (unsigned long long)s, n);
	return 1;
}

static void test_inclusion_property(void **state)
{
	struct prop *p = *state;
	size_t checked = 0, rejected = 0;

	for (int round = 0; round < 60; round++) {
		uint64_t s = round < 12 ? (uint64_t)round + 1 : 1 + rnd(p) % PROP_MAX;
		for (int j = 0; j < 6; j++) {
			uint64_t i = j == 0 ? 0 : j == 1 ? s - 1 : rnd(p) % s;
			struct merkle_proof pr;
			uint8_t buf[MERKLE_PROOF_MAX + 1][32], leaf[32], root[32];

			assert_int_equal(merkle_prove_inclusion(i, s, merkle_memstore_get, &p->st, &pr),
					 ALLOT_OK);
			assert_int_equal(merkle_verify_inclusion(i, s, p->leaves[i],
								 (const uint8_t(*)[32])pr.h, pr.n,
								 p->roots[s], NULL, 0), ALLOT_OK);
			checked++;
			const uint8_t(*h)[32] = (const uint8_t(*)[32])pr.h;
			/* Single-bit corruptions (sampled bits) of proof, leaf, root. */
			for (size_t k = 0; k < pr.n; k++) {
				for (int b = 0; b < 4; b++) {
					unsigned bit = (unsigned)(rnd(p) % 256);
					memcpy(buf, pr.h, pr.n * 32);
					buf[k][bit / 8] ^= (uint8_t)(1u << bit % 8);
					rejected += expect_incl_fail(i, s, p->leaves[i],
								     (const uint8_t(*)[32])buf, pr.n,
								     p->roots[s]);
				}
			}
			unsigned bit = (unsigned)(rnd(p) % 256);
			memcpy(leaf, p->leaves[i], 32);
			leaf[bit / 8] ^= (uint8_t)(1u << bit % 8);
			rejected += expect_incl_fail(i, s, leaf, h, pr.n, p->roots[s]);
			memcpy(root, p->roots[s], 32);
			root[bit / 8] ^= (uint8_t)(1u << bit % 8);
			rejected += expect_incl_fail(i, s, p->leaves[i], h, pr.n, root);
			/* Index +-1. */
			rejected += expect_incl_fail(i + 1, s, p->leaves[i], h, pr.n, p->roots[s]);
			rejected += expect_incl_fail(i - 1, s, p->leaves[i], h, pr.n, p->roots[s]);
			/* Changed size, against the true root of that size (a signed
			 * checkpoint binds size and root together). */
			if (s + 1 <= PROP_MAX)
				rejected += expect_incl_fail(i, s + 1, p->leaves[i], h, pr.n,
							     p->roots[s + 1]);
			if (s - 1 > i)
				rejected += expect_incl_fail(i, s - 1, p->leaves[i], h, pr.n,
							     p->roots[s - 1]);
			if (s * 2 <= PROP_MAX)
				rejected += expect_incl_fail(i, s * 2, p->leaves[i], h, pr.n,
							     p->roots[s * 2]);
			/* Truncated (either end) and extended (either end). */
			if (pr.n) {
				rejected += expect_incl_fail(i, s, p->leaves[i], h, pr.n - 1, p->roots[s]);
				rejected += expect_incl_fail(i, s, p->leaves[i], h + 1, pr.n - 1,
							     p->roots[s]);
			}
			memcpy(buf, pr.h, pr.n * 32);
			memcpy(buf[pr.n], p->roots[s], 32);
			rejected += expect_incl_fail(i, s, p->leaves[i], (const uint8_t(*)[32])buf,
						     pr.n + 1, p->roots[s]);
			memcpy(buf[0], p->leaves[i], 32);
			memcpy(buf + 1, pr.h, pr.n * 32);
			rejected += expect_incl_fail(i, s, p->leaves[i], (const uint8_t(*)[32])buf,
						     pr.n + 1, p->roots[s]);
		}
	}
	printf("merkle: inclusion property: %zu proofs verified, %zu corruptions rejected\n",
	       checked, rejected);
}

static int expect_cons_fail(uint64_t s1, uint64_t s2, const uint8_t r1[32], const uint8_t r2[32],
			    const uint8_t (*pr)[32], size_t n)
{
	if (merkle_verify_consistency(s1, s2, r1, r2, pr, n, NULL, 0) == ALLOT_OK)
		fail_msg("consistency accepted: %llu -> %llu n %zu", (unsigned long long)s1,
			 (unsigned long long)s2, n);
	return 1;
}

static void test_consistency_property(void **state)
{
	struct prop *p = *state;
	size_t checked = 0, rejected = 0;

	for (int round = 0; round < 300; round++) {
		uint64_t s2 = round < 40 ? (uint64_t)round / 8 + 2 : 2 + rnd(p) % (PROP_MAX - 1);
		uint64_t s1 = round < 40 ? 1 + (uint64_t)round % 8 % (s2 - 1) : 1 + rnd(p) % (s2 - 1);
		struct merkle_proof pr;
		uint8_t buf[MERKLE_PROOF_MAX + 1][32], r[32];
		const uint8_t *r1 = p->roots[s1], *r2 = p->roots[s2];

		assert_int_equal(merkle_prove_consistency(s1, s2, merkle_memstore_get, &p->st, &pr),
				 ALLOT_OK);
		const uint8_t(*h)[32] = (const uint8_t(*)[32])pr.h;
		assert_int_equal(merkle_verify_consistency(s1, s2, r1, r2, h, pr.n, NULL, 0), ALLOT_OK);
		checked++;
		for (size_t k = 0; k < pr.n; k++) {
			for (int b = 0; b < 3; b++) {
				unsigned bit = (unsigned)(rnd(p) % 256);
				memcpy(buf, pr.h, pr.n * 32);
				buf[k][bit / 8] ^= (uint8_t)(1u << bit % 8);
				rejected += expect_cons_fail(s1, s2, r1, r2, (const uint8_t(*)[32])buf,
							     pr.n);
			}
		}
		unsigned bit = (unsigned)(rnd(p) % 256);
		memcpy(r, r1, 32);
		r[bit / 8] ^= (uint8_t)(1u << bit % 8);
		rejected += expect_cons_fail(s1, s2, r, r2, h, pr.n);
		memcpy(r, r2, 32);
		r[bit / 8] ^= (uint8_t)(1u << bit % 8);
		rejected += expect_cons_fail(s1, s2, r1, r, h, pr.n);
		rejected += expect_cons_fail(s1, s2, r2, r1, h, pr.n); /* swapped */
		/* Changed sizes with the true roots of those sizes. */
		if (s1 > 1)
			rejected += expect_cons_fail(s1 - 1, s2, p->roots[s1 - 1], r2, h, pr.n);
		if (s1 + 1 < s2)
			rejected += expect_cons_fail(s1 + 1, s2, p->roots[s1 + 1], r2, h, pr.n);
		if (s2 + 1 <= PROP_MAX)
			rejected += expect_cons_fail(s1, s2 + 1, r1, p->roots[s2 + 1], h, pr.n);
		if (s2 - 1 > s1)
			rejected += expect_cons_fail(s1, s2 - 1, r1, p->roots[s2 - 1], h, pr.n);
		/* Truncated and extended at either end; empty. */
		rejected += expect_cons_fail(s1, s2, r1, r2, h, pr.n - 1);
		rejected += expect_cons_fail(s1, s2, r1, r2, h + 1, pr.n - 1);
		rejected += expect_cons_fail(s1, s2, r1, r2, h, 0);
		memcpy(buf, pr.h, pr.n * 32);
		memcpy(buf[pr.n], r1, 32);
		rejected += expect_cons_fail(s1, s2, r1, r2, (const uint8_t(*)[32])buf, pr.n + 1);
		memcpy(buf[0], r1, 32);
		memcpy(buf + 1, pr.h, pr.n * 32);
		rejected += expect_cons_fail(s1, s2, r1, r2, (const uint8_t(*)[32])buf, pr.n + 1);
		/* Same size: only the empty proof and equal roots. */
		assert_int_equal(merkle_verify_consistency(s2, s2, r2, r2, h, 0, NULL, 0), ALLOT_OK);
		rejected += expect_cons_fail(s2, s2, r2, r2, h, 1);
		rejected += expect_cons_fail(s2, s2, r1, r2, h, 0);
		rejected += expect_cons_fail(s2, s1, r2, r1, h, pr.n);
		rejected += expect_cons_fail(0, s2, p->roots[0], r2, h, 0);
	}
	printf("merkle: consistency property: %zu proofs verified, %zu corruptions rejected\n",
	       checked, rejected);
}

/* ---- append atomicity ---- */

struct failing_store {
	struct merkle_memstore st;
	int budget; /* puts allowed before failing */
};

static allot_err failing_put(void *ctx, unsigned level, uint64_t index, const uint8_t h[32])
{
	struct failing_store *f = ctx;
	if (f->budget-- <= 0)
		return ALLOT_E_STORE;
	return merkle_memstore_put(&f->st, level, index, h);
}

static void test_append_failure(void **state)
{
	(void)state;
	struct failing_store f = {MERKLE_MEMSTORE_INIT, 1000};
	struct merkle_tree t, before;
	uint8_t leaf[32], r1[32], r2[32];

	merkle_tree_init(&t);
	for (int i = 0; i < 7; i++) {
		merkle_leaf_hash(&i, sizeof i, leaf);
		assert_int_equal(merkle_tree_append(&t, leaf, failing_put, &f), ALLOT_OK);
	}
	/* The 8th leaf completes nodes at levels 0..3; fail at the third put. */
	before = t;
	f.budget = 2;
	int i = 7;
	merkle_leaf_hash(&i, sizeof i, leaf);
	assert_int_equal(merkle_tree_append(&t, leaf, failing_put, &f), ALLOT_E_STORE);
	assert_memory_equal(&t, &before, sizeof t);
	/* Retrying succeeds (the store accepts the nodes it already has). */
	f.budget = 1000;
	assert_int_equal(merkle_tree_append(&t, leaf, failing_put, &f), ALLOT_OK);
	assert_int_equal(t.size, 8);
	merkle_tree_root(&t, r1);
	assert_int_equal(merkle_root_at(8, merkle_memstore_get, &f.st, r2), ALLOT_OK);
	assert_memory_equal(r1, r2, 32);
	/* A conflicting node is refused by the store. */
	assert_int_equal(merkle_memstore_put(&f.st, 0, 0, r1), ALLOT_E_CONFLICT);
	assert_int_equal(merkle_memstore_put(&f.st, 0, 100, r1), ALLOT_E_INVALID);
	merkle_memstore_release(&f.st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_roots_and_load),
		cmocka_unit_test(test_inclusion_property),
		cmocka_unit_test(test_consistency_property),
		cmocka_unit_test(test_append_failure),
	};
	return cmocka_run_group_tests_name("merkle", tests, prop_setup, prop_teardown);
}
