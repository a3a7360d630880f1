/* ledger_sql.h — the SQL of the ledger's filtered reads, one builder for
 * both backends: the WHERE clause of a listing's or report's filters and a
 * report's statement, with every value a parameter numbered in order,
 * written in the backend's dialect ($1 on PostgreSQL, ?1 on SQLite).  Column
 * names are fixed here (a group_by column is checked against the list), so
 * nothing a caller passes reaches the text. */
#ifndef ALLOT_STORE_LEDGER_SQL_H
#define ALLOT_STORE_LEDGER_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/ledger_types.h"

enum ledger_sql_dialect { LEDGER_SQL_SQLITE, LEDGER_SQL_PG };

/* Parameters at the most: seven text filters, three integer bounds, the
 * listing's limit. */
#define LEDGER_SQL_PARAMS 12

/* A statement being built.  Parameter i (from 0; $i+1 or ?i+1 in the text)
 * is text[i], or the integer ints[i] when text[i] is NULL. */
struct ledger_sql {
	enum ledger_sql_dialect dialect;
	struct buf sql;
	const char *text[LEDGER_SQL_PARAMS]; /* borrowed from the filter */
	int64_t ints[LEDGER_SQL_PARAMS];
	int n;
};

void ledger_sql_init(struct ledger_sql *q, enum ledger_sql_dialect d);
void ledger_sql_release(struct ledger_sql *q);

/* Appends " WHERE ..." for the filters set in f (from_us, to_us and
 * after_id on book_us and id). */
void ledger_sql_where(struct ledger_sql *q, const struct ledger_filter *f);

/* Appends prefix and the placeholder of a new integer parameter v. */
void ledger_sql_int(struct ledger_sql *q, const char *prefix, int64_t v);

/* The listing's statement: cols (the backend's row columns) and the
 * leaf index of the records f selects, in id order, f->limit of them. */
void ledger_sql_list(struct ledger_sql *q, const char *cols, const struct ledger_filter *f);

/* The report's statement: the group columns (project and member as their
 * qualified keys), the bucket's start when by_bucket, then charge, net
 * quantity (docs/LEDGER.md, "Reports") and records, grouped and ordered by
 * the plain columns.  ALLOT_E_INVALID (q released) for more than
 * LEDGER_GROUP_MAX columns or one outside the list. */
allot_err ledger_sql_report(struct ledger_sql *q, const struct ledger_filter *f,
			    const char *const *group_by, size_t ngroup, bool by_bucket);

/* PostgreSQL keeps usage_records.kind and .source as one-letter codes
 * (migration 0009: the names' first letters, "char"); SQLite keeps the
 * names.  The code of name in column col ("kind" or "source"), and the
 * name of a code; NULL when there is none. */
const char *ledger_sql_code(const char *col, const char *name);
const char *ledger_sql_code_name(const char *col, const char *code);

#endif
