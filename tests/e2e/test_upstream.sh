#!/bin/bash
# Remote providers: models with url: are forwarded to an OpenAI-compatible
# server (a fake one here), metered from its usage reply; a reply without
# usage is charged at the reservation, never zero.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "test_upstream: python3 missing, skipped"; echo "test_upstream: 0 passed, 0 failed"; exit 0; }

e2e_upstream_start
trap 'kill $UPID 2>/dev/null; e2e_stop' EXIT
PUB=$("$BIN/allot" keygen --out "$E2E_DIR/p.key")
cat >"$E2E_DIR/charter.yaml" <<YAML
charter: upstream-test
version: 1
effective: 2026-01-01T00:00:00Z
timezone: UTC
rates:
  - {resource: tokens_in, credits: 0.001}
  - {resource: tokens_out, credits: 0.002}
providers:
  - {id: remote, keys: ["$PUB"], resources: [tokens_in, tokens_out]}
models:
  - {id: good, provider: remote, url: "http://127.0.0.1:$UP/v1", upstream_model: up-ok}
  - {id: silent, provider: remote, url: "http://127.0.0.1:$UP/v1", upstream_model: up-nousage}
  - {id: dying, provider: remote, url: "http://127.0.0.1:$UP/v1", upstream_model: up-die}
  - {id: failing, provider: remote, url: "http://127.0.0.1:$UP/v1", upstream_model: up-fail}
institutions:
  - id: uni
    allocation: {credits: 100, period: month}
    limits: {max_tokens_per_request: 50}
    projects:
      - id: p
        allocation: {credits: 100, period: month}
        members: [m@uni.ch]
YAML
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
TOK=$(ALLOT_KEY=$ADMIN_KEY "$BIN/allot" token mint --institution uni --project p --member m@uni.ch 2>/dev/null)

used() { curl -s -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/quotas/uni/p" | jq -r '.levels[] | select(.level == "project") | .used'; }
printf '{"model":"good","prompt":"hello","max_tokens":10}' >"$E2E_DIR/r.json"
req POST /v1/completions "$TOK" application/json "$E2E_DIR/r.json"
check "forwarded" 200 "$STATUS"; check "upstream usage passed" 10 "$(jget .usage.total_tokens)"
check "the reply names the model the client asked for" good "$(jget .model)"
check "upstream model rewritten" up-ok "$(tail -1 "$E2E_DIR/upstream.log" | jq -r .model)"
check "max_tokens forwarded" 10 "$(tail -1 "$E2E_DIR/upstream.log" | jq -r .max_tokens)"
check "charged from upstream usage (7 x 0.001 + 3 x 0.002)" 0.013 "$(used)"

printf '{"model":"good","prompt":"hello","max_tokens":10,"stream":true}' >"$E2E_DIR/r.json"
out=$(curl -s -N -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' --data-binary @"$E2E_DIR/r.json" "$URL/v1/completions")
printf '%s' "$out" | grep -q '"usage"' && bad "usage chunk sent unasked: $out" || ok
printf '%s' "$out" | grep -q 'data: \[DONE\]' && ok || bad "stream ends with DONE"
check "stream chunks name the client's model" good "$(printf '%s\n' "$out" | sed -n 's/^data: {/{/p' | jq -r .model | sort -u | tr '\n' ' ' | sed 's/ $//')"
check "stream asked for usage" true "$(tail -1 "$E2E_DIR/upstream.log" | jq -r .stream_options.include_usage)"
check "streamed usage charged (the client did not ask to see it)" 0.026 "$(used)"
printf '{"model":"good","prompt":"hello","max_tokens":10,"stream":true,"stream_options":{"include_usage":true}}' >"$E2E_DIR/r.json"
out=$(curl -s -N -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' --data-binary @"$E2E_DIR/r.json" "$URL/v1/completions")
check "stream passes usage through when asked" 10 "$(printf '%s\n' "$out" | sed -n 's/^data: {/{/p' | jq -r 'select(.usage) | .usage.total_tokens')"
check "streamed usage charged again" 0.039 "$(used)"

# no usage: the reservation is charged (prompt bound + max_tokens), never zero
printf '{"model":"silent","prompt":"hello","max_tokens":10}' >"$E2E_DIR/r.json"
req POST /v1/completions "$TOK" application/json "$E2E_DIR/r.json"; check "no-usage reply returned" 200 "$STATUS"
after=$(used)
[ "$(echo "$after > 0.039" | bc)" = 1 ] && ok || bad "reply without usage charged nothing ($after)"
grep -q "without usage" "$E2E_DIR/allotd.log" && ok || bad "missing usage logged as an error"

# dies mid-stream: the client gets an error event, the reservation is charged
printf '{"model":"dying","prompt":"hello","max_tokens":10,"stream":true}' >"$E2E_DIR/r.json"
before=$(used)
out=$(curl -s -N -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' --data-binary @"$E2E_DIR/r.json" "$URL/v1/completions")
printf '%s' "$out" | grep -q 'upstream_error' && ok || bad "mid-stream death reported: $out"
[ "$(echo "$(used) > $before" | bc)" = 1 ] && ok || bad "mid-stream death charged nothing"

# upstream refuses: 502, nothing charged, reservation released
printf '{"model":"failing","prompt":"hello","max_tokens":10}' >"$E2E_DIR/r.json"
before=$(used)
req POST /v1/completions "$TOK" application/json "$E2E_DIR/r.json"; check "upstream 500 gives 502" 502 "$STATUS"
check "refusal charges nothing" "$before" "$(used)"
check "reservations released" 0 "$(curl -s -H "Authorization: Bearer $TOK" "$URL/v1/quotas/me" | jq -r '.levels[0].reserved')"
# bad bodies are refused before anything is forwarded
n_before=$(wc -l <"$E2E_DIR/upstream.log")
printf '{"model":"good","messages":"hi"}' >"$E2E_DIR/r.json"
req POST /v1/chat/completions "$TOK" application/json "$E2E_DIR/r.json"; check "remote chat: bad messages" 400 "$STATUS"
printf '{"model":"good","messages":[{"role":"wizard","content":"x"}]}' >"$E2E_DIR/r.json"
req POST /v1/chat/completions "$TOK" application/json "$E2E_DIR/r.json"; check "remote chat: bad role" 400 "$STATUS"
printf '{"model":"good","prompt":5}' >"$E2E_DIR/r.json"
req POST /v1/completions "$TOK" application/json "$E2E_DIR/r.json"; check "remote: bad prompt" 400 "$STATUS"
check "nothing forwarded for bad bodies" "$n_before" "$(wc -l <"$E2E_DIR/upstream.log")"
printf '{"model":"good","messages":[{"role":"user","content":"hi"}],"max_tokens":5}' >"$E2E_DIR/r.json"
req POST /v1/chat/completions "$TOK" application/json "$E2E_DIR/r.json"; check "remote chat forwarded" 200 "$STATUS"
check "chat path" 10 "$(jget .usage.total_tokens)"
kill $UPID 2>/dev/null
e2e_done
