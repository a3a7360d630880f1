/* charter.c — the charter model: diagnostics lists, lookups, rates, freeing. */
#include "charter/charter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charter/charter_int.h"
#include "common/buf.h"

/* ---- diagnostics --------------------------------------------------------- */

void charter_diag_add(struct charter_errors *errs, bool warning, const char *file,
		      struct charter_mark m, const char *fmt, ...)
{
	struct charter_diag **list = warning ? &errs->warnings : &errs->errors;
	size_t *n = warning ? &errs->nwarnings : &errs->nerrors;
	size_t *cap = warning ? &errs->cap_warnings_ : &errs->cap_errors_;
	struct buf msg = BUF_INIT, text = BUF_INIT;
	va_list ap;

	if (!warning && errs->nerrors >= CHARTER_MAX_ERRORS) {
		errs->dropped_++;
		return;
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct charter_diag *p = realloc(*list, nc * sizeof *p);
		if (!p) {
			errs->oom = true;
			return;
		}
		*list = p;
		*cap = nc;
	}
	char tmp[1024];
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	buf_puts(&msg, tmp);
	buf_printf(&text, "%s:%u:%u: %s%s", file ? file : "-", m.line, m.col,
		   warning ? "warning: " : "", tmp);
	if (msg.oom || text.oom) {
		buf_release(&msg);
		buf_release(&text);
		errs->oom = true;
		return;
	}
	struct charter_diag *d = &(*list)[(*n)++];
	d->mark = m;
	d->message = buf_detach(&msg, NULL);
	d->text = buf_detach(&text, NULL);
}

/* qsort is not stable; make it so by sorting (diag, sequence) pairs. */
struct diag_item {
	struct charter_diag d;
	size_t seq;
};

static int diag_item_cmp(const void *a, const void *b)
{
	const struct diag_item *x = a, *y = b;
	if (x->d.mark.line != y->d.mark.line)
		return x->d.mark.line < y->d.mark.line ? -1 : 1;
	if (x->d.mark.col != y->d.mark.col)
		return x->d.mark.col < y->d.mark.col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void diag_sort(struct charter_diag *d, size_t n)
{
	if (n < 2)
		return;
	struct diag_item *tmp = malloc(n * sizeof *tmp);
	if (!tmp)
		return; /* unsorted but complete */
	for (size_t i = 0; i < n; i++) {
		tmp[i].d = d[i];
		tmp[i].seq = i;
	}
	qsort(tmp, n, sizeof *tmp, diag_item_cmp);
	for (size_t i = 0; i < n; i++)
		d[i] = tmp[i].d;
	free(tmp);
}

void charter_diag_finish(struct charter_errors *errs, const char *file,
			 size_t from_err, size_t from_warn)
{
	if (errs->nerrors > from_err)
		diag_sort(errs->errors + from_err, errs->nerrors - from_err);
	if (errs->nwarnings > from_warn)
		diag_sort(errs->warnings + from_warn, errs->nwarnings - from_warn);
	if (errs->dropped_) {
		size_t dropped = errs->dropped_;
		struct charter_mark m = {1, 1};
		errs->dropped_ = 0;
		errs->nerrors--; /* make room for the summary line */
		free(errs->errors[errs->nerrors].message);
		free(errs->errors[errs->nerrors].text);
		charter_diag_add(errs, false, file, m,
				 "too many errors; %zu more not shown", dropped + 1);
		/* the summary goes last, whatever its position */
	}
}

void charter_errors_release(struct charter_errors *errs)
{
	for (size_t i = 0; i < errs->nerrors; i++) {
		free(errs->errors[i].message);
		free(errs->errors[i].text);
	}
	for (size_t i = 0; i < errs->nwarnings; i++) {
		free(errs->warnings[i].message);
		free(errs->warnings[i].text);
	}
	free(errs->errors);
	free(errs->warnings);
	memset(errs, 0, sizeof *errs);
}

void charter_errors_print(const struct charter_errors *errs, FILE *err)
{
	for (size_t i = 0; i < errs->nerrors; i++)
		fprintf(err, "%s\n", errs->errors[i].text);
	for (size_t i = 0; i < errs->nwarnings; i++)
		fprintf(err, "%s\n", errs->warnings[i].text);
}

/* ---- id indexes ---------------------------------------------------------- */

struct index_ctx {
	const char *base;
	size_t stride, off;
};

static const char *id_at(const char *base, size_t stride, size_t off, size_t i)
{
	const char *const *p = (const char *const *)(const void *)(base + i * stride + off);
	return *p;
}

/* qsort has no context argument in C17; sort (id, position) pairs instead. */
struct id_pos {
	const char *id;
	size_t pos;
};

static int id_pos_cmp(const void *a, const void *b)
{
	const struct id_pos *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

size_t *charter_index_build(const void *base, size_t n, size_t stride, size_t off,
			    bool *oom)
{
	if (n == 0)
		return NULL;
	struct id_pos *tmp = malloc(n * sizeof *tmp);
	size_t *idx = malloc(n * sizeof *idx);
	if (!tmp || !idx) {
		free(tmp);
		free(idx);
		*oom = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		tmp[i].id = id_at(base, stride, off, i);
		tmp[i].pos = i;
	}
	qsort(tmp, n, sizeof *tmp, id_pos_cmp);
	for (size_t i = 0; i < n; i++)
		idx[i] = tmp[i].pos;
	free(tmp);
	return idx;
}

size_t charter_index_find(const size_t *idx, const void *base, size_t n, size_t stride,
			  size_t off, const char *id)
{
	size_t lo = 0, hi = n;
	if (!idx || !id)
		return CHARTER_NOT_FOUND;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(id_at(base, stride, off, idx[mid]), id);
		if (c == 0) {
			/* the first of equal ids (duplicates only in invalid input) */
			while (mid > 0 && strcmp(id_at(base, stride, off, idx[mid - 1]), id) == 0)
				mid--;
			return idx[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return CHARTER_NOT_FOUND;
}

/* ---- lookups ------------------------------------------------------------- */

#define FIND(arr, n, idx, type, field) \
	charter_index_find((idx), (arr), (n), sizeof(type), offsetof(type, field), id)

const struct charter_institution *charter_institution(const struct charter *c,
							const char *id)
{
	size_t i = FIND(c->institutions, c->ninstitutions, c->institutions_by_id_,
			struct charter_institution, id);
	return i == CHARTER_NOT_FOUND ? NULL : &c->institutions[i];
}

const struct charter_project *charter_project(const struct charter_institution *inst,
					      const char *id)
{
	size_t i = FIND(inst->projects, inst->nprojects, inst->projects_by_id_,
			struct charter_project, id);
	return i == CHARTER_NOT_FOUND ? NULL : &inst->projects[i];
}

const char *charter_member(const struct charter_project *proj, const char *id)
{
	size_t i = charter_index_find(proj->members_by_id_, proj->members, proj->nmembers,
				      sizeof(char *), 0, id);
	return i == CHARTER_NOT_FOUND ? NULL : proj->members[i];
}

const struct charter_provider *charter_provider(const struct charter *c, const char *id)
{
	size_t i = FIND(c->providers, c->nproviders, c->providers_by_id_,
			struct charter_provider, id);
	return i == CHARTER_NOT_FOUND ? NULL : &c->providers[i];
}

const struct charter_model *charter_model(const struct charter *c, const char *id)
{
	size_t i = FIND(c->models, c->nmodels, c->models_by_id_, struct charter_model, id);
	return i == CHARTER_NOT_FOUND ? NULL : &c->models[i];
}

bool charter_institution_allows_model(const struct charter *c,
				      const struct charter_institution *inst,
				      const char *model_id)
{
	if (!model_id || !charter_model(c, model_id))
		return false;
	if (inst->all_models)
		return true;
	for (size_t i = 0; i < inst->nmodels; i++)
		if (strcmp(inst->models[i], model_id) == 0)
			return true;
	return false;
}

const struct charter_provider *charter_provider_by_key(const struct charter *c,
						       const unsigned char pub[CHARTER_KEY_LEN])
{
	for (size_t i = 0; i < c->nproviders; i++)
		for (size_t k = 0; k < c->providers[i].nkeys; k++)
			if (memcmp(c->providers[i].keys[k].pub, pub, CHARTER_KEY_LEN) == 0)
				return &c->providers[i];
	return NULL;
}

bool charter_provider_has_resource(const struct charter *c,
				   const struct charter_provider *p, const char *resource)
{
	if (!resource)
		return false;
	if (p->resources_given) {
		for (size_t i = 0; i < p->nresources; i++)
			if (strcmp(p->resources[i], resource) == 0)
				return true;
		return false;
	}
	if (p->builtin)
		return strcmp(resource, "tokens_in") == 0 || strcmp(resource, "tokens_out") == 0;
	for (size_t i = 0; i < c->nrates; i++)
		if (strcmp(c->rates[i].resource, resource) == 0)
			return true;
	return false;
}

bool charter_provider_may_report(const struct charter *c, const struct charter_provider *p,
				 const char *resource, const char *model)
{
	if (charter_provider_has_resource(c, p, resource))
		return true;
	/* Gate usage is always bookable from the model's own provider (SPEC
	 * section 2): a provider's `resources` list restricts what it may
	 * report of its own accord, never the tokens its models served. */
	if (!resource || !model || !model[0] ||
	    (strcmp(resource, "tokens_in") != 0 && strcmp(resource, "tokens_out") != 0))
		return false;
	const struct charter_model *m = charter_model(c, model);
	return m && m->provider == p;
}

const struct charter_rate *charter_rate_for(const struct charter *c, const char *resource,
					    const char *model, const char *cls)
{
	const struct charter_rate *best = NULL;
	int best_score = -1;

	if (!resource)
		return NULL;
	for (size_t i = 0; i < c->nrates; i++) {
		const struct charter_rate *r = &c->rates[i];
		int score = 0;
		if (strcmp(r->resource, resource) != 0)
			continue;
		if (r->model) {
			if (!model || strcmp(r->model, model) != 0)
				continue;
			score += 2;
		}
		if (r->cls) {
			if (!cls || strcmp(r->cls, cls) != 0)
				continue;
			score += 1;
		}
		if (score > best_score) {
			best = r;
			best_score = score;
		}
	}
	return best;
}

/* ---- names and arithmetic ------------------------------------------------ */

const char *charter_period_name(enum charter_period p)
{
	switch (p) {
	case CHARTER_PERIOD_DAY: return "day";
	case CHARTER_PERIOD_WEEK: return "week";
	case CHARTER_PERIOD_MONTH: return "month";
	case CHARTER_PERIOD_QUARTER: return "quarter";
	case CHARTER_PERIOD_YEAR: return "year";
	case CHARTER_PERIOD_TOTAL: return "total";
	}
	return "?";
}

const char *charter_overage_name(enum charter_overage_mode m)
{
	return m == CHARTER_OVERAGE_SOFT ? "soft" : "hard";
}

/* How many of each period fit in the 400-year Gregorian cycle. */
static unsigned long long periods_per_cycle(enum charter_period p)
{
	switch (p) {
	case CHARTER_PERIOD_DAY: return 146097;
	case CHARTER_PERIOD_WEEK: return 20871;
	case CHARTER_PERIOD_MONTH: return 4800;
	case CHARTER_PERIOD_QUARTER: return 1600;
	case CHARTER_PERIOD_YEAR: return 400;
	case CHARTER_PERIOD_TOTAL: return 1;
	}
	return 1;
}

const char *charter_event_name(unsigned ev)
{
	switch (ev) {
	case CHARTER_EV_ALERT: return "alert";
	case CHARTER_EV_OVERAGE: return "overage";
	case CHARTER_EV_CHARTER: return "charter";
	case CHARTER_EV_SETTLEMENT_FAILED: return "settlement_failed";
	default: return "";
	}
}

int charter_allocation_cmp(const struct charter_allocation *child,
			   const struct charter_allocation *parent)
{
	__extension__ typedef unsigned __int128 u128;
	bool ct = child->period == CHARTER_PERIOD_TOTAL;
	bool pt = parent->period == CHARTER_PERIOD_TOTAL;
	if (ct != pt)
		return 2;
	u128 a = (u128)(uint64_t)(child->credits < 0 ? 0 : child->credits) *
		 periods_per_cycle(child->period);
	u128 b = (u128)(uint64_t)(parent->credits < 0 ? 0 : parent->credits) *
		 periods_per_cycle(parent->period);
	return a < b ? -1 : a > b;
}

/* ---- freeing ------------------------------------------------------------- */

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void charter_free(struct charter *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nrates; i++) {
		free(c->rates[i].resource);
		free(c->rates[i].model);
		free(c->rates[i].cls);
	}
	free(c->rates);
	for (size_t i = 0; i < c->nproviders; i++) {
		struct charter_provider *p = &c->providers[i];
		free(p->id);
		free(p->name);
		for (size_t k = 0; k < p->nkeys; k++)
			free(p->keys[k].text);
		free(p->keys);
		free_strv(p->resources, p->nresources);
	}
	free(c->providers);
	for (size_t i = 0; i < c->nmodels; i++) {
		struct charter_model *m = &c->models[i];
		free(m->id);
		free(m->provider_id);
		free(m->file);
		free(m->url);
		free(m->upstream_model);
	}
	free(c->models);
	for (size_t i = 0; i < c->ninstitutions; i++) {
		struct charter_institution *in = &c->institutions[i];
		free(in->id);
		free(in->name);
		free(in->alerts);
		free_strv(in->models, in->nmodels);
		for (size_t j = 0; j < in->nprojects; j++) {
			struct charter_project *pr = &in->projects[j];
			free(pr->id);
			free(pr->name);
			free_strv(pr->members, pr->nmembers);
			free(pr->members_by_id_);
		}
		free(in->projects);
		free(in->projects_by_id_);
	}
	free(c->institutions);
	for (size_t i = 0; i < c->nwebhooks; i++)
		free(c->webhooks[i].url);
	free(c->webhooks);
	free(c->providers_by_id_);
	free(c->models_by_id_);
	free(c->institutions_by_id_);
	free(c->file);
	free(c->id);
	free(c->title);
	free(c->timezone);
	free(c->unit);
	free(c);
}
