#!/bin/bash
# The nodes of one PostgreSQL database (docs/POSTGRES.md, "Nodes of one
# database"): each allotd registers with the shared form of the database's
# advisory lock, named by its session's application_name; a second allotd
# on the same database (another port) starts and serves beside the first,
# both are listed; kill -9 of a node drops its registration with its
# session while the other serves on; a restart works.  Runs in the
# PostgreSQL run of the e2e suite (ALLOT_TEST_DB=pg, tests/e2e/lib.sh);
# skipped, saying so, otherwise.

. "$(dirname "$0")/lib.sh"

skip() { echo "$E2E_NAME: SKIPPED: $*"; rm -rf "$E2E_DIR"; exit 0; }
[ -n "$E2E_PG_DB" ] || skip "ALLOT_TEST_DB is not pg (the PostgreSQL run of the e2e suite sets it)"

e2e_cscs_charter owner-pg
START=(--charter "$E2E_DIR/charter.yaml")
e2e_start "${START[@]}" || exit 1
req GET /v1/charter "$ADMIN_KEY"; check "first allotd serves" 200 "$STATUS"

# --- a second allotd on the same database (another port) serves beside the first ------------
FIRST=$E2E_PID FIRST_URL=$URL
e2e_start || exit 1   # the same database and keys directory
SECOND=$E2E_PID
trap 'kill "$SECOND" 2>/dev/null; e2e_stop; e2e_pg_drop' EXIT
req GET /v1/charter "$ADMIN_KEY"; check "a second allotd on the same database serves" 200 "$STATUS"
nodes() { psql "$E2E_DB_DEFAULT" -qAtX -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.mode = 'ShareLock' AND a.application_name LIKE 'pid % (allotd)' AND a.datname = current_database()"; }
check "both nodes registered (shared advisory lock, named)" 2 "$(nodes)"
psql "$E2E_DB_DEFAULT" -qAtX -c "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()" |
	grep -q "^pid $SECOND on host .* (allotd)$" && ok || bad "the second node's session is named after it"
URL=$FIRST_URL
req GET /v1/charter "$ADMIN_KEY"; check "the first keeps serving" 200 "$STATUS"
AUDITOR=$(e2e_api_key '{"role":"auditor"}')
req GET /v1/charter "$AUDITOR"; check "the first keeps writing (a new key)" 200 "$STATUS"

# --- kill -9 of a node: its registration goes with its session; the other serves on ----------
kill -9 "$SECOND"; wait "$SECOND" 2>/dev/null
for _ in $(seq 1 50); do [ "$(nodes)" = 1 ] && break; sleep 0.1; done
check "the killed node's registration is gone" 1 "$(nodes)"
req GET /v1/charter "$AUDITOR"; check "the other node serves on" 200 "$STATUS"
E2E_PID=$FIRST

# --- kill -9: the server drops the lock with the session; a restart works ------------------
e2e_kill9
e2e_start "${START[@]}" || exit 1
req GET /v1/charter "$AUDITOR"; check "restart after kill -9 serves" 200 "$STATUS"
e2e_done
