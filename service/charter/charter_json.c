/* charter_json.c — a charter as JSON (the diff between two: charter_diff.c). */
#include "charter/charter.h"

#include <string.h>

#include "common/money.h"
#include "common/timeutil.h"

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

static json_t *strv(char *const *v, size_t n, bool *ok)
{
	json_t *a = json_array();
	if (!a) {
		*ok = false;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		push(a, json_string(v[i]), ok);
	return a;
}

static json_t *alloc_json(const struct charter_allocation *a, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	set(o, "credits", amount(a->credits), ok);
	set(o, "period", json_string(charter_period_name(a->period)), ok);
	set(o, "rollover", amount(a->rollover_ppm), ok); /* ppm has the micro scale */
	return o;
}

static json_t *limits_json(const struct charter_limits *l, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	const char *names[] = {"requests_per_minute", "tokens_per_minute",
			       "max_tokens_per_request", "concurrent_requests"};
	int64_t vals[] = {l->requests_per_minute, l->tokens_per_minute,
			  l->max_tokens_per_request, l->concurrent_requests};
	for (size_t i = 0; i < 4; i++)
		if (vals[i] != CHARTER_UNSET)
			set(o, names[i], json_integer(vals[i]), ok);
	return o;
}

static json_t *project_json(const struct charter_project *pr, bool *ok)
{
	json_t *o = json_object();
	if (!o) {
		*ok = false;
		return NULL;
	}
	set(o, "id", json_string(pr->id), ok);
	set(o, "name", json_string(pr->name), ok);
	set(o, "allocation", alloc_json(&pr->allocation, ok), ok);
	if (pr->has_member_allocation)
		set(o, "member_allocation", alloc_json(&pr->member_allocation, ok), ok);
	set(o, "limits", limits_json(&pr->limits, ok), ok);
	set(o, "members", strv(pr->members, pr->nmembers, ok), ok);
	return o;
}

static json_t *institution_json(const struct charter_institution *in, bool *ok)
{
	json_t *o = json_object(), *ov = json_object(), *al = json_array(),
	       *pr = json_array();
	if (!o || !ov || !al || !pr) {
		json_decref(o);
		json_decref(ov);
		json_decref(al);
		json_decref(pr);
		*ok = false;
		return NULL;
	}
	set(o, "id", json_string(in->id), ok);
	set(o, "name", json_string(in->name), ok);
	set(o, "allocation", alloc_json(&in->allocation, ok), ok);
	set(o, "limits", limits_json(&in->limits, ok), ok);
	set(ov, "mode", json_string(charter_overage_name(in->overage.mode)), ok);
	/* grace_ppm * 100 is millionths of a percent: the micro scale again */
	set(ov, "grace_percent", amount((int64_t)in->overage.grace_ppm * 100), ok);
	set(o, "overage", ov, ok);
	for (size_t i = 0; i < in->nalerts; i++)
		push(al, json_integer(in->alerts[i]), ok);
	set(o, "alerts", al, ok);
	set(o, "models", in->all_models ? json_null() : strv(in->models, in->nmodels, ok), ok);
	for (size_t i = 0; i < in->nprojects; i++)
		push(pr, project_json(&in->projects[i], ok), ok);
	set(o, "projects", pr, ok);
	return o;
}

static json_t *opt_string(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *charter_to_json(const struct charter *c)
{
	bool ok = true;
	char tb[TIME_FMT_MAX];
	json_t *o = json_object(), *rates = json_array(), *provs = json_array(),
	       *models = json_array(), *insts = json_array(), *lg = json_object();
	if (!o || !rates || !provs || !models || !insts || !lg) {
		ok = false;
		goto out;
	}
	set(o, "charter", json_string(c->id), &ok);
	set(o, "version", json_integer(c->version), &ok);
	set(o, "title", json_string(c->title), &ok);
	set(o, "effective", json_string(time_format_rfc3339(c->effective_us, tb)), &ok);
	set(o, "timezone", json_string(c->timezone), &ok);
	set(o, "unit", json_string(c->unit), &ok);
	set(o, "pool", c->has_pool ? amount(c->pool) : json_null(), &ok);
	set(o, "public", json_boolean(c->is_public), &ok);
	set(lg, "days", json_integer(c->late_grace_days), &ok);
	set(o, "late_grace", lg, &ok);
	lg = NULL;

	for (size_t i = 0; i < c->nrates; i++) {
		const struct charter_rate *r = &c->rates[i];
		json_t *ro = json_object();
		if (!ro) {
			ok = false;
			break;
		}
		set(ro, "resource", json_string(r->resource), &ok);
		set(ro, "model", opt_string(r->model), &ok);
		set(ro, "class", opt_string(r->cls), &ok);
		set(ro, "credits", amount(r->credits), &ok);
		push(rates, ro, &ok);
	}
	for (size_t i = 0; i < c->nproviders; i++) {
		const struct charter_provider *p = &c->providers[i];
		json_t *po = json_object(), *keys = json_array();
		if (!po || !keys) {
			json_decref(po);
			json_decref(keys);
			ok = false;
			break;
		}
		set(po, "id", json_string(p->id), &ok);
		set(po, "name", json_string(p->name), &ok);
		set(po, "builtin", json_boolean(p->builtin), &ok);
		for (size_t k = 0; k < p->nkeys; k++)
			push(keys, json_string(p->keys[k].text), &ok);
		set(po, "keys", keys, &ok);
		set(po, "resources",
		    p->resources_given ? strv(p->resources, p->nresources, &ok) : json_null(),
		    &ok);
		push(provs, po, &ok);
	}
	for (size_t i = 0; i < c->nmodels; i++) {
		const struct charter_model *m = &c->models[i];
		json_t *mo = json_object();
		if (!mo) {
			ok = false;
			break;
		}
		set(mo, "id", json_string(m->id), &ok);
		set(mo, "provider", json_string(m->provider_id), &ok);
		set(mo, "file", opt_string(m->file), &ok);
		set(mo, "url", opt_string(m->url), &ok);
		set(mo, "upstream_model", opt_string(m->upstream_model), &ok);
		push(models, mo, &ok);
	}
	for (size_t i = 0; i < c->ninstitutions; i++)
		push(insts, institution_json(&c->institutions[i], &ok), &ok);
	set(o, "rates", rates, &ok);
	set(o, "providers", provs, &ok);
	set(o, "models", models, &ok);
	set(o, "institutions", insts, &ok);
	return ok ? o : (json_decref(o), NULL);
out:
	json_decref(o);
	json_decref(rates);
	json_decref(provs);
	json_decref(models);
	json_decref(insts);
	json_decref(lg);
	return NULL;
}
