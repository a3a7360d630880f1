#!/bin/sh
# run-unit.sh DIR — run every cmocka test binary in DIR; summary at the end.
set -u
dir=$1
pass=0; fail=0; failed=""
for t in "$dir"/test_*; do
	[ -x "$t" ] || continue
	case "$t" in *.d|*.o) continue;; esac
	if sh "$(dirname "$0")/run-limited.sh" "${ALLOT_TEST_LIMIT:-1200}" "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $(basename "$t")"; fi
done
echo "unit test programs: $pass passed, $fail failed${failed:+ ($failed )}"
[ "$fail" = 0 ]
