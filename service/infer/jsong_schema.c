/* jsong_schema.c — compiling the supported subset of JSON Schema into the
 * nodes the grammar automaton follows (jsong.c).
 *
 * Supported: "type" object (with "properties", "required",
 * "additionalProperties": false), array (with "items"), string, number,
 * integer, boolean, null; "enum" and "const" of scalars; the annotations
 * listed in annotation[] are ignored.  Anything else is refused by name
 * with the path where it appears, so that a client is never silently given
 * output its schema does not describe.
 */
#include "infer/jsong.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "infer/jsong_int.h"

static const char *const annotation[] = {
	"title", "description", "$schema", "$id", "$comment", "default", "examples", NULL,
};

struct cctx {
	char *msg;
	size_t msgsz;
	char path[256];
};

static void node_free(struct jsong_node *n)
{
	if (!n)
		return;
	for (int i = 0; i < n->n; i++) {
		free(n->lit ? n->lit[i] : NULL);
		if (n->val)
			node_free(n->val[i]);
	}
	free(n->lit);
	free(n->len);
	free(n->val);
	free(n->req);
	free(n->rreq);
	free(n->nreq);
	node_free(n->items);
	free(n);
}

static bool is_annotation(const char *k)
{
	for (int i = 0; annotation[i]; i++)
		if (strcmp(k, annotation[i]) == 0)
			return true;
	return false;
}

static allot_err fail(struct cctx *c, allot_err e, const char *what, const char *key)
{
	snprintf(c->msg, c->msgsz, "%s%s%s (at %s)", key ? "\"" : "", key ? key : "",
		 what, c->path[0] ? c->path : "the root");
	return e;
}

/* Every key of s must be an annotation or one of allowed (NULL-ended). */
static allot_err only_keys(struct cctx *c, json_t *s, const char *const *allowed)
{
	const char *k;
	json_t *v;

	json_object_foreach(s, k, v) {
		bool ok = is_annotation(k);

		for (int i = 0; !ok && allowed[i]; i++)
			ok = strcmp(k, allowed[i]) == 0;
		if (!ok)
			return fail(c, ALLOT_E_UNSUPPORTED, "\" is not supported", k);
	}
	return ALLOT_OK;
}

static allot_err compile(struct cctx *c, json_t *s, int depth, struct jsong_node **out);

static allot_err compile_enum(struct cctx *c, json_t *vals, struct jsong_node *n)
{
	size_t i;
	json_t *v;

	if (!json_is_array(vals) || json_array_size(vals) == 0 || json_array_size(vals) > JSONG_MAX_ALT)
		return fail(c, ALLOT_E_INVALID, "\" must be an array of 1 to 64 values", "enum");
	n->type = JT_ENUM;
	n->n = 0;
	n->lit = calloc(json_array_size(vals), sizeof *n->lit);
	n->len = calloc(json_array_size(vals), sizeof *n->len);
	if (!n->lit || !n->len)
		return ALLOT_E_NOMEM;
	json_array_foreach(vals, i, v) {
		if (json_is_object(v) || json_is_array(v))
			return fail(c, ALLOT_E_UNSUPPORTED, "\" of objects or arrays is not supported", "enum");
		n->lit[i] = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		if (!n->lit[i])
			return ALLOT_E_NOMEM;
		n->len[i] = strlen(n->lit[i]);
		n->n = (int)i + 1;
		if (!n->min || (int)n->len[i] < n->min)
			n->min = (int)n->len[i];
	}
	return ALLOT_OK;
}

static bool name_ok(const char *k)
{
	for (const unsigned char *p = (const unsigned char *)k; *p; p++)
		if (*p < 0x20 || *p == '"' || *p == '\\' || *p == 0x7f)
			return false;
	return true;
}

static allot_err compile_props(struct cctx *c, json_t *s, int depth, struct jsong_node *n)
{
	json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required"), *v;
	size_t np = props ? json_object_size(props) : 0, plen = strlen(c->path), i = 0;
	const char *k;
	allot_err e;

	if (props && !json_is_object(props))
		return fail(c, ALLOT_E_INVALID, "\" must be an object", "properties");
	if (np > JSONG_MAX_ALT)
		return fail(c, ALLOT_E_UNSUPPORTED, "\": more than 64 are not supported", "properties");
	n->lit = calloc(np + 1, sizeof *n->lit);
	n->len = calloc(np + 1, sizeof *n->len);
	n->val = calloc(np + 1, sizeof *n->val);
	n->req = calloc(np + 1, sizeof *n->req);
	if (!n->lit || !n->len || !n->val || !n->req)
		return ALLOT_E_NOMEM;
	/* jansson keeps insertion order: the order of the schema text */
	if (props)
		json_object_foreach(props, k, v) {
			if (!name_ok(k))
				return fail(c, ALLOT_E_UNSUPPORTED,
					    "\": property names with quotes, backslashes or control characters are not supported", k);
			n->lit[i] = strdup(k);
			if (!n->lit[i])
				return ALLOT_E_NOMEM;
			n->len[i] = strlen(k);
			n->n = (int)i + 1;
			snprintf(c->path + plen, sizeof c->path - plen, "%sproperties.%s", plen ? "." : "", k);
			e = compile(c, v, depth + 1, &n->val[i]);
			c->path[plen] = 0;
			if (e)
				return e;
			i++;
		}
	if (req) {
		size_t r;

		if (!json_is_array(req))
			return fail(c, ALLOT_E_INVALID, "\" must be an array of property names", "required");
		json_array_foreach(req, r, v) {
			int found = -1;

			for (int p = 0; json_is_string(v) && p < n->n; p++)
				if (strcmp(n->lit[p], json_string_value(v)) == 0)
					found = p;
			if (found < 0 || n->req[found])
				return fail(c, ALLOT_E_INVALID,
					    "\" must list distinct names of \"properties\"", "required");
			n->req[found] = true;
		}
	}
	return ALLOT_OK;
}

static allot_err compile_object(struct cctx *c, json_t *s, int depth, struct jsong_node *n)
{
	static const char *const keys[] = {"type", "properties", "required", "additionalProperties", NULL};
	json_t *ap = json_object_get(s, "additionalProperties");
	allot_err e;

	if ((e = only_keys(c, s, keys)))
		return e;
	if (ap && !json_is_false(ap))
		return fail(c, ALLOT_E_UNSUPPORTED, "\" other than false is not supported", "additionalProperties");
	n->type = JT_OBJECT;
	if ((e = compile_props(c, s, depth, n)))
		return e;
	n->rreq = calloc((size_t)n->n + 1, sizeof *n->rreq);
	n->nreq = calloc((size_t)n->n + 1, sizeof *n->nreq);
	if (!n->rreq || !n->nreq)
		return ALLOT_E_NOMEM;
	for (int i = n->n - 1; i >= 0; i--) {
		n->rreq[i] = n->rreq[i + 1] + (n->req[i] ? 1 + jsong_member_min(n, i) : 0);
		n->nreq[i] = n->nreq[i + 1] + n->req[i];
	}
	n->min = 2 + (n->nreq[0] ? n->rreq[0] - 1 : 0);
	return ALLOT_OK;
}

static allot_err compile(struct cctx *c, json_t *s, int depth, struct jsong_node **out)
{
	static const char *const scalar_keys[] = {"type", NULL};
	static const char *const enum_keys[] = {"type", "enum", NULL};
	static const char *const const_keys[] = {"type", "const", NULL};
	static const char *const array_keys[] = {"type", "items", NULL};
	struct jsong_node *n;
	const char *t;
	allot_err e;

	*out = NULL;
	if (!json_is_object(s))
		return fail(c, ALLOT_E_INVALID, "a schema must be an object", NULL);
	if (depth > JSONG_MAX_SCHEMA_DEPTH)
		return fail(c, ALLOT_E_UNSUPPORTED, "schemas nested deeper than 12 levels are not supported", NULL);
	n = calloc(1, sizeof *n);
	if (!n)
		return ALLOT_E_NOMEM;
	*out = n;
	t = json_string_value(json_object_get(s, "type"));
	if (json_object_get(s, "type") && !t)
		return fail(c, ALLOT_E_UNSUPPORTED, "\" must be one type name (type lists are not supported)", "type");
	if (json_object_get(s, "enum")) {
		if ((e = only_keys(c, s, enum_keys)))
			return e;
		return compile_enum(c, json_object_get(s, "enum"), n);
	}
	if (json_object_get(s, "const")) {
		json_t *one = json_pack("[O]", json_object_get(s, "const"));

		if (!one)
			return ALLOT_E_NOMEM;
		e = only_keys(c, s, const_keys);
		if (!e)
			e = compile_enum(c, one, n);
		json_decref(one);
		return e;
	}
	if (!t) {
		e = only_keys(c, s, scalar_keys);
		return e ? e : fail(c, ALLOT_E_UNSUPPORTED, "a schema without \"type\", \"enum\" or \"const\" is not supported", NULL);
	}
	if (strcmp(t, "object") == 0)
		return compile_object(c, s, depth, n);
	if (strcmp(t, "array") == 0) {
		json_t *items = json_object_get(s, "items");
		size_t plen = strlen(c->path);

		if ((e = only_keys(c, s, array_keys)))
			return e;
		n->type = JT_ARRAY;
		n->min = 2;
		if (!items)
			return ALLOT_OK;
		snprintf(c->path + plen, sizeof c->path - plen, "%sitems", plen ? "." : "");
		e = compile(c, items, depth + 1, &n->items);
		c->path[plen] = 0;
		return e;
	}
	if ((e = only_keys(c, s, scalar_keys)))
		return e;
	if (strcmp(t, "string") == 0) {
		n->type = JT_STRING;
		n->min = 2;
	} else if (strcmp(t, "number") == 0 || strcmp(t, "integer") == 0) {
		n->type = t[0] == 'n' ? JT_NUMBER : JT_INTEGER;
		n->min = 1;
	} else if (strcmp(t, "boolean") == 0 || strcmp(t, "null") == 0) {
		json_t *vals = t[0] == 'b' ? json_pack("[bb]", 1, 0) : json_pack("[n]");

		if (!vals)
			return ALLOT_E_NOMEM;
		e = compile_enum(c, vals, n);
		json_decref(vals);
		return e;
	} else {
		return fail(c, ALLOT_E_INVALID, "\" is not a JSON Schema type", t);
	}
	return ALLOT_OK;
}

allot_err jsong_schema_compile(const char *schema, size_t len, struct jsong_schema **out,
			       char *msg, size_t msgsz)
{
	struct cctx c = {.msg = msg, .msgsz = msgsz};
	struct jsong_schema *s;
	json_t *j;
	allot_err e;

	*out = NULL;
	e = json_parse(schema, len, true, &j, msg, msgsz);
	if (e)
		return ALLOT_E_INVALID;
	s = calloc(1, sizeof *s);
	if (!s) {
		json_decref(j);
		return ALLOT_E_NOMEM;
	}
	e = compile(&c, j, 0, &s->root);
	if (!e && s->root->type != JT_OBJECT)
		e = fail(&c, ALLOT_E_UNSUPPORTED, "the root must be an object schema (\"type\": \"object\")", NULL);
	json_decref(j);
	if (e) {
		if (e == ALLOT_E_NOMEM)
			snprintf(msg, msgsz, "out of memory");
		jsong_schema_free(s);
		return e;
	}
	*out = s;
	return ALLOT_OK;
}

void jsong_schema_free(struct jsong_schema *s)
{
	if (!s)
		return;
	node_free(s->root);
	free(s);
}
