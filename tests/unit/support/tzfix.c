/* tzfix.c — see tzfix.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/timeutil.h"
#include "tzfix.h"

const char *tzfix_zoneinfo_dir(void)
{
	const char *d = getenv("TZDIR");
	return d && *d ? d : TZ_DEFAULT_DIR;
}

bool tzfix_have_zoneinfo(void)
{
	char p[512];
	snprintf(p, sizeof p, "%s/Europe/Zurich", tzfix_zoneinfo_dir());
	return access(p, R_OK) == 0;
}

int64_t tzfix_time(const char *s)
{
	int64_t us = 0;
	if (time_parse_rfc3339(s, strlen(s), &us) != 0)
		fail_msg("bad time literal %s", s);
	return us;
}

tz *tzfix_load(const char *name)
{
	tz *z = NULL;
	char eb[TZ_ERR_MAX] = "";
	allot_err rc = tz_load(name, &z, eb);
	if (rc != ALLOT_OK)
		fail_msg("tz_load(%s): %d %s", name, rc, eb);
	return z;
}
