/* migrate.h — schema migrations compiled into the binary.
 *
 * migrations/<dialect>/NNNN_name.sql are embedded at build time (see
 * scripts/embed-migrations.sh) as a table ending with {0}.  Each backend
 * applies the ones newer than the database's recorded version, in order,
 * each in its own transaction, and refuses a database newer than the binary.
 */
#ifndef ALLOT_STORE_MIGRATE_H
#define ALLOT_STORE_MIGRATE_H

struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations_sqlite[];
extern const struct migration migrations_postgres[];

/* Highest version in a table. */
int migrate_latest(const struct migration *m);

#endif
