/* charter_insts.c — the charter's institutions and projects
 * (charter/charter_parse_int.h): members, alerts, models, allocations that
 * must fit their parent's, the pool, and providers that cannot submit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charter/charter_parse_int.h"
#include "common/b64.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "common/tz.h"

/* ---- institutions and projects -------------------------------------------- */

static void parse_members(struct pctx *p, const struct ynode *v, struct charter_project *pr)
{
	if (!cp_want_seq(p, v, "'members'"))
		return;
	pr->members = cp_pcalloc(p, v->n, sizeof *pr->members);
	struct charter_mark *marks = cp_pcalloc(p, v->n, sizeof *marks);
	for (size_t i = 0; pr->members && marks && i < v->n; i++) {
		char *s = NULL;
		marks[pr->nmembers] = cp_mk(v->items[i]);
		cp_get_id(p, v->items[i], "each of 'members'", "member id", cp_valid_member,
		       MEMBER_PATTERN, &s);
		if (!s)
			break;
		pr->members[pr->nmembers++] = s;
	}
	if (pr->members && marks && !p->oom)
		pr->members_by_id_ = cp_check_dups(p, pr->members, pr->nmembers, sizeof(char *), 0,
						marks, 0, "member");
	free(marks);
}

/* *alloc_ok, *member_ok: whether the allocations can be compared. */
static void parse_project(struct pctx *p, const struct ynode *n, struct charter_project *pr,
			  bool *alloc_ok, bool *member_ok)
{
	static const struct keyspec ks[] = {
		{"id", true}, {"name", false}, {"allocation", true},
		{"member_allocation", false}, {"limits", false}, {"members", false},
	};
	const struct ynode *v[6];

	pr->mark = cp_mk(n);
	cp_limits_init(&pr->limits);
	pr->allocation.mark = cp_mk(n);
	bool ok = cp_walk_map(p, n, "'projects' entries", "project", ks, 6, v);
	if (v[0])
		pr->mark = cp_mk(v[0]);
	cp_get_id(p, v[0], "'id'", "project id", cp_valid_id, ID_PATTERN, &pr->id);
	if (!ok)
		return;
	if (v[1])
		cp_get_text(p, v[1], "'name'", TEXT_MAX, &pr->name);
	if (v[2])
		*alloc_ok = cp_parse_allocation(p, v[2], "'allocation'", &pr->allocation);
	if (v[3]) {
		pr->has_member_allocation = true;
		*member_ok = cp_parse_allocation(p, v[3], "'member_allocation'",
					      &pr->member_allocation);
	}
	if (v[4])
		cp_parse_limits(p, v[4], &pr->limits);
	if (v[5])
		parse_members(p, v[5], pr);
}

static void parse_alerts(struct pctx *p, const struct ynode *v, struct charter_institution *in)
{
	char desc[64];
	snprintf(desc, sizeof desc, "an integer between 1 and %d", CHARTER_ALERT_MAX);
	if (!cp_want_seq(p, v, "'alerts'"))
		return;
	in->alerts = cp_pcalloc(p, v->n, sizeof *in->alerts);
	for (size_t i = 0; in->alerts && i < v->n; i++) {
		int64_t a;
		if (!cp_get_int(p, v->items[i], "each of 'alerts'", 1, CHARTER_ALERT_MAX, desc, &a))
			continue;
		if (in->nalerts > 0 && a <= in->alerts[in->nalerts - 1]) {
			ERR(p, v->items[i], "'alerts' must be in increasing order without repeats");
			continue;
		}
		in->alerts[in->nalerts++] = (int32_t)a;
	}
}

static void parse_inst_models(struct pctx *p, const struct ynode *v,
			      struct charter_institution *in)
{
	char b[SHOW_MAX + 8], b2[SHOW_MAX + 8];
	if (!cp_want_seq(p, v, "'models'"))
		return;
	in->all_models = false;
	in->models = cp_pcalloc(p, v->n, sizeof *in->models);
	struct charter_mark *marks = cp_pcalloc(p, v->n, sizeof *marks);
	for (size_t i = 0; in->models && marks && i < v->n; i++) {
		char *s = NULL;
		marks[in->nmodels] = cp_mk(v->items[i]);
		bool ok = cp_get_id(p, v->items[i], "each of 'models'", "model id", cp_valid_id,
				 ID_PATTERN, &s);
		if (!s)
			break;
		if (ok && !charter_model(p->c, s))
			ERR(p, v->items[i], "institution '%s' refers to unknown model '%s'",
			    cp_show(in->id, strlen(in->id), b), cp_show(s, strlen(s), b2));
		in->models[in->nmodels++] = s;
	}
	if (in->models && marks && !p->oom)
		free(cp_check_dups(p, in->models, in->nmodels, sizeof(char *), 0, marks, 0,
				"model"));
	free(marks);
}

static u128 per_cycle(const struct charter_allocation *a)
{
	static const unsigned long long n[] = {146097, 20871, 4800, 1600, 400, 1};
	return (u128)(uint64_t)a->credits * n[a->period];
}

/* Projects share their institution's allocation: the sum of their
 * allocations (as average rates over the Gregorian cycle) must not exceed
 * it.  A member allocation must not exceed its project's. */
static void check_allocations(struct pctx *p, const struct charter_institution *in,
			      bool inst_ok, const bool *ok_flags)
{
	char b[SHOW_MAX + 8], b2[SHOW_MAX + 8], amt[MONEY_FMT_MAX];
	u128 sum = 0, limit = per_cycle(&in->allocation);
	bool over = false;
	const char *iid = cp_show(in->id, strlen(in->id), b);

	for (size_t i = 0; i < in->nprojects; i++) {
		const struct charter_project *pr = &in->projects[i];
		const char *pid = cp_show(pr->id, strlen(pr->id), b2);
		if (!ok_flags[2 * i])
			continue;
		if (!inst_ok) {
			/* nothing to compare with */
		} else if (charter_allocation_cmp(&pr->allocation, &in->allocation) == 2) {
			WARN_AT(p, pr->allocation.mark,
				"allocation of project '%s' (period %s) is not compared with "
				"institution '%s' (period %s)", pid,
				charter_period_name(pr->allocation.period), iid,
				charter_period_name(in->allocation.period));
		} else if (!over) {
			sum += per_cycle(&pr->allocation);
			if (sum > limit) {
				over = true;
				ERR_AT(p, pr->allocation.mark,
				       "allocations of the projects of institution '%s' exceed its "
				       "%s credits %s", iid,
				       money_format(in->allocation.credits, amt),
				       cp_period_phrase(in->allocation.period));
			}
		}
		int mc = pr->has_member_allocation && ok_flags[2 * i + 1]
				 ? charter_allocation_cmp(&pr->member_allocation, &pr->allocation)
				 : -1;
		if (mc == 2)
			WARN_AT(p, pr->member_allocation.mark,
				"member_allocation of project '%s' (period %s) is not compared "
				"with the project's (period %s)", pid,
				charter_period_name(pr->member_allocation.period),
				charter_period_name(pr->allocation.period));
		if (mc == 1)
			ERR_AT(p, pr->member_allocation.mark,
			       "member_allocation of project '%s' exceeds the project's %s "
			       "credits %s", pid, money_format(pr->allocation.credits, amt),
			       cp_period_phrase(pr->allocation.period));
	}
}

static void parse_institution(struct pctx *p, const struct ynode *n,
			      struct charter_institution *in)
{
	static const struct keyspec ks[] = {
		{"id", true}, {"name", false}, {"allocation", true}, {"limits", false},
		{"overage", false}, {"alerts", false}, {"models", false}, {"projects", false},
	};
	const struct ynode *v[8];

	in->mark = cp_mk(n);
	in->allocation.mark = cp_mk(n);
	in->all_models = true;
	cp_limits_init(&in->limits);
	bool ok = cp_walk_map(p, n, "'institutions' entries", "institution", ks, 8, v);
	if (v[0])
		in->mark = cp_mk(v[0]);
	cp_get_id(p, v[0], "'id'", "institution id", cp_valid_id, ID_PATTERN, &in->id);
	if (!ok || !in->id)
		return;
	if (v[1])
		cp_get_text(p, v[1], "'name'", TEXT_MAX, &in->name);
	bool alloc_ok = v[2] && cp_parse_allocation(p, v[2], "'allocation'", &in->allocation);
	if (v[3])
		cp_parse_limits(p, v[3], &in->limits);
	if (v[4])
		cp_parse_overage(p, v[4], &in->overage);
	if (v[5])
		parse_alerts(p, v[5], in);
	if (v[6])
		parse_inst_models(p, v[6], in);
	if (v[7] && cp_want_seq(p, v[7], "'projects'")) {
		in->projects = cp_pcalloc(p, v[7]->n, sizeof *in->projects);
		if (!in->projects)
			return;
		in->nprojects = v[7]->n;
		bool *ok_flags = cp_pcalloc(p, 2 * in->nprojects, sizeof *ok_flags);
		if (!ok_flags)
			return;
		for (size_t i = 0; i < in->nprojects && !p->oom; i++) {
			struct charter_project *pr = &in->projects[i];
			parse_project(p, v[7]->items[i], pr, &ok_flags[2 * i],
				      &ok_flags[2 * i + 1]);
			if (!pr->id)
				pr->id = cp_pdup(p, "");
			if (!pr->name && pr->id)
				pr->name = cp_pdup(p, pr->id);
		}
		if (!p->oom)
			in->projects_by_id_ = cp_check_dups(
				p, in->projects, in->nprojects, sizeof *in->projects,
				offsetof(struct charter_project, id), NULL,
				offsetof(struct charter_project, mark), "project id");
		if (!p->oom)
			check_allocations(p, in, alloc_ok, ok_flags);
		free(ok_flags);
	}
}

void cp_parse_institutions(struct pctx *p, const struct ynode *v)
{
	struct charter *c = p->c;
	if (!v || !cp_want_seq(p, v, "'institutions'"))
		return;
	c->institutions = cp_pcalloc(p, v->n, sizeof *c->institutions);
	if (!c->institutions)
		return;
	c->ninstitutions = v->n;
	for (size_t i = 0; i < v->n && !p->oom; i++) {
		struct charter_institution *in = &c->institutions[i];
		parse_institution(p, v->items[i], in);
		if (!in->id)
			in->id = cp_pdup(p, "");
		if (!in->name && in->id)
			in->name = cp_pdup(p, in->id);
	}
	if (p->oom)
		return;
	c->institutions_by_id_ = cp_check_dups(p, c->institutions, c->ninstitutions,
					    sizeof *c->institutions,
					    offsetof(struct charter_institution, id), NULL,
					    offsetof(struct charter_institution, mark),
					    "institution id");
}

/* The pool is what the commons can grant per month: warn when institutions
 * are allocated more on average (institutions with period total are left
 * out: they have no monthly rate). */
void cp_check_pool(struct pctx *p)
{
	struct charter *c = p->c;
	char a[MONEY_FMT_MAX], b[MONEY_FMT_MAX];
	u128 sum = 0;
	if (!c->has_pool)
		return;
	for (size_t i = 0; i < c->ninstitutions; i++)
		if (c->institutions[i].allocation.period != CHARTER_PERIOD_TOTAL)
			sum += per_cycle(&c->institutions[i].allocation);
	if (sum <= (u128)(uint64_t)c->pool * 4800)
		return;
	u128 monthly = sum / 4800;
	int64_t shown_monthly = monthly > (u128)INT64_MAX ? INT64_MAX : (int64_t)monthly;
	WARN_AT(p, c->pool_mark,
		"pool oversubscribed: institutions are allocated %s credits per month on "
		"average, more than the pool of %s", money_format(shown_monthly, a),
		money_format(c->pool, b));
}

/* A remote provider that lists resources but no keys at all (invalid keys
 * are errors already) can never submit a record. */
void cp_warn_providers(struct pctx *p, const struct ynode *providers)
{
	char b[SHOW_MAX + 8];
	for (size_t i = 0; i < p->c->nproviders; i++) {
		const struct charter_provider *pr = &p->c->providers[i];
		const struct ynode *keys = cp_map_get(providers->items[i], "keys");
		if (keys && keys->kind == YN_SEQ && keys->n > 0)
			continue;
		if (!pr->builtin && pr->nkeys == 0 && pr->resources_given && pr->nresources)
			WARN_AT(p, pr->mark, "provider '%s' has no keys, so it cannot submit "
				"usage records", cp_show(pr->id, strlen(pr->id), b));
	}
}

