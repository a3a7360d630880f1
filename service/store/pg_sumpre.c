/* pg_sumpre.c — a booking group's level sums read in its opening round
 * trip (store/pg_int.h; docs/BENCH_PG.md, "The added latency at 1,000
 * req/s").
 *
 * A gate settlement's group needs the sums of its levels (the overage
 * flag, ledger/book.c) before it writes anything: one round trip of its
 * own, between the opening one (BEGIN, the bounds row, the log head) and
 * the closing pipeline.  Busy groups ask for the same levels and bucket
 * ranges again and again, so the store remembers the last group's request
 * and sends it again as the opening query's last statement; the group's
 * sums call takes that answer when it asks exactly that (the same five
 * arrays) before its transaction wrote any charge, and goes to the
 * database otherwise.
 *
 * The answer is the one the later statement would give: it runs after the
 * bounds row's lock is granted (its own snapshot, READ COMMITTED), and
 * every writer of usage_buckets holds that lock until it commits
 * (pg_ledger.c), so nothing else can change the sums in between; the
 * transaction's own charges are excluded by the "nothing written yet"
 * condition. */
#include "store/pg_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pg_sumpre {
	pthread_mutex_t mu;
	char *guess[PG_SUMS_ARRAYS]; /* the last group's arrays; NULL: none */
};

struct pg_sumpre *pg_sumpre_new(void)
{
	struct pg_sumpre *sp = calloc(1, sizeof *sp);
	if (sp)
		pthread_mutex_init(&sp->mu, NULL);
	return sp;
}

void pg_sumpre_free(struct pg_sumpre *sp)
{
	if (!sp)
		return;
	pg_sums_arrays_free(sp->guess);
	pthread_mutex_destroy(&sp->mu);
	free(sp);
}

/* A copy of the guess into key (false: none, or out of memory). */
static bool guess_copy(struct pg_sumpre *sp, char *key[PG_SUMS_ARRAYS])
{
	bool ok = true;
	pthread_mutex_lock(&sp->mu);
	for (int f = 0; f < PG_SUMS_ARRAYS; f++) {
		key[f] = sp->guess[f] ? strdup(sp->guess[f]) : NULL;
		ok &= key[f] != NULL;
	}
	pthread_mutex_unlock(&sp->mu);
	if (!ok)
		pg_sums_arrays_free(key);
	return ok;
}

char *pg_sumpre_sql(struct pg_sumpre *sp, PGconn *c, const char *base,
		    char *key[PG_SUMS_ARRAYS])
{
	static const char q[] = "; EXECUTE %s(%s, %s, %s, %s, %s)";
	for (int f = 0; f < PG_SUMS_ARRAYS; f++)
		key[f] = NULL;
	/* its prepared statement (a plan kept; the group's SET LOCAL makes it
	 * the generic one), not a query planned each time */
	char name[24];
	if (!sp || !pg_stmt_name(c, pg_sums_sql, name) || !guess_copy(sp, key))
		return NULL;
	char *lit[PG_SUMS_ARRAYS] = {NULL};
	size_t len = strlen(base) + sizeof q + strlen(name);
	bool ok = true;
	for (int f = 0; f < PG_SUMS_ARRAYS && ok; f++) {
		ok = (lit[f] = PQescapeLiteral(c, key[f], strlen(key[f]))) != NULL;
		len += ok ? strlen(lit[f]) : 0;
	}
	char *sql = ok ? malloc(len) : NULL;
	if (sql) {
		size_t n = strlen(base);
		memcpy(sql, base, n);
		snprintf(sql + n, len - n, q, name, lit[0], lit[1], lit[2], lit[3], lit[4]);
	}
	for (int f = 0; f < PG_SUMS_ARRAYS; f++)
		PQfreemem(lit[f]);
	if (!sql)
		pg_sums_arrays_free(key);
	return sql;
}

bool pg_sumpre_match(char *const key[PG_SUMS_ARRAYS], char *const a[PG_SUMS_ARRAYS])
{
	for (int f = 0; f < PG_SUMS_ARRAYS; f++)
		if (!key[f] || !a[f] || strcmp(key[f], a[f]) != 0)
			return false;
	return true;
}

void pg_sumpre_remember(struct pg_sumpre *sp, char *a[PG_SUMS_ARRAYS])
{
	if (!sp) {
		pg_sums_arrays_free(a);
		return;
	}
	pthread_mutex_lock(&sp->mu);
	for (int f = 0; f < PG_SUMS_ARRAYS; f++) {
		free(sp->guess[f]);
		sp->guess[f] = a[f];
		a[f] = NULL;
	}
	pthread_mutex_unlock(&sp->mu);
}
