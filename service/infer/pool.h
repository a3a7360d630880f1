/* pool.h — a persistent thread pool for data-parallel compute.
 *
 * pool_new(n) starts n-1 worker threads once; pool_run() runs fn(ctx, i, n)
 * for i in 0..n-1, the caller taking i = 0, and returns when all are done.
 * Workers spin briefly between jobs, then sleep on a futex, so a stream of
 * small jobs (one per matrix product) costs no thread creation and little
 * wake-up latency.  One caller at a time (the engine's thread); pool_free()
 * joins the workers.
 */
#ifndef ALLOT_INFER_POOL_H
#define ALLOT_INFER_POOL_H

struct pool;

typedef void (*pool_fn)(void *ctx, int ith, int nth);

/* n >= 1; NULL on failure to allocate or start threads. */
struct pool *pool_new(int n);
void pool_run(struct pool *p, pool_fn fn, void *ctx);
int pool_threads(const struct pool *p);
void pool_free(struct pool *p);

#endif
