/* fuzz_json.c — libFuzzer target for the JSON body parser and the usage
 * record schema behind POST /v1/usage. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/json.h"
#include "ledger/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[256];
	json_t *j = NULL;
	if (json_parse((const char *)data, size, true, &j, msg, sizeof msg) != ALLOT_OK)
		return 0;
	json_t *recs = json_object_get(j, "records");
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r) {
		struct usage_record ur;
		record_parse(r, false, &ur, msg, sizeof msg);
		record_release(&ur);
	}
	if (json_is_object(j)) {
		struct usage_record ur;
		record_parse(j, true, &ur, msg, sizeof msg);
		record_release(&ur);
	}
	json_decref(j);
	return 0;
}
