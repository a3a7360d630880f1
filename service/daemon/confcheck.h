/* confcheck.h — `allotd --check`: everything SPEC section 1 names, checked
 * without serving and without changing anything: the charter, --listen,
 * the --db path or URI (scheme supported, reachable, schema), the keys
 * directory (modes, the deployment rule) and the charter's model files. */
#ifndef ALLOT_DAEMON_CONFCHECK_H
#define ALLOT_DAEMON_CONFCHECK_H

#include <stdio.h>

#include "daemon/app.h"

/* Prints the charter's lines ("charter OK" or FILE:LINE:COLUMN errors),
 * then one line per problem ("allotd --check: WHAT: problem") on err and
 * notes on out, and "configuration OK" on out when there is no problem.
 * Returns 0 when there is no problem, 1 otherwise. */
int confcheck_run(const struct app_config *cfg, FILE *out, FILE *err);

#endif
