/* store_entry.c — a log leaf's entry into its listing row
 * (store/store_entry.h). */
#include "store/store_entry.h"

#include <stdio.h>

#include "tlog/leaf.h"

void store_entry_row(struct tlog_entry_row *row, int t, const struct store_entry *e)
{
	row->usage = NULL;
	row->charter = NULL;
	row->audit = NULL;
	if (t < 0 || !e->found)
		return;
	row->usage = t == TLOG_LEAF_USAGE ? &e->usage : NULL;
	row->charter = t == TLOG_LEAF_CHARTER ? &e->charter : NULL;
	row->audit = t == TLOG_LEAF_AUDIT ? &e->audit : NULL;
	row->audit_id = e->audit_id;
}

void store_entry_name(struct tlog_entry_row *row, char name[STORE_LEAF_NAME_MAX])
{
	if (row->name || !row->usage)
		return;
	snprintf(name, STORE_LEAF_NAME_MAX, "%s/%s", row->usage->rec.provider,
		 row->usage->rec.record_id);
	row->name = name;
}
