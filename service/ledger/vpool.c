/* vpool.c — helper threads for indexed loops (ledger/vpool.h). */
#include "ledger/vpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define VPOOL_MAX_THREADS 64

/* One caller's loop, on the caller's stack while it is queued or running. */
struct vjob {
	vpool_fn fn;
	void *arg;
	size_t n, chunk;
	size_t next;          /* first index not handed out */
	int active;           /* pool threads inside fn for this job */
	pthread_cond_t done;  /* signalled when active drops to 0 */
	struct vjob *link;
};

struct vpool {
	pthread_mutex_t mu;
	pthread_cond_t work;
	struct vjob *head, **tail;  /* jobs with ranges left */
	bool stop;
	int n;
	pthread_t th[];
};

/* Hands out j's next range; unqueues j when that was its last.  Holds mu. */
static void take(struct vpool *p, struct vjob *j, size_t *from, size_t *to)
{
	*from = j->next;
	*to = j->n - j->next > j->chunk ? j->next + j->chunk : j->n;
	j->next = *to;
	if (j->next < j->n)
		return;
	/* exhausted: unlink it (it is in the queue until now) */
	struct vjob **pp = &p->head;
	while (*pp && *pp != j)
		pp = &(*pp)->link;
	if (*pp) {
		*pp = j->link;
		if (p->tail == &j->link)
			p->tail = pp;
		j->link = NULL;
	}
}

static void *vpool_main(void *arg)
{
	struct vpool *p = arg;
	pthread_setname_np(pthread_self(), "allot-vpool"); /* in top and perf */
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && !p->head)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->stop)
			break;
		struct vjob *j = p->head;
		size_t from, to;
		take(p, j, &from, &to);
		j->active++;
		pthread_mutex_unlock(&p->mu);
		j->fn(j->arg, from, to);
		pthread_mutex_lock(&p->mu);
		if (--j->active == 0)
			pthread_cond_signal(&j->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct vpool *vpool_new(int nthreads)
{
	if (nthreads <= 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = c > 0 ? (int)c : 1;
	}
	if (nthreads > VPOOL_MAX_THREADS)
		nthreads = VPOOL_MAX_THREADS;
	struct vpool *p = calloc(1, sizeof *p + (size_t)nthreads * sizeof p->th[0]);
	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	p->tail = &p->head;
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&p->th[p->n], NULL, vpool_main, p) != 0)
			break;
		p->n++;
	}
	if (p->n == 0) {
		vpool_free(p);
		return NULL;
	}
	return p;
}

void vpool_free(struct vpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void vpool_run(struct vpool *p, size_t n, size_t chunk, vpool_fn fn, void *arg)
{
	if (chunk == 0)
		chunk = 1;
	if (!p || n <= chunk) {
		for (size_t i = 0; i < n; i += chunk)
			fn(arg, i, n - i > chunk ? i + chunk : n);
		return;
	}
	struct vjob j = {.fn = fn, .arg = arg, .n = n, .chunk = chunk};
	pthread_cond_init(&j.done, NULL);
	pthread_mutex_lock(&p->mu);
	*p->tail = &j;
	p->tail = &j.link;
	pthread_cond_broadcast(&p->work);
	/* The caller works through its own loop too. */
	while (j.next < j.n) {
		size_t from, to;
		take(p, &j, &from, &to);
		pthread_mutex_unlock(&p->mu);
		fn(arg, from, to);
		pthread_mutex_lock(&p->mu);
	}
	while (j.active > 0)
		pthread_cond_wait(&j.done, &p->mu);
	pthread_mutex_unlock(&p->mu);
	pthread_cond_destroy(&j.done);
}
