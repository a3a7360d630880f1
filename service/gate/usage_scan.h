/* usage_scan.h — the "usage" object of an upstream reply, read without
 * building a JSON tree.
 *
 * An OpenAI-compatible reply (or SSE chunk) is scanned once: every value is
 * checked and skipped, and prompt_tokens / completion_tokens are taken from
 * the top-level "usage" object (the last one, as a JSON parser keeping the
 * last of repeated keys does).  The scanner knows only the plain subset of
 * JSON: ASCII text, escapes other than \u, integers of at most 18 digits,
 * nesting up to USAGE_SCAN_MAX_DEPTH, keys without escapes at the levels it
 * reads.  Anything else (a fraction, an exponent, \u, a non-ASCII byte, a
 * syntax error) answers USAGE_SCAN_UNSURE, and the caller parses the text
 * with jansson instead; on the plain subset the answer is jansson's
 * (tests/unit/test_usage_scan.c and tests/fuzz/fuzz_usage.c compare them).
 */
#ifndef ALLOT_GATE_USAGE_SCAN_H
#define ALLOT_GATE_USAGE_SCAN_H

#include <stddef.h>

#define USAGE_SCAN_MAX_DEPTH 32

enum usage_scan {
	USAGE_SCAN_NONE,    /* a JSON object without a usable usage */
	USAGE_SCAN_FOUND,   /* *prompt and *completion set */
	USAGE_SCAN_UNSURE,  /* outside the plain subset: parse it instead */
};

/* Usable: "usage" is an object whose "prompt_tokens" and
 * "completion_tokens" are integers in [0, 2^30). */
enum usage_scan usage_scan(const char *text, size_t len, int *prompt, int *completion);

#endif
