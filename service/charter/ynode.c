/* ynode.c — YAML text to a bounded node tree (see ynode.h). */
#include "charter/ynode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* ---- arena --------------------------------------------------------------- */

#define ARENA_CHUNK (64 * 1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

struct ynode_tree {
	struct arena_chunk *chunks;
};

static void *arena_alloc(struct ynode_tree *t, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n == 0)
		n = 16;
	struct arena_chunk *c = t->chunks;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->next = t->chunks;
		c->used = 0;
		c->cap = cap;
		t->chunks = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

void ynode_tree_free(struct ynode_tree *t)
{
	if (!t)
		return;
	struct arena_chunk *c = t->chunks;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(t);
}

/* ---- builder ------------------------------------------------------------- */

struct frame {
	struct ynode *node;
	struct ynode **tmp; /* children so far, from malloc() */
	size_t n, cap;
};

struct builder {
	struct ynode_tree *tree;
	ynode_report_fn report;
	void *ctx;
	const char *buf;
	size_t len;
	struct frame *stack;
	unsigned depth, max_depth;
	struct ynode *root;
	bool oom;
};

static void report_at(struct builder *b, yaml_mark_t m, const char *msg)
{
	b->report(b->ctx, (uint32_t)m.line + 1, (uint32_t)m.column + 1, msg);
}

static struct ynode *node_new(struct builder *b, enum ynode_kind kind, yaml_mark_t m)
{
	struct ynode *n = arena_alloc(b->tree, sizeof *n);
	if (!n) {
		b->oom = true;
		return NULL;
	}
	memset(n, 0, sizeof *n);
	n->kind = kind;
	n->line = (uint32_t)m.line + 1;
	n->col = (uint32_t)m.column + 1;
	n->str = "";
	return n;
}

static int attach(struct builder *b, struct ynode *n)
{
	if (b->depth == 0) {
		b->root = n;
		return 0;
	}
	struct frame *f = &b->stack[b->depth - 1];
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		struct ynode **p = realloc(f->tmp, cap * sizeof *p);
		if (!p) {
			b->oom = true;
			return -1;
		}
		f->tmp = p;
		f->cap = cap;
	}
	f->tmp[f->n++] = n;
	return 0;
}

static void check_props(struct builder *b, yaml_mark_t m, const yaml_char_t *anchor,
			const yaml_char_t *tag)
{
	if (anchor)
		report_at(b, m, "YAML anchors are not allowed");
	if (tag)
		report_at(b, m, "YAML tags are not allowed");
}

/* Line and column of a byte offset (reader errors carry only the offset). */
static void offset_mark(const char *buf, size_t len, size_t off, yaml_mark_t *m)
{
	size_t line = 0, col = 0;
	if (off > len)
		off = len;
	for (size_t i = 0; i < off; i++) {
		if (buf[i] == '\n') {
			line++;
			col = 0;
		} else {
			col++;
		}
	}
	m->index = off;
	m->line = line;
	m->column = col;
}

static void report_syntax(struct builder *b, const yaml_parser_t *p)
{
	char msg[256];
	yaml_mark_t m = p->problem_mark;
	const char *problem = p->problem ? p->problem : "malformed YAML";

	if (p->error == YAML_MEMORY_ERROR) {
		b->oom = true;
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		offset_mark(b->buf, b->len, p->problem_offset, &m);
		snprintf(msg, sizeof msg, "YAML syntax error: %s", problem);
	} else if (p->context) {
		snprintf(msg, sizeof msg, "YAML syntax error: %s (%s at line %lu column %lu)",
			 problem, p->context, (unsigned long)p->context_mark.line + 1,
			 (unsigned long)p->context_mark.column + 1);
	} else {
		snprintf(msg, sizeof msg, "YAML syntax error: %s", problem);
	}
	report_at(b, m, msg);
}

/* A scalar event: its node, with a copy of its text. */
static void on_scalar(struct builder *b, const yaml_event_t *ev)
{
	yaml_mark_t m = ev->start_mark;
	check_props(b, m, ev->data.scalar.anchor, ev->data.scalar.tag);
	struct ynode *n = node_new(b, YN_SCALAR, m);
	if (!n)
		return;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	n->len = ev->data.scalar.length;
	char *s = arena_alloc(b->tree, n->len + 1);
	if (!s) {
		b->oom = true;
		return;
	}
	memcpy(s, ev->data.scalar.value, n->len);
	s[n->len] = '\0';
	n->str = s;
	attach(b, n);
}

/* A sequence or mapping starts: a frame on the stack.  false: nested too
 * deep (reported). */
static bool on_open(struct builder *b, const yaml_event_t *ev)
{
	yaml_mark_t m = ev->start_mark;
	bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
	if (seq)
		check_props(b, m, ev->data.sequence_start.anchor, ev->data.sequence_start.tag);
	else
		check_props(b, m, ev->data.mapping_start.anchor, ev->data.mapping_start.tag);
	if (b->depth >= b->max_depth) {
		char msg[64];
		snprintf(msg, sizeof msg, "nesting deeper than %u levels", b->max_depth);
		report_at(b, m, msg);
		return false;
	}
	struct ynode *n = node_new(b, seq ? YN_SEQ : YN_MAP, m);
	if (!n)
		return true;
	b->stack[b->depth].node = n;
	b->stack[b->depth].n = 0;
	b->depth++;
	return true;
}

/* A sequence or mapping ends: its items from the frame into the arena. */
static void on_close(struct builder *b)
{
	struct frame *f = &b->stack[--b->depth];
	struct ynode *n = f->node;
	if (f->n) {
		n->items = arena_alloc(b->tree, f->n * sizeof *n->items);
		if (!n->items) {
			b->oom = true;
			return;
		}
		memcpy(n->items, f->tmp, f->n * sizeof *n->items);
	}
	n->n = n->kind == YN_MAP ? f->n / 2 : f->n;
	f->n = 0;
	attach(b, n);
}

/* One parser event into the tree.  false: stop (an error reported). */
static bool on_event(struct builder *b, const yaml_event_t *ev, int *docs, bool *done)
{
	yaml_mark_t m = ev->start_mark;
	struct ynode *n;
	switch (ev->type) {
	case YAML_STREAM_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
	case YAML_NO_EVENT:
		break;
	case YAML_STREAM_END_EVENT:
		*done = true;
		break;
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1) {
			report_at(b, m, "only one YAML document is allowed");
			return false;
		}
		break;
	case YAML_ALIAS_EVENT:
		report_at(b, m, "YAML aliases are not allowed");
		if ((n = node_new(b, YN_BAD, m)))
			attach(b, n);
		break;
	case YAML_SCALAR_EVENT:
		on_scalar(b, ev);
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		return on_open(b, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		on_close(b);
		break;
	}
	return true;
}

int ynode_build(const char *buf, size_t len, unsigned max_depth,
		ynode_report_fn report, void *ctx,
		struct ynode_tree **tree, const struct ynode **root)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct builder b = {0};
	int rc = -1, docs = 0;
	bool done = false;

	*tree = NULL;
	*root = NULL;
	b.tree = calloc(1, sizeof *b.tree);
	b.stack = calloc(max_depth + 1, sizeof *b.stack);
	if (!b.tree || !b.stack) {
		free(b.tree);
		free(b.stack);
		return -2;
	}
	b.report = report;
	b.ctx = ctx;
	b.buf = buf;
	b.len = len;
	b.max_depth = max_depth;

	if (!yaml_parser_initialize(&parser)) {
		free(b.stack);
		ynode_tree_free(b.tree);
		return -2;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

	while (!done && !b.oom) {
		if (!yaml_parser_parse(&parser, &ev)) {
			report_syntax(&b, &parser);
			goto out;
		}
		bool go = on_event(&b, &ev, &docs, &done);
		yaml_event_delete(&ev);
		if (!go)
			goto out;
	}
	if (!b.oom)
		rc = 0;
out:
	yaml_parser_delete(&parser);
	for (unsigned i = 0; i <= max_depth; i++)
		free(b.stack[i].tmp);
	free(b.stack);
	if (b.oom) {
		ynode_tree_free(b.tree);
		return -2;
	}
	*tree = b.tree;
	if (rc == 0)
		*root = b.root;
	return rc;
}

bool ynode_is_null(const struct ynode *n)
{
	if (!n || n->kind != YN_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
	       strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}
