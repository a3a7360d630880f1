/* sqlite_int.h — private to the SQLite backend's files (store/sqlite*.c). */
#ifndef ALLOT_STORE_SQLITE_INT_H
#define ALLOT_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

#define SQ_MAX_STMTS 96

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	pthread_mutex_t lock;       /* guards db and stmts */
	struct {
		const char *sql;        /* static string; the cache key */
		sqlite3_stmt *st;
	} stmts[SQ_MAX_STMTS];
	size_t nstmts;
};

/* Ledger operations live in store/sqlite_ledger.c. */
#define SQ_LEDGER_OPS

allot_err sq_fail(struct sqlite_store *s, const char *what);
sqlite3_stmt *sq_prep(struct sqlite_store *s, const char *sql);
void sq_bind_text(sqlite3_stmt *st, int i, const char *v);
void sq_copy_text(sqlite3_stmt *st, int col, char *dst, size_t dstsz);
allot_err sq_exec(struct sqlite_store *s, const char *sql);
allot_err sq_begin(struct sqlite_store *s);
allot_err sq_commit(struct sqlite_store *s);
void sq_rollback(struct sqlite_store *s);
allot_err sq_audit_insert(struct sqlite_store *s, const struct audit_entry *e);
allot_err sq_rows_to_json(struct sqlite_store *s, sqlite3_stmt *st, json_t **out);

#endif
