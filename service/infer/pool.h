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
int pool_threads(const struct pool *p);
void pool_free(struct pool *p);

#endif
