#!/bin/sh
# bench-smoke.sh — the benchmarks that CI does not otherwise run, once each
# in a short form, so that one that no longer runs (a load statement out of
# step with a migration, say) fails `make test` instead of waiting for the
# next person who measures.  Their figures are printed, never checked
# (docs/TESTING.md).  With PostgreSQL (scripts/with-pg.sh sets
# ALLOT_TEST_PG_URI) their PostgreSQL parts run too; without it they are
# skipped, saying so.
#   bench/ingest --quick: ingestion through HTTP, the baselines, the
#     200,000-row report and ingestion against ledger size;
#   bench/gate on the instant backend, half-second phases, one node.
set -u
cd "$(dirname "$0")/.."
b=${BUILD:-build}/bench
fail=0
pg=${ALLOT_TEST_PG_URI:-}
[ -n "$pg" ] || echo "bench smoke: no PostgreSQL server (ALLOT_TEST_PG_URI unset): the PostgreSQL parts are skipped"
run() {
	name=$1
	shift
	start=$(date +%s)
	if "$@" > "/tmp/allot-bench-smoke.$$.log" 2>&1; then
		echo "bench smoke: $name ran ($(($(date +%s) - start)) s)"
	else
		echo "bench smoke: $name FAILED (exit $?); its output:"
		grep -v ' info ' "/tmp/allot-bench-smoke.$$.log" | tail -40
		fail=1
	fi
	rm -f "/tmp/allot-bench-smoke.$$.log"
}
if [ -n "$pg" ]; then
	run "ingest --quick --pg" "$b/ingest" --quick --pg "$pg"
else
	run "ingest --quick" "$b/ingest" --quick
fi
unset ALLOT_BENCH_PG
[ -z "$pg" ] || export ALLOT_BENCH_PG="$pg"
run "gate (instant backend)" env ALLOT_BENCH_BACKEND=instant ALLOT_BENCH_SWEEP= \
	ALLOT_BENCH_SECONDS=0.5 ALLOT_BENCH_NODES=1 "$b/gate"
exit $fail
