/* charter.h — the in-memory charter: who gets how much compute, at what rates,
 * under what limits (SPEC section 2), and the functions that parse, validate,
 * compare and print it.  The YAML format, every rule and every message are
 * documented in docs/CHARTER.md.
 *
 * Ownership: charter_parse() returns a struct charter from malloc(); every
 * string and array inside it belongs to it and is freed by charter_free().
 * A parsed charter is never modified afterwards, so it may be shared
 * read-only between threads.  Pointers returned by the lookup functions point
 * into the charter and live as long as it does.
 *
 * Amounts are int64 micro-credits (common/money.h); times are int64 UTC
 * microseconds (common/timeutil.h); fractions (rollover, overage grace) are
 * integer parts per million.  No floating point anywhere.
 */
#ifndef ALLOT_CHARTER_CHARTER_H
#define ALLOT_CHARTER_CHARTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "common/err.h"

/* ---- limits ------------------------------------------------------------- */

/* Largest charter text accepted: 1 MiB.  A national charter with a thousand
 * institutions and their projects is well under 200 KiB; the limit keeps a
 * PUT /v1/charter body and the parse time bounded. */
#define CHARTER_MAX_BYTES (1024 * 1024)
/* Deepest YAML nesting accepted.  The format itself needs 7 levels
 * (charter > institutions > institution > projects > project > allocation >
 * value); 16 leaves room and keeps the tree walk bounded. */
#define CHARTER_MAX_DEPTH 16
/* At most this many errors are reported; then one "too many errors" line. */
#define CHARTER_MAX_ERRORS 1000
/* Largest value of any rate or concurrency limit (limits: {...}). */
#define CHARTER_LIMIT_MAX 1000000000LL
/* Alert thresholds are percentages 1..CHARTER_ALERT_MAX of the allocation. */
#define CHARTER_ALERT_MAX 1000
/* late_grace: {days: N}: default and maximum N. */
#define CHARTER_LATE_GRACE_DEFAULT_DAYS 3
#define CHARTER_LATE_GRACE_MAX_DAYS 90
/* Fractions are parts per million: 1000000 == 1 == 100 %. */
#define CHARTER_PPM 1000000
/* An optional integer limit that the charter does not set. */
#define CHARTER_UNSET (-1)
/* Raw Ed25519 public key length. */
#define CHARTER_KEY_LEN 32

/* ---- the model ----------------------------------------------------------- */

/* 1-based line and column (in characters) of a node in the charter's YAML
 * text.  The mark of a provider, model, institution or project is where its
 * id is written; of a rate, its mapping; of a key, its string. */
struct charter_mark {
	uint32_t line;
	uint32_t col;
};

enum charter_period {
	CHARTER_PERIOD_DAY,
	CHARTER_PERIOD_WEEK,    /* Monday 00:00 local time to the next Monday */
	CHARTER_PERIOD_MONTH,
	CHARTER_PERIOD_QUARTER, /* Jan, Apr, Jul, Oct */
	CHARTER_PERIOD_YEAR,
	CHARTER_PERIOD_TOTAL,   /* one budget for the charter's whole life */
};

struct charter_allocation {
	int64_t credits;          /* micro-credits per period, 0..MONEY_MAX */
	enum charter_period period;
	int32_t rollover_ppm;     /* fraction of the unused allocation carried
				     into the next period, once: 0..CHARTER_PPM
				     (always 0 for CHARTER_PERIOD_TOTAL) */
	struct charter_mark mark; /* where credits is written */
};

/* Each field is CHARTER_UNSET or 1..CHARTER_LIMIT_MAX.  A limit applies to
 * the total of the level that sets it (institution or project), not to each
 * child. */
struct charter_limits {
	int64_t requests_per_minute;
	int64_t tokens_per_minute;
	int64_t max_tokens_per_request;
	int64_t concurrent_requests;
};

enum charter_overage_mode {
	CHARTER_OVERAGE_HARD, /* nothing admitted that could pass the allocation */
	CHARTER_OVERAGE_SOFT, /* admitted up to grace beyond it; overage reported */
};

struct charter_overage {
	enum charter_overage_mode mode;
	/* soft: grace as parts per million of the allocation (grace_percent 12.5
	 * is 125000); hard: always 0.  Grace credits for an allocation A are
	 * money_scale_floor(A, grace_ppm, CHARTER_PPM). */
	int32_t grace_ppm;
};

/* A price: credits per unit of resource, optionally only for one model
 * and/or one class.  Use charter_rate_for() to find the rate of a charge. */
struct charter_rate {
	char *resource;           /* e.g. "tokens_in", "gpu_seconds" */
	char *model;              /* NULL: any model */
	char *cls;                /* NULL: any class (e.g. "h100") */
	int64_t credits;          /* micro-credits per unit, >= 0 */
	size_t index;             /* position in charter.rates (stable id) */
	struct charter_mark mark;
};

struct charter_key {
	unsigned char pub[CHARTER_KEY_LEN]; /* raw Ed25519 public key */
	char *text;                         /* as written: "ed25519:<base64>" */
	struct charter_mark mark;
};

struct charter_provider {
	char *id;
	char *name;               /* defaults to id */
	bool builtin;             /* the bundled backend; at most one; no keys */
	struct charter_key *keys; /* keys that sign this provider's records */
	size_t nkeys;
	/* Resources the provider may submit usage for.  When the charter gives
	 * none: for the builtin provider tokens_in and tokens_out, for any
	 * other every resource that has a rate (resources_given is false). */
	char **resources;
	size_t nresources;
	bool resources_given;
	struct charter_mark mark;
};

struct charter_model {
	char *id;
	char *provider_id;
	const struct charter_provider *provider; /* into charter.providers */
	char *file;               /* builtin provider: file name in --models */
	char *url;                /* other providers: OpenAI-compatible base URL */
	char *upstream_model;     /* name sent upstream; defaults to id (url only,
				     NULL for file models) */
	struct charter_mark mark;
};

struct charter_project {
	char *id;
	char *name;               /* defaults to id */
	struct charter_allocation allocation;
	bool has_member_allocation;
	struct charter_allocation member_allocation; /* per member, if set */
	struct charter_limits limits;
	char **members;           /* member ids (document order) */
	size_t nmembers;
	struct charter_mark mark;
	size_t *members_by_id_;   /* private: sorted index for lookups */
};

struct charter_institution {
	char *id;
	char *name;               /* defaults to id */
	struct charter_allocation allocation;
	struct charter_limits limits;
	struct charter_overage overage; /* default hard; projects inherit it */
	int32_t *alerts;          /* percent thresholds, strictly increasing */
	size_t nalerts;
	bool all_models;          /* true when the charter gives no models: list */
	char **models;            /* model ids its members may use (if !all_models) */
	size_t nmodels;
	struct charter_project *projects;
	size_t nprojects;
	struct charter_mark mark;
	size_t *projects_by_id_;  /* private: sorted index for lookups */
};

/* Webhook events (a bit each in charter_webhook.events). */
enum charter_event {
	CHARTER_EV_ALERT = 1,             /* an `alerts` threshold crossed */
	CHARTER_EV_OVERAGE = 2,           /* a level went past its allocation */
	CHARTER_EV_CHARTER = 4,           /* a charter was applied */
	CHARTER_EV_SETTLEMENT_FAILED = 8, /* a gate settlement could not be booked */
};

struct charter_webhook {
	char *url;                /* http:// or https:// */
	unsigned events;          /* CHARTER_EV_* bits, at least one */
	struct charter_mark mark;
};

/* "alert", "overage", "charter", "settlement_failed" (one bit). */
const char *charter_event_name(unsigned ev);

struct charter {
	char *file;               /* name used in messages, as passed to parse */
	char *id;                 /* [a-z0-9-]{1,64} */
	int64_t version;          /* >= 1 */
	char *title;              /* "" when absent */
	int64_t effective_us;     /* UTC microseconds */
	char *timezone;           /* IANA name, exists under /usr/share/zoneinfo */
	char *unit;               /* display name of the unit; default "credit" */
	bool has_pool;
	int64_t pool;             /* micro-credits per month, if has_pool */
	int32_t late_grace_days;  /* late usage window (default 3) */
	/* Not from the YAML: set by the daemon before the charter is shared,
	 * the `effective` of the first charter ever applied (when the ledger
	 * begins; rollover never carries from before it).  0: effective_us. */
	int64_t ledger_start_us;
	int64_t late_grace_us;    /* the same in microseconds */
	bool is_public;           /* `public: true`: GET /public shows the commons */

	struct charter_rate *rates;
	size_t nrates;
	struct charter_provider *providers;
	size_t nproviders;
	struct charter_model *models;
	size_t nmodels;
	struct charter_institution *institutions;
	size_t ninstitutions;
	struct charter_webhook *webhooks; /* SPEC 4; docs/WEBHOOKS.md */
	size_t nwebhooks;

	/* Where things are in the text (for charter_check_successor). */
	struct charter_mark id_mark, version_mark, effective_mark, timezone_mark,
		unit_mark, pool_mark;

	/* private: sorted indexes for lookups */
	size_t *providers_by_id_, *models_by_id_, *institutions_by_id_;
};

/* ---- diagnostics --------------------------------------------------------- */

struct charter_diag {
	struct charter_mark mark;
	char *message;            /* e.g. "unknown key 'colour' in project" */
	char *text;               /* the full line: "FILE:LINE:COLUMN: message"
				     (warnings: "FILE:LINE:COLUMN: warning: ...") */
};

/* Errors and warnings of a parse or check, each sorted by position.
 * Initialise with CHARTER_ERRORS_INIT; free with charter_errors_release(). */
struct charter_errors {
	struct charter_diag *errors;
	size_t nerrors;
	struct charter_diag *warnings;
	size_t nwarnings;
	bool oom;                 /* an allocation failed; lists are incomplete */
	size_t cap_errors_, cap_warnings_, dropped_; /* private */
};

#define CHARTER_ERRORS_INIT {0}

void charter_errors_release(struct charter_errors *errs);
/* Writes every error line, then every warning line, one per line. */
void charter_errors_print(const struct charter_errors *errs, FILE *err);

/* ---- parsing and checking ------------------------------------------------ */

/* Parses and validates a charter from buf[0..len) (need not be
 * NUL-terminated).  filename is used in messages only ("FILE:LINE:COLUMN").
 * Every error found is appended to errs->errors and every warning to
 * errs->warnings (errs must be initialised; it may already hold entries).
 * Returns ALLOT_OK and *out (caller frees with charter_free) when there is
 * no error; ALLOT_E_UNPROCESSABLE when there are errors (*out untouched);
 * ALLOT_E_NOMEM when memory ran out. */
allot_err charter_parse(const char *filename, const char *buf, size_t len,
			struct charter **out, struct charter_errors *errs);

/* Rules for replacing the active charter with next: the version must
 * increase, the charter id must stay, effective must not move back.
 * Errors and warnings (timezone or unit changes) are located in next's text.
 * active may be NULL (first charter: always fine).
 * Returns ALLOT_OK or ALLOT_E_CONFLICT (errors added), ALLOT_E_NOMEM. */
allot_err charter_check_successor(const struct charter *active,
				  const struct charter *next,
				  struct charter_errors *errs);

/* `allot charter check FILE` and `allotd --check`: reads path, parses it,
 * prints "charter OK" on out, or every error line on err; warnings go to
 * err as "FILE:LINE:COLUMN: warning: ..." in both cases.  Returns 0 when
 * the charter is valid, 1 otherwise (unreadable file included). */
int charter_check_file(const char *path, FILE *out, FILE *err);

void charter_free(struct charter *c);

/* ---- lookups (NULL when absent) ------------------------------------------ */

const struct charter_institution *charter_institution(const struct charter *c,
							const char *id);
const struct charter_project *charter_project(const struct charter_institution *inst,
					      const char *id);
/* The member id as stored in the project, or NULL if not a member. */
const char *charter_member(const struct charter_project *proj, const char *id);
const struct charter_provider *charter_provider(const struct charter *c,
						const char *id);
const struct charter_model *charter_model(const struct charter *c, const char *id);
/* May members of inst use model_id?  (The model must exist too.) */
bool charter_institution_allows_model(const struct charter *c,
				      const struct charter_institution *inst,
				      const char *model_id);
/* The provider whose key set contains pub, or NULL. */
const struct charter_provider *charter_provider_by_key(const struct charter *c,
						       const unsigned char pub[CHARTER_KEY_LEN]);
/* May provider p submit usage for resource? */
bool charter_provider_has_resource(const struct charter *c,
				   const struct charter_provider *p,
				   const char *resource);
/* May provider p report `resource` for `model` (NULL or "": none)?  What
 * charter_provider_has_resource allows, and always tokens_in and
 * tokens_out of p's own models: what the gate books for them. */
bool charter_provider_may_report(const struct charter *c, const struct charter_provider *p,
				 const char *resource, const char *model);

/* The rate that prices one unit of resource for model and class (either may
 * be NULL).  The most specific matching rate wins:
 *   model and class both match  >  model matches, rate has no class
 *   >  class matches, rate has no model  >  rate has neither.
 * A rate that names a model (or class) never matches another model (class)
 * or a charge without one.  NULL when nothing matches. */
const struct charter_rate *charter_rate_for(const struct charter *c,
					    const char *resource,
					    const char *model, const char *cls);

/* ---- names and arithmetic ------------------------------------------------ */

const char *charter_period_name(enum charter_period p);     /* "month" */
const char *charter_overage_name(enum charter_overage_mode m); /* "soft" */

/* Compares child's allocation with parent's as average rates over the
 * 400-year Gregorian cycle (146097 days = 20871 weeks = 4800 months = 1600
 * quarters = 400 years), exactly.  Returns -1 if child is smaller, 0 if
 * equal, 1 if larger, and 2 if they cannot be compared (exactly one of them
 * has period total). */
int charter_allocation_cmp(const struct charter_allocation *child,
			   const struct charter_allocation *parent);

/* ---- JSON ---------------------------------------------------------------- */

/* The whole charter as JSON (GET /v1/charter, the transparency log).
 * Amounts and fractions are exact decimal strings ("0.25", "100000"),
 * effective is RFC 3339.  New reference; NULL on allocation failure. */
json_t *charter_to_json(const struct charter *c);

/* What changes when old is replaced by next (old may be NULL;
 * charter/charter_diff.c):
 *   {"from_version": 6|null, "to_version": 7,
 *    "pool": {"from": "1000000"|null, "to": ...}                (if changed)
 *    "rates": [{"resource", "model", "class", "change": "added|removed|changed",
 *               "from": "0.0001"|null, "to": ...}]             (if any)
 *    "providers": [{"id", "change"}]      (keys, resources, name; if any)
 *    "models": [{"id", "change", "from": MODEL|null, "to": MODEL|null}]
 *    "institutions": [{"id", "change",
 *       "allocation": {"from": ALLOC|null, "to": ALLOC|null, "delta": "-5"},
 *       "limits": {"requests_per_minute": {"from": 600|null, "to": 300}},
 *       "overage": {"from": {"mode": "soft", "grace_percent": "10"}, "to": ...},
 *       "alerts": {"from": [80,100], "to": [50,80,100]},
 *       "models": {"added": [...], "removed": [...]} or {"from": "all", "to": [..]},
 *       "projects": [{"id", "change", "allocation": {...},
 *                     "member_allocation": {...}, "limits": {...},
 *                     "members": {"added": [...], "removed": [...]}}]}]}
 * where ALLOC is {"credits": "100000", "period": "month", "rollover": "0.25"},
 * MODEL is {"provider", "file"|"url", "upstream_model"?}, and "delta" (to -
 * from, exact, signed) is present when both exist with the same period.
 * Unchanged institutions and projects are left out; limits, overage,
 * alerts, models and members only when they changed (of an institution or
 * project present in both).  New reference; NULL on allocation failure. */
json_t *charter_diff(const struct charter *old, const struct charter *next);
/* The text form of a charter_diff() object, one change per line, indented
 * per institution and project (`allot charter validate`). */
void charter_diff_print(const json_t *diff, FILE *f);

#endif
