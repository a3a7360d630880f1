#!/bin/bash
# A client that hangs up on a non-streamed completion stops generation: it
# is charged for the tokens generated, not for max_tokens.
. "$(dirname "$0")/lib.sh"
[ -f "$E2E_ROOT/models/stories260K.gguf" ] || { echo "test_gate_disconnect: SKIPPED: models/stories260K.gguf is absent"; echo "test_gate_disconnect: 0 passed, 0 failed"; exit 0; }
e2e_start --threads 1 || exit 1
TOK=$(ALLOT_KEY=$ADMIN_KEY "$BIN/allot" token mint --institution ethz --project robotics --member dave@ethz.ch 2>/dev/null)
# a long completion (ethz sets no max_tokens limit; the context is 2048)
printf '{"model":"stories","prompt":"Once","max_tokens":2000,"temperature":0}' >"$E2E_DIR/r.json"
timeout 0.5 curl -s -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
	--data-binary @"$E2E_DIR/r.json" "$URL/v1/completions" >/dev/null
for _ in $(seq 1 50); do
	out=$(curl -s -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/usage?resource=tokens_out" | jq -r '.records[0].quantity // empty')
	[ -n "$out" ] && break
	sleep 0.1
done
if [ -n "$out" ] && [ "$out" -gt 0 ] && [ "$out" -lt 2000 ]; then ok; else bad "hang-up charged $out of 2000 tokens"; fi
check "reservation released" 0 "$(curl -s -H "Authorization: Bearer $TOK" "$URL/v1/quotas/me" | jq -r '.levels[0].reserved')"
echo "test_gate_disconnect: hung up after 0.5 s, charged $out of at most 2000 tokens"
e2e_done
