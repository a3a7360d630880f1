/* jsong_int.h — the compiled schema, shared by jsong.c (the automaton) and
 * jsong_schema.c (the compiler).  Private to those two files. */
#ifndef ALLOT_INFER_JSONG_INT_H
#define ALLOT_INFER_JSONG_INT_H

#include <stdbool.h>
#include <stddef.h>

enum jsong_type {
	JT_ANY,      /* any JSON value */
	JT_OBJECT,   /* open: any keys and values; else the listed properties */
	JT_ARRAY,    /* items: element schema (NULL: any value) */
	JT_STRING,
	JT_NUMBER,
	JT_INTEGER,
	JT_ENUM,     /* lit[n]: the values' JSON texts (booleans and null too) */
};

struct jsong_node {
	enum jsong_type type;
	bool open;                 /* JT_OBJECT: any members */
	int n;                     /* properties / enum values */
	char **lit;                /* [n] property names (raw bytes) / enum texts */
	size_t *len;               /* [n] */
	struct jsong_node **val;   /* [n] property schemas (JT_OBJECT) */
	bool *req;                 /* [n] required (JT_OBJECT) */
	int *rreq;                 /* [n + 1] bytes of the required members from i on,
				    * each with its leading comma (JT_OBJECT) */
	int *nreq;                 /* [n + 1] required members from i on */
	struct jsong_node *items;  /* JT_ARRAY: NULL is any value */
	int min;                   /* fewest bytes of a value of this schema */
};

struct jsong_schema {
	struct jsong_node *root;
};

/* Shared nodes for unconstrained values. */
extern const struct jsong_node jsong_any_value;
extern const struct jsong_node jsong_any_object;

/* Bytes of member i: "name":value at its shortest. */
static inline int jsong_member_min(const struct jsong_node *o, int i)
{
	return (int)o->len[i] + 3 + o->val[i]->min;
}

#endif
