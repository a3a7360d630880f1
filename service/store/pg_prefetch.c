/* pg_prefetch.c — a provider batch's look-ups in two statements
 * (store_ops.ledger_prefetch on PostgreSQL; docs/POSTGRES.md, "Ingestion in
 * few round trips").
 *
 * Booking a provider record asks the store twice whether its id is known
 * (reject_find, then ledger_find): two round trips per record.  Before the
 * batch is booked, the ledger hands its ids over; this file takes the
 * bounds row (FOR UPDATE: every booking transaction takes it before its
 * first record, and every provider batch here, so no other transaction can
 * add a record or a rejection of these ids until this one ends), reads the
 * records and rejections of those ids in one statement each, and answers
 * the finds from that until the transaction's next savepoint operation or
 * its end (pgp_clear).  An id this transaction writes afterwards (a
 * record, a rejection: pgp_forget) is asked of the database again, which
 * sees the transaction's own rows; so is an id the batch did not name.
 *
 * The cache is the calling thread's, as the ledger transaction is. */
#include "store/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PS(st_) ((struct pg_store *)(st_))

struct pgp_entry {
	const char *id;                /* into ids of the cache (sorted by it) */
	struct ledger_row *row;        /* the record, NULL if none (from malloc) */
	struct ledger_rejection *rej;  /* the rejection, NULL if none (from malloc) */
	bool stale;                    /* written since: ask the database */
};

struct pgp_cache {
	const struct pg_store *ps;
	char provider[STORE_ID_MAX];
	struct pgp_entry *e;
	size_t n;
	char *ids;                     /* the ids, NUL-separated */
};
static _Thread_local struct pgp_cache *pc;

void pgp_clear(const struct pg_store *ps)
{
	if (!pc || (ps && pc->ps != ps))
		return;
	for (size_t i = 0; i < pc->n; i++) {
		if (pc->e[i].row) {
			free(pc->e[i].row->rec.canonical);
			free(pc->e[i].row);
		}
		free(pc->e[i].rej);
	}
	free(pc->e);
	free(pc->ids);
	free(pc);
	pc = NULL;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pgp_entry *)a)->id, ((const struct pgp_entry *)b)->id);
}

static struct pgp_entry *entry_of(const struct pg_store *ps, const char *provider,
				  const char *id)
{
	if (!pc || pc->ps != ps || strcmp(pc->provider, provider) != 0)
		return NULL;
	struct pgp_entry key = {.id = id};
	return bsearch(&key, pc->e, pc->n, sizeof *pc->e, entry_cmp);
}

/* ---- text[] parameters ------------------------------------------------------------ */

char *pgs_text_array(const char *const *v, size_t n)
{
	size_t len = 3;
	for (size_t i = 0; i < n; i++) {
		len += 5; /* quotes and comma, or NULL and comma */
		for (const char *p = v[i]; p && *p; p++)
			len += (*p == '"' || *p == '\\') ? 2 : 1;
	}
	char *out = malloc(len), *o = out;
	if (!out)
		return NULL;
	*o++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*o++ = ',';
		if (!v[i]) {
			memcpy(o, "NULL", 4);
			o += 4;
			continue;
		}
		*o++ = '"';
		for (const char *p = v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

/* ---- filling ------------------------------------------------------------------------ */

/* fetch's context for each row: the store (its errmsg) and the error */
struct fill {
	struct pg_store *ps;
	allot_err e;
};

static void put_row(const PGresult *r, int i, struct fill *f)
{
	allot_err *e = &f->e;
	struct ledger_row *row = malloc(sizeof *row);
	if (!row) {
		*e = ALLOT_E_NOMEM;
		return;
	}
	if ((*e = pg_usage_row(f->ps, r, i, row))) { /* its message set */
		free(row);
		return;
	}
	struct pgp_entry *en = entry_of(pc->ps, row->rec.provider, row->rec.record_id);
	if (!en || en->row) { /* cannot happen: the ids asked for, unique */
		free(row->rec.canonical);
		free(row);
		pgs_fail(f->ps, ALLOT_E_STORE, "reading a batch's records: an unexpected row");
		*e = ALLOT_E_STORE;
		return;
	}
	en->row = row;
}

static void put_rej(const PGresult *r, int i, struct fill *f)
{
	allot_err *e = &f->e;
	struct ledger_rejection *rj = malloc(sizeof *rj);
	if (!rj) {
		*e = ALLOT_E_NOMEM;
		return;
	}
	pgq_reject_row(r, i, rj);
	struct pgp_entry *en = entry_of(pc->ps, rj->provider, rj->record_id);
	if (!en || en->rej) {
		free(rj);
		pgs_fail(f->ps, ALLOT_E_STORE, "reading a batch's records: an unexpected row");
		*e = ALLOT_E_STORE;
		return;
	}
	en->rej = rj;
}

/* Runs sql ($1 provider, $2 the ids) and calls fn for each row. */
static allot_err fetch(struct pg_store *ps, PGconn *c, const char *sql, const char *provider,
		       const char *arr, void (*fn)(const PGresult *r, int i, struct fill *f))
{
	const char *v[] = {provider, arr};
	struct fill f = {.ps = ps, .e = ALLOT_OK};
	PGresult *r = pg_run_custom(ps, c, sql, 2, v, &f.e); /* planned for the ids */
	if (!r)
		return f.e;
	for (int i = 0; i < PQntuples(r) && !f.e; i++)
		fn(r, i, &f);
	PQclear(r);
	allot_err e = f.e;
	if (e == ALLOT_E_NOMEM) /* the others said what */
		pgs_fail(ps, e, "reading a batch's records: out of memory");
	return e;
}

/* The entries, sorted, with their ids copied; duplicates in ids are kept
 * once. */
static allot_err cache_new(const struct pg_store *ps, const char *provider,
			   const char *const *ids, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(ids[i]) + 1;
	struct pgp_cache *c = calloc(1, sizeof *c);
	if (!c || !(c->e = calloc(n, sizeof *c->e)) || !(c->ids = malloc(len ? len : 1))) {
		if (c)
			free(c->e);
		free(c);
		return ALLOT_E_NOMEM;
	}
	c->ps = ps;
	snprintf(c->provider, sizeof c->provider, "%s", provider);
	char *p = c->ids;
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(ids[i]) + 1;
		memcpy(p, ids[i], k);
		c->e[i].id = p;
		p += k;
	}
	qsort(c->e, n, sizeof *c->e, entry_cmp);
	for (size_t i = 0; i < n; i++)
		if (!c->n || strcmp(c->e[c->n - 1].id, c->e[i].id) != 0)
			c->e[c->n++] = c->e[i];
	pc = c;
	return ALLOT_OK;
}

allot_err pg_ledger_prefetch(struct store *st, const char *provider, const char *const *ids,
			     size_t n)
{
	static const char q_rows[] = "SELECT " PG_USAGE_COLS " FROM usage_records "
				     "WHERE provider = $1 AND record_id = ANY($2::text[])";
	static const char q_rej[] = "SELECT " PGQ_REJECT_COLUMNS " FROM usage_rejections "
				    "WHERE provider = $1 AND record_id = ANY($2::text[])";
	struct pg_store *ps = PS(st);
	PGconn *c = pg_txn(ps);
	if (!c) {
		pgs_fail(ps, ALLOT_E_STORE, "a batch's look-up outside a ledger transaction");
		return ALLOT_E_INTERNAL;
	}
	pgp_clear(NULL);
	if (strlen(provider) >= STORE_ID_MAX)
		return ALLOT_OK; /* no cache: every find asks the database */
	/* The bounds row first: from here to the end of the transaction no
	 * other one books a record or (being a provider batch, which takes it
	 * here too) refuses one, so what is read below stays the truth. */
	allot_err e = pg_ledger_lock_bounds(ps);
	char *arr = e ? NULL : pgs_text_array(ids, n);
	if (!e && !arr)
		e = ALLOT_E_NOMEM;
	if (!e)
		e = cache_new(ps, provider, ids, n);
	if (!e)
		e = fetch(ps, c, q_rows, provider, arr, put_row);
	if (!e)
		e = fetch(ps, c, q_rej, provider, arr, put_rej);
	free(arr);
	if (e)
		pgp_clear(NULL);
	return e;
}

/* ---- answering ---------------------------------------------------------------------- */

int pgp_find_row(const struct pg_store *ps, const char *provider, const char *id,
		 struct ledger_row *out)
{
	const struct pgp_entry *en = entry_of(ps, provider, id);
	if (!en || en->stale)
		return PGP_ASK;
	if (!en->row)
		return PGP_ABSENT;
	*out = *en->row;
	char *canon = malloc(en->row->rec.canonical_len + 1);
	if (!canon)
		return PGP_ASK; /* the database's answer, or its own error */
	memcpy(canon, en->row->rec.canonical, en->row->rec.canonical_len + 1);
	out->rec.canonical = canon;
	return PGP_FOUND;
}

int pgp_find_rejection(const struct pg_store *ps, const char *provider, const char *id,
		       struct ledger_rejection *out)
{
	const struct pgp_entry *en = entry_of(ps, provider, id);
	if (!en || en->stale)
		return PGP_ASK;
	if (!en->rej)
		return PGP_ABSENT;
	*out = *en->rej;
	return PGP_FOUND;
}

bool pgp_absent(const struct pg_store *ps, const char *provider, const char *id)
{
	const struct pgp_entry *en = entry_of(ps, provider, id);
	return en && !en->stale && !en->row;
}

void pgp_forget(const struct pg_store *ps, const char *provider, const char *id)
{
	struct pgp_entry *en = entry_of(ps, provider, id);
	if (en)
		en->stale = true;
}
