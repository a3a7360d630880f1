/* pool.c — persistent workers claiming work items from atomic words.
 *
 * pool_run: one work word packs (generation, item count, next item) so that
 * a claim is one compare-and-swap that also proves the job is still the
 * current one: a late worker can never run an item of a job that has ended,
 * and fn/ctx are only read after a successful claim, while the caller is
 * still waiting for that item.
 *
 * pool_run_split: one such word per thread, (generation, back, front) of a
 * contiguous range of items: the owner takes from the front, a thread whose
 * range is empty takes from the back of another's.  Each thread then walks
 * its own part of the weights as one ascending stream, which the hardware
 * prefetchers follow (interleaved small items, as pool_run hands them out,
 * made two threads stream at 60% of the machine's read bandwidth). */
#include "infer/pool.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Spins before a worker sleeps: tens of microseconds, longer than the gap
 * between two products of one forward pass. */
#define POOL_SPIN 20000

#define W_BITS 20
#define W_MASK ((1ull << W_BITS) - 1)

/* a thread's range in pool_run_split: gen << 40 | back << 20 | front */
struct range { _Alignas(64) _Atomic uint64_t w; };

/* Written words apart from read ones, each on its own cache line: a
 * counter bumped by every item on the line that holds fn and ctx cost a
 * cache-line transfer between the cores per item (about 5% of a decoding
 * step's 25,000 items). */
struct pool {
	int n;
	struct range *rg;          /* [n] */
	pthread_t *th;             /* [n - 1] */
	pool_fn fn;
	void *ctx;
	_Alignas(64) _Atomic uint64_t work;  /* gen << 40 | n_items << 20 | next */
	_Alignas(64) _Atomic uint32_t gen;   /* futex word: bumped per job */
	atomic_int sleepers;
	atomic_bool stop;
	/* items finished in the current job: each thread adds its count once,
	 * when it has run every item it claimed */
	_Alignas(64) atomic_int done;
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

/* Claims and runs items of job generation g until none are left. */
static void run_items(struct pool *p, uint64_t g, int ith)
{
	uint64_t w = atomic_load(&p->work);
	int ran = 0;

	for (;;) {
		uint64_t n = (w >> W_BITS) & W_MASK, next = w & W_MASK;

		if ((w >> (2 * W_BITS)) != g || next >= n)
			break;
		if (atomic_compare_exchange_weak(&p->work, &w, w + 1)) {
			p->fn(p->ctx, (int)next, ith);
			ran++;
			w = atomic_load(&p->work);
		}
	}
	if (ran)
		atomic_fetch_add_explicit(&p->done, ran, memory_order_release);
}

/* Claims one item of range word r for job generation g: from the front
 * (the owner) or the back (a thief).  -1 when the range is empty or
 * belongs to another job. */
static int claim(struct range *r, uint64_t g, bool front)
{
	uint64_t w = atomic_load_explicit(&r->w, memory_order_relaxed);

	for (;;) {
		uint64_t lo = w & W_MASK, hi = (w >> W_BITS) & W_MASK;

		if ((w >> (2 * W_BITS)) != g || lo >= hi)
			return -1;
		if (front) {
			if (atomic_compare_exchange_weak(&r->w, &w, w + 1))
				return (int)lo;
		} else if (atomic_compare_exchange_weak(&r->w, &w, w - (1ull << W_BITS))) {
			return (int)hi - 1;
		}
	}
}

/* pool_run_split's items of job g: this thread's range, then the others'
 * from their backs, until every range is empty. */
static void run_split(struct pool *p, uint64_t g, int ith)
{
	int i, ran = 0;

	while ((i = claim(&p->rg[ith], g, true)) >= 0) {
		p->fn(p->ctx, i, ith);
		ran++;
	}
	for (int k = 1; k < p->n; k++) {
		struct range *r = &p->rg[(ith + k) % p->n];

		while ((i = claim(r, g, false)) >= 0) {
			p->fn(p->ctx, i, ith);
			ran++;
		}
	}
	if (ran)
		atomic_fetch_add_explicit(&p->done, ran, memory_order_release);
}

static void *worker(void *argv)
{
	struct worker_arg a = *(struct worker_arg *)argv;
	struct pool *p = a.p;
	uint32_t seen = 0;

	free(argv);
	for (;;) {
		uint32_t g;
		uint64_t jg;
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
		/* a job is of one kind; the other kind's words carry another
		 * generation, so their claims fail */
		jg = atomic_load(&p->work) >> (2 * W_BITS);
		run_items(p, jg, a.ith);
		run_split(p, jg, a.ith);
	}
}

struct pool *pool_new(int n)
{
	struct pool *p;

	if (n < 1)
		n = 1;
	p = aligned_alloc(64, (sizeof *p + 63) / 64 * 64);
	if (!p)
		return NULL;
	memset(p, 0, sizeof *p);
	p->n = n;
	p->th = calloc((size_t)n, sizeof *p->th);
	p->rg = aligned_alloc(64, (size_t)n * sizeof *p->rg);
	if (!p->th || !p->rg) {
		free(p->th);
		free(p->rg);
		free(p);
		return NULL;
	}
	for (int i = 0; i < n; i++)
		atomic_init(&p->rg[i].w, 0);
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

/* Waits until the current job's n_items are done. */
static void wait_done(struct pool *p, int n_items)
{
	int spins = 0;

	while (atomic_load_explicit(&p->done, memory_order_acquire) < n_items)
		if (++spins > POOL_SPIN)
			sched_yield();
		else
			cpu_relax();
}

/* Starts job generation g (the work words already set up). */
static void publish(struct pool *p)
{
	atomic_fetch_add(&p->gen, 1); /* seq_cst: pairs with the sleepers check */
	if (atomic_load(&p->sleepers) > 0)
		futex_wake_all(&p->gen);
}

/* The next job generation (24 bits), shared by both kinds of job. */
static uint64_t next_gen(struct pool *p)
{
	return ((atomic_load(&p->work) >> (2 * W_BITS)) + 1) & 0xffffff;
}

/* What pool_run and pool_run_split share before a job is published: a job
 * of one item (or a pool of one thread) runs inline (returns false);
 * otherwise the job's function is set, its count clamped and reset, and
 * *g is its generation. */
static bool job_begin(struct pool *p, pool_fn fn, void *ctx, int *n_items, uint64_t *g)
{
	if (*n_items <= 0)
		return false;
	if (p->n == 1 || *n_items == 1) {
		for (int i = 0; i < *n_items; i++)
			fn(ctx, i, 0);
		return false;
	}
	if (*n_items > (int)W_MASK)
		*n_items = (int)W_MASK; /* callers stay far below */
	p->fn = fn;
	p->ctx = ctx;
	atomic_store(&p->done, 0);
	*g = next_gen(p);
	return true;
}

void pool_run(struct pool *p, pool_fn fn, void *ctx, int n_items)
{
	uint64_t g;

	if (!job_begin(p, fn, ctx, &n_items, &g))
		return;
	atomic_store(&p->work, g << (2 * W_BITS) | (uint64_t)n_items << W_BITS);
	publish(p);
	run_items(p, g, 0);
	wait_done(p, n_items);
}

void pool_run_split(struct pool *p, pool_fn fn, void *ctx, int n_items)
{
	uint64_t g;

	if (!job_begin(p, fn, ctx, &n_items, &g))
		return;
	/* the shared word moves to generation g with no items: pool_run's
	 * claims fail, and the next job numbers from here */
	atomic_store(&p->work, g << (2 * W_BITS));
	for (int i = 0; i < p->n; i++) {
		uint64_t lo = (uint64_t)((int64_t)n_items * i / p->n), hi = (uint64_t)((int64_t)n_items * (i + 1) / p->n);

		atomic_store(&p->rg[i].w, g << (2 * W_BITS) | hi << W_BITS | lo);
	}
	publish(p);
	run_split(p, g, 0);
	wait_done(p, n_items);
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
	free(p->rg);
	free(p);
}
