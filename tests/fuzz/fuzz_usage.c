/* fuzz_usage.c — differential libFuzzer target for the upstream usage
 * scanner (gate/usage_scan.c) against upstream_usage_parse (jansson), the
 * parser the gate falls back to.  Whenever the scanner answers (found or
 * none), jansson must give the same answer and the same counts.  Any
 * difference aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gate/upstream.h"
#include "gate/usage_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int p = -1, c = -1, rp = -1, rc = -1;
	enum usage_scan r = usage_scan((const char *)data, size, &p, &c);
	if (r == USAGE_SCAN_UNSURE)
		return 0;
	int want = upstream_usage_parse((const char *)data, size, &rp, &rc);
	if ((r == USAGE_SCAN_FOUND) != want || (want && (p != rp || c != rc))) {
		fprintf(stderr, "fuzz_usage: scanner %d (%d, %d), jansson %d (%d, %d)\n", (int)r, p, c,
			want, rp, rc);
		abort();
	}
	return 0;
}
