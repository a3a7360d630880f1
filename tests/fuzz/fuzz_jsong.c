/* fuzz_jsong.c — libFuzzer target for the JSON grammar of constrained
 * sampling.  The first byte picks what the rest is:
 *   0: a document in generation mode (json_object); whatever the automaton
 *      accepts as complete must parse with jansson as an object, and its
 *      distance to completion must be 0 exactly then;
 *   1: a JSON schema for jsong_schema_compile (never crash or leak; when it
 *      compiles, a document's prefixes are fed through it);
 *   2: a document in validation mode (no crash; complete implies dist 0).
 * Seeds: tests/fuzz/corpus/fuzz_jsong/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "infer/jsong.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void feed_all(const struct jsong_schema *s, bool gen, const char *p, size_t n, bool check_jansson)
{
	struct jsong g;
	size_t i;

	jsong_init(&g, s, gen);
	for (i = 0; i < n; i++) {
		if (!jsong_feed(&g, p + i, 1))
			return;
		if (jsong_dist(&g) < 0 || (jsong_complete(&g) != (jsong_dist(&g) == 0) && gen))
			abort();
	}
	if (check_jansson && jsong_complete(&g)) {
		json_error_t e;
		json_t *j = json_loadb(p, n, 0, &e);

		if (!j || !json_is_object(j))
			abort();
		json_decref(j);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsong_schema *s = NULL;
	char msg[256];

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		feed_all(NULL, true, (const char *)data + 1, size - 1, true);
		break;
	case 1: {
		const uint8_t *sep = memchr(data + 1, 0, size - 1);
		size_t slen = sep ? (size_t)(sep - data - 1) : size - 1;

		if (jsong_schema_compile((const char *)data + 1, slen, &s, msg, sizeof msg) == 0 && sep)
			feed_all(s, true, (const char *)sep + 1, size - 1 - slen - 1, true);
		jsong_schema_free(s);
		break;
	}
	default:
		feed_all(NULL, false, (const char *)data + 1, size - 1, false);
		break;
	}
	return 0;
}
