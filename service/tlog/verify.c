/* verify.c — offline verification of exports (tlog/verify.h). */
#include "tlog/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/b64.h"
#include "crypto/ed25519.h"
#include "tlog/leaf.h"
#include "tlog/merkle.h"

static allot_err fail(struct tlog_verify_report *rep, allot_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static allot_err fail(struct tlog_verify_report *rep, allot_err e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rep->failure, sizeof rep->failure, fmt, ap);
	va_end(ap);
	return e;
}

/* The verifier for key; the key name of a bare Ed25519 key is the note's
 * first line (the checkpoint's origin). */
static allot_err make_verifier(const char *key, const char *note, size_t note_len,
			       struct note_verifier *v, char *msg, size_t msgcap)
{
	if (strncmp(key, "ed25519:", 8) != 0)
		return note_vkey_parse(key, strlen(key), v, msg, msgcap);
	uint8_t pub[ED25519_PUB_LEN];
	allot_err e = ed25519_pub_parse(key, strlen(key), pub, msg, msgcap);
	if (e)
		return e;
	const char *nl = memchr(note, '\n', note_len);
	if (!nl || nl == note || (size_t)(nl - note) > NOTE_NAME_MAX) {
		snprintf(msg, msgcap, "the checkpoint has no origin line");
		return ALLOT_E_INVALID;
	}
	char name[NOTE_NAME_MAX + 1];
	memcpy(name, note, (size_t)(nl - note));
	name[nl - note] = '\0';
	return note_verifier_init(v, name, pub, msg, msgcap);
}

/* Decodes a JSON array of base64 hashes.  false when malformed. */
static bool proof_parse(const json_t *a, struct merkle_proof *p)
{
	if (!json_is_array(a) || json_array_size(a) > MERKLE_PROOF_MAX)
		return false;
	p->n = 0;
	size_t i;
	json_t *h;
	json_array_foreach(a, i, h) {
		size_t n;
		if (!json_is_string(h) ||
		    b64_decode(json_string_value(h), json_string_length(h), p->h[p->n],
			       MERKLE_HASH_LEN, &n) || n != MERKLE_HASH_LEN)
			return false;
		p->n++;
	}
	return true;
}

static const char *str_or(const char *s, const char *dflt) { return s ? s : dflt; }

/* "usage record cscs/job-1", "charter version 3", "audit entry 12". */
static void entry_name(enum tlog_leaf_type t, const json_t *e, char *out, size_t cap)
{
	if (t == TLOG_LEAF_USAGE)
		snprintf(out, cap, "usage record %s/%s",
			 str_or(json_string_value(json_object_get(e, "provider")), "?"),
			 str_or(json_string_value(json_object_get(e, "record_id")), "?"));
	else if (t == TLOG_LEAF_CHARTER)
		snprintf(out, cap, "charter version %lld",
			 (long long)json_integer_value(json_object_get(e, "version")));
	else
		snprintf(out, cap, "audit entry %lld (%s)",
			 (long long)json_integer_value(json_object_get(e, "id")),
			 str_or(json_string_value(json_object_get(e, "action")), "?"));
}

/* Checks one entry's leaf against the checkpoint. */
static allot_err check_entry(struct tlog_verify_report *rep, enum tlog_leaf_type t,
			     const json_t *entry, const json_t *idxj, const json_t *proofj)
{
	char name[300], why[200];
	entry_name(t, entry, name, sizeof name);
	if (!json_is_integer(idxj) || json_integer_value(idxj) < 0)
		return fail(rep, ALLOT_E_UNPROCESSABLE, "%s: no leaf_index in the export", name);
	uint64_t idx = (uint64_t)json_integer_value(idxj);
	if (idx >= rep->cp.size)
		return fail(rep, ALLOT_E_UNPROCESSABLE, "%s (leaf %llu): not in the checkpoint's "
			    "tree of %llu leaves", name, (unsigned long long)idx,
			    (unsigned long long)rep->cp.size);
	struct merkle_proof p;
	if (!proof_parse(proofj, &p))
		return fail(rep, ALLOT_E_UNPROCESSABLE, "%s (leaf %llu): no well-formed inclusion "
			    "proof in the export", name, (unsigned long long)idx);
	char *data = NULL;
	size_t len;
	if (tlog_leaf_bytes(t, entry, &data, &len, why, sizeof why))
		return fail(rep, ALLOT_E_UNPROCESSABLE, "%s (leaf %llu): %s", name,
			    (unsigned long long)idx, why);
	if (t == TLOG_LEAF_CHARTER && json_is_string(json_object_get(entry, "text"))) {
		/* The charter's text, when exported, must be the one logged. */
		const json_t *tx = json_object_get(entry, "text");
		uint8_t h[32];
		char hex[65];
		EVP_Digest(json_string_value(tx), json_string_length(tx), h, NULL, EVP_sha256(), NULL);
		hex_encode(h, 32, hex);
		const char *want = json_string_value(json_object_get(entry, "sha256"));
		if (!want || strcmp(want, hex) != 0) {
			free(data);
			return fail(rep, ALLOT_E_UNPROCESSABLE, "%s (leaf %llu): its text does not "
				    "have the logged SHA-256", name, (unsigned long long)idx);
		}
	}
	const json_t *rs = json_object_get(entry, "sha256");
	if (t == TLOG_LEAF_USAGE && json_is_string(rs)) {
		/* The stored hash of the signed bytes (deduplication) must be theirs. */
		const json_t *c = json_object_get(entry, "canonical");
		uint8_t h[32];
		char hex[65];
		EVP_Digest(json_string_value(c), json_string_length(c), h, NULL, EVP_sha256(), NULL);
		hex_encode(h, 32, hex);
		if (strcmp(hex, json_string_value(rs)) != 0) {
			free(data);
			return fail(rep, ALLOT_E_UNPROCESSABLE, "%s (leaf %llu): its sha256 is not the "
				    "hash of its canonical bytes", name, (unsigned long long)idx);
		}
	}
	uint8_t leaf[MERKLE_HASH_LEN];
	merkle_leaf_hash(data, len, leaf);
	free(data);
	if (merkle_verify_inclusion(idx, rep->cp.size, leaf, (const uint8_t(*)[32])p.h, p.n,
				    rep->cp.root, why, sizeof why))
		return fail(rep, ALLOT_E_UNPROCESSABLE, "%s (leaf %llu) does not match the signed "
			    "log: it was altered after it was logged, or the proof is wrong (%s)",
			    name, (unsigned long long)idx, why);
	rep->checked++;
	return ALLOT_OK;
}

static allot_err check_log_export(const json_t *x, struct tlog_verify_report *rep)
{
	const json_t *entries = json_object_get(x, "entries");
	const json_t *sj = json_object_get(x, "start"), *ej = json_object_get(x, "end");
	if (!json_is_integer(sj) || !json_is_integer(ej) || json_integer_value(sj) < 0 ||
	    json_integer_value(ej) < json_integer_value(sj))
		return fail(rep, ALLOT_E_INVALID, "the export has no valid \"start\" and \"end\"");
	uint64_t start = (uint64_t)json_integer_value(sj), end = (uint64_t)json_integer_value(ej);
	if (end > rep->cp.size)
		return fail(rep, ALLOT_E_UNPROCESSABLE, "the export claims leaves up to %llu but "
			    "its checkpoint has %llu", (unsigned long long)end,
			    (unsigned long long)rep->cp.size);
	/* First the shape: every leaf of the range, in order, with its entry, so
	 * that a deletion is reported as one (it also breaks nearby proofs). */
	uint64_t want = start;
	size_t i;
	json_t *ent;
	json_array_foreach(entries, i, ent) {
		const json_t *idxj = json_object_get(ent, "leaf_index");
		uint64_t idx = json_is_integer(idxj) ? (uint64_t)json_integer_value(idxj) : UINT64_MAX;
		if (idx != want)
			return fail(rep, ALLOT_E_UNPROCESSABLE, "leaf %llu is missing from the export "
				    "(the next one is %lld): a logged entry was deleted",
				    (unsigned long long)want, idx == UINT64_MAX ? -1LL : (long long)idx);
		int t = tlog_leaf_type_parse(json_string_value(json_object_get(ent, "type")));
		if (t < 0)
			return fail(rep, ALLOT_E_UNPROCESSABLE, "leaf %llu: unknown type",
				    (unsigned long long)idx);
		if (!json_is_object(json_object_get(ent, "entry"))) {
			/* Name it from the leaf row, as the export carries it. */
			char name[300];
			const char *nm = json_string_value(json_object_get(ent, "name"));
			long long ref = (long long)json_integer_value(json_object_get(ent, "ref"));
			if (t == TLOG_LEAF_USAGE && nm)
				snprintf(name, sizeof name, "usage record %s", nm);
			else if (t == TLOG_LEAF_USAGE)
				snprintf(name, sizeof name, "usage record #%lld", ref);
			else if (t == TLOG_LEAF_CHARTER)
				snprintf(name, sizeof name, "charter version %lld", ref);
			else
				snprintf(name, sizeof name, "audit entry %lld", ref);
			return fail(rep, ALLOT_E_UNPROCESSABLE, "%s (leaf %llu) is logged but missing "
				    "from the export: it was deleted", name, (unsigned long long)idx);
		}
		want++;
	}
	if (want != end)
		return fail(rep, ALLOT_E_UNPROCESSABLE, "leaves %llu..%llu are missing from the "
			    "export", (unsigned long long)want, (unsigned long long)end - 1);
	/* Then every leaf recomputed and proven. */
	json_array_foreach(entries, i, ent) {
		int t = tlog_leaf_type_parse(json_string_value(json_object_get(ent, "type")));
		allot_err e = check_entry(rep, (enum tlog_leaf_type)t, json_object_get(ent, "entry"),
					  json_object_get(ent, "leaf_index"),
					  json_object_get(ent, "proof"));
		if (e)
			return e;
	}
	rep->complete = start == 0 && end == rep->cp.size;
	return ALLOT_OK;
}

static allot_err check_since(const json_t *x, const struct note_verifier *v, const char *since,
			     size_t since_len, struct tlog_verify_report *rep)
{
	struct checkpoint old;
	char why[200];
	if (checkpoint_open(since, since_len, v, &old, why, sizeof why))
		return fail(rep, ALLOT_E_UNPROCESSABLE, "the earlier checkpoint does not verify "
			    "with this key: %s", why);
	rep->since_size = old.size;
	if (old.size > rep->cp.size)
		return fail(rep, ALLOT_E_UNPROCESSABLE, "the log shrank: the earlier checkpoint "
			    "has %llu leaves, the export's %llu (history was rewritten)",
			    (unsigned long long)old.size, (unsigned long long)rep->cp.size);
	if (old.size == 0) {
		rep->since_checked = true;
		return ALLOT_OK;
	}
	struct merkle_proof p = {0};
	if (old.size < rep->cp.size) {
		const json_t *c = json_object_get(x, "consistency");
		if (!c)
			return fail(rep, ALLOT_E_UNPROCESSABLE, "the export carries no consistency "
				    "proof; export again with since=%llu", (unsigned long long)old.size);
		if (json_integer_value(json_object_get(c, "from")) != (json_int_t)old.size ||
		    json_integer_value(json_object_get(c, "to")) != (json_int_t)rep->cp.size)
			return fail(rep, ALLOT_E_UNPROCESSABLE, "the export's consistency proof is "
				    "not from size %llu to %llu; export again with since=%llu",
				    (unsigned long long)old.size, (unsigned long long)rep->cp.size,
				    (unsigned long long)old.size);
		if (!proof_parse(json_object_get(c, "proof"), &p))
			return fail(rep, ALLOT_E_UNPROCESSABLE, "the consistency proof is malformed");
	}
	if (merkle_verify_consistency(old.size, rep->cp.size, old.root, rep->cp.root,
				      (const uint8_t(*)[32])p.h, p.n, why, sizeof why))
		return fail(rep, ALLOT_E_UNPROCESSABLE, "the log is not consistent with the earlier "
			    "checkpoint (size %llu): history was rewritten or the log was forked (%s)",
			    (unsigned long long)old.size, why);
	rep->since_checked = true;
	return ALLOT_OK;
}

allot_err tlog_verify_export(const json_t *x, const char *key, const char *since,
			     size_t since_len, struct tlog_verify_report *rep)
{
	memset(rep, 0, sizeof *rep);
	char why[200];
	const json_t *cpj = json_object_get(x, "checkpoint");
	if (!json_is_object(x) || !json_is_string(cpj))
		return fail(rep, ALLOT_E_INVALID, "the export carries no \"checkpoint\"");
	const char *note = json_string_value(cpj);
	size_t note_len = json_string_length(cpj);
	struct note_verifier v;
	if (make_verifier(key, note, note_len, &v, why, sizeof why))
		return fail(rep, ALLOT_E_INVALID, "bad key: %s", why);
	if (checkpoint_open(note, note_len, &v, &rep->cp, why, sizeof why))
		return fail(rep, ALLOT_E_UNPROCESSABLE, "the export's checkpoint does not verify: %s",
			    why);
	allot_err e;
	if (json_is_array(json_object_get(x, "entries"))) {
		rep->log_export = true;
		e = check_log_export(x, rep);
	} else if (json_is_array(json_object_get(x, "records"))) {
		size_t i;
		json_t *r;
		e = ALLOT_OK;
		json_array_foreach(json_object_get(x, "records"), i, r) {
			if ((e = check_entry(rep, TLOG_LEAF_USAGE, r, json_object_get(r, "leaf_index"),
					     json_object_get(r, "proof"))))
				break;
		}
	} else {
		return fail(rep, ALLOT_E_INVALID, "the export has neither \"entries\" nor \"records\"");
	}
	if (e)
		return e;
	if (since)
		return check_since(x, &v, since, since_len, rep);
	return ALLOT_OK;
}
