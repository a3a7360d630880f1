/* ledger.c — the ledger object, provider batches (POST /v1/usage) and the
 * gate's settlements; booking one record is in book.c, the group commit in
 * group.c. */
#include "ledger/ledger_int.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/metrics.h"
#include "common/money.h"
#include "crypto/ed25519.h"
#include "ledger/quota.h"
#include "ledger/vpool.h"

/* Keys of one provider parsed once per batch (any further keys are tried
 * the slow way). */
#define CHARTER_MAX_VERIFIERS 16

static void ledger_group_reset(void *owner)
{
	struct ledger *led = owner;
	ledger_over_clear(&led->over);
}

allot_err ledger_open(struct store *st, struct ledger **out)
{
	struct ledger *led = calloc(1, sizeof *led);
	if (!led)
		return ALLOT_E_NOMEM;
	led->store = st;
	pthread_mutex_init(&led->verify_mu, NULL);
	if (!(led->charters = chist_new()) || !(led->reserve = reserve_new()) ||
	    !(led->group = lgroup_new(st, led, ledger_group_reset))) {
		ledger_free(led);
		return ALLOT_E_NOMEM;
	}
	*out = led;
	return ALLOT_OK;
}

void ledger_free(struct ledger *led)
{
	if (!led)
		return;
	lgroup_free(led->group);
	ledger_over_clear(&led->over);
	vpool_free(led->verify);
	pthread_mutex_destroy(&led->verify_mu);
	reserve_free(led->reserve);
	chist_free(led->charters);
	free(led);
}

struct store *ledger_store(struct ledger *led)
{
	return led->store;
}

struct chist *ledger_charters(struct ledger *led)
{
	return led->charters;
}

struct reserve_table *ledger_reserve(struct ledger *led)
{
	return led->reserve;
}

size_t ledger_group_queued(struct ledger *led)
{
	return lgroup_queued(led->group);
}

static json_t *outcome_json(enum outcome o, const struct usage_record *r,
			    const struct ledger_row *row, const char *reason)
{
	json_t *j = json_pack("{s:s,s:s}", "record_id", r->record_id[0] ? r->record_id : "",
			      "status", ledger_outcome_name(o));
	if (o == OUT_ACCEPTED || o == OUT_DUPLICATE) {
		char b[MONEY_FMT_MAX];
		json_object_set_new(j, "charge", json_string(money_format(row->charge_micro, b)));
		json_object_set_new(j, "charter_version", json_integer(row->charter_version));
		json_object_set_new(j, "overage", json_boolean(row->overage));
		json_object_set_new(j, "late", json_boolean(row->late));
	} else {
		json_object_set_new(j, "reason", json_string(reason));
	}
	return j;
}

/* ---- provider batches ------------------------------------------------------------ */

struct ingest_item {
	struct usage_record r;
	struct ledger_row row;
	enum outcome o;
	char reason[LEDGER_REASON_MAX];
};

struct ingest_batch {
	struct ingest_item *items;
	size_t n;
};

static allot_err ingest_work(void *owner, void *arg, int64_t now)
{
	struct ledger *led = owner;
	struct ingest_batch *b = arg;
	for (size_t i = 0; i < b->n; i++) {
		struct ingest_item *it = &b->items[i];
		if (it->o != OUT_ACCEPTED)
			continue; /* refused before the transaction */
		it->o = ledger_book_one(led, &it->r, NULL, now, &it->row, it->reason, sizeof it->reason);
		if (it->o == OUT_ERROR)
			return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

/* Signatures are checked in ranges of this many records, spread over the
 * request's thread and the pool (about 3 ms of work each). */
#define VERIFY_CHUNK 32

struct verify_ctx {
	struct ingest_batch *b;
	const char *provider;
	const struct charter_provider *prov;
	struct ed25519_verifier *ver[CHARTER_MAX_VERIFIERS];
	size_t nver;
};

static void verify_range(void *arg, size_t from, size_t to)
{
	struct verify_ctx *v = arg;
	for (size_t i = from; i < to; i++) {
		struct ingest_item *it = &v->b->items[i];
		if (it->o != OUT_ACCEPTED)
			continue;
		if (strcmp(it->r.provider, v->provider) != 0) {
			it->o = OUT_REJECTED;
			snprintf(it->reason, sizeof it->reason, "record is for provider \"%s\" but the "
				 "key belongs to provider \"%s\"", it->r.provider, v->provider);
			continue;
		}
		bool sig_ok = false;
		for (size_t k = 0; k < v->nver && !sig_ok; k++)
			sig_ok = it->r.has_sig &&
				 ed25519_verifier_check(v->ver[k], it->r.canonical, it->r.canonical_len,
							it->r.sig, 64) == ALLOT_OK;
		for (size_t k = CHARTER_MAX_VERIFIERS; v->prov && k < v->prov->nkeys && !sig_ok; k++)
			sig_ok = record_sig_ok(&it->r, v->prov->keys[k].pub);
		if (!sig_ok) {
			it->o = OUT_REJECTED;
			snprintf(it->reason, sizeof it->reason, "signature does not verify with "
				 "any key of provider \"%s\"", v->provider);
		}
	}
}

static struct vpool *verify_pool(struct ledger *led)
{
	pthread_mutex_lock(&led->verify_mu);
	if (!led->verify_started) {
		led->verify_started = true;
		led->verify = vpool_new(0);
	}
	struct vpool *p = led->verify;
	pthread_mutex_unlock(&led->verify_mu);
	return p;
}

/* Provider and signature of every parsed item (o == OUT_ACCEPTED so far),
 * outside the transaction: this is the CPU-heavy part.  It runs on the
 * request's thread and the verification pool, so the CPUs stay busy while
 * other requests book their records or wait for their fsync. */
static void ingest_verify(struct ledger *led, const struct charter *c, const char *provider,
			  struct ingest_batch *b)
{
	struct verify_ctx v = {.b = b, .provider = provider, .prov = charter_provider(c, provider)};
	/* The provider's keys, parsed once for the whole batch. */
	for (size_t k = 0; v.prov && k < v.prov->nkeys && v.nver < CHARTER_MAX_VERIFIERS; k++)
		if (ed25519_verifier_new(v.prov->keys[k].pub, &v.ver[v.nver]) == ALLOT_OK)
			v.nver++;
	vpool_run(verify_pool(led), b->n, VERIFY_CHUNK, verify_range, &v);
	for (size_t k = 0; k < v.nver; k++)
		ed25519_verifier_free(v.ver[k]);
}

static void ingest_count(const struct ingest_batch *b, struct ledger_counts *counts)
{
	memset(counts, 0, sizeof *counts);
	for (size_t i = 0; i < b->n; i++) {
		switch (b->items[i].o) {
		case OUT_ACCEPTED: counts->accepted++; break;
		case OUT_DUPLICATE: counts->duplicate++; break;
		case OUT_CONFLICT: counts->conflict++; break;
		default: counts->rejected++; break;
		}
	}
}

static void ingest_free(struct ingest_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		record_release(&b->items[i].r);
	free(b->items);
}

static size_t ingest_rejected(const struct ingest_batch *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		n += b->items[i].o == OUT_REJECTED;
	return n;
}

/* allot_ledger_records_total and _rejected_total: malformed ones were
 * refused before verifying, signature ones by it, the rest by the rules. */
static void ingest_metrics(const struct ingest_batch *b, size_t malformed, size_t unsigned_,
			   allot_err e)
{
	if (e) {
		metrics_add(MC_LEDGER_ERROR, b->n);
		return;
	}
	struct ledger_counts c;
	ingest_count(b, &c);
	size_t rejected = ingest_rejected(b);
	metrics_add(MC_LEDGER_ACCEPTED, c.accepted);
	metrics_add(MC_LEDGER_DUPLICATE, c.duplicate);
	metrics_add(MC_LEDGER_CONFLICT, c.conflict);
	metrics_add(MC_LEDGER_REJECTED, rejected);
	metrics_add(MC_LEDGER_ERROR, c.rejected - rejected);
	metrics_add(MC_REJECT_MALFORMED, malformed);
	metrics_add(MC_REJECT_SIGNATURE, unsigned_);
	metrics_add(MC_REJECT_CHARTER, rejected - malformed - unsigned_);
}

/* Verifies the parsed batch and books it in a group transaction. */
static allot_err ingest_run(struct ledger *led, struct active_charter *cur, const char *provider,
			    struct ingest_batch *b, char *msg, size_t msgsz)
{
	size_t malformed = ingest_rejected(b);
	ingest_verify(led, cur->c, provider, b);
	size_t unsigned_ = ingest_rejected(b) - malformed;
	chist_put(led->charters, cur);
	allot_err e = lgroup_run(led->group, ingest_work, b, true);
	ingest_metrics(b, malformed, unsigned_, e);
	if (e)
		snprintf(msg, msgsz, "the ledger could not be written; nothing of this batch was stored");
	return e;
}

allot_err ledger_ingest(struct ledger *led, const char *provider, const json_t *records,
			json_t **outcomes, struct ledger_counts *counts, char *msg,
			size_t msgsz)
{
	size_t n = json_array_size(records);
	memset(counts, 0, sizeof *counts);
	if (!json_is_array(records) || n == 0 || n > LEDGER_BATCH_MAX) {
		snprintf(msg, msgsz, "\"records\" must be an array of 1..%d records", LEDGER_BATCH_MAX);
		return ALLOT_E_INVALID;
	}
	struct active_charter *cur = chist_get(led->charters);
	if (!cur) {
		snprintf(msg, msgsz, "no charter has been applied");
		return ALLOT_E_UNAVAILABLE;
	}
	struct ingest_batch b = {.items = calloc(n, sizeof *b.items), .n = n};
	if (!b.items) {
		chist_put(led->charters, cur);
		snprintf(msg, msgsz, "out of memory");
		return ALLOT_E_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct ingest_item *it = &b.items[i];
		it->o = record_parse(json_array_get(records, i), true, &it->r, it->reason,
				     sizeof it->reason) ? OUT_REJECTED : OUT_ACCEPTED;
	}
	allot_err e = ingest_run(led, cur, provider, &b, msg, msgsz);
	json_t *out = e ? NULL : json_array();
	for (size_t i = 0; out && i < n; i++) {
		struct ingest_item *it = &b.items[i];
		json_array_append_new(out, outcome_json(it->o, &it->r, &it->row, it->reason));
	}
	if (!e)
		ingest_count(&b, counts);
	ingest_free(&b);
	if (e)
		return e;
	*outcomes = out;
	return ALLOT_OK;
}

/* ---- POST /v1/usage bodies as text ---------------------------------------------------
 * The body {"records":[...]} read without building a jansson tree: each
 * record goes through record_parse_text, the answer is written straight
 * into the buffer, byte for byte what json_dumps makes of the tree built by
 * ledger_ingest.  A body that is not plain JSON in the sense of
 * record_parse_text (escapes, non-ASCII, nesting, floats, other top-level
 * fields, a repeated key, too many records) takes the jansson path. */

static const char *body_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Parses the plain body into b; false: not plain, b released. */
static bool ingest_parse_text(const char *body, size_t len, struct ingest_batch *b)
{
	static const char head[] = "\"records\"";
	const char *p = body_ws(body, body + len), *end = body + len;
	size_t cap = 0;
	memset(b, 0, sizeof *b);
	if (p >= end || *p != '{')
		return false;
	p = body_ws(p + 1, end);
	if ((size_t)(end - p) < sizeof head || memcmp(p, head, sizeof head - 1))
		return false;
	p = body_ws(p + sizeof head - 1, end);
	if (p >= end || *p != ':')
		return false;
	p = body_ws(p + 1, end);
	if (p >= end || *p != '[')
		return false;
	p = body_ws(p + 1, end);
	/* A record is at least 150 bytes: a first guess of the count. */
	cap = len / 128 + 1;
	if (cap > LEDGER_BATCH_MAX)
		cap = LEDGER_BATCH_MAX;
	b->items = malloc(cap * sizeof *b->items);
	if (!b->items)
		return false;
	while (p < end && *p != ']') {
		if (b->n == LEDGER_BATCH_MAX)
			goto fail; /* the jansson path says how many are allowed */
		if (b->n == cap) {
			size_t nc = cap * 2 > LEDGER_BATCH_MAX ? LEDGER_BATCH_MAX : cap * 2;
			struct ingest_item *ni = realloc(b->items, nc * sizeof *ni);
			if (!ni)
				goto fail;
			b->items = ni;
			cap = nc;
		}
		struct ingest_item *it = &b->items[b->n];
		bool plain;
		it->reason[0] = '\0';
		allot_err e = record_parse_text(&p, end, true, &it->r, &plain, it->reason,
						sizeof it->reason);
		if (!plain) {
			record_release(&it->r);
			goto fail;
		}
		b->n++;
		it->o = e ? OUT_REJECTED : OUT_ACCEPTED;
		p = body_ws(p, end);
		if (p < end && *p == ',') {
			p = body_ws(p + 1, end);
			if (p < end && *p == ']')
				goto fail; /* a trailing comma: malformed */
		} else if (p >= end || *p != ']') {
			goto fail;
		}
	}
	if (p >= end || b->n == 0)
		goto fail;
	p = body_ws(p + 1, end);
	if (p >= end || *p != '}')
		goto fail;
	if (body_ws(p + 1, end) != end)
		goto fail;
	return true;
fail:
	ingest_free(b);
	memset(b, 0, sizeof *b);
	return false;
}

/* outcome_json's object, written directly. */
static void outcome_write(struct buf *out, enum outcome o, const struct usage_record *r,
			  const struct ledger_row *row, const char *reason)
{
	buf_puts(out, "{\"record_id\":");
	json_write_str(out, r->record_id, strlen(r->record_id));
	buf_puts(out, ",\"status\":\"");
	buf_puts(out, ledger_outcome_name(o));
	if (o == OUT_ACCEPTED || o == OUT_DUPLICATE) {
		char m[MONEY_FMT_MAX];
		buf_puts(out, "\",\"charge\":\"");
		buf_puts(out, money_format(row->charge_micro, m));
		buf_puts(out, "\",\"charter_version\":");
		buf_put_int(out, row->charter_version);
		buf_puts(out, row->overage ? ",\"overage\":true" : ",\"overage\":false");
		buf_puts(out, row->late ? ",\"late\":true}" : ",\"late\":false}");
		return;
	}
	buf_putc(out, '"');
	size_t n = strlen(reason);
	if (json_utf8_ok(reason, n)) { /* else json_string() fails: no "reason" */
		buf_puts(out, ",\"reason\":");
		json_write_str(out, reason, n);
	}
	buf_putc(out, '}');
}

/* The answer as api_usage_submit sends it, from the jansson path. */
static allot_err answer_json(struct buf *out, const struct ledger_counts *n, json_t *outcomes,
			     char *msg, size_t msgsz)
{
	json_t *j = json_pack("{s:{s:I,s:I,s:I,s:I},s:o}", "summary", "accepted",
			      (json_int_t)n->accepted, "duplicate", (json_int_t)n->duplicate,
			      "conflict", (json_int_t)n->conflict, "rejected",
			      (json_int_t)n->rejected, "results", outcomes);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(j);
	if (!s) {
		snprintf(msg, msgsz, "out of memory");
		return ALLOT_E_NOMEM;
	}
	buf_puts(out, s);
	buf_putc(out, '\n');
	free(s);
	return ALLOT_OK;
}

static allot_err ingest_body_json(struct ledger *led, const char *provider, const char *body,
				  size_t len, struct buf *out, char *msg, size_t msgsz)
{
	static const char *const fields[] = {"records", NULL};
	json_t *j = NULL, *outcomes = NULL;
	struct ledger_counts n;
	allot_err e = json_parse(body, len, false, &j, msg, msgsz);
	if (e)
		return e;
	if (!(e = json_only_fields(j, fields, msg, msgsz)))
		e = ledger_ingest(led, provider, json_object_get(j, "records"), &outcomes, &n, msg,
				  msgsz);
	json_decref(j);
	return e ? e : answer_json(out, &n, outcomes, msg, msgsz);
}

allot_err ledger_ingest_body(struct ledger *led, const char *provider, const char *body,
			     size_t len, bool text, struct buf *out, char *msg, size_t msgsz)
{
	struct ingest_batch b;
	buf_reset(out);
	if (!body)
		body = "";
	if (!text || !ingest_parse_text(body, len, &b))
		return ingest_body_json(led, provider, body, len, out, msg, msgsz);
	struct active_charter *cur = chist_get(led->charters);
	if (!cur) {
		ingest_free(&b);
		snprintf(msg, msgsz, "no charter has been applied");
		return ALLOT_E_UNAVAILABLE;
	}
	allot_err e = ingest_run(led, cur, provider, &b, msg, msgsz);
	if (!e) {
		struct ledger_counts n;
		ingest_count(&b, &n);
		buf_printf(out, "{\"summary\":{\"accepted\":%zu,\"duplicate\":%zu,\"conflict\":%zu,"
				"\"rejected\":%zu},\"results\":[", n.accepted, n.duplicate, n.conflict,
			   n.rejected);
		for (size_t i = 0; i < b.n; i++) {
			struct ingest_item *it = &b.items[i];
			if (i)
				buf_putc(out, ',');
			outcome_write(out, it->o, &it->r, &it->row, it->reason);
		}
		buf_puts(out, "]}\n");
		if (out->oom) {
			snprintf(msg, msgsz, "out of memory");
			e = ALLOT_E_NOMEM;
		}
	}
	ingest_free(&b);
	return e;
}

struct settle_batch {
	const struct ledger_settle_opts *opts;
	struct usage_record *recs;
	size_t n;
	int64_t total;
	char *reason;
	size_t reasonsz;
	bool refused;
};

static allot_err settle_work(void *owner, void *arg, int64_t now)
{
	struct ledger *led = owner;
	struct settle_batch *b = arg;
	allot_err e = ALLOT_OK;
	b->total = 0;
	store_ledger_hold(led->store, b->opts->hold);
	for (size_t i = 0; i < b->n && !e; i++) {
		struct ledger_row row;
		enum outcome o = ledger_book_one(led, &b->recs[i], b->opts, now, &row, b->reason,
					  b->reasonsz);
		if (o != OUT_ACCEPTED && o != OUT_DUPLICATE) {
			b->refused = o != OUT_ERROR;
			e = o == OUT_ERROR ? ALLOT_E_STORE : ALLOT_E_INVALID;
		} else if (money_add(b->total, row.charge_micro, &b->total)) {
			snprintf(b->reason, b->reasonsz, "the settlement's charge is out of range");
			b->refused = true;
			e = ALLOT_E_INVALID;
		}
	}
	if (!e && b->opts->queue_id && store_settleq_delete(led->store, b->opts->queue_id)) {
		snprintf(b->reason, b->reasonsz, "the retry queue could not be written");
		e = ALLOT_E_STORE;
	}
	if (!e && b->opts->budget_id && store_has_budgets(led->store) &&
	    store_budget_settle(led->store, b->opts->budget_id, b->total)) {
		snprintf(b->reason, b->reasonsz, "the budgets could not be written");
		e = ALLOT_E_STORE;
	}
	store_ledger_hold(led->store, 0);
	return e;
}

allot_err ledger_settle_many(struct ledger *led, struct usage_record *recs, size_t n,
			     int64_t *charge, char *reason, size_t reasonsz)
{
	const struct ledger_settle_opts o = {0};
	return ledger_settle(led, &o, recs, n, charge, reason, reasonsz);
}

allot_err ledger_settle(struct ledger *led, const struct ledger_settle_opts *o,
			struct usage_record *recs, size_t n, int64_t *charge, char *reason,
			size_t reasonsz)
{
	for (size_t i = 0; i < n; i++)
		if (record_seal(&recs[i])) {
			snprintf(reason, reasonsz, "out of memory");
			return ALLOT_E_NOMEM;
		}
	struct settle_batch b = {.opts = o, .recs = recs, .n = n, .reason = reason,
				 .reasonsz = reasonsz};
	allot_err e = lgroup_run(led->group, settle_work, &b, false);
	if (e) {
		if (!b.refused && !reason[0])
			snprintf(reason, reasonsz, "the ledger could not be written");
		return e;
	}
	*charge = b.total;
	return ALLOT_OK;
}
