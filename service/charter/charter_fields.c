/* charter_fields.c — the charter parser's building blocks
 * (charter/charter_parse_int.h): messages, the shape of mappings, typed
 * scalars (ids, integers, amounts, keys, the time zone), allocations,
 * limits and overage, duplicate ids. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charter/charter_parse_int.h"
#include "common/b64.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "common/tz.h"

/* ---- messages ------------------------------------------------------------ */

struct charter_mark cp_mk(const struct ynode *n)
{
	struct charter_mark m = {n->line, n->col};
	return m;
}


bool cp_had_errors(const struct pctx *p)
{
	return p->errs->nerrors + p->errs->dropped_ > p->errors_at_start;
}

/* A user's value, made safe to print: control bytes as \xNN, long values cut
 * (at a UTF-8 character boundary) with "...". */
const char *cp_show(const char *s, size_t len, char out[SHOW_MAX + 8])
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

const char *cp_shown(const struct ynode *n, char out[SHOW_MAX + 8])
{
	return cp_show(n->str, n->len, out);
}

const char *cp_period_phrase(enum charter_period p)
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

char *cp_pdup(struct pctx *p, const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		p->oom = true;
	return d;
}

void *cp_pcalloc(struct pctx *p, size_t n, size_t size)
{
	if (n == 0)
		return NULL;
	void *v = calloc(n, size);
	if (!v)
		p->oom = true;
	return v;
}

const struct ynode *cp_map_get(const struct ynode *map, const char *key)
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


/* Checks that n is a mapping with only known keys, each at most once, and
 * every required key present.  vals[i] gets the value of ks[i] (NULL when
 * absent, or explicitly null for an optional key).  what names the mapping in
 * messages ("institution"); label names the node for a type error.  Returns
 * false when n is not a mapping. */
bool cp_walk_map(struct pctx *p, const struct ynode *n, const char *label,
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
			ERR(p, k, "unknown key '%s' in %s", cp_shown(k, b), what);
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

bool cp_want_seq(struct pctx *p, const struct ynode *v, const char *label)
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

bool cp_want_scalar(struct pctx *p, const struct ynode *v, const char *label,
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
bool cp_get_text(struct pctx *p, const struct ynode *v, const char *label, size_t max,
		 char **out)
{
	if (!cp_want_scalar(p, v, label, "a string", false))
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
	*out = cp_pdup(p, v->str);
	return *out != NULL;
}

bool cp_in_set(char ch, const char *set)
{
	return ch != '\0' && strchr(set, ch) != NULL;
}

static bool is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* charter id: [a-z0-9-]{1,64} */
bool cp_valid_charter_id(const char *s, size_t len)
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
bool cp_valid_id(const char *s, size_t len)
{
	if (len < 1 || len > 64 || !is_lower_alnum(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_lower_alnum(s[i]) && !cp_in_set(s[i], "._-"))
			return false;
	return true;
}

/* members: [a-z0-9][a-z0-9._+@-]{0,127} (e.g. alice@epfl.ch) */
bool cp_valid_member(const char *s, size_t len)
{
	if (len < 1 || len > 128 || !is_lower_alnum(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_lower_alnum(s[i]) && !cp_in_set(s[i], "._+@-"))
			return false;
	return true;
}

/* resources: [a-z][a-z0-9_]{0,63} */
bool cp_valid_resource(const char *s, size_t len)
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
bool cp_get_id(struct pctx *p, const struct ynode *v, const char *label,
	       const char *kind, id_check_fn check, const char *pattern, char **out)
{
	char b[SHOW_MAX + 8];
	if (!*out)
		*out = cp_pdup(p, "");
	if (!v || !cp_want_scalar(p, v, label, "a string", false))
		return false;
	free(*out);
	*out = cp_pdup(p, v->str);
	if (strlen(v->str) != v->len || !check(v->str, v->len)) {
		ERR(p, v, "invalid %s '%s' (expected %s)", kind, cp_shown(v, b), pattern);
		return false;
	}
	return true;
}

/* A plain integer in [min, max]: [-]digits, no leading zeros, no '+'. */
bool cp_get_int(struct pctx *p, const struct ynode *v, const char *label,
		int64_t min, int64_t max, const char *desc, int64_t *out)
{
	if (!cp_want_scalar(p, v, label, desc, true))
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

bool cp_get_bool(struct pctx *p, const struct ynode *v, const char *label, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};
	if (!cp_want_scalar(p, v, label, "true or false", true))
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
bool cp_get_amount(struct pctx *p, const struct ynode *v, const char *label,
		   int64_t *out)
{
	bool neg;
	size_t frac;
	int64_t micro;
	if (!cp_want_scalar(p, v, label, "a decimal number", true))
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
	if (!cp_want_scalar(p, v, label, desc, true))
		return false;
	if (!decimal_shape(v->str, v->len, &neg, &frac) || neg || frac > digits ||
	    money_parse(v->str, v->len, &micro) != MONEY_OK || micro > max) {
		ERR(p, v, "%s must be %s", label, desc);
		return false;
	}
	*out = micro;
	return true;
}

bool cp_parse_key(const char *s, size_t len, unsigned char pub[CHARTER_KEY_LEN])
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
allot_err cp_tz_usable(const char *name, size_t len, char *errbuf)
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
	if (!cp_want_scalar(p, v, "'period'", desc, false))
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
bool cp_parse_allocation(struct pctx *p, const struct ynode *n, const char *label,
			 struct charter_allocation *a)
{
	static const struct keyspec ks[] = {
		{"credits", true}, {"period", true}, {"rollover", false},
	};
	const struct ynode *v[3];
	a->period = CHARTER_PERIOD_MONTH;
	a->mark = cp_mk(n);
	if (!cp_walk_map(p, n, label, "allocation", ks, 3, v))
		return false;
	bool credits_ok = false;
	if (v[0]) {
		a->mark = cp_mk(v[0]);
		credits_ok = cp_get_amount(p, v[0], "'credits'", &a->credits);
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

void cp_parse_limits(struct pctx *p, const struct ynode *n, struct charter_limits *l)
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
	if (!cp_walk_map(p, n, "'limits'", "limits", ks, 4, v))
		return;
	for (size_t i = 0; i < 4; i++) {
		if (!v[i])
			continue;
		snprintf(label, sizeof label, "'%s'", ks[i].name);
		cp_get_int(p, v[i], label, 1, CHARTER_LIMIT_MAX, desc, dst[i]);
	}
}

void cp_limits_init(struct charter_limits *l)
{
	l->requests_per_minute = CHARTER_UNSET;
	l->tokens_per_minute = CHARTER_UNSET;
	l->max_tokens_per_request = CHARTER_UNSET;
	l->concurrent_requests = CHARTER_UNSET;
}

void cp_parse_overage(struct pctx *p, const struct ynode *n, struct charter_overage *o)
{
	static const struct keyspec ks[] = {{"mode", true}, {"grace_percent", false}};
	const struct ynode *v[2];
	bool mode_ok = false;
	if (!cp_walk_map(p, n, "'overage'", "overage", ks, 2, v))
		return;
	if (v[0] && cp_want_scalar(p, v[0], "'mode'", "hard or soft", false)) {
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
size_t *cp_check_dups(struct pctx *p, const void *base, size_t n, size_t stride,
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
			       cp_show(ID_OF(idx[k]), strlen(ID_OF(idx[k])), b), f.line, f.col);
			k++;
		}
	}
#undef ID_OF
#undef MARK_OF
	return idx;
}

