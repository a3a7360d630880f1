#!/bin/bash
# The ledger end to end: signed usage, idempotency, conflicts, signatures,
# corrections, quotas, listing, reports, and durability across restarts.
. "$(dirname "$0")/lib.sh"

PUB=$("$BIN/allot" keygen --out "$E2E_DIR/cscs.key")
PUB2=$("$BIN/allot" keygen --out "$E2E_DIR/other.key")
"$BIN/allot" keygen --out "$E2E_DIR/rogue.key" >/dev/null
cat >"$E2E_DIR/charter.yaml" <<YAML
charter: ledger-test
version: 1
effective: 2026-01-01T00:00:00Z
timezone: Europe/Zurich
pool: 1000000
rates:
  - {resource: gpu_seconds, class: h100, credits: 0.03}
  - {resource: gpu_seconds, credits: 0.01}
  - {resource: cpu_seconds, credits: 0.000125}
providers:
  - {id: cscs, keys: ["$PUB"], resources: [gpu_seconds, cpu_seconds]}
  - {id: other, keys: ["$PUB2"], resources: [gpu_seconds]}
institutions:
  - id: epfl
    allocation: {credits: 1000, period: month, rollover: 0.25}
    overage: {mode: hard}
    alerts: [50, 100]
    projects:
      - id: climate
        allocation: {credits: 600, period: month}
        member_allocation: {credits: 100, period: month}
        members: [alice@epfl.ch, bob@epfl.ch]
  - id: ethz
    allocation: {credits: 500, period: month}
    projects:
      - id: robotics
        allocation: {credits: 500, period: month}
        members: [dave@ethz.ch]
YAML
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')
OKEY=$(e2e_api_key '{"role":"provider","provider":"other"}')
IKEY=$(e2e_api_key '{"role":"institution","institution":"epfl"}')
EKEY=$(e2e_api_key '{"role":"institution","institution":"ethz"}')

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
HOURAGO=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
rec() { # id quantity [extra json fields, merged over the defaults]
	printf '{"record_id":"%s","provider":"cscs","institution":"epfl","project":"climate","member":"alice@epfl.ch","resource":"gpu_seconds","class":"h100","model":null,"quantity":%s,"start":"%s","end":"%s","kind":"usage","supersedes":null}\n' \
		"$1" "$2" "$HOURAGO" "$NOW" | jq -c ". + {${3:-}}"
}
jgetc() { printf '%s' "$BODY" | jq -c "$1"; }
sign() { "$BIN/allot" usage sign --key "${1:-$E2E_DIR/cscs.key}"; }
batch() { jq -s '{records: .}' ; }
post() { # file key
	req POST /v1/usage "${2:-$PKEY}" application/json "$1"
}

# --- acceptance and exact pricing -----------------------------------------------
{ rec job-1 100; rec job-2 7200; } | sign | batch >"$E2E_DIR/b1.json"
post "$E2E_DIR/b1.json"; check "batch accepted" 200 "$STATUS"
check "accepted count" 2 "$(jget .summary.accepted)"
check "charge job-1 = 100 x 0.03" "3" "$(jget '.results[0].charge')"
check "charge job-2 = 7200 x 0.03" "216" "$(jget '.results[1].charge')"
check "charter version recorded" 1 "$(jget '.results[0].charter_version')"

# --- idempotency: the same batch three times charges once ------------------------
for i in 1 2; do
	post "$E2E_DIR/b1.json"
	check "replay $i all duplicates" 2 "$(jget .summary.duplicate)"
	check "replay $i returns original charge" "216" "$(jget '.results[1].charge')"
done
req GET "/v1/quotas/epfl/climate" "$IKEY"
check "used after replays" "219" "$(jget '.levels[] | select(.level == "project") | .used')"

# --- conflict: same id, other content --------------------------------------------
rec job-1 101 | sign | batch >"$E2E_DIR/c.json"
post "$E2E_DIR/c.json"; check "conflict" conflict "$(jget '.results[0].status')"

# --- signatures and provider binding ---------------------------------------------
rec sig-1 10 | sign "$E2E_DIR/rogue.key" | batch >"$E2E_DIR/s.json"
post "$E2E_DIR/s.json"; check "unknown key rejected" rejected "$(jget '.results[0].status')"
rec sig-2 10 | sign "$E2E_DIR/other.key" | batch >"$E2E_DIR/s.json"
post "$E2E_DIR/s.json"; check "another provider's key rejected" rejected "$(jget '.results[0].status')"
rec sig-3 10 | sign | jq -c '.quantity = 11' | batch >"$E2E_DIR/s.json"
post "$E2E_DIR/s.json"; check "altered record rejected" rejected "$(jget '.results[0].status')"
rec sig-4 10 | batch >"$E2E_DIR/s.json"
post "$E2E_DIR/s.json"; check "missing signature rejected" rejected "$(jget '.results[0].status')"
check "missing signature reason" 'missing field "sig"' "$(jget '.results[0].reason')"
rec sig-5 10 | sign | jq -c '.sig |= (.[0:10] + (if .[10:11] == "A" then "B" else "A" end) + .[11:])' | batch >"$E2E_DIR/s.json"
post "$E2E_DIR/s.json"; check "flipped signature rejected" rejected "$(jget '.results[0].status')"
rec sig-6 10 | sign | batch >"$E2E_DIR/s.json"
post "$E2E_DIR/s.json" "$OKEY"; check "record for another provider rejected" rejected "$(jget '.results[0].status')"
req GET "/v1/usage?provider=cscs" "$ADMIN_KEY"; check "rejected records wrote nothing" 2 "$(jget '.records | length')"

# --- bad input: each field wrong in turn ---------------------------------------------
bad_field() { # description jq-filter expected-reason-substring
	rec "bad-$RANDOM" 5 | jq -c "$2" | sign | batch >"$E2E_DIR/bad.json"
	post "$E2E_DIR/bad.json"
	if [ "$(jget '.results[0].status')" = rejected ] && jget '.results[0].reason' | grep -q -- "$3"; then ok
	else bad "$1: $BODY"; fi
}
bad_field "unknown institution" '.institution = "mit"' 'unknown institution'
bad_field "unknown project" '.project = "nope"' 'unknown project'
bad_field "not a member" '.member = "eve@epfl.ch"' 'not a member'
bad_field "unknown field" '.colour = "red"' 'unknown field'
bad_field "zero quantity" '.quantity = 0' 'quantity'
bad_field "fractional quantity" '.quantity = 1.5' 'quantity'
bad_field "huge quantity" '.quantity = 10000000000000' 'quantity'
bad_field "end before start" '.start = "2026-12-31T00:00:00Z"' 'before'
bad_field "end in the future" '.end = "2099-01-01T00:00:00Z" | .start = "2098-01-01T00:00:00Z"' 'future'
bad_field "bad time" '.end = "yesterday"' 'RFC 3339'
bad_field "resource not allowed" '.resource = "tpu_seconds"' 'may not report'
bad_field "no rate" '.resource = "cpu_seconds" | .class = null | .model = "ghost"' 'unknown model'
bad_field "bad kind" '.kind = "refund"' 'kind'
bad_field "wrong type" '.institution = 5' 'must be a string'
bad_field "control character" '.record_id = "a\u0001b"' 'control'
bad_field "before any charter" '.start = "2025-01-01T00:00:00Z" | .end = "2025-01-02T00:00:00Z"' 'no charter'
printf '{"records":[]}' >"$E2E_DIR/e.json"; post "$E2E_DIR/e.json"; check "empty batch" 400 "$STATUS"
printf '{"records":[1],"x":1}' >"$E2E_DIR/e.json"; post "$E2E_DIR/e.json"; check "unknown top-level field" 400 "$STATUS"
printf '{"records":' >"$E2E_DIR/e.json"; post "$E2E_DIR/e.json"; check "malformed JSON" 400 "$STATUS"
req POST /v1/usage "$IKEY" application/json "$E2E_DIR/b1.json"; check "institution cannot submit" 403 "$STATUS"
req POST /v1/usage "$PKEY" text/plain "$E2E_DIR/b1.json"; check "wrong content type" 415 "$STATUS"

# --- corrections -----------------------------------------------------------------------
rec adj-1 100 '"kind":"adjustment","adjustment":"refund","supersedes":"job-2"' | sign | batch >"$E2E_DIR/a.json"
post "$E2E_DIR/a.json"; check "refund accepted" accepted "$(jget '.results[0].status')"
check "refund charge" "-3" "$(jget '.results[0].charge')"
rec adj-2 8000 '"kind":"adjustment","adjustment":"credit","supersedes":"job-2"' | sign | batch >"$E2E_DIR/a.json"
post "$E2E_DIR/a.json"; check "credit below zero rejected" rejected "$(jget '.results[0].status')"
rec adj-3 5 '"kind":"adjustment","adjustment":"debit","supersedes":"nothing"' | sign | batch >"$E2E_DIR/a.json"
post "$E2E_DIR/a.json"; check "correction of nothing rejected" rejected "$(jget '.results[0].status')"
rec void-1 100 '"kind":"void","supersedes":"job-1"' | sign | batch >"$E2E_DIR/a.json"
post "$E2E_DIR/a.json"; check "void accepted" accepted "$(jget '.results[0].status')"
check "void charge" "-3" "$(jget '.results[0].charge')"
rec void-2 100 '"kind":"void","supersedes":"job-1"' | sign | batch >"$E2E_DIR/a.json"
post "$E2E_DIR/a.json"; check "second void rejected" rejected "$(jget '.results[0].status')"
rec adj-4 1 '"kind":"adjustment","adjustment":"debit","supersedes":"void-1"' | sign | batch >"$E2E_DIR/a.json"
post "$E2E_DIR/a.json"; check "adjusting a void rejected" rejected "$(jget '.results[0].status')"
req GET "/v1/usage?provider=cscs" "$ADMIN_KEY"; check "originals kept" 4 "$(jget '.records | length')"

# --- quotas: every level ---------------------------------------------------------------
# net so far: 3 + 216 - 3 - 3 = 213
req GET /v1/quotas/epfl/climate "$IKEY"; check "quota" 200 "$STATUS"
check "project used" "213" "$(jget '.levels[] | select(.level == "project") | .used')"
check "project remaining" "387" "$(jget '.levels[] | select(.level == "project") | .remaining')"
check "member used" "213" "$(jget '.members[] | select(.id == "epfl/climate/alice@epfl.ch") | .used')"
check "member view listed" 2 "$(jget '.members | length')"
check "institution used" "213" "$(jget '.levels[] | select(.level == "institution") | .used')"
check "pool present" "1000000" "$(jget '.levels[] | select(.level == "pool") | .allocation')"
check "alerts crossed" "[]" "$(jgetc '.levels[] | select(.level == "institution") | .alerts_crossed')"
req GET /v1/quotas/epfl "$IKEY"; check "institution view" 200 "$STATUS"; check "projects listed" 1 "$(jget '.projects | length')"
req GET /v1/quotas/ethz "$IKEY"; check "other institution forbidden" 403 "$STATUS"
req GET /v1/quotas/nowhere "$ADMIN_KEY"; check "unknown institution" 404 "$STATUS"

# overage: past the member's 100 credits, recorded and flagged, never dropped
rec big-1 15000 | sign | batch >"$E2E_DIR/o.json"
post "$E2E_DIR/o.json"; check "overage accepted" accepted "$(jget '.results[0].status')"
check "overage flagged" true "$(jget '.results[0].overage')"
req GET /v1/quotas/epfl "$IKEY"
check "alerts crossed at 50%" "[50]" "$(jgetc '.levels[] | select(.level == "institution") | .alerts_crossed')"

# --- listing, filters, pagination, scoping --------------------------------------------------
req GET "/v1/usage?limit=2" "$ADMIN_KEY"; check "page size" 2 "$(jget '.records | length')"
NEXT=$(jget .next)
req GET "/v1/usage?limit=2&after=$NEXT" "$ADMIN_KEY"; check "next page" 2 "$(jget '.records | length')"
req GET "/v1/usage?institution=ethz" "$IKEY"; check "institution pinned" 403 "$STATUS"
req GET "/v1/usage" "$EKEY"; check "ethz sees nothing of epfl" 0 "$(jget '.records | length')"
req GET "/v1/usage?limit=0" "$ADMIN_KEY"; check "bad limit" 400 "$STATUS"
curl -s -D "$E2E_DIR/h" -o "$E2E_DIR/u.csv" -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/usage?provider=cscs&format=csv"
check "usage csv header" "id,leaf_index,provider,record_id" "$(head -1 "$E2E_DIR/u.csv" | cut -d, -f1-4)"
check "usage csv rows" 5 "$(tail -n +2 "$E2E_DIR/u.csv" | grep -c .)"
grep -qi '^X-Allot-Checkpoint: ' "$E2E_DIR/h" && ok || bad "usage csv carries the checkpoint"
req GET "/v1/usage?format=xml" "$ADMIN_KEY"; check "bad usage format" 400 "$STATUS"

# --- reports -------------------------------------------------------------------------------
FROM=$(date -u -d '-40 days' +%Y-%m-%d); TO=$(date -u -d '+2 days' +%Y-%m-%d)
req GET "/v1/reports/usage?from=$FROM&to=$TO&group_by=institution,resource&format=json" "$ADMIN_KEY"
check "report json" 200 "$STATUS"; check "report total" "663" "$(jget .total.charge)"
req GET "/v1/reports/usage?from=$FROM&to=$TO&group_by=project,day&format=csv" "$IKEY"
check "report csv" 200 "$STATUS"
check "csv header" "project,day,charge,records" "$(printf '%s' "$BODY" | head -1 | tr -d '\r')"
req GET "/v1/reports/usage?from=$FROM&to=$TO&group_by=colour" "$ADMIN_KEY"; check "bad group_by" 400 "$STATUS"
"$BIN/allot" report usage --from "$FROM" --to "$TO" --group-by member --format csv --out "$E2E_DIR/r.csv" 2>/dev/null
check "cli report needs key" 1 $?
ALLOT_KEY=$IKEY "$BIN/allot" report usage --from "$FROM" --to "$TO" --group-by member --out "$E2E_DIR/r.csv"
check "cli report" 0 $?; grep -q '^epfl/climate/alice@epfl.ch,663,' "$E2E_DIR/r.csv" && ok || bad "cli report content: $(cat "$E2E_DIR/r.csv")"
# the CSV report's signed checkpoint lands beside it
head -1 "$E2E_DIR/r.csv.checkpoint" | grep -q '^allot/' && ok || bad "csv report checkpoint: $(cat "$E2E_DIR/r.csv.checkpoint" 2>&1)"
grep -q '^— allot/' "$E2E_DIR/r.csv.checkpoint" && ok || bad "csv report checkpoint is signed"
ALLOT_KEY=$IKEY "$BIN/allot" quota show epfl/climate >/dev/null; check "cli quota show" 0 $?

# --- sequence reporting -------------------------------------------------------------------
{ rec s-1 1 '"seq":1'; rec s-2 1 '"seq":2'; rec s-4 1 '"seq":4'; rec s-4b 1 '"seq":4'; } | sign | batch >"$E2E_DIR/q.json"
post "$E2E_DIR/q.json"
req GET /v1/providers/cscs/sequence "$PKEY"; check "seq gap" '[{"from":3,"to":3}]' "$(jgetc .gaps)"
check "seq repeat" '[4]' "$(jgetc .repeats)"
req GET /v1/providers/other/sequence "$PKEY"; check "other provider's sequence forbidden" 403 "$STATUS"

# --- durability: kill -9, restart, everything acknowledged is there ---------------------------
req GET "/v1/usage?limit=1000" "$ADMIN_KEY"; BEFORE=$(jget '.records | length')
e2e_kill9
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
req GET "/v1/usage?limit=1000" "$ADMIN_KEY"; check "records survive kill -9" "$BEFORE" "$(jget '.records | length')"
post "$E2E_DIR/b1.json"; check "still idempotent after restart" 2 "$(jget .summary.duplicate)"
ALLOT_KEY=$PKEY "$BIN/allot" usage submit <(rec cli-1 10 | sign) >/dev/null; check "cli submit" 0 $?
ALLOT_KEY=$PKEY "$BIN/allot" usage submit <(rec cli-1 10 | sign) >"$E2E_DIR/out"; check "cli resubmit" 0 $?
check "cli resubmit is duplicate" "accepted 0, duplicate 1, refused 0" "$(cat "$E2E_DIR/out")"

e2e_done
