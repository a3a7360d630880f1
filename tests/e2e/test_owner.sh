#!/bin/bash
# One owner per database and what a deployment is (issue 11, items 4, 5, 7):
# a second allotd on the same database or port exits 1 naming the holder
# while the first keeps serving; kill -9 releases the lock; an empty or
# missing database beside an earlier deployment's keys is refused unless
# --init, which retires the old keys; database, WAL, lock and key files are
# 0600 and the keys directory 0700, and an open one is refused; changing
# ALLOT_ADMIN_KEY revokes the earlier one, whose id is not made from its
# secret.
. "$(dirname "$0")/lib.sh"
if e2e_is_pg; then
	echo "test_owner: SKIPPED under ALLOT_TEST_DB=pg: it checks the SQLite store's lock file and file modes; one owner per PostgreSQL database is test_owner_pg"
	exit 0
fi

umask 022 # what an operator's shell usually has: the modes below are allotd's doing
DB=$E2E_DIR/allot.db
KEYS=$E2E_DIR/keys
e2e_cscs_charter owner-test
START=(--charter "$E2E_DIR/charter.yaml")

# once ERRFILE ARGS...: an allotd that must refuse to start; prints its exit
# status (124: it was still serving after 10 s and was stopped).
once() {
	local err=$1
	shift
	timeout 10 "$BIN/allotd" --models "$E2E_ROOT/models" "${START[@]}" "$@" \
		>"$E2E_DIR/once.out" 2>"$err"
	local rc=$?
	cat "$err" >>"$E2E_DIR/allotd.log" # e2e_done looks for sanitizer reports there
	echo "$rc"
}

# start_on PORT ARGS...: e2e_start_on with this test's database and keys (a
# restart on the same port).
start_on() { E2E_DB=$DB E2E_KEYS=$KEYS e2e_start_on "$@"; }

# one_line FILE: the refusal is exactly one line on stderr.
one_line() { check "$1: one line on stderr" 1 "$(wc -l <"$1")"; }

# --- a brand-new deployment starts without --init; its files are private ----------------
e2e_start "${START[@]}" || exit 1
req GET /v1/charter "$ADMIN_KEY"; check "first allotd serves" 200 "$STATUS"
for f in "$DB" "$DB-wal" "$DB-shm" "$DB.lock"; do
	check "mode of $(basename "$f")" 600 "$(stat -c %a "$f" 2>&1)"
done
check "keys directory mode" 700 "$(stat -c %a "$KEYS")"
check "log key mode" 600 "$(stat -c %a "$KEYS/log.key")"
KID1=$(curl -s "$URL/v1/keys/public" | jq -r '.keys[] | select(.current) | .kid')
check "token key mode" 600 "$(stat -c %a "$KEYS/$KID1.key")"
VKEY1=$(curl -s "$URL/v1/log/key" | jq -r .vkey)
# two member tokens of this deployment, one of them revoked
printf '{"institution":"epfl","project":"climate","member":"alice@epfl.ch"}' >"$E2E_DIR/t.json"
req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/t.json"; T_OK=$(jget .token)
req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/t.json"; T_REV=$(jget .token)
printf '{"jti":"%s"}' "$(jget .jti)" >"$E2E_DIR/r.json"
req POST /v1/tokens/revoke "$ADMIN_KEY" application/json "$E2E_DIR/r.json"; check "token revoked" 200 "$STATUS"
req GET /v1/quotas/me "$T_OK"; check "token works" 200 "$STATUS"
req GET /v1/quotas/me "$T_REV"; check "revoked token refused" 401 "$STATUS"
grep -q "^pid $E2E_PID on host $(hostname) since .* (allotd)$" "$DB.lock" && ok ||
	bad "the lock file names its holder: $(cat "$DB.lock")"

# --- a second allotd on the same database (another port) exits 1 naming the holder ---------
P2=$(e2e_free_port)
rc=$(once "$E2E_DIR/second.err" --listen 127.0.0.1:"$P2" --db "$DB" --keys "$KEYS")
check "second allotd on the same database exits 1" 1 "$rc"
grep -q "database $DB is in use by another process: pid $E2E_PID on host .* (allotd) (lock file $DB.lock)" \
	"$E2E_DIR/second.err" && ok || bad "second allotd names the holder: $(cat "$E2E_DIR/second.err")"
one_line "$E2E_DIR/second.err"
check "the second one never listened" 000 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P2/healthz")"
grep -q "pid $E2E_PID on host" "$DB.lock" && ok || bad "the refused process left the holder's line: $(cat "$DB.lock")"
req GET /v1/charter "$ADMIN_KEY"; check "the first keeps serving" 200 "$STATUS"
AUDITOR=$(e2e_api_key '{"role":"auditor"}')
req GET /v1/charter "$AUDITOR"; check "the first keeps writing (a new key)" 200 "$STATUS"

# --- a second allotd on the same port (another database) exits 1 --------------------------
mkdir -m 700 "$E2E_DIR/other"
rc=$(once "$E2E_DIR/port.err" --listen 127.0.0.1:"$PORT" --db "$E2E_DIR/other/allot.db" \
	--keys "$E2E_DIR/other/keys")
check "second allotd on the same port exits 1" 1 "$rc"
check "same port: one line says why" "allotd: cannot listen on 127.0.0.1:$PORT (address in use or not permitted)" \
	"$(cat "$E2E_DIR/port.err")"
# it binds before it opens anything: no database, lock file or keys made
check "same port: nothing created" "" "$(ls -A "$E2E_DIR/other")"
req GET /v1/charter "$ADMIN_KEY"; check "the first still serves" 200 "$STATUS"

# --- kill -9: the lock goes with the process; a restart on the same port works -------------
OLDPID=$E2E_PID
e2e_kill9
start_on "$PORT" "${START[@]}" || exit 1
req GET /v1/charter "$AUDITOR"; check "restart after kill -9 serves" 200 "$STATUS"
grep -q "^pid $E2E_PID on host" "$DB.lock" && ok || bad "the new holder's line: $(cat "$DB.lock")"
[ "$E2E_PID" != "$OLDPID" ] && ok || bad "a new process"
check "database still 0600 after a restart" 600 "$(stat -c %a "$DB")"
e2e_stop

# --- ALLOT_ADMIN_KEY: a random id; a new value revokes the old one ---------------------------
# key A is $ADMIN_KEY, then key B
e2e_start "${START[@]}" || exit 1
MINTED=$(e2e_api_key '{"role":"admin"}')
req GET /v1/keys "$ADMIN_KEY"
A_ID=$(jget '.keys[] | select(.label == "from ALLOT_ADMIN_KEY" and .revoked_at == null) | .id')
SHA_A=$(printf '%s' "$ADMIN_KEY" | sha256sum | cut -c1-64)
case "$A_ID" in admin_????????????????) ok ;; *) bad "env key id form: $A_ID" ;; esac
HEX=${A_ID#admin_}
case "$SHA_A" in "$HEX"*) bad "env key id $A_ID is a prefix of sha256(secret)" ;; *) ok ;; esac
case "$SHA_A" in "${HEX:0:8}"*) bad "env key id $A_ID starts like sha256(secret)" ;; *) ok ;; esac
check "not the old hash-prefix id" 0 "$(jget '.keys[].id' | grep -c "^admin_${SHA_A:0:12}$")"
e2e_stop
KEY_B=e2e-admin-key-b-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
export ALLOT_ADMIN_KEY=$KEY_B
e2e_start "${START[@]}" || exit 1
req GET /v1/keys "$ADMIN_KEY"; check "the earlier ALLOT_ADMIN_KEY is refused" 401 "$STATUS"
req GET /v1/keys "$KEY_B"; check "the new ALLOT_ADMIN_KEY works" 200 "$STATUS"
check "the earlier env key is revoked" 1 "$(printf '%s' "$BODY" |
	jq --arg id "$A_ID" '[.keys[] | select(.id == $id and .revoked_at != null)] | length')"
check "one active env key" 1 "$(printf '%s' "$BODY" |
	jq '[.keys[] | select(.label == "from ALLOT_ADMIN_KEY" and .revoked_at == null)] | length')"
req GET /v1/keys "$MINTED"; check "an admin key minted through the API stays valid" 200 "$STATUS"
req GET "/v1/audit?limit=1000" "$AUDITOR"; check "audit readable" 200 "$STATUS"
check "the revocation is audited" 1 "$(printf '%s' "$BODY" | jq --arg id "$A_ID" \
	'[.entries[] | select(.action == "key.revoke" and .target == $id and .actor == "bootstrap")] | length')"
e2e_stop
e2e_start "${START[@]}" || exit 1
req GET /v1/keys "$KEY_B"; check "the same ALLOT_ADMIN_KEY again: still valid" 200 "$STATUS"
req GET "/v1/audit?limit=1000" "$AUDITOR"
check "no revocation on a restart with the same key" 1 "$(printf '%s' "$BODY" |
	jq '[.entries[] | select(.action == "key.revoke")] | length')"
e2e_stop
export ALLOT_ADMIN_KEY=$ADMIN_KEY
rc=$(once "$E2E_DIR/revoked.err" --listen 127.0.0.1:"$(e2e_free_port)" --db "$DB" --keys "$KEYS")
check "a revoked ALLOT_ADMIN_KEY does not come back" 1 "$rc"
grep -qF "ALLOT_ADMIN_KEY is the secret of key $A_ID, which was revoked" "$E2E_DIR/revoked.err" && ok ||
	bad "revoked env key message: $(cat "$E2E_DIR/revoked.err")"
rc=$(ALLOT_ADMIN_KEY=short once "$E2E_DIR/short.err" --listen 127.0.0.1:"$(e2e_free_port)" \
	--db "$E2E_DIR/short.db" --keys "$E2E_DIR/shortkeys")
check "a short ALLOT_ADMIN_KEY refused" 1 "$rc"
[ ! -e "$E2E_DIR/short.db" ] && [ ! -e "$E2E_DIR/shortkeys" ] && ok || bad "a short ALLOT_ADMIN_KEY created files"
export ALLOT_ADMIN_KEY=$KEY_B ADMIN_KEY=$KEY_B

# --- a keys directory open to group or others is refused -----------------------------------
for m in 777 755 750; do
	chmod "$m" "$KEYS"
	rc=$(once "$E2E_DIR/mode.err" --listen 127.0.0.1:"$(e2e_free_port)" --db "$DB" --keys "$KEYS")
	check "keys directory $m refused" 1 "$rc"
	grep -qF "run chmod 700 $KEYS" "$E2E_DIR/mode.err" && ok ||
		bad "keys directory $m message: $(cat "$E2E_DIR/mode.err")"
	one_line "$E2E_DIR/mode.err"
	check "keys directory $m left as it was" "$m" "$(stat -c %a "$KEYS")"
done
chmod 700 "$KEYS"

# --- an empty or missing database beside the keys is refused --------------------------------
FRESH=$E2E_DIR/fresh.db
rc=$(once "$E2E_DIR/fresh.err" --listen 127.0.0.1:"$(e2e_free_port)" --db "$FRESH" --keys "$KEYS")
check "missing database beside the log key refused" 1 "$rc"
grep -qF "database $FRESH does not exist, but the keys directory $KEYS holds log.key of an earlier deployment" \
	"$E2E_DIR/fresh.err" && ok || bad "missing database message: $(cat "$E2E_DIR/fresh.err")"
grep -qF -- "--init (ALLOT_INIT=1)" "$E2E_DIR/fresh.err" && ok || bad "the message names --init"
one_line "$E2E_DIR/fresh.err"
[ ! -e "$FRESH" ] && ok || bad "a refused start created $FRESH"
: >"$FRESH"
rc=$(once "$E2E_DIR/fresh.err" --listen 127.0.0.1:"$(e2e_free_port)" --db "$FRESH" --keys "$KEYS")
check "empty database file refused" 1 "$rc"
grep -qF "database $FRESH is empty" "$E2E_DIR/fresh.err" && ok || bad "empty file message: $(cat "$E2E_DIR/fresh.err")"
check "the empty file is left empty" 0 "$(stat -c %s "$FRESH")"
rm -f "$FRESH" "$FRESH.lock"
# a migrated database with no entries at all (what a first start that failed
# after its migrations leaves): the same schema, not one row
WIPED=$E2E_DIR/wiped.db
sqlite3 "$DB" .schema | grep -v '^CREATE TABLE sqlite_' | sqlite3 "$WIPED" 2>"$E2E_DIR/sql.err" &&
	sqlite3 "$WIPED" "ATTACH '$DB' AS o; INSERT INTO schema_migrations SELECT * FROM o.schema_migrations;
		PRAGMA main.user_version = $(sqlite3 "$DB" 'PRAGMA user_version')" 2>>"$E2E_DIR/sql.err" ||
	bad "making an empty migrated database: $(cat "$E2E_DIR/sql.err")"
check "the copy's log is empty" "0 0" "$(sqlite3 "$WIPED" 'SELECT count(*) FROM tlog_leaves; SELECT count(*) FROM audit_log' | tr '\n' ' ' | sed 's/ $//')"
rc=$(once "$E2E_DIR/wiped.err" --listen 127.0.0.1:"$(e2e_free_port)" --db "$WIPED" --keys "$KEYS")
check "database with an empty log refused" 1 "$rc"
grep -qF "database $WIPED holds no log entries" "$E2E_DIR/wiped.err" && ok ||
	bad "empty log message: $(cat "$E2E_DIR/wiped.err")"
[ -f "$KEYS/log.key" ] && [ -f "$KEYS/$KID1.key" ] && [ -z "$(ls -d "$KEYS"/retired-* 2>/dev/null)" ] && ok ||
	bad "keys changed by the refusals: $(ls "$KEYS")"

# --- --init: a new deployment, the old keys retired, never reused ---------------------------
e2e_start "${START[@]}" --db "$FRESH" --init || exit 1
req GET /v1/charter "$ADMIN_KEY"; check "--init starts a new deployment" 200 "$STATUS"
req GET /v1/keys "$ADMIN_KEY"
B_ID=$(jget '.keys[] | select(.label == "from ALLOT_ADMIN_KEY") | .id')
B_ID_OLD=$(sqlite3 "$DB" "SELECT id FROM api_keys WHERE label = 'from ALLOT_ADMIN_KEY' AND revoked_at IS NULL")
[ -n "$B_ID" ] && [ -n "$B_ID_OLD" ] && [ "$B_ID" != "$B_ID_OLD" ] && ok ||
	bad "one secret, two deployments: random ids ($B_ID_OLD, $B_ID)"
RETIRED=$(ls -d "$KEYS"/retired-* 2>/dev/null)
check "one retired directory" 1 "$(printf '%s\n' "$RETIRED" | grep -c retired-)"
check "retired directory mode" 700 "$(stat -c %a "$RETIRED")"
[ -f "$RETIRED/log.key" ] && [ -f "$RETIRED/$KID1.key" ] && ok || bad "old keys kept in $RETIRED: $(ls "$RETIRED")"
VKEY2=$(curl -s "$URL/v1/log/key" | jq -r .vkey)
[ -n "$VKEY2" ] && [ "$VKEY2" != "$VKEY1" ] && ok || bad "a new log key: $VKEY1 -> $VKEY2"
check "one token key, a new one" "1 false" \
	"$(curl -s "$URL/v1/keys/public" | jq -r --arg k "$KID1" '"\(.keys | length) \(any(.keys[]; .kid == $k))"')"
check "new log key 0600" 600 "$(stat -c %a "$KEYS/log.key")"
# the old deployment's tokens are signed by a retired key: refused, revoked or not
req GET /v1/quotas/me "$T_REV"; check "a token revoked in the old deployment stays refused" 401 "$STATUS"
req GET /v1/quotas/me "$T_OK"; check "the old deployment's tokens are refused" 401 "$STATUS"
e2e_stop
rc=$(once "$E2E_DIR/init.err" --listen 127.0.0.1:"$(e2e_free_port)" --db "$FRESH" --keys "$KEYS" --init)
check "--init on a database with a log refused" 1 "$rc"
grep -qF -- "--init begins a new deployment, but database $FRESH already holds a log of" "$E2E_DIR/init.err" &&
	ok || bad "--init twice message: $(cat "$E2E_DIR/init.err")"
one_line "$E2E_DIR/init.err"
rc=$(ALLOT_INIT=1 once "$E2E_DIR/init.err" --listen 127.0.0.1:"$(e2e_free_port)" --db "$FRESH" --keys "$KEYS")
check "ALLOT_INIT=1 on a database with a log refused" 1 "$rc"
rc=$(ALLOT_INIT=yes once "$E2E_DIR/init.err" --listen 127.0.0.1:"$(e2e_free_port)" --db "$FRESH" --keys "$KEYS")
check "ALLOT_INIT=yes refused" 1 "$rc"
grep -qF "ALLOT_INIT must be 1 or 0" "$E2E_DIR/init.err" && ok || bad "ALLOT_INIT message: $(cat "$E2E_DIR/init.err")"
check "one retired directory still" 1 "$(ls -d "$KEYS"/retired-* | wc -l)"
e2e_start "${START[@]}" --db "$FRESH" || exit 1
req GET /v1/charter "$ADMIN_KEY"; check "the new deployment restarts without --init" 200 "$STATUS"
e2e_stop

e2e_done
