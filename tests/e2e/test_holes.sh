#!/bin/bash
# Three small holes in the accounting promise (issue #11, item 7): a
# provider booking usage under another provider's model; "stop": "" (the
# string form) answered 400 after the prompt was booked; an institution key
# "revoking" another institution's member answered revoked: true and did
# nothing.  Each is refused now, and the refusal changes nothing.
. "$(dirname "$0")/lib.sh"

PUB=$("$BIN/allot" keygen --out "$E2E_DIR/cscs.key")
PUB2=$("$BIN/allot" keygen --out "$E2E_DIR/other.key")
cat >"$E2E_DIR/charter.yaml" <<YAML
charter: holes-test
version: 1
effective: 2026-01-01T00:00:00Z
timezone: Europe/Zurich
rates:
  - {resource: gpu_seconds, credits: 0.01}
  - {resource: tokens_in,  model: stories, credits: 0.0001}
  - {resource: tokens_out, model: stories, credits: 0.0003}
  - {resource: tokens_in,  model: big, credits: 0.0001}
  - {resource: tokens_out, model: big, credits: 0.0003}
providers:
  - {id: cscs, keys: ["$PUB"], resources: [gpu_seconds]}
  - {id: other, keys: ["$PUB2"], resources: [gpu_seconds, tokens_in, tokens_out]}
  - {id: local, builtin: true}
models:
  - {id: stories, provider: local, file: stories260K.gguf}
  - {id: big, provider: other, url: "http://127.0.0.1:9/v1"}
institutions:
  - id: epfl
    allocation: {credits: 1000, period: month}
    models: [stories]
    projects:
      - id: climate
        allocation: {credits: 500, period: month}
        members: [alice@epfl.ch, bob@epfl.ch]
  - id: ethz
    allocation: {credits: 1000, period: month}
    projects:
      - id: robotics
        allocation: {credits: 500, period: month}
        members: [dave@ethz.ch]
YAML
e2e_start --charter "$E2E_DIR/charter.yaml" --threads 1 || exit 1
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')
OKEY=$(e2e_api_key '{"role":"provider","provider":"other"}')
IKEY=$(e2e_api_key '{"role":"institution","institution":"epfl"}')

NOW=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
HOURAGO=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
rec() { # id provider [extra json fields]
	printf '{"record_id":"%s","provider":"%s","institution":"epfl","project":"climate","member":"alice@epfl.ch","resource":"gpu_seconds","quantity":100,"start":"%s","end":"%s"}\n' \
		"$1" "$2" "$HOURAGO" "$NOW" | jq -c ". + {${3:-}}"
}
batch() { jq -s '{records: .}'; }
nrecords() { req GET "/v1/usage?limit=1000" "$ADMIN_KEY"; jget '.records | length'; }

# --- a record naming a model must name one of its own provider's (SPEC section 6) ----------------
N0=$(nrecords)
rec m-1 cscs '"model":"big"' | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" | batch >"$E2E_DIR/m.json"
req POST /v1/usage "$PKEY" application/json "$E2E_DIR/m.json"
check "another provider's model rejected" rejected "$(jget '.results[0].status')"
check "the reason names the model's provider" 'model "big" is served by provider "other", not "cscs"' \
	"$(jget '.results[0].reason')"
check "nothing booked" "$N0" "$(nrecords)"
rec m-2 other '"model":"big"' | "$BIN/allot" usage sign --key "$E2E_DIR/other.key" | batch >"$E2E_DIR/m.json"
req POST /v1/usage "$OKEY" application/json "$E2E_DIR/m.json"
check "its own model accepted" accepted "$(jget '.results[0].status')"
rec m-3 cscs | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" | batch >"$E2E_DIR/m.json"
req POST /v1/usage "$PKEY" application/json "$E2E_DIR/m.json"
check "no model: accepted" accepted "$(jget '.results[0].status')"

# --- revoking another institution's member is refused and changes nothing -------------------------
mint() { # inst proj member: prints the token
	printf '{"institution":"%s","project":"%s","member":"%s"}' "$1" "$2" "$3" >"$E2E_DIR/t.json"
	req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/t.json"
	jget .token
}
alive() { req GET /v1/quotas/me "$1"; echo "$STATUS"; }
revocations() { req GET "/v1/audit?limit=1000" "$ADMIN_KEY"; jget '[.entries[]? // .[]? | select(.action == "token.revoke")] | length'; }
DAVE=$(mint ethz robotics dave@ethz.ch)
ALICE=$(mint epfl climate alice@epfl.ch)
check "dave's token works" 200 "$(alive "$DAVE")"
R0=$(revocations)
printf '{"member":"dave@ethz.ch"}' >"$E2E_DIR/r.json"
req POST /v1/tokens/revoke "$IKEY" application/json "$E2E_DIR/r.json"
check "epfl may not revoke ethz's member" 403 "$STATUS"
jget .error.message | grep -q 'not a member of institution "epfl"' && ok || bad "refusal message: $BODY"
check "dave's token still works" 200 "$(alive "$DAVE")"
check "no revocation stored" "$R0" "$(revocations)"
printf '{"member":"nobody@epfl.ch","institution":"epfl"}' >"$E2E_DIR/r.json"
req POST /v1/tokens/revoke "$ADMIN_KEY" application/json "$E2E_DIR/r.json"
check "admin: unknown member" 404 "$STATUS"
check "still no revocation stored" "$R0" "$(revocations)"
printf '{"member":"alice@epfl.ch"}' >"$E2E_DIR/r.json"
req POST /v1/tokens/revoke "$IKEY" application/json "$E2E_DIR/r.json"
check "epfl revokes its own member" 200 "$STATUS"
check "alice's token revoked" 401 "$(alive "$ALICE")"
check "one revocation stored" "$((R0 + 1))" "$(revocations)"

# --- "stop": "" is refused before anything is admitted or booked -----------------------------------
if [ ! -f "$E2E_ROOT/models/stories260K.gguf" ]; then
	echo "test_holes: stop checks SKIPPED: models/stories260K.gguf is absent (make test copies it from ../shared/models)"
else
	BOB=$(mint epfl climate bob@epfl.ch)
	gen() { # path json
		printf '%s' "$2" >"$E2E_DIR/g.json"
		req POST "$1" "$BOB" application/json "$E2E_DIR/g.json"
	}
	used() { req GET /v1/quotas/me "$BOB"; jget '.levels[] | select(.level == "project") | .used'; }
	U0=$(used); N0=$(nrecords)
	CHAT='"model":"stories","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":8'
	for body in "{$CHAT,\"stop\":\"\"}" "{$CHAT,\"stop\":[\"\"]}" \
		"{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"stop\":\"\"}" \
		"{$CHAT,\"stop\":\"$(printf 'x%.0s' $(seq 1 300))\"}" "{$CHAT,\"stop\":7}"; do
		case "$body" in *'"prompt"'*) path=/v1/completions ;; *) path=/v1/chat/completions ;; esac
		gen "$path" "$body"
		check "bad stop refused: ${body:0:60}... " 400 "$STATUS"
	done
	check "the refusals booked nothing (quota used)" "$U0" "$(used)"
	check "the refusals booked nothing (records)" "$N0" "$(nrecords)"
	gen /v1/chat/completions "{$CHAT,\"stop\":\"zz\"}"
	check "a good string stop is served" 200 "$STATUS"
	[ "$(used)" != "$U0" ] && ok || bad "the served request was not booked"
fi

e2e_done
