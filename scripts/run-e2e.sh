#!/bin/sh
# run-e2e.sh [sqlite|pg] — run every tests/e2e/*.sh against the real allotd
# on loopback, on one store: SQLite files (sqlite, the default) or
# PostgreSQL (pg: ALLOT_TEST_DB=pg, each script on a database of its own,
# tests/e2e/lib.sh; run it under scripts/with-pg.sh, which sets
# ALLOT_TEST_PG_URI; without one the pass is skipped, saying so).  Every
# script runs on both stores, the outside clients (npm clients, the
# browser, CORS) too; a script that makes no sense on PostgreSQL skips
# itself there, saying why.
# Each script runs under a time limit (ALLOT_TEST_LIMIT seconds, default
# 1200; scripts/run-limited.sh), which prints its duration; the summary
# line names the store and the pass's duration.
set -u
limit=${ALLOT_TEST_LIMIT:-1200}
cd "$(dirname "$0")/.."
case ${1:-sqlite} in
sqlite) store=SQLite; ALLOT_TEST_DB=sqlite ;;
pg)
	store=PostgreSQL; ALLOT_TEST_DB=pg
	if [ -z "${ALLOT_TEST_PG_URI:-}" ]; then
		echo "e2e test scripts ($store): skipped: no PostgreSQL server (ALLOT_TEST_PG_URI is unset; scripts/with-pg.sh sets it where PostgreSQL is installed)"
		exit 0
	fi ;;
*) echo "usage: run-e2e.sh [sqlite|pg]" >&2; exit 2 ;;
esac
export ALLOT_TEST_DB
pass=0; fail=0; failed=""
start=$(date +%s)
for t in tests/e2e/test_*.sh; do
	[ -f "$t" ] || continue
	echo "== $t ($store)"
	if sh scripts/run-limited.sh "$limit" bash "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $(basename "$t")"; fi
done
echo "e2e test scripts ($store): $pass passed, $fail failed${failed:+ ($failed )} in $(($(date +%s) - start)) s"
[ "$fail" = 0 ]
