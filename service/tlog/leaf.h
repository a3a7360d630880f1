/* leaf.h — what the transparency log's leaves are: the canonical bytes of
 * a usage record (with what allot added to it), an applied charter, or an
 * audit entry (docs/TLOG.md, "Leaves").
 *
 * Every leaf is a compact JSON object with sorted keys and no null-valued
 * fields (jansson JSON_COMPACT | JSON_SORT_KEYS), built from the entry in its
 * *export form* — the very object the API hands out (GET /v1/usage,
 * /v1/charter/history, /v1/audit, /v1/log/export) — so an auditor recomputes
 * each leaf from an export alone:
 *
 *   usage:   {"type":"usage", the fields of TLOG_USAGE_FIELDS that are not
 *             null, "record_sha256": hex SHA-256 of the record's canonical
 *             bytes (the "canonical" field)}
 *   charter: {"type":"charter","version","charter_id","sha256" (of the YAML
 *             text),"author","applied","effective"}
 *   audit:   {"type":"audit","id","at","actor","action","target",
 *             "before_sha256","after_sha256","detail"}
 *
 * A changed quantity, charge, rate, time, owner or canonical byte of a
 * record gives another leaf.  Fields outside these lists (the row id,
 * leaf_index, proofs) are not part of the leaf.
 *
 * Thread-safety: reentrant.
 */
#ifndef ALLOT_TLOG_LEAF_H
#define ALLOT_TLOG_LEAF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"

enum tlog_leaf_type { TLOG_LEAF_USAGE, TLOG_LEAF_CHARTER, TLOG_LEAF_AUDIT };

/* A booked usage record as the log sees it: plain fields, no store or
 * ledger types (the store maps its rows to this: store_row_leaf_entry).
 * Strings are NUL-terminated; "" for a null member, class, model or
 * supersedes. */
struct tlog_usage {
	const char *provider, *record_id, *institution, *project, *member, *resource, *cls,
		*model, *supersedes;
	const char *kind;        /* "usage", "adjustment", "void" */
	const char *adjustment;  /* NULL when none */
	bool has_seq;
	int64_t seq, quantity, start_us, end_us, received_us, book_us;
	bool late, overage, from_gate;
	int64_t charter_version, rate_micro, charge_micro;
	const char *canonical;   /* the record's canonical bytes; NULL: none */
	size_t canonical_len;
};

/* "usage", "charter", "audit". */
const char *tlog_leaf_type_name(enum tlog_leaf_type t);
/* The type of a name; -1 for an unknown one. */
int tlog_leaf_type_parse(const char *name);

/* Turns a usage row in column form (start_us, end_us, received_us, book_us
 * as integers, charge_micro, rate_micro, late and overage as 0/1) into the
 * export form of GET /v1/usage (ledgerlog_usage_json), in place:
 * "start", "end", "received", "booked" as RFC 3339, "charge" and "rate" as
 * exact decimals, "late" and "overage" as booleans. */
void tlog_usage_export_form(json_t *r);

/* The export form of a booked record (no "id", no "leaf_index").  OUT: a
 * new reference (caller decrefs); NULL when out of memory. */
json_t *tlog_usage_export_json(const struct tlog_usage *u);
/* The export form of a charter (no text). */
json_t *tlog_charter_export_json(int64_t version, const char *charter_id, const char *sha256,
				 const char *author, int64_t applied_us, int64_t effective_us);
/* The export form of an audit entry with its id. */
json_t *tlog_audit_export_json(int64_t id, int64_t at_us, const char *actor, const char *action,
			       const char *target, const char *before_sha256,
			       const char *after_sha256, const char *detail);

/* The leaf bytes of an entry in export form.  Fails (ALLOT_E_INVALID, reason
 * in msg) when a required field is missing or has the wrong type (a usage
 * record needs "canonical" as a string).  OUT: *data (from malloc(),
 * NUL-terminated, caller frees) and *len on success only. */
allot_err tlog_leaf_bytes(enum tlog_leaf_type t, const json_t *entry, char **data, size_t *len,
			  char *msg, size_t msgcap);

/* The usage leaf of a record as the store inserts it: byte for byte what
 * tlog_leaf_bytes(TLOG_LEAF_USAGE, tlog_usage_export_json(u)) gives, built
 * directly (no JSON objects) for plain-ASCII fields, the common case; other
 * records take that slower path.  OUT: *data (from malloc()), *len. */
allot_err tlog_leaf_usage(const struct tlog_usage *u, char **data, size_t *len);

#endif
