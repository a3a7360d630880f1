/* usage_scan.c — the "usage" object of an upstream reply without a JSON
 * tree (see usage_scan.h for the subset it reads and why). */
#include "gate/usage_scan.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct sc {
	const char *p, *end;
};

/* Reads a member's value itself; false: outside the subset. */
typedef bool (*member_fn)(void *ctx, const char *key, size_t n, struct sc *s, int depth);

static bool value(struct sc *s, int depth);

static void ws(struct sc *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* At '"': the raw bytes between the quotes; *plain when there is no escape. */
static bool str(struct sc *s, const char **out, size_t *n, bool *plain)
{
	const char *p = s->p + 1;
	*plain = true;
	*out = p;
	for (; p < s->end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"') {
			*n = (size_t)(p - *out);
			s->p = p + 1;
			return true;
		}
		if (c < 0x20 || c >= 0x80)
			return false;
		if (c == '\\') {
			if (++p >= s->end || *p == '\0' || !strchr("\"\\/bfnrt", *p))
				return false; /* \u, or not an escape */
			*plain = false;
		}
	}
	return false;
}

/* An integer of at most 18 digits (no fraction, no exponent). */
static bool num(struct sc *s, int64_t *v)
{
	const char *p = s->p;
	bool neg = p < s->end && *p == '-';
	if (neg)
		p++;
	const char *d = p;
	int64_t x = 0;
	for (; p < s->end && *p >= '0' && *p <= '9'; p++) {
		if (p - d >= 18)
			return false;
		x = x * 10 + (*p - '0');
	}
	size_t nd = (size_t)(p - d);
	if (nd == 0 || (nd > 1 && *d == '0'))
		return false;
	if (p < s->end && (*p == '.' || *p == 'e' || *p == 'E'))
		return false;
	*v = neg ? -x : x;
	s->p = p;
	return true;
}

static bool lit(struct sc *s, const char *w, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
		return false;
	s->p += n;
	return true;
}

/* At '{': members, each value read by fn (keys must then be plain) or
 * skipped. */
static bool object(struct sc *s, int depth, member_fn fn, void *ctx)
{
	if (depth > USAGE_SCAN_MAX_DEPTH)
		return false;
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return true;
	}
	for (;;) {
		ws(s);
		const char *k;
		size_t kn;
		bool plain;
		if (s->p >= s->end || *s->p != '"' || !str(s, &k, &kn, &plain) || (fn && !plain))
			return false;
		ws(s);
		if (s->p >= s->end || *s->p != ':')
			return false;
		s->p++;
		ws(s);
		if (!(fn ? fn(ctx, k, kn, s, depth) : value(s, depth)))
			return false;
		ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == '}') {
			s->p++;
			return true;
		}
		if (*s->p++ != ',')
			return false;
	}
}

static bool array(struct sc *s, int depth)
{
	if (depth > USAGE_SCAN_MAX_DEPTH)
		return false;
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return true;
	}
	for (;;) {
		ws(s);
		if (!value(s, depth))
			return false;
		ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == ']') {
			s->p++;
			return true;
		}
		if (*s->p++ != ',')
			return false;
	}
}

static bool value(struct sc *s, int depth)
{
	const char *t;
	size_t n;
	bool plain;
	int64_t v;
	if (s->p >= s->end)
		return false;
	switch (*s->p) {
	case '{':
		return object(s, depth + 1, NULL, NULL);
	case '[':
		return array(s, depth + 1);
	case '"':
		return str(s, &t, &n, &plain);
	case 't':
		return lit(s, "true", 4);
	case 'f':
		return lit(s, "false", 5);
	case 'n':
		return lit(s, "null", 4);
	default:
		return num(s, &v);
	}
}

/* The last "usage" member, and in it the last of each count: a parser
 * that keeps the last of repeated keys ends with these. */
struct usage_st {
	bool is_obj, p_int, c_int;
	int64_t p, c;
};

static bool usage_member(void *ctx, const char *k, size_t n, struct sc *s, int depth)
{
	struct usage_st *u = ctx;
	int64_t *dst;
	bool *is_int;
	if (n == 13 && memcmp(k, "prompt_tokens", 13) == 0) {
		dst = &u->p;
		is_int = &u->p_int;
	} else if (n == 17 && memcmp(k, "completion_tokens", 17) == 0) {
		dst = &u->c;
		is_int = &u->c_int;
	} else {
		return value(s, depth);
	}
	*is_int = s->p < s->end && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'));
	return *is_int ? num(s, dst) : value(s, depth);
}

static bool top_member(void *ctx, const char *k, size_t n, struct sc *s, int depth)
{
	struct usage_st *u = ctx;
	if (n != 5 || memcmp(k, "usage", 5) != 0)
		return value(s, depth);
	memset(u, 0, sizeof *u); /* a later "usage" replaces an earlier one */
	u->is_obj = s->p < s->end && *s->p == '{';
	return u->is_obj ? object(s, depth + 1, usage_member, u) : value(s, depth);
}

enum usage_scan usage_scan(const char *text, size_t len, int *prompt, int *completion)
{
	struct sc s = {text, text + len};
	struct usage_st u = {0};
	ws(&s);
	if (s.p >= s.end || *s.p != '{' || !object(&s, 1, top_member, &u))
		return USAGE_SCAN_UNSURE;
	ws(&s);
	if (s.p != s.end)
		return USAGE_SCAN_UNSURE;
	if (!u.is_obj || !u.p_int || !u.c_int || u.p < 0 || u.c < 0 || u.p >= (1 << 30) ||
	    u.c >= (1 << 30))
		return USAGE_SCAN_NONE;
	*prompt = (int)u.p;
	*completion = (int)u.c;
	return USAGE_SCAN_FOUND;
}
