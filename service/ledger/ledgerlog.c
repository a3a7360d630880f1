/* ledgerlog.c — log key, signed checkpoints and exports (ledger/ledgerlog.h). */
#include "ledger/ledgerlog.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "common/b64.h"
#include "crypto/ed25519.h"

struct ledgerlog {
	struct store *st;
	struct ed25519_keypair kp;
	struct note_verifier v;
	char origin[NOTE_NAME_MAX + 1];
	char vkey[NOTE_VKEY_MAX];
	char pub[ED25519_PUB_TEXT_MAX];
	pthread_mutex_t lock;       /* guards the cache */
	char *note;                 /* latest signed checkpoint, from malloc() */
	struct checkpoint cp;       /* its contents */
	int64_t signed_at;          /* monotonic-enough: UTC µs */
};

allot_err ledgerlog_open(const char *keys_dir, const char *deployment, struct store *st,
			 struct ledgerlog **out, char *msg, size_t msgsz)
{
	struct ledgerlog *l = calloc(1, sizeof *l);
	if (!l)
		return ALLOT_E_NOMEM;
	l->st = st;
	pthread_mutex_init(&l->lock, NULL);
	snprintf(l->origin, sizeof l->origin, "allot/%s", deployment);
	allot_err e = note_name_check(l->origin, strlen(l->origin), msg, msgsz);
	if (e)
		goto fail;
	if (mkdir(keys_dir, 0700) < 0 && errno != EEXIST) {
		snprintf(msg, msgsz, "cannot create key directory %s: %s", keys_dir, strerror(errno));
		e = ALLOT_E_IO;
		goto fail;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", keys_dir, LEDGERLOG_KEY_FILE);
	struct stat sb;
	if (stat(path, &sb) < 0 && errno == ENOENT) {
		if ((e = ed25519_keygen(&l->kp)) ||
		    (e = ed25519_private_write(path, &l->kp, 0, msg, msgsz)))
			goto fail;
		log_info("created the transparency log key %s", path);
	} else if ((e = ed25519_private_read(path, &l->kp, msg, msgsz))) {
		goto fail;
	}
	if ((e = note_verifier_init(&l->v, l->origin, l->kp.pub, msg, msgsz)))
		goto fail;
	note_vkey_format(&l->v, l->vkey);
	ed25519_pub_format(l->kp.pub, l->pub);
	*out = l;
	return ALLOT_OK;
fail:
	ledgerlog_free(l);
	return e;
}

void ledgerlog_free(struct ledgerlog *l)
{
	if (!l)
		return;
	ed25519_keypair_wipe(&l->kp);
	free(l->note);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

const char *ledgerlog_origin(const struct ledgerlog *l) { return l->origin; }
const char *ledgerlog_vkey(const struct ledgerlog *l) { return l->vkey; }
const char *ledgerlog_pub(const struct ledgerlog *l) { return l->pub; }

allot_err ledgerlog_checkpoint(struct ledgerlog *l, bool fresh, char **note,
			       struct checkpoint *cp, char *msg, size_t msgsz)
{
	allot_err e = ALLOT_OK;
	pthread_mutex_lock(&l->lock);
	int64_t now = time_now_us();
	/* Several nodes on one database (store_has_budgets: PostgreSQL) read
	 * the head every time: a cached note could be older than one another
	 * node served a moment ago, and a monitor that asked both would see
	 * the log shrink.  The head only grows, so the newest is always safe. */
	bool stale = !l->note || fresh || store_has_budgets(l->st) ||
		     now - l->signed_at >= LEDGERLOG_SIGN_INTERVAL_US;
	if (stale) {
		struct checkpoint c = {0};
		snprintf(c.origin, sizeof c.origin, "%s", l->origin);
		if ((e = store_tlog_head(l->st, &c.size, c.root))) {
			snprintf(msg, msgsz, "the log could not be read");
			goto out;
		}
		/* Same tree: the cached note is exactly what signing would give
		 * (Ed25519 is deterministic). */
		if (!l->note || c.size != l->cp.size || memcmp(c.root, l->cp.root, MERKLE_HASH_LEN)) {
			/* A signed tree head is a promise about every leaf under
			 * it: make the settlements still in the write-ahead
			 * log's deferred window durable before signing, so that a
			 * power loss can never take back a leaf a published
			 * checkpoint covers (docs/TLOG.md). */
			if ((e = store_flush(l->st))) {
				snprintf(msg, msgsz, "the log could not be made durable");
				goto out;
			}
			char *n = NULL;
			size_t len;
			if ((e = checkpoint_sign(&c, &l->kp, &n, &len, msg, msgsz)))
				goto out;
			free(l->note);
			l->note = n;
			l->cp = c;
			l->signed_at = now;
		}
	}
	char *copy = strdup(l->note);
	if (!copy) {
		e = ALLOT_E_NOMEM;
		goto out;
	}
	*note = copy;
	if (cp)
		*cp = l->cp;
out:
	pthread_mutex_unlock(&l->lock);
	return e;
}

allot_err ledgerlog_checkpoint_of(struct ledgerlog *l, struct store *copy, char **note,
				  struct checkpoint *cp, char *msg, size_t msgsz)
{
	struct checkpoint c = {0};
	snprintf(c.origin, sizeof c.origin, "%s", l->origin);
	if (store_tlog_head(copy, &c.size, c.root)) {
		snprintf(msg, msgsz, "the copy's log could not be read");
		return ALLOT_E_STORE;
	}
	size_t len;
	pthread_mutex_lock(&l->lock);
	allot_err e = checkpoint_sign(&c, &l->kp, note, &len, msg, msgsz);
	pthread_mutex_unlock(&l->lock);
	if (!e && cp)
		*cp = c;
	return e;
}

void ledgerlog_signed(struct ledgerlog *l, uint64_t *size, int64_t *signed_at)
{
	pthread_mutex_lock(&l->lock);
	*size = l->note ? l->cp.size : 0;
	*signed_at = l->note ? l->signed_at : 0;
	pthread_mutex_unlock(&l->lock);
}

json_t *ledgerlog_proof_json(const struct merkle_proof *p)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < p->n; i++) {
		char b[48];
		b64_encode(p->h[i], MERKLE_HASH_LEN, b);
		json_array_append_new(a, json_string(b));
	}
	return a;
}

allot_err ledgerlog_export(struct ledgerlog *l, uint64_t start, uint64_t end, uint64_t since,
			   json_t **out, char *msg, size_t msgsz)
{
	char *note = NULL;
	struct checkpoint cp;
	allot_err e = ledgerlog_checkpoint(l, true, &note, &cp, msg, msgsz);
	if (e)
		return e;
	if (end == 0 || end > cp.size)
		end = cp.size;
	if (start > end) {
		snprintf(msg, msgsz, "start must be at most the log size (%llu)",
			 (unsigned long long)cp.size);
		free(note);
		return ALLOT_E_INVALID;
	}
	if (end - start > LEDGERLOG_EXPORT_MAX) {
		snprintf(msg, msgsz, "at most %d leaves per export (start=%llu end=%llu)",
			 LEDGERLOG_EXPORT_MAX, (unsigned long long)start, (unsigned long long)end);
		free(note);
		return ALLOT_E_INVALID;
	}
	if (since > cp.size) {
		snprintf(msg, msgsz, "since (%llu) is beyond the log size (%llu)",
			 (unsigned long long)since, (unsigned long long)cp.size);
		free(note);
		return ALLOT_E_INVALID;
	}
	/* Read in chunks, so that a large export never holds the store (and
	 * with it ingestion) for long. */
	json_t *entries = json_array();
	for (uint64_t at = start; at < end && !e; at += LEDGERLOG_EXPORT_CHUNK) {
		json_t *part = NULL;
		uint64_t to = end - at > LEDGERLOG_EXPORT_CHUNK ? at + LEDGERLOG_EXPORT_CHUNK : end;
		if (!(e = ledgerlog_entries(l->st, at, to, true, &part)))
			json_array_extend(entries, part);
		json_decref(part);
	}
	if (e) {
		snprintf(msg, msgsz, "the log could not be read");
		json_decref(entries);
		free(note);
		return e;
	}
	size_t i;
	json_t *ent;
	json_array_foreach(entries, i, ent) {
		uint64_t idx = (uint64_t)json_integer_value(json_object_get(ent, "leaf_index"));
		struct merkle_proof p;
		uint8_t leaf[MERKLE_HASH_LEN];
		e = store_tlog_inclusion(l->st, idx, cp.size, leaf, &p);
		if (e == ALLOT_E_NOT_FOUND) {
			/* A node is gone from the database: export what there is; the
			 * verifier reports the damage. */
			json_object_set_new(ent, "proof", json_null());
			e = ALLOT_OK;
			continue;
		}
		if (e)
			break;
		json_object_set_new(ent, "proof", ledgerlog_proof_json(&p));
	}
	char root[48];
	b64_encode(cp.root, MERKLE_HASH_LEN, root);
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:o}", "format",
			      LEDGERLOG_EXPORT_FORMAT, "origin", l->origin, "vkey", l->vkey,
			      "checkpoint", note, "size", (json_int_t)cp.size, "root", root, "start",
			      (json_int_t)start, "end", (json_int_t)end, "entries", entries);
	free(note);
	if (!e && since > 0) {
		struct merkle_proof p;
		if (!(e = store_tlog_consistency(l->st, since, cp.size, &p)))
			json_object_set_new(j, "consistency", json_pack("{s:I,s:I,s:o}", "from",
				(json_int_t)since, "to", (json_int_t)cp.size, "proof",
				ledgerlog_proof_json(&p)));
	}
	if (e) {
		snprintf(msg, msgsz, "a proof could not be built");
		json_decref(j);
		return e;
	}
	*out = j;
	return ALLOT_OK;
}

allot_err ledgerlog_annotate_usage(struct ledgerlog *l, json_t *rows, bool proofs,
				   const struct checkpoint *cp)
{
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) {
		int64_t idx;
		allot_err e = ALLOT_OK;
		json_t *have = json_object_get(r, "leaf_index"); /* listed with the row */
		if (json_is_integer(have))
			idx = json_integer_value(have);
		else
			e = store_tlog_leaf_of(l->st, "usage",
						     json_integer_value(json_object_get(r, "id")), &idx);
		if (e == ALLOT_E_NOT_FOUND) {
			json_object_set_new(r, "leaf_index", json_null());
			continue;
		}
		if (e)
			return e;
		json_object_set_new(r, "leaf_index", json_integer(idx));
		if (!proofs || !cp || (uint64_t)idx >= cp->size)
			continue;
		struct merkle_proof p;
		uint8_t leaf[MERKLE_HASH_LEN];
		if ((e = store_tlog_inclusion(l->st, (uint64_t)idx, cp->size, leaf, &p)))
			return e;
		json_object_set_new(r, "proof", ledgerlog_proof_json(&p));
	}
	return ALLOT_OK;
}
