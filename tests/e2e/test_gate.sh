#!/bin/bash
# The gate end to end against the bundled engine and the real stories model:
# completions and chat completions, streamed and not, with the usage each
# answer reports compared to what the ledger charged; X-Allot-Remaining on
# every answer;
# /v1/models narrowed by the token; 402 naming the exhausted level (member,
# project, institution, token, pool); 429 with Retry-After for requests per
# minute, tokens per minute and concurrent requests (400 for a request no
# wait can admit); max_tokens over the limit; unknown models;
# bad bodies; a streaming client that disconnects; kill -9 mid-stream.  The official OpenAI
# Node.js client is tests/e2e/test_openai.sh.
. "$(dirname "$0")/lib.sh"

if [ ! -f "$E2E_ROOT/models/stories260K.gguf" ]; then
	echo "test_gate: SKIPPED: models/stories260K.gguf is absent (make test copies it from ../shared/models)"
	exit 0
fi

# Rates as in policies/default.yaml: 0.0001 per token in, 0.0003 per token out,
# that is 100 and 300 micro-credits.
RATE_IN=100
RATE_OUT=300
cat >"$E2E_DIR/charter.yaml" <<'YAML'
charter: gate-test
version: 1
effective: 2026-01-01T00:00:00Z
timezone: UTC
pool: 100000
rates:
  - {resource: tokens_in,  model: stories, credits: 0.0001}
  - {resource: tokens_out, model: stories, credits: 0.0003}
  - {resource: tokens_in,  model: absent, credits: 0.0001}
  - {resource: tokens_out, model: absent, credits: 0.0003}
providers:
  - {id: local, builtin: true}
models:
  - {id: stories, provider: local, file: stories260K.gguf}
  - {id: absent, provider: local, file: no-such-model.gguf}
institutions:
  - id: epfl
    allocation: {credits: 1000, period: month}
    limits: {max_tokens_per_request: 500}
    models: [stories, absent]
    projects:
      - id: climate
        allocation: {credits: 500, period: month}
        limits: {max_tokens_per_request: 400}
        members: [alice@epfl.ch, bob@epfl.ch, carol@epfl.ch, olga@epfl.ch]
  - id: rl
    allocation: {credits: 100, period: month}
    limits: {requests_per_minute: 3}
    projects:
      - id: p
        allocation: {credits: 100, period: month}
        members: [r1@rl]
  - id: tp
    allocation: {credits: 100, period: month}
    projects:
      - id: p
        allocation: {credits: 100, period: month}
        limits: {tokens_per_minute: 50}
        members: [t1@tp]
  - id: cc
    allocation: {credits: 100, period: month}
    projects:
      - id: p
        allocation: {credits: 100, period: month}
        limits: {concurrent_requests: 1}
        members: [c1@cc]
  - id: tiny
    allocation: {credits: 10, period: month}
    projects:
      - id: small
        allocation: {credits: 0.02, period: month}
        members: [s1@tiny]
      - id: mem
        allocation: {credits: 5, period: month}
        member_allocation: {credits: 0.01, period: month}
        members: [m1@tiny]
  - id: daily
    allocation: {credits: 0.01, period: day}
    projects:
      - id: p
        allocation: {credits: 0.2, period: month}
        members: [d1@daily]
YAML
e2e_start --charter "$E2E_DIR/charter.yaml" --threads 1 || exit 1

# mint INST PROJ MEMBER [extra JSON fields]: prints the token
mint() {
	printf '{"institution":"%s","project":"%s","member":"%s"%s}' "$1" "$2" "$3" "${4:+,$4}" >"$E2E_DIR/m.json"
	req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/m.json"
	[ "$STATUS" = 201 ] || echo "mint failed: $STATUS $BODY" >&2
	jget .token
}
# gen PATH TOKEN JSON: POST with headers to $E2E_DIR/h; sets STATUS, BODY
gen() {
	printf '%s' "$3" >"$E2E_DIR/g.json"
	STATUS=$(curl -s -N -D "$E2E_DIR/h" -o "$E2E_DIR/body" -w '%{http_code}' \
		-H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
		--data-binary @"$E2E_DIR/g.json" "$URL$1")
	BODY=$(cat "$E2E_DIR/body")
}
jgetc() { printf "%s" "$BODY" | jq -c "$1"; }
hdr() { tr -d '\r' <"$E2E_DIR/h" | sed -n "s/^$1: //Ip" | tail -1; }
# level FIELD LEVEL TOKEN: a figure of /v1/quotas/me, in micro-credits
level() {
	req GET /v1/quotas/me "$3"
	e2e_micro "$(jget ".levels[] | select(.level == \"$2\") | .$1")"
}
# sse_usage: the usage object of a streamed answer (the chunk that has one)
sse_usage() { sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -c 'select(.usage) | .usage' | tail -1; }

BOB=$(mint epfl climate bob@epfl.ch)
PROMPT="Once upon a time"

# --- the four shapes: usage reported == charged --------------------------------------
for shape in completions:false completions:true chat:false chat:true; do
	kind=${shape%:*}; stream=${shape#*:}
	SO=; [ "$stream" = true ] && SO=',"stream_options":{"include_usage":true}'
	if [ "$kind" = chat ]; then
		path=/v1/chat/completions
		body="{\"model\":\"stories\",\"messages\":[{\"role\":\"system\",\"content\":\"Tell a story.\"},{\"role\":\"user\",\"content\":\"$PROMPT\"}],\"max_tokens\":24,\"stream\":$stream$SO}"
	else
		path=/v1/completions
		body="{\"model\":\"stories\",\"prompt\":\"$PROMPT\",\"max_tokens\":24,\"temperature\":0,\"stream\":$stream$SO}"
	fi
	USED0=$(level used project "$BOB"); REM0=$(level remaining project "$BOB")
	req GET "/v1/usage?member=bob@epfl.ch&limit=1000" "$ADMIN_KEY"; NREC0=$(jget '.records | length')
	gen "$path" "$BOB" "$body"
	check "$shape: 200" 200 "$STATUS"
	if [ "$stream" = true ]; then
		check "$shape: event stream" text/event-stream "$(hdr Content-Type)"
		check "$shape: ends with [DONE]" "data: [DONE]" "$(grep '^data: ' "$E2E_DIR/body" | tail -1)"
		U=$(sse_usage)
		NCHUNK=$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -c 'select(.choices | length > 0)' | wc -l)
		[ "$NCHUNK" -ge 2 ] && ok || bad "$shape: only $NCHUNK content chunks"
		if [ "$kind" = chat ]; then
			check "$shape: first delta has the role" assistant "$(sed -n 's/^data: //p' "$E2E_DIR/body" | head -1 | jq -r '.choices[0].delta.role')"
			TEXT=$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -j '.choices[0].delta.content // empty')
			check "$shape: object" chat.completion.chunk "$(sed -n 's/^data: //p' "$E2E_DIR/body" | head -1 | jq -r .object)"
		else
			TEXT=$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -j '.choices[0].text // empty')
		fi
		FIN=$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -r '.choices[0].finish_reason // empty' | tail -1)
	else
		U=$(jgetc .usage)
		if [ "$kind" = chat ]; then
			TEXT=$(jget .choices[0].message.content)
			check "$shape: object" chat.completion "$(jget .object)"
			check "$shape: role" assistant "$(jget .choices[0].message.role)"
		else
			TEXT=$(jget .choices[0].text)
			check "$shape: object" text_completion "$(jget .object)"
		fi
		FIN=$(jget .choices[0].finish_reason)
	fi
	P=$(printf '%s' "$U" | jq .prompt_tokens); C=$(printf '%s' "$U" | jq .completion_tokens)
	check "$shape: total_tokens" $((P + C)) "$(printf '%s' "$U" | jq .total_tokens)"
	[ -n "$TEXT" ] && ok || bad "$shape: empty text"
	[ "$P" -ge 5 ] && [ "$C" -ge 1 ] && [ "$C" -le 24 ] && ok || bad "$shape: usage $U"
	case "$FIN" in stop|length) ok ;; *) bad "$shape: finish_reason [$FIN]" ;; esac
	[ "$C" = 24 ] && check "$shape: finish length at max_tokens" length "$FIN"
	CHARGE=$((P * RATE_IN + C * RATE_OUT))
	check "$shape: ledger charged what usage reports" "$CHARGE" $(( $(level used project "$BOB") - USED0 ))
	check "$shape: nothing left reserved" 0 "$(level reserved project "$BOB")"
	req GET "/v1/usage?member=bob@epfl.ch&limit=1000" "$ADMIN_KEY"
	check "$shape: two ledger records" $((NREC0 + 2)) "$(jget '.records | length')"
	check "$shape: tokens_in record" "$P" "$(jget '[.records[] | select(.resource == "tokens_in")] | last | .quantity')"
	check "$shape: tokens_out record" "$C" "$(jget '[.records[] | select(.resource == "tokens_out")] | last | .quantity')"
	check "$shape: record from the model's provider" local "$(jget '.records | last | .provider')"
	check "$shape: record priced at the charter rate" 0.0003 "$(jget '[.records[] | select(.resource == "tokens_out")] | last | .rate')"
	check "$shape: record charge" "$((C * RATE_OUT))" "$(e2e_micro "$(jget '[.records[] | select(.resource == "tokens_out")] | last | .charge')")"
	check "$shape: X-Allot-Remaining-Level" project "$(hdr X-Allot-Remaining-Level)"
	if [ "$stream" = true ]; then
		# sent before generation: what remains once the worst case is held
		check "$shape: X-Allot-Remaining after reserving" $((REM0 - P * RATE_IN - 24 * RATE_OUT)) "$(e2e_micro "$(hdr X-Allot-Remaining)")"
	else
		check "$shape: X-Allot-Remaining after settling" $((REM0 - CHARGE)) "$(e2e_micro "$(hdr X-Allot-Remaining)")"
	fi
done

# greedy decoding is deterministic: the same request twice gives the same text
gen /v1/completions "$BOB" '{"model":"stories","prompt":"Once upon a time","max_tokens":16,"temperature":0}'
T1=$(jget .choices[0].text)
gen /v1/completions "$BOB" '{"model":"stories","prompt":"Once upon a time","max_tokens":16,"temperature":0,"stream":true}'
T2=$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -j '.choices[0].text // empty')
check "streamed text equals the whole text" "$T1" "$T2"
# the usage chunk only when stream_options.include_usage asks (as OpenAI);
# the stream is metered all the same
check "no usage chunk unless asked" 0 "$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -c 'select(.usage)' | wc -l)"
check "every chunk has a choice" 0 "$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -c 'select((.choices | length) == 0)' | wc -l)"
check "a stream without usage chunk leaves nothing reserved" 0 "$(level reserved project "$BOB")"
# no max_tokens: the default (256), capped by the project's 400
gen /v1/completions "$BOB" '{"model":"stories","prompt":"Once upon a time","temperature":0}'
check "default max_tokens" 200 "$STATUS"
[ "$(jget .usage.completion_tokens)" -le 256 ] && ok || bad "default max_tokens: $(jget .usage)"
gen /v1/chat/completions "$BOB" '{"model":"stories","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":3}'
check "max_completion_tokens" 3 "$(jget .usage.completion_tokens)"

# --- models ------------------------------------------------------------------------------------
NARROW=$(mint epfl climate alice@epfl.ch '"models":["stories"]')
req GET /v1/models "$BOB"
check "/v1/models: both institution models" '["absent","stories"]' "$(jgetc '[.data[].id] | sort')"
check "/v1/models: list object" list "$(jget .object)"
check "/v1/models: owned by the provider" local "$(jget '.data[0].owned_by')"
req GET /v1/models "$NARROW"
check "/v1/models: only the token's models" '["stories"]' "$(jgetc '[.data[].id]')"
RL=$(mint rl p r1@rl)
req GET /v1/models "$RL"
check "/v1/models: no models: line means every charter model" '["absent","stories"]' "$(jgetc '[.data[].id] | sort')"
gen /v1/completions "$NARROW" '{"model":"absent","prompt":"x","max_tokens":1}'
check "model outside the token: 404" 404 "$STATUS"
gen /v1/completions "$BOB" '{"model":"gpt-4","prompt":"x","max_tokens":1}'
check "unknown model: 404" 404 "$STATUS"
check "unknown model: error code (OpenAI's)" model_not_found "$(jget .error.code)"
check "unknown model: error type" not_found_error "$(jget .error.type)"
check "unknown model: error param" model "$(jget .error.param)"
gen /v1/chat/completions "$BOB" '{"model":"gpt-4","messages":[{"role":"user","content":"x"}]}'
check "unknown model (chat): 404" 404 "$STATUS"
gen /v1/completions "$BOB" '{"model":"absent","prompt":"x","max_tokens":1}'
check "charter model not loaded: 503" 503 "$STATUS"

# --- max_tokens and bad bodies: 4xx, nothing charged ------------------------------------------
USED0=$(level used project "$BOB")
req GET "/v1/usage?limit=1000" "$ADMIN_KEY"; NREC0=$(jget '.records | length')
gen /v1/completions "$BOB" '{"model":"stories","prompt":"x","max_tokens":401}'
check "max_tokens above the project limit: 400" 400 "$STATUS"
jget .error.message | grep -q 400 && ok || bad "limit named in message: $BODY"
[ -n "$(hdr X-Allot-Remaining)" ] && ok || bad "X-Allot-Remaining on the max_tokens refusal"
gen /v1/chat/completions "$BOB" '{"model":"stories","messages":[{"role":"user","content":"x"}],"max_tokens":100000}'
check "max_tokens far above (chat): 400" 400 "$STATUS"
gen /v1/completions "$BOB" '{"model":"stories","prompt":"x","max_tokens":400}'
check "max_tokens at the limit: 200" 200 "$STATUS"
USED0=$(level used project "$BOB")
req GET "/v1/usage?limit=1000" "$ADMIN_KEY"; NREC0=$(jget '.records | length')
while IFS='|' read -r path body want; do
	[ -n "$path" ] || continue
	gen "$path" "$BOB" "$body"
	check "bad body $path $body" "$want" "$STATUS"
	[ "$(jget '.error.code | type' 2>/dev/null)" = string ] && ok || bad "error body for $body: $BODY"
done <<'EOF'
/v1/completions|{"model":"stories","prompt":"x"|400
/v1/completions||400
/v1/completions|[]|400
/v1/completions|"stories"|400
/v1/completions|{"model":"stories"}|400
/v1/completions|{"prompt":"x"}|400
/v1/completions|{"model":5,"prompt":"x"}|400
/v1/completions|{"model":"stories","prompt":5}|400
/v1/completions|{"model":"stories","prompt":["a",5]}|400
/v1/completions|{"model":"stories","prompt":["a","b","c","d","e"],"n":2}|400
/v1/completions|{"model":"stories","prompt":"x","max_tokens":0}|400
/v1/completions|{"model":"stories","prompt":"x","max_tokens":-1}|400
/v1/completions|{"model":"stories","prompt":"x","max_tokens":"5"}|400
/v1/completions|{"model":"stories","prompt":"x","max_tokens":1.5}|400
/v1/completions|{"model":"stories","prompt":"x","temperature":3}|400
/v1/completions|{"model":"stories","prompt":"x","top_p":-0.5}|400
/v1/completions|{"model":"stories","prompt":"x","n":9}|400
/v1/completions|{"model":"stories","prompt":"x","stream":"yes"}|400
/v1/completions|{"model":"stories","prompt":"x","stop":[1]}|400
/v1/completions|{"model":"stories","prompt":"x","stop":["a","b","c","d","e","f","g","h","i"]}|400
/v1/completions|{"model":"stories","prompt":"x","colour":"red"}|400
/v1/completions|{"model":"stories","prompt":"x","stream_options":{"x":1}}|400
/v1/completions|{"model":"stories","prompt":"x","model":"stories"}|400
/v1/chat/completions|{"model":"stories","messages":[]}|400
/v1/chat/completions|{"model":"stories","messages":"hi"}|400
/v1/chat/completions|{"model":"stories","messages":[{"role":"tool","content":"x"}]}|400
/v1/chat/completions|{"model":"stories","messages":[{"role":"user"}]}|400
/v1/chat/completions|{"model":"stories","messages":[{"role":"user","content":5}]}|400
/v1/chat/completions|{"model":"stories","messages":[{"role":"user","content":"x","extra":1}]}|400
/v1/chat/completions|{"model":"stories","messages":["x"]}|400
/v1/chat/completions|{"model":"stories","prompt":"x"}|400
EOF
gen /v1/completions "$BOB" '{"model":"stories","prompt":"a\u0000b","max_tokens":1}'
[ "${STATUS:0:1}" = 4 ] && ok || bad "NUL in prompt: $STATUS"
gen /v1/completions "$BOB" '{"model":"stories","prompt":"x","logprobs":6}'
[ "${STATUS:0:1}" = 4 ] && ok || bad "logprobs over 5: $STATUS"
LONG=$(for _ in $(seq 1 1000); do printf 'Once upon a time '; done)
gen /v1/completions "$BOB" "{\"model\":\"stories\",\"prompt\":\"$LONG\",\"max_tokens\":1}"
check "prompt longer than the context: 413" 413 "$STATUS"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BOB" -H 'Content-Type: text/plain' \
	--data '{"model":"stories","prompt":"x"}' "$URL/v1/completions")
check "wrong content type: 415" 415 "$STATUS"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
	--data '{"model":"stories","prompt":"x"}' "$URL/v1/completions")
check "no token: 401" 401 "$STATUS"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -X GET -H "Authorization: Bearer $BOB" "$URL/v1/completions")
[ "${STATUS:0:1}" = 4 ] && ok || bad "GET on a POST route: $STATUS"
check "bad bodies charged nothing" "$USED0" "$(level used project "$BOB")"
req GET "/v1/usage?limit=1000" "$ADMIN_KEY"; check "bad bodies wrote no records" "$NREC0" "$(jget '.records | length')"

# X-Allot-Remaining on every gate answer, errors included
gen /v1/completions "$BOB" '{"model":"stories","prompt":"x"'
check "bad JSON: 400" 400 "$STATUS"; [ -n "$(hdr X-Allot-Remaining)" ] && ok || bad "no X-Allot-Remaining on a bad body"
gen /v1/completions "$BOB" '{"model":"gpt-4","prompt":"x"}'
check "unknown model: 404" 404 "$STATUS"; [ -n "$(hdr X-Allot-Remaining)" ] && ok || bad "no X-Allot-Remaining on an unknown model"
gen /v1/chat/completions "$BOB" '{"model":"stories","messages":[]}'
[ -n "$(hdr X-Allot-Remaining)" ] && ok || bad "no X-Allot-Remaining on a bad chat body"
STATUS=$(curl -s -D "$E2E_DIR/h" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BOB" "$URL/v1/models")
[ -n "$(hdr X-Allot-Remaining)" ] && ok || bad "no X-Allot-Remaining on GET /v1/models"
REM=$(e2e_micro "$(hdr X-Allot-Remaining)")
check "X-Allot-Remaining on /v1/models is the project's remaining" "$(level remaining project "$BOB")" "$REM"

# --- 402 naming the exhausted level --------------------------------------------------------------
# spend TOKEN MAXTOK: requests until one is refused (at most 20); sets STATUS/BODY of the last
spend() {
	for _ in $(seq 1 20); do
		gen /v1/completions "$1" "{\"model\":\"stories\",\"prompt\":\"$PROMPT\",\"max_tokens\":$2,\"temperature\":0}"
		[ "$STATUS" = 200 ] || return 0
	done
}
# exhaust NAME TOKEN MAXTOK LEVEL ALLOCATION-MICRO
exhaust() {
	spend "$2" "$3"
	check "$1: 402" 402 "$STATUS"
	check "$1: code" quota_exceeded "$(jget .error.code)"
	jget .error.message | grep -q "at the $4 level" && ok || bad "$1: level not named: $BODY"
	[ -n "$(hdr X-Allot-Remaining)" ] && ok || bad "$1: no X-Allot-Remaining on 402"
	if [ -n "${5:-}" ]; then
		local used; used=$(level used "$4" "$2")
		[ "$used" -gt 0 ] && [ "$used" -le "$5" ] && ok || bad "$1: used $used of $5 (hard)"
		check "$1: nothing reserved after" 0 "$(level reserved "$4" "$2")"
	fi
}
# worst case per request: 5 prompt tokens x 100 + 20 x 300 = 6500 micro-credits
exhaust "project level" "$(mint tiny small s1@tiny)" 20 project 20000
exhaust "member level" "$(mint tiny mem m1@tiny)" 20 member 10000
exhaust "institution level" "$(mint daily p d1@daily)" 20 institution 10000
TOK=$(mint epfl climate carol@epfl.ch '"max_credits":"0.021"')
exhaust "token level" "$TOK" 20 token
req GET /v1/quotas/me "$TOK"
[ "$(e2e_micro "$(jget .token.spent)")" -le 21000 ] && [ "$(e2e_micro "$(jget .token.spent)")" -gt 0 ] && ok || bad "token spent within max_credits: $(jget .token)"
gen /v1/completions "$TOK" '{"model":"stories","prompt":"x","max_tokens":1}'
check "a request costing at most 0.0006 still fits the token's last 0.0015" 200 "$STATUS"

# --- 429: requests per minute and concurrency --------------------------------------------------------
# stay inside one minute window (the windows are aligned to the minute)
[ "$(date +%-S)" -ge 50 ] && sleep $((61 - $(date +%-S)))
for i in 1 2 3; do
	gen /v1/completions "$RL" '{"model":"stories","prompt":"x","max_tokens":1}'
	check "rpm request $i admitted" 200 "$STATUS"
done
gen /v1/completions "$RL" '{"model":"stories","prompt":"x","max_tokens":1}'
check "4th request in the minute: 429" 429 "$STATUS"
check "rpm code" rate_limited "$(jget .error.code)"
RA=$(hdr Retry-After)
[ -n "$RA" ] && [ "$RA" -ge 1 ] && [ "$RA" -le 60 ] && ok || bad "Retry-After [$RA]"
jget .error.message | grep -q "requests per minute" && ok || bad "rpm message: $BODY"
[ -n "$(hdr X-Allot-Remaining)" ] && ok || bad "X-Allot-Remaining on 429"
gen /v1/chat/completions "$RL" '{"model":"stories","messages":[{"role":"user","content":"x"}],"max_tokens":1}'
check "the limit covers chat too" 429 "$STATUS"

TP=$(mint tp p t1@tp)
[ "$(date +%-S)" -ge 55 ] && sleep $((61 - $(date +%-S)))   # both requests in one minute
gen /v1/completions "$TP" '{"model":"stories","prompt":"Once upon a time","max_tokens":46}'
check "a request larger than tokens_per_minute: 400, not 429" 400 "$STATUS"
[ -z "$(hdr Retry-After)" ] && ok || bad "no Retry-After on a request no wait can admit"
gen /v1/completions "$TP" '{"model":"stories","prompt":"Once upon a time","max_tokens":45,"temperature":0}'
check "5 + 45 = 50 tokens: admitted" 200 "$STATUS"
C1=$(jget .usage.completion_tokens)
gen /v1/completions "$TP" '{"model":"stories","prompt":"Once upon a time","max_tokens":45,"temperature":0}'
if [ "$C1" = 45 ]; then
	check "tokens per minute spent: 429" 429 "$STATUS"
	RA=$(hdr Retry-After); [ -n "$RA" ] && [ "$RA" -ge 1 ] && [ "$RA" -le 60 ] && ok || bad "tpm Retry-After [$RA]"
else
	echo "test_gate: tokens-per-minute 429 not checked: the first request stopped at $C1 tokens"
fi

CC=$(mint cc p c1@cc)
printf '{"model":"stories","prompt":"Once upon a time","max_tokens":400,"temperature":0}' >"$E2E_DIR/cc.json"
seq 1 8 | xargs -P 8 -I{} curl -s -o /dev/null -D "$E2E_DIR/cc.{}.h" -w '%{http_code}\n' \
	-H "Authorization: Bearer $CC" -H 'Content-Type: application/json' --data-binary @"$E2E_DIR/cc.json" \
	"$URL/v1/completions" >"$E2E_DIR/cc.codes"
N200=$(grep -c '^200$' "$E2E_DIR/cc.codes"); N429=$(grep -c '^429$' "$E2E_DIR/cc.codes")
[ "$N200" -ge 1 ] && [ "$N429" -ge 1 ] && [ $((N200 + N429)) = 8 ] && ok ||
	bad "concurrent_requests 1: $N200 admitted, $N429 refused of 8"
NRA=0; for f in "$E2E_DIR"/cc.*.h; do grep -q '^HTTP/1.1 429' "$f" && grep -qi '^Retry-After: [1-9]' "$f" && NRA=$((NRA + 1)); done
check "every concurrency 429 has Retry-After" "$N429" "$NRA"
check "concurrency: nothing left reserved" 0 "$(level reserved project "$CC")"

# --- a streaming client that disconnects --------------------------------------------------------------
OLGA=$(mint epfl climate olga@epfl.ch)
printf '{"model":"stories","prompt":"Once upon a time","max_tokens":400,"temperature":0,"stream":true}' >"$E2E_DIR/d.json"
curl -s -N -H "Authorization: Bearer $OLGA" -H 'Content-Type: application/json' --data-binary @"$E2E_DIR/d.json" \
	"$URL/v1/completions" 2>/dev/null | head -n 1 >"$E2E_DIR/d.out"
GOT=$(grep -c '^data: {' "$E2E_DIR/d.out")
for _ in $(seq 1 50); do [ "$(level reserved project "$OLGA")" = 0 ] && break; sleep 0.1; done
check "disconnect: reservation released" 0 "$(level reserved project "$OLGA")"
req GET "/v1/usage?member=olga@epfl.ch&resource=tokens_out" "$ADMIN_KEY"
Q=$(jget '.records[0].quantity // 0')
[ "$Q" -gt 0 ] && [ "$Q" -le 400 ] && [ "$Q" -ge "$GOT" ] && ok ||
	bad "disconnect: charged for $Q tokens out, received $GOT chunks, max_tokens 400"
echo "test_gate: a client gone after $GOT chunk(s) was charged $Q of at most 400 completion tokens"
req GET "/v1/usage?member=olga@epfl.ch&resource=tokens_in" "$ADMIN_KEY"
check "disconnect: the prompt charged" 5 "$(jget '.records[0].quantity // 0')"
req GET "/v1/usage?member=olga@epfl.ch" "$ADMIN_KEY"
SUM=0; for c in $(jget '.records[].charge'); do SUM=$((SUM + $(e2e_micro "$c"))); done
check "disconnect: charge booked" $((5 * RATE_IN + Q * RATE_OUT)) "$SUM"
gen /v1/completions "$OLGA" '{"model":"stories","prompt":"x","max_tokens":2}'
check "the gate serves on after a disconnect" 200 "$STATUS"

# --- a crash mid-request: reservations die with the process -------------------------------------------
# Four long streams; the daemon is killed (-9) as soon as one has sent its
# first chunk.  After the restart nothing is reserved, and what was booked
# before the crash is consistent (used == the sum of the ledger's charges).
for i in 1 2 3; do
	curl -s -N -H "Authorization: Bearer $OLGA" -H 'Content-Type: application/json' --data-binary @"$E2E_DIR/d.json" \
		"$URL/v1/completions" >"$E2E_DIR/k$i.out" 2>/dev/null &
done
curl -s -N -H "Authorization: Bearer $OLGA" -H 'Content-Type: application/json' --data-binary @"$E2E_DIR/d.json" \
	"$URL/v1/completions" 2>/dev/null | head -n 1 >/dev/null
e2e_kill9
wait
DONE=$(cat "$E2E_DIR"/k?.out | grep -c '^data: \[DONE\]')
e2e_start --charter "$E2E_DIR/charter.yaml" --threads 1 || exit 1
check "after kill -9: nothing reserved" 0 "$(level reserved project "$OLGA")"
req GET "/v1/usage?project=climate&limit=1000" "$ADMIN_KEY"
SUM=0; for c in $(jget '.records[].charge'); do SUM=$((SUM + $(e2e_micro "$c"))); done
check "after kill -9: used == the ledger's charges" "$SUM" "$(level used project "$OLGA")"
gen /v1/completions "$OLGA" '{"model":"stories","prompt":"x","max_tokens":2}'
check "after kill -9: the gate serves" 200 "$STATUS"
echo "test_gate: kill -9 with 4 streams open; $DONE of the 3 background streams had finished"

# --- the pool level: a charter whose pool is spent ----------------------------------------------------
sed -e 's/^version: 1/version: 2/' -e 's/^pool: 100000/pool: 0.001/' "$E2E_DIR/charter.yaml" >"$E2E_DIR/charter2.yaml"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/charter2.yaml"
check "charter v2 applied" 200 "$STATUS"
gen /v1/completions "$BOB" '{"model":"stories","prompt":"x","max_tokens":8}'
check "pool spent: 402" 402 "$STATUS"
jget .error.message | grep -q "at the pool level" && ok || bad "pool level not named: $BODY"

e2e_done
