/* fuzz_usage.c — differential libFuzzer target for the upstream usage
 * scanner (gate/usage_scan.c) against jansson, the parser the gate falls
 * back to.  Whenever the scanner answers (found or none), jansson must
 * give the same answer and the same counts.  Any difference aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "gate/usage_scan.h"

static int ref_usage(const char *text, size_t len, int *prompt, int *completion)
{
	json_t *j = json_loadb(text, len, 0, NULL);
	json_t *u = json_object_get(j, "usage");
	int ok = 0;
	if (json_is_object(u)) {
		json_t *p = json_object_get(u, "prompt_tokens"), *c = json_object_get(u, "completion_tokens");
		if (json_is_integer(p) && json_is_integer(c) && json_integer_value(p) >= 0 &&
		    json_integer_value(c) >= 0 && json_integer_value(p) < (1 << 30) &&
		    json_integer_value(c) < (1 << 30)) {
			*prompt = (int)json_integer_value(p);
			*completion = (int)json_integer_value(c);
			ok = 1;
		}
	}
	json_decref(j);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int p = -1, c = -1, rp = -1, rc = -1;
	enum usage_scan r = usage_scan((const char *)data, size, &p, &c);
	if (r == USAGE_SCAN_UNSURE)
		return 0;
	int want = ref_usage((const char *)data, size, &rp, &rc);
	if ((r == USAGE_SCAN_FOUND) != want || (want && (p != rp || c != rc))) {
		fprintf(stderr, "fuzz_usage: scanner %d (%d, %d), jansson %d (%d, %d)\n", (int)r, p, c,
			want, rp, rc);
		abort();
	}
	return 0;
}
