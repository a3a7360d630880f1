/* jsong.h — a JSON grammar as a byte-level pushdown automaton, for
 * constrained sampling (response_format json_object / json_schema).
 *
 * A struct jsong is a parser state small enough to copy per candidate
 * token: jsong_feed() advances it over bytes and says whether they are
 * still a prefix of a valid document; jsong_complete() whether the document
 * may end here; jsong_dist() how many bytes at least are needed to finish
 * it (the engine uses it to close the document before the token budget
 * runs out).
 *
 * Two modes.  Generation (gen = true): the root is an object (the schema's,
 * or any object for json_object), at most JSONG_MAX_WS white-space bytes in
 * a row, nothing after the root's closing brace, no \u escapes, numbers of
 * at most 15 integer and 15 fraction digits and 2 exponent digits (so every
 * document also parses with jansson and JavaScript without overflow).
 * Validation (gen = false): RFC 8259 exactly (any root value, any white
 * space), for the JSONTestSuite corpus test.
 *
 * A schema (jsong_schema_compile) is the subset of JSON Schema that
 * infer_schema_check() documents; keys are generated in the order of
 * "properties", optional ones may be skipped, no others appear.
 * Schemas are immutable after compilation and may be shared by threads.
 */
#ifndef ALLOT_INFER_JSONG_H
#define ALLOT_INFER_JSONG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Nesting of the document (generation and validation). */
#define JSONG_MAX_DEPTH 32
/* Nesting of a schema: well within JSONG_MAX_DEPTH. */
#define JSONG_MAX_SCHEMA_DEPTH 12
/* Properties per object and values per enum (an alive set is a 64-bit
 * mask). */
#define JSONG_MAX_ALT 64
/* White-space bytes in a row in generation mode (indentation of a
 * pretty-printed document fits; endless blank lines do not). */
#define JSONG_MAX_WS 4

struct jsong_node;
struct jsong_schema;

struct jsong_frame {
	const struct jsong_node *node;
	uint64_t alive;    /* enum values / keys still matching */
	uint32_t pos;      /* bytes matched of a literal or key */
	uint16_t cur;      /* object: the property whose value is being written */
	uint16_t idx;      /* object: first property still allowed */
	uint8_t kind, st;
	uint8_t need, lo, hi; /* string: UTF-8 continuation bytes to come */
	uint8_t cnt;       /* number: digits in this part; string: \u hex digits */
};

struct jsong {
	bool gen;
	uint8_t ws;        /* white-space bytes in a row */
	int depth;         /* frames in use */
	struct jsong_frame f[JSONG_MAX_DEPTH];
};

/* schema[0..len) (JSON text) to a compiled schema.  OUT: *out (free with
 * jsong_schema_free) on ALLOT_OK; else msg says what is wrong, with
 * ALLOT_E_INVALID (not JSON, not a schema) or ALLOT_E_UNSUPPORTED (a
 * keyword outside the subset). */
allot_err jsong_schema_compile(const char *schema, size_t len, struct jsong_schema **out,
			       char *msg, size_t msgsz);
void jsong_schema_free(struct jsong_schema *s);

/* s NULL: any object (gen) or any value (validation). */
void jsong_init(struct jsong *g, const struct jsong_schema *s, bool gen);
/* Copies only the frames in use. */
void jsong_copy(struct jsong *dst, const struct jsong *src);
/* Advances over p[0..n); false: not a prefix of a valid document (then *g
 * is unspecified: feed a copy). */
bool jsong_feed(struct jsong *g, const char *p, size_t n);
/* Whether the bytes fed so far are a whole document. */
bool jsong_complete(const struct jsong *g);
/* Fewest bytes that complete the document (0 when complete). */
int jsong_dist(const struct jsong *g);

#endif
