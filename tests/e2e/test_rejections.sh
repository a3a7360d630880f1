#!/bin/bash
# Rejections are final (SPEC section 6, docs/LEDGER.md): a provider's signed
# record that the ledger refuses is decided for good.  Sent again (a retry
# after a lost answer or a kill -9), it gets the first answer even after the
# ledger or the charter moved on; its id with other content is a conflict;
# GET /v1/providers/{id}/rejections lists it.  Malformed records and bad
# signatures decide nothing and are not kept.
. "$(dirname "$0")/lib.sh"

e2e_cscs_charter rejections-test
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')
IKEY=$(e2e_api_key '{"role":"institution","institution":"epfl"}')
"$BIN/allot" keygen --out "$E2E_DIR/other.key" >/dev/null

NOW=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
HOURAGO=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
rec() { # id member quantity
	printf '{"record_id":"%s","provider":"cscs","seq":%d,"institution":"epfl","project":"climate","member":"%s","resource":"gpu_seconds","class":"h100","quantity":%d,"start":"%s","end":"%s"}\n' \
		"$1" "${4:-1}" "$2" "$3" "$HOURAGO" "$NOW"
}
signed() { "$BIN/allot" usage sign --key "${KEY:-$E2E_DIR/cscs.key}"; }
# post < FILE (not in a pipeline: it sets STATUS and BODY)
post() { jq -s '{records: .}' >"$E2E_DIR/b.json"; req POST /v1/usage "$PKEY" application/json "$E2E_DIR/b.json"; }
nrecords() { req GET "/v1/usage?limit=1000" "$ADMIN_KEY"; jget '.records | length'; }
used() { req GET /v1/quotas/epfl/climate "$ADMIN_KEY"; jget '.levels[-1].used // .project.used // empty'; }

# --- refused, then the charter adds the member: the same record stays refused
rec r-1 carol@epfl.ch 100 1 | signed >"$E2E_DIR/r1.jsonl"
post <"$E2E_DIR/r1.jsonl"
check "first answer: rejected" rejected "$(jget '.results[0].status')"
REASON=$(jget '.results[0].reason')
case "$REASON" in *"not a member"*) ok ;; *) bad "reason: $REASON" ;; esac
N0=$(nrecords)
sed 's/members: \[alice@epfl.ch, bob@epfl.ch\]/members: [alice@epfl.ch, bob@epfl.ch, carol@epfl.ch]/; s/^version: 1/version: 2/' \
	"$E2E_DIR/charter.yaml" >"$E2E_DIR/charter2.yaml"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/charter2.yaml"
check "charter v2 applied" 200 "$STATUS"
post <"$E2E_DIR/r1.jsonl"
check "same record again: rejected" rejected "$(jget '.results[0].status')"
check "same record again: the first reason" "$REASON" "$(jget '.results[0].reason')"
check "nothing booked" "$N0" "$(nrecords)"
post < <(rec r-1 carol@epfl.ch 101 1 | signed)
check "its id with other content: conflict" conflict "$(jget '.results[0].status')"
post < <(rec r-2 carol@epfl.ch 100 2 | signed)
check "a new id for it: accepted" accepted "$(jget '.results[0].status')"

# --- within one batch: refused, then the same record again ----------------------
post < <({ rec r-3 dave@epfl.ch 5 3 | signed; rec r-3 dave@epfl.ch 5 3 | signed; })
check "refused in a batch" rejected "$(jget '.results[0].status')"
check "repeated in the same batch: the same answer" rejected "$(jget '.results[1].status')"

# --- what decides nothing is not kept ---------------------------------------------
post < <(rec r-4 alice@epfl.ch 7 4 | KEY=$E2E_DIR/other.key signed)
check "bad signature: rejected" rejected "$(jget '.results[0].status')"
post < <(rec r-4 alice@epfl.ch 7 4 | signed)
check "then signed right: accepted" accepted "$(jget '.results[0].status')"
post < <(rec r-5 alice@epfl.ch 7 5 | jq -c 'del(.quantity)' | signed)
check "malformed: rejected" rejected "$(jget '.results[0].status')"
post < <(rec r-5 alice@epfl.ch 7 5 | signed)
check "then well-formed: accepted" accepted "$(jget '.results[0].status')"

# --- the list of refusals -------------------------------------------------------------
req GET /v1/providers/cscs/rejections "$PKEY"
check "rejections listed" 200 "$STATUS"
check "rejections: r-1 and r-3" '["r-1","r-3"]' "$(jget '[.rejections[].record_id]' | jq -c .)"
check "r-1's reason" "$REASON" "$(jget '.rejections[0].reason')"
check "r-1's seq" 1 "$(jget '.rejections[0].seq')"
check "complete" null "$(jget .next)"
req GET "/v1/providers/cscs/rejections?limit=1" "$ADMIN_KEY"
check "a page of one" 1 "$(jget '.rejections | length')"
NEXT=$(jget .next)
req GET "/v1/providers/cscs/rejections?limit=1&after=$NEXT" "$ADMIN_KEY"
check "the next page" r-3 "$(jget '.rejections[0].record_id')"
req GET /v1/providers/cscs/rejections "$IKEY"
check "an institution may not read them" 403 "$STATUS"
req GET "/v1/providers/cscs/rejections?limit=0" "$PKEY"
check "limit 0 refused" 400 "$STATUS"
req GET "/v1/providers/cscs/rejections?after=abc" "$PKEY"
check "after not a number refused" 400 "$STATUS"
req GET "/v1/providers/cscs/rejections?limit=1001" "$PKEY"
check "limit over 1000 refused" 400 "$STATUS"
req GET /v1/providers/other/rejections "$PKEY"
check "another provider's refusals forbidden" 403 "$STATUS"

# --- kept across kill -9 ------------------------------------------------------------
e2e_kill9
e2e_start_on "$PORT" --charter "$E2E_DIR/charter.yaml" || exit 1
post <"$E2E_DIR/r1.jsonl"
check "after kill -9: still the first answer" "rejected|$REASON" "$(jget '.results[0].status + "|" + .results[0].reason')"
e2e_done
