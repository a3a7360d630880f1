/* pool.c — persistent worker threads: generation counter, spin-then-futex. */
#include "infer/pool.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Spins before a worker sleeps: about 50 µs, shorter than one layer's
 * work, so back-to-back jobs do not pay a futex wake-up. */
#define POOL_SPIN 20000

struct pool {
	int n;
	pthread_t *th;          /* [n - 1] */
	_Atomic uint32_t gen;   /* bumped for each job (futex word) */
	atomic_int pending;     /* workers still running the current job */
	atomic_int sleepers;
	atomic_bool stop;
	pool_fn fn;
	void *ctx;
};

struct worker_arg { struct pool *p; int ith; };

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void *worker(void *argv)
{
	struct worker_arg a = *(struct worker_arg *)argv;
	struct pool *p = a.p;
	uint32_t seen = 0;

	free(argv);
	for (;;) {
		uint32_t g;
		int spins = 0;

		while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
			if (++spins < POOL_SPIN) {
				cpu_relax();
				continue;
			}
			atomic_fetch_add(&p->sleepers, 1);
			if (atomic_load(&p->gen) == seen)
				futex_wait(&p->gen, seen);
			atomic_fetch_sub(&p->sleepers, 1);
			spins = 0;
		}
		seen = g;
		if (atomic_load(&p->stop))
			return NULL;
		p->fn(p->ctx, a.ith, p->n);
		atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
	}
}

struct pool *pool_new(int n)
{
	struct pool *p;

	if (n < 1)
		n = 1;
	p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->n = n;
	p->th = calloc((size_t)n, sizeof *p->th);
	if (!p->th) {
		free(p);
		return NULL;
	}
	for (int i = 1; i < n; i++) {
		struct worker_arg *a = malloc(sizeof *a);

		if (a) {
			a->p = p;
			a->ith = i;
		}
		if (!a || pthread_create(&p->th[i - 1], NULL, worker, a) != 0) {
			free(a);
			p->n = i; /* join the ones started */
			pool_free(p);
			return NULL;
		}
	}
	return p;
}

int pool_threads(const struct pool *p) { return p->n; }

void pool_run(struct pool *p, pool_fn fn, void *ctx)
{
	int spins = 0;

	if (p->n == 1) {
		fn(ctx, 0, 1);
		return;
	}
	p->fn = fn;
	p->ctx = ctx;
	atomic_store(&p->pending, p->n - 1);
	atomic_fetch_add(&p->gen, 1); /* seq_cst: pairs with the sleepers check */
	if (atomic_load(&p->sleepers) > 0)
		futex_wake_all(&p->gen);
	fn(ctx, 0, p->n);
	while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
		if (++spins > POOL_SPIN)
			sched_yield();
		else
			cpu_relax();
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, true);
	atomic_fetch_add(&p->gen, 1);
	futex_wake_all(&p->gen);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->th[i - 1], NULL);
	free(p->th);
	free(p);
}
