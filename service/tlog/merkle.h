/* merkle.h — RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing,
 * incremental tree state, and inclusion / consistency proofs.
 *
 *   leaf hash  = SHA-256(0x00 || entry bytes)
 *   node hash  = SHA-256(0x01 || left || right)
 *   empty tree = SHA-256("")
 *
 * Node addressing: (level, index) names the complete (perfect) subtree of
 * 2^level leaves [index << level, (index + 1) << level); level 0 holds the
 * leaf hashes.  Such nodes never change once the log has grown past them, so
 * a store keeps every one of them (about 2 n hashes for n leaves) and proofs
 * for any earlier tree size can be built from them.
 *
 * The tree state (struct merkle_tree) is the "compact range" of the log: the
 * roots of the complete subtrees that make up [0, size), one per set bit of
 * size.  merkle_tree_append() is O(log n) (amortised O(1) hashes) and reports
 * every node it completes, so the caller can store it in the same
 * transaction as the entry; merkle_tree_root() folds at most 64 hashes.
 *
 * Proofs are generated through a callback that fetches a stored node; the
 * in-memory store below is one implementation (tests, benchmarks), the
 * daemon's SQLite table another.  A proof needs O(log n) fetches.
 *
 * Thread-safety: all functions are reentrant; a struct merkle_tree or a
 * struct merkle_memstore must not be used by two threads at once without the
 * caller's lock.  Nothing here allocates except merkle_memstore (and
 * OpenSSL's digest context inside each hash: should OpenSSL ever fail to
 * allocate one, the hashing functions abort() rather than return a wrong
 * hash — they have no error path by design, being called in every loop).
 */
#ifndef ALLOT_TLOG_MERKLE_H
#define ALLOT_TLOG_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define MERKLE_HASH_LEN 32
/* A proof for a 64-bit tree size has at most 64 hashes (inclusion) or 65
 * (consistency: one subtree root plus a path). */
#define MERKLE_PROOF_MAX 66
/* Tree sizes are kept below 2^63 so that every (level, index) arithmetic on
 * them stays inside uint64_t; no log comes anywhere near. */
#define MERKLE_SIZE_MAX (UINT64_C(1) << 62)

/* --- hashing ------------------------------------------------------------ */

void merkle_leaf_hash(const void *data, size_t n, uint8_t out[MERKLE_HASH_LEN]);
void merkle_node_hash(const uint8_t left[MERKLE_HASH_LEN], const uint8_t right[MERKLE_HASH_LEN],
		      uint8_t out[MERKLE_HASH_LEN]);
/* Root of the empty tree: SHA-256 of the empty string. */
void merkle_empty_root(uint8_t out[MERKLE_HASH_LEN]);
/* The root of a complete subtree from its n leaf hashes (n a power of two,
 * n >= 1), folded in place in h (its contents are overwritten). */
void merkle_subtree_fold(uint8_t (*h)[MERKLE_HASH_LEN], uint64_t n, uint8_t out[MERKLE_HASH_LEN]);

/* --- node storage ---------------------------------------------------------- */

/* Fetches the hash of complete node (level, index) into out.  Returns
 * ALLOT_OK, or any error (ALLOT_E_NOT_FOUND, ALLOT_E_STORE, ...) which is
 * passed back to the caller of the proof function unchanged. */
typedef allot_err (*merkle_get_fn)(void *ctx, unsigned level, uint64_t index,
				   uint8_t out[MERKLE_HASH_LEN]);
/* Receives a node that an append completed; the hash is only valid during
 * the call.  A non-OK return aborts the append (the tree is left unchanged). */
typedef allot_err (*merkle_put_fn)(void *ctx, unsigned level, uint64_t index,
				   const uint8_t hash[MERKLE_HASH_LEN]);

/* --- incremental tree state ------------------------------------------------- */

struct merkle_tree {
	uint64_t size;                              /* leaves appended */
	uint8_t frontier[64][MERKLE_HASH_LEN];      /* [l] valid iff bit l of size */
};

/* Empty tree. */
void merkle_tree_init(struct merkle_tree *t);
/* Rebuilds the state for a stored log of the given size by fetching its
 * popcount(size) frontier nodes.  OUT: *t on success only. */
allot_err merkle_tree_load(struct merkle_tree *t, uint64_t size, merkle_get_fn get, void *ctx);
/* Appends a leaf hash.  put (may be NULL) is called first for (0, size) and
 * then for every parent node the append completes, bottom up; if it fails,
 * t is unchanged and its error is returned.  ALLOT_E_TOO_LARGE at
 * MERKLE_SIZE_MAX. */
allot_err merkle_tree_append(struct merkle_tree *t, const uint8_t leaf[MERKLE_HASH_LEN],
			     merkle_put_fn put, void *ctx);
/* Root hash of the current tree (the empty-tree hash for size 0). */
void merkle_tree_root(const struct merkle_tree *t, uint8_t out[MERKLE_HASH_LEN]);

/* --- proofs from storage ------------------------------------------------------ */

struct merkle_proof {
	size_t n;                                   /* hashes used */
	uint8_t h[MERKLE_PROOF_MAX][MERKLE_HASH_LEN];
};

/* Root of the tree of the first `size` leaves (size 0: empty root). */
allot_err merkle_root_at(uint64_t size, merkle_get_fn get, void *ctx,
			 uint8_t out[MERKLE_HASH_LEN]);
/* RFC 9162 section 2.1.3.1 inclusion proof of leaf `index` in the tree of
 * `size` leaves.  ALLOT_E_INVALID unless index < size.  OUT: *p on success. */
allot_err merkle_prove_inclusion(uint64_t index, uint64_t size, merkle_get_fn get, void *ctx,
				 struct merkle_proof *p);
/* RFC 9162 section 2.1.4.1 consistency proof between trees of size1 and
 * size2 leaves.  ALLOT_E_INVALID unless 0 < size1 <= size2 (size1 == size2
 * gives the empty proof).  OUT: *p on success. */
allot_err merkle_prove_consistency(uint64_t size1, uint64_t size2, merkle_get_fn get, void *ctx,
				   struct merkle_proof *p);

/* --- verification (pure) -------------------------------------------------- */

/* RFC 9162 section 2.1.3.2.  ALLOT_OK when proof[0..n) proves that leaf is
 * at index in the tree of size leaves whose root is root; otherwise
 * ALLOT_E_UNPROCESSABLE with a reason in msg (may be NULL). */
allot_err merkle_verify_inclusion(uint64_t index, uint64_t size,
				  const uint8_t leaf[MERKLE_HASH_LEN],
				  const uint8_t (*proof)[MERKLE_HASH_LEN], size_t n,
				  const uint8_t root[MERKLE_HASH_LEN], char *msg, size_t msgcap);
/* RFC 9162 section 2.1.4.2, plus the edge cases: size1 == 0 is always an
 * error (nothing to prove), size1 > size2 is an error, size1 == size2 needs
 * an empty proof and root1 == root2.  Returns as above. */
allot_err merkle_verify_consistency(uint64_t size1, uint64_t size2,
				    const uint8_t root1[MERKLE_HASH_LEN],
				    const uint8_t root2[MERKLE_HASH_LEN],
				    const uint8_t (*proof)[MERKLE_HASH_LEN], size_t n, char *msg,
				    size_t msgcap);

/* --- in-memory node store (tests, benchmarks) ------------------------------- */

/* Every complete node, level by level, in growable arrays. */
struct merkle_memstore {
	uint8_t (*level[64])[MERKLE_HASH_LEN];  /* from realloc(); node hashes */
	uint64_t count[64];                     /* nodes held per level */
	uint64_t cap[64];                       /* nodes allocated per level */
};
#define MERKLE_MEMSTORE_INIT {{0}, {0}, {0}}

/* merkle_put_fn / merkle_get_fn over a struct merkle_memstore (ctx).  put
 * accepts only the next node of a level (index == count), as appends produce
 * them; get answers ALLOT_E_NOT_FOUND for a node it does not hold. */
allot_err merkle_memstore_put(void *ctx, unsigned level, uint64_t index,
			      const uint8_t hash[MERKLE_HASH_LEN]);
allot_err merkle_memstore_get(void *ctx, unsigned level, uint64_t index,
			      uint8_t out[MERKLE_HASH_LEN]);
/* Frees the arrays; the store is back to MERKLE_MEMSTORE_INIT. */
void merkle_memstore_release(struct merkle_memstore *s);

#endif
