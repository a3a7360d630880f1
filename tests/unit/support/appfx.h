/* appfx.h — a real app (SQLite in a temporary directory, a charter given
 * as text, ALLOT_ADMIN_KEY set) and a gate without engines, for unit tests
 * of the gate and the ledger.  Fails the test on any error. */
#ifndef ALLOT_TESTS_APPFX_H
#define ALLOT_TESTS_APPFX_H

#include <stdint.h>

#include "crypto/token_claims.h"
#include "daemon/app.h"

struct appfx {
	char dir[64], db[96], keys[96], charter[96];
	struct app app;
	struct gate *gate;
};

/* Makes the directory, writes the charter, opens app and gate. */
void appfx_open(struct appfx *f, const char *charter_text);
/* Closes gate and app, keeping the directory (appfx_start opens them again
 * on the same database and keys). */
void appfx_stop(struct appfx *f);
void appfx_start(struct appfx *f);
/* appfx_stop and removes the directory. */
void appfx_close(struct appfx *f);

/* A member token's claims as the gate sees them after verification:
 * issued at now, valid for an hour. */
struct token_claims appfx_claims(const char *inst, const char *proj, const char *sub,
				 const char *jti, int64_t now);

#endif
