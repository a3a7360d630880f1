/* ledger_sql.c — the ledger's filtered read statements for both backends
 * (store/ledger_sql.h). */
#include "store/ledger_sql.h"

#include <string.h>

void ledger_sql_init(struct ledger_sql *q, enum ledger_sql_dialect d)
{
	memset(q, 0, sizeof *q);
	q->dialect = d; /* q->sql: BUF_INIT */
}

void ledger_sql_release(struct ledger_sql *q)
{
	buf_release(&q->sql);
	q->n = 0;
}

/* The placeholder of the parameter just added. */
static void placeholder(struct ledger_sql *q)
{
	buf_printf(&q->sql, "%c%d", q->dialect == LEDGER_SQL_PG ? '$' : '?', q->n);
}

static const struct {
	const char *col, *name, *code;
} sql_codes[] = {
	{"kind", "usage", "u"},       {"kind", "adjustment", "a"}, {"kind", "void", "v"},
	{"source", "provider", "p"}, {"source", "gate", "g"},
};

const char *ledger_sql_code(const char *col, const char *name)
{
	for (size_t i = 0; i < sizeof sql_codes / sizeof sql_codes[0]; i++)
		if (strcmp(sql_codes[i].col, col) == 0 && strcmp(sql_codes[i].name, name) == 0)
			return sql_codes[i].code;
	return NULL;
}

const char *ledger_sql_code_name(const char *col, const char *code)
{
	for (size_t i = 0; i < sizeof sql_codes / sizeof sql_codes[0]; i++)
		if (strcmp(sql_codes[i].col, col) == 0 && strcmp(sql_codes[i].code, code) == 0)
			return sql_codes[i].name;
	return NULL;
}

static void where_text(struct ledger_sql *q, const char *col, const char *v)
{
	if (!v)
		return;
	q->text[q->n++] = v;
	buf_printf(&q->sql, " AND %s = ", col);
	placeholder(q);
}

void ledger_sql_int(struct ledger_sql *q, const char *prefix, int64_t v)
{
	q->text[q->n] = NULL;
	q->ints[q->n++] = v;
	buf_puts(&q->sql, prefix);
	placeholder(q);
}

void ledger_sql_where(struct ledger_sql *q, const struct ledger_filter *f)
{
	buf_puts(&q->sql, " WHERE 1 = 1");
	where_text(q, "institution", f->institution);
	where_text(q, "project", f->project);
	where_text(q, "member", f->member);
	where_text(q, "provider", f->provider);
	where_text(q, "resource", f->resource);
	where_text(q, "model", f->model);
	/* a name with no code matches no row ("char" of "" is '\0') */
	const char *kind = f->kind;
	if (kind && q->dialect == LEDGER_SQL_PG) {
		const char *code = ledger_sql_code("kind", kind);
		kind = code ? code : "";
	}
	where_text(q, "kind", kind);
	/* PostgreSQL finds an institution's records by (institution,
	 * book_us >> 30) (migration 0009): the bounds' spans as well, implied
	 * by the bounds (the same rows), for the index */
	bool span = q->dialect == LEDGER_SQL_PG && f->institution;
	if (f->from_us) {
		ledger_sql_int(q, " AND book_us >= ", f->from_us);
		if (span)
			buf_printf(&q->sql, " AND (book_us >> 30) >= ($%d::bigint >> 30)", q->n);
	}
	if (f->to_us) {
		ledger_sql_int(q, " AND book_us < ", f->to_us);
		if (span && f->to_us > INT64_MIN)
			buf_printf(&q->sql, " AND (book_us >> 30) <= (($%d::bigint - 1) >> 30)", q->n);
	}
	if (f->after_id)
		ledger_sql_int(q, " AND id > ", f->after_id);
}

void ledger_sql_list(struct ledger_sql *q, const char *cols, const struct ledger_filter *f)
{
	buf_printf(&q->sql, "SELECT %s, leaf_index FROM usage_records", cols);
	ledger_sql_where(q, f);
	ledger_sql_int(q, " ORDER BY id LIMIT ", f->limit);
}

static bool group_col_ok(const char *g)
{
	static const char *const ok[] = {"institution", "project", "member", "provider",
					 "resource", "model", NULL};
	for (size_t i = 0; ok[i]; i++)
		if (strcmp(g, ok[i]) == 0)
			return true;
	return false;
}

/* A row's signed share of its record's net quantity (docs/LEDGER.md,
 * "Reports"): usage and debits add their quantity, credits and refunds
 * subtract theirs, a void subtracts what was left of the record it voids
 * (its quantity minus earlier credits and refunds plus debits), so a voided
 * record nets to zero, as its charge does. */
#define NET_QUANTITY(usage, adjustment)                                                      \
	"CASE kind WHEN '" usage "' THEN quantity "                                          \
	"WHEN '" adjustment "' THEN CASE adjustment WHEN 'debit' THEN quantity "             \
	"ELSE -quantity END "                                                                \
	"ELSE -(SELECT coalesce(sum(CASE o.kind WHEN '" usage "' THEN o.quantity "           \
	"WHEN '" adjustment "' THEN CASE o.adjustment WHEN 'debit' THEN o.quantity "         \
	"ELSE -o.quantity END ELSE 0 END), 0) FROM usage_records o "                         \
	"WHERE o.provider = usage_records.provider AND (o.record_id = usage_records.supersedes " \
	"OR o.supersedes = usage_records.supersedes)) END"
/* the kinds by name (SQLite) and by code (PostgreSQL, migration 0009) */
static const char q_net_quantity[] = NET_QUANTITY("usage", "adjustment");
static const char q_net_quantity_pg[] = NET_QUANTITY("u", "a");

allot_err ledger_sql_report(struct ledger_sql *q, const struct ledger_filter *f,
			    const char *const *group_by, size_t ngroup, bool by_bucket)
{
	struct buf cols = BUF_INIT, keys = BUF_INIT;
	bool ok = ngroup <= LEDGER_GROUP_MAX;
	for (size_t i = 0; ok && i < ngroup; i++)
		ok = group_col_ok(group_by[i]);
	if (!ok) {
		ledger_sql_release(q);
		return ALLOT_E_INVALID;
	}
	for (size_t i = 0; i < ngroup; i++) {
		/* project and member keys are qualified: same-named projects of
		 * two institutions are two groups.  Rows are grouped by the plain
		 * columns (cheaper to sort than the joined strings; byte order:
		 * PostgreSQL migration 0004). */
		bool proj = strcmp(group_by[i], "project") == 0;
		bool mem = strcmp(group_by[i], "member") == 0;
		const char *col = proj ? "institution || '/' || project AS project"
				  : mem ? "institution || '/' || project || CASE member WHEN '' "
					  "THEN '' ELSE '/' || member END AS member"
				  : group_by[i];
		buf_printf(&cols, "%s%s", cols.len ? ", " : "", col);
		buf_printf(&keys, "%s%s", keys.len ? ", " : "",
			   proj ? "institution, project" : mem ? "institution, project, member"
			   : group_by[i]);
	}
	if (by_bucket) { /* the 15-minute bucket's start, floored */
		buf_printf(&cols, "%sbook_us - ((book_us %% %lld) + %lld) %% %lld AS bucket_us",
			   cols.len ? ", " : "", (long long)LEDGER_BUCKET_US,
			   (long long)LEDGER_BUCKET_US, (long long)LEDGER_BUCKET_US);
		buf_printf(&keys, "%s%zu", keys.len ? ", " : "", ngroup + 1); /* its position */
	}
	buf_puts(&q->sql, "SELECT ");
	if (cols.len)
		buf_printf(&q->sql, "%s, ", buf_str(&cols));
	buf_printf(&q->sql, "sum(charge_micro) AS charge, sum(%s) AS quantity, count(*) AS records "
			    "FROM usage_records",
		   q->dialect == LEDGER_SQL_PG ? q_net_quantity_pg : q_net_quantity);
	ledger_sql_where(q, f);
	if (keys.len)
		buf_printf(&q->sql, " GROUP BY %s ORDER BY %s", buf_str(&keys), buf_str(&keys));
	buf_release(&cols);
	buf_release(&keys);
	return ALLOT_OK;
}
