#!/bin/bash
# The model-based test of the whole ledger (tests/model/, docs/TESTING.md):
# seeded histories of provider batches (duplicates, conflicts, corrections,
# late and boundary records across DST changes), gated requests under hard
# and soft overage, bursts of concurrent requests, charter changes and
# kill -9 with restart, run against the real allotd and compared, answer by
# answer, quota by quota and report by report, with an independent model.
# ALLOT_MODEL_HISTORIES sets the count (default 200; 20 under a sanitizer
# build, ALLOT_BIN_DIR=build/asan/bin or build/tsan/bin); ALLOT_MODEL_SEED the
# first seed; ALLOT_MODEL_FEATURES narrows the switches (all on by default;
# docs/TESTING.md). `make soak` runs 10,000.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "test_model: SKIPPED: $*"; exit 0; }
# Its harness starts allotd on SQLite files of its own whatever the store:
# the PostgreSQL pass of the suite would run the same test again.
[ "${ALLOT_TEST_DB:-sqlite}" = pg ] &&
	skip "under ALLOT_TEST_DB=pg: the model's harness runs allotd on SQLite files of its own (the SQLite pass ran it)"
command -v node >/dev/null 2>&1 || skip "node is not installed (Debian package nodejs)"
node -e 'process.exit(typeof fetch === "function" && Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' ||
	skip "node $(node --version) is older than 18 (needs fetch and Ed25519)"
[ -f "$ROOT/models/stories260K.gguf" ] || skip "models/stories260K.gguf is absent (make test copies it from ../shared/models)"
BIN=${ALLOT_BIN_DIR:-$ROOT/bin}
[ -x "$BIN/allotd" ] || { echo "test_model: FAIL: $BIN/allotd is not built" >&2; exit 1; }
case "${ALLOT_BIN_DIR:-}" in
*asan* | *tsan*) default=20 ;;
*) default=200 ;;
esac
export ALLOT_MODEL_HISTORIES=${ALLOT_MODEL_HISTORIES:-$default}
cd "$ROOT" || exit 1
# The model's calendar first (a wrong or looping transitions() once hung the
# whole suite); then the histories.
timeout 120 node tests/model/tz_check.mjs || { echo "test_model: FAIL: tests/model/tz_check.mjs (tz.mjs) failed or did not finish in 120 s" >&2; exit 1; }
node tests/model/model.mjs
