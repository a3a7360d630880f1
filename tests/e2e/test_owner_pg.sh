#!/bin/bash
# One owner per PostgreSQL database (docs/POSTGRES.md, "One owner per
# database"): a second allotd on the same database exits 1 naming the
# holder while the first keeps serving; kill -9 of the holder releases the
# lock.  Runs in the PostgreSQL e2e run (ALLOT_TEST_DB=pg, tests/e2e/lib.sh);
# skipped, saying so, otherwise.
. "$(dirname "$0")/lib.sh"

skip() { echo "$E2E_NAME: SKIPPED: $*"; rm -rf "$E2E_DIR"; exit 0; }
[ -n "$E2E_PG_DB" ] || skip "ALLOT_TEST_DB is not pg (the PostgreSQL run of the e2e suite sets it)"

e2e_cscs_charter owner-pg
START=(--charter "$E2E_DIR/charter.yaml")
e2e_start "${START[@]}" || exit 1
req GET /v1/charter "$ADMIN_KEY"; check "first allotd serves" 200 "$STATUS"

# --- a second allotd on the same database (another port) exits 1 naming the holder ---------
P2=$(e2e_free_port)
timeout 10 "$BIN/allotd" --listen 127.0.0.1:"$P2" --db "$E2E_DB_DEFAULT" --keys "$E2E_DIR/keys2" \
	--models "$E2E_ROOT/models" "${START[@]}" >/dev/null 2>"$E2E_DIR/second.err"
check "second allotd on the same database exits 1" 1 "$?"
cat "$E2E_DIR/second.err" >>"$E2E_DIR/allotd.log"
grep -q "PostgreSQL database $E2E_PG_DB is in use by another process: pid $E2E_PID on host .* (allotd) since [0-9T:-]*Z" \
	"$E2E_DIR/second.err" && ok || bad "second allotd names the holder: $(cat "$E2E_DIR/second.err")"
check "the refusal is one line" 1 "$(wc -l <"$E2E_DIR/second.err")"
grep -q "host=\|user=" "$E2E_DIR/second.err" && bad "the refusal prints the URI" || ok
check "the second one never listened" 000 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P2/healthz")"
[ ! -e "$E2E_DIR/keys2" ] && ok || bad "the refused allotd created its keys directory"
req GET /v1/charter "$ADMIN_KEY"; check "the first keeps serving" 200 "$STATUS"
AUDITOR=$(e2e_api_key '{"role":"auditor"}')
req GET /v1/charter "$AUDITOR"; check "the first keeps writing (a new key)" 200 "$STATUS"

# --- kill -9: the server drops the lock with the session; a restart works ------------------
e2e_kill9
e2e_start "${START[@]}" || exit 1
req GET /v1/charter "$AUDITOR"; check "restart after kill -9 serves" 200 "$STATUS"
e2e_done
