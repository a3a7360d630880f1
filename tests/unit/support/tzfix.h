/* tzfix.h — helpers shared by the time-zone and period tests: the zoneinfo
 * directory, a skip when tzdata is absent, RFC 3339 literals, zone loading. */
#ifndef ALLOT_TESTS_TZFIX_H
#define ALLOT_TESTS_TZFIX_H

#include <stdbool.h>
#include <stdint.h>

#include "common/tz.h"

/* $TZDIR or TZ_DEFAULT_DIR. */
const char *tzfix_zoneinfo_dir(void);
/* Does the zoneinfo directory hold Europe/Zurich? */
bool tzfix_have_zoneinfo(void);
/* Microseconds of an RFC 3339 literal; fails the test on a bad one. */
int64_t tzfix_time(const char *s);
/* tz_load that fails the test on error. */
tz *tzfix_load(const char *name);

/* Skips the calling test unless the system zoneinfo has Europe/Zurich. */
#define NEED_ZONEINFO()                                                          \
	do {                                                                     \
		if (!tzfix_have_zoneinfo()) {                                    \
			print_message("SKIP: %s has no tzdata (install tzdata)\n", \
				      tzfix_zoneinfo_dir());                     \
			skip();                                                  \
		}                                                                \
	} while (0)

#endif
