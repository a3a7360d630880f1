/* jsong.c — the JSON grammar automaton (see jsong.h).
 *
 * A stack of frames: the root (K_TOP), then one frame per value being
 * written.  A value frame starts as K_VALUE (white space, then the first
 * byte decides: object, array, string, number or literal) and becomes that
 * kind in place.  Numbers and literals have no closing byte: they end when
 * a byte arrives that cannot continue them, which is then fed again to the
 * parent (R_AGAIN).  A compiled schema constrains each frame through its
 * node: which first bytes a value may have, which keys an object may write
 * (in "properties" order, by matching the key's bytes against the names
 * still allowed), which texts an enum may take.
 */
#include "infer/jsong.h"

#include <string.h>

#include "infer/jsong_int.h"

/* Bytes after the last one: the end of the document. */
#define END 256

enum { K_TOP, K_VALUE, K_OBJ, K_ARR, K_STR, K_NUM, K_LIT };
enum { T_VAL, T_DONE };
enum { O_START, O_KEY, O_COLON, O_VAL, O_AFTER, O_NEXT };
enum { A_START, A_VAL, A_AFTER };
enum { S_NORM, S_ESC, S_U };
enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };
enum rc { R_NO, R_OK, R_AGAIN };

/* Limits of generated numbers (jsong.h). */
#define GEN_INT_DIGITS 15
#define GEN_FRAC_DIGITS 15
#define GEN_EXP_DIGITS 2

const struct jsong_node jsong_any_value = {.type = JT_ANY, .min = 1};
const struct jsong_node jsong_any_object = {.type = JT_OBJECT, .open = true, .min = 2};

static char *const lit_any_text[] = {"true", "false", "null"};
static size_t lit_any_len[] = {4, 5, 4};
/* true, false and null where any value may be */
static const struct jsong_node lit_any = {
	.type = JT_ENUM, .n = 3, .lit = (char **)lit_any_text, .len = lit_any_len, .min = 4,
};

static bool is_ws(int b)
{
	return b == ' ' || b == '\t' || b == '\n' || b == '\r';
}

static uint64_t all_of(int n)
{
	return n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
}

static enum rc push(struct jsong *g, int kind, const struct jsong_node *node)
{
	struct jsong_frame *f;

	if (g->depth >= JSONG_MAX_DEPTH)
		return R_NO;
	f = &g->f[g->depth++];
	memset(f, 0, sizeof *f);
	f->kind = (uint8_t)kind;
	f->node = node;
	return R_OK;
}

/* The top frame's value is complete: pop it and tell the parent. */
static void pop_value(struct jsong *g)
{
	struct jsong_frame *p;

	g->depth--;
	p = &g->f[g->depth - 1];
	switch (p->kind) {
	case K_TOP:
		p->st = T_DONE;
		break;
	case K_OBJ:
		p->st = p->st == O_KEY ? O_COLON : O_AFTER;
		break;
	case K_ARR:
		p->st = A_AFTER;
		break;
	}
}

/* White space where the grammar allows it: counted in generation mode. */
static enum rc ws(struct jsong *g)
{
	if (g->gen && ++g->ws > JSONG_MAX_WS)
		return R_NO;
	return R_OK;
}

static enum rc value_start(struct jsong *g, struct jsong_frame *f, int b)
{
	const struct jsong_node *n = f->node;
	enum jsong_type t = n->type;

	if (is_ws(b))   /* (generated documents start with their brace) */
		return g->gen && g->depth == 2 ? R_NO : ws(g);
	if (t == JT_ENUM || (t == JT_ANY && (b == 't' || b == 'f' || b == 'n'))) {
		f->kind = K_LIT;
		f->node = t == JT_ENUM ? n : &lit_any;
		f->alive = all_of(f->node->n);
		return R_AGAIN;
	}
	if (b == '{' && (t == JT_OBJECT || t == JT_ANY)) {
		f->kind = K_OBJ;
		f->st = O_START;
		f->node = t == JT_ANY ? &jsong_any_object : n;
		return R_OK;
	}
	if (b == '[' && (t == JT_ARRAY || t == JT_ANY)) {
		f->kind = K_ARR;
		f->st = A_START;
		return R_OK;
	}
	if (b == '"' && (t == JT_STRING || t == JT_ANY)) {
		f->kind = K_STR;
		f->st = S_NORM;
		return R_OK;
	}
	if ((b == '-' || (b >= '0' && b <= '9')) && (t == JT_NUMBER || t == JT_INTEGER || t == JT_ANY)) {
		f->kind = K_NUM;
		f->st = b == '-' ? N_MINUS : b == '0' ? N_ZERO : N_INT;
		f->cnt = b == '-' ? 0 : 1;
		return R_OK;
	}
	return R_NO;
}

/* UTF-8 lead byte: continuation count and the first continuation's range
 * (no overlong forms, no surrogates, nothing above U+10FFFF). */
static bool utf8_lead(struct jsong_frame *f, int b)
{
	f->lo = 0x80;
	f->hi = 0xbf;
	if (b >= 0xc2 && b <= 0xdf)
		f->need = 1;
	else if (b >= 0xe0 && b <= 0xef)
		f->need = 2;
	else if (b >= 0xf0 && b <= 0xf4)
		f->need = 3;
	else
		return false;
	if (b == 0xe0)
		f->lo = 0xa0;
	else if (b == 0xed)
		f->hi = 0x9f;
	else if (b == 0xf0)
		f->lo = 0x90;
	else if (b == 0xf4)
		f->hi = 0x8f;
	return true;
}

static bool is_hex(int b)
{
	return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
}

static enum rc string_byte(struct jsong *g, struct jsong_frame *f, int b)
{
	if (b == END)
		return R_NO;
	if (f->need) {
		if (b < f->lo || b > f->hi)
			return R_NO;
		f->need--;
		f->lo = 0x80;
		f->hi = 0xbf;
		return R_OK;
	}
	switch (f->st) {
	case S_ESC:
		if (b == 'u' && !g->gen) {
			f->st = S_U;
			f->cnt = 0;
			return R_OK;
		}
		if (!strchr("\"\\/bfnrt", b) || b == 0)
			return R_NO;
		f->st = S_NORM;
		return R_OK;
	case S_U:
		if (!is_hex(b))
			return R_NO;
		if (++f->cnt == 4)
			f->st = S_NORM;
		return R_OK;
	default:
		break;
	}
	if (b == '"') {
		pop_value(g);
		return R_OK;
	}
	if (b == '\\') {
		f->st = S_ESC;
		return R_OK;
	}
	if (b < 0x20)
		return R_NO;
	if (b < 0x80)
		return R_OK;
	return utf8_lead(f, b) ? R_OK : R_NO;
}

static bool num_terminal(const struct jsong_frame *f)
{
	return f->st == N_ZERO || f->st == N_INT || f->st == N_FRAC || f->st == N_EXP;
}

static enum rc digit(struct jsong *g, struct jsong_frame *f, int st, int cap)
{
	if (f->st != st)
		f->cnt = 0;
	f->st = (uint8_t)st;
	if (g->gen && ++f->cnt > cap)
		return R_NO;
	return R_OK;
}

static enum rc number_byte(struct jsong *g, struct jsong_frame *f, int b)
{
	bool d = b >= '0' && b <= '9', integer = f->node->type == JT_INTEGER;

	switch (f->st) {
	case N_MINUS:
		if (b == '0')
			return digit(g, f, N_ZERO, GEN_INT_DIGITS);
		return d ? digit(g, f, N_INT, GEN_INT_DIGITS) : R_NO;
	case N_ZERO:
	case N_INT:
		if (d)
			return f->st == N_ZERO ? R_NO : digit(g, f, N_INT, GEN_INT_DIGITS);
		if (b == '.' && !integer) {
			f->st = N_DOT;
			return R_OK;
		}
		break;
	case N_DOT:
		return d ? digit(g, f, N_FRAC, GEN_FRAC_DIGITS) : R_NO;
	case N_FRAC:
		if (d)
			return digit(g, f, N_FRAC, GEN_FRAC_DIGITS);
		break;
	case N_E:
		if (b == '+' || b == '-') {
			f->st = N_ESIGN;
			return R_OK;
		}
		return d ? digit(g, f, N_EXP, GEN_EXP_DIGITS) : R_NO;
	case N_ESIGN:
		return d ? digit(g, f, N_EXP, GEN_EXP_DIGITS) : R_NO;
	case N_EXP:
		if (d)
			return digit(g, f, N_EXP, GEN_EXP_DIGITS);
		break;
	}
	if ((b == 'e' || b == 'E') && !integer && (f->st == N_ZERO || f->st == N_INT || f->st == N_FRAC)) {
		f->st = N_E;
		return R_OK;
	}
	if (!num_terminal(f))
		return R_NO;
	pop_value(g);
	return R_AGAIN;
}

static enum rc literal_byte(struct jsong *g, struct jsong_frame *f, int b)
{
	const struct jsong_node *n = f->node;
	uint64_t next = 0;

	for (int i = 0; i < n->n; i++)
		if ((f->alive >> i & 1) && f->pos < n->len[i] && (unsigned char)n->lit[i][f->pos] == b)
			next |= (uint64_t)1 << i;
	if (next) {
		f->alive = next;
		f->pos++;
		return R_OK;
	}
	for (int i = 0; i < n->n; i++)
		if ((f->alive >> i & 1) && f->pos == n->len[i]) {
			pop_value(g);
			return R_AGAIN;
		}
	return R_NO;
}

/* Properties a key may name next: from idx up to the first required one. */
static uint64_t keys_allowed(const struct jsong_node *n, int idx)
{
	uint64_t m = 0;

	for (int i = idx; i < n->n; i++) {
		m |= (uint64_t)1 << i;
		if (n->req[i])
			break;
	}
	return m;
}

static enum rc key_byte(struct jsong_frame *f, int b)
{
	const struct jsong_node *n = f->node;
	uint64_t next = 0;

	if (b == '"') {
		for (int i = 0; i < n->n; i++)
			if ((f->alive >> i & 1) && f->pos == n->len[i]) {
				f->cur = (uint16_t)i;
				f->idx = (uint16_t)(i + 1);
				f->st = O_COLON;
				return R_OK;
			}
		return R_NO;
	}
	for (int i = 0; i < n->n; i++)
		if ((f->alive >> i & 1) && f->pos < n->len[i] && (unsigned char)n->lit[i][f->pos] == b)
			next |= (uint64_t)1 << i;
	if (!next)
		return R_NO;
	f->alive = next;
	f->pos++;
	return R_OK;
}

static enum rc object_byte(struct jsong *g, struct jsong_frame *f, int b)
{
	const struct jsong_node *n = f->node;

	if (f->st == O_KEY)
		return key_byte(f, b);
	if (is_ws(b))
		return ws(g);
	switch (f->st) {
	case O_START:
	case O_NEXT:
		if (b == '}' && f->st == O_START && (n->open || n->nreq[f->idx] == 0)) {
			pop_value(g);
			return R_OK;
		}
		if (b != '"')
			return R_NO;
		f->st = O_KEY;
		if (n->open)
			return push(g, K_STR, &jsong_any_value);
		f->alive = keys_allowed(n, f->idx);
		f->pos = 0;
		return f->alive ? R_OK : R_NO;
	case O_COLON:
		if (b != ':')
			return R_NO;
		f->st = O_VAL;
		return push(g, K_VALUE, n->open ? &jsong_any_value : n->val[f->cur]);
	case O_AFTER:
		if (b == ',' && (n->open || f->idx < n->n)) {
			f->st = O_NEXT;
			return R_OK;
		}
		if (b == '}' && (n->open || n->nreq[f->idx] == 0)) {
			pop_value(g);
			return R_OK;
		}
		return R_NO;
	}
	return R_NO;
}

static enum rc array_byte(struct jsong *g, struct jsong_frame *f, int b)
{
	const struct jsong_node *items = f->node->type == JT_ARRAY && f->node->items
		? f->node->items : &jsong_any_value;

	if (is_ws(b))
		return ws(g);
	if (b == ']' && f->st != A_VAL) {
		pop_value(g);
		return R_OK;
	}
	if (f->st == A_START) {
		f->st = A_VAL;
		return push(g, K_VALUE, items) == R_OK ? R_AGAIN : R_NO;
	}
	if (f->st == A_AFTER && b == ',') {
		f->st = A_VAL;
		return push(g, K_VALUE, items);
	}
	return R_NO;
}

static enum rc step(struct jsong *g, int b)
{
	struct jsong_frame *f = &g->f[g->depth - 1];

	if (b == END && f->kind != K_NUM && f->kind != K_LIT && f->kind != K_TOP)
		return R_NO;
	switch (f->kind) {
	case K_TOP:
		if (f->st == T_DONE) {
			if (b == END)
				return R_OK;
			return !g->gen && is_ws(b) ? R_OK : R_NO;
		}
		return R_NO;   /* (a value frame is on top until the root is done) */
	case K_VALUE:
		return value_start(g, f, b);
	case K_OBJ:
		return object_byte(g, f, b);
	case K_ARR:
		return array_byte(g, f, b);
	case K_STR:
		return string_byte(g, f, b);
	case K_NUM:
		return number_byte(g, f, b);
	case K_LIT:
		return literal_byte(g, f, b);
	}
	return R_NO;
}

static bool feed_byte(struct jsong *g, int b)
{
	enum rc r;

	if (!is_ws(b))
		g->ws = 0;
	while ((r = step(g, b)) == R_AGAIN)
		;
	return r == R_OK;
}

void jsong_init(struct jsong *g, const struct jsong_schema *s, bool gen)
{
	g->gen = gen;
	g->ws = 0;
	g->depth = 0;
	push(g, K_TOP, NULL);
	push(g, K_VALUE, s ? s->root : gen ? &jsong_any_object : &jsong_any_value);
}

void jsong_copy(struct jsong *dst, const struct jsong *src)
{
	dst->gen = src->gen;
	dst->ws = src->ws;
	dst->depth = src->depth;
	memcpy(dst->f, src->f, (size_t)src->depth * sizeof src->f[0]);
}

bool jsong_feed(struct jsong *g, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!feed_byte(g, (unsigned char)p[i]))
			return false;
	return true;
}

bool jsong_complete(const struct jsong *g)
{
	struct jsong c;

	if (g->depth == 1)
		return g->f[0].st == T_DONE;
	if (g->depth != 2)
		return false;
	jsong_copy(&c, g);
	return feed_byte(&c, END);
}

/* Fewest bytes that finish object frame f (not counting a value or key
 * string being written in the frame above it). */
static int object_dist(const struct jsong_frame *f)
{
	const struct jsong_node *n = f->node;
	int best = -1;

	if (n->open) {
		switch (f->st) {
		case O_NEXT: return 5;           /* "":0} */
		case O_KEY: case O_COLON: return 3; /* :0} */
		default: return 1;
		}
	}
	switch (f->st) {
	case O_START:
		return (n->nreq[f->idx] ? n->rreq[f->idx] - 1 : 0) + 1;
	case O_NEXT:
		if (n->nreq[f->idx])
			return n->rreq[f->idx];  /* its comma is written: -1, then } */
		for (int i = f->idx; i < n->n; i++)
			if (best < 0 || jsong_member_min(n, i) < best)
				best = jsong_member_min(n, i);
		return best + 1;
	case O_KEY:
		for (int i = 0; i < n->n; i++)
			if (f->alive >> i & 1) {
				int d = (int)(n->len[i] - f->pos) + 2 + n->val[i]->min + n->rreq[i + 1] + 1;

				if (best < 0 || d < best)
					best = d;
			}
		return best;
	case O_COLON:
		return 1 + n->val[f->cur]->min + n->rreq[f->idx] + 1;
	default:
		return n->rreq[f->idx] + 1;
	}
}

int jsong_dist(const struct jsong *g)
{
	int d = 0;

	for (int i = 0; i < g->depth; i++) {
		const struct jsong_frame *f = &g->f[i];

		switch (f->kind) {
		case K_VALUE:
			d += f->node->min;
			break;
		case K_OBJ:
			d += object_dist(f);
			break;
		case K_ARR:
			d += 1;
			break;
		case K_STR:
			d += 1 + f->need + (f->st == S_ESC ? 1 : f->st == S_U ? 4 - f->cnt : 0);
			break;
		case K_NUM:
			d += num_terminal(f) ? 0 : 1;
			break;
		case K_LIT: {
			int best = -1;

			for (int k = 0; k < f->node->n; k++)
				if ((f->alive >> k & 1) && (best < 0 || (int)(f->node->len[k] - f->pos) < best))
					best = (int)(f->node->len[k] - f->pos);
			d += best < 0 ? 0 : best;
			break;
		}
		default:
			break;
		}
	}
	return d;
}
