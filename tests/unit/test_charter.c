/* test_charter.c — the charter parser and model: every invalid case asserts
 * its exact "FILE:LINE:COLUMN: message" lines; valid cases check the model,
 * lookups, rates, JSON, the diff and the successor rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "charter/charter.h"
#include "common/money.h"

/* Lines 1..11 of most cases: a valid charter without institutions; providers
 * come last so that cases can append providers. */
#define HEAD                                                        \
	"charter: t\n"                                   /*  1 */ \
	"version: 1\n"                                   /*  2 */ \
	"effective: 2026-01-01T00:00:00Z\n"              /*  3 */ \
	"timezone: UTC\n"                                /*  4 */ \
	"rates:\n"                                       /*  5 */ \
	"  - {resource: tokens_in, credits: 0.0001}\n"   /*  6 */ \
	"  - {resource: tokens_out, credits: 0.0003}\n"  /*  7 */ \
	"models:\n"                                      /*  8 */ \
	"  - {id: stories, provider: local, file: s.gguf}\n" /*  9 */ \
	"providers:\n"                                   /* 10 */ \
	"  - {id: local, builtin: true}\n"               /* 11 */

/* Line 12 on: one institution "epfl" with one project "p". */
#define INST(alloc, extra)                                   \
	"institutions:\n"                         /* 12 */   \
	"  - id: epfl\n"                          /* 13 */   \
	"    allocation: " alloc "\n"             /* 14 */   \
	extra

#define MAXLINES 8

struct bad_case {
	const char *name;
	const char *yaml;
	const char *errors[MAXLINES];   /* exact lines, in order */
	const char *warnings[MAXLINES]; /* exact lines, in order (NULL: none) */
};

static const struct bad_case bad_cases[] = {
	{"seven fractional digits",
	 HEAD INST("{credits: 0.0000001, period: month}", ""),
	 {"t.yaml:14:27: 'credits' has more than 6 fractional digits"}},
	{"seven digits even if trailing zeros",
	 HEAD INST("{credits: 1.0000000, period: month}", ""),
	 {"t.yaml:14:27: 'credits' has more than 6 fractional digits"}},
	{"negative amount",
	 HEAD INST("{credits: -5, period: month}", ""),
	 {"t.yaml:14:27: 'credits' must not be negative"}},
	{"overflowing amount",
	 HEAD INST("{credits: 1000000000000.000001, period: month}", ""),
	 {"t.yaml:14:27: 'credits' is over the maximum of 1000000000000"}},
	{"huge amount",
	 HEAD INST("{credits: 99999999999999999999999999, period: month}", ""),
	 {"t.yaml:14:27: 'credits' is over the maximum of 1000000000000"}},
	{"amount not a decimal",
	 HEAD INST("{credits: 1e5, period: month}", ""),
	 {"t.yaml:14:27: 'credits' must be a decimal number"}},
	{"quoted amount",
	 HEAD INST("{credits: \"5\", period: month}", ""),
	 {"t.yaml:14:27: 'credits' must be a decimal number, not a quoted string"}},
	{"unknown key",
	 HEAD INST("{credits: 5, period: month}", "    colour: blue\n"),
	 {"t.yaml:15:5: unknown key 'colour' in institution"}},
	{"unknown top-level key",
	 "pools: 5\n" HEAD,
	 {"t.yaml:1:1: unknown key 'pools' in charter"}},
	{"wrong types",
	 "charter: t\nversion: seven\neffective: 2026-01-01T00:00:00Z\ntimezone: [UTC]\n"
	 "providers: {id: x}\n",
	 {"t.yaml:2:10: 'version' must be a positive integer",
	  "t.yaml:4:11: 'timezone' must be a string",
	  "t.yaml:5:12: 'providers' must be a list"}},
	{"wrong types inside",
	 HEAD INST("5", "    members: x\n    projects:\n      - id: p\n"
		   "        allocation: {credits: 1, period: month}\n"
		   "        members: alice\n      - 7\n"),
	 {"t.yaml:14:17: 'allocation' must be a mapping",
	  "t.yaml:15:5: unknown key 'members' in institution",
	  "t.yaml:19:18: 'members' must be a list",
	  "t.yaml:20:9: 'projects' entries must be a mapping"}},
	{"bool and limits",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
	 "providers:\n  - {id: local, builtin: yes}\n"
	 "institutions:\n  - id: a\n    allocation: {credits: 1, period: day}\n"
	 "    limits: {requests_per_minute: 0, tokens_per_minute: 01,"
	 " concurrent_requests: 1000000001}\n",
	 {"t.yaml:6:26: 'builtin' must be true or false",
	  "t.yaml:10:35: 'requests_per_minute' must be an integer between 1 and 1000000000",
	  "t.yaml:10:57: 'tokens_per_minute' must be an integer between 1 and 1000000000",
	  "t.yaml:10:82: 'concurrent_requests' must be an integer between 1 and 1000000000"}},
	{"missing required keys",
	 "charter: t\nversion: 1\ninstitutions:\n  - name: x\n",
	 {"t.yaml:1:1: missing required key 'effective' in charter",
	  "t.yaml:1:1: missing required key 'timezone' in charter",
	  "t.yaml:4:5: missing required key 'id' in institution",
	  "t.yaml:4:5: missing required key 'allocation' in institution"}},
	{"duplicate key",
	 "charter: t\ncharter: u\n" HEAD,
	 {"t.yaml:2:1: duplicate key 'charter'", "t.yaml:3:1: duplicate key 'charter'"}},
	{"duplicate institution, project and member ids",
	 HEAD INST("{credits: 10, period: month}",
		   "    projects:\n"
		   "      - {id: p, allocation: {credits: 1, period: month},"
		   " members: [a@x.ch, b@x.ch, a@x.ch]}\n"
		   "      - {id: p, allocation: {credits: 1, period: month}}\n"
		   "  - id: epfl\n    allocation: {credits: 1, period: month}\n"),
	 {"t.yaml:16:84: duplicate member 'a@x.ch' (first at 16:68)",
	  "t.yaml:17:14: duplicate project id 'p' (first at 16:14)",
	  "t.yaml:18:9: duplicate institution id 'epfl' (first at 13:9)"}},
	{"duplicate provider, model and rate",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
	 "rates:\n  - {resource: tokens_in, credits: 1}\n  - {resource: tokens_out, credits: 1}\n"
	 "  - {resource: tokens_in, credits: 2}\n"
	 "  - {resource: gpu_seconds, class: h100, credits: 2}\n"
	 "  - {resource: gpu_seconds, class: h100, credits: 3}\n"
	 "providers:\n  - {id: local, builtin: true}\n  - {id: local}\n"
	 "models:\n  - {id: m, provider: local, file: m.gguf}\n"
	 "  - {id: m, provider: local, file: n.gguf}\n",
	 {"t.yaml:8:5: duplicate rate for resource 'tokens_in' (first at 6:5)",
	  "t.yaml:10:5: duplicate rate for resource 'gpu_seconds', class 'h100' (first at 9:5)",
	  "t.yaml:13:10: duplicate provider id 'local' (first at 12:10)",
	  "t.yaml:16:10: duplicate model id 'm' (first at 15:10)"}},
	{"dangling references",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
	 "rates:\n  - {resource: tokens_in, credits: 1}\n  - {resource: tokens_out, credits: 1}\n"
	 "  - {resource: tokens_out, model: ghost, credits: 1}\n"
	 "providers:\n  - {id: local, builtin: true}\n"
	 "models:\n  - {id: m, provider: nobody, file: m.gguf}\n"
	 "institutions:\n  - id: a\n    allocation: {credits: 1, period: day}\n"
	 "    models: [m, phantom]\n",
	 {"t.yaml:8:35: rate refers to unknown model 'ghost'",
	  "t.yaml:12:23: model 'm' refers to unknown provider 'nobody'",
	  "t.yaml:16:17: institution 'a' refers to unknown model 'phantom'"}},
	{"model without a rate",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
	 "rates:\n  - {resource: tokens_in, model: a, credits: 1}\n"
	 "  - {resource: tokens_out, model: a, credits: 1}\n"
	 "providers:\n  - {id: local, builtin: true}\n"
	 "models:\n  - {id: a, provider: local, file: a.gguf}\n"
	 "  - {id: b, provider: local, file: b.gguf}\n",
	 {"t.yaml:12:10: model 'b' has no rate for tokens_in",
	  "t.yaml:12:10: model 'b' has no rate for tokens_out"}},
	{"provider resource without a rate",
	 HEAD "  - {id: cscs, keys: [\"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"],"
	 " resources: [gpu_seconds]}\n",
	 {"t.yaml:12:92: provider 'cscs' lists resource 'gpu_seconds' but no rate prices it"}},
	{"project exceeding its institution",
	 HEAD INST("{credits: 100, period: month}",
		   "    projects:\n"
		   "      - {id: a, allocation: {credits: 60, period: month}}\n"
		   "      - {id: b, allocation: {credits: 50, period: month}}\n"),
	 {"t.yaml:17:39: allocations of the projects of institution 'epfl' exceed its "
	  "100 credits per month"}},
	{"weekly project exceeding a monthly institution",
	 HEAD INST("{credits: 100, period: month}",
		   "    projects:\n"
		   "      - {id: a, allocation: {credits: 24, period: week}}\n"),
	 {"t.yaml:16:39: allocations of the projects of institution 'epfl' exceed its "
	  "100 credits per month"}},
	{"member allocation over the project's",
	 HEAD INST("{credits: 100, period: month}",
		   "    projects:\n"
		   "      - id: a\n        allocation: {credits: 10, period: month}\n"
		   "        member_allocation: {credits: 4, period: day}\n"),
	 {"t.yaml:18:38: member_allocation of project 'a' exceeds the project's 10 credits "
	  "per month"}},
	{"rollover and grace out of range",
	 HEAD INST("{credits: 1, period: month, rollover: 1.01}",
		   "    overage: {mode: soft, grace_percent: 100.5}\n"
		   "  - id: b\n    allocation: {credits: 1, period: total, rollover: 0.5}\n"
		   "    overage: {mode: hard, grace_percent: 5}\n"
		   "  - id: c\n    allocation: {credits: 1, period: day}\n"
		   "    overage: {mode: lax}\n"),
	 {"t.yaml:14:55: 'rollover' must be a decimal between 0 and 1 with at most 6 "
	  "fractional digits",
	  "t.yaml:15:42: 'grace_percent' must be a decimal between 0 and 100 with at most 4 "
	  "fractional digits",
	  "t.yaml:17:55: 'rollover' cannot be used with period total",
	  "t.yaml:18:42: 'grace_percent' applies only to overage mode soft",
	  "t.yaml:21:21: 'mode' must be hard or soft"}},
	{"invalid ids",
	 "charter: Swiss_AI\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
	 "institutions:\n  - id: EPFL\n    allocation: {credits: 1, period: day}\n"
	 "    projects:\n      - {id: -x, allocation: {credits: 1, period: day},"
	 " members: [\"a b\", alice@epfl.ch]}\n",
	 {"t.yaml:1:10: invalid charter id 'Swiss_AI' (expected [a-z0-9-]{1,64})",
	  "t.yaml:6:9: invalid institution id 'EPFL' (expected [a-z0-9][a-z0-9._-]{0,63})",
	  "t.yaml:9:14: invalid project id '-x' (expected [a-z0-9][a-z0-9._-]{0,63})",
	  "t.yaml:9:67: invalid member id 'a b' (expected [a-z0-9][a-z0-9._+@-]{0,127})"}},
	{"timezones and effective",
	 "charter: t\nversion: 1\neffective: 2026-02-30T00:00:00Z\ntimezone: Europe/Zurch\n",
	 {"t.yaml:3:12: 'effective' must be an RFC 3339 time such as 2026-12-01T00:00:00Z, "
	  "not '2026-02-30T00:00:00Z'",
	  "t.yaml:4:11: unknown timezone 'Europe/Zurch'"}},
	{"timezone path",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: ../../etc/passwd\n",
	 {"t.yaml:4:11: invalid timezone '../../etc/passwd' (expected an IANA name such as "
	  "Europe/Zurich)"}},
	{"leap-second timezone (validated as quotas load it)",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: right/UTC\n",
	 {"t.yaml:4:11: timezone 'right/UTC' cannot be used: right/UTC: leap-second zones are not "
	  "supported"}},
	{"absolute timezone",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: /etc/localtime\n",
	 {"t.yaml:4:11: invalid timezone '/etc/localtime' (expected an IANA name such as "
	  "Europe/Zurich)"}},
	/* Keys are read by the one strict base64 decoder (common/b64): the
	 * padded form `allot keygen` prints; without its '=' it is refused. */
	{"bad keys",
	 HEAD "  - id: cscs\n    keys: [\"ed25519:AAAA\", \"rsa:x\","
	 " \"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo\","
	 " \"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"]\n",
	 {"t.yaml:13:12: invalid key 'ed25519:AAAA' (expected ed25519: and the base64 of a "
	  "32-byte public key)",
	  "t.yaml:13:28: invalid key 'rsa:x' (expected ed25519: and the base64 of a "
	  "32-byte public key)",
	  "t.yaml:13:37: invalid key 'ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo' "
	  "(expected ed25519: and the base64 of a 32-byte public key)"}},
	{"model file and url rules",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
	 "rates:\n  - {resource: tokens_in, credits: 1}\n  - {resource: tokens_out, credits: 1}\n"
	 "providers:\n  - {id: local, builtin: true}\n"
	 "  - {id: r, keys: [\"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"]}\n"
	 "models:\n"
	 "  - {id: x, provider: r, file: x.gguf}\n"
	 "  - {id: y, provider: local, url: \"http://h/v1\"}\n"
	 "  - {id: z, provider: local}\n"
	 "  - {id: w, provider: local, file: ../w.gguf, upstream_model: w}\n"
	 "  - {id: v, provider: r, url: \"http://\", file: v.gguf}\n",
	 {"t.yaml:12:32: 'file' needs a builtin provider ('r' is remote; use 'url')",
	  "t.yaml:13:35: 'url' needs a remote provider ('local' is builtin; use 'file')",
	  "t.yaml:14:5: model 'z' needs 'file' or 'url'",
	  "t.yaml:15:36: invalid model file '../w.gguf' (expected a file name in the models "
	  "directory, without '/')",
	  "t.yaml:15:63: 'upstream_model' needs 'url'",
	  "t.yaml:16:31: invalid url 'http://' (expected http:// or https:// and a host)",
	  "t.yaml:16:31: model 'v' has both 'file' and 'url'",
	  "t.yaml:16:48: 'file' needs a builtin provider ('r' is remote; use 'url')"}},
	{"yaml syntax error",
	 "charter: t\nversion: [1, 2\n",
	 {"t.yaml:3:1: YAML syntax error: did not find expected ',' or ']' (while parsing a "
	  "flow sequence at line 2 column 10)"}},
	{"aliases, anchors, merge keys and tags",
	 HEAD INST("&a {credits: 1, period: month}",
		   "  - id: b\n    allocation: *a\n  - <<: {id: c}\n"
		   "    allocation: !!map {credits: 1, period: month}\n"),
	 {"t.yaml:14:17: YAML anchors are not allowed",
	  "t.yaml:16:17: YAML aliases are not allowed",
	  "t.yaml:17:5: YAML merge keys are not allowed",
	  "t.yaml:17:5: missing required key 'id' in institution",
	  "t.yaml:18:17: YAML tags are not allowed"}},
	{"empty", "", {"t.yaml:1:1: the charter is empty"}},
	{"only a comment", "# nothing\n", {"t.yaml:1:1: the charter is empty"}},
	{"not a mapping", "- 1\n", {"t.yaml:1:1: a charter must be a mapping"}},
	{"two documents", HEAD "---\n" HEAD, {"t.yaml:12:1: only one YAML document is allowed"}},
	{"NUL byte", "charter: t\n\x01", {"t.yaml:2:1: YAML syntax error: control characters "
				       "are not allowed"}},
	{"too deep", "a: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]\n",
	 {"t.yaml:1:19: nesting deeper than 16 levels"}},
	{"alerts",
	 HEAD INST("{credits: 1, period: month}", "    alerts: [50, 50, 0, 80, x]\n"),
	 {"t.yaml:15:18: 'alerts' must be in increasing order without repeats",
	  "t.yaml:15:22: each of 'alerts' must be an integer between 1 and 1000",
	  "t.yaml:15:29: each of 'alerts' must be an integer between 1 and 1000"}},
	{"builtin twice and keys on builtin",
	 HEAD "  - {id: other, builtin: true,"
	 " keys: [\"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"]}\n",
	 {"t.yaml:12:10: only one provider may be builtin ('local' at 11:10 is)",
	  "t.yaml:12:38: builtin provider 'other' must not have keys"}},
	{"one key, two providers",
	 HEAD "  - {id: a, keys: [\"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"]}\n"
	 "  - {id: b, keys: [\"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"]}\n",
	 {"t.yaml:13:20: duplicate key (first at 12:20)"}},
	{"multiple errors at once",
	 "charter: t\nversion: 0\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
	 "pool: 0.1234567\nrates:\n  - {resource: Tokens, credits: -1}\n"
	 "institutions:\n  - id: a\n    allocation: {credits: 1, period: month, extra: 1}\n",
	 {"t.yaml:2:10: 'version' must be a positive integer",
	  "t.yaml:5:7: 'pool' has more than 6 fractional digits",
	  "t.yaml:7:16: invalid resource 'Tokens' (expected [a-z][a-z0-9_]{0,63})",
	  "t.yaml:7:33: 'credits' must not be negative",
	  "t.yaml:10:45: unknown key 'extra' in allocation"}},
	{"control characters and long text",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
	 "title: \"a\\tb\"\n",
	 {"t.yaml:5:8: 'title' must not contain control characters"}},
	{"soft without grace",
	 HEAD INST("{credits: 1, period: month}", "    overage: {mode: soft}\n"),
	 {"t.yaml:15:14: overage mode soft needs 'grace_percent'"}},
	{"late grace",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
	 "late_grace: {days: 91, hours: 1}\n",
	 {"t.yaml:5:20: 'days' must be an integer between 0 and 90",
	  "t.yaml:5:24: unknown key 'hours' in late_grace"}},
	{"public is a boolean",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
	 "public: yes\n",
	 {"t.yaml:5:9: 'public' must be true or false"}},
	{"non-canonical and url-safe base64 keys",
	 HEAD "  - id: cscs\n    keys: [\"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURp=\",\n"
	 "           \"ed25519:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=\",\n"
	 "           \"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo==\"]\n",
	 {"t.yaml:13:12: invalid key 'ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURp=' "
	  "(expected ed25519: and the base64 of a 32-byte public key)",
	  "t.yaml:14:12: invalid key 'ed25519:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=' "
	  "(expected ed25519: and the base64 of a 32-byte public key)",
	  "t.yaml:15:12: invalid key 'ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo==' "
	  "(expected ed25519: and the base64 of a 32-byte public key)"}},
	{"columns count characters, not bytes",
	 "{charter: t, title: \"\xc3\xbc\xc3\xbc\xc3\xbc\", colour: 1, version: 1,"
	 " effective: 2026-01-01T00:00:00Z, timezone: UTC}\n",
	 {"t.yaml:1:28: unknown key 'colour' in charter"}},
	{"quoted key with a NUL byte, long values cut",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
	 "\"a\\0b\": 1\n"
	 "unit: 01234567890123456789012345678901234567890123456789012345678901234567890123456789"
	 "01234567890123456789012345678901234567890123456789012345678901234567890123456789"
	 "01234567890123456789012345678901234567890123456789012345678901234567890123456789"
	 "01234567890123456789012345678901234567890123456789012345678901234567890123456789\n"
	 "\"\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc"
	 "\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc"
	 "\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc"
	 "\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\\u00fc\": 1\n",
	 {"t.yaml:5:1: unknown key 'a\\x00b' in charter",
	  "t.yaml:6:7: 'unit' is longer than 256 bytes",
	  "t.yaml:7:1: unknown key '""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""\xc3\xbc""...' in charter"}},
	/* warnings only */
	{"total and periodic allocations are not compared (a warning)",
	 HEAD INST("{credits: 100, period: month}",
		   "    projects:\n"
		   "      - id: a\n        allocation: {credits: 1000, period: total}\n"
		   "        member_allocation: {credits: 1, period: day}\n"),
	 {NULL},
	 {"t.yaml:17:31: warning: allocation of project 'a' (period total) is not compared "
	  "with institution 'epfl' (period month)",
	  "t.yaml:18:38: warning: member_allocation of project 'a' (period day) is not compared "
	  "with the project's (period total)"}},
	{"pool oversubscribed (a warning)",
	 "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\npool: 100\n"
	 "institutions:\n  - {id: a, allocation: {credits: 1200, period: year}}\n"
	 "  - {id: b, allocation: {credits: 1, period: day}}\n",
	 {NULL},
	 {"t.yaml:5:7: warning: pool oversubscribed: institutions are allocated "
	  "130.436875 credits per month on average, more than the pool of 100"}},
	{"webhook: unknown event",
	 HEAD "webhooks:\n  - {url: \"http://h/x\", events: [alert, bogus]}\n",
	 {"t.yaml:13:41: unknown webhook event 'bogus' (expected alert, overage, charter or settlement_failed)"}},
	{"webhook: event twice",
	 HEAD "webhooks:\n  - {url: \"http://h/x\", events: [charter, charter]}\n",
	 {"t.yaml:13:43: webhook event 'charter' is listed twice"}},
	{"webhook: no events",
	 HEAD "webhooks:\n  - {url: \"http://h/x\", events: []}\n",
	 {"t.yaml:13:33: 'events' must name at least one of alert, overage, charter, settlement_failed"}},
	{"webhook: not http",
	 HEAD "webhooks:\n  - {url: \"ftp://h/x\", events: [alert]}\n",
	 {"t.yaml:13:11: invalid webhook url 'ftp://h/x' (expected http:// or https:// and a host)"}},
	{"webhook: url twice",
	 HEAD "webhooks:\n  - {url: \"http://h/x\", events: [alert]}\n"
	 "  - {url: \"http://h/x\", events: [overage]}\n",
	 {"t.yaml:14:5: webhook url 'http://h/x' is listed twice (list all its events in one entry)"}},
	{"webhook: unknown key, missing events",
	 HEAD "webhooks:\n  - {url: \"http://h/x\", secret: s}\n",
	 {"t.yaml:13:5: missing required key 'events' in webhook", "t.yaml:13:25: unknown key 'secret' in webhook"}},
};

/* Returns true when the case produced exactly what it expects. */
static bool run_bad_case(const struct bad_case *bc)
{
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *c = NULL;
	size_t nerr = 0, nwarn = 0;
	while (nerr < MAXLINES && bc->errors[nerr])
		nerr++;
	while (nwarn < MAXLINES && bc->warnings[nwarn])
		nwarn++;
	allot_err rc = charter_parse("t.yaml", bc->yaml, strlen(bc->yaml), &c, &errs);
	bool same = errs.nerrors == nerr && errs.nwarnings == nwarn;
	for (size_t i = 0; same && i < nerr; i++)
		same = strcmp(errs.errors[i].text, bc->errors[i]) == 0;
	for (size_t i = 0; same && i < nwarn; i++)
		same = strcmp(errs.warnings[i].text, bc->warnings[i]) == 0;
	if (nerr)
		same = same && rc == ALLOT_E_UNPROCESSABLE && c == NULL;
	else
		same = same && rc == ALLOT_OK && c != NULL;
	if (!same) {
		fprintf(stderr, "case '%s' (rc %d): got\n", bc->name, (int)rc);
		charter_errors_print(&errs, stderr);
	}
	charter_free(c);
	charter_errors_release(&errs);
	return same;
}

static void test_bad_cases(void **state)
{
	(void)state;
	size_t n = sizeof bad_cases / sizeof bad_cases[0];
	size_t failed = 0;
	for (size_t i = 0; i < n; i++)
		failed += !run_bad_case(&bad_cases[i]);
	assert_int_equal(failed, 0);
	printf("charter: %zu invalid-input cases\n", n);
}

/* ---- a valid charter, checked field by field ----------------------------- */

static const char good_yaml[] =
	"charter: swiss-public-ai\n"
	"version: 7\n"
	"title: Swiss public AI compute charter\n"
	"effective: 2026-12-01T00:00:00Z\n"
	"timezone: Europe/Zurich\n"
	"unit: credit\n"
	"pool: 1000000\n"
	"late_grace: {days: 5}\n"
	"rates:\n"
	"  - {resource: tokens_in,  model: stories, credits: 0.0001}\n"
	"  - {resource: tokens_out, model: stories, credits: 0.0003}\n"
	"  - {resource: tokens_in, credits: 0.000002}\n"
	"  - {resource: tokens_out, credits: 0.000008}\n"
	"  - {resource: gpu_seconds, class: h100, credits: 0.03}\n"
	"  - {resource: gpu_seconds, credits: 0.01}\n"
	"  - {resource: cpu_seconds, credits: 0.0001}\n"
	"providers:\n"
	"  - id: local\n"
	"    builtin: true\n"
	"  - id: cscs\n"
	"    name: Swiss National Supercomputing Centre\n"
	"    keys: [\"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"]\n"
	"    resources: [gpu_seconds, cpu_seconds]\n"
	"models:\n"
	"  - {id: stories, provider: local, file: stories260K.gguf}\n"
	"  - {id: apertus-8b, provider: cscs, url: \"http://10.0.0.5:8000/v1\","
	" upstream_model: swiss-ai/Apertus-8B}\n"
	"institutions:\n"
	"  - id: epfl\n"
	"    name: EPFL\n"
	"    allocation: {credits: 100000, period: month, rollover: 0.25}\n"
	"    limits: {requests_per_minute: 600, tokens_per_minute: 200000,\n"
	"             max_tokens_per_request: 4096, concurrent_requests: 16}\n"
	"    overage: {mode: hard}\n"
	"    alerts: [80, 100]\n"
	"    models: [stories, apertus-8b]\n"
	"    projects:\n"
	"      - id: climate\n"
	"        allocation: {credits: 20000, period: month}\n"
	"        member_allocation: {credits: 1000.5, period: week}\n"
	"        members: [alice@epfl.ch, bob@epfl.ch]\n"
	"  - id: unige\n"
	"    allocation: {credits: 5000, period: quarter}\n"
	"    overage: {mode: soft, grace_percent: 12.5}\n";

static struct charter *parse_ok(const char *yaml)
{
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *c = NULL;
	allot_err rc = charter_parse("good.yaml", yaml, strlen(yaml), &c, &errs);
	if (rc != ALLOT_OK)
		charter_errors_print(&errs, stderr);
	assert_int_equal(rc, ALLOT_OK);
	assert_int_equal(errs.nerrors, 0);
	charter_errors_release(&errs);
	return c;
}

static void test_good_model(void **state)
{
	(void)state;
	struct charter *c = parse_ok(good_yaml);
	assert_string_equal(c->id, "swiss-public-ai");
	assert_int_equal(c->version, 7);
	assert_string_equal(c->timezone, "Europe/Zurich");
	assert_int_equal(c->effective_us, 1796083200LL * 1000000);
	assert_true(c->has_pool);
	assert_int_equal(c->pool, 1000000 * MONEY_SCALE);
	assert_int_equal(c->late_grace_days, 5);
	assert_int_equal(c->late_grace_us, 5LL * 86400 * 1000000);
	assert_false(c->is_public); /* absent: the commons publishes nothing */
	assert_int_equal(c->nrates, 7);
	assert_int_equal(c->rates[0].credits, 100);
	assert_int_equal(c->rates[4].credits, 30000);
	assert_int_equal(c->nproviders, 2);
	assert_true(c->providers[0].builtin);
	assert_string_equal(c->providers[0].name, "local");
	assert_int_equal(c->providers[1].nkeys, 1);
	assert_int_equal(c->providers[1].keys[0].pub[0], 0xd7);
	assert_int_equal(c->providers[1].keys[0].pub[31], 0x1a);
	assert_int_equal(c->nmodels, 2);
	assert_ptr_equal(c->models[1].provider, &c->providers[1]);
	assert_string_equal(c->models[1].upstream_model, "swiss-ai/Apertus-8B");
	assert_null(c->models[0].url);

	const struct charter_institution *epfl = charter_institution(c, "epfl");
	assert_non_null(epfl);
	assert_int_equal(epfl->allocation.credits, 100000 * MONEY_SCALE);
	assert_int_equal(epfl->allocation.period, CHARTER_PERIOD_MONTH);
	assert_int_equal(epfl->allocation.rollover_ppm, 250000);
	assert_int_equal(epfl->limits.max_tokens_per_request, 4096);
	assert_int_equal(epfl->overage.mode, CHARTER_OVERAGE_HARD);
	assert_int_equal(epfl->nalerts, 2);
	assert_int_equal(epfl->alerts[1], 100);
	const struct charter_project *cl = charter_project(epfl, "climate");
	assert_non_null(cl);
	assert_true(cl->has_member_allocation);
	assert_int_equal(cl->member_allocation.credits, 1000500000);
	assert_int_equal(cl->limits.requests_per_minute, CHARTER_UNSET);
	assert_string_equal(charter_member(cl, "bob@epfl.ch"), "bob@epfl.ch");
	assert_null(charter_member(cl, "mallory@epfl.ch"));
	assert_null(charter_project(epfl, "nope"));

	const struct charter_institution *unige = charter_institution(c, "unige");
	assert_non_null(unige);
	assert_int_equal(unige->overage.mode, CHARTER_OVERAGE_SOFT);
	assert_int_equal(unige->overage.grace_ppm, 125000);
	assert_true(unige->all_models);
	assert_true(charter_institution_allows_model(c, unige, "apertus-8b"));
	assert_false(charter_institution_allows_model(c, unige, "gpt-9"));
	assert_true(charter_institution_allows_model(c, epfl, "stories"));
	assert_null(charter_institution(c, "ethz"));

	assert_non_null(charter_provider(c, "cscs"));
	assert_null(charter_provider(c, "aws"));
	assert_ptr_equal(charter_provider_by_key(c, c->providers[1].keys[0].pub),
			 &c->providers[1]);
	assert_true(charter_provider_has_resource(c, &c->providers[1], "cpu_seconds"));
	assert_false(charter_provider_has_resource(c, &c->providers[1], "tokens_in"));
	assert_true(charter_provider_has_resource(c, &c->providers[0], "tokens_out"));
	assert_false(charter_provider_has_resource(c, &c->providers[0], "gpu_seconds"));
	assert_non_null(charter_model(c, "apertus-8b"));
	charter_free(c);
}

static void test_webhooks(void **state)
{
	(void)state;
	struct charter *c = parse_ok(HEAD "webhooks:\n"
				     "  - {url: \"https://ops.example.org/a\", events: [alert, overage]}\n"
				     "  - url: \"http://127.0.0.1:9/b\"\n"
				     "    events: [settlement_failed, charter]\n");
	assert_int_equal(c->nwebhooks, 2);
	assert_string_equal(c->webhooks[0].url, "https://ops.example.org/a");
	assert_int_equal(c->webhooks[0].events, CHARTER_EV_ALERT | CHARTER_EV_OVERAGE);
	assert_int_equal(c->webhooks[1].events, CHARTER_EV_SETTLEMENT_FAILED | CHARTER_EV_CHARTER);
	assert_string_equal(charter_event_name(CHARTER_EV_SETTLEMENT_FAILED), "settlement_failed");
	charter_free(c);
	c = parse_ok(HEAD);
	assert_int_equal(c->nwebhooks, 0);
	charter_free(c);
}

static void test_rate_for(void **state)
{
	(void)state;
	struct charter *c = parse_ok(good_yaml);
	static const struct {
		const char *res, *model, *cls;
		int64_t want; /* -1: no rate */
	} cases[] = {
		{"tokens_in", "stories", NULL, 100},
		{"tokens_out", "stories", NULL, 300},
		{"tokens_in", "apertus-8b", NULL, 2},
		{"tokens_out", NULL, NULL, 8},
		{"gpu_seconds", NULL, "h100", 30000},
		{"gpu_seconds", NULL, "a100", 10000},
		{"gpu_seconds", "stories", "h100", 30000},
		{"gpu_seconds", NULL, NULL, 10000},
		{"cpu_seconds", NULL, NULL, 100},
		{"disk_bytes", NULL, NULL, -1},
		{NULL, NULL, NULL, -1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct charter_rate *r =
			charter_rate_for(c, cases[i].res, cases[i].model, cases[i].cls);
		if (cases[i].want < 0) {
			assert_null(r);
		} else {
			assert_non_null(r);
			assert_int_equal(r->credits, cases[i].want);
		}
	}
	charter_free(c);
}

static void test_allocation_cmp(void **state)
{
	(void)state;
	static const struct {
		int64_t a;
		enum charter_period pa;
		int64_t b;
		enum charter_period pb;
		int want;
	} cases[] = {
		{10, CHARTER_PERIOD_MONTH, 10, CHARTER_PERIOD_MONTH, 0},
		{12, CHARTER_PERIOD_MONTH, 144, CHARTER_PERIOD_YEAR, 0},
		{12, CHARTER_PERIOD_MONTH, 143, CHARTER_PERIOD_YEAR, 1},
		{3, CHARTER_PERIOD_MONTH, 1, CHARTER_PERIOD_QUARTER, 1},
		{7, CHARTER_PERIOD_DAY, 49, CHARTER_PERIOD_WEEK, 0},
		{1, CHARTER_PERIOD_DAY, 30, CHARTER_PERIOD_MONTH, 1},
		{1, CHARTER_PERIOD_DAY, 31, CHARTER_PERIOD_MONTH, -1},
		{5, CHARTER_PERIOD_TOTAL, 6, CHARTER_PERIOD_TOTAL, -1},
		{5, CHARTER_PERIOD_TOTAL, 6, CHARTER_PERIOD_YEAR, 2},
		{MONEY_MAX, CHARTER_PERIOD_DAY, MONEY_MAX, CHARTER_PERIOD_YEAR, 1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct charter_allocation a = {.credits = cases[i].a, .period = cases[i].pa};
		struct charter_allocation b = {.credits = cases[i].b, .period = cases[i].pb};
		assert_int_equal(charter_allocation_cmp(&a, &b), cases[i].want);
	}
}

static void test_json(void **state)
{
	(void)state;
	struct charter *c = parse_ok(good_yaml);
	json_t *j = charter_to_json(c);
	assert_non_null(j);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(s);
	assert_non_null(strstr(s, "\"effective\":\"2026-12-01T00:00:00Z\""));
	assert_non_null(strstr(s, "\"pool\":\"1000000\""));
	assert_non_null(strstr(s, "{\"class\":null,\"credits\":\"0.0001\",\"model\":\"stories\""));
	assert_non_null(strstr(s, "\"allocation\":{\"credits\":\"100000\",\"period\":\"month\","
				  "\"rollover\":\"0.25\"}"));
	assert_non_null(strstr(s, "\"overage\":{\"grace_percent\":\"12.5\",\"mode\":\"soft\"}"));
	assert_non_null(strstr(s, "\"member_allocation\":{\"credits\":\"1000.5\""));
	assert_non_null(strstr(s, "\"keys\":[\"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"]"));
	free(s);
	json_decref(j);
	charter_free(c);
}

static char *replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	assert_non_null(at);
	size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
	char *r = malloc(n);
	assert_non_null(r);
	snprintf(r, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
	return r;
}

static void test_diff(void **state)
{
	(void)state;
	struct charter *a = parse_ok(good_yaml);
	char *t1 = replace(good_yaml, "version: 7", "version: 8");
	char *t2 = replace(t1, "{credits: 20000, period: month}", "{credits: 25000.25, period: month}");
	char *t3 = replace(t2, "  - id: unige\n    allocation: {credits: 5000, period: quarter}\n"
			       "    overage: {mode: soft, grace_percent: 12.5}\n",
			   "  - id: ethz\n    allocation: {credits: 10, period: day}\n");
	struct charter *b = parse_ok(t3);
	json_t *d = charter_diff(a, b);
	assert_non_null(d);
	char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	const char *want =
		"{\"from_version\":7,\"institutions\":["
		"{\"allocation\":{\"delta\":\"0\",\"from\":{\"credits\":\"100000\",\"period\":\"month\","
		"\"rollover\":\"0.25\"},\"to\":{\"credits\":\"100000\",\"period\":\"month\","
		"\"rollover\":\"0.25\"}},\"change\":\"changed\",\"id\":\"epfl\",\"projects\":["
		"{\"allocation\":{\"delta\":\"+5000.25\",\"from\":{\"credits\":\"20000\","
		"\"period\":\"month\",\"rollover\":\"0\"},\"to\":{\"credits\":\"25000.25\","
		"\"period\":\"month\",\"rollover\":\"0\"}},\"change\":\"changed\",\"id\":\"climate\"}]},"
		"{\"allocation\":{\"from\":null,\"to\":{\"credits\":\"10\",\"period\":\"day\","
		"\"rollover\":\"0\"}},\"change\":\"added\",\"id\":\"ethz\",\"projects\":[]},"
		"{\"allocation\":{\"from\":{\"credits\":\"5000\",\"period\":\"quarter\","
		"\"rollover\":\"0\"},\"to\":null},\"change\":\"removed\",\"id\":\"unige\","
		"\"projects\":[]}],\"to_version\":8}";
	if (strcmp(s, want) != 0)
		fprintf(stderr, "diff: %s\n", s);
	assert_string_equal(s, want);
	free(s);
	json_decref(d);

	/* nothing changed: no institutions; first charter: everything added */
	d = charter_diff(a, a);
	assert_int_equal(json_array_size(json_object_get(d, "institutions")), 0);
	json_decref(d);
	d = charter_diff(NULL, a);
	assert_true(json_is_null(json_object_get(d, "from_version")));
	assert_int_equal(json_array_size(json_object_get(d, "institutions")), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(d, "pool"), "to")),
			    "1000000");
	json_decref(d);

	free(t1);
	free(t2);
	free(t3);
	charter_free(a);
	charter_free(b);
}

static void test_successor(void **state)
{
	(void)state;
	struct charter *a = parse_ok(good_yaml);
	static const struct {
		const char *from, *to;
		const char *want_err, *want_warn;
	} cases[] = {
		{"version: 7", "version: 8", NULL, NULL},
		{"version: 7", "version: 7",
		 "good.yaml:2:10: version 7 does not increase the active version 7", NULL},
		{"version: 7", "version: 3",
		 "good.yaml:2:10: version 3 does not increase the active version 7", NULL},
		{"charter: swiss-public-ai\nversion: 7", "charter: other\nversion: 8",
		 "good.yaml:1:10: charter id 'other' differs from the active charter's "
		 "'swiss-public-ai'", NULL},
		{"version: 7\ntitle: Swiss public AI compute charter\neffective: 2026-12-01",
		 "version: 8\ntitle: Swiss public AI compute charter\neffective: 2026-11-01",
		 "good.yaml:4:12: effective 2026-11-01T00:00:00Z is before the active charter's "
		 "2026-12-01T00:00:00Z", NULL},
		{"version: 7\ntitle: Swiss public AI compute charter\neffective: 2026-12-01T00:00:00Z\n"
		 "timezone: Europe/Zurich",
		 "version: 8\ntitle: Swiss public AI compute charter\neffective: 2026-12-01T00:00:00Z\n"
		 "timezone: Europe/Berlin",
		 NULL, "good.yaml:5:11: warning: timezone changes from Europe/Zurich to "
		 "Europe/Berlin: period boundaries move"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *t = replace(good_yaml, cases[i].from, cases[i].to);
		struct charter *b = parse_ok(t);
		struct charter_errors errs = CHARTER_ERRORS_INIT;
		allot_err rc = charter_check_successor(a, b, &errs);
		if (cases[i].want_err) {
			assert_int_equal(rc, ALLOT_E_CONFLICT);
			assert_int_equal(errs.nerrors, 1);
			assert_string_equal(errs.errors[0].text, cases[i].want_err);
		} else {
			assert_int_equal(rc, ALLOT_OK);
			assert_int_equal(errs.nerrors, 0);
		}
		if (cases[i].want_warn) {
			assert_int_equal(errs.nwarnings, 1);
			assert_string_equal(errs.warnings[0].text, cases[i].want_warn);
		} else {
			assert_int_equal(errs.nwarnings, 0);
		}
		charter_errors_release(&errs);
		charter_free(b);
		free(t);
	}
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	assert_int_equal(charter_check_successor(NULL, a, &errs), ALLOT_OK);
	charter_free(a);
}

static char *run_check_file(const char *path, int *rc, char **err_text)
{
	char *out = NULL, *err = NULL;
	size_t on = 0, en = 0;
	FILE *o = open_memstream(&out, &on), *e = open_memstream(&err, &en);
	assert_non_null(o);
	assert_non_null(e);
	*rc = charter_check_file(path, o, e);
	fclose(o);
	fclose(e);
	*err_text = err;
	return out;
}

static void test_check_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_charter_XXXXXX";
	assert_non_null(mkdtemp(dir));
	char good[64], bad[64], big[64];
	snprintf(good, sizeof good, "%s/good.yaml", dir);
	snprintf(bad, sizeof bad, "%s/bad.yaml", dir);
	snprintf(big, sizeof big, "%s/big.yaml", dir);
	FILE *f = fopen(good, "w");
	fputs(good_yaml, f);
	fputs("  - {id: x, allocation: {credits: 2000000, period: month}}\n", f);
	fclose(f);
	f = fopen(bad, "w");
	fputs("charter: t\nversion: -1\n", f);
	fclose(f);
	f = fopen(big, "w");
	for (int i = 0; i < CHARTER_MAX_BYTES / 16 + 1; i++)
		fputs("# padding......\n", f);
	fclose(f);

	int rc;
	char *err, *out = run_check_file(good, &rc, &err);
	char want[256];
	assert_int_equal(rc, 0);
	assert_string_equal(out, "charter OK\n");
	snprintf(want, sizeof want, "%s:7:7: warning: pool oversubscribed: institutions are "
		 "allocated 2101666.666666 credits per month on average, more than the pool "
		 "of 1000000\n", good);
	assert_string_equal(err, want);
	free(out);
	free(err);

	out = run_check_file(bad, &rc, &err);
	assert_int_equal(rc, 1);
	assert_string_equal(out, "");
	char want2[512];
	snprintf(want2, sizeof want2,
		 "%s:1:1: missing required key 'effective' in charter\n"
		 "%s:1:1: missing required key 'timezone' in charter\n"
		 "%s:2:10: 'version' must be a positive integer\n", bad, bad, bad);
	assert_string_equal(err, want2);
	free(out);
	free(err);

	out = run_check_file(big, &rc, &err);
	assert_int_equal(rc, 1);
	snprintf(want, sizeof want, "%s:1:1: charter is larger than the limit of %d bytes\n",
		 big, CHARTER_MAX_BYTES);
	assert_string_equal(err, want);
	free(out);
	free(err);

	snprintf(want, sizeof want, "%s/missing.yaml", dir);
	out = run_check_file(want, &rc, &err);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(err, "missing.yaml: cannot read: No such file or directory"));
	free(out);
	free(err);

	unlink(good);
	unlink(bad);
	unlink(big);
	rmdir(dir);
}

/* Many errors: capped, with a summary line last. */
static void test_error_cap(void **state)
{
	(void)state;
	size_t n = CHARTER_MAX_ERRORS + 10, len = 0;
	char *y = malloc(n * 16 + 64);
	assert_non_null(y);
	len += (size_t)sprintf(y, "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\n"
				  "timezone: UTC\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(y + len, "k%zu: 1\n", i);
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *c = NULL;
	assert_int_equal(charter_parse("t.yaml", y, len, &c, &errs), ALLOT_E_UNPROCESSABLE);
	assert_int_equal(errs.nerrors, CHARTER_MAX_ERRORS);
	assert_string_equal(errs.errors[0].text, "t.yaml:5:1: unknown key 'k0' in charter");
	assert_string_equal(errs.errors[CHARTER_MAX_ERRORS - 1].text,
			    "t.yaml:1:1: too many errors; 11 more not shown");
	charter_errors_release(&errs);
	free(y);
}

/* errs may already hold entries: a parse appends and sorts only its own. */
static void test_errors_append(void **state)
{
	(void)state;
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *c = NULL;
	const char *a = "charter: t\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n"
			"x: 1\n";
	const char *b = "y: 1\n";
	assert_int_equal(charter_parse("a.yaml", a, strlen(a), &c, &errs), ALLOT_E_UNPROCESSABLE);
	assert_int_equal(charter_parse("b.yaml", b, strlen(b), &c, &errs), ALLOT_E_UNPROCESSABLE);
	assert_null(c);
	assert_int_equal(errs.nerrors, 6);
	assert_string_equal(errs.errors[0].text, "a.yaml:5:1: unknown key 'x' in charter");
	assert_string_equal(errs.errors[1].text, "b.yaml:1:1: unknown key 'y' in charter");
	assert_string_equal(errs.errors[1].message, "unknown key 'y' in charter");
	assert_int_equal(errs.errors[5].mark.line, 1);
	charter_errors_release(&errs);
	assert_int_equal(errs.nerrors, 0);
	charter_errors_release(&errs); /* twice is harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_cases),
		cmocka_unit_test(test_good_model),
		cmocka_unit_test(test_webhooks),
		cmocka_unit_test(test_rate_for),
		cmocka_unit_test(test_allocation_cmp),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_successor),
		cmocka_unit_test(test_check_file),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_errors_append),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
