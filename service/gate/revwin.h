/* revwin.h — which token revocations a node still has to read (several
 * nodes on one database; docs/POSTGRES.md, "Nodes of one database").
 *
 * A revocation's id is given when its row is inserted, before its
 * transaction commits, so ids commit out of order: a poll can see id 7
 * while id 6 is still in flight.  The window keeps a watermark `low` (every
 * id up to it has been read, or was skipped longer ago than the overlap)
 * and the ids above the highest read so far that are missing (the gaps,
 * each with the time it was first missed).  A poll reads the rows with id
 * > revwin_after(): those past the oldest open gap, re-read until the gap
 * is filled or is older than the overlap (a rolled-back insert never
 * commits: its gap is closed at the overlap's end).  So a revocation that
 * commits within the overlap after a larger id is always read, and a poll
 * reads at most the rows stored since the oldest open gap.
 *
 * Not thread-safe: one caller (gate/tokens.c, under its own lock). */
#ifndef ALLOT_GATE_REVWIN_H
#define ALLOT_GATE_REVWIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longer than any revocation's transaction (an insert, its audit entry
 * and its log leaf). */
#define REVWIN_OVERLAP_US (60 * 1000000LL)

struct revwin_gap {
	int64_t lo, hi;     /* missing ids lo..hi */
	int64_t since_us;   /* first missed (a monotonic clock) */
};

struct revwin {
	int64_t low;        /* every id <= low read or given up */
	int64_t high;       /* the highest id read */
	struct revwin_gap *gap;
	size_t ngap, cap;
	bool oom;           /* a gap could not be kept: low stays put */
};

void revwin_init(struct revwin *w);
void revwin_free(struct revwin *w);
/* The poll reads the rows with id > this. */
int64_t revwin_after(const struct revwin *w);
/* A row the poll read (in any order); now_us: the poll's time. */
void revwin_seen(struct revwin *w, int64_t id, int64_t now_us);
/* After a poll: gaps older than overlap_us are given up; low moves up. */
void revwin_close(struct revwin *w, int64_t now_us, int64_t overlap_us);

#endif
