/* fuzz_tz.c — libFuzzer target over the TZif parser (common/tz.c), which
 * reads files from the zoneinfo directory a charter names.  Any input must
 * be refused cleanly or give a zone whose queries are total and consistent:
 *   - tz_offset_at answers within +-26 h for instants across 1900..2200;
 *   - tz_to_local and tz_local_to_utc round-trip: the local time of the
 *     instant tz_local_to_utc returns is the one asked for, or (in a gap)
 *     the first valid instant after it, never earlier. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "common/tz.h"

#define H26 (26 * 3600)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tz *z = NULL;
	char err[TZ_ERR_MAX];
	if (tz_parse(data, size, "fuzz", &z, err) != ALLOT_OK)
		return 0;
	/* 1900-01-01 .. 2200-01-01 in uneven steps */
	for (int64_t t = -2208988800LL; t < 7258118400LL; t += 86400LL * 97 + 3631) {
		int64_t us = t * US_PER_SEC;
		int32_t off = tz_offset_at(z, us);
		if (off < -H26 || off > H26)
			abort();
		tz_civil c;
		tz_to_local(z, us, &c);
		if (c.offset != off)
			abort();
		int64_t back = 0;
		if (tz_local_to_utc(z, c.year, c.month, c.day, c.hour, c.minute, c.second, &back) !=
		    ALLOT_OK)
			abort();
		/* the earlier instant of a fold, never later than t */
		if (back > us - c.microsecond)
			abort();
	}
	tz_free(z);
	return 0;
}
