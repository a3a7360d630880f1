/* charter_parse.c — YAML charter text to a validated struct charter.
 *
 * Two stages: ynode.c turns the text into a bounded tree (syntax, anchors,
 * aliases, tags, depth), then this file walks the tree, fills the model and
 * checks every rule, reporting each violation at its node and carrying on,
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

#include "charter/charter_int.h"
#include "charter/ynode.h"
#include "common/b64.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "common/tz.h"

/* SPEC 2, "Bounds": versions are at most 2^53. */
#define CHARTER_VERSION_MAX (INT64_C(1) << 53)
/* Longest free-text value (title, names, unit, upstream model). */
#define TEXT_MAX 256
/* Longest model url. */
#define URL_MAX 2048
/* How much of a user's value is quoted back in a message. */
#define SHOW_MAX 72

__extension__ typedef unsigned __int128 u128;

struct pctx {
	const char *file;
	struct charter_errors *errs;
	struct charter *c;
	size_t errors_at_start;
	bool oom;
};

/* ---- messages ------------------------------------------------------------ */

static struct charter_mark mk(const struct ynode *n)
{
	struct charter_mark m = {n->line, n->col};
	return m;
}

#define ERR(p, node, ...) charter_diag_add((p)->errs, false, (p)->file, mk(node), __VA_ARGS__)
#define ERR_AT(p, mark, ...) charter_diag_add((p)->errs, false, (p)->file, (mark), __VA_ARGS__)
#define WARN_AT(p, mark, ...) charter_diag_add((p)->errs, true, (p)->file, (mark), __VA_ARGS__)

static bool had_errors(const struct pctx *p)
{
	return p->errs->nerrors + p->errs->dropped_ > p->errors_at_start;
}

/* A user's value, made safe to print: control bytes as \xNN, long values cut
 * (at a UTF-8 character boundary) with "...". */
static const char *show(const char *s, size_t len, char out[SHOW_MAX + 8])
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (o >= SHOW_MAX - 4) {
			while (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0x80)
				o--;
			if (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0xC0)
				o--;
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (ch < 0x20 || ch == 0x7f || ch == '\\') {
			o += (size_t)snprintf(out + o, 5, "\\x%02x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return out;
}

static const char *shown(const struct ynode *n, char out[SHOW_MAX + 8])
{
	return show(n->str, n->len, out);
}

static const char *period_phrase(enum charter_period p)
{
	switch (p) {
	case CHARTER_PERIOD_DAY: return "per day";
	case CHARTER_PERIOD_WEEK: return "per week";
	case CHARTER_PERIOD_MONTH: return "per month";
	case CHARTER_PERIOD_QUARTER: return "per quarter";
	case CHARTER_PERIOD_YEAR: return "per year";
	case CHARTER_PERIOD_TOTAL: return "in total";
	}
	return "";
}

/* ---- small helpers ------------------------------------------------------- */

static char *pdup(struct pctx *p, const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		p->oom = true;
	return d;
}

static void *pcalloc(struct pctx *p, size_t n, size_t size)
{
	if (n == 0)
		return NULL;
	void *v = calloc(n, size);
	if (!v)
		p->oom = true;
	return v;
}

static const struct ynode *map_get(const struct ynode *map, const char *key)
{
	if (!map || map->kind != YN_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->items[2 * i];
		if (k->kind == YN_SCALAR && strcmp(k->str, key) == 0) {
			const struct ynode *v = map->items[2 * i + 1];
			return ynode_is_null(v) ? NULL : v;
		}
	}
	return NULL;
}

/* ---- the shape of mappings ----------------------------------------------- */

struct keyspec {
	const char *name;
	bool required;
};

#define MAXKEYS 16

/* Checks that n is a mapping with only known keys, each at most once, and
 * every required key present.  vals[i] gets the value of ks[i] (NULL when
 * absent, or explicitly null for an optional key).  what names the mapping in
 * messages ("institution"); label names the node for a type error.  Returns
 * false when n is not a mapping. */
static bool walk_map(struct pctx *p, const struct ynode *n, const char *label,
		     const char *what, const struct keyspec *ks, size_t nks,
		     const struct ynode **vals)
{
	bool seen[MAXKEYS] = {false};
	char b[SHOW_MAX + 8];

	for (size_t i = 0; i < nks; i++)
		vals[i] = NULL;
	if (n->kind == YN_BAD)
		return false;
	if (n->kind != YN_MAP) {
		ERR(p, n, "%s must be a mapping", label);
		return false;
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
		size_t j;
		if (k->kind == YN_BAD)
			continue;
		if (k->kind != YN_SCALAR) {
			ERR(p, k, "keys must be strings");
			continue;
		}
		if (k->plain && strcmp(k->str, "<<") == 0) {
			ERR(p, k, "YAML merge keys are not allowed");
			continue;
		}
		for (j = 0; j < nks; j++)
			if (strlen(ks[j].name) == k->len && memcmp(ks[j].name, k->str, k->len) == 0)
				break;
		if (j == nks) {
			ERR(p, k, "unknown key '%s' in %s", shown(k, b), what);
			continue;
		}
		if (seen[j]) {
			ERR(p, k, "duplicate key '%s'", ks[j].name);
			continue;
		}
		seen[j] = true;
		vals[j] = (!ks[j].required && ynode_is_null(v)) ? NULL : v;
	}
	for (size_t j = 0; j < nks; j++)
		if (ks[j].required && !seen[j])
			ERR(p, n, "missing required key '%s' in %s", ks[j].name, what);
	return true;
}

static bool want_seq(struct pctx *p, const struct ynode *v, const char *label)
{
	if (v->kind == YN_BAD)
		return false;
	if (v->kind != YN_SEQ) {
		ERR(p, v, "%s must be a list", label);
		return false;
	}
	return true;
}

/* ---- typed scalars -------------------------------------------------------- */

static bool want_scalar(struct pctx *p, const struct ynode *v, const char *label,
			const char *desc, bool need_plain)
{
	if (v->kind == YN_BAD)
		return false;
	if (v->kind != YN_SCALAR || ynode_is_null(v)) {
		ERR(p, v, "%s must be %s", label, desc);
		return false;
	}
	if (need_plain && !v->plain) {
		ERR(p, v, "%s must be %s, not a quoted string", label, desc);
		return false;
	}
	return true;
}

/* Free text: no control characters, at most max bytes.  *out from malloc. */
static bool get_text(struct pctx *p, const struct ynode *v, const char *label, size_t max,
		     char **out)
{
	if (!want_scalar(p, v, label, "a string", false))
		return false;
	for (size_t i = 0; i < v->len; i++) {
		unsigned char ch = (unsigned char)v->str[i];
		if (ch < 0x20 || ch == 0x7f) {
			ERR(p, v, "%s must not contain control characters", label);
			return false;
		}
	}
	if (v->len > max) {
		ERR(p, v, "%s is longer than %zu bytes", label, max);
		return false;
	}
	free(*out);
	*out = pdup(p, v->str);
	return *out != NULL;
}

typedef bool (*id_check_fn)(const char *s, size_t len);

static bool in_set(char ch, const char *set)
{
	return ch != '\0' && strchr(set, ch) != NULL;
}

static bool is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* charter id: [a-z0-9-]{1,64} */
static bool valid_charter_id(const char *s, size_t len)
{
	if (len < 1 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* provider, model, institution, project ids and classes:
 * [a-z0-9][a-z0-9._-]{0,63} */
#define ID_PATTERN "[a-z0-9][a-z0-9._-]{0,63}"
static bool valid_id(const char *s, size_t len)
{
	if (len < 1 || len > 64 || !is_lower_alnum(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_lower_alnum(s[i]) && !in_set(s[i], "._-"))
			return false;
	return true;
}

/* members: [a-z0-9][a-z0-9._+@-]{0,127} (e.g. alice@epfl.ch) */
#define MEMBER_PATTERN "[a-z0-9][a-z0-9._+@-]{0,127}"
static bool valid_member(const char *s, size_t len)
{
	if (len < 1 || len > 128 || !is_lower_alnum(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_lower_alnum(s[i]) && !in_set(s[i], "._+@-"))
			return false;
	return true;
}

/* resources: [a-z][a-z0-9_]{0,63} */
#define RESOURCE_PATTERN "[a-z][a-z0-9_]{0,63}"
static bool valid_resource(const char *s, size_t len)
{
	if (len < 1 || len > 64 || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '_')
			return false;
	return true;
}

/* Any scalar as an identifier; stored even when invalid (so duplicates are
 * still found), reported as "invalid KIND 'x' (expected PATTERN)".
 * Returns true when valid.  *out is never NULL afterwards (unless OOM). */
static bool get_id(struct pctx *p, const struct ynode *v, const char *label,
		   const char *kind, id_check_fn check, const char *pattern, char **out)
{
	char b[SHOW_MAX + 8];
	if (!*out)
		*out = pdup(p, "");
	if (!v || !want_scalar(p, v, label, "a string", false))
		return false;
	free(*out);
	*out = pdup(p, v->str);
	if (strlen(v->str) != v->len || !check(v->str, v->len)) {
		ERR(p, v, "invalid %s '%s' (expected %s)", kind, shown(v, b), pattern);
		return false;
	}
	return true;
}

/* A plain integer in [min, max]: [-]digits, no leading zeros, no '+'. */
static bool get_int(struct pctx *p, const struct ynode *v, const char *label,
		    int64_t min, int64_t max, const char *desc, int64_t *out)
{
	if (!want_scalar(p, v, label, desc, true))
		return false;
	const char *s = v->str;
	size_t i = 0, len = v->len;
	bool neg = false;
	uint64_t val = 0;
	if (len > 0 && s[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == len || (s[i] == '0' && len - i > 1))
		goto bad;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			goto bad;
		if (val > (UINT64_MAX - 9) / 10)
			goto bad;
		val = val * 10 + (uint64_t)(s[i] - '0');
	}
	if (neg ? val > (uint64_t)INT64_MAX + 1 : val > (uint64_t)INT64_MAX)
		goto bad;
	int64_t x = neg ? (int64_t)(0 - val) : (int64_t)val;
	if (x < min || x > max)
		goto bad;
	*out = x;
	return true;
bad:
	ERR(p, v, "%s must be %s", label, desc);
	return false;
}

static bool get_bool(struct pctx *p, const struct ynode *v, const char *label, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};
	if (!want_scalar(p, v, label, "true or false", true))
		return false;
	for (size_t i = 0; i < 3; i++) {
		if (strcmp(v->str, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcmp(v->str, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	ERR(p, v, "%s must be true or false", label);
	return false;
}

/* [-]digits[.digits]: counts fractional digits.  Returns false on syntax. */
static bool decimal_shape(const char *s, size_t len, bool *neg, size_t *frac)
{
	size_t i = 0, whole = 0;
	*neg = false;
	*frac = 0;
	if (len > 0 && s[0] == '-') {
		*neg = true;
		i = 1;
	}
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		whole++;
	if (whole == 0)
		return false;
	if (i < len && s[i] == '.') {
		i++;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			(*frac)++;
		if (*frac == 0)
			return false;
	}
	return i == len;
}

/* A credit amount: a non-negative decimal, at most 6 fractional digits (even
 * trailing zeros count), at most MONEY_MAX.  *out in micro-credits. */
static bool get_amount(struct pctx *p, const struct ynode *v, const char *label,
		       int64_t *out)
{
	bool neg;
	size_t frac;
	int64_t micro;
	if (!want_scalar(p, v, label, "a decimal number", true))
		return false;
	if (!decimal_shape(v->str, v->len, &neg, &frac)) {
		ERR(p, v, "%s must be a decimal number", label);
		return false;
	}
	if (neg) {
		ERR(p, v, "%s must not be negative", label);
		return false;
	}
	if (frac > 6) {
		ERR(p, v, "%s has more than 6 fractional digits", label);
		return false;
	}
	if (money_parse(v->str, v->len, &micro) != MONEY_OK) {
		char b[MONEY_FMT_MAX];
		ERR(p, v, "%s is over the maximum of %s", label, money_format(MONEY_MAX, b));
		return false;
	}
	*out = micro;
	return true;
}

/* A non-negative decimal with at most digits fractional digits and at most
 * max (in millionths).  *out in millionths of the written number. */
static bool get_fraction(struct pctx *p, const struct ynode *v, const char *label,
			 const char *desc, size_t digits, int64_t max, int64_t *out)
{
	bool neg;
	size_t frac;
	int64_t micro;
	if (!want_scalar(p, v, label, desc, true))
		return false;
	if (!decimal_shape(v->str, v->len, &neg, &frac) || neg || frac > digits ||
	    money_parse(v->str, v->len, &micro) != MONEY_OK || micro > max) {
		ERR(p, v, "%s must be %s", label, desc);
		return false;
	}
	*out = micro;
	return true;
}

static bool parse_key(const char *s, size_t len, unsigned char pub[CHARTER_KEY_LEN])
{
	static const char prefix[] = "ed25519:";
	size_t pl = sizeof prefix - 1;
	unsigned char tmp[CHARTER_KEY_LEN + 3];
	size_t n = 0;
	if (len < pl || memcmp(s, prefix, pl) != 0)
		return false;
	/* common/b64: the one strict decoder (padded, canonical), as
	 * `allot keygen` prints keys. */
	if (b64_decode(s + pl, len - pl, tmp, sizeof tmp, &n) != ALLOT_OK || n != CHARTER_KEY_LEN)
		return false;
	memcpy(pub, tmp, CHARTER_KEY_LEN);
	return true;
}

/* ---- timezone ------------------------------------------------------------ */

/* The zone is checked by loading it exactly as quotas and periods will
 * (common/tz.c: name rules, the TZif file parsed, leap-second zones
 * refused), so a charter that validates never fails on its time zone
 * later.  ALLOT_E_INVALID: not a zone name; otherwise tz_load's error,
 * with its message in errbuf (TZ_ERR_MAX). */
static allot_err tz_usable(const char *name, size_t len, char *errbuf)
{
	errbuf[0] = '\0';
	if (len == 0 || len > TZ_NAME_MAX || strlen(name) != len || !tz_name_valid(name))
		return ALLOT_E_INVALID;
	tz *z = NULL;
	allot_err e = tz_load(name, &z, errbuf);
	tz_free(z);
	return e;
}

/* ---- allocations, limits, overage ----------------------------------------- */

static bool parse_period(struct pctx *p, const struct ynode *v, enum charter_period *out)
{
	static const char *const names[] = {"day", "week", "month", "quarter", "year", "total"};
	const char *desc = "one of day, week, month, quarter, year, total";
	if (!want_scalar(p, v, "'period'", desc, false))
		return false;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(v->str, names[i]) == 0) {
			*out = (enum charter_period)i;
			return true;
		}
	}
	ERR(p, v, "'period' must be %s", desc);
	return false;
}

/* Returns true when the allocation is complete and valid (so that it can be
 * compared with others without cascading errors). */
static bool parse_allocation(struct pctx *p, const struct ynode *n, const char *label,
			     struct charter_allocation *a)
{
	static const struct keyspec ks[] = {
		{"credits", true}, {"period", true}, {"rollover", false},
	};
	const struct ynode *v[3];
	a->period = CHARTER_PERIOD_MONTH;
	a->mark = mk(n);
	if (!walk_map(p, n, label, "allocation", ks, 3, v))
		return false;
	bool credits_ok = false;
	if (v[0]) {
		a->mark = mk(v[0]);
		credits_ok = get_amount(p, v[0], "'credits'", &a->credits);
	}
	bool period_ok = v[1] && parse_period(p, v[1], &a->period);
	if (v[2]) {
		int64_t r;
		if (get_fraction(p, v[2], "'rollover'",
				 "a decimal between 0 and 1 with at most 6 fractional digits",
				 6, CHARTER_PPM, &r)) {
			a->rollover_ppm = (int32_t)r;
			if (period_ok && a->period == CHARTER_PERIOD_TOTAL && r != 0)
				ERR(p, v[2], "'rollover' cannot be used with period total");
		}
	}
	return credits_ok && period_ok;
}

static void parse_limits(struct pctx *p, const struct ynode *n, struct charter_limits *l)
{
	static const struct keyspec ks[] = {
		{"requests_per_minute", false}, {"tokens_per_minute", false},
		{"max_tokens_per_request", false}, {"concurrent_requests", false},
	};
	int64_t *dst[4] = {&l->requests_per_minute, &l->tokens_per_minute,
			   &l->max_tokens_per_request, &l->concurrent_requests};
	const struct ynode *v[4];
	char label[64];
	char desc[64];
	snprintf(desc, sizeof desc, "an integer between 1 and %lld", CHARTER_LIMIT_MAX);
	if (!walk_map(p, n, "'limits'", "limits", ks, 4, v))
		return;
	for (size_t i = 0; i < 4; i++) {
		if (!v[i])
			continue;
		snprintf(label, sizeof label, "'%s'", ks[i].name);
		get_int(p, v[i], label, 1, CHARTER_LIMIT_MAX, desc, dst[i]);
	}
}

static void limits_init(struct charter_limits *l)
{
	l->requests_per_minute = CHARTER_UNSET;
	l->tokens_per_minute = CHARTER_UNSET;
	l->max_tokens_per_request = CHARTER_UNSET;
	l->concurrent_requests = CHARTER_UNSET;
}

static void parse_overage(struct pctx *p, const struct ynode *n, struct charter_overage *o)
{
	static const struct keyspec ks[] = {{"mode", true}, {"grace_percent", false}};
	const struct ynode *v[2];
	bool mode_ok = false;
	if (!walk_map(p, n, "'overage'", "overage", ks, 2, v))
		return;
	if (v[0] && want_scalar(p, v[0], "'mode'", "hard or soft", false)) {
		if (strcmp(v[0]->str, "hard") == 0) {
			o->mode = CHARTER_OVERAGE_HARD;
			mode_ok = true;
		} else if (strcmp(v[0]->str, "soft") == 0) {
			o->mode = CHARTER_OVERAGE_SOFT;
			mode_ok = true;
		} else {
			ERR(p, v[0], "'mode' must be hard or soft");
		}
	}
	if (v[1]) {
		int64_t micro; /* millionths of a percent */
		if (get_fraction(p, v[1], "'grace_percent'",
				 "a decimal between 0 and 100 with at most 4 fractional digits",
				 4, 100 * MONEY_SCALE, &micro)) {
			if (mode_ok && o->mode == CHARTER_OVERAGE_HARD)
				ERR(p, v[1], "'grace_percent' applies only to overage mode soft");
			else
				o->grace_ppm = (int32_t)(micro / 100);
		}
	} else if (mode_ok && o->mode == CHARTER_OVERAGE_SOFT) {
		ERR(p, n, "overage mode soft needs 'grace_percent'");
	}
	if (o->mode == CHARTER_OVERAGE_HARD)
		o->grace_ppm = 0;
}

/* ---- duplicate ids ------------------------------------------------------- */

/* Reports every id that appeared before (at its later position) and returns
 * the sorted index (from malloc).  Empty ids (missing or not a string,
 * already reported) are not compared. */
static size_t *check_dups(struct pctx *p, const void *base, size_t n, size_t stride,
			  size_t off, const struct charter_mark *marks, size_t mark_off,
			  const char *what)
{
	size_t *idx = charter_index_build(base, n, stride, off, &p->oom);
	char b[SHOW_MAX + 8];
	if (!idx)
		return NULL;
	const char *cbase = base;
#define ID_OF(i) (*(char *const *)(const void *)(cbase + (i) * stride + off))
#define MARK_OF(i) (marks ? marks[i] : \
		    *(const struct charter_mark *)(const void *)(cbase + (i) * stride + mark_off))
	for (size_t k = 1; k < n; k++) {
		size_t first = k - 1;
		while (k < n && ID_OF(idx[k])[0] != '\0' &&
		       strcmp(ID_OF(idx[k]), ID_OF(idx[first])) == 0) {
			struct charter_mark f = MARK_OF(idx[first]);
			ERR_AT(p, MARK_OF(idx[k]), "duplicate %s '%s' (first at %u:%u)", what,
			       show(ID_OF(idx[k]), strlen(ID_OF(idx[k])), b), f.line, f.col);
			k++;
		}
	}
#undef ID_OF
#undef MARK_OF
	return idx;
}

/* ---- providers ----------------------------------------------------------- */

static void parse_provider(struct pctx *p, const struct ynode *n, struct charter_provider *pr)
{
	static const struct keyspec ks[] = {
		{"id", true}, {"name", false}, {"builtin", false},
		{"keys", false}, {"resources", false},
	};
	const struct ynode *v[5];
	char b[SHOW_MAX + 8];

	pr->mark = mk(n);
	bool ok = walk_map(p, n, "'providers' entries", "provider", ks, 5, v);
	if (v[0])
		pr->mark = mk(v[0]);
	get_id(p, v[0], "'id'", "provider id", valid_id, ID_PATTERN, &pr->id);
	if (!ok)
		return;
	if (v[1])
		get_text(p, v[1], "'name'", TEXT_MAX, &pr->name);
	if (v[2])
		get_bool(p, v[2], "'builtin'", &pr->builtin);
	if (v[3] && want_seq(p, v[3], "'keys'")) {
		if (pr->builtin && v[3]->n > 0)
			ERR(p, v[3], "builtin provider '%s' must not have keys",
			    show(pr->id, strlen(pr->id), b));
		pr->keys = pcalloc(p, v[3]->n, sizeof *pr->keys);
		for (size_t i = 0; pr->keys && i < v[3]->n; i++) {
			const struct ynode *k = v[3]->items[i];
			if (!want_scalar(p, k, "each of 'keys'", "a string", false))
				continue;
			struct charter_key *key = &pr->keys[pr->nkeys];
			if (!parse_key(k->str, k->len, key->pub)) {
				ERR(p, k, "invalid key '%s' (expected ed25519: and the base64 of a "
				    "32-byte public key)", shown(k, b));
				continue;
			}
			key->mark = mk(k);
			if (!(key->text = pdup(p, k->str)))
				return;
			pr->nkeys++;
		}
	}
	if (v[4] && want_seq(p, v[4], "'resources'")) {
		pr->resources_given = true;
		pr->resources = pcalloc(p, v[4]->n, sizeof *pr->resources);
		struct charter_mark *marks = pcalloc(p, v[4]->n, sizeof *marks);
		for (size_t i = 0; pr->resources && marks && i < v[4]->n; i++) {
			const struct ynode *r = v[4]->items[i];
			char *s = NULL;
			marks[pr->nresources] = mk(r);
			get_id(p, r, "each of 'resources'", "resource", valid_resource,
			       RESOURCE_PATTERN, &s);
			if (!s)
				break;
			pr->resources[pr->nresources++] = s;
		}
		if (pr->resources && marks)
			free(check_dups(p, pr->resources, pr->nresources, sizeof(char *), 0,
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
	if (!v || !want_seq(p, v, "'providers'"))
		return;
	c->providers = pcalloc(p, v->n, sizeof *c->providers);
	if (!c->providers)
		return;
	c->nproviders = v->n;
	for (size_t i = 0; i < v->n && !p->oom; i++) {
		struct charter_provider *pr = &c->providers[i];
		parse_provider(p, v->items[i], pr);
		if (!pr->name && pr->id)
			pr->name = pdup(p, pr->id);
	}
	if (p->oom)
		return;
	c->providers_by_id_ = check_dups(p, c->providers, c->nproviders,
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
			       show(first_builtin->id, strlen(first_builtin->id), b),
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
	struct kref *refs = pcalloc(p, nk, sizeof *refs);
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
		if (!alnum && (i == 0 || !in_set(ch, "._+-")))
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

	m->mark = mk(n);
	bool ok = walk_map(p, n, "'models' entries", "model", ks, 5, v);
	if (v[0])
		m->mark = mk(v[0]);
	get_id(p, v[0], "'id'", "model id", valid_id, ID_PATTERN, &m->id);
	if (!ok || !m->id)
		return;
	const char *id = show(m->id, strlen(m->id), b);
	if (v[1] && get_id(p, v[1], "'provider'", "provider id", valid_id, ID_PATTERN,
			   &m->provider_id)) {
		m->provider = charter_provider(p->c, m->provider_id);
		if (!m->provider)
			ERR(p, v[1], "model '%s' refers to unknown provider '%s'", id,
			    show(m->provider_id, strlen(m->provider_id), b2));
	}
	if (v[2] && get_text(p, v[2], "'file'", 255, &m->file) &&
	    !valid_file(m->file, strlen(m->file)))
		ERR(p, v[2], "invalid model file '%s' (expected a file name in the models "
		    "directory, without '/')", shown(v[2], b2));
	if (v[3] && get_text(p, v[3], "'url'", URL_MAX, &m->url) &&
	    !valid_url(m->url, strlen(m->url)))
		ERR(p, v[3], "invalid url '%s' (expected http:// or https:// and a host)",
		    shown(v[3], b2));
	if (v[4])
		get_text(p, v[4], "'upstream_model'", TEXT_MAX, &m->upstream_model);

	if (!v[2] && !v[3])
		ERR(p, n, "model '%s' needs 'file' or 'url'", id);
	if (v[2] && v[3])
		ERR(p, v[3], "model '%s' has both 'file' and 'url'", id);
	if (v[2] && m->provider && !m->provider->builtin)
		ERR(p, v[2], "'file' needs a builtin provider ('%s' is remote; use 'url')",
		    show(m->provider->id, strlen(m->provider->id), b2));
	if (v[3] && m->provider && m->provider->builtin)
		ERR(p, v[3], "'url' needs a remote provider ('%s' is builtin; use 'file')",
		    show(m->provider->id, strlen(m->provider->id), b2));
	if (v[4] && !v[3])
		ERR(p, v[4], "'upstream_model' needs 'url'");
	if (m->url && !m->upstream_model)
		m->upstream_model = pdup(p, m->id);
}

static void parse_models(struct pctx *p, const struct ynode *v)
{
	struct charter *c = p->c;
	if (!v || !want_seq(p, v, "'models'"))
		return;
	c->models = pcalloc(p, v->n, sizeof *c->models);
	if (!c->models)
		return;
	c->nmodels = v->n;
	for (size_t i = 0; i < v->n && !p->oom; i++)
		parse_model(p, v->items[i], &c->models[i]);
	if (p->oom)
		return;
	for (size_t i = 0; i < c->nmodels; i++)
		if (!c->models[i].id && !(c->models[i].id = pdup(p, "")))
			return;
	c->models_by_id_ = check_dups(p, c->models, c->nmodels, sizeof *c->models,
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

	r->mark = mk(n);
	bool ok = walk_map(p, n, "'rates' entries", "rate", ks, 4, v);
	get_id(p, v[0], "'resource'", "resource", valid_resource, RESOURCE_PATTERN,
	       &r->resource);
	if (!ok)
		return;
	if (v[1] && get_id(p, v[1], "'model'", "model id", valid_id, ID_PATTERN, &r->model) &&
	    !charter_model(p->c, r->model))
		ERR(p, v[1], "rate refers to unknown model '%s'", shown(v[1], b));
	if (v[2])
		get_id(p, v[2], "'class'", "class", valid_id, ID_PATTERN, &r->cls);
	if (v[3])
		get_amount(p, v[3], "'credits'", &r->credits);
}

struct rate_key {
	char *key;
	struct charter_mark mark;
	const struct charter_rate *rate;
};

static void describe_rate(const struct charter_rate *r, char *out, size_t size)
{
	char b[SHOW_MAX + 8];
	int o = snprintf(out, size, "resource '%s'", show(r->resource, strlen(r->resource), b));
	if (r->model && o >= 0 && (size_t)o < size)
		o += snprintf(out + o, size - (size_t)o, ", model '%s'",
			      show(r->model, strlen(r->model), b));
	if (r->cls && o >= 0 && (size_t)o < size)
		snprintf(out + o, size - (size_t)o, ", class '%s'", show(r->cls, strlen(r->cls), b));
}

static void parse_rates(struct pctx *p, const struct ynode *v)
{
	struct charter *c = p->c;
	if (!v || !want_seq(p, v, "'rates'"))
		return;
	c->rates = pcalloc(p, v->n, sizeof *c->rates);
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
	struct rate_key *keys = pcalloc(p, c->nrates, sizeof *keys);
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
		if (!valid_id(m->id, strlen(m->id)))
			continue;
		for (size_t k = 0; k < 2; k++)
			if (!charter_rate_for(c, token_res[k], m->id, NULL))
				ERR_AT(p, m->mark, "model '%s' has no rate for %s", m->id,
				       token_res[k]);
	}
	if (!providers || providers->kind != YN_SEQ)
		return;
	for (size_t i = 0; i < providers->n && i < c->nproviders; i++) {
		const struct ynode *res = map_get(providers->items[i], "resources");
		const struct charter_provider *pr = &c->providers[i];
		if (!res || res->kind != YN_SEQ)
			continue;
		for (size_t j = 0; j < res->n; j++) {
			const struct ynode *r = res->items[j];
			bool priced = false;
			if (r->kind != YN_SCALAR || !valid_resource(r->str, r->len))
				continue;
			for (size_t k = 0; k < c->nrates && !priced; k++)
				priced = strcmp(c->rates[k].resource, r->str) == 0;
			if (!priced)
				ERR(p, r, "provider '%s' lists resource '%s' but no rate prices it",
				    show(pr->id, strlen(pr->id), b), shown(r, b2));
		}
	}
}

/* ---- institutions and projects -------------------------------------------- */

static void parse_members(struct pctx *p, const struct ynode *v, struct charter_project *pr)
{
	if (!want_seq(p, v, "'members'"))
		return;
	pr->members = pcalloc(p, v->n, sizeof *pr->members);
	struct charter_mark *marks = pcalloc(p, v->n, sizeof *marks);
	for (size_t i = 0; pr->members && marks && i < v->n; i++) {
		char *s = NULL;
		marks[pr->nmembers] = mk(v->items[i]);
		get_id(p, v->items[i], "each of 'members'", "member id", valid_member,
		       MEMBER_PATTERN, &s);
		if (!s)
			break;
		pr->members[pr->nmembers++] = s;
	}
	if (pr->members && marks && !p->oom)
		pr->members_by_id_ = check_dups(p, pr->members, pr->nmembers, sizeof(char *), 0,
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

	pr->mark = mk(n);
	limits_init(&pr->limits);
	pr->allocation.mark = mk(n);
	bool ok = walk_map(p, n, "'projects' entries", "project", ks, 6, v);
	if (v[0])
		pr->mark = mk(v[0]);
	get_id(p, v[0], "'id'", "project id", valid_id, ID_PATTERN, &pr->id);
	if (!ok)
		return;
	if (v[1])
		get_text(p, v[1], "'name'", TEXT_MAX, &pr->name);
	if (v[2])
		*alloc_ok = parse_allocation(p, v[2], "'allocation'", &pr->allocation);
	if (v[3]) {
		pr->has_member_allocation = true;
		*member_ok = parse_allocation(p, v[3], "'member_allocation'",
					      &pr->member_allocation);
	}
	if (v[4])
		parse_limits(p, v[4], &pr->limits);
	if (v[5])
		parse_members(p, v[5], pr);
}

static void parse_alerts(struct pctx *p, const struct ynode *v, struct charter_institution *in)
{
	char desc[64];
	snprintf(desc, sizeof desc, "an integer between 1 and %d", CHARTER_ALERT_MAX);
	if (!want_seq(p, v, "'alerts'"))
		return;
	in->alerts = pcalloc(p, v->n, sizeof *in->alerts);
	for (size_t i = 0; in->alerts && i < v->n; i++) {
		int64_t a;
		if (!get_int(p, v->items[i], "each of 'alerts'", 1, CHARTER_ALERT_MAX, desc, &a))
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
	if (!want_seq(p, v, "'models'"))
		return;
	in->all_models = false;
	in->models = pcalloc(p, v->n, sizeof *in->models);
	struct charter_mark *marks = pcalloc(p, v->n, sizeof *marks);
	for (size_t i = 0; in->models && marks && i < v->n; i++) {
		char *s = NULL;
		marks[in->nmodels] = mk(v->items[i]);
		bool ok = get_id(p, v->items[i], "each of 'models'", "model id", valid_id,
				 ID_PATTERN, &s);
		if (!s)
			break;
		if (ok && !charter_model(p->c, s))
			ERR(p, v->items[i], "institution '%s' refers to unknown model '%s'",
			    show(in->id, strlen(in->id), b), show(s, strlen(s), b2));
		in->models[in->nmodels++] = s;
	}
	if (in->models && marks && !p->oom)
		free(check_dups(p, in->models, in->nmodels, sizeof(char *), 0, marks, 0,
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
	const char *iid = show(in->id, strlen(in->id), b);

	for (size_t i = 0; i < in->nprojects; i++) {
		const struct charter_project *pr = &in->projects[i];
		const char *pid = show(pr->id, strlen(pr->id), b2);
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
				       period_phrase(in->allocation.period));
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
			       period_phrase(pr->allocation.period));
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

	in->mark = mk(n);
	in->allocation.mark = mk(n);
	in->all_models = true;
	limits_init(&in->limits);
	bool ok = walk_map(p, n, "'institutions' entries", "institution", ks, 8, v);
	if (v[0])
		in->mark = mk(v[0]);
	get_id(p, v[0], "'id'", "institution id", valid_id, ID_PATTERN, &in->id);
	if (!ok || !in->id)
		return;
	if (v[1])
		get_text(p, v[1], "'name'", TEXT_MAX, &in->name);
	bool alloc_ok = v[2] && parse_allocation(p, v[2], "'allocation'", &in->allocation);
	if (v[3])
		parse_limits(p, v[3], &in->limits);
	if (v[4])
		parse_overage(p, v[4], &in->overage);
	if (v[5])
		parse_alerts(p, v[5], in);
	if (v[6])
		parse_inst_models(p, v[6], in);
	if (v[7] && want_seq(p, v[7], "'projects'")) {
		in->projects = pcalloc(p, v[7]->n, sizeof *in->projects);
		if (!in->projects)
			return;
		in->nprojects = v[7]->n;
		bool *ok_flags = pcalloc(p, 2 * in->nprojects, sizeof *ok_flags);
		if (!ok_flags)
			return;
		for (size_t i = 0; i < in->nprojects && !p->oom; i++) {
			struct charter_project *pr = &in->projects[i];
			parse_project(p, v[7]->items[i], pr, &ok_flags[2 * i],
				      &ok_flags[2 * i + 1]);
			if (!pr->id)
				pr->id = pdup(p, "");
			if (!pr->name && pr->id)
				pr->name = pdup(p, pr->id);
		}
		if (!p->oom)
			in->projects_by_id_ = check_dups(
				p, in->projects, in->nprojects, sizeof *in->projects,
				offsetof(struct charter_project, id), NULL,
				offsetof(struct charter_project, mark), "project id");
		if (!p->oom)
			check_allocations(p, in, alloc_ok, ok_flags);
		free(ok_flags);
	}
}

static void parse_institutions(struct pctx *p, const struct ynode *v)
{
	struct charter *c = p->c;
	if (!v || !want_seq(p, v, "'institutions'"))
		return;
	c->institutions = pcalloc(p, v->n, sizeof *c->institutions);
	if (!c->institutions)
		return;
	c->ninstitutions = v->n;
	for (size_t i = 0; i < v->n && !p->oom; i++) {
		struct charter_institution *in = &c->institutions[i];
		parse_institution(p, v->items[i], in);
		if (!in->id)
			in->id = pdup(p, "");
		if (!in->name && in->id)
			in->name = pdup(p, in->id);
	}
	if (p->oom)
		return;
	c->institutions_by_id_ = check_dups(p, c->institutions, c->ninstitutions,
					    sizeof *c->institutions,
					    offsetof(struct charter_institution, id), NULL,
					    offsetof(struct charter_institution, mark),
					    "institution id");
}

/* The pool is what the commons can grant per month: warn when institutions
 * are allocated more on average (institutions with period total are left
 * out: they have no monthly rate). */
static void check_pool(struct pctx *p)
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
static void warn_providers(struct pctx *p, const struct ynode *providers)
{
	char b[SHOW_MAX + 8];
	for (size_t i = 0; i < p->c->nproviders; i++) {
		const struct charter_provider *pr = &p->c->providers[i];
		const struct ynode *keys = map_get(providers->items[i], "keys");
		if (keys && keys->kind == YN_SEQ && keys->n > 0)
			continue;
		if (!pr->builtin && pr->nkeys == 0 && pr->resources_given && pr->nresources)
			WARN_AT(p, pr->mark, "provider '%s' has no keys, so it cannot submit "
				"usage records", show(pr->id, strlen(pr->id), b));
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
	w->mark = mk(n);
	if (!walk_map(p, n, "'webhooks' entries", "webhook", ks, 2, v))
		return;
	if (v[0] && get_text(p, v[0], "'url'", URL_MAX, &w->url) &&
	    !valid_url(w->url, strlen(w->url)))
		ERR(p, v[0], "invalid webhook url '%s' (expected http:// or https:// and a host)",
		    shown(v[0], b));
	if (!v[1] || !want_seq(p, v[1], "'events'"))
		return;
	if (v[1]->n == 0)
		ERR(p, v[1], "'events' must name at least one of alert, overage, charter, "
		    "settlement_failed");
	for (size_t i = 0; i < v[1]->n; i++) {
		const struct ynode *e = v[1]->items[i];
		unsigned bit = 0;
		if (want_scalar(p, e, "each of 'events'", "an event name", false))
			for (unsigned k = 1; k <= CHARTER_EV_SETTLEMENT_FAILED; k <<= 1)
				if (strlen(charter_event_name(k)) == e->len &&
				    memcmp(charter_event_name(k), e->str, e->len) == 0)
					bit = k;
		if (e->kind == YN_SCALAR && !bit)
			ERR(p, e, "unknown webhook event '%s' (expected alert, overage, charter or "
			    "settlement_failed)", shown(e, b));
		else if (bit & w->events)
			ERR(p, e, "webhook event '%s' is listed twice", shown(e, b));
		w->events |= bit;
	}
}

static void parse_webhooks(struct pctx *p, const struct ynode *v)
{
	struct charter *c = p->c;
	if (!v || !want_seq(p, v, "'webhooks'"))
		return;
	c->webhooks = pcalloc(p, v->n, sizeof *c->webhooks);
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
				    show(c->webhooks[i].url, strlen(c->webhooks[i].url), b));
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

	if (!walk_map(p, root, "a charter", "charter", ks, K_N, v))
		return;
	if (v[K_CHARTER]) {
		c->id_mark = mk(v[K_CHARTER]);
		get_id(p, v[K_CHARTER], "'charter'", "charter id", valid_charter_id,
		       "[a-z0-9-]{1,64}", &c->id);
	}
	if (v[K_VERSION]) {
		c->version_mark = mk(v[K_VERSION]);
		/* SPEC 2, "Bounds": versions are at most 2^53 (exact in any JSON
		 * reader; 2^63 - 1 would leave no version to apply after it). */
		if (get_int(p, v[K_VERSION], "'version'", 1, INT64_MAX, "a positive integer",
			    &c->version) && c->version > CHARTER_VERSION_MAX) {
			ERR(p, v[K_VERSION], "'version' must be at most 2^53 (%lld)",
			    (long long)CHARTER_VERSION_MAX);
			c->version = 0;
		}
	}
	if (v[K_TITLE])
		get_text(p, v[K_TITLE], "'title'", TEXT_MAX, &c->title);
	if (v[K_EFFECTIVE]) {
		const struct ynode *e = v[K_EFFECTIVE];
		c->effective_mark = mk(e);
		if (want_scalar(p, e, "'effective'", "an RFC 3339 time", false) &&
		    time_parse_rfc3339(e->str, e->len, &c->effective_us) != 0)
			ERR(p, e, "'effective' must be an RFC 3339 time such as "
			    "2026-12-01T00:00:00Z, not '%s'", shown(e, b));
	}
	if (v[K_TIMEZONE]) {
		const struct ynode *t = v[K_TIMEZONE];
		c->timezone_mark = mk(t);
		if (want_scalar(p, t, "'timezone'", "a string", false)) {
			char why[TZ_ERR_MAX];
			allot_err te = tz_usable(t->str, t->len, why);
			if (te == ALLOT_E_INVALID && !why[0])
				ERR(p, t, "invalid timezone '%s' (expected an IANA name such as "
				    "Europe/Zurich)", shown(t, b));
			else if (te == ALLOT_E_NOT_FOUND)
				ERR(p, t, "unknown timezone '%s'", shown(t, b));
			else if (te)
				ERR(p, t, "timezone '%s' cannot be used: %s", shown(t, b), why);
			else
				c->timezone = pdup(p, t->str);
		}
	}
	if (v[K_UNIT]) {
		c->unit_mark = mk(v[K_UNIT]);
		get_text(p, v[K_UNIT], "'unit'", TEXT_MAX, &c->unit);
	}
	if (v[K_POOL]) {
		c->pool_mark = mk(v[K_POOL]);
		c->has_pool = get_amount(p, v[K_POOL], "'pool'", &c->pool);
	}
	c->late_grace_days = CHARTER_LATE_GRACE_DEFAULT_DAYS;
	if (v[K_LATE]) {
		static const struct keyspec lk[] = {{"days", true}};
		const struct ynode *lv[1];
		int64_t days;
		char desc[64];
		snprintf(desc, sizeof desc, "an integer between 0 and %d",
			 CHARTER_LATE_GRACE_MAX_DAYS);
		if (walk_map(p, v[K_LATE], "'late_grace'", "late_grace", lk, 1, lv) && lv[0] &&
		    get_int(p, lv[0], "'days'", 0, CHARTER_LATE_GRACE_MAX_DAYS, desc, &days))
			c->late_grace_days = (int32_t)days;
	}
	c->late_grace_us = (int64_t)c->late_grace_days * 86400 * US_PER_SEC;
	if (v[K_PUBLIC]) /* GET /public (docs/DASHBOARD.md) */
		get_bool(p, v[K_PUBLIC], "'public'", &c->is_public);

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
	parse_institutions(p, v[K_INSTITUTIONS]);
	if (p->oom)
		return;
	check_pool(p);
	parse_webhooks(p, v[K_WEBHOOKS]);
	if (v[K_PROVIDERS] && v[K_PROVIDERS]->kind == YN_SEQ)
		warn_providers(p, v[K_PROVIDERS]);
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
	} else if (had_errors(&p)) {
		rc = ALLOT_E_UNPROCESSABLE;
	} else {
		*out = p.c;
		return ALLOT_OK;
	}
	charter_free(p.c);
	return rc;
}
