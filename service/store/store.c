/* store.c — picks a backend from the URI. */
#include "store/store.h"

#include <stdio.h>
#include <string.h>

allot_err store_open(const char *uri, struct store **out, char *msg, size_t msgsz)
{
	if (strncmp(uri, "postgres://", 11) == 0 || strncmp(uri, "postgresql://", 13) == 0) {
		snprintf(msg, msgsz, "the PostgreSQL store is not available in this build yet; "
				     "use a SQLite path for --db");
		return ALLOT_E_UNSUPPORTED;
	}
	return store_sqlite_open(uri, out, msg, msgsz);
}

allot_err store_open_readonly(const char *uri, struct store **out, char *msg, size_t msgsz)
{
	if (strncmp(uri, "postgres://", 11) == 0 || strncmp(uri, "postgresql://", 13) == 0) {
		snprintf(msg, msgsz, "the PostgreSQL store is not available in this build yet; "
				     "use a SQLite path for --db");
		return ALLOT_E_UNSUPPORTED;
	}
	return store_sqlite_open_readonly(uri, out, msg, msgsz);
}

void store_close(struct store *st)
{
	if (st)
		st->ops->close(st);
}
