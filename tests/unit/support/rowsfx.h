/* rowsfx.h — the store's typed read operations gathered into JSON arrays for
 * the tests that inspect many rows (store/store.h: ledger_list,
 * ledger_report).  Each fails the test on a store error. */
#ifndef ALLOT_TESTS_ROWSFX_H
#define ALLOT_TESTS_ROWSFX_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "store/store.h"

/* ledger_list's rows in the store's column form: "id", the record's
 * fields, "start_us" "end_us" "received_us" "book_us" "rate_micro"
 * "charge_micro" as integers, "late" "overage" as 0/1, "sha256" hex,
 * "canonical", "leaf_index" (null when none). */
json_t *rowsfx_list(struct store *st, const struct ledger_filter *f);
/* One row in that column form (the object the store itself used to build
 * from its columns, before the store spoke typed rows). */
json_t *rowsfx_column_form(const struct ledger_row *row, int64_t leaf_index);
/* ledger_list's rows in export form (ledgerlog_usage_json, listed). */
json_t *rowsfx_export(struct store *st, const struct ledger_filter *f);
/* ledger_report's rows as api_report_rows_json gives them: the group_by
 * columns by name, "bucket_us" when by_bucket, "charge", "quantity",
 * "records". */
json_t *rowsfx_report(struct store *st, const struct ledger_filter *f,
		      const char *const *group_by, size_t ngroup, bool by_bucket);

#endif
