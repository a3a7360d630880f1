/* revwin.c — the window of token revocations still to read (gate/revwin.h). */
#include "gate/revwin.h"

#include <stdlib.h>
#include <string.h>

void revwin_init(struct revwin *w)
{
	memset(w, 0, sizeof *w);
}

void revwin_free(struct revwin *w)
{
	free(w->gap);
	memset(w, 0, sizeof *w);
}

int64_t revwin_after(const struct revwin *w)
{
	return w->low;
}

static bool add_gap(struct revwin *w, int64_t lo, int64_t hi, int64_t since)
{
	if (w->ngap == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		struct revwin_gap *g = realloc(w->gap, cap * sizeof *g);
		if (!g) {
			w->oom = true;
			return false;
		}
		w->gap = g;
		w->cap = cap;
	}
	w->gap[w->ngap++] = (struct revwin_gap){lo, hi, since};
	return true;
}

/* id, read below high, fills (part of) a gap. */
static void fill(struct revwin *w, int64_t id)
{
	for (size_t i = 0; i < w->ngap; i++) {
		struct revwin_gap *g = &w->gap[i];
		if (id < g->lo || id > g->hi)
			continue;
		if (g->lo == g->hi) {
			w->gap[i] = w->gap[--w->ngap];
		} else if (id == g->lo) {
			g->lo++;
		} else if (id == g->hi) {
			g->hi--;
		} else {
			struct revwin_gap rest = {id + 1, g->hi, g->since_us};
			g->hi = id - 1;
			add_gap(w, rest.lo, rest.hi, rest.since_us);
		}
		return;
	}
}

void revwin_seen(struct revwin *w, int64_t id, int64_t now_us)
{
	if (id <= w->low)
		return;
	if (id <= w->high) {
		fill(w, id);
		return;
	}
	if (id > w->high + 1)
		add_gap(w, w->high + 1, id - 1, now_us);
	w->high = id;
}

void revwin_close(struct revwin *w, int64_t now_us, int64_t overlap_us)
{
	int64_t low = w->high;
	for (size_t i = 0; i < w->ngap;) {
		if (now_us - w->gap[i].since_us >= overlap_us) {
			w->gap[i] = w->gap[--w->ngap];
			continue;
		}
		if (w->gap[i].lo - 1 < low)
			low = w->gap[i].lo - 1;
		i++;
	}
	/* a gap could not be kept: the next poll reads again from low and
	 * finds the gaps anew */
	if (w->oom) {
		w->oom = false;
		w->ngap = 0;
		w->high = w->low;
		return;
	}
	if (low > w->low)
		w->low = low;
}
