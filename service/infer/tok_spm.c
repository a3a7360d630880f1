/* tok_spm.c — SentencePiece-style BPE over scores (infer/tok_int.h): the
 * text's symbols merged best-scored pair first, with byte fallback. */
#include "infer/tok_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "infer/utf8.h"

struct sym { int prev, next; const char *s; size_t n; };
struct bigram { int left, right; float score; size_t size; };

/* max-heap on (score, -left) */
static bool bg_less(const struct bigram *a, const struct bigram *b)
{
	return a->score < b->score || (a->score == b->score && a->left > b->left);
}

struct heap { struct bigram *h; size_t n, cap; bool oom; };

static void heap_push(struct heap *q, struct bigram b)
{
	size_t i;

	if (q->n == q->cap) {
		size_t c = q->cap ? 2 * q->cap : 64;
		struct bigram *nh = realloc(q->h, c * sizeof *nh);

		if (!nh) {
			q->oom = true;
			return;
		}
		q->h = nh;
		q->cap = c;
	}
	i = q->n++;
	q->h[i] = b;
	while (i > 0 && bg_less(&q->h[(i - 1) / 2], &q->h[i])) {
		struct bigram t = q->h[i];

		q->h[i] = q->h[(i - 1) / 2];
		q->h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static struct bigram heap_pop(struct heap *q)
{
	struct bigram top = q->h[0];
	size_t i = 0;

	q->h[0] = q->h[--q->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < q->n && bg_less(&q->h[m], &q->h[l])) m = l;
		if (r < q->n && bg_less(&q->h[m], &q->h[r])) m = r;
		if (m == i)
			break;
		struct bigram t = q->h[i];
		q->h[i] = q->h[m];
		q->h[m] = t;
		i = m;
	}
	return top;
}

static void try_bigram(const struct tok_vocab *v, struct sym *sy, struct heap *q, int l, int r)
{
	int32_t id;

	if (l < 0 || r < 0)
		return;
	/* symbols are contiguous in the text, so left.s .. right.s+n is one run */
	id = tok_smap_get(&v->by_text, sy[l].s, sy[l].n + sy[r].n);
	if (id < 0)
		return;
	heap_push(q, (struct bigram){l, r, v->score[id], sy[l].n + sy[r].n});
}

void tok_spm_raw(const struct tok_vocab *v, const char *text, size_t len, bool prefix,
		 struct ids *o)
{
	struct buf t = BUF_INIT;
	struct sym *sy = NULL;
	struct heap q = {0};
	int ns = 0;

	if (prefix)
		buf_puts(&t, "\xe2\x96\x81");
	for (size_t i = 0; i < len; i++) {
		if (text[i] == ' ')
			buf_puts(&t, "\xe2\x96\x81");
		else
			buf_putc(&t, text[i]);
	}
	if (t.oom || !t.len)
		goto out;
	sy = malloc(t.len * sizeof *sy);
	if (!sy) {
		o->oom = true;
		goto out;
	}
	for (size_t i = 0; i < t.len;) {
		uint32_t cp;
		int dl = utf8_decode((const unsigned char *)t.data + i, t.len - i, &cp);
		/* one symbol per valid character, one per byte of an invalid
		 * sequence (so that a space after a stray lead byte stays "▁";
		 * llama.cpp goes by the lead byte alone: same ids on valid text) */
		size_t l = dl > 0 ? (size_t)dl : 1;

		sy[ns] = (struct sym){ns - 1, (i + l < t.len) ? ns + 1 : -1, t.data + i, l};
		ns++;
		i += l;
	}
	for (int i = 1; i < ns; i++)
		try_bigram(v, sy, &q, i - 1, i);
	while (q.n > 0 && !q.oom) {
		struct bigram b = heap_pop(&q);
		struct sym *l = &sy[b.left], *r = &sy[b.right];

		if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
			continue;
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			sy[r->next].prev = b.left;
		try_bigram(v, sy, &q, l->prev, b.left);
		try_bigram(v, sy, &q, b.left, l->next);
	}
	if (q.oom)
		o->oom = true;
	for (int i = 0; i != -1 && ns > 0; i = sy[i].next) {
		int32_t id = tok_smap_get(&v->by_text, sy[i].s, sy[i].n);

		if (id >= 0) {
			tok_ids_push(o, id);
			continue;
		}
		for (size_t k = 0; k < sy[i].n; k++) {
			int32_t bt = v->byte_tok[(unsigned char)sy[i].s[k]];

			tok_ids_push(o, bt >= 0 ? bt : v->unk);
		}
	}
out:
	free(q.h);
	free(sy);
	buf_release(&t);
}
