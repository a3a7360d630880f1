/* pool.h — a persistent thread pool for data-parallel compute.
 *
 * pool_new(n) starts n-1 worker threads once.  pool_run(p, fn, ctx, n_items)
 * runs fn(ctx, item, thread) for every item in 0..n_items-1, items claimed
 * dynamically by the caller (thread 0) and the workers, and returns when
 * all items are done.  The caller never waits for a worker that has not
 * claimed anything, so a worker descheduled by a busy machine does not
 * stall the step.  Workers spin briefly between jobs, then sleep on a
 * futex: a stream of small jobs (one per matrix product) costs no thread
 * creation.  One caller at a time; pool_free() joins the workers.
 */
#ifndef ALLOT_INFER_POOL_H
#define ALLOT_INFER_POOL_H

/* Items per job, at most. */
#define POOL_MAX_ITEMS (1 << 20)

struct pool;

typedef void (*pool_fn)(void *ctx, int item, int thread);

/* n >= 1 threads in all; NULL on failure to allocate or start threads. */
struct pool *pool_new(int n);
void pool_run(struct pool *p, pool_fn fn, void *ctx, int n_items);
/* The same, but the items are split into one contiguous range per thread
 * (thread i: [n_items * i / n, n_items * (i + 1) / n)), which its owner runs
 * in ascending order; a thread done with its range takes the remaining
 * items from the back of the others'.  For memory-bound jobs: each thread
 * streams one ascending run of memory. */
void pool_run_split(struct pool *p, pool_fn fn, void *ctx, int n_items);
int pool_threads(const struct pool *p);
void pool_free(struct pool *p);

#endif
