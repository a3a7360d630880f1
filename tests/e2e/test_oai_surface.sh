#!/bin/bash
# The OpenAI surface of the gate with curl (issue 14; SPEC sections 4 and 7):
# errors in OpenAI's shape (type, code, param) on the gate's and the API's own
# routes; chat content parts, role developer, assistant content null, no-op
# fields accepted and real tool use refused as unsupported with its param;
# completions prompt arrays and n > 1, each choice reserved and charged;
# GET /v1/models/{id}; context overflow as context_length_exceeded; engine
# features the bundled engine lacks refused as unsupported; /v1/responses;
# /v1/embeddings; CORS preflight and headers (--cors-origins).
. "$(dirname "$0")/lib.sh"

skip() { echo "$E2E_NAME: SKIPPED: $*"; rm -rf "$E2E_DIR"; exit 0; }
[ -f "$E2E_ROOT/models/stories260K.gguf" ] || skip "models/stories260K.gguf is absent (make test copies it from ../shared/models)"

ORIGIN=http://app.example.org
e2e_stories_gate oai-surface --cors-origins "$ORIGIN,http://localhost:3000" || exit 1
TOK=$TOKEN

# gen PATH JSON: POST as alice; sets STATUS, BODY
gen() {
	printf '%s' "$2" >"$E2E_DIR/g.json"
	STATUS=$(curl -s -N -D "$E2E_DIR/h" -o "$E2E_DIR/body" -w '%{http_code}' \
		-H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
		--data-binary @"$E2E_DIR/g.json" "$URL$1")
	BODY=$(cat "$E2E_DIR/body")
}
hdr() { tr -d '\r' <"$E2E_DIR/h" | sed -n "s/^$1: //Ip" | tail -1; }
used() { curl -s -H "Authorization: Bearer $TOK" "$URL/v1/quotas/me" | jq -r '.levels[] | select(.level == "project") | .used'; }
nrec() { curl -s -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/usage?member=alice@epfl.ch&limit=1000" | jq '.records | length'; }
# charged USED0 USAGE-JSON: the ledger moved by exactly what usage reports
charged() {
	local p c
	p=$(printf '%s' "$2" | jq .prompt_tokens 2>/dev/null); c=$(printf '%s' "$2" | jq .completion_tokens 2>/dev/null)
	case "$p$c" in *[!0-9]* | "") bad "$3: no usage ($2)"; return ;; esac
	check "$3: ledger charge equals usage ($2)" $((p * 100 + c * 300)) $(( $(e2e_micro "$(used)") - $(e2e_micro "$1") ))
}
# err_is WHAT STATUS TYPE CODE PARAM
err_is() {
	check "$1: status" "$2" "$STATUS"
	check "$1: error type" "$3" "$(jget .error.type)"
	check "$1: error code" "$4" "$(jget .error.code)"
	check "$1: error param" "$5" "$(jget .error.param)"
	[ -n "$(jget .error.message)" ] && ok || bad "$1: no message: $BODY"
}

# --- errors in OpenAI's shape, on every route -----------------------------------
req GET /v1/charter ""
err_is "API route without a key" 401 authentication_error unauthorized null
req GET /v1/charter "$TOK"
err_is "API route, wrong role" 403 permission_error forbidden null
req GET /v1/nothing-here "$ADMIN_KEY"
err_is "unknown route" 404 not_found_error not_found null
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"colour":1}'
err_is "unknown field" 400 invalid_request_error invalid_request colour
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}'
err_is "wrong type" 400 invalid_request_error invalid_request temperature
gen /v1/completions '{"model":"nope","prompt":"x"}'
err_is "unknown model" 404 not_found_error model_not_found model
LONG=$(for _ in $(seq 1 1000); do printf 'Once upon a time '; done)
gen /v1/completions "{\"model\":\"stories\",\"prompt\":\"$LONG\",\"max_tokens\":1}"
err_is "context overflow" 413 invalid_request_error context_length_exceeded prompt
jget .error.message | grep -q "maximum context length" && ok || bad "context overflow message: $BODY"

# --- chat: content parts, developer, assistant content null, no-ops ------------------
U0=$(used)
gen /v1/chat/completions '{"model":"stories","max_tokens":8,"temperature":0,"messages":[
 {"role":"developer","content":"You tell stories."},
 {"role":"user","content":[{"type":"text","text":"Once upon"},{"type":"text","text":" a time"}]},
 {"role":"assistant","content":null},
 {"role":"user","content":"go on"}],
 "response_format":{"type":"text"},"logprobs":false,"tools":[],"tool_choice":"none",
 "parallel_tool_calls":true,"store":false,"service_tier":"auto","logit_bias":{},"user":"u1",
 "presence_penalty":0,"frequency_penalty":0,"n":1}'
check "chat with parts and no-op fields" 200 "$STATUS"
check "chat: model is the client's id" stories "$(jget .model)"
[ -n "$(jget .choices[0].message.content)" ] && ok || bad "chat: empty content: $BODY"
charged "$U0" "$(printf '%s' "$BODY" | jq -c .usage)" "chat with parts"
# text parts are the same text as a string
gen /v1/chat/completions '{"model":"stories","max_tokens":8,"temperature":0,"messages":[{"role":"user","content":[{"type":"text","text":"Once upon"},{"type":"text","text":" a time"}]}]}'
T1=$(jget .choices[0].message.content); P1=$(jget .usage.prompt_tokens)
gen /v1/chat/completions '{"model":"stories","max_tokens":8,"temperature":0,"messages":[{"role":"user","content":"Once upon a time"}]}'
check "parts concatenate: same text" "$T1" "$(jget .choices[0].message.content)"
check "parts concatenate: same prompt tokens" "$P1" "$(jget .usage.prompt_tokens)"
gen /v1/chat/completions '{"model":"stories","max_tokens":8,"temperature":0,"messages":[{"role":"system","content":"S"},{"role":"user","content":"U"}]}'
T2=$(jget .choices[0].message.content); P2=$(jget .usage.prompt_tokens)
gen /v1/chat/completions '{"model":"stories","max_tokens":8,"temperature":0,"messages":[{"role":"developer","content":"S"},{"role":"user","content":"U"}]}'
check "developer is system: same prompt tokens" "$P2" "$(jget .usage.prompt_tokens)"
check "developer is system: same text" "$T2" "$(jget .choices[0].message.content)"

# real uses are refused as unsupported, naming the param; nothing charged
U0=$(used); N0=$(nrec)
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}'
err_is "tools" 400 invalid_request_error unsupported tools
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"http://x/y.png"}}]}]}'
err_is "image part" 400 invalid_request_error unsupported "messages[0].content[1]"
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"tool_choice":"required"}'
err_is "tool_choice required" 400 invalid_request_error unsupported tool_choice
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"tool","content":"42","tool_call_id":"c1"}]}'
check "role tool: 400" 400 "$STATUS"; check "role tool: unsupported" unsupported "$(jget .error.code)"
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":null}]}'
err_is "user content null" 400 invalid_request_error invalid_request "messages[0].content"
gen /v1/completions '{"model":"stories","prompt":"x","echo":true}'
err_is "echo" 400 invalid_request_error unsupported echo
check "refusals charged nothing" "$U0" "$(used)"
check "refusals wrote no records" "$N0" "$(nrec)"

# --- engine features: penalties, logit_bias, logprobs, JSON output -----------------------
# A build whose engine has them (infer/engine.h of issue 14) runs them; one
# without refuses every one of them as unsupported, naming its param.
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"max_tokens":6,"logprobs":true,"top_logprobs":2}'
if [ "$STATUS" = 200 ]; then
	echo "$E2E_NAME: the engine has penalties, logit_bias, logprobs and JSON output"
	check "chat logprobs: one per completion token" "$(jget .usage.completion_tokens)" "$(jget '.choices[0].logprobs.content | length')"
	check "chat logprobs: two alternatives each" 2 "$(jget '[.choices[0].logprobs.content[].top_logprobs | length] | unique | join(",")')"
	check "chat logprobs: at most 0" true "$(jget '[.choices[0].logprobs.content[].logprob <= 0] | all')"
	gen /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":6,"logprobs":3}'
	check "completions logprobs" 200 "$STATUS"
	check "completions logprobs: tokens" "$(jget .usage.completion_tokens)" "$(jget '.choices[0].logprobs.token_logprobs | length')"
	check "completions logprobs: three alternatives" 3 "$(jget '.choices[0].logprobs.top_logprobs[0] | length')"
	gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"max_tokens":6,"logprobs":true,"stream":true,"stream_options":{"include_usage":true}}'
	check "streamed logprobs: one per completion token" "$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -c 'select(.usage) | .usage.completion_tokens')" \
		"$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -c '.choices[0].logprobs.content // [] | .[]' | wc -l)"
	for i in 1 2 3; do
		gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"max_tokens":48,"response_format":{"type":"json_object"}}'
		[ "$(jget .choices[0].finish_reason)" = length ] && continue
		printf '%s' "$(jget .choices[0].message.content)" | jq -e 'type == "object"' >/dev/null && ok || bad "json_object: not an object: $BODY"
	done
	SCHEMA='{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}'
	for i in 1 2 3; do
		gen /v1/chat/completions "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":48,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\",\"schema\":$SCHEMA}}}"
		check "json_schema: 200" 200 "$STATUS"
		[ "$(jget .choices[0].finish_reason)" = length ] && continue
		printf '%s' "$(jget .choices[0].message.content)" | jq -e '(.name | type) == "string" and (.age | type) == "number"' >/dev/null && ok || bad "json_schema: does not match: $BODY"
	done
	gen /v1/responses "{\"model\":\"stories\",\"input\":\"hi\",\"max_output_tokens\":48,\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"p\",\"schema\":$SCHEMA}}}"
	check "responses json_schema: 200" 200 "$STATUS"
	[ "$(jget .status)" = incomplete ] || { printf '%s' "$(jget '.output[0].content[0].text')" | jq -e '(.name | type) == "string"' >/dev/null && ok || bad "responses json_schema: $BODY"; }
	gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"anyOf":[{"type":"string"}]}}}}'
	err_is "a schema outside the subset" 400 invalid_request_error unsupported response_format.json_schema.schema
	gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"presence_penalty":0.5,"frequency_penalty":0.5,"logit_bias":{"5":-100}}'
	check "penalties and logit_bias" 200 "$STATUS"
	gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"logit_bias":{"99999999":-100}}'
	err_is "logit_bias: a token id out of range" 400 invalid_request_error invalid_request logit_bias
else
	err_is "logprobs (engine lacks it)" 400 invalid_request_error unsupported logprobs
	gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"presence_penalty":0.5}'
	err_is "presence_penalty (engine lacks it)" 400 invalid_request_error unsupported presence_penalty
	gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}'
	err_is "json_object (engine lacks it)" 400 invalid_request_error unsupported response_format
	gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"logit_bias":{"5":-100}}'
	err_is "logit_bias (engine lacks it)" 400 invalid_request_error unsupported logit_bias
fi
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"top_logprobs":2}'
err_is "top_logprobs without logprobs" 400 invalid_request_error invalid_request top_logprobs
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"presence_penalty":3}'
err_is "presence_penalty out of range" 400 invalid_request_error invalid_request presence_penalty
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"xml"}}'
err_is "an unknown response_format" 400 invalid_request_error invalid_request response_format

# --- completions: prompt arrays and n, each choice reserved and charged -------------
U0=$(used); N0=$(nrec)
gen /v1/completions '{"model":"stories","prompt":["Once upon a time","The cat"],"max_tokens":6,"temperature":0}'
check "prompt array" 200 "$STATUS"
check "one choice per prompt, indices 0 1" "0 1" "$(jget '[.choices[].index] | map(tostring) | join(" ")')"
charged "$U0" "$(printf '%s' "$BODY" | jq -c .usage)" "prompt array"
check "prompt array: two sequences booked (4 records)" $((N0 + 4)) "$(nrec)"
C0=$(jget .choices[0].text); C1=$(jget .choices[1].text)
gen /v1/completions '{"model":"stories","prompt":"The cat","max_tokens":6,"temperature":0}'
check "choice 1 is the second prompt's completion" "$C1" "$(jget .choices[0].text)"
gen /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":6,"temperature":0}'
check "choice 0 is the first prompt's completion" "$C0" "$(jget .choices[0].text)"
U0=$(used)
gen /v1/completions '{"model":"stories","prompt":["Once upon a time","The cat"],"n":2,"max_tokens":6,"seed":7}'
check "prompts x n" 200 "$STATUS"
check "prompts x n: indices as OpenAI's" "0 1 2 3" "$(jget '[.choices[].index] | map(tostring) | join(" ")')"
charged "$U0" "$(printf '%s' "$BODY" | jq -c .usage)" "prompts x n"
U0=$(used)
gen /v1/chat/completions '{"model":"stories","messages":[{"role":"user","content":"Once upon a time"}],"n":3,"max_tokens":6,"stream":true,"stream_options":{"include_usage":true}}'
check "chat n=3 stream" 200 "$STATUS"
check "chat n=3 stream: choices 0..2 finish" "0 1 2" "$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -r '.choices[] | select(.finish_reason != null) | .index' | sort | tr '\n' ' ' | sed 's/ $//')"
U=$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -c 'select(.usage) | .usage')
charged "$U0" "$U" "chat n=3 stream"
gen /v1/completions '{"model":"stories","prompt":[[1,2,3]],"max_tokens":4}'
check "token-id prompt" 200 "$STATUS"
check "token-id prompt: its tokens counted" 3 "$(jget .usage.prompt_tokens)"

# --- /v1/responses -----------------------------------------------------------------------
U0=$(used)
gen /v1/responses '{"model":"stories","instructions":"S","input":"U","max_output_tokens":8,"temperature":0,"store":false}'
check "responses" 200 "$STATUS"
check "responses: object" response "$(jget .object)"
check "responses: model" stories "$(jget .model)"
check "responses: nothing stored" false "$(jget .store)"
RT=$(jget '.output[0].content[0].text')
[ -n "$RT" ] && ok || bad "responses: no output text: $BODY"
case "$(jget .status)" in completed|incomplete) ok ;; *) bad "responses: status $(jget .status)" ;; esac
charged "$U0" "$(printf '%s' "$BODY" | jq -c '.usage | {prompt_tokens: .input_tokens, completion_tokens: .output_tokens}')" "responses"
check "responses: total_tokens" "$(jget '.usage.input_tokens + .usage.output_tokens')" "$(jget .usage.total_tokens)"
check "responses = chat of instructions and input" "$T2" "$RT"
gen /v1/responses '{"model":"stories","input":[{"role":"developer","content":"S"},{"type":"message","role":"user","content":[{"type":"input_text","text":"U"}]}],"max_output_tokens":8,"temperature":0}'
check "responses with message items" "$T2" "$(jget '.output[0].content[0].text')"
U0=$(used)
gen /v1/responses '{"model":"stories","input":"Once upon a time","max_output_tokens":8,"stream":true}'
check "responses stream" 200 "$STATUS"
EV=$(grep '^event: ' "$E2E_DIR/body" | sed 's/^event: //' | uniq | tr '\n' ' ' | sed 's/ $//')
check "responses stream: events" "response.created response.in_progress response.output_item.added response.content_part.added response.output_text.delta response.output_text.done response.content_part.done response.output_item.done response.completed" "$EV"
DT=$(sed -n 's/^data: //p' "$E2E_DIR/body" | jq -j 'select(.type == "response.output_text.delta") | .delta')
check "responses stream: deltas are the final text" "$DT" "$(sed -n 's/^data: //p' "$E2E_DIR/body" | jq -r 'select(.type == "response.completed") | .response.output[0].content[0].text')"
check "responses stream: sequence numbers" "$(grep -c '^data: ' "$E2E_DIR/body")" "$(sed -n 's/^data: //p' "$E2E_DIR/body" | jq -r .sequence_number | sort -n | uniq | wc -l)"
charged "$U0" "$(sed -n 's/^data: //p' "$E2E_DIR/body" | jq -c 'select(.type == "response.completed") | .response.usage | {prompt_tokens: .input_tokens, completion_tokens: .output_tokens}')" "responses stream"
U0=$(used)
gen /v1/responses '{"model":"stories","input":"x","previous_response_id":"resp_1"}'
err_is "responses: previous_response_id" 400 invalid_request_error unsupported previous_response_id
gen /v1/responses '{"model":"stories","input":[{"type":"function_call_output","call_id":"c","output":"1"}]}'
err_is "responses: a function call output item" 400 invalid_request_error unsupported "input[0]"
gen /v1/responses '{"model":"stories","input":"x","tools":[{"type":"web_search"}]}'
err_is "responses: tools" 400 invalid_request_error unsupported tools
gen /v1/responses '{"model":"stories"}'
err_is "responses: no input" 400 invalid_request_error invalid_request input
check "responses refusals charged nothing" "$U0" "$(used)"

# --- /v1/embeddings ------------------------------------------------------------------------
gen /v1/embeddings '{"model":"stories","input":"x","encoding_format":"hex"}'
err_is "embeddings: bad encoding_format" 400 invalid_request_error invalid_request encoding_format
gen /v1/embeddings '{"model":"stories","input":[]}'
err_is "embeddings: empty input" 400 invalid_request_error invalid_request input
U0=$(used)
gen /v1/embeddings '{"model":"stories","input":["Once upon a time","b"]}'
if [ "$STATUS" = 200 ]; then
	check "embeddings: two vectors" "0 1" "$(jget '[.data[].index] | map(tostring) | join(" ")')"
	P=$(jget .usage.prompt_tokens)
	check "embeddings charged as tokens_in" "$((P * 100))" $(( $(e2e_micro "$(used)") - $(e2e_micro "$U0") ))
	V0=$(printf '%s' "$BODY" | jq -c '.data[0].embedding')
	check "embeddings: normalised" 1 "$(printf '%s' "$V0" | jq '(map(. * .) | add | sqrt * 1000 | round) / 1000')"
	gen /v1/embeddings '{"model":"stories","input":"Once upon a time"}'
	check "embeddings: the same text alone, the same vector" "$V0" "$(printf '%s' "$BODY" | jq -c '.data[0].embedding')"
	gen /v1/embeddings '{"model":"stories","input":"Once upon a time","encoding_format":"base64"}'
	check "embeddings base64: 4 bytes a dimension" "$(( $(printf '%s' "$V0" | jq length) * 4 ))" "$(jget .data[0].embedding | base64 -d | wc -c)"
else
	err_is "embeddings of a bundled model without infer_embed" 400 invalid_request_error unsupported model
	check "embeddings refusal charged nothing" "$U0" "$(used)"
fi

# --- models --------------------------------------------------------------------------------
req GET /v1/models/stories "$TOK"
check "models/{id}" 200 "$STATUS"; check "models/{id}: id" stories "$(jget .id)"; check "models/{id}: object" model "$(jget .object)"
req GET /v1/models/gpt-4o "$TOK"
err_is "models/{id} unknown" 404 not_found_error model_not_found model

# --- CORS ------------------------------------------------------------------------------------
preflight() {
	STATUS=$(curl -s -D "$E2E_DIR/h" -o "$E2E_DIR/body" -w '%{http_code}' -X OPTIONS \
		-H "Origin: $1" -H 'Access-Control-Request-Method: POST' \
		-H 'Access-Control-Request-Headers: authorization, content-type, x-stainless-os' "$URL$2")
}
preflight "$ORIGIN" /v1/chat/completions
check "preflight, allowed origin: 204" 204 "$STATUS"
check "preflight: allow origin" "$ORIGIN" "$(hdr Access-Control-Allow-Origin)"
hdr Access-Control-Allow-Methods | grep -q POST && ok || bad "preflight: methods: $(hdr Access-Control-Allow-Methods)"
check "preflight: the page's headers allowed" "authorization, content-type, x-stainless-os" "$(hdr Access-Control-Allow-Headers)"
preflight http://evil.example /v1/chat/completions
check "preflight, other origin: 403" 403 "$STATUS"
check "preflight, other origin: no allow-origin" "" "$(hdr Access-Control-Allow-Origin)"
preflight "$ORIGIN" /v1/nothing
check "preflight of an unknown path: 404" 404 "$STATUS"
STATUS=$(curl -s -D "$E2E_DIR/h" -o "$E2E_DIR/body" -w '%{http_code}' -H "Origin: http://localhost:3000" -H "Authorization: Bearer $TOK" "$URL/v1/models")
check "CORS GET: 200" 200 "$STATUS"
check "CORS GET: allow origin" http://localhost:3000 "$(hdr Access-Control-Allow-Origin)"
hdr Access-Control-Expose-Headers | grep -q X-Allot-Remaining && ok || bad "CORS GET: X-Allot-Remaining not exposed"
STATUS=$(curl -s -D "$E2E_DIR/h" -o "$E2E_DIR/body" -w '%{http_code}' -H "Origin: http://evil.example" -H "Authorization: Bearer $TOK" "$URL/v1/models")
check "other origin: no allow-origin" "" "$(hdr Access-Control-Allow-Origin)"
"$BIN/allotd" --cors-origins 'ftp://x' --check >/dev/null 2>&1
check "bad --cors-origins refused" 1 "$?"

e2e_done
