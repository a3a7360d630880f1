/* ynode.h — private to service/charter: a YAML text turned into a small,
 * bounded tree of scalars, mappings and sequences, each with its 1-based
 * position, built with libyaml's event parser.
 *
 * The builder enforces the charter's YAML subset: one document, no anchors,
 * aliases or tags, nesting up to CHARTER_MAX_DEPTH.  Violations are reported
 * through the caller's callback; a node that could not be represented (an
 * alias) becomes a YN_BAD node that later checks skip silently.
 *
 * Every node and string lives in the tree's arena; ynode_tree_free() frees
 * them all at once.
 */
#ifndef ALLOT_CHARTER_YNODE_H
#define ALLOT_CHARTER_YNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ynode_kind { YN_SCALAR, YN_MAP, YN_SEQ, YN_BAD };

struct ynode {
	enum ynode_kind kind;
	bool plain;             /* scalar written without quotes */
	uint32_t line, col;     /* 1-based start of the node */
	const char *str;        /* scalar text, NUL-terminated (may hold NULs) */
	size_t len;             /* scalar length in bytes */
	struct ynode **items;   /* SEQ: n items; MAP: n pairs as key,value,... */
	size_t n;
};

struct ynode_tree;

/* Called for every violation found while building: (line, col, message). */
typedef void (*ynode_report_fn)(void *ctx, uint32_t line, uint32_t col,
				const char *msg);

/* Builds the tree.  Returns 0 with *root (NULL for an empty document) and
 * *tree set; -1 when the text could not be parsed at all (a syntax error or
 * a limit, already reported; *tree set and must be freed, *root NULL);
 * -2 when memory ran out (*tree NULL). */
int ynode_build(const char *buf, size_t len, unsigned max_depth,
		ynode_report_fn report, void *ctx,
		struct ynode_tree **tree, const struct ynode **root);
void ynode_tree_free(struct ynode_tree *tree);

/* A plain scalar meaning null: empty, "~", "null", "Null", "NULL". */
bool ynode_is_null(const struct ynode *n);

#endif
