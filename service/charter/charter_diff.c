/* charter_diff.c — what changes when one charter replaces another: the JSON
 * of POST /v1/charter/validate ("changes") and its text form for
 * `allot charter validate`.  The shape is documented in charter.h and
 * docs/CHARTER.md ("What validate reports").  Keys other than from_version,
 * to_version and institutions appear only when something changed. */
#include "charter/charter.h"

#include <string.h>

#include "common/money.h"

/* Sticky-failure setters: once something fails, *ok is false and the caller
 * drops the whole object. */
static void set(json_t *o, const char *k, json_t *v, bool *ok)
{
	if (!v || json_object_set_new(o, k, v) != 0)
		*ok = false;
}

static void push(json_t *a, json_t *v, bool *ok)
{
	if (!v || json_array_append_new(a, v) != 0)
		*ok = false;
}

static json_t *amount(int64_t micro)
{
	char b[MONEY_FMT_MAX];
	return json_string(money_format(micro, b));
}

static json_t *new_obj(bool *ok)
{
	json_t *o = json_object();
	if (!o)
		*ok = false;
	return o;
}

static json_t *new_arr(bool *ok)
{
	json_t *a = json_array();
	if (!a)
		*ok = false;
	return a;
}

static json_t *from_to(json_t *from, json_t *to, bool *ok)
{
	json_t *o = new_obj(ok);
	if (!o) {
		json_decref(from);
		json_decref(to);
		return NULL;
	}
	set(o, "from", from ? from : json_null(), ok);
	set(o, "to", to ? to : json_null(), ok);
	return o;
}

static const char *change_name(const void *a, const void *b)
{
	return !a ? "added" : !b ? "removed" : "changed";
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* ---- allocations --------------------------------------------------------- */

static json_t *alloc_json(const struct charter_allocation *a, bool *ok)
{
	json_t *o = new_obj(ok);
	if (!o)
		return NULL;
	set(o, "credits", amount(a->credits), ok);
	set(o, "period", json_string(charter_period_name(a->period)), ok);
	set(o, "rollover", amount(a->rollover_ppm), ok); /* ppm has the micro scale */
	return o;
}

static bool alloc_eq(const struct charter_allocation *a, const struct charter_allocation *b)
{
	return a->credits == b->credits && a->period == b->period &&
	       a->rollover_ppm == b->rollover_ppm;
}

/* {"from": ALLOC|null, "to": ALLOC|null, "delta": "..."}; a or b may be NULL. */
static json_t *alloc_change(const struct charter_allocation *a,
			    const struct charter_allocation *b, bool *ok)
{
	json_t *o = from_to(a ? alloc_json(a, ok) : NULL, b ? alloc_json(b, ok) : NULL, ok);
	if (o && a && b && a->period == b->period) {
		char d[MONEY_FMT_MAX + 1];
		int64_t delta = b->credits - a->credits; /* both within MONEY_MAX */
		d[0] = '+';
		money_format(delta, d + (delta >= 0));
		if (delta == 0)
			strcpy(d, "0");
		set(o, "delta", json_string(d), ok);
	}
	return o;
}

static const struct charter_allocation *member_alloc(const struct charter_project *p)
{
	return p && p->has_member_allocation ? &p->member_allocation : NULL;
}

/* ---- limits, overage, alerts, lists -------------------------------------- */

/* {"requests_per_minute": {"from": 600|null, "to": 300|null}, ...} for the
 * limits that differ, or NULL when none does. */
static json_t *limits_change(const struct charter_limits *a, const struct charter_limits *b,
			     bool *ok)
{
	static const char *const names[] = {"requests_per_minute", "tokens_per_minute",
					    "max_tokens_per_request", "concurrent_requests"};
	const int64_t va[] = {a->requests_per_minute, a->tokens_per_minute,
			      a->max_tokens_per_request, a->concurrent_requests};
	const int64_t vb[] = {b->requests_per_minute, b->tokens_per_minute,
			      b->max_tokens_per_request, b->concurrent_requests};
	json_t *o = NULL;
	for (size_t i = 0; i < 4; i++) {
		if (va[i] == vb[i])
			continue;
		if (!o && !(o = new_obj(ok)))
			return NULL;
		set(o, names[i],
		    from_to(va[i] == CHARTER_UNSET ? NULL : json_integer(va[i]),
			    vb[i] == CHARTER_UNSET ? NULL : json_integer(vb[i]), ok), ok);
	}
	return o;
}

static json_t *overage_json(const struct charter_overage *o, bool *ok)
{
	json_t *j = new_obj(ok);
	if (!j)
		return NULL;
	set(j, "mode", json_string(charter_overage_name(o->mode)), ok);
	if (o->mode == CHARTER_OVERAGE_SOFT)
		/* grace_ppm * 100 / 1e6 percent == grace_ppm micro-percent */
		set(j, "grace_percent", amount((int64_t)o->grace_ppm * 100), ok);
	return j;
}

static json_t *ints_json(const int32_t *v, size_t n, bool *ok)
{
	json_t *a = new_arr(ok);
	for (size_t i = 0; a && i < n; i++)
		push(a, json_integer(v[i]), ok);
	return a;
}

static bool in_list(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* {"added": [...], "removed": [...]} between two string lists (document
 * order), or NULL when they hold the same strings. */
static json_t *list_change(char *const *a, size_t na, char *const *b, size_t nb, bool *ok)
{
	json_t *add = new_arr(ok), *rem = new_arr(ok);
	for (size_t i = 0; add && i < nb; i++)
		if (!in_list(a, na, b[i]))
			push(add, json_string(b[i]), ok);
	for (size_t i = 0; rem && i < na; i++)
		if (!in_list(b, nb, a[i]))
			push(rem, json_string(a[i]), ok);
	if (!add || !rem || (json_array_size(add) == 0 && json_array_size(rem) == 0)) {
		json_decref(add);
		json_decref(rem);
		return NULL;
	}
	json_t *o = new_obj(ok);
	if (!o) {
		json_decref(add);
		json_decref(rem);
		return NULL;
	}
	set(o, "added", add, ok);
	set(o, "removed", rem, ok);
	return o;
}

/* ---- projects and institutions ------------------------------------------- */

/* A project's entry, or NULL when it did not change (*ok untouched). */
static json_t *project_change(const struct charter_project *a,
			      const struct charter_project *b, bool *ok)
{
	const struct charter_allocation *ma = member_alloc(a), *mb = member_alloc(b);
	bool alloc_changed = !a || !b || !alloc_eq(&a->allocation, &b->allocation);
	bool member_changed = (ma != NULL) != (mb != NULL) || (ma && mb && !alloc_eq(ma, mb));
	json_t *limits = a && b ? limits_change(&a->limits, &b->limits, ok) : NULL;
	json_t *members = a && b ? list_change(a->members, a->nmembers, b->members,
					       b->nmembers, ok) : NULL;
	if (!alloc_changed && !member_changed && !limits && !members)
		return NULL;
	json_t *o = new_obj(ok);
	if (!o) {
		json_decref(limits);
		json_decref(members);
		return NULL;
	}
	set(o, "id", json_string(a ? a->id : b->id), ok);
	set(o, "change", json_string(change_name(a, b)), ok);
	if (alloc_changed)
		set(o, "allocation",
		    alloc_change(a ? &a->allocation : NULL, b ? &b->allocation : NULL, ok), ok);
	if (member_changed)
		set(o, "member_allocation", alloc_change(ma, mb, ok), ok);
	if (limits)
		set(o, "limits", limits, ok);
	if (members)
		set(o, "members", members, ok);
	return o;
}

static json_t *projects_change(const struct charter_institution *a,
			       const struct charter_institution *b, bool *ok)
{
	json_t *projects = new_arr(ok);
	if (!projects)
		return NULL;
	/* projects of b in b's order (changed or added), then removed ones */
	for (size_t i = 0; b && i < b->nprojects; i++) {
		const struct charter_project *pb = &b->projects[i];
		const struct charter_project *pa = a ? charter_project(a, pb->id) : NULL;
		json_t *pc = project_change(pa, pb, ok);
		if (pc)
			push(projects, pc, ok);
	}
	for (size_t i = 0; a && i < a->nprojects; i++) {
		const struct charter_project *pa = &a->projects[i];
		if (b && charter_project(b, pa->id))
			continue;
		json_t *pc = project_change(pa, NULL, ok);
		if (pc)
			push(projects, pc, ok);
	}
	return projects;
}

/* The models an institution may use: "all" or the list. */
static json_t *models_allowed(const struct charter_institution *in, bool *ok)
{
	if (in->all_models)
		return json_string("all");
	json_t *a = new_arr(ok);
	for (size_t i = 0; a && i < in->nmodels; i++)
		push(a, json_string(in->models[i]), ok);
	return a;
}

/* Sets the institution-level changes other than allocation and projects
 * (limits, overage, alerts, models) on o; returns whether any was set. */
static bool institution_terms(json_t *o, const struct charter_institution *a,
			      const struct charter_institution *b, bool *ok)
{
	bool any = false;
	json_t *limits = limits_change(&a->limits, &b->limits, ok);
	if (limits) {
		set(o, "limits", limits, ok);
		any = true;
	}
	if (a->overage.mode != b->overage.mode || a->overage.grace_ppm != b->overage.grace_ppm) {
		set(o, "overage", from_to(overage_json(&a->overage, ok),
					  overage_json(&b->overage, ok), ok), ok);
		any = true;
	}
	if (a->nalerts != b->nalerts ||
	    (a->nalerts && memcmp(a->alerts, b->alerts, a->nalerts * sizeof *a->alerts))) {
		set(o, "alerts", from_to(ints_json(a->alerts, a->nalerts, ok),
					 ints_json(b->alerts, b->nalerts, ok), ok), ok);
		any = true;
	}
	json_t *models = NULL;
	if (a->all_models != b->all_models)
		models = from_to(models_allowed(a, ok), models_allowed(b, ok), ok);
	else
		models = list_change(a->models, a->nmodels, b->models, b->nmodels, ok);
	if (models) {
		set(o, "models", models, ok);
		any = true;
	}
	return any;
}

static json_t *institution_change(const struct charter_institution *a,
				  const struct charter_institution *b, bool *ok)
{
	json_t *projects = projects_change(a, b, ok);
	if (!projects)
		return NULL;
	json_t *o = new_obj(ok);
	if (!o) {
		json_decref(projects);
		return NULL;
	}
	bool alloc_changed = !a || !b || !alloc_eq(&a->allocation, &b->allocation);
	bool terms = a && b && institution_terms(o, a, b, ok);
	if (!alloc_changed && !terms && json_array_size(projects) == 0) {
		json_decref(projects);
		json_decref(o);
		return NULL;
	}
	set(o, "id", json_string(a ? a->id : b->id), ok);
	set(o, "change", json_string(change_name(a, b)), ok);
	set(o, "allocation",
	    alloc_change(a ? &a->allocation : NULL, b ? &b->allocation : NULL, ok), ok);
	set(o, "projects", projects, ok);
	return o;
}

/* ---- rates, providers, models -------------------------------------------- */

static const struct charter_rate *rate_find(const struct charter *c,
					    const struct charter_rate *r)
{
	for (size_t i = 0; c && i < c->nrates; i++)
		if (strcmp(c->rates[i].resource, r->resource) == 0 &&
		    str_eq(c->rates[i].model, r->model) && str_eq(c->rates[i].cls, r->cls))
			return &c->rates[i];
	return NULL;
}

static json_t *rate_change(const struct charter_rate *a, const struct charter_rate *b,
			   bool *ok)
{
	const struct charter_rate *r = a ? a : b;
	json_t *o = new_obj(ok);
	if (!o)
		return NULL;
	set(o, "resource", json_string(r->resource), ok);
	set(o, "model", r->model ? json_string(r->model) : json_null(), ok);
	set(o, "class", r->cls ? json_string(r->cls) : json_null(), ok);
	set(o, "change", json_string(change_name(a, b)), ok);
	set(o, "from", a ? amount(a->credits) : json_null(), ok);
	set(o, "to", b ? amount(b->credits) : json_null(), ok);
	return o;
}

static json_t *rates_change(const struct charter *old, const struct charter *next, bool *ok)
{
	json_t *arr = new_arr(ok);
	for (size_t i = 0; arr && i < next->nrates; i++) {
		const struct charter_rate *b = &next->rates[i], *a = rate_find(old, b);
		if (!a || a->credits != b->credits)
			push(arr, rate_change(a, b, ok), ok);
	}
	for (size_t i = 0; arr && old && i < old->nrates; i++)
		if (!rate_find(next, &old->rates[i]))
			push(arr, rate_change(&old->rates[i], NULL, ok), ok);
	return arr;
}

static bool provider_eq(const struct charter_provider *a, const struct charter_provider *b)
{
	if (a->builtin != b->builtin || a->nkeys != b->nkeys ||
	    a->nresources != b->nresources || !str_eq(a->name, b->name))
		return false;
	for (size_t i = 0; i < a->nkeys; i++)
		if (memcmp(a->keys[i].pub, b->keys[i].pub, CHARTER_KEY_LEN))
			return false;
	for (size_t i = 0; i < a->nresources; i++)
		if (!in_list(b->resources, b->nresources, a->resources[i]))
			return false;
	return true;
}

static json_t *providers_change(const struct charter *old, const struct charter *next,
				bool *ok)
{
	json_t *arr = new_arr(ok);
	for (size_t i = 0; arr && i < next->nproviders; i++) {
		const struct charter_provider *b = &next->providers[i];
		const struct charter_provider *a = old ? charter_provider(old, b->id) : NULL;
		if (!a || !provider_eq(a, b))
			push(arr, json_pack("{s:s,s:s}", "id", b->id, "change", change_name(a, b)),
			     ok);
	}
	for (size_t i = 0; arr && old && i < old->nproviders; i++)
		if (!charter_provider(next, old->providers[i].id))
			push(arr, json_pack("{s:s,s:s}", "id", old->providers[i].id, "change",
					    "removed"), ok);
	return arr;
}

/* A model as {"provider", "file"|"url", "upstream_model"?}. */
static json_t *model_json(const struct charter_model *m, bool *ok)
{
	json_t *o = new_obj(ok);
	if (!o)
		return NULL;
	set(o, "provider", json_string(m->provider_id), ok);
	if (m->file)
		set(o, "file", json_string(m->file), ok);
	if (m->url)
		set(o, "url", json_string(m->url), ok);
	if (m->upstream_model)
		set(o, "upstream_model", json_string(m->upstream_model), ok);
	return o;
}

static json_t *models_change(const struct charter *old, const struct charter *next, bool *ok)
{
	json_t *arr = new_arr(ok);
	for (size_t i = 0; arr && i < next->nmodels; i++) {
		const struct charter_model *b = &next->models[i];
		const struct charter_model *a = old ? charter_model(old, b->id) : NULL;
		if (a && str_eq(a->provider_id, b->provider_id) && str_eq(a->file, b->file) &&
		    str_eq(a->url, b->url) && str_eq(a->upstream_model, b->upstream_model))
			continue;
		json_t *o = from_to(a ? model_json(a, ok) : NULL, model_json(b, ok), ok);
		if (o) {
			set(o, "id", json_string(b->id), ok);
			set(o, "change", json_string(change_name(a, b)), ok);
		}
		push(arr, o, ok);
	}
	for (size_t i = 0; arr && old && i < old->nmodels; i++) {
		const struct charter_model *a = &old->models[i];
		if (charter_model(next, a->id))
			continue;
		json_t *o = from_to(model_json(a, ok), NULL, ok);
		if (o) {
			set(o, "id", json_string(a->id), ok);
			set(o, "change", json_string("removed"), ok);
		}
		push(arr, o, ok);
	}
	return arr;
}

/* ---- webhooks -------------------------------------------------------------- */

/* A webhook's events as ["alert", ...], in bit order. */
static json_t *events_json(unsigned events, bool *ok)
{
	json_t *a = new_arr(ok);
	for (unsigned bit = 1; a && bit && bit <= events; bit <<= 1)
		if (events & bit)
			push(a, json_string(charter_event_name(bit)), ok);
	return a;
}

static const struct charter_webhook *webhook_find(const struct charter *c, const char *url)
{
	for (size_t i = 0; c && i < c->nwebhooks; i++)
		if (strcmp(c->webhooks[i].url, url) == 0)
			return &c->webhooks[i];
	return NULL;
}

/* Receivers added, removed, or sent other events, by url:
 * [{"url", "change", "from": [events]|null, "to": [events]|null}]. */
static json_t *webhooks_change(const struct charter *old, const struct charter *next, bool *ok)
{
	json_t *arr = new_arr(ok);
	for (size_t i = 0; arr && i < next->nwebhooks; i++) {
		const struct charter_webhook *b = &next->webhooks[i];
		const struct charter_webhook *a = webhook_find(old, b->url);
		if (a && a->events == b->events)
			continue;
		json_t *o = from_to(a ? events_json(a->events, ok) : NULL, events_json(b->events, ok), ok);
		if (o) {
			set(o, "url", json_string(b->url), ok);
			set(o, "change", json_string(change_name(a, b)), ok);
		}
		push(arr, o, ok);
	}
	for (size_t i = 0; arr && old && i < old->nwebhooks; i++) {
		const struct charter_webhook *a = &old->webhooks[i];
		if (webhook_find(next, a->url))
			continue;
		json_t *o = from_to(events_json(a->events, ok), NULL, ok);
		if (o) {
			set(o, "url", json_string(a->url), ok);
			set(o, "change", json_string("removed"), ok);
		}
		push(arr, o, ok);
	}
	return arr;
}

/* Sets o[key] = arr when arr is non-empty; drops it otherwise. */
static void set_nonempty(json_t *o, const char *key, json_t *arr, bool *ok)
{
	if (arr && json_array_size(arr))
		set(o, key, arr, ok);
	else
		json_decref(arr);
}

json_t *charter_diff(const struct charter *old, const struct charter *next)
{
	bool ok = true;
	json_t *o = json_object(), *insts = json_array();
	if (!o || !insts) {
		json_decref(o);
		json_decref(insts);
		return NULL;
	}
	set(o, "from_version", old ? json_integer(old->version) : json_null(), &ok);
	set(o, "to_version", json_integer(next->version), &ok);
	bool old_pool = old && old->has_pool;
	if (old_pool != next->has_pool || (old_pool && old->pool != next->pool))
		set(o, "pool", from_to(old_pool ? amount(old->pool) : NULL,
				       next->has_pool ? amount(next->pool) : NULL, &ok), &ok);
	set_nonempty(o, "rates", rates_change(old, next, &ok), &ok);
	set_nonempty(o, "providers", providers_change(old, next, &ok), &ok);
	set_nonempty(o, "models", models_change(old, next, &ok), &ok);
	set_nonempty(o, "webhooks", webhooks_change(old, next, &ok), &ok);
	if ((old && old->is_public) != next->is_public)
		set(o, "public", from_to(json_boolean(old && old->is_public),
					 json_boolean(next->is_public), &ok), &ok);
	for (size_t i = 0; i < next->ninstitutions; i++) {
		const struct charter_institution *b = &next->institutions[i];
		const struct charter_institution *a = old ? charter_institution(old, b->id) : NULL;
		json_t *ic = institution_change(a, b, &ok);
		if (ic)
			push(insts, ic, &ok);
	}
	for (size_t i = 0; old && i < old->ninstitutions; i++) {
		const struct charter_institution *a = &old->institutions[i];
		if (charter_institution(next, a->id))
			continue;
		json_t *ic = institution_change(a, NULL, &ok);
		if (ic)
			push(insts, ic, &ok);
	}
	set(o, "institutions", insts, &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- text ------------------------------------------------------------------ */

static const char *js(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

/* "-" for null, the string, an integer, "all" or "a,b,c" for arrays. */
static void val_print(FILE *f, const json_t *v)
{
	size_t i;
	json_t *x;
	if (json_is_string(v)) {
		fputs(json_string_value(v), f);
	} else if (json_is_integer(v)) {
		fprintf(f, "%lld", (long long)json_integer_value(v));
	} else if (json_is_array(v)) {
		if (json_array_size(v) == 0)
			fputs("(none)", f);
		json_array_foreach(v, i, x) {
			fputs(i ? "," : "", f);
			val_print(f, x);
		}
	} else if (json_is_boolean(v)) {
		fputs(json_is_true(v) ? "true" : "false", f);
	} else if (json_is_object(v) && json_object_get(v, "credits")) {
		fprintf(f, "%s/%s", js(v, "credits"), js(v, "period"));
		if (strcmp(js(v, "rollover"), "0") != 0)
			fprintf(f, " rollover %s", js(v, "rollover"));
	} else if (json_is_object(v) && json_object_get(v, "mode")) {
		fputs(js(v, "mode"), f);
		if (json_object_get(v, "grace_percent"))
			fprintf(f, " (grace %s%%)", js(v, "grace_percent"));
	} else if (json_is_object(v) && json_object_get(v, "provider")) {
		fprintf(f, "provider %s", js(v, "provider"));
		if (json_object_get(v, "file"))
			fprintf(f, " file %s", js(v, "file"));
		if (json_object_get(v, "url"))
			fprintf(f, " url %s", js(v, "url"));
	} else {
		fputs("-", f);
	}
}

static void from_to_print(FILE *f, int indent, const char *what, const json_t *ft)
{
	fprintf(f, "%*s%s: ", indent, "", what);
	val_print(f, json_object_get(ft, "from"));
	fputs(" -> ", f);
	val_print(f, json_object_get(ft, "to"));
	const char *d = json_string_value(json_object_get(ft, "delta"));
	if (d && strcmp(d, "0") != 0)
		fprintf(f, " (%s)", d);
	fputc('\n', f);
}

static void list_print(FILE *f, int indent, const char *what, const json_t *ch)
{
	size_t i;
	json_t *x;
	fprintf(f, "%*s%s:", indent, "", what);
	json_array_foreach(json_object_get(ch, "added"), i, x)
		fprintf(f, " +%s", json_string_value(x));
	json_array_foreach(json_object_get(ch, "removed"), i, x)
		fprintf(f, " -%s", json_string_value(x));
	fputc('\n', f);
}

/* limits, overage, alerts, models, members, allocations of one level. */
static void level_print(FILE *f, int indent, const json_t *o)
{
	const json_t *a = json_object_get(o, "allocation");
	if (a && strcmp(js(o, "change"), "changed") == 0 &&
	    !(json_equal(json_object_get(a, "from"), json_object_get(a, "to"))))
		from_to_print(f, indent, "allocation", a);
	if ((a = json_object_get(o, "member_allocation")))
		from_to_print(f, indent, "member allocation", a);
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(o, "limits"), k, v) {
		char name[64];
		snprintf(name, sizeof name, "limit %s", k);
		from_to_print(f, indent, name, v);
	}
	if ((a = json_object_get(o, "overage")))
		from_to_print(f, indent, "overage", a);
	if ((a = json_object_get(o, "alerts")))
		from_to_print(f, indent, "alerts", a);
	if ((a = json_object_get(o, "models")))
		(json_object_get(a, "added") ? list_print : from_to_print)(f, indent, "models", a);
	if ((a = json_object_get(o, "members")))
		list_print(f, indent, "members", a);
}

static void added_removed_print(FILE *f, int indent, const char *kind, const json_t *o)
{
	fprintf(f, "%*s%s %s: %s", indent, "", kind, js(o, "id"), js(o, "change"));
	const json_t *a = json_object_get(o, "allocation");
	if (strcmp(js(o, "change"), "changed") != 0 && a) {
		fputs(" (", f);
		val_print(f, json_object_get(a, strcmp(js(o, "change"), "added") ? "from" : "to"));
		fputc(')', f);
	}
	fputc('\n', f);
}

void charter_diff_print(const json_t *d, FILE *f)
{
	size_t i, k;
	json_t *v, *p;
	const json_t *fv = json_object_get(d, "from_version");
	if (json_is_integer(fv))
		fprintf(f, "version %lld -> %lld\n", (long long)json_integer_value(fv),
			(long long)json_integer_value(json_object_get(d, "to_version")));
	else
		fprintf(f, "version %lld (the first charter)\n",
			(long long)json_integer_value(json_object_get(d, "to_version")));
	if (json_object_get(d, "pool"))
		from_to_print(f, 0, "pool", json_object_get(d, "pool"));
	json_array_foreach(json_object_get(d, "rates"), i, v) {
		fprintf(f, "rate %s", js(v, "resource"));
		if (json_is_string(json_object_get(v, "model")))
			fprintf(f, " model %s", js(v, "model"));
		if (json_is_string(json_object_get(v, "class")))
			fprintf(f, " class %s", js(v, "class"));
		fprintf(f, ": %s -> %s\n", js(v, "from"), js(v, "to"));
	}
	json_array_foreach(json_object_get(d, "providers"), i, v)
		fprintf(f, "provider %s: %s\n", js(v, "id"), js(v, "change"));
	json_array_foreach(json_object_get(d, "models"), i, v) {
		char what[160];
		snprintf(what, sizeof what, "model %s (%s)", js(v, "id"), js(v, "change"));
		from_to_print(f, 0, what, v);
	}
	json_array_foreach(json_object_get(d, "webhooks"), i, v) {
		char what[600];
		snprintf(what, sizeof what, "webhook %.500s (%s)", js(v, "url"), js(v, "change"));
		from_to_print(f, 0, what, v);
	}
	if (json_object_get(d, "public"))
		from_to_print(f, 0, "public", json_object_get(d, "public"));
	json_array_foreach(json_object_get(d, "institutions"), i, v) {
		added_removed_print(f, 0, "institution", v);
		level_print(f, 2, v);
		json_array_foreach(json_object_get(v, "projects"), k, p) {
			added_removed_print(f, 2, "project", p);
			level_print(f, 4, p);
		}
	}
	if (!json_object_get(d, "pool") && !json_array_size(json_object_get(d, "rates")) &&
	    !json_array_size(json_object_get(d, "providers")) &&
	    !json_array_size(json_object_get(d, "models")) &&
	    !json_array_size(json_object_get(d, "webhooks")) && !json_object_get(d, "public") &&
	    !json_array_size(json_object_get(d, "institutions")))
		fputs("no change in pool, rates, providers, models, webhooks or institutions\n", f);
}
