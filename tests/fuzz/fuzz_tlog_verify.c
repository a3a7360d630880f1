/* fuzz_tlog_verify.c — libFuzzer target over `allot log verify`'s input:
 * an export (JSON) checked by tlog_verify_export().  So that the fuzzer gets
 * past the signature, the export's checkpoint body (whatever it says) is
 * re-signed with the target's own key before verification; everything else
 * (shape, leaf recomputation from the entries, proofs, the consistency
 * proof, an earlier checkpoint taken from the "since" field) is the
 * untrusted input.  Invariant: verification never crashes, and a success
 * reports as many checked entries as the export holds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto/ed25519.h"
#include "tlog/checkpoint.h"
#include "tlog/verify.h"

static struct ed25519_keypair key;
static char pub[ED25519_PUB_TEXT_MAX];

/* Re-signs the checkpoint body of note (text before the blank line) with
 * the fuzz key; NULL when it does not parse as a checkpoint. */
static char *resign(const char *note)
{
	const char *end = note ? strstr(note, "\n\n") : NULL;
	if (!end)
		return NULL;
	struct checkpoint c;
	if (checkpoint_parse(note, (size_t)(end - note) + 1, &c, NULL, 0))
		return NULL;
	char *out = NULL;
	size_t len;
	if (checkpoint_sign(&c, &key, &out, &len, NULL, 0))
		return NULL;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	if (!init) {
		uint8_t seed[32];
		memset(seed, 7, sizeof seed);
		ed25519_from_seed(seed, &key);
		ed25519_pub_format(key.pub, pub);
		init = 1;
	}
	json_t *x = json_loadb((const char *)data, size, 0, NULL);
	if (!x)
		return 0;
	char *cp = resign(json_string_value(json_object_get(x, "checkpoint")));
	if (cp)
		json_object_set_new(x, "checkpoint", json_string(cp));
	char *since = resign(json_string_value(json_object_get(x, "since")));
	struct tlog_verify_report rep;
	allot_err e = tlog_verify_export(x, pub, since, since ? strlen(since) : 0, &rep);
	if (e == ALLOT_OK) {
		const json_t *arr = json_object_get(x, "entries");
		if (!arr)
			arr = json_object_get(x, "records");
		if (rep.checked != json_array_size(arr))
			abort();
	}
	free(cp);
	free(since);
	json_decref(x);
	return 0;
}
