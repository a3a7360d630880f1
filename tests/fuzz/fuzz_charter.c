/* fuzz_charter.c — libFuzzer target for the charter parser: charter_parse on
 * arbitrary bytes must never crash, hang or leak, and a charter it accepts
 * must survive every read-only use (JSON, diff, successor check, lookups).
 * Seeds: tests/fuzz/corpus/fuzz_charter/ (copies of policies/). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "charter/charter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *c = NULL;

	if (charter_parse("fuzz.yaml", (const char *)data, size, &c, &errs) == ALLOT_OK) {
		json_t *j = charter_to_json(c);
		json_decref(j);
		j = charter_diff(NULL, c);
		json_decref(j);
		j = charter_diff(c, c);
		json_decref(j);
		charter_check_successor(c, c, &errs);
		for (size_t i = 0; i < c->ninstitutions; i++) {
			const struct charter_institution *in = &c->institutions[i];
			if (charter_institution(c, in->id) == NULL)
				abort(); /* every id must be found */
			for (size_t k = 0; k < in->nprojects; k++) {
				const struct charter_project *p = &in->projects[k];
				if (charter_project(in, p->id) == NULL)
					abort();
				for (size_t m = 0; m < p->nmembers; m++)
					if (charter_member(p, p->members[m]) == NULL)
						abort();
			}
		}
		for (size_t i = 0; i < c->nmodels; i++) {
			if (charter_model(c, c->models[i].id) == NULL ||
			    charter_rate_for(c, "tokens_in", c->models[i].id, NULL) == NULL)
				abort(); /* a valid charter prices every model */
		}
		charter_free(c);
	} else if (errs.nerrors == 0 && !errs.oom) {
		abort(); /* a rejection always says why */
	}
	charter_errors_release(&errs);
	return 0;
}
