/* json.h — strict JSON input on top of jansson.
 *
 * Every JSON body allot accepts goes through json_parse: duplicate keys, NUL
 * bytes (raw or \u0000), invalid UTF-8 and nesting deeper than JSON_MAX_DEPTH
 * are rejected.  The field helpers give one clear message per mistake:
 * unknown field, missing field, wrong type, out of range.
 */
#ifndef ALLOT_COMMON_JSON_H
#define ALLOT_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"

/* Nesting allowed in request bodies: records are 2 levels deep; 64 is ample
 * and keeps recursion in jansson and our walkers bounded. */
#define JSON_MAX_DEPTH 64

/* Parses len bytes.  OUT: *out (caller owns, json_decref) on ALLOT_OK.
 * any_value: accept any top-level value, else only an object. */
allot_err json_parse(const char *buf, size_t len, bool any_value, json_t **out,
		     char *msg, size_t msgsz);

/* Fails with "unknown field \"x\"" when obj has a key not in allowed
 * (NULL-terminated). */
allot_err json_only_fields(const json_t *obj, const char *const allowed[], char *msg,
			   size_t msgsz);

/* Getters: required fields must be present and of the type; optional ones may
 * be absent or null (then *out is left unchanged and *present false). */
allot_err json_get_str(const json_t *obj, const char *key, bool required,
		       const char **out, char *msg, size_t msgsz);
allot_err json_get_int(const json_t *obj, const char *key, bool required,
		       int64_t min, int64_t max, int64_t *out, char *msg, size_t msgsz);
allot_err json_get_bool(const json_t *obj, const char *key, bool required, bool *out,
			char *msg, size_t msgsz);
/* Number (integer or real) as double; for sampling parameters only. */
allot_err json_get_num(const json_t *obj, const char *key, bool required, double min,
		       double max, double *out, char *msg, size_t msgsz);

/* Appends s[0..n) as a JSON string exactly as jansson's json_dumps writes
 * it (without JSON_ENSURE_ASCII): '"', '\\' and control characters
 * escaped (\b \f \n \r \t, else \u00XX), everything else raw.  s must be
 * valid UTF-8 (json_utf8_ok). */
void json_write_str(struct buf *b, const char *s, size_t n);
/* Whether s[0..n) is UTF-8 that jansson accepts in a string. */
bool json_utf8_ok(const char *s, size_t n);

/* Serialises compactly with sorted keys (deterministic).  Caller frees. */
char *json_dump_sorted(const json_t *j);

#endif
