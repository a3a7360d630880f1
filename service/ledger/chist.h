/* chist.h — the charter history: every applied charter version, oldest
 * first, and which one is in force when (SPEC section 2, "Effective
 * dates").
 *
 * An entry is reference-counted: a request takes a reference with
 * chist_get() (or chist_in_force/latest/next) and drops it with
 * chist_put(), so a charter applied mid-request never changes what that
 * request sees and is freed only when the last request using the old one
 * finishes.  Every installed version holds a reference of the history's
 * until chist_free, so pointers from chist_at and chist_version stay valid
 * until then.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef ALLOT_LEDGER_CHIST_H
#define ALLOT_LEDGER_CHIST_H

#include <stdint.h>

#include "charter/charter.h"
#include "store/store.h"

/* An applied charter with its stored metadata. */
struct active_charter {
	struct charter *c;
	struct charter_row row;  /* text owned here */
	int refs;
};

struct chist;

/* NULL when out of memory. */
struct chist *chist_new(void);
/* Drops the history's references (entries still referenced by a request
 * live until chist_put).  NULL: nothing. */
void chist_free(struct chist *h);

/* Installs ac (charter and row owned by it from now on) as the newest
 * version: the history and the "latest" slot each hold a reference.
 * Sets ac->c->ledger_start_us (the first version's effective instant). */
void chist_install(struct chist *h, struct active_charter *ac);
/* Frees an entry that was never installed. */
void chist_entry_free(struct active_charter *ac);

/* The charter in force now: the newest applied version whose `effective`
 * has come; NULL when none has.  A version applied with a future
 * `effective` is scheduled: stored and listed, but admission, membership,
 * limits, periods and pricing follow the one in force until its instant.
 * A reference; drop it with chist_put. */
struct active_charter *chist_get(struct chist *h);
/* The same at instant t. */
struct active_charter *chist_in_force(struct chist *h, int64_t t);
/* The newest applied version, in force or scheduled (what a new charter
 * must succeed); a reference. */
struct active_charter *chist_latest(struct chist *h);
/* The first applied version newer than `version` (a reference), or NULL. */
struct active_charter *chist_next(struct chist *h, int64_t version);
/* Drops a reference; NULL: nothing. */
void chist_put(struct chist *h, struct active_charter *ac);

/* The charter in force at instant t without a reference: valid until
 * chist_free.  NULL when none. */
const struct active_charter *chist_at(struct chist *h, int64_t t);
/* The applied version numbered `version`, or NULL.  Valid until chist_free. */
const struct active_charter *chist_version(struct chist *h, int64_t version);

#endif
