/* json.c — strict JSON parsing and field access. */
#include "common/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int json_depth_ok(const json_t *j, int depth)
{
	if (depth > JSON_MAX_DEPTH)
		return 0;
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)j, k, v)
			if (!json_depth_ok(v, depth + 1))
				return 0;
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
			if (!json_depth_ok(v, depth + 1))
				return 0;
	}
	return 1;
}

/* A cheap pre-scan so hostile nesting never reaches jansson's recursion. */
static int json_nesting_ok(const char *buf, size_t len)
{
	int depth = 0;
	bool in_str = false, esc = false;
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"')
			in_str = true;
		else if (c == '[' || c == '{') {
			if (++depth > JSON_MAX_DEPTH)
				return 0;
		} else if (c == ']' || c == '}')
			depth--;
	}
	return 1;
}

allot_err json_parse(const char *buf, size_t len, bool any_value, json_t **out,
		     char *msg, size_t msgsz)
{
	json_error_t jerr;
	json_t *j;

	if (memchr(buf, '\0', len)) {
		snprintf(msg, msgsz, "body contains a NUL byte");
		return ALLOT_E_INVALID;
	}
	if (!json_nesting_ok(buf, len)) {
		snprintf(msg, msgsz, "JSON nested deeper than %d levels", JSON_MAX_DEPTH);
		return ALLOT_E_INVALID;
	}
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!j) {
		snprintf(msg, msgsz, "malformed JSON at line %d column %d: %s", jerr.line,
			 jerr.column, jerr.text);
		return ALLOT_E_INVALID;
	}
	if (!json_depth_ok(j, 0)) {
		json_decref(j);
		snprintf(msg, msgsz, "JSON nested deeper than %d levels", JSON_MAX_DEPTH);
		return ALLOT_E_INVALID;
	}
	if (!any_value && !json_is_object(j)) {
		json_decref(j);
		snprintf(msg, msgsz, "expected a JSON object");
		return ALLOT_E_INVALID;
	}
	*out = j;
	return ALLOT_OK;
}

allot_err json_only_fields(const json_t *obj, const char *const allowed[], char *msg,
			   size_t msgsz)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(k, allowed[i]) == 0) {
				ok = true;
				break;
			}
		if (!ok) {
			snprintf(msg, msgsz, "unknown field \"%.64s\"", k);
			return ALLOT_E_INVALID;
		}
	}
	return ALLOT_OK;
}

static allot_err json_lookup(const json_t *obj, const char *key, bool required,
			     json_t **v, char *msg, size_t msgsz)
{
	*v = json_object_get(obj, key);
	if (!*v || json_is_null(*v)) {
		*v = NULL;
		if (required) {
			snprintf(msg, msgsz, "missing field \"%s\"", key);
			return ALLOT_E_INVALID;
		}
	}
	return ALLOT_OK;
}

allot_err json_get_str(const json_t *obj, const char *key, bool required,
		       const char **out, char *msg, size_t msgsz)
{
	json_t *v;
	allot_err e = json_lookup(obj, key, required, &v, msg, msgsz);
	if (e || !v)
		return e;
	if (!json_is_string(v)) {
		snprintf(msg, msgsz, "field \"%s\" must be a string", key);
		return ALLOT_E_INVALID;
	}
	*out = json_string_value(v);
	return ALLOT_OK;
}

allot_err json_get_int(const json_t *obj, const char *key, bool required,
		       int64_t min, int64_t max, int64_t *out, char *msg, size_t msgsz)
{
	json_t *v;
	allot_err e = json_lookup(obj, key, required, &v, msg, msgsz);
	if (e || !v)
		return e;
	if (!json_is_integer(v)) {
		snprintf(msg, msgsz, "field \"%s\" must be an integer", key);
		return ALLOT_E_INVALID;
	}
	json_int_t x = json_integer_value(v);
	if (x < min || x > max) {
		snprintf(msg, msgsz, "field \"%s\" must be between %lld and %lld", key,
			 (long long)min, (long long)max);
		return ALLOT_E_INVALID;
	}
	*out = x;
	return ALLOT_OK;
}

allot_err json_get_bool(const json_t *obj, const char *key, bool required, bool *out,
			char *msg, size_t msgsz)
{
	json_t *v;
	allot_err e = json_lookup(obj, key, required, &v, msg, msgsz);
	if (e || !v)
		return e;
	if (!json_is_boolean(v)) {
		snprintf(msg, msgsz, "field \"%s\" must be true or false", key);
		return ALLOT_E_INVALID;
	}
	*out = json_is_true(v);
	return ALLOT_OK;
}

allot_err json_get_num(const json_t *obj, const char *key, bool required, double min,
		       double max, double *out, char *msg, size_t msgsz)
{
	json_t *v;
	allot_err e = json_lookup(obj, key, required, &v, msg, msgsz);
	if (e || !v)
		return e;
	if (!json_is_number(v)) {
		snprintf(msg, msgsz, "field \"%s\" must be a number", key);
		return ALLOT_E_INVALID;
	}
	double x = json_number_value(v);
	if (!isfinite(x) || x < min || x > max) {
		snprintf(msg, msgsz, "field \"%s\" must be between %g and %g", key, min, max);
		return ALLOT_E_INVALID;
	}
	*out = x;
	return ALLOT_OK;
}

char *json_dump_sorted(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

void json_write_str(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	buf_putc(b, '"');
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_append(b, s + run, i - run);
		run = i + 1;
		char e[6] = {'\\', (char)c, 0, 0, 0, 0};
		size_t en = 2;
		switch (c) {
		case '"': case '\\': break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		default:
			memcpy(e + 1, "u00", 3);
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			en = 6;
		}
		buf_append(b, e, en);
	}
	buf_append(b, s + run, n - run);
	buf_putc(b, '"');
}

bool json_utf8_ok(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (unsigned char)s[i] < 0x80)
		i++;
	if (i == n)
		return true;
	/* rare: let jansson decide, with its own rules */
	json_t *j = json_stringn(s, n);
	json_decref(j);
	return j != NULL;
}
