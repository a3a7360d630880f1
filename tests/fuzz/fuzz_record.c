/* fuzz_record.c — differential libFuzzer target for the usage record's two
 * parsers: record_parse_text (the plain-JSON scan POST /v1/usage uses for
 * speed) against jansson + record_parse (the reference).  Whenever the scan
 * claims the text is plain, jansson must accept the same bytes, and both
 * paths must give the same outcome, the same reason and the same record,
 * canonical bytes and hash included.  Any difference aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ledger/record.h"

static void differ(const char *what)
{
	fprintf(stderr, "fuzz_record: the two parsers differ in %s\n", what);
	abort();
}

static void same_record(const struct usage_record *a, const struct usage_record *b)
{
#define SAME_STR(f) if (strcmp(a->f, b->f)) differ(#f)
#define SAME_VAL(f) if (a->f != b->f) differ(#f)
	SAME_STR(record_id);
	SAME_STR(provider);
	SAME_STR(institution);
	SAME_STR(project);
	SAME_STR(member);
	SAME_STR(resource);
	SAME_STR(cls);
	SAME_STR(model);
	SAME_STR(supersedes);
	SAME_VAL(has_seq);
	SAME_VAL(seq);
	SAME_VAL(quantity);
	SAME_VAL(start_us);
	SAME_VAL(end_us);
	SAME_VAL(kind);
	SAME_VAL(adjustment);
	SAME_VAL(has_sig);
	SAME_VAL(canonical_len);
#undef SAME_STR
#undef SAME_VAL
	if (a->has_sig && memcmp(a->sig, b->sig, sizeof a->sig))
		differ("sig");
	if ((a->canonical == NULL) != (b->canonical == NULL) ||
	    (a->canonical && memcmp(a->canonical, b->canonical, a->canonical_len)))
		differ("canonical bytes");
	if (a->canonical && memcmp(a->sha256, b->sha256, sizeof a->sha256))
		differ("sha256");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool require_sig = data[0] & 1; /* the first byte picks the mode */
	const char *text = (const char *)data + 1, *end = (const char *)data + size;
	const char *p = text;
	struct usage_record fast, ref;
	char rfast[320], rref[320];
	bool plain;
	rfast[0] = rref[0] = '\0';
	allot_err ef = record_parse_text(&p, end, require_sig, &fast, &plain, rfast, sizeof rfast);
	if (!plain) {
		if (p != text)
			differ("the position after a text that is not plain");
		record_release(&fast);
		return 0;
	}
	if (p <= text || p > end)
		differ("the position after the record");
	json_error_t jerr;
	json_t *obj = json_loadb(text, (size_t)(p - text), JSON_REJECT_DUPLICATES, &jerr);
	if (!obj)
		differ("whether the text is JSON (jansson refuses what the scan took as plain)");
	allot_err er = record_parse(obj, require_sig, &ref, rref, sizeof rref);
	json_decref(obj);
	if (ef != er)
		differ("the outcome");
	if (ef != ALLOT_OK) {
		if (strcmp(rfast, rref))
			differ("the reason");
	} else {
		same_record(&fast, &ref);
	}
	record_release(&fast);
	record_release(&ref);
	return 0;
}
