/* vpool.h — a few threads that help callers run an indexed loop.
 *
 * vpool_run(p, n, chunk, fn, arg) calls fn(arg, from, to) over [0, n) in
 * ranges of at most `chunk`, on the calling thread and on whichever pool
 * threads are idle, and returns when every range is done.  Many callers
 * may run at once: the pool threads serve their loops in arrival order.
 * The ledger verifies a batch's signatures this way, so that the CPUs stay
 * busy while another request books its records or waits for its fsync.
 */
#ifndef ALLOT_LEDGER_VPOOL_H
#define ALLOT_LEDGER_VPOOL_H

#include <stddef.h>

struct vpool;

typedef void (*vpool_fn)(void *arg, size_t from, size_t to);

/* nthreads 0: one per online CPU.  Returns NULL when no thread could be
 * started (vpool_run then runs loops on the caller alone). */
struct vpool *vpool_new(int nthreads);
/* Stops and joins the threads; no vpool_run may be in progress. */
void vpool_free(struct vpool *p);
/* fn must be safe to run concurrently on disjoint ranges.  p may be NULL. */
void vpool_run(struct vpool *p, size_t n, size_t chunk, vpool_fn fn, void *arg);

#endif
