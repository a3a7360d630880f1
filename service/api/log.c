/* log.c — the transparency log's HTTP resources (docs/TLOG.md):
 *   GET /v1/log/key                               public
 *   GET /v1/log/checkpoint                        admin, auditor, institution
 *   GET /v1/log/proof/inclusion?index=&size=      admin, auditor, institution
 *   GET /v1/log/proof/consistency?from=&to=       admin, auditor, institution
 *   GET /v1/log/entries?start=&end=               admin, auditor
 *   GET /v1/log/export?start=&end=&since=         admin, auditor
 * Proofs and checkpoints reveal hashes and sizes only; entries and exports
 * hold every institution's records, hence staff only. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "ledger/ledgerlog.h"

/* Leaves per GET /v1/log/entries page. */
#define LOG_ENTRIES_MAX 1000

/* Parses an optional unsigned query parameter; absent leaves *out. */
static allot_err query_u64(struct http_req *req, struct http_resp *resp, const char *name,
			   uint64_t *out, bool *present)
{
	const char *v = http_query(req, name);
	if (present)
		*present = v != NULL;
	if (!v)
		return ALLOT_OK;
	char *end;
	if (!*v || *v == '-' || *v == '+' || *v == ' ')
		goto bad;
	unsigned long long x = strtoull(v, &end, 10);
	if (*end || x > MERKLE_SIZE_MAX)
		goto bad;
	*out = x;
	return ALLOT_OK;
bad:
	return http_error(resp, ALLOT_E_INVALID, "%s must be a non-negative integer", name);
}

static allot_err head(struct http_req *req, struct http_resp *resp, uint64_t *size)
{
	uint8_t root[32];
	struct store *st = api_app(req)->store;
	if (store_tlog_head(st, size, root))
		return http_error(resp, ALLOT_E_STORE, "the log could not be read");
	return ALLOT_OK;
}

allot_err api_log_key(struct http_req *req, struct http_resp *resp)
{
	struct ledgerlog *l = api_app(req)->log;
	return http_json(resp, 200, json_pack("{s:s,s:s,s:s}", "origin", ledgerlog_origin(l),
					      "vkey", ledgerlog_vkey(l), "key", ledgerlog_pub(l)));
}

allot_err api_log_checkpoint(struct http_req *req, struct http_resp *resp)
{
	char *note = NULL, msg[256] = "";
	allot_err e = ledgerlog_checkpoint(api_app(req)->log, false, &note, NULL, msg, sizeof msg);
	if (e)
		return http_error(resp, e, "%s", msg[0] ? msg : "the checkpoint could not be signed");
	buf_puts(&resp->body, note);
	free(note);
	resp->status = 200;
	resp->content_type = "text/plain; charset=utf-8";
	return ALLOT_OK;
}

allot_err api_log_inclusion(struct http_req *req, struct http_resp *resp)
{
	uint64_t index = 0, size = 0;
	bool has_index, has_size;
	allot_err e;
	if ((e = query_u64(req, resp, "index", &index, &has_index)) ||
	    (e = query_u64(req, resp, "size", &size, &has_size)))
		return e;
	if (!has_index)
		return http_error(resp, ALLOT_E_INVALID, "index is required");
	uint64_t cur;
	if ((e = head(req, resp, &cur)))
		return e;
	if (!has_size)
		size = cur;
	if (size > cur)
		return http_error(resp, ALLOT_E_INVALID, "size %llu is beyond the log (%llu leaves)",
				  (unsigned long long)size, (unsigned long long)cur);
	if (index >= size)
		return http_error(resp, ALLOT_E_INVALID, "index must be below size (%llu)",
				  (unsigned long long)size);
	struct merkle_proof p;
	uint8_t leaf[32];
	struct store *st = api_app(req)->store;
	if ((e = store_tlog_inclusion(st, index, size, leaf, &p)))
		return http_error(resp, e, "the proof could not be built");
	char lb[48];
	b64_encode(leaf, 32, lb);
	return http_json(resp, 200, json_pack("{s:I,s:I,s:s,s:o}", "index", (json_int_t)index,
					      "size", (json_int_t)size, "leaf_hash", lb, "proof",
					      ledgerlog_proof_json(&p)));
}

allot_err api_log_consistency(struct http_req *req, struct http_resp *resp)
{
	uint64_t from = 0, to = 0;
	bool has_from, has_to;
	allot_err e;
	if ((e = query_u64(req, resp, "from", &from, &has_from)) ||
	    (e = query_u64(req, resp, "to", &to, &has_to)))
		return e;
	if (!has_from || from == 0)
		return http_error(resp, ALLOT_E_INVALID, "from is required and must be at least 1");
	uint64_t cur;
	if ((e = head(req, resp, &cur)))
		return e;
	if (!has_to)
		to = cur;
	if (to > cur || from > to)
		return http_error(resp, ALLOT_E_INVALID, "need 1 <= from <= to <= %llu (the log size)",
				  (unsigned long long)cur);
	struct merkle_proof p;
	struct store *st = api_app(req)->store;
	if ((e = store_tlog_consistency(st, from, to, &p)))
		return http_error(resp, e, "the proof could not be built");
	return http_json(resp, 200, json_pack("{s:I,s:I,s:o}", "from", (json_int_t)from, "to",
					      (json_int_t)to, "proof", ledgerlog_proof_json(&p)));
}

allot_err api_log_entries(struct http_req *req, struct http_resp *resp)
{
	uint64_t start = 0, end = 0, cur;
	bool has_end;
	allot_err e;
	if ((e = query_u64(req, resp, "start", &start, NULL)) ||
	    (e = query_u64(req, resp, "end", &end, &has_end)) || (e = head(req, resp, &cur)))
		return e;
	if (!has_end || end > cur)
		end = cur;
	if (start > end)
		return http_error(resp, ALLOT_E_INVALID, "start must be at most end (%llu)",
				  (unsigned long long)end);
	if (end - start > LOG_ENTRIES_MAX)
		end = start + LOG_ENTRIES_MAX;
	json_t *entries = NULL;
	struct store *st = api_app(req)->store;
	if ((e = ledgerlog_entries(st, start, end, false, &entries)))
		return http_error(resp, e, "the log could not be read");
	return http_json(resp, 200, json_pack("{s:I,s:I,s:I,s:o}", "size", (json_int_t)cur,
					      "start", (json_int_t)start, "end", (json_int_t)end,
					      "entries", entries));
}

allot_err api_log_export(struct http_req *req, struct http_resp *resp)
{
	uint64_t start = 0, end = 0, since = 0;
	allot_err e;
	if ((e = query_u64(req, resp, "start", &start, NULL)) ||
	    (e = query_u64(req, resp, "end", &end, NULL)) ||
	    (e = query_u64(req, resp, "since", &since, NULL)))
		return e;
	json_t *x = NULL;
	char msg[256] = "";
	if ((e = ledgerlog_export(api_app(req)->log, start, end, since, &x, msg, sizeof msg)))
		return http_error(resp, e, "%s", msg[0] ? msg : "the export failed");
	return http_json(resp, 200, x);
}

allot_err api_log_annotate(struct http_req *req, struct http_resp *resp, json_t *body,
			   json_t *rows, bool proofs)
{
	struct ledgerlog *l = api_app(req)->log;
	char *note = NULL, msg[256] = "";
	struct checkpoint cp;
	/* Signed after the rows were read, so it covers every one of them. */
	allot_err e = ledgerlog_checkpoint(l, true, &note, &cp, msg, sizeof msg);
	if (!e && rows)
		e = ledgerlog_annotate_usage(l, rows, proofs, &cp);
	if (e) {
		free(note);
		return http_error(resp, e, "%s", msg[0] ? msg : "the log could not be read");
	}
	json_object_set_new(body, "checkpoint", json_string(note));
	json_object_set_new(body, "log_size", json_integer((json_int_t)cp.size));
	free(note);
	if (proofs) {
		uint64_t since = 0;
		bool has;
		if ((e = query_u64(req, resp, "since", &since, &has)))
			return e;
		if (has && since > 0) {
			struct merkle_proof p;
			struct store *st = api_app(req)->store;
			if (since > cp.size || store_tlog_consistency(st, since, cp.size, &p))
				return http_error(resp, ALLOT_E_INVALID, "since must be 1..%llu",
						  (unsigned long long)cp.size);
			json_object_set_new(body, "consistency", json_pack("{s:I,s:I,s:o}", "from",
				(json_int_t)since, "to", (json_int_t)cp.size, "proof",
				ledgerlog_proof_json(&p)));
		}
	}
	return ALLOT_OK;
}
