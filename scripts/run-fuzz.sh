#!/bin/sh
# run-fuzz.sh SECONDS — run each libFuzzer target for SECONDS, seeded from
# tests/fuzz/corpus/NAME and policies/; crashes land in build/fuzz/crashes.
set -u
cd "$(dirname "$0")/.."
secs=${1:-10}
mkdir -p build/fuzz/crashes
rc=0
for f in build/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	corpus=build/fuzz/corpus-$name
	mkdir -p "$corpus"
	seeds=""
	[ -d "tests/fuzz/corpus/$name" ] && seeds="tests/fuzz/corpus/$name"
	echo "fuzz: $name for ${secs}s"
	if ! "$f" -max_total_time="$secs" -artifact_prefix=build/fuzz/crashes/"$name"- \
		"$corpus" $seeds >build/fuzz/"$name".log 2>&1; then
		echo "fuzz: $name FAILED; see build/fuzz/$name.log" >&2
		tail -30 build/fuzz/"$name".log >&2
		rc=1
	fi
done
exit $rc
