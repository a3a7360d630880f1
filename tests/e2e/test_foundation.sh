#!/bin/bash
# Foundation end to end: health, auth, roles, HTTP hygiene, charters, keys,
# audit, SIGHUP reload, and the CLI's exit statuses.
. "$(dirname "$0")/lib.sh"

cp "$E2E_ROOT/policies/default.yaml" "$E2E_DIR/charter.yaml"
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1

req GET /healthz ""; check "healthz" 200 "$STATUS"
req GET /readyz ""; check "readyz" 200 "$STATUS"; check "readyz charter" 1 "$(jget .charter)"
req GET /metrics ""; check "metrics" 200 "$STATUS"
printf '%s' "$BODY" | grep -q '^allot_http_requests_total{method="GET",route="/readyz",status="200"} 1$' && ok || bad "metrics counts readyz"
printf '%s' "$BODY" | grep -q 'allot_http_request_duration_seconds_bucket' && ok || bad "metrics histogram"

# --- authentication: unknown, malformed and wrong keys get one answer -------
req GET /v1/charter ""; check "no key" 401 "$STATUS"
req GET /v1/charter "allot_0000000000000000000000000000000000000000000000000000000000000000"
check "unknown key" 401 "$STATUS"; m1=$(jget .error.message)
req GET /v1/charter "garbage"; check "malformed key" 401 "$STATUS"; m2=$(jget .error.message)
check "same message for unknown and malformed keys" "$m1" "$m2"

# --- keys for each role -------------------------------------------------------
mkkey() { # role [field value]
	local body
	if [ $# -eq 3 ]; then body="{\"role\":\"$1\",\"$2\":\"$3\"}"; else body="{\"role\":\"$1\"}"; fi
	printf '%s' "$body" >"$E2E_DIR/k.json"
	req POST /v1/keys "$ADMIN_KEY" application/json "$E2E_DIR/k.json"
	[ "$STATUS" = 201 ] || bad "create $1 key: $STATUS $BODY"
	jget .secret
}
AUDITOR=$(mkkey auditor)
INST=$(mkkey institution institution epfl)
PROV=$(mkkey provider provider local)
printf '{"role":"institution","institution":"nowhere"}' >"$E2E_DIR/k.json"
req POST /v1/keys "$ADMIN_KEY" application/json "$E2E_DIR/k.json"; check "unknown institution" 404 "$STATUS"
printf '{"role":"institution"}' >"$E2E_DIR/k.json"
req POST /v1/keys "$ADMIN_KEY" application/json "$E2E_DIR/k.json"; check "institution key without institution" 400 "$STATUS"
printf '{"role":"admin","colour":"red"}' >"$E2E_DIR/k.json"
req POST /v1/keys "$ADMIN_KEY" application/json "$E2E_DIR/k.json"; check "unknown field" 400 "$STATUS"
check "unknown field named" 'unknown field "colour"' "$(jget .error.message)"

# --- authorization: every role × every endpoint -----------------------------
# expected statuses: admin auditor institution provider member
MEMBER=$(ALLOT_KEY=$ADMIN_KEY "$BIN/allot" token mint --institution epfl --project climate --member alice@epfl.ch 2>/dev/null)
printf 'x' >"$E2E_DIR/x"
matrix() { # method path ct body a u i p m
	local m=$1 p=$2 ct=$3 b=$4; shift 4
	local keys=("$ADMIN_KEY" "$AUDITOR" "$INST" "$PROV" "$MEMBER") names=(admin auditor institution provider member)
	for n in 0 1 2 3 4; do
		req "$m" "$p" "${keys[$n]}" "$ct" "$b"
		local want=${1}; shift
		if [ "$want" = "ok" ]; then
			case "$STATUS" in 2*|4[0-9][0-9]) [ "$STATUS" != 401 ] && [ "$STATUS" != 403 ] && ok || bad "$m $p as ${names[$n]}: $STATUS";; *) bad "$m $p as ${names[$n]}: $STATUS";; esac
		else
			check "$m $p as ${names[$n]}" "$want" "$STATUS"
		fi
	done
}
matrix GET /v1/charter "" "" ok ok 403 403 403
matrix PUT /v1/charter application/yaml "$E2E_DIR/x" ok 403 403 403 403
matrix POST /v1/charter/validate application/yaml "$E2E_DIR/x" ok 403 403 403 403
matrix GET /v1/charter/history "" "" ok ok 403 403 403
matrix GET /v1/audit "" "" ok ok 403 403 403
matrix GET /v1/keys "" "" ok 403 403 403 403
matrix POST /v1/keys application/json "$E2E_DIR/x" ok 403 403 403 403
matrix DELETE /v1/keys/key_nonexistent "" "" 404 403 403 403 403
matrix POST /v1/keys/rotate application/json "$E2E_DIR/x" ok 403 403 403 403
matrix GET /v1/keys/public "" "" ok ok ok ok ok
matrix POST /v1/usage application/json "$E2E_DIR/x" 403 403 403 ok 403
matrix GET /v1/usage "" "" ok ok ok 403 403
matrix GET /v1/providers/local/sequence "" "" ok ok 403 ok 403
matrix GET /v1/quotas/epfl "" "" ok ok ok 403 403
matrix GET /v1/quotas/epfl/climate "" "" ok ok ok 403 403
matrix GET /v1/quotas/ethz "" "" ok ok 403 403 403
matrix GET /v1/quotas/me "" "" 403 403 403 403 ok
matrix GET /v1/reports/usage "" "" ok ok ok 403 403
matrix POST /v1/tokens application/json "$E2E_DIR/x" ok 403 ok 403 403
matrix POST /v1/tokens/revoke application/json "$E2E_DIR/x" ok 403 ok 403 403
matrix GET /v1/models "" "" 403 403 403 403 ok
matrix POST /v1/completions application/json "$E2E_DIR/x" 403 403 403 403 ok
matrix POST /v1/chat/completions application/json "$E2E_DIR/x" 403 403 403 403 ok
matrix POST /v1/tokenize application/json "$E2E_DIR/x" 403 403 403 403 ok
matrix POST /v1/detokenize application/json "$E2E_DIR/x" 403 403 403 403 ok
matrix GET /healthz "" "" ok ok ok ok ok

# --- HTTP hygiene ---------------------------------------------------------------
req GET /v1/nothing "$ADMIN_KEY"; check "404" 404 "$STATUS"; check "404 body" not_found "$(jget .error.code)"
req POST /healthz ""; check "405" 405 "$STATUS"
head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$E2E_DIR/big"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/big"; check "413 by Content-Length" 413 "$STATUS"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN_KEY" \
	-H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$E2E_DIR/big" "$URL/v1/keys")
check "413 chunked" 413 "$STATUS"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' 'b')" "$URL/healthz")
check "huge header refused" 431 "$STATUS"
printf '{"role":"admin"\0}' >"$E2E_DIR/nul.json"
req POST /v1/keys "$ADMIN_KEY" application/json "$E2E_DIR/nul.json"; check "NUL byte" 400 "$STATUS"
printf '{"role":"auditor"}' >"$E2E_DIR/k.json"
req POST /v1/keys "$ADMIN_KEY" text/plain "$E2E_DIR/k.json"; check "wrong content type" 415 "$STATUS"
printf '{"role":"auditor","role":"admin"}' >"$E2E_DIR/k.json"
req POST /v1/keys "$ADMIN_KEY" application/json "$E2E_DIR/k.json"; check "duplicate JSON key" 400 "$STATUS"

# --- charters ---------------------------------------------------------------------
req GET /v1/charter "$ADMIN_KEY"; SHA1=$(jget .sha256); check "charter version" 1 "$(jget .version)"
printf 'charter: local-commons\nversion: 2\nbogus: 1\n' >"$E2E_DIR/bad.yaml"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/bad.yaml"; check "invalid charter" 422 "$STATUS"
[ "$(jget '.error.errors | length')" -ge 2 ] && ok || bad "invalid charter lists every error: $BODY"
jget '.error.errors[]' | grep -q '^charter.yaml:3:1: ' && ok || bad "error located FILE:LINE:COL: $BODY"
req GET /v1/charter "$ADMIN_KEY"; check "failed PUT leaves charter" "$SHA1" "$(jget .sha256)"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/charter.yaml"; check "same version refused" 409 "$STATUS"
sed -e 's/^version: 1/version: 2/' -e 's/credits: 3000, period: month}/credits: 2500, period: month}/' \
	"$E2E_DIR/charter.yaml" >"$E2E_DIR/v2.yaml"
req POST /v1/charter/validate "$ADMIN_KEY" application/yaml "$E2E_DIR/v2.yaml"
check "validate" 200 "$STATUS"; check "validate valid" true "$(jget .valid)"
check "validate diff" "-500" "$(jget '.changes.institutions[0].projects[0].allocation.delta')"
req GET /v1/charter "$ADMIN_KEY"; check "validate changes nothing" "$SHA1" "$(jget .sha256)"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/v2.yaml"; check "apply v2" 200 "$STATUS"
req GET /v1/charter/history "$AUDITOR"; check "history" 2 "$(jget '.charters | length')"

# SIGHUP reload: invalid file keeps the charter, a newer valid one applies
# (the reload runs after the signal: wait for its outcome, at most 20 s)
printf 'charter: local-commons\nversion: [\n' >"$E2E_DIR/charter.yaml"
kill -HUP "$E2E_PID"
for _ in $(seq 200); do grep -q "charter reload failed" "$E2E_DIR/allotd.log" && break; sleep 0.1; done
grep -q "charter reload failed" "$E2E_DIR/allotd.log" && ok || bad "reload failure logged"
req GET /v1/charter "$ADMIN_KEY"; check "bad reload keeps v2" 2 "$(jget .version)"
sed 's/^version: 2/version: 3/' "$E2E_DIR/v2.yaml" >"$E2E_DIR/charter.yaml"
kill -HUP "$E2E_PID"
for _ in $(seq 200); do req GET /v1/charter "$ADMIN_KEY"; [ "$(jget .version)" = 3 ] && break; sleep 0.1; done
check "reload applies v3" 3 "$(jget .version)"

# --- audit log ------------------------------------------------------------------------
req GET /v1/audit "$AUDITOR"; check "audit" 200 "$STATUS"
check "audit records charter applies" 3 "$(jget '[.entries[] | select(.action == "charter.apply")] | length')"
check "audit hash chain" "$SHA1" "$(jget '[.entries[] | select(.action == "charter.apply")][1].before_sha256')"

# --- key revocation ---------------------------------------------------------------
KID=$(curl -s -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/keys" | jq -r '.keys[] | select(.role == "auditor") | .id')
req DELETE "/v1/keys/$KID" "$ADMIN_KEY"; check "revoke" 200 "$STATUS"
req GET /v1/charter "$AUDITOR"; check "revoked key refused" 401 "$STATUS"
req DELETE "/v1/keys/$KID" "$ADMIN_KEY"; check "revoke twice" 404 "$STATUS"

# --- a database newer than the binary is refused ------------------------------------------
e2e_stop
cp "$E2E_DIR/allot.db" "$E2E_DIR/newer.db"
sqlite3 "$E2E_DIR/newer.db" "PRAGMA user_version = 999" 2>/dev/null
"$BIN/allotd" --db "$E2E_DIR/newer.db" --listen 127.0.0.1:1 --keys "$E2E_DIR/keys" >/dev/null 2>"$E2E_DIR/newer.err"
check "newer database refused" 1 $?
grep -q "schema version 999 is newer than this allotd" "$E2E_DIR/newer.err" && ok || bad "newer database message: $(cat "$E2E_DIR/newer.err")"
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1

# --- the CLI ----------------------------------------------------------------------------
out=$("$BIN/allot" charter check "$E2E_ROOT/policies/default.yaml" 2>&1); rc=$?
check "cli charter check" "0 charter OK" "$rc $out"
"$BIN/allot" charter check "$E2E_DIR/bad.yaml" >/dev/null 2>"$E2E_DIR/err"; rc=$?
check "cli charter check invalid" 1 "$rc"
grep -q "bad.yaml:3:1: " "$E2E_DIR/err" && ok || bad "cli prints located errors"
ALLOT_KEY=$ADMIN_KEY "$BIN/allot" charter history >/dev/null; check "cli history" 0 $?
ALLOT_KEY=wrong "$BIN/allot" charter history 2>/dev/null; check "cli refused" 1 $?
ALLOT_KEY=$ADMIN_KEY "$BIN/allot" --server http://127.0.0.1:1 charter history 2>/dev/null; check "cli unreachable" 3 $?
"$BIN/allot" frobnicate 2>/dev/null; check "cli usage" 2 $?
sec=$(ALLOT_KEY=$ADMIN_KEY "$BIN/allot" keys create --role auditor 2>/dev/null)
req GET /v1/charter "$sec"; check "cli-created key works" 200 "$STATUS"
pub=$("$BIN/allot" keygen --out "$E2E_DIR/prov.key"); check "keygen exit" 0 $?
case "$pub" in ed25519:*) ok;; *) bad "keygen prints ed25519:BASE64: $pub";; esac
check "keygen mode" 600 "$(stat -c %a "$E2E_DIR/prov.key")"
# --check looks at the database, keys and model files too (test_check.sh): a
# fresh place for them, and a models folder with the charter's file
mkdir -p "$E2E_DIR/check-models" && printf 'GGUF' >"$E2E_DIR/check-models/stories260K.gguf"
"$BIN/allotd" --check --charter "$E2E_ROOT/policies/default.yaml" --db "$E2E_DIR/check.db" \
	--keys "$E2E_DIR/check-keys" --models "$E2E_DIR/check-models" >/dev/null; check "allotd --check" 0 $?

# --- bad numeric and name flags: one line on stderr, exit 1, no database created ----------
while IFS='|' read -r flag value want; do
	"$BIN/allotd" "$flag" "$value" --listen 127.0.0.1:1 --db "$E2E_DIR/flags.db" \
		--keys "$E2E_DIR/flagkeys" >/dev/null 2>"$E2E_DIR/flag.err"
	check "allotd $flag '$value' refused" 1 $?
	grep -qF -e "$want" "$E2E_DIR/flag.err" && ok || bad "allotd $flag '$value' says: $(cat "$E2E_DIR/flag.err")"
	[ ! -e "$E2E_DIR/flags.db" ] && ok || bad "allotd $flag '$value' created a database"
done <<'FLAGS'
--threads|0|--threads must be 1..256
--threads|257|--threads must be 1..256
--threads||--threads must be 1..256
--threads|2x|--threads must be 1..256
--flush-ms|-1|--flush-ms must be 0..10000
--flush-ms|10001|--flush-ms must be 0..10000
--flush-ms||--flush-ms must be 0..10000
--flush-ms|50ms|--flush-ms must be 0..10000
--flush-ms|99999999999999999999|--flush-ms must be 0..10000
--deployment|Bad!|--deployment must be 1..64
FLAGS

e2e_done
