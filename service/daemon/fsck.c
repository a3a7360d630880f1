/* fsck.c — allotd --fsck: flags, output, and the checks that go through the
 * store's own code paths (quota levels, the sum cache, the report query)
 * against sums of the records (docs/FSCK.md). */
#include "daemon/fsck_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "charter/charter.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "daemon/dblock.h"
#include "ledger/period.h"
#include "ledger/quota.h"

/* ---- output ------------------------------------------------------------------ */

void fsck_bad(struct fsck *f, const char *what, const char *where, const char *stored,
	      const char *recomputed)
{
	f->bad++;
	if (f->bad > FSCK_MAX_REPORTED)
		return;
	if (f->problems) {
		json_array_append_new(f->problems,
				      json_pack("{s:s,s:s,s:s,s:s}", "what", what, "where", where,
						"stored", stored, "recomputed", recomputed));
		return;
	}
	fprintf(f->out, "fsck: %s %s: stored %s, recomputed %s\n", what, where, stored, recomputed);
}

void fsck_bad_money(struct fsck *f, const char *what, const char *where, int64_t stored,
		    int64_t recomputed)
{
	char a[MONEY_FMT_MAX], b[MONEY_FMT_MAX];
	fsck_bad(f, what, where, money_format(stored, a), money_format(recomputed, b));
}

void fsck_bad_int(struct fsck *f, const char *what, const char *where, int64_t stored,
		  int64_t recomputed)
{
	char a[24], b[24];
	snprintf(a, sizeof a, "%lld", (long long)stored);
	snprintf(b, sizeof b, "%lld", (long long)recomputed);
	fsck_bad(f, what, where, a, b);
}

void fsck_cmp_money(struct fsck *f, const char *what, const char *where, int64_t stored,
		    int64_t recomputed)
{
	f->checks++;
	if (stored != recomputed)
		fsck_bad_money(f, what, where, stored, recomputed);
}

void fsck_fail(struct fsck *f, const char *what, const char *why)
{
	f->failed = true;
	fsck_bad(f, what, "(check not made)", why && *why ? why : "error", "-");
}

/* ---- the charter in force ------------------------------------------------------ */

struct in_force {
	int64_t now, best, newest, first_effective;
	bool any;
};

/* store_charter_history's fn (versions come oldest first). */
static void in_force_row(void *ctx, const struct charter_row *r)
{
	struct in_force *k = ctx;
	if (!k->any)
		k->first_effective = r->effective;
	k->any = true;
	if (r->effective <= k->now && r->version > k->best)
		k->best = r->version;
	if (r->version > k->newest)
		k->newest = r->version;
}

/* The stored version in force at now (the highest applied one whose
 * effective has passed; the newest when none has), parsed, with the ledger's
 * start (the first version's effective) as the daemon sets it.  NULL when no
 * charter is stored or it does not parse (reported). */
static struct charter *charter_in_force(struct fsck *f, int64_t now)
{
	struct in_force k = {.now = now};
	if (store_charter_history(f->st, in_force_row, &k)) {
		fsck_fail(f, "charters", f->st->errmsg);
		return NULL;
	}
	int64_t best = k.best, newest = k.newest, first_effective = k.first_effective;
	if (!best)
		best = newest;
	if (!best)
		return NULL;
	struct charter_row r;
	if (store_charter_get(f->st, best, &r)) {
		fsck_fail(f, "charters", f->st->errmsg);
		return NULL;
	}
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *c = NULL;
	char name[64];
	snprintf(name, sizeof name, "stored-charter-v%lld", (long long)best);
	f->checks++;
	if (charter_parse(name, r.text, r.text_len, &c, &errs)) {
		fsck_bad(f, "charter", name, "stored",
			 errs.nerrors ? errs.errors[0].text : "does not parse");
		c = NULL;
	} else {
		c->ledger_start_us = first_effective;
	}
	charter_errors_release(&errs);
	free(r.text);
	return c;
}

/* ---- quota levels, sum cache, report ------------------------------------------- */

static void level_where(const struct quota_level *q, char *out, size_t n)
{
	char a[TIME_FMT_MAX], b[TIME_FMT_MAX];
	if (q->period_start == INT64_MIN)
		snprintf(out, n, "%s %s (total)", quota_kind_name(q->kind), q->key);
	else
		snprintf(out, n, "%s %s [%s, %s)", quota_kind_name(q->kind), q->key,
			 time_format_rfc3339(q->period_start, a), time_format_rfc3339(q->period_end, b));
}

struct report_total {
	int64_t charge, records;
};

static void report_total_row(void *ctx, const struct ledger_report_row *r)
{
	struct report_total *t = ctx;
	t->charge = r->charge;
	t->records = r->records;
}

/* The report query's charge and record count for a level and range. */
static bool report_total(struct fsck *f, const struct ledger_level *lv, int64_t from, int64_t to,
			 int64_t *charge, int64_t *records)
{
	struct ledger_filter flt = {.institution = lv->institution, .project = lv->project,
				    .member = lv->member, .from_us = from, .to_us = to};
	struct report_total t = {0, 0};
	if (store_ledger_report_rows(f->st, &flt, NULL, 0, false, report_total_row, &t)) {
		fsck_fail(f, "report", f->st->errmsg);
		return false;
	}
	*charge = t.charge;
	*records = t.records;
	return true;
}

/* One level: used as the store sums it (buckets), again (the sum cache the
 * first call filled), and the report over the same range, each against the
 * records. */
static void level_compare(struct fsck *f, const struct quota_level *q1,
			  const struct quota_level *q2)
{
	char where[STORE_ID_MAX * 2 + STORE_MEMBER_MAX + 2 * TIME_FMT_MAX + 32];
	level_where(q1, where, sizeof where);
	int64_t raw, nraw, charge, nrep;
	if (!fsck_raw_sum(f, &q1->lv, q1->period_start, q1->period_end, &raw, &nraw))
		return;
	fsck_cmp_money(f, "quota used", where, q1->used, raw);
	fsck_cmp_money(f, "sum cache", where, q2->used, raw);
	if (!report_total(f, &q1->lv, q1->period_start, q1->period_end, &charge, &nrep))
		return;
	fsck_cmp_money(f, "report total", where, charge, raw);
	f->checks++;
	if (nrep != nraw)
		fsck_bad_int(f, "report records", where, nrep, nraw);
}

/* A level's rollover: what the previous period's records leave unused of
 * the allocation, carried at the rollover fraction; nothing from a period
 * that ended before the ledger began.  prev: the same level's figures at
 * the last instant of the previous period. */
static void rollover_compare(struct fsck *f, const struct charter *c, const struct quota_level *q,
			     const struct quota_level *prev)
{
	char where[STORE_ID_MAX * 2 + STORE_MEMBER_MAX + 2 * TIME_FMT_MAX + 32];
	level_where(q, where, sizeof where);
	int64_t raw, carried = 0;
	if (!fsck_raw_sum(f, &prev->lv, prev->period_start, prev->period_end, &raw, NULL))
		return;
	int64_t start = c->ledger_start_us ? c->ledger_start_us : c->effective_us;
	if (prev->period_end > start &&
	    period_rollover(q->allocation, q->alloc->rollover_ppm, raw, &carried)) {
		fsck_fail(f, "rollover", where);
		return;
	}
	fsck_cmp_money(f, "rollover", where, q->rollover, carried);
}

/* The levels of (inst, proj, member) twice: the first read fills the sum
 * cache from the buckets, the second is answered by it.  Checks the first
 * level (the most specific) and, with pool, the pool level; and the first
 * level's rollover. */
static void levels_of(struct fsck *f, const struct charter *c, const char *inst, const char *proj,
		      const char *member, int64_t now, bool pool)
{
	struct quota_level q1[QUOTA_MAX_LEVELS], q2[QUOTA_MAX_LEVELS], qp[QUOTA_MAX_LEVELS];
	size_t n1 = 0, n2 = 0, np = 0;
	allot_err e = quota_levels(f->st, c, inst, proj, member, now, NULL, NULL, q1, &n1);
	if (!e)
		e = quota_levels(f->st, c, inst, proj, member, now, NULL, NULL, q2, &n2);
	if (!e && q1[0].alloc && q1[0].alloc->rollover_ppm > 0 && q1[0].period_start != INT64_MIN)
		e = quota_levels(f->st, c, inst, proj, member, q1[0].period_start - 1, NULL, NULL, qp,
				 &np);
	if (e || n1 != n2 || n1 == 0) {
		char why[128];
		snprintf(why, sizeof why, "quota levels of %s/%s/%s: %s", inst, proj ? proj : "",
			 member ? member : "", err_code(e));
		fsck_fail(f, "quota level", why);
		return;
	}
	level_compare(f, &q1[0], &q2[0]);
	if (np == n1)
		rollover_compare(f, c, &q1[0], &qp[0]);
	if (pool && q1[n1 - 1].kind == QUOTA_POOL)
		level_compare(f, &q1[n1 - 1], &q2[n2 - 1]);
}

void fsck_levels_check(struct fsck *f)
{
	int64_t now = f->o->now_us ? f->o->now_us : time_now_us();
	struct charter *c = charter_in_force(f, now);
	if (!c)
		return;
	for (size_t i = 0; i < c->ninstitutions; i++) {
		const struct charter_institution *inst = &c->institutions[i];
		levels_of(f, c, inst->id, NULL, NULL, now, i == 0);
		for (size_t p = 0; p < inst->nprojects; p++) {
			const struct charter_project *proj = &inst->projects[p];
			levels_of(f, c, inst->id, proj->id, NULL, now, false);
			if (!proj->has_member_allocation)
				continue;
			for (size_t m = 0; m < proj->nmembers; m++)
				levels_of(f, c, inst->id, proj->id, proj->members[m], now, false);
		}
	}
	charter_free(c);
}

/* ---- flags and the run ------------------------------------------------------------ */

int fsck_parse_args(int argc, char **argv, struct fsck_options *o, FILE *err)
{
	/* The daemon's flags that take a value are accepted and ignored: the
	 * same command line can serve and check. */
	static const char *const ignored[] = {"--listen", "--charter", "--keys", "--models",
					      "--deployment", "--threads", "--flush-ms", "--device", NULL};
	memset(o, 0, sizeof *o);
	const char *env = getenv("ALLOT_DB");
	o->db = env && *env ? env : "var/allot.db";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		const char *val = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--fsck") == 0 || strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)
			continue;
		bool known = strncmp(a, "--db", n) == 0 && n == 4;
		bool format = strncmp(a, "--format", n) == 0 && n == 8;
		for (size_t k = 0; ignored[k] && !known && !format; k++)
			known = strlen(ignored[k]) == n && strncmp(a, ignored[k], n) == 0;
		if (!known && !format) {
			fprintf(err, "allotd --fsck: unknown argument \"%s\"\n"
				     "usage: allotd --fsck [--db PATH] [--format text|json]\n", a);
			return FSCK_ERROR;
		}
		if (!val) {
			fprintf(err, "allotd --fsck: %.*s needs a value\n", (int)n, a);
			return FSCK_ERROR;
		}
		if (!eq)
			i++;
		if (format) {
			if (strcmp(val, "json") != 0 && strcmp(val, "text") != 0) {
				fprintf(err, "allotd --fsck: --format must be text or json\n");
				return FSCK_ERROR;
			}
			o->json = strcmp(val, "json") == 0;
		} else if (strncmp(a, "--db", n) == 0 && n == 4) {
			o->db = val;
		}
	}
	return 0;
}

int fsck_run(const struct fsck_options *o, FILE *out, FILE *err)
{
	struct fsck f = {.o = o, .out = out};
	char msg[512] = "", shown[512];
	struct dblock *lock = NULL;
	struct stat sb;
	/* The database's owner lock, as allotd holds it (daemon/dblock.c: a
	 * SQLite file's lock file, a PostgreSQL database's advisory lock):
	 * fsck never reads a database a running allotd is writing.  A missing
	 * file is left to the open below to report (nothing is created for
	 * it). */
	if (((dblock_applies(o->db) && stat(o->db, &sb) == 0) || store_uri_is_pg(o->db)) &&
	    dblock_acquire(o->db, "allotd --fsck", &lock, msg, sizeof msg)) {
		fprintf(err, "allotd --fsck: %s\n", msg);
		return FSCK_ERROR;
	}
	if (store_open_readonly(o->db, &f.st, msg, sizeof msg)) {
		fprintf(err, "allotd --fsck: %s\n", msg[0] ? msg : "cannot open the database");
		dblock_release(lock);
		return FSCK_ERROR;
	}
	if (!fsck_raw_open(&f, err)) {
		fsck_raw_close(&f);
		store_close(f.st);
		dblock_release(lock);
		return FSCK_ERROR;
	}
	if (o->json)
		f.problems = json_array();
	fsck_rows_check(&f);
	fsck_log_check(&f);
	fsck_levels_check(&f);
	fsck_raw_close(&f);
	store_close(f.st);
	dblock_release(lock);
	if (f.problems) {
		/* a PostgreSQL URI without its password */
		const char *db = store_uri_printable(o->db, shown, sizeof shown);
		json_t *j = json_pack("{s:s,s:I,s:I,s:o}", "database", db, "checks",
				      (json_int_t)f.checks, "disagreements", (json_int_t)f.bad,
				      "problems", f.problems);
		json_dumpf(j, out, JSON_COMPACT);
		fputc('\n', out);
		json_decref(j);
	} else {
		if (f.bad > FSCK_MAX_REPORTED)
			fprintf(out, "fsck: %llu more disagreements not shown\n",
				(unsigned long long)(f.bad - FSCK_MAX_REPORTED));
		fprintf(out, "fsck: %llu checks, %llu disagreements\n", (unsigned long long)f.checks,
			(unsigned long long)f.bad);
	}
	fflush(out);
	return f.bad ? FSCK_DISAGREE : FSCK_CLEAN;
}
