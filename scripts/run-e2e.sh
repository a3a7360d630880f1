#!/bin/sh
# run-e2e.sh — run every tests/e2e/*.sh against the real allotd on loopback.
# Each script runs under a time limit (ALLOT_TEST_LIMIT seconds, default
# 1200; scripts/run-limited.sh), which prints its duration.
set -u
limit=${ALLOT_TEST_LIMIT:-1200}
cd "$(dirname "$0")/.."
pass=0; fail=0; failed=""
for t in tests/e2e/test_*.sh; do
	[ -f "$t" ] || continue
	echo "== $t"
	if sh scripts/run-limited.sh "$limit" bash "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $(basename "$t")"; fi
done
echo "e2e test scripts: $pass passed, $fail failed${failed:+ ($failed )}"
[ "$fail" = 0 ]
