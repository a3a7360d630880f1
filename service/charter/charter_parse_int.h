/* charter_parse_int.h — private to the charter parser's files: its
 * context, message macros, and the helpers they share (charter_fields.c:
 * messages, mappings, typed scalars, allocations and limits, duplicate
 * ids; charter_insts.c: institutions, projects, the pool).  Not for other
 * modules; the parser's entry point is charter_parse (charter/charter.h). */
#ifndef ALLOT_CHARTER_CHARTER_PARSE_INT_H
#define ALLOT_CHARTER_CHARTER_PARSE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "charter/charter.h"
#include "charter/charter_int.h"
#include "charter/ynode.h"
#include "common/err.h"

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


#define ERR(p, node, ...) charter_diag_add((p)->errs, false, (p)->file, cp_mk(node), __VA_ARGS__)
#define ERR_AT(p, mark, ...) charter_diag_add((p)->errs, false, (p)->file, (mark), __VA_ARGS__)
#define WARN_AT(p, mark, ...) charter_diag_add((p)->errs, true, (p)->file, (mark), __VA_ARGS__)

struct keyspec {
	const char *name;
	bool required;
};

#define MAXKEYS 16

/* An identifier rule: whether s[0..len) is valid. */
typedef bool (*id_check_fn)(const char *s, size_t len);

/* ---- charter_fields.c ---- */
/* Reports every id that appeared before (at its later position) and returns
 * the sorted index (from malloc).  Empty ids (missing or not a string,
 * already reported) are not compared. */
size_t *cp_check_dups(struct pctx *p, const void *base, size_t n, size_t stride,
		      size_t off, const struct charter_mark *marks, size_t mark_off,
		      const char *what);

/* A credit amount: a non-negative decimal, at most 6 fractional digits (even
 * trailing zeros count), at most MONEY_MAX.  *out in micro-credits. */
bool cp_get_amount(struct pctx *p, const struct ynode *v, const char *label,
		   int64_t *out);

bool cp_get_bool(struct pctx *p, const struct ynode *v, const char *label, bool *out);

/* Any scalar as an identifier; stored even when invalid (so duplicates are
 * still found), reported as "invalid KIND 'x' (expected PATTERN)".
 * Returns true when valid.  *out is never NULL afterwards (unless OOM). */
bool cp_get_id(struct pctx *p, const struct ynode *v, const char *label,
	       const char *kind, id_check_fn check, const char *pattern, char **out);

/* A plain integer in [min, max]: [-]digits, no leading zeros, no '+'. */
bool cp_get_int(struct pctx *p, const struct ynode *v, const char *label,
		int64_t min, int64_t max, const char *desc, int64_t *out);

/* Free text: no control characters, at most max bytes.  *out from malloc. */
bool cp_get_text(struct pctx *p, const struct ynode *v, const char *label, size_t max,
		 char **out);

bool cp_had_errors(const struct pctx *p);

bool cp_in_set(char ch, const char *set);

void cp_limits_init(struct charter_limits *l);

const struct ynode *cp_map_get(const struct ynode *map, const char *key);

struct charter_mark cp_mk(const struct ynode *n);

/* Returns true when the allocation is complete and valid (so that it can be
 * compared with others without cascading errors). */
bool cp_parse_allocation(struct pctx *p, const struct ynode *n, const char *label,
			 struct charter_allocation *a);

bool cp_parse_key(const char *s, size_t len, unsigned char pub[CHARTER_KEY_LEN]);

void cp_parse_limits(struct pctx *p, const struct ynode *n, struct charter_limits *l);

void cp_parse_overage(struct pctx *p, const struct ynode *n, struct charter_overage *o);

void *cp_pcalloc(struct pctx *p, size_t n, size_t size);

char *cp_pdup(struct pctx *p, const char *s);

const char *cp_period_phrase(enum charter_period p);

/* A user's value, made safe to print: control bytes as \xNN, long values cut
 * (at a UTF-8 character boundary) with "...". */
const char *cp_show(const char *s, size_t len, char out[SHOW_MAX + 8]);

const char *cp_shown(const struct ynode *n, char out[SHOW_MAX + 8]);

/* The zone is checked by loading it exactly as quotas and periods will
 * (common/tz.c: name rules, the TZif file parsed, leap-second zones
 * refused), so a charter that validates never fails on its time zone
 * later.  ALLOT_E_INVALID: not a zone name; otherwise tz_load's error,
 * with its message in errbuf (TZ_ERR_MAX). */
allot_err cp_tz_usable(const char *name, size_t len, char *errbuf);

/* charter id: [a-z0-9-]{1,64} */
bool cp_valid_charter_id(const char *s, size_t len);

/* The patterns of provider, model, institution, project ids and
 * classes; of members; of resources (for messages). */
#define ID_PATTERN "[a-z0-9][a-z0-9._-]{0,63}"
#define MEMBER_PATTERN "[a-z0-9][a-z0-9._+@-]{0,127}"
#define RESOURCE_PATTERN "[a-z][a-z0-9_]{0,63}"
/* Whether s[0..len) matches ID_PATTERN, MEMBER_PATTERN, RESOURCE_PATTERN. */
bool cp_valid_id(const char *s, size_t len);

bool cp_valid_member(const char *s, size_t len);

bool cp_valid_resource(const char *s, size_t len);

/* Checks that n is a mapping with only known keys, each at most once, and
 * every required key present.  vals[i] gets the value of ks[i] (NULL when
 * absent, or explicitly null for an optional key).  what names the mapping in
 * messages ("institution"); label names the node for a type error.  Returns
 * false when n is not a mapping. */
bool cp_walk_map(struct pctx *p, const struct ynode *n, const char *label,
		 const char *what, const struct keyspec *ks, size_t nks,
		 const struct ynode **vals);

bool cp_want_scalar(struct pctx *p, const struct ynode *v, const char *label,
		    const char *desc, bool need_plain);

bool cp_want_seq(struct pctx *p, const struct ynode *v, const char *label);

/* ---- charter_insts.c ---- */
/* The pool is what the commons can grant per month: warn when institutions
 * are allocated more on average (institutions with period total are left
 * out: they have no monthly rate). */
void cp_check_pool(struct pctx *p);

void cp_parse_institutions(struct pctx *p, const struct ynode *v);

/* A remote provider that lists resources but no keys at all (invalid keys
 * are errors already) can never submit a record. */
void cp_warn_providers(struct pctx *p, const struct ynode *providers);

#endif
