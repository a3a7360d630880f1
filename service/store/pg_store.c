/* pg_store.c — the PostgreSQL store object (SPEC section 9,
 * docs/POSTGRES.md): open and close, a pool of connections, the calling
 * thread's transaction, statements prepared once per connection, the
 * SQLSTATE mapping, and the ops table.  The operations live in
 * store/pg_admin.c (keys, charters, audit, tokens), store/pg_queue.c
 * (rejections, retry queue, outbox), store/pg_ledger*.c (the ledger,
 * durability) and store/pg_tlog.c (the transparency log).
 *
 * Every value travels as a text parameter of a prepared statement; no SQL
 * is ever built from a value.  A connection found broken (the server
 * restarted, the backend was terminated) is closed when it comes back to
 * the pool, and with it the idle ones, which are most likely stale too:
 * the next pg_get connects afresh.
 */
#include "store/pg_int.h"

#include <libpq-events.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/log.h"
#include "common/metrics.h"
#include "store/migrate.h"

/* Statements kept prepared per connection: more than the backend's files
 * use (about 60), so each is parsed once per connection.  Past it, a
 * statement runs unprepared (still with parameters). */
#define PG_STMT_MAX 160
/* Statements in one pipeline at most (a commit's writes). */
#define PG_PIPE_MAX 16

/* Stores with a transaction open in one thread at a time (a copy between
 * two PostgreSQL databases needs two). */
#define PG_TXN_SLOTS 4

/* A connection's prepared statements, kept as libpq instance data of the
 * connection (freed with it): statement "allot_<i>" is sql[i]. */
struct pg_stmts {
	int n;
	const char *sql[PG_STMT_MAX];
	/* Statements sent in pipeline mode, not yet answered (pg_pipe_*). */
	int npipe;
	struct pg_pipe_item {
		const char *sql;
		const char *tuples, *status, *why; /* expected (NULL: any) */
		char value[24];                    /* expected first cell ("": any) */
		int prep; /* a PQsendPrepare of statement prep - 1 (0: a statement) */
	} pipe[PG_PIPE_MAX];
};

/* Guards every store's errmsg (written by any thread on an error). */
static pthread_mutex_t pg_err_mu = PTHREAD_MUTEX_INITIALIZER;

static int pg_events(PGEventId id, void *info, void *pass)
{
	(void)pass;
	if (id == PGEVT_CONNDESTROY) {
		PGEventConnDestroy *d = info;
		free(PQinstanceData(d->conn, pg_events));
	} else if (id == PGEVT_CONNRESET) {
		/* a reset connection is a new session: nothing is prepared */
		PGEventConnReset *d = info;
		struct pg_stmts *s = PQinstanceData(d->conn, pg_events);
		if (s)
			s->n = 0;
	}
	return 1;
}

void pgs_fail(struct pg_store *ps, allot_err e, const char *fmt, ...)
{
	char buf[sizeof ps->base.errmsg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	pg_fold(buf);
	pthread_mutex_lock(&pg_err_mu);
	memcpy(ps->base.errmsg, buf, sizeof buf);
	pthread_mutex_unlock(&pg_err_mu);
	/* A constraint refused (a duplicate, a revoked key) is an answer, not
	 * a fault of the store. */
	if (e != ALLOT_E_CONFLICT && e != ALLOT_E_NOT_FOUND)
		log_warnx("store: %s", buf);
}

/* Connects, registers the statement cache, and makes a read-only store's
 * sessions read-only on the server too. */
static allot_err pg_open_conn(struct pg_store *ps, PGconn **out, char *msg, size_t msgsz)
{
	PGconn *c = NULL;
	allot_err e = pg_connect(ps->uri, &c, msg, msgsz);
	if (e)
		return e;
	struct pg_stmts *s = calloc(1, sizeof *s);
	if (!s || !PQregisterEventProc(c, pg_events, "allot statements", NULL) ||
	    !PQsetInstanceData(c, pg_events, s)) {
		free(s);
		PQfinish(c);
		snprintf(msg, msgsz, "PostgreSQL: out of memory");
		return ALLOT_E_NOMEM;
	}
	if (ps->readonly) {
		PGresult *r = PQexec(c, "SET default_transaction_read_only = on");
		bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok) {
			snprintf(msg, msgsz, "PostgreSQL session setup: %s", PQresultErrorMessage(r));
			pg_fold(msg);
		}
		PQclear(r);
		if (!ok) {
			PQfinish(c);
			return ALLOT_E_STORE;
		}
	}
	*out = c;
	return ALLOT_OK;
}

/* ---- the calling thread's transaction ---------------------------------------- */

static __thread struct {
	const struct pg_store *ps;
	PGconn *c;
} pg_tx[PG_TXN_SLOTS];

PGconn *pg_txn(const struct pg_store *ps)
{
	for (int i = 0; i < PG_TXN_SLOTS; i++)
		if (pg_tx[i].ps == ps)
			return pg_tx[i].c;
	return NULL;
}

void pg_txn_set(struct pg_store *ps, PGconn *c)
{
	int free_slot = -1;
	for (int i = 0; i < PG_TXN_SLOTS; i++) {
		if (pg_tx[i].ps == ps) {
			pg_tx[i].c = c;
			if (!c)
				pg_tx[i].ps = NULL;
			return;
		}
		if (!pg_tx[i].ps && free_slot < 0)
			free_slot = i;
	}
	if (!c)
		return;
	if (free_slot < 0) {
		/* A bug: the operations would run outside the transaction. */
		log_warnx("store: more than %d PostgreSQL transactions open in one thread",
			  PG_TXN_SLOTS);
		abort();
	}
	pg_tx[free_slot].ps = ps;
	pg_tx[free_slot].c = c;
}

/* ---- the pool ------------------------------------------------------------------ */

allot_err pg_get(struct pg_store *ps, PGconn **c, bool *own)
{
	*c = pg_txn(ps);
	*own = *c == NULL;
	if (*c) /* what the transaction kept goes first (pg_ledger.c) */
		return pg_ledger_flush_rows(ps);
	pthread_mutex_lock(&ps->pool_mu);
	while (ps->nidle == 0 && ps->nopen >= PG_POOL_MAX)
		pthread_cond_wait(&ps->pool_cv, &ps->pool_mu);
	if (ps->nidle > 0) {
		*c = ps->idle[--ps->nidle];
		pthread_mutex_unlock(&ps->pool_mu);
		return ALLOT_OK;
	}
	ps->nopen++; /* taken now, connected outside the lock */
	pthread_mutex_unlock(&ps->pool_mu);
	char msg[sizeof ps->base.errmsg];
	allot_err e = pg_open_conn(ps, c, msg, sizeof msg);
	if (e) {
		pthread_mutex_lock(&ps->pool_mu);
		ps->nopen--;
		pthread_cond_signal(&ps->pool_cv);
		pthread_mutex_unlock(&ps->pool_mu);
		pgs_fail(ps, e, "%s", msg);
		*c = NULL;
	}
	return e;
}

void pg_put(struct pg_store *ps, PGconn *c, bool broken)
{
	if (!c)
		return;
	bool dead = broken || PQstatus(c) != CONNECTION_OK;
	bool bad = dead || PQtransactionStatus(c) != PQTRANS_IDLE;
	PGconn *drop[PG_POOL_MAX + 1];
	int ndrop = 0;
	pthread_mutex_lock(&ps->pool_mu);
	if (!bad) {
		ps->idle[ps->nidle++] = c;
	} else {
		drop[ndrop++] = c;
		ps->nopen--;
		/* The server went away (restarted, or the node lost it): the idle
		 * connections are most likely stale too, and each would fail one
		 * operation before being replaced. */
		while (dead && ps->nidle > 0) {
			drop[ndrop++] = ps->idle[--ps->nidle];
			ps->nopen--;
		}
	}
	pthread_cond_broadcast(&ps->pool_cv);
	pthread_mutex_unlock(&ps->pool_mu);
	for (int i = 0; i < ndrop; i++)
		PQfinish(drop[i]);
}

/* ---- statements ------------------------------------------------------------------ */

/* The error of a failed statement on c with SQLSTATE state (may be NULL).
 * No SQLSTATE: the server gave no answer, libpq made the error (the
 * connection lost; "server closed the connection unexpectedly" can come
 * while PQstatus still says CONNECTION_OK, seen when a primary is killed
 * under a reservation): unavailable, and the connection is dropped. */
static allot_err pg_state_err(PGconn *c, const char *state)
{
	if (PQstatus(c) != CONNECTION_OK || !state)
		return ALLOT_E_UNAVAILABLE;
	if (strncmp(state, "23", 2) == 0) /* integrity constraint violation */
		return ALLOT_E_CONFLICT;
	/* connection exception; the server shutting down or starting */
	if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	    strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
		return ALLOT_E_UNAVAILABLE;
	return ALLOT_E_STORE;
}

allot_err pg_result_err(PGconn *c, const PGresult *r)
{
	if (r && PQresultStatus(r) != PGRES_FATAL_ERROR) /* answered, but not as asked */
		return ALLOT_E_STORE;
	return pg_state_err(c, r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
}

/* Consumes r (may be NULL): sets errmsg and *e from it. */
static PGresult *pg_run_fail(struct pg_store *ps, PGconn *c, PGresult *r, const char *sql,
			     allot_err *e)
{
	allot_err x = pg_result_err(c, r);
	/* The primary message only: its DETAIL may quote values (a key's
	 * hash in a duplicate), which do not belong in logs. */
	const char *why = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!why || !*why)
		why = PQerrorMessage(c);
	/* the statement's first words say which one failed */
	pgs_fail(ps, x, "PostgreSQL: %s (in: %.40s)", why && *why ? why : "no result", sql);
	PQclear(r);
	if (e)
		*e = x;
	return NULL;
}

static bool pg_res_ok(const PGresult *r)
{
	ExecStatusType t = PQresultStatus(r);
	return t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;
}

/* ---- pipelines: statements sent together, answered at pg_pipe_end ---- */

static bool piped(const PGconn *c)
{
	return PQpipelineStatus(c) != PQ_PIPELINE_OFF;
}

/* pg_run in pipeline mode: sends the statement (prepared: first, if it
 * is not on this connection yet and there is room, its PQsendPrepare in
 * the same pipeline, so that it is parsed and planned once per connection,
 * not in every pipeline) and answers an empty result; its own is read by
 * pg_pipe_end. */
static PGresult *pipe_send(struct pg_store *ps, PGconn *c, struct pg_stmts *s, int idx,
			   const char *sql, int n, const char *const *vals, allot_err *e)
{
	if (!s || s->npipe == PG_PIPE_MAX) {
		pgs_fail(ps, ALLOT_E_INTERNAL, "PostgreSQL: too many statements in a pipeline");
		if (e)
			*e = ALLOT_E_INTERNAL;
		return NULL;
	}
	char name[24];
	if (idx < 0 && s->n < PG_STMT_MAX && s->npipe + 2 <= PG_PIPE_MAX) {
		snprintf(name, sizeof name, "allot_%d", s->n);
		if (!PQsendPrepare(c, name, sql, n, NULL))
			return pg_run_fail(ps, c, NULL, sql, e);
		idx = s->n;
		s->sql[s->n++] = sql; /* forgotten again at pg_pipe_end unless it answers OK */
		s->pipe[s->npipe++] = (struct pg_pipe_item){.sql = sql, .prep = idx + 1};
	}
	snprintf(name, sizeof name, "allot_%d", idx);
	int sent = idx >= 0 ? PQsendQueryPrepared(c, name, n, vals, NULL, NULL, 0)
			    : PQsendQueryParams(c, sql, n, NULL, vals, NULL, NULL, 0);
	if (!sent)
		return pg_run_fail(ps, c, NULL, sql, e);
	s->pipe[s->npipe++] = (struct pg_pipe_item){.sql = sql};
	PGresult *r = PQmakeEmptyPGresult(c, PGRES_COMMAND_OK);
	if (!r && e)
		*e = ALLOT_E_NOMEM;
	else if (e)
		*e = ALLOT_OK;
	return r;
}

bool pg_pipelined(const PGconn *c)
{
	return piped(c);
}

allot_err pg_pipe_begin(struct pg_store *ps, PGconn *c)
{
	struct pg_stmts *s = PQinstanceData(c, pg_events);
	if (!s || !PQenterPipelineMode(c)) {
		pgs_fail(ps, ALLOT_E_STORE, "PostgreSQL: cannot enter pipeline mode");
		return ALLOT_E_STORE;
	}
	s->npipe = 0;
	return ALLOT_OK;
}

void pg_pipe_expect(PGconn *c, const char *tuples, const char *status, const char *value,
		    const char *why)
{
	struct pg_stmts *s = PQinstanceData(c, pg_events);
	if (!s || !s->npipe)
		return;
	struct pg_pipe_item *it = &s->pipe[s->npipe - 1];
	it->tuples = tuples;
	it->status = status;
	it->why = why;
	snprintf(it->value, sizeof it->value, "%s", value ? value : "");
}

/* One statement's answer r (consumed) against its expectations. */
static allot_err pipe_check(struct pg_store *ps, PGconn *c, const struct pg_pipe_item *it,
			    PGresult *r)
{
	allot_err e = ALLOT_OK;
	if (!r || !pg_res_ok(r)) {
		pg_run_fail(ps, c, r, it->sql, &e);
		return e;
	}
	bool ok = (!it->tuples || strcmp(PQcmdTuples(r), it->tuples) == 0) &&
		  (!it->status || strcmp(PQcmdStatus(r), it->status) == 0) &&
		  (!it->value[0] || (PQntuples(r) == 1 && PQnfields(r) >= 1 &&
				     strcmp(PQgetvalue(r, 0, 0), it->value) == 0));
	PQclear(r);
	if (!ok) {
		/* A statement before the COMMIT answered otherwise than its caller
		 * knew it must (the server did not fail it): the COMMIT after it
		 * may have gone through, so the outcome is not known. */
		allot_err x = it->status && strcmp(it->status, "COMMIT") == 0 ? ALLOT_E_STORE
									   : ALLOT_E_UNAVAILABLE;
		pgs_fail(ps, x, "%s", it->why ? it->why : "PostgreSQL: unexpected answer");
		return x;
	}
	return ALLOT_OK;
}

allot_err pg_pipe_end(struct pg_store *ps, PGconn *c)
{
	struct pg_stmts *s = PQinstanceData(c, pg_events);
	allot_err e = ALLOT_OK;
	metrics_add(MC_STORE_ROUNDTRIPS, 1);
	if (!PQpipelineSync(c))
		pg_run_fail(ps, c, NULL, "(pipeline sync)", &e);
	/* Each statement's answer, then the NULL after it; the first failure
	 * is the pipeline's (the statements after it answer "aborted"). */
	for (int i = 0; s && i < s->npipe; i++) {
		PGresult *r = PQgetResult(c);
		if (!r && !e) /* the connection broke */
			pg_run_fail(ps, c, NULL, s->pipe[i].sql, &e);
		if (!r) {
			for (int j = i; j < s->npipe; j++) /* not prepared: never named again */
				if (s->pipe[j].prep)
					s->sql[s->pipe[j].prep - 1] = NULL;
			break;
		}
		if (s->pipe[i].prep && PQresultStatus(r) != PGRES_COMMAND_OK)
			s->sql[s->pipe[i].prep - 1] = NULL; /* failed or skipped (aborted) */
		allot_err x = e ? (PQclear(r), ALLOT_OK) : pipe_check(ps, c, &s->pipe[i], r);
		if (x)
			e = x;
		for (PGresult *more; (more = PQgetResult(c));)
			PQclear(more);
	}
	if (s)
		s->npipe = 0;
	/* The sync's answer; then the connection leaves pipeline mode (it is
	 * dropped by the pool if it cannot: not idle). */
	for (int i = 0; i < 4 && piped(c); i++) {
		PGresult *r = PQgetResult(c);
		bool sync = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
		PQclear(r);
		if ((sync || !r) && PQexitPipelineMode(c))
			break;
	}
	if (piped(c) && !e) {
		pgs_fail(ps, ALLOT_E_UNAVAILABLE, "PostgreSQL: a pipeline did not end");
		e = ALLOT_E_UNAVAILABLE;
	}
	return e;
}

static PGresult *run(struct pg_store *ps, PGconn *c, const char *sql, int n,
		     const char *const *vals, allot_err *e, bool prepare)
{
	struct pg_stmts *s = prepare ? PQinstanceData(c, pg_events) : NULL;
	char name[24];
	int idx = -1;
	for (int i = 0; s && i < s->n; i++)
		if (s->sql[i] == sql) {
			idx = i;
			break;
		}
	if (piped(c))
		return pipe_send(ps, c, PQinstanceData(c, pg_events), idx, sql, n, vals, e);
	if (idx < 0 && s && s->n < PG_STMT_MAX) {
		snprintf(name, sizeof name, "allot_%d", s->n);
		PGresult *p = PQprepare(c, name, sql, n, NULL);
		if (PQresultStatus(p) != PGRES_COMMAND_OK)
			return pg_run_fail(ps, c, p, sql, e);
		PQclear(p);
		idx = s->n;
		s->sql[s->n++] = sql;
	}
	PGresult *r;
	metrics_add(MC_STORE_ROUNDTRIPS, 1);
	if (idx >= 0) {
		snprintf(name, sizeof name, "allot_%d", idx);
		r = PQexecPrepared(c, name, n, vals, NULL, NULL, 0);
	} else {
		r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
	}
	if (!pg_res_ok(r))
		return pg_run_fail(ps, c, r, sql, e);
	if (e)
		*e = ALLOT_OK;
	return r;
}

PGresult *pg_run(struct pg_store *ps, PGconn *c, const char *sql, int n,
		 const char *const *vals, allot_err *e)
{
	return run(ps, c, sql, n, vals, e, true);
}

PGresult *pg_run_custom(struct pg_store *ps, PGconn *c, const char *sql, int n,
			const char *const *vals, allot_err *e)
{
	return run(ps, c, sql, n, vals, e, false);
}

bool pg_stmt_name(PGconn *c, const char *sql, char name[24])
{
	struct pg_stmts *s = PQinstanceData(c, pg_events);
	for (int i = 0; s && i < s->n; i++)
		if (s->sql[i] == sql) {
			snprintf(name, 24, "allot_%d", i);
			return true;
		}
	return false;
}

/* One statement whose result is not needed. */
static allot_err pg_run0(struct pg_store *ps, PGconn *c, const char *sql)
{
	allot_err e;
	PQclear(pg_run(ps, c, sql, 0, NULL, &e));
	return e;
}

allot_err pg_multi_send(struct pg_store *ps, PGconn *c, const char *sql)
{
	metrics_add(MC_STORE_ROUNDTRIPS, 1);
	allot_err e = ALLOT_OK;
	if (!PQsendQuery(c, sql))
		pg_run_fail(ps, c, NULL, sql, &e);
	return e;
}

allot_err pg_run_multi(struct pg_store *ps, PGconn *c, const char *sql, PGresult **out,
		       int nout)
{
	allot_err e = pg_multi_send(ps, c, sql);
	if (!e)
		return pg_multi_read(ps, c, sql, out, nout); /* sets out[] */
	for (int i = 0; i < nout; i++)
		out[i] = NULL;
	return e;
}

allot_err pg_multi_read(struct pg_store *ps, PGconn *c, const char *sql, PGresult **out,
			int nout)
{
	for (int i = 0; i < nout; i++)
		out[i] = NULL;
	allot_err e = ALLOT_OK;
	/* Every result is read (the connection is ready again only then);
	 * the statements after a failed one are not run. */
	int k = 0;
	for (PGresult *r; (r = PQgetResult(c));) {
		if (e || !pg_res_ok(r)) {
			if (!e)
				pg_run_fail(ps, c, r, sql, &e);
			else
				PQclear(r);
			continue;
		}
		if (k < nout)
			out[k++] = r;
		else
			PQclear(r);
	}
	if (!e && k != nout) {
		pgs_fail(ps, ALLOT_E_STORE, "PostgreSQL: %d results for %d statements (in: %.40s)",
			 k, nout, sql);
		e = ALLOT_E_STORE;
	}
	if (e)
		for (int i = 0; i < nout; i++) {
			PQclear(out[i]);
			out[i] = NULL;
		}
	return e;
}

allot_err pg_begin(struct pg_store *ps, PGconn *c)
{
	static const char sql[] = "BEGIN";
	return pg_run0(ps, c, sql);
}

allot_err pg_commit(struct pg_store *ps, PGconn *c)
{
	static const char sql[] = "COMMIT";
	allot_err e;
	PGresult *r = pg_run(ps, c, sql, 0, NULL, &e);
	if (!r)
		return e;
	/* COMMIT of a transaction in which a statement failed succeeds as a
	 * ROLLBACK: nothing was committed. */
	if (piped(c)) {
		PQclear(r);
		pg_pipe_expect(c, NULL, "COMMIT", NULL, "PostgreSQL: the transaction was rolled "
			       "back (a statement in it had failed)");
		return ALLOT_OK;
	}
	bool committed = strcmp(PQcmdStatus(r), "COMMIT") == 0;
	PQclear(r);
	if (!committed) {
		pgs_fail(ps, ALLOT_E_STORE, "PostgreSQL: the transaction was rolled back "
					    "(a statement in it had failed)");
		return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

void pg_rollback(struct pg_store *ps, PGconn *c)
{
	static const char sql[] = "ROLLBACK";
	PGTransactionStatusType t = PQtransactionStatus(c);
	if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR)
		pg_run0(ps, c, sql);
}

const char *pg_i64(char *buf, int64_t v)
{
	snprintf(buf, 24, "%lld", (long long)v);
	return buf;
}

int64_t pg_col_i64(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* ---- helpers of the store's own files ---------------------------------------------- */

char *pgs_bytea(const void *p, size_t n)
{
	char *s = malloc(2 * n + 3);
	if (!s)
		return NULL;
	s[0] = '\\';
	s[1] = 'x';
	hex_encode(p, n, s + 2);
	return s;
}

uint8_t *pgs_col_blob(const PGresult *r, int row, int col, size_t *len)
{
	*len = 0;
	size_t n = 0;
	unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
	if (!raw)
		return NULL;
	uint8_t *out = malloc(n + 1);
	if (out) {
		memcpy(out, raw, n);
		out[n] = '\0';
		*len = n;
	}
	PQfreemem(raw);
	return out;
}

bool pgs_col_bytes(const PGresult *r, int row, int col, uint8_t *out, size_t n)
{
	size_t len;
	uint8_t *b = pgs_col_blob(r, row, col, &len);
	bool ok = b && len == n;
	if (ok)
		memcpy(out, b, n);
	free(b);
	return ok;
}

void pgs_col_text(const PGresult *r, int row, int col, char *dst, size_t dstsz)
{
	snprintf(dst, dstsz, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

const char *pgs_col_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

allot_err pgs_readonly(struct pg_store *ps)
{
	pgs_fail(ps, ALLOT_E_STORE, "the store is open read-only");
	return ALLOT_E_STORE;
}

allot_err pgs_end(struct pg_store *ps, PGconn *c, bool own, allot_err e)
{
	if (own) {
		if (!e)
			e = pg_commit(ps, c);
		if (e)
			pg_rollback(ps, c);
	}
	/* Not own: the caller's transaction goes on (or fails at its commit). */
	if (own)
		pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	return e;
}

allot_err pgs_query(struct pg_store *ps, const char *sql, int n, const char *const *vals,
		    void (*row)(const PGresult *r, int i, void *ctx), void *ctx, int *nrows)
{
	PGconn *c;
	bool own;
	allot_err e = pg_get(ps, &c, &own);
	if (e)
		return e;
	PGresult *r = pg_run(ps, c, sql, n, vals, &e);
	if (r) {
		int rows = PQntuples(r);
		for (int i = 0; i < rows; i++)
			row(r, i, ctx);
		if (nrows)
			*nrows = rows;
		PQclear(r);
	}
	if (own)
		pg_put(ps, c, e == ALLOT_E_UNAVAILABLE);
	return e;
}

/* ---- open and close ------------------------------------------------------------------ */

static void pg_free(struct pg_store *ps)
{
	pthread_mutex_lock(&ps->pool_mu);
	if (ps->nopen != ps->nidle)
		log_warnx("store: closing the PostgreSQL store with %d connections still in use",
			  ps->nopen - ps->nidle);
	for (int i = 0; i < ps->nidle; i++)
		PQfinish(ps->idle[i]);
	ps->nidle = ps->nopen = 0;
	pthread_mutex_unlock(&ps->pool_mu);
	pthread_mutex_destroy(&ps->pool_mu);
	pthread_cond_destroy(&ps->pool_cv);
	if (ps->uri) /* it may hold a password */
		explicit_bzero(ps->uri, strlen(ps->uri));
	free(ps->uri);
	free(ps);
}

/* The ledger (its flusher makes deferred commits durable) and the log,
 * in reverse order of opening, before the pool's connections close. */
static void pg_close(struct store *st)
{
	struct pg_store *ps = (struct pg_store *)st;
	pg_ledger_close(ps);
	pg_tlog_close(ps);
	pg_free(ps);
}

static int pg_schema_version_op(struct store *st)
{
	struct pg_store *ps = (struct pg_store *)st;
	PGconn *c;
	bool own;
	if (pg_get(ps, &c, &own))
		return -1;
	int v = pg_schema_version(c);
	if (own)
		pg_put(ps, c, v < 0 && PQstatus(c) != CONNECTION_OK);
	return v;
}

const struct store_ops store_pg_ops = {
	.name = "postgres",
	.close = pg_close,
	.backup = NULL, /* pg_basebackup or a standby: docs/DEPLOY.md */
	.schema_version = pg_schema_version_op,
	PGS_ADMIN_OPS
	PGS_QUEUE_OPS
	PG_LEDGER_OPS
	PG_TLOG_OPS
	PG_BUDGET_OPS
};

/* A read-only open (allotd --fsck) needs the schema of this binary: an
 * older one would need its migrations written, a newer one is not
 * understood. */
static allot_err pg_check_version(PGconn *c, char *msg, size_t msgsz)
{
	int have = pg_schema_version(c), latest = migrate_latest(migrations_postgres);
	if (have < 0) {
		snprintf(msg, msgsz, "cannot read the PostgreSQL schema version: %s",
			 PQerrorMessage(c));
		pg_fold(msg);
		return ALLOT_E_STORE;
	}
	if (have != latest) {
		snprintf(msg, msgsz, "the PostgreSQL database has schema version %d, this allotd "
				     "reads %d (%s)", have, latest,
			 have > latest ? "upgrade allotd" : "start allotd on it once to migrate it");
		return ALLOT_E_STORE;
	}
	return ALLOT_OK;
}

static allot_err pg_open(const char *uri, bool readonly, struct store **out, char *msg,
			 size_t msgsz)
{
	struct pg_store *ps = calloc(1, sizeof *ps);
	if (!ps || !(ps->uri = strdup(uri))) {
		free(ps);
		snprintf(msg, msgsz, "out of memory");
		return ALLOT_E_NOMEM;
	}
	ps->base.ops = &store_pg_ops;
	ps->readonly = readonly;
	pthread_mutex_init(&ps->pool_mu, NULL);
	pthread_cond_init(&ps->pool_cv, NULL);
	PGconn *c = NULL;
	allot_err e = pg_open_conn(ps, &c, msg, msgsz);
	if (!e)
		e = readonly ? pg_check_version(c, msg, msgsz) : pg_migrate(c, NULL, msg, msgsz);
	if (e) {
		PQfinish(c);
		pg_free(ps);
		return e;
	}
	ps->idle[ps->nidle++] = c;
	ps->nopen = 1;
	/* The log first: the ledger's appends start from its head. */
	if ((e = pg_tlog_open(ps, msg, msgsz)) || (e = pg_ledger_open(ps, msg, msgsz))) {
		pg_close(&ps->base);
		return e;
	}
	*out = &ps->base;
	return ALLOT_OK;
}

allot_err store_pg_open(const char *uri, struct store **out, char *msg, size_t msgsz)
{
	return pg_open(uri, false, out, msg, msgsz);
}

allot_err store_pg_open_readonly(const char *uri, struct store **out, char *msg, size_t msgsz)
{
	return pg_open(uri, true, out, msg, msgsz);
}
