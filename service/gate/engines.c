/* engines.c — bundled engines that follow the charter in force
 * (gate/engines.h). */
#include "gate/engines.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "gate/gate.h"
#include "infer/backend_cuda.h"
#include "infer/engine.h"

enum eng_state { ENG_LOADING, ENG_READY, ENG_FAILED };

struct eng_slot {
	struct eng_slot *next;
	char id[STORE_ID_MAX];
	char file[256];
	struct infer_engine *eng;   /* ENG_READY only */
	enum eng_state state;
	char detail[200];
	int refs;                   /* admitted requests holding it */
	bool retired;               /* no longer in the charter: handed out no more */
	int64_t retired_us;
	uint64_t gen;               /* unique per slot, for the thread's memory */
};

struct gate_engines {
	struct chist *charters;     /* not owned */
	char models[1024];          /* the models' directory */
	int threads;
	bool cuda;                  /* engines on CUDA device cuda_device */
	int cuda_device;
	pthread_mutex_t mu;         /* guards the list and every slot's fields */
	pthread_cond_t cv;
	struct eng_slot *head;
	uint64_t gen;
	bool stop, kicked;          /* under mu */
	pthread_mutex_t load_mu;    /* one reconcile at a time */
	pthread_t thread;
	bool running;
	int64_t grace_us;           /* ENGINES_GRACE_US; ALLOT_ENGINE_GRACE_MS (tests) */
};

/* The slot engines_get last returned on this thread. */
static __thread struct eng_slot *tls_slot;
static __thread uint64_t tls_gen;

static const char *state_name(enum eng_state s)
{
	return s == ENG_READY ? "ready" : s == ENG_LOADING ? "loading" : "failed";
}

/* Is (id, file) a bundled model of c? */
static bool wanted(const struct charter *c, const char *id, const char *file)
{
	const struct charter_model *m = charter_model(c, id);
	return m && m->provider && m->provider->builtin && m->file && strcmp(m->file, file) == 0;
}

/* The live (not retired) slot of model (mu held). */
static struct eng_slot *live(struct gate_engines *es, const char *model)
{
	for (struct eng_slot *s = es->head; s; s = s->next)
		if (!s->retired && strcmp(s->id, model) == 0)
			return s;
	return NULL;
}

static void load(struct gate_engines *es, struct eng_slot *s)
{
	char path[2048], detail[200];
	snprintf(path, sizeof path, "%s/%s", es->models, s->file);
	struct infer_engine *eng = NULL;
	enum eng_state st = ENG_FAILED;
	struct stat sb;
	if (stat(path, &sb) != 0) {
		snprintf(detail, sizeof detail, "no model file %.100s", s->file);
		log_warnx("gate: model %s: file %s not found; requests for it get 503", s->id, path);
	} else {
		struct infer_params p = {.n_threads = es->threads};
		if (es->cuda) {
			p.backend = &infer_backend_cuda;
			p.device = es->cuda_device;
		}
		char err[256];
		if (infer_open(path, &p, &eng, err, sizeof err)) {
			snprintf(detail, sizeof detail, "%.190s", err);
			log_warnx("gate: model %s: %s", s->id, err);
			eng = NULL;
		} else {
			struct infer_info info;
			infer_get_info(eng, &info);
			snprintf(detail, sizeof detail, "%.60s (%s, %.30s)", s->file, info.weight_type,
				 info.backend);
			st = ENG_READY;
			log_info("gate: model %s loaded: %s", s->id, detail);
		}
	}
	pthread_mutex_lock(&es->mu);
	s->eng = eng;
	s->state = st;
	snprintf(s->detail, sizeof s->detail, "%s", detail);
	pthread_mutex_unlock(&es->mu);
}

/* Closes retired slots nobody holds, past the grace period (or never ready). */
static void reap(struct gate_engines *es, int64_t now)
{
	struct eng_slot *dead = NULL;
	pthread_mutex_lock(&es->mu);
	for (struct eng_slot **pp = &es->head; *pp;) {
		struct eng_slot *s = *pp;
		if (s->retired && s->refs == 0 &&
		    (s->state != ENG_READY || now - s->retired_us >= es->grace_us)) {
			*pp = s->next;
			s->next = dead;
			dead = s;
		} else {
			pp = &s->next;
		}
	}
	pthread_mutex_unlock(&es->mu);
	while (dead) {
		struct eng_slot *n = dead->next;
		if (dead->eng) {
			infer_close(dead->eng);
			log_info("gate: model %s (%s) unloaded", dead->id, dead->file);
		}
		free(dead);
		dead = n;
	}
}

static void reconcile(struct gate_engines *es, bool retry_failed)
{
	pthread_mutex_lock(&es->load_mu);
	struct active_charter *ac = chist_get(es->charters);
	int64_t now = time_now_us();
	if (ac) {
		const struct charter *c = ac->c;
		pthread_mutex_lock(&es->mu);
		for (struct eng_slot *s = es->head; s; s = s->next)
			if (!s->retired && (!wanted(c, s->id, s->file) ||
					    (retry_failed && s->state == ENG_FAILED))) {
				s->retired = true;
				s->retired_us = now;
				if (s->state == ENG_READY)
					log_info("gate: model %s (%s) is no longer in the charter in "
						 "force; unloading it once its requests end", s->id,
						 s->file);
			}
		pthread_mutex_unlock(&es->mu);
		for (size_t i = 0; i < c->nmodels; i++) {
			const struct charter_model *m = &c->models[i];
			if (!m->provider || !m->provider->builtin || !m->file)
				continue;
			pthread_mutex_lock(&es->mu);
			bool have = live(es, m->id) != NULL;
			struct eng_slot *s = have ? NULL : calloc(1, sizeof *s);
			if (s) {
				snprintf(s->id, sizeof s->id, "%s", m->id);
				snprintf(s->file, sizeof s->file, "%s", m->file);
				s->state = ENG_LOADING;
				snprintf(s->detail, sizeof s->detail, "loading %.100s", m->file);
				s->gen = ++es->gen;
				s->next = es->head;
				es->head = s;
			}
			pthread_mutex_unlock(&es->mu);
			if (s)
				load(es, s);
		}
	}
	chist_put(es->charters, ac);
	reap(es, time_now_us());
	pthread_mutex_unlock(&es->load_mu);
}

static void *loader(void *arg)
{
	struct gate_engines *es = arg;
	pthread_mutex_lock(&es->mu);
	while (!es->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)ENGINES_POLL_MS * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		if (!es->kicked)
			pthread_cond_timedwait(&es->cv, &es->mu, &ts);
		if (es->stop)
			break;
		bool kicked = es->kicked;
		es->kicked = false;
		pthread_mutex_unlock(&es->mu);
		reconcile(es, kicked);
		pthread_mutex_lock(&es->mu);
	}
	pthread_mutex_unlock(&es->mu);
	return NULL;
}

allot_err engines_open(struct chist *charters, const struct gate_config *cfg,
		       struct gate_engines **out)
{
	struct gate_engines *es = calloc(1, sizeof *es);
	if (!es)
		return ALLOT_E_NOMEM;
	es->charters = charters;
	snprintf(es->models, sizeof es->models, "%s", cfg->models ? cfg->models : ".");
	es->threads = cfg->threads;
	es->cuda = cfg->cuda;
	es->cuda_device = cfg->cuda_device;
	pthread_mutex_init(&es->mu, NULL);
	pthread_mutex_init(&es->load_mu, NULL);
	pthread_cond_init(&es->cv, NULL);
	es->grace_us = ENGINES_GRACE_US;
	const char *g = getenv("ALLOT_ENGINE_GRACE_MS");
	if (g && *g) {
		char *end;
		long long ms = strtoll(g, &end, 10);
		if (!*end && ms >= 0 && ms <= 3600 * 1000)
			es->grace_us = ms * 1000;
		else
			log_warnx("gate: ALLOT_ENGINE_GRACE_MS=\"%s\" ignored (milliseconds, 0..3600000)", g);
	}
	reconcile(es, false);
	if (!cfg->no_background) {
		if (pthread_create(&es->thread, NULL, loader, es) == 0)
			es->running = true;
		else
			log_warnx("gate: cannot start the model loader; models load at start and "
				  "when a charter is applied");
	}
	*out = es;
	return ALLOT_OK;
}

void engines_close(struct gate_engines *es)
{
	if (!es)
		return;
	if (es->running) {
		pthread_mutex_lock(&es->mu);
		es->stop = true;
		pthread_cond_signal(&es->cv);
		pthread_mutex_unlock(&es->mu);
		pthread_join(es->thread, NULL);
	}
	for (struct eng_slot *s = es->head, *n; s; s = n) {
		n = s->next;
		if (s->eng)
			infer_close(s->eng);
		free(s);
	}
	pthread_mutex_destroy(&es->mu);
	pthread_mutex_destroy(&es->load_mu);
	pthread_cond_destroy(&es->cv);
	free(es);
}

void engines_kick(struct gate_engines *es)
{
	if (!es)
		return;
	if (!es->running) {
		reconcile(es, true); /* no loader thread: here */
		return;
	}
	pthread_mutex_lock(&es->mu);
	es->kicked = true;
	pthread_cond_signal(&es->cv);
	pthread_mutex_unlock(&es->mu);
}

struct infer_engine *engines_get(struct gate_engines *es, const char *model)
{
	pthread_mutex_lock(&es->mu);
	struct eng_slot *s = live(es, model);
	struct infer_engine *eng = s && s->state == ENG_READY ? s->eng : NULL;
	tls_slot = eng ? s : NULL;
	tls_gen = eng ? s->gen : 0;
	pthread_mutex_unlock(&es->mu);
	return eng;
}

void *engines_hold(struct gate_engines *es, const char *model)
{
	pthread_mutex_lock(&es->mu);
	struct eng_slot *h = NULL;
	/* The thread's slot if it is still listed (never reaped: the grace
	 * period is far longer than tokenizing a prompt). */
	for (struct eng_slot *s = es->head; s && tls_slot; s = s->next)
		if (s == tls_slot && s->gen == tls_gen && strcmp(s->id, model) == 0)
			h = s;
	if (!h) {
		h = live(es, model);
		if (h && h->state != ENG_READY)
			h = NULL;
	}
	if (h)
		h->refs++;
	tls_slot = NULL;
	tls_gen = 0;
	pthread_mutex_unlock(&es->mu);
	return h;
}

void engines_release(struct gate_engines *es, void *hold)
{
	struct eng_slot *s = hold;
	if (!s)
		return;
	pthread_mutex_lock(&es->mu);
	s->refs--;
	bool reap_now = s->retired && s->refs == 0;
	pthread_mutex_unlock(&es->mu);
	if (reap_now)
		engines_kick(es); /* the loader closes it (not this request's thread) */
}

const char *engines_model_state(struct gate_engines *es, const char *model)
{
	pthread_mutex_lock(&es->mu);
	struct eng_slot *s = live(es, model);
	const char *st = s ? state_name(s->state) : NULL;
	pthread_mutex_unlock(&es->mu);
	return st;
}

json_t *engines_json(struct gate_engines *es)
{
	json_t *j = json_object();
	pthread_mutex_lock(&es->mu);
	for (struct eng_slot *s = es->head; j && s; s = s->next)
		if (!s->retired)
			json_object_set_new(j, s->id, json_pack("{s:s,s:s}", "state",
								 state_name(s->state), "detail",
								 s->detail));
	pthread_mutex_unlock(&es->mu);
	return j;
}

void engines_describe(struct gate_engines *es, char *out, size_t outsz)
{
	size_t used = 0;
	out[0] = '\0';
	pthread_mutex_lock(&es->mu);
	for (struct eng_slot *s = es->head; s && used < outsz; s = s->next)
		if (!s->retired)
			used += (size_t)snprintf(out + used, outsz - used, "%s%s: %s %s",
						 used ? "; " : "", s->id, state_name(s->state),
						 s->detail);
	pthread_mutex_unlock(&es->mu);
	if (!out[0])
		snprintf(out, outsz, "no bundled model in the charter");
}

bool engines_all_ready(struct gate_engines *es)
{
	bool ok = true;
	pthread_mutex_lock(&es->mu);
	for (struct eng_slot *s = es->head; s; s = s->next)
		ok &= s->retired || s->state == ENG_READY;
	pthread_mutex_unlock(&es->mu);
	return ok;
}
