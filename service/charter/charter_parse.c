/* charter_parse.c — YAML charter text to a validated struct charter.
 *
 * Two stages: ynode.c turns the text into a bounded tree (syntax, anchors,
 * aliases, tags, depth), then this file walks the tree (with
 * charter_fields.c and charter_insts.c), fills the model and checks every
 * rule, reporting each violation at its node and carrying on,
 * so that one run reports every error.  The rules and messages are listed in
 * docs/CHARTER.md; keep the two in step.
 */
#include "charter/charter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "charter/charter_parse_int.h"
#include "common/b64.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "common/tz.h"

/* ---- providers ----------------------------------------------------------- */

static void parse_provider(struct pctx *p, const struct ynode *n, struct charter_provider *pr)
{
	static const struct keyspec ks[] = {
		{"id", true}, {"name", false}, {"builtin", false},
		{"keys", false}, {"resources", false},
	};
	const struct ynode *v[5];
	char b[SHOW_MAX + 8];

	pr->mark = cp_mk(n);
	bool ok = cp_walk_map(p, n, "'providers' entries", "provider", ks, 5, v);
	if (v[0])
		pr->mark = cp_mk(v[0]);
	cp_get_id(p, v[0], "'id'", "provider id", cp_valid_id, ID_PATTERN, &pr->id);
	if (!ok)
		return;
	if (v[1])
		cp_get_text(p, v[1], "'name'", TEXT_MAX, &pr->name);
	if (v[2])
		cp_get_bool(p, v[2], "'builtin'", &pr->builtin);
	if (v[3] && cp_want_seq(p, v[3], "'keys'")) {
		if (pr->builtin && v[3]->n > 0)
			ERR(p, v[3], "builtin provider '%s' must not have keys",
			    cp_show(pr->id, strlen(pr->id), b));
		pr->keys = cp_pcalloc(p, v[3]->n, sizeof *pr->keys);
		for (size_t i = 0; pr->keys && i < v[3]->n; i++) {
			const struct ynode *k = v[3]->items[i];
			if (!cp_want_scalar(p, k, "each of 'keys'", "a string", false))
				continue;
			struct charter_key *key = &pr->keys[pr->nkeys];
			if (!cp_parse_key(k->str, k->len, key->pub)) {
				ERR(p, k, "invalid key '%s' (expected ed25519: and the base64 of a "
				    "32-byte public key)", cp_shown(k, b));
				continue;
			}
			key->mark = cp_mk(k);
			if (!(key->text = cp_pdup(p, k->str)))
				return;
			pr->nkeys++;
		}
	}
	if (v[4] && cp_want_seq(p, v[4], "'resources'")) {
		pr->resources_given = true;
		pr->resources = cp_pcalloc(p, v[4]->n, sizeof *pr->resources);
		struct charter_mark *marks = cp_pcalloc(p, v[4]->n, sizeof *marks);
		for (size_t i = 0; pr->resources && marks && i < v[4]->n; i++) {
			const struct ynode *r = v[4]->items[i];
			char *s = NULL;
			marks[pr->nresources] = cp_mk(r);
			cp_get_id(p, r, "each of 'resources'", "resource", cp_valid_resource,
			       RESOURCE_PATTERN, &s);
			if (!s)
				break;
			pr->resources[pr->nresources++] = s;
		}
		if (pr->resources && marks)
			free(cp_check_dups(p, pr->resources, pr->nresources, sizeof(char *), 0,
					marks, 0, "resource"));
		free(marks);
	}
}

struct kref {
	const struct charter_key *key;
	size_t seq; /* document order, for a stable sort */
};

static int kref_cmp(const void *a, const void *b)
{
	const struct kref *x = a, *y = b;
	int c = memcmp(x->key->pub, y->key->pub, CHARTER_KEY_LEN);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void parse_providers(struct pctx *p, const struct ynode *v)
{
	struct charter *c = p->c;
	char b[SHOW_MAX + 8];
	if (!v || !cp_want_seq(p, v, "'providers'"))
		return;
	c->providers = cp_pcalloc(p, v->n, sizeof *c->providers);
	if (!c->providers)
		return;
	c->nproviders = v->n;
	for (size_t i = 0; i < v->n && !p->oom; i++) {
		struct charter_provider *pr = &c->providers[i];
		parse_provider(p, v->items[i], pr);
		if (!pr->name && pr->id)
			pr->name = cp_pdup(p, pr->id);
	}
	if (p->oom)
		return;
	c->providers_by_id_ = cp_check_dups(p, c->providers, c->nproviders,
					 sizeof *c->providers,
					 offsetof(struct charter_provider, id), NULL,
					 offsetof(struct charter_provider, mark), "provider id");
	/* at most one builtin provider */
	const struct charter_provider *first_builtin = NULL;
	for (size_t i = 0; i < c->nproviders; i++) {
		const struct charter_provider *pr = &c->providers[i];
		if (!pr->builtin)
			continue;
		if (first_builtin)
			ERR_AT(p, pr->mark, "only one provider may be builtin ('%s' at %u:%u is)",
			       cp_show(first_builtin->id, strlen(first_builtin->id), b),
			       first_builtin->mark.line, first_builtin->mark.col);
		else
			first_builtin = pr;
	}
	/* a key identifies one provider: no key listed twice */
	size_t nk = 0;
	for (size_t i = 0; i < c->nproviders; i++)
		nk += c->providers[i].nkeys;
	if (nk < 2)
		return;
	struct kref *refs = cp_pcalloc(p, nk, sizeof *refs);
	if (!refs)
		return;
	size_t k = 0;
	for (size_t i = 0; i < c->nproviders; i++)
		for (size_t j = 0; j < c->providers[i].nkeys; j++) {
			refs[k].key = &c->providers[i].keys[j];
			refs[k].seq = k;
			k++;
		}
	qsort(refs, nk, sizeof *refs, kref_cmp);
	for (size_t i = 1; i < nk; i++) {
		size_t first = i - 1;
		while (i < nk && memcmp(refs[i].key->pub, refs[first].key->pub,
					CHARTER_KEY_LEN) == 0) {
			ERR_AT(p, refs[i].key->mark, "duplicate key (first at %u:%u)",
			       refs[first].key->mark.line, refs[first].key->mark.col);
			i++;
		}
	}
	free(refs);
}

/* ---- models -------------------------------------------------------------- */

/* [A-Za-z0-9][A-Za-z0-9._+-]{0,254}: a file name inside --models. */
static bool valid_file(const char *s, size_t len)
{
	if (len < 1 || len > 255)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9');
		if (!alnum && (i == 0 || !cp_in_set(ch, "._+-")))
			return false;
	}
	return true;
}

/* http:// or https://, a non-empty host, printable ASCII without spaces. */
static bool valid_url(const char *s, size_t len)
{
	size_t pl;
	if (len >= 7 && memcmp(s, "http://", 7) == 0)
		pl = 7;
	else if (len >= 8 && memcmp(s, "https://", 8) == 0)
		pl = 8;
	else
		return false;
	if (len == pl || s[pl] == '/')
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static void parse_model(struct pctx *p, const struct ynode *n, struct charter_model *m)
{
	static const struct keyspec ks[] = {
		{"id", true}, {"provider", true}, {"file", false},
		{"url", false}, {"upstream_model", false},
	};
	const struct ynode *v[5];
	char b[SHOW_MAX + 8], b2[SHOW_MAX + 8];

	m->mark = cp_mk(n);
	bool ok = cp_walk_map(p, n, "'models' entries", "model", ks, 5, v);
	if (v[0])
		m->mark = cp_mk(v[0]);
	cp_get_id(p, v[0], "'id'", "model id", cp_valid_id, ID_PATTERN, &m->id);
	if (!ok || !m->id)
		return;
	const char *id = cp_show(m->id, strlen(m->id), b);
	if (v[1] && cp_get_id(p, v[1], "'provider'", "provider id", cp_valid_id, ID_PATTERN,
			   &m->provider_id)) {
		m->provider = charter_provider(p->c, m->provider_id);
		if (!m->provider)
			ERR(p, v[1], "model '%s' refers to unknown provider '%s'", id,
			    cp_show(m->provider_id, strlen(m->provider_id), b2));
	}
	if (v[2] && cp_get_text(p, v[2], "'file'", 255, &m->file) &&
	    !valid_file(m->file, strlen(m->file)))
		ERR(p, v[2], "invalid model file '%s' (expected a file name in the models "
		    "directory, without '/')", cp_shown(v[2], b2));
	if (v[3] && cp_get_text(p, v[3], "'url'", URL_MAX, &m->url) &&
	    !valid_url(m->url, strlen(m->url)))
		ERR(p, v[3], "invalid url '%s' (expected http:// or https:// and a host)",
		    cp_shown(v[3], b2));
	if (v[4])
		cp_get_text(p, v[4], "'upstream_model'", TEXT_MAX, &m->upstream_model);

	if (!v[2] && !v[3])
		ERR(p, n, "model '%s' needs 'file' or 'url'", id);
	if (v[2] && v[3])
		ERR(p, v[3], "model '%s' has both 'file' and 'url'", id);
	if (v[2] && m->provider && !m->provider->builtin)
		ERR(p, v[2], "'file' needs a builtin provider ('%s' is remote; use 'url')",
		    cp_show(m->provider->id, strlen(m->provider->id), b2));
	if (v[3] && m->provider && m->provider->builtin)
		ERR(p, v[3], "'url' needs a remote provider ('%s' is builtin; use 'file')",
		    cp_show(m->provider->id, strlen(m->provider->id), b2));
	if (v[4] && !v[3])
		ERR(p, v[4], "'upstream_model' needs 'url'");
	if (m->url && !m->upstream_model)
		m->upstream_model = cp_pdup(p, m->id);
}

static void parse_models(struct pctx *p, const struct ynode *v)
{
	struct charter *c = p->c;
	if (!v || !cp_want_seq(p, v, "'models'"))
		return;
	c->models = cp_pcalloc(p, v->n, sizeof *c->models);
	if (!c->models)
		return;
	c->nmodels = v->n;
	for (size_t i = 0; i < v->n && !p->oom; i++)
		parse_model(p, v->items[i], &c->models[i]);
	if (p->oom)
		return;
	for (size_t i = 0; i < c->nmodels; i++)
		if (!c->models[i].id && !(c->models[i].id = cp_pdup(p, "")))
			return;
	c->models_by_id_ = cp_check_dups(p, c->models, c->nmodels, sizeof *c->models,
				      offsetof(struct charter_model, id), NULL,
				      offsetof(struct charter_model, mark), "model id");
}

/* ---- rates --------------------------------------------------------------- */

static void parse_rate(struct pctx *p, const struct ynode *n, struct charter_rate *r)
{
	static const struct keyspec ks[] = {
		{"resource", true}, {"model", false}, {"class", false}, {"credits", true},
	};
	const struct ynode *v[4];
	char b[SHOW_MAX + 8];

	r->mark = cp_mk(n);
	bool ok = cp_walk_map(p, n, "'rates' entries", "rate", ks, 4, v);
	cp_get_id(p, v[0], "'resource'", "resource", cp_valid_resource, RESOURCE_PATTERN,
	       &r->resource);
	if (!ok)
		return;
	if (v[1] && cp_get_id(p, v[1], "'model'", "model id", cp_valid_id, ID_PATTERN, &r->model) &&
	    !charter_model(p->c, r->model))
		ERR(p, v[1], "rate refers to unknown model '%s'", cp_shown(v[1], b));
	if (v[2])
		cp_get_id(p, v[2], "'class'", "class", cp_valid_id, ID_PATTERN, &r->cls);
	if (v[3])
		cp_get_amount(p, v[3], "'credits'", &r->credits);
}

struct rate_key {
	char *key;
	struct charter_mark mark;
	const struct charter_rate *rate;
};

static void describe_rate(const struct charter_rate *r, char *out, size_t size)
{
	char b[SHOW_MAX + 8];
	int o = snprintf(out, size, "resource '%s'", cp_show(r->resource, strlen(r->resource), b));
	if (r->model && o >= 0 && (size_t)o < size)
		o += snprintf(out + o, size - (size_t)o, ", model '%s'",
			      cp_show(r->model, strlen(r->model), b));
	if (r->cls && o >= 0 && (size_t)o < size)
		snprintf(out + o, size - (size_t)o, ", class '%s'", cp_show(r->cls, strlen(r->cls), b));
}

static void parse_rates(struct pctx *p, const struct ynode *v)
{
	struct charter *c = p->c;
	if (!v || !cp_want_seq(p, v, "'rates'"))
		return;
	c->rates = cp_pcalloc(p, v->n, sizeof *c->rates);
	if (!c->rates)
		return;
	c->nrates = v->n;
	for (size_t i = 0; i < v->n && !p->oom; i++) {
		c->rates[i].index = i;
		parse_rate(p, v->items[i], &c->rates[i]);
	}
	if (p->oom)
		return;
	/* one rate per (resource, model, class) */
	struct rate_key *keys = cp_pcalloc(p, c->nrates, sizeof *keys);
	if (!keys)
		return;
	for (size_t i = 0; i < c->nrates && !p->oom; i++) {
		const struct charter_rate *r = &c->rates[i];
		size_t n = strlen(r->resource) + (r->model ? strlen(r->model) : 0) +
			   (r->cls ? strlen(r->cls) : 0) + 8;
		keys[i].key = malloc(n);
		if (!keys[i].key) {
			p->oom = true;
			break;
		}
		/* "\x01" marks an absent model or class, unlike any id */
		snprintf(keys[i].key, n, "%s %s %s", r->resource, r->model ? r->model : "\x01",
			 r->cls ? r->cls : "\x01");
		keys[i].mark = r->mark;
		keys[i].rate = r;
	}
	size_t *idx = p->oom ? NULL
			     : charter_index_build(keys, c->nrates, sizeof *keys,
						   offsetof(struct rate_key, key), &p->oom);
	for (size_t k = 1; idx && k < c->nrates; k++) {
		size_t first = k - 1;
		while (k < c->nrates && keys[idx[k]].rate->resource[0] != '\0' &&
		       strcmp(keys[idx[k]].key, keys[idx[first]].key) == 0) {
			char d[3 * SHOW_MAX + 64];
			describe_rate(keys[idx[k]].rate, d, sizeof d);
			ERR_AT(p, keys[idx[k]].mark, "duplicate rate for %s (first at %u:%u)", d,
			       keys[idx[first]].mark.line, keys[idx[first]].mark.col);
			k++;
		}
	}
	free(idx);
	for (size_t i = 0; i < c->nrates; i++)
		free(keys[i].key);
	free(keys);
}

/* Every model is metered in tokens by the gate, so each needs a rate for
 * tokens_in and tokens_out (its own or a model-less one).  Every resource a
 * provider lists needs at least one rate. */
static void check_rates_cover(struct pctx *p, const struct ynode *providers)
{
	struct charter *c = p->c;
	static const char *const token_res[] = {"tokens_in", "tokens_out"};
	char b[SHOW_MAX + 8], b2[SHOW_MAX + 8];

	for (size_t i = 0; i < c->nmodels; i++) {
		const struct charter_model *m = &c->models[i];
		if (!cp_valid_id(m->id, strlen(m->id)))
			continue;
		for (size_t k = 0; k < 2; k++)
			if (!charter_rate_for(c, token_res[k], m->id, NULL))
				ERR_AT(p, m->mark, "model '%s' has no rate for %s", m->id,
				       token_res[k]);
	}
	if (!providers || providers->kind != YN_SEQ)
		return;
	for (size_t i = 0; i < providers->n && i < c->nproviders; i++) {
		const struct ynode *res = cp_map_get(providers->items[i], "resources");
		const struct charter_provider *pr = &c->providers[i];
		if (!res || res->kind != YN_SEQ)
			continue;
		for (size_t j = 0; j < res->n; j++) {
			const struct ynode *r = res->items[j];
			bool priced = false;
			if (r->kind != YN_SCALAR || !cp_valid_resource(r->str, r->len))
				continue;
			for (size_t k = 0; k < c->nrates && !priced; k++)
				priced = strcmp(c->rates[k].resource, r->str) == 0;
			if (!priced)
				ERR(p, r, "provider '%s' lists resource '%s' but no rate prices it",
				    cp_show(pr->id, strlen(pr->id), b), cp_shown(r, b2));
		}
	}
}

/* ---- the charter --------------------------------------------------------- */

static void report_cb(void *ctx, uint32_t line, uint32_t col, const char *msg)
{
	struct pctx *p = ctx;
	struct charter_mark m = {line, col};
	ERR_AT(p, m, "%s", msg);
}

/* ---- webhooks (SPEC 4) ---------------------------------------------------- */

static void parse_webhook(struct pctx *p, const struct ynode *n, struct charter_webhook *w)
{
	static const struct keyspec ks[] = {{"url", true}, {"events", true}};
	const struct ynode *v[2];
	char b[SHOW_MAX + 8];
	w->mark = cp_mk(n);
	if (!cp_walk_map(p, n, "'webhooks' entries", "webhook", ks, 2, v))
		return;
	if (v[0] && cp_get_text(p, v[0], "'url'", URL_MAX, &w->url) &&
	    !valid_url(w->url, strlen(w->url)))
		ERR(p, v[0], "invalid webhook url '%s' (expected http:// or https:// and a host)",
		    cp_shown(v[0], b));
	if (!v[1] || !cp_want_seq(p, v[1], "'events'"))
		return;
	if (v[1]->n == 0)
		ERR(p, v[1], "'events' must name at least one of alert, overage, charter, "
		    "settlement_failed");
	for (size_t i = 0; i < v[1]->n; i++) {
		const struct ynode *e = v[1]->items[i];
		unsigned bit = 0;
		if (cp_want_scalar(p, e, "each of 'events'", "an event name", false))
			for (unsigned k = 1; k <= CHARTER_EV_SETTLEMENT_FAILED; k <<= 1)
				if (strlen(charter_event_name(k)) == e->len &&
				    memcmp(charter_event_name(k), e->str, e->len) == 0)
					bit = k;
		if (e->kind == YN_SCALAR && !bit)
			ERR(p, e, "unknown webhook event '%s' (expected alert, overage, charter or "
			    "settlement_failed)", cp_shown(e, b));
		else if (bit & w->events)
			ERR(p, e, "webhook event '%s' is listed twice", cp_shown(e, b));
		w->events |= bit;
	}
}

static void parse_webhooks(struct pctx *p, const struct ynode *v)
{
	struct charter *c = p->c;
	if (!v || !cp_want_seq(p, v, "'webhooks'"))
		return;
	c->webhooks = cp_pcalloc(p, v->n, sizeof *c->webhooks);
	if (!c->webhooks)
		return;
	c->nwebhooks = v->n;
	for (size_t i = 0; i < v->n && !p->oom; i++)
		parse_webhook(p, v->items[i], &c->webhooks[i]);
	char b[SHOW_MAX + 8];
	for (size_t i = 0; i < c->nwebhooks; i++)
		for (size_t k = 0; k < i; k++)
			if (c->webhooks[i].url && c->webhooks[k].url &&
			    strcmp(c->webhooks[i].url, c->webhooks[k].url) == 0)
				ERR(p, v->items[i], "webhook url '%s' is listed twice (list all its "
				    "events in one entry)",
				    cp_show(c->webhooks[i].url, strlen(c->webhooks[i].url), b));
}

static void parse_top(struct pctx *p, const struct ynode *root)
{
	static const struct keyspec ks[] = {
		{"charter", true}, {"version", true}, {"title", false},
		{"effective", true}, {"timezone", true}, {"unit", false},
		{"pool", false}, {"late_grace", false}, {"rates", false},
		{"providers", false}, {"models", false}, {"institutions", false},
		{"webhooks", false},
		{"public", false},
	};
	enum { K_CHARTER, K_VERSION, K_TITLE, K_EFFECTIVE, K_TIMEZONE, K_UNIT, K_POOL,
	       K_LATE, K_RATES, K_PROVIDERS, K_MODELS, K_INSTITUTIONS, K_WEBHOOKS, K_PUBLIC, K_N };
	const struct ynode *v[K_N];
	struct charter *c = p->c;
	char b[SHOW_MAX + 8];

	if (!cp_walk_map(p, root, "a charter", "charter", ks, K_N, v))
		return;
	if (v[K_CHARTER]) {
		c->id_mark = cp_mk(v[K_CHARTER]);
		cp_get_id(p, v[K_CHARTER], "'charter'", "charter id", cp_valid_charter_id,
		       "[a-z0-9-]{1,64}", &c->id);
	}
	if (v[K_VERSION]) {
		c->version_mark = cp_mk(v[K_VERSION]);
		/* SPEC 2, "Bounds": versions are at most 2^53 (exact in any JSON
		 * reader; 2^63 - 1 would leave no version to apply after it). */
		if (cp_get_int(p, v[K_VERSION], "'version'", 1, INT64_MAX, "a positive integer",
			    &c->version) && c->version > CHARTER_VERSION_MAX) {
			ERR(p, v[K_VERSION], "'version' must be at most 2^53 (%lld)",
			    (long long)CHARTER_VERSION_MAX);
			c->version = 0;
		}
	}
	if (v[K_TITLE])
		cp_get_text(p, v[K_TITLE], "'title'", TEXT_MAX, &c->title);
	if (v[K_EFFECTIVE]) {
		const struct ynode *e = v[K_EFFECTIVE];
		c->effective_mark = cp_mk(e);
		if (cp_want_scalar(p, e, "'effective'", "an RFC 3339 time", false) &&
		    time_parse_rfc3339(e->str, e->len, &c->effective_us) != 0)
			ERR(p, e, "'effective' must be an RFC 3339 time such as "
			    "2026-12-01T00:00:00Z, not '%s'", cp_shown(e, b));
	}
	if (v[K_TIMEZONE]) {
		const struct ynode *t = v[K_TIMEZONE];
		c->timezone_mark = cp_mk(t);
		if (cp_want_scalar(p, t, "'timezone'", "a string", false)) {
			char why[TZ_ERR_MAX];
			allot_err te = cp_tz_usable(t->str, t->len, why);
			if (te == ALLOT_E_INVALID && !why[0])
				ERR(p, t, "invalid timezone '%s' (expected an IANA name such as "
				    "Europe/Zurich)", cp_shown(t, b));
			else if (te == ALLOT_E_NOT_FOUND)
				ERR(p, t, "unknown timezone '%s'", cp_shown(t, b));
			else if (te)
				ERR(p, t, "timezone '%s' cannot be used: %s", cp_shown(t, b), why);
			else
				c->timezone = cp_pdup(p, t->str);
		}
	}
	if (v[K_UNIT]) {
		c->unit_mark = cp_mk(v[K_UNIT]);
		cp_get_text(p, v[K_UNIT], "'unit'", TEXT_MAX, &c->unit);
	}
	if (v[K_POOL]) {
		c->pool_mark = cp_mk(v[K_POOL]);
		c->has_pool = cp_get_amount(p, v[K_POOL], "'pool'", &c->pool);
	}
	c->late_grace_days = CHARTER_LATE_GRACE_DEFAULT_DAYS;
	if (v[K_LATE]) {
		static const struct keyspec lk[] = {{"days", true}};
		const struct ynode *lv[1];
		int64_t days;
		char desc[64];
		snprintf(desc, sizeof desc, "an integer between 0 and %d",
			 CHARTER_LATE_GRACE_MAX_DAYS);
		if (cp_walk_map(p, v[K_LATE], "'late_grace'", "late_grace", lk, 1, lv) && lv[0] &&
		    cp_get_int(p, lv[0], "'days'", 0, CHARTER_LATE_GRACE_MAX_DAYS, desc, &days))
			c->late_grace_days = (int32_t)days;
	}
	c->late_grace_us = (int64_t)c->late_grace_days * 86400 * US_PER_SEC;
	if (v[K_PUBLIC]) /* GET /public (docs/DASHBOARD.md) */
		cp_get_bool(p, v[K_PUBLIC], "'public'", &c->is_public);

	parse_providers(p, v[K_PROVIDERS]);
	if (p->oom)
		return;
	parse_models(p, v[K_MODELS]);
	if (p->oom)
		return;
	parse_rates(p, v[K_RATES]);
	if (p->oom)
		return;
	check_rates_cover(p, v[K_PROVIDERS]);
	cp_parse_institutions(p, v[K_INSTITUTIONS]);
	if (p->oom)
		return;
	cp_check_pool(p);
	parse_webhooks(p, v[K_WEBHOOKS]);
	if (v[K_PROVIDERS] && v[K_PROVIDERS]->kind == YN_SEQ)
		cp_warn_providers(p, v[K_PROVIDERS]);
}

allot_err charter_parse(const char *filename, const char *buf, size_t len,
			struct charter **out, struct charter_errors *errs)
{
	struct pctx p = {0};
	struct ynode_tree *tree = NULL;
	const struct ynode *root = NULL;
	size_t err0 = errs->nerrors, warn0 = errs->nwarnings;
	allot_err rc;

	p.file = filename ? filename : "-";
	p.errs = errs;
	p.errors_at_start = errs->nerrors + errs->dropped_;
	p.c = calloc(1, sizeof *p.c);
	if (!p.c)
		return ALLOT_E_NOMEM;

	if (len > CHARTER_MAX_BYTES) {
		struct charter_mark m = {1, 1};
		ERR_AT(&p, m, "charter is larger than the limit of %d bytes", CHARTER_MAX_BYTES);
		goto done;
	}
	int yr = ynode_build(buf ? buf : "", buf ? len : 0, CHARTER_MAX_DEPTH, report_cb, &p,
			     &tree, &root);
	if (yr == -2) {
		p.oom = true;
		goto done;
	}
	if (yr == 0 && !root) {
		struct charter_mark m = {1, 1};
		ERR_AT(&p, m, "the charter is empty");
	} else if (yr == 0) {
		parse_top(&p, root);
	}
done:
	ynode_tree_free(tree);
	if (!p.oom) {
		struct charter *c = p.c;
		if ((!c->file && !(c->file = strdup(p.file))) ||
		    (!c->title && !(c->title = strdup(""))) ||
		    (!c->unit && !(c->unit = strdup("credit"))))
			p.oom = true;
	}
	charter_diag_finish(errs, p.file, err0, warn0);
	if (p.oom || errs->oom) {
		errs->oom = true;
		rc = ALLOT_E_NOMEM;
	} else if (cp_had_errors(&p)) {
		rc = ALLOT_E_UNPROCESSABLE;
	} else {
		*out = p.c;
		return ALLOT_OK;
	}
	charter_free(p.c);
	return rc;
}

