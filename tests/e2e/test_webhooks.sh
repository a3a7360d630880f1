#!/bin/bash
# Webhooks (SPEC section 4, docs/WEBHOOKS.md) against a real receiver
# (tests/e2e/webhook/receiver.py): the `charter` event of an applied charter,
# `alert` for each `alerts` threshold crossed by a booking (once per level,
# period and threshold: a replay or a later booking sends nothing new),
# `overage` when a level goes past its allocation; every message's Standard
# Webhooks signature verified with the OpenSSL command line against the key
# of GET /v1/webhooks/key; retries with the same webhook-id after the
# receiver answers 500; at-least-once delivery of events written while
# the receiver failed, across kill -9 of allotd; and the retention
# (--webhook-retention-days): delivered events pruned, undelivered ones and
# the newest charter event kept, so a restart sends nothing twice.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "test_webhooks: SKIPPED: python3 is absent"; exit 0; }
RLOG=$E2E_DIR/received.jsonl
CONTROL=$E2E_DIR/control
echo 500 >"$CONTROL"
python3 "$E2E_ROOT/tests/e2e/webhook/receiver.py" "$E2E_DIR/rport" "$RLOG" "$CONTROL" &
RPID=$!
trap 'e2e_stop; kill $RPID 2>/dev/null' EXIT
for _ in $(seq 1 50); do [ -s "$E2E_DIR/rport" ] && break; sleep 0.1; done
RPORT=$(cat "$E2E_DIR/rport")
HOOK=http://127.0.0.1:$RPORT/hook

PUB=$("$BIN/allot" keygen --out "$E2E_DIR/cscs.key")
charter() { # VERSION INSTITUTION_CREDITS ALERTS
	cat <<YAML
charter: hooks-test
version: $1
effective: 2026-01-01T00:00:00Z
timezone: UTC
rates:
  - {resource: cpu_seconds, credits: 1}
providers:
  - {id: cscs, keys: ["$PUB"], resources: [cpu_seconds]}
institutions:
  - id: epfl
    allocation: {credits: $2, period: month}
    overage: {mode: soft, grace_percent: 100}
    alerts: [$3]
    projects:
      - id: climate
        allocation: {credits: 150, period: month}
        members: [alice@epfl.ch]
webhooks:
  - {url: "$HOOK", events: [alert, overage, charter, settlement_failed]}
YAML
}
charter 1 200 "50, 100" >"$E2E_DIR/charter.yaml"
export ALLOT_WEBHOOK_BACKOFF_MS=200
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')

# The signing key, as a PEM SubjectPublicKeyInfo for openssl.
req GET /v1/webhooks/key ""
check "key endpoint" 200 "$STATUS"
check "key algorithm" ed25519 "$(jget .algorithm)"
KEY=$(jget .key)
check "Standard Webhooks form of the same key" "whpk_${KEY#ed25519:}" "$(jget .standard_webhooks_key)"
{ echo "-----BEGIN PUBLIC KEY-----"
  { printf '\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00'; printf '%s' "${KEY#ed25519:}" | base64 -d; } | base64
  echo "-----END PUBLIC KEY-----"; } >"$E2E_DIR/webhook.pub.pem"

# wait_for JQ N: until N delivered (status 200) messages match the jq filter on the body
wait_for() {
	local i n
	for i in $(seq 1 100); do
		n=$(jq -c "select(.status == 200) | .body | fromjson | select($1)" "$RLOG" 2>/dev/null | wc -l)
		[ "$n" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
# verify_all: every message received carries a valid v1a signature over id.timestamp.body
verify_all() {
	local n=0 bad_n=0 line
	while IFS= read -r line; do
		printf '%s' "$line" | jq -j '"\(.id).\(.timestamp).\(.body)"' >"$E2E_DIR/signed"
		printf '%s' "$line" | jq -r .signature | sed 's/^v1a,//' | base64 -d >"$E2E_DIR/sig"
		if openssl pkeyutl -verify -pubin -inkey "$E2E_DIR/webhook.pub.pem" -rawin \
			-in "$E2E_DIR/signed" -sigfile "$E2E_DIR/sig" >/dev/null 2>&1; then
			n=$((n + 1))
		else
			bad_n=$((bad_n + 1))
		fi
	done <"$RLOG"
	check "$1: every signature verifies ($n good)" 0 "$bad_n"
	# and a tampered body does not
	printf '%s' "$(head -1 "$RLOG")" | jq -j '"\(.id).\(.timestamp).\(.body) "' >"$E2E_DIR/signed"
	head -1 "$RLOG" | jq -r .signature | sed 's/^v1a,//' | base64 -d >"$E2E_DIR/sig"
	openssl pkeyutl -verify -pubin -inkey "$E2E_DIR/webhook.pub.pem" -rawin \
		-in "$E2E_DIR/signed" -sigfile "$E2E_DIR/sig" >/dev/null 2>&1 &&
		bad "$1: a tampered body verifies" || ok
}

# --- the charter event, refused twice, then delivered with the same id ----------------
for _ in $(seq 1 100); do
	[ "$(jq -r 'select(.status == 500) | .id' "$RLOG" 2>/dev/null | wc -l)" -ge 2 ] && break
	sleep 0.1
done
echo 200 >"$CONTROL"
wait_for '.type == "charter" and .data.version == 1' 1 && ok || bad "charter event v1 not delivered"
CID=$(jq -r 'select(.status == 200) | select(.body | fromjson | .type == "charter") | .id' "$RLOG" | head -1)
case "$CID" in msg_????????????????????????????????) ok ;; *) bad "event id [$CID]" ;; esac
N500=$(jq -r "select(.id == \"$CID\" and .status == 500) | .id" "$RLOG" | wc -l)
[ "$N500" -ge 2 ] && ok || bad "the charter event was tried $N500 times with 500 before (expected retries)"
check "charter event data" "hooks-test 1 ed25519" \
	"$(jq -r "select(.id == \"$CID\" and .status == 200) | .body | fromjson | \"\(.data.charter) \(.data.version) \(.data.sha256 | length | if . == 64 then \"ed25519\" else . end)\"" "$RLOG")"
req GET /metrics ""
printf '%s' "$BODY" | grep -q '^allot_webhook_deliveries_total{outcome="failed"} [1-9]' && ok || bad "failed deliveries not counted"

# --- alerts and overage at booking time -----------------------------------------------
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
HOURAGO=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
post() { # id quantity
	printf '{"record_id":"%s","provider":"cscs","institution":"epfl","project":"climate","member":null,"resource":"cpu_seconds","class":null,"model":null,"quantity":%s,"start":"%s","end":"%s","kind":"usage","supersedes":null}\n' \
		"$1" "$2" "$HOURAGO" "$NOW" | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" |
		jq -s '{records: .}' >"$E2E_DIR/b.json"
	req POST /v1/usage "$PKEY" application/json "$E2E_DIR/b.json"
	[ "$STATUS" = 200 ] || bad "usage $1: $STATUS $BODY"
}
post r1 120 # institution 60% of 200: alert 50; project 120 of 150
wait_for '.type == "alert" and .data.threshold == 50' 1 && ok || bad "alert 50 not delivered"
post r2 90  # institution 210: alert 100, overage; project 210 of 150: overage
wait_for '.type == "alert" and .data.threshold == 100' 1 && ok || bad "alert 100 not delivered"
wait_for '.type == "overage" and .data.level == "institution"' 1 && ok || bad "institution overage not delivered"
wait_for '.type == "overage" and .data.level == "project"' 1 && ok || bad "project overage not delivered"
post r2 90  # a replay: a duplicate, nothing new
post r3 10  # past every threshold already: nothing new
sleep 1
ev() { jq -c "select(.status == 200) | .body | fromjson | select($1)" "$RLOG" | wc -l; }
check "alert 50 once" 1 "$(ev '.type == "alert" and .data.threshold == 50')"
check "alert 100 once" 1 "$(ev '.type == "alert" and .data.threshold == 100')"
check "institution overage once" 1 "$(ev '.type == "overage" and .data.level == "institution"')"
check "project overage once" 1 "$(ev '.type == "overage" and .data.level == "project"')"
check "no alert at the project level (alerts are the institution's)" 0 "$(ev '.type == "alert" and .data.level != "institution"')"
A=$(jq -c 'select(.status == 200) | .body | fromjson | select(.type == "alert" and .data.threshold == 100) | .data' "$RLOG")
check "alert data" "epfl 210 200 r2" "$(printf '%s' "$A" | jq -r '"\(.institution) \(.used) \(.limit) \(.record_id)"')"
O=$(jq -c 'select(.status == 200) | .body | fromjson | select(.type == "overage" and .data.level == "project") | .data' "$RLOG")
check "overage data" "epfl/climate 60" "$(printf '%s' "$O" | jq -r '"\(.key) \(.overage)"')"
check "unique event ids" 0 "$(jq -r 'select(.status == 200) | .id' "$RLOG" | sort | uniq -d | wc -l)"
verify_all "first daemon"

# --- at least once across kill -9 -----------------------------------------------------
# The receiver fails; a new charter (its event) and a booking that crosses a
# new threshold (its event, in the booking's transaction) wait in the outbox;
# allotd dies; restarted, it delivers both.
echo 500 >"$CONTROL"
charter 2 1000 "25, 50, 100" >"$E2E_DIR/charter2.yaml"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/charter2.yaml"
check "charter v2 applied" 200 "$STATUS"
post r4 40 # 260 of 1000: alert 25
# both tried (and refused) at least once before the crash
tried() { jq -c "select(.status == 500) | .body | fromjson | select($1)" "$RLOG" | wc -l; }
for _ in $(seq 1 100); do
	[ "$(tried '.type == "charter" and .data.version == 2')" -ge 1 ] &&
		[ "$(tried '.type == "alert" and .data.threshold == 25')" -ge 1 ] && break
	sleep 0.1
done
e2e_kill9
check "nothing of v2 delivered before the crash" 0 "$(ev '.type == "charter" and .data.version == 2')"
echo 200 >"$CONTROL"
e2e_start_on "$PORT" --charter "$E2E_DIR/charter.yaml" || exit 1
wait_for '.type == "charter" and .data.version == 2' 1 && ok || bad "charter v2 event not delivered after kill -9"
wait_for '.type == "alert" and .data.threshold == 25' 1 && ok || bad "alert 25 not delivered after kill -9"
check "charter v2 event delivered once" 1 "$(ev '.type == "charter" and .data.version == 2')"
# each delivered event id was tried with 500 before the crash, and carries the same id after
ID25=$(jq -r 'select(.status == 200) | select(.body | fromjson | .type == "alert" and .data.threshold == 25) | .id' "$RLOG")
[ "$(jq -r "select(.id == \"$ID25\" and .status == 500) | .id" "$RLOG" | wc -l)" -ge 1 ] && ok ||
	bad "alert 25 was not attempted before the crash"
verify_all "after the restart"

# --- a charter with a bad webhook is refused ------------------------------------------
sed 's|events: \[alert, overage, charter, settlement_failed\]|events: [alert, bogus]|; s/^version: 1/version: 9/' \
	"$E2E_DIR/charter.yaml" >"$E2E_DIR/bad.yaml"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/bad.yaml"
check "unknown event refused" 422 "$STATUS"
printf '%s' "$BODY" | grep -q "unknown webhook event 'bogus'" && ok || bad "bad event message: $BODY"
sed 's|url: "[^"]*"|url: "ftp://x"|; s/^version: 1/version: 9/' "$E2E_DIR/charter.yaml" >"$E2E_DIR/bad.yaml"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/bad.yaml"
check "bad url refused" 422 "$STATUS"

# --- retention: delivered events older than --webhook-retention-days go --------------
# sql QUERY: a count from the outbox (read-only, beside the running daemon)
sql() { e2e_sql_ro "SELECT count(*) FROM webhook_outbox WHERE $1"; }
for d in -1 3651 x ""; do
	out=$("$BIN/allotd" --webhook-retention-days "$d" --check 2>&1)
	check "--webhook-retention-days '$d' refused" "1 allotd: --webhook-retention-days must be 0..3650" "$? $out"
done
[ "$(sql 'delivered_us IS NOT NULL')" -ge 7 ] && ok || bad "the default retention (7 days) kept $(sql 'delivered_us IS NOT NULL') delivered events"
charter 3 1000 "25, 50, 75, 100" >"$E2E_DIR/charter3.yaml"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/charter3.yaml"
check "charter v3 applied" 200 "$STATUS"
wait_for '.type == "charter" and .data.version == 3' 1 && ok || bad "charter v3 event not delivered"
echo 500 >"$CONTROL"
post r5 500 # 760 of 1000: alert 75, which the receiver refuses for now
for _ in $(seq 1 100); do [ "$(tried '.type == "alert" and .data.threshold == 75')" -ge 1 ] && break; sleep 0.1; done
e2e_stop
# retention 0: every delivered event goes at the worker's first pass, but the
# newest charter event (what a start checks) and the undelivered alert
e2e_start_on "$PORT" --charter "$E2E_DIR/charter.yaml" --webhook-retention-days 0 || exit 1
for _ in $(seq 1 100); do [ "$(sql 'delivered_us IS NOT NULL')" = 1 ] && break; sleep 0.1; done
check "retention 0: delivered events left" 1 "$(sql 'delivered_us IS NOT NULL')"
check "retention 0: the newest charter event kept" 1 "$(sql "delivered_us IS NOT NULL AND dedupe = 'charter:3'")"
check "retention 0: the undelivered alert kept" 1 "$(sql "delivered_us IS NULL AND dedupe LIKE 'alert:%:75'")"
grep -q "delivered events older than 0 days deleted from the outbox" "$E2E_DIR/allotd.log" && ok || bad "the prune was not logged"
echo 200 >"$CONTROL"
wait_for '.type == "alert" and .data.threshold == 75' 1 && ok || bad "alert 75 not delivered after the prune"
e2e_stop
# a restart finds the newest charter's event and does not send it again
e2e_start_on "$PORT" --charter "$E2E_DIR/charter.yaml" || exit 1
sleep 1
check "charter v3 event delivered once" 1 "$(ev '.type == "charter" and .data.version == 3')"
check "alert 75 delivered once" 1 "$(ev '.type == "alert" and .data.threshold == 75')"
kill "$RPID" 2>/dev/null
e2e_done
