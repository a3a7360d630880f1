#!/bin/bash
# /metrics after traffic (docs/METRICS.md): `promtool check metrics` accepts
# it, and each series moves by exactly what the traffic should move it by:
# admissions by outcome and level, reservations back to zero, settlements,
# ledger records by outcome and reject class, group commits, fsyncs, the
# log's size, inference tokens, queue and batch, time to first token, and
# HTTP latency measured to the end of a stream.  The example alerting rules
# of docs/METRICS.md pass `promtool check rules`.
. "$(dirname "$0")/lib.sh"

if [ ! -f "$E2E_ROOT/models/stories260K.gguf" ]; then
	echo "test_metrics: SKIPPED: models/stories260K.gguf is absent (make test copies it from ../shared/models)"
	exit 0
fi
PROMTOOL=$(command -v promtool || true)

PUB=$("$BIN/allot" keygen --out "$E2E_DIR/cscs.key")
"$BIN/allot" keygen --out "$E2E_DIR/rogue.key" >/dev/null
cat >"$E2E_DIR/charter.yaml" <<YAML
charter: metrics-test
version: 1
effective: 2026-01-01T00:00:00Z
timezone: UTC
pool: 100000
rates:
  - {resource: tokens_in,  model: stories, credits: 0.0001}
  - {resource: tokens_out, model: stories, credits: 0.0003}
  - {resource: gpu_seconds, credits: 0.01}
providers:
  - {id: local, builtin: true}
  - {id: cscs, keys: ["$PUB"], resources: [gpu_seconds]}
models:
  - {id: stories, provider: local, file: stories260K.gguf}
institutions:
  - id: epfl
    allocation: {credits: 1000, period: month}
    models: [stories]
    projects:
      - id: climate
        allocation: {credits: 500, period: month}
        members: [bob@epfl.ch]
      - id: small
        allocation: {credits: 0.001, period: month}
        members: [s1@epfl.ch]
      - id: rl
        allocation: {credits: 100, period: month}
        limits: {requests_per_minute: 1}
        members: [r1@epfl.ch]
YAML
e2e_start --charter "$E2E_DIR/charter.yaml" --threads 1 || exit 1
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')

mint() {
	printf '{"institution":"%s","project":"%s","member":"%s"}' "$1" "$2" "$3" >"$E2E_DIR/m.json"
	req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/m.json"
	jget .token
}
gen() { # TOKEN JSON: POST /v1/completions; sets STATUS, BODY
	printf '%s' "$2" >"$E2E_DIR/g.json"
	STATUS=$(curl -s -N -o "$E2E_DIR/body" -w '%{http_code}' -H "Authorization: Bearer $1" \
		-H 'Content-Type: application/json' --data-binary @"$E2E_DIR/g.json" "$URL/v1/completions")
	BODY=$(cat "$E2E_DIR/body")
}
scrape() { curl -s "$URL/metrics" >"$E2E_DIR/metrics.txt"; }
# m 'SERIES{LABELS}': its value in the last scrape (0 when absent)
m() {
	awk -v s="$1" '$1 == s { v = $2 } END { print (v == "" ? 0 : v) }' "$E2E_DIR/metrics.txt"
}

BOB=$(mint epfl climate bob@epfl.ch)
S1=$(mint epfl small s1@epfl.ch)
R1=$(mint epfl rl r1@epfl.ch)
scrape
ADM0=$(m 'allot_gate_admissions_total{outcome="admitted",level="none"}')
Q0=$(m 'allot_gate_admissions_total{outcome="quota",level="project"}')
RATE0=$(m 'allot_gate_admissions_total{outcome="rate",level="project"}')
BOOK0=$(m 'allot_gate_settlements_total{outcome="booked"}')
GEN0=$(m allot_infer_generated_tokens_total)
PR0=$(m allot_infer_prompt_tokens_total)
REQ0=$(m allot_infer_requests_total)
TTFT0=$(m allot_infer_time_to_first_token_seconds_count)
LEAVES0=$(m allot_tlog_leaves)

# --- gate traffic: 4 admitted (one streamed), 1 quota, 1 rate refusal ------------------
TOK=0; PTOK=0
for i in 1 2; do
	gen "$BOB" '{"model":"stories","prompt":"Once upon a time","max_tokens":8,"temperature":0}'
	check "completion $i" 200 "$STATUS"
	TOK=$((TOK + $(jget .usage.completion_tokens))); PTOK=$((PTOK + $(jget .usage.prompt_tokens)))
done
gen "$BOB" '{"model":"stories","prompt":"Once upon a time","max_tokens":8,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}'
check "streamed completion" 200 "$STATUS"
U=$(sed -n 's/^data: //p' "$E2E_DIR/body" | grep -v '^\[DONE\]$' | jq -c 'select(.usage) | .usage' | tail -1)
TOK=$((TOK + $(printf '%s' "$U" | jq .completion_tokens))); PTOK=$((PTOK + $(printf '%s' "$U" | jq .prompt_tokens)))
gen "$S1" '{"model":"stories","prompt":"Once upon a time","max_tokens":8}'
check "quota refusal" 402 "$STATUS"
gen "$R1" '{"model":"stories","prompt":"Once","max_tokens":2}'
check "rate: first admitted" 200 "$STATUS"
TOK=$((TOK + $(jget .usage.completion_tokens))); PTOK=$((PTOK + $(jget .usage.prompt_tokens)))
gen "$R1" '{"model":"stories","prompt":"Once","max_tokens":2}'
check "rate: second refused" 429 "$STATUS"

# --- ledger traffic: 2 accepted, 1 duplicate, 1 bad signature, 1 unknown project, 1 malformed
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
HOURAGO=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
rec() { # id project
	printf '{"record_id":"%s","provider":"cscs","institution":"epfl","project":"%s","member":null,"resource":"gpu_seconds","class":null,"model":null,"quantity":10,"start":"%s","end":"%s","kind":"usage","supersedes":null}\n' \
		"$1" "$2" "$HOURAGO" "$NOW"
}
sign() { "$BIN/allot" usage sign --key "${1:-$E2E_DIR/cscs.key}"; }
scrape
ACC0=$(m 'allot_ledger_records_total{outcome="accepted"}')
DUP0=$(m 'allot_ledger_records_total{outcome="duplicate"}')
REJ0=$(m 'allot_ledger_records_total{outcome="rejected"}')
MAL0=$(m 'allot_ledger_records_rejected_total{reason="malformed"}')
SIG0=$(m 'allot_ledger_records_rejected_total{reason="signature"}')
CH0=$(m 'allot_ledger_records_rejected_total{reason="charter"}')
GC0=$(m allot_ledger_group_commit_size_count)
FS0=$(m allot_store_fsync_duration_seconds_count)
{ rec m-1 climate; rec m-2 climate; } | sign >"$E2E_DIR/r.jsonl"
rec m-1 climate | sign >>"$E2E_DIR/r.jsonl"
rec m-3 climate | sign "$E2E_DIR/rogue.key" >>"$E2E_DIR/r.jsonl"
rec m-4 nosuch | sign >>"$E2E_DIR/r.jsonl"
echo '{"record_id":"m-5"}' >>"$E2E_DIR/r.jsonl"
jq -s '{records: .}' "$E2E_DIR/r.jsonl" >"$E2E_DIR/b.json"
req POST /v1/usage "$PKEY" application/json "$E2E_DIR/b.json"
check "usage batch" 200 "$STATUS"
check "batch summary" "2 1 3" "$(jget '"\(.summary.accepted) \(.summary.duplicate) \(.summary.rejected)"')"

# --- the scrape --------------------------------------------------------------------
sleep 0.3 # the streamed request is counted when its connection's response ends
scrape
check "admitted +4" $((ADM0 + 4)) "$(m 'allot_gate_admissions_total{outcome="admitted",level="none"}')"
check "quota refusals at the project level +1" $((Q0 + 1)) "$(m 'allot_gate_admissions_total{outcome="quota",level="project"}')"
check "rate refusals at the project level +1" $((RATE0 + 1)) "$(m 'allot_gate_admissions_total{outcome="rate",level="project"}')"
check "no reservation held after the requests" 0 "$(m allot_gate_reservations_held)"
check "no credits reserved after the requests" 0.000000 "$(m allot_gate_reserved_credits)"
check "settlements booked +4" $((BOOK0 + 4)) "$(m 'allot_gate_settlements_total{outcome="booked"}')"
check "settlements failed" 0 "$(m 'allot_gate_settlements_total{outcome="failed"}')"
check "generated tokens = completion_tokens reported" $((GEN0 + TOK)) "$(m allot_infer_generated_tokens_total)"
check "prompt tokens = prompt_tokens reported" $((PR0 + PTOK)) "$(m allot_infer_prompt_tokens_total)"
check "engine requests +4" $((REQ0 + 4)) "$(m allot_infer_requests_total)"
check "time to first token observed 4 times" $((TTFT0 + 4)) "$(m allot_infer_time_to_first_token_seconds_count)"
check "engine queue empty" 0 "$(m allot_infer_queue_depth)"
check "no active sequence" 0 "$(m allot_infer_active_sequences)"
B=$(m allot_infer_batch_tokens_count)
[ "$B" -ge 1 ] && ok || bad "no forward pass counted ($B)"
check "records accepted +2" $((ACC0 + 2)) "$(m 'allot_ledger_records_total{outcome="accepted"}')"
check "records duplicate +1" $((DUP0 + 1)) "$(m 'allot_ledger_records_total{outcome="duplicate"}')"
check "records rejected +3" $((REJ0 + 3)) "$(m 'allot_ledger_records_total{outcome="rejected"}')"
check "rejected malformed +1" $((MAL0 + 1)) "$(m 'allot_ledger_records_rejected_total{reason="malformed"}')"
check "rejected signature +1" $((SIG0 + 1)) "$(m 'allot_ledger_records_rejected_total{reason="signature"}')"
check "rejected by the charter +1" $((CH0 + 1)) "$(m 'allot_ledger_records_rejected_total{reason="charter"}')"
check "one group commit for the batch" $((GC0 + 1)) "$(m allot_ledger_group_commit_size_count)"
FS=$(m allot_store_fsync_duration_seconds_count)
[ "$FS" -gt "$FS0" ] && ok || bad "the batch's FULL commit was not counted as an fsync ($FS0 -> $FS)"
# 4 settlements of 2 records each, 2 accepted usage records: a leaf each
check "log leaves +10" $((LEAVES0 + 10)) "$(m allot_tlog_leaves)"
req GET /v1/log/checkpoint "$ADMIN_KEY"
scrape
check "checkpoint covers the log" "$(m allot_tlog_leaves)" "$(m allot_tlog_checkpoint_leaves)"
grep -q '^allot_tlog_checkpoint_age_seconds ' "$E2E_DIR/metrics.txt" && ok || bad "no checkpoint age after signing"

# --- HTTP latency to the end of the stream -------------------------------------------
# A stream that waits: the engine is slow enough on a long generation that the
# whole stream takes longer than its headers; its observation lands in the
# completions route's histogram with a sum that includes the generation.
SUM0=$(m 'allot_http_request_duration_seconds_sum{method="POST",route="/v1/completions"}')
printf '%s' '{"model":"stories","prompt":"Once upon a time","max_tokens":400,"temperature":0,"stream":true}' >"$E2E_DIR/g.json"
# curl's own clock: to the first byte (the headers) and to the end
TIMES=$(curl -s -N -o "$E2E_DIR/body" -w '%{http_code} %{time_starttransfer} %{time_total}' \
	-H "Authorization: Bearer $BOB" -H 'Content-Type: application/json' \
	--data-binary @"$E2E_DIR/g.json" "$URL/v1/completions")
read -r STATUS TTFB TTOTAL <<<"$TIMES"
check "long stream" 200 "$STATUS"
sleep 0.3
scrape
SUM1=$(m 'allot_http_request_duration_seconds_sum{method="POST",route="/v1/completions"}')
# the observation covers most of the generation after the headers (measured
# to the headers, it was about TTFB), and not more than the client's total
python3 -c "import sys; d=$SUM1-$SUM0; sys.exit(0 if $TTFB + ($TTOTAL-$TTFB)/2 <= d <= $TTOTAL + 0.05 else 1)" &&
	ok || bad "stream latency: observed $SUM0 -> $SUM1; client: headers after $TTFB s, end after $TTOTAL s"
python3 -c "import sys; sys.exit(0 if $TTOTAL - $TTFB > 0.01 else 1)" ||
	echo "test_metrics: note: the stream took only $TTOTAL s after its headers at $TTFB s: a weak check"

# --- promtool ------------------------------------------------------------------------
if [ -z "$PROMTOOL" ]; then
	echo "test_metrics: promtool checks SKIPPED: promtool is absent (Debian package prometheus, scripts/deps.sh)"
else
	if OUT=$("$PROMTOOL" check metrics <"$E2E_DIR/metrics.txt" 2>&1); then ok; else bad "promtool check metrics: $OUT"; fi
	# the rules of docs/METRICS.md: the fenced yaml block after "Example alerting rules"
	awk '/^## Example alerting rules/ { f = 1 } f && /^```yaml/ { p = 1; next } p && /^```/ { exit } p' \
		"$E2E_ROOT/docs/METRICS.md" >"$E2E_DIR/rules.yml"
	[ -s "$E2E_DIR/rules.yml" ] && ok || bad "no rules block in docs/METRICS.md"
	if OUT=$("$PROMTOOL" check rules "$E2E_DIR/rules.yml" 2>&1); then ok; else bad "promtool check rules: $OUT"; fi
	# every series the daemon exposes is documented
	for s in $(grep '^# TYPE ' "$E2E_DIR/metrics.txt" | awk '{print $3}' | sort -u); do
		grep -q "\`$s\`" "$E2E_ROOT/docs/METRICS.md" && ok || bad "$s is not in docs/METRICS.md"
	done
fi
e2e_done
