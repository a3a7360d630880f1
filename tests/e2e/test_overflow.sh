#!/bin/bash
# Issue 11, item 3 (SPEC 2, "Bounds"): 320 signed records of quantity 10^12
# at 0.03 credits from one provider key, in batches of 320, 64 and 1.  Each
# charge (3 * 10^16 micro-credits) fits; their sum does not: 307 are booked,
# the 13 after them are rejected with a reason and nothing of them is
# stored, a small record after them still books.  Then: `used` is the exact
# sum (never negative), the next completion under a hard allocation of 500
# is refused, reports answer 200 and agree with the quotas, and the stopped
# database holds integers only (no REAL bucket).  The gate's worst case
# past int64 (10 tokens at 10^12 credits) is refused, not wrapped and
# admitted.  Charter versions: 2^63 - 1 refused with FILE:LINE:COLUMN, 2^53
# accepted.
. "$(dirname "$0")/lib.sh"

N=320
FIT=307                       # floor(INT64_MAX / (10^12 * 30000))
CHARGE=30000000000000000      # 10^12 * 0.03 credits, in micro-credits
SMALL=30000                   # quantity 1 at 0.03
HAVE_MODEL=0
[ -f "$E2E_ROOT/models/stories260K.gguf" ] && HAVE_MODEL=1
[ "$HAVE_MODEL" = 1 ] || echo "test_overflow: the gate checks are SKIPPED: models/stories260K.gguf is absent"

PUB=$("$BIN/allot" keygen --out "$E2E_DIR/cscs.key")
charter() { # VERSION
	cat <<YAML
charter: overflow
version: $1
effective: 2026-01-01T00:00:00Z
timezone: UTC
rates:
  - {resource: gpu_seconds, class: h100, credits: 0.03}
  - {resource: tokens_in,  model: stories, credits: 0.0001}
  - {resource: tokens_out, model: stories, credits: 0.0003}
  - {resource: tokens_in,  model: dear, credits: 0.0001}
  - {resource: tokens_out, model: dear, credits: 1000000000000}
providers:
  - {id: local, builtin: true}
  - {id: cscs, keys: ["$PUB"], resources: [gpu_seconds]}
models:
  - {id: stories, provider: local, file: stories260K.gguf}
  - {id: dear, provider: local, file: stories260K.gguf}
institutions:
  - id: epfl
    allocation: {credits: 500, period: month}
    overage: {mode: hard}
    models: [stories]
    projects:
      - id: climate
        allocation: {credits: 500, period: month}
        members: [alice@epfl.ch, bob@epfl.ch]
  - id: rich
    allocation: {credits: 1000000000000, period: month}
    overage: {mode: hard}
    models: [dear]
    projects:
      - id: p
        allocation: {credits: 1000000000000, period: month}
        members: [r@rich]
YAML
}
charter 1 >"$E2E_DIR/charter.yaml"


# The records: alternating members, spread over a few 15-minute buckets;
# the last one (quantity 1) comes after every overflowing one.
END0=$(date -u -d '-50 minutes' +%s)
MONTH=$(date -u +%Y-%m)
[ "$(date -u -d "@$END0" +%Y-%m)" = "$MONTH" ] || END0=$(date -u +%s) # the first hour of a month
for i in $(seq 0 $N); do
	m=alice@epfl.ch; [ $((i % 2)) = 1 ] && m=bob@epfl.ch
	q=1000000000000; [ "$i" = "$N" ] && q=1
	end=$(date -u -d "@$((END0 + (i % 4) * 600))" +%Y-%m-%dT%H:%M:%SZ)
	printf '{"record_id":"big-%d","provider":"cscs","seq":%d,"institution":"epfl","project":"climate","member":"%s","resource":"gpu_seconds","class":"h100","quantity":%d,"start":"%s","end":"%s"}\n' \
		"$i" "$i" "$m" "$q" "$end" "$end"
done | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" >"$E2E_DIR/all.jsonl"
check "signed" "$((N + 1))" "$(wc -l <"$E2E_DIR/all.jsonl")"

# stored SQLITE-SQL PG-SQL: a query on the stopped database (SQLite: its copy)
stored() { if e2e_is_pg; then e2e_sql "$2"; else sqlite3 "$E2E_DIR/copy.db" "$1"; fi; }

# run BATCH [HEAD]: a fresh daemon and database; the records in batches of
# BATCH (the first HEAD of them in batches of 100).
run() {
	local batch=$1 head=${2:-0} tag="batches of $1${2:+ after $2}" body code
	e2e_new_db || { bad "$tag: a new database"; return; }
	rm -rf "$E2E_DIR/keys"
	e2e_start --charter "$E2E_DIR/charter.yaml" --threads 1 || { bad "$tag: start"; return; }
	PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')
	: >"$E2E_DIR/answers"
	while read -r body; do
		code=$(printf '%s' "$body" | curl -s -o "$E2E_DIR/answer" -w '%{http_code}' -X POST \
			-H "Authorization: Bearer $PKEY" -H 'Content-Type: application/json' \
			--data-binary @- "$URL/v1/usage")
		[ "$code" = 200 ] || bad "$tag: batch answered $code: $(head -c 300 "$E2E_DIR/answer")"
		cat "$E2E_DIR/answer" >>"$E2E_DIR/answers"
	done < <(jq -s -c --argjson b "$batch" --argjson h "$head" \
		'([range(0; $h; 100) as $i | {records: .[$i:[$i + 100, $h] | min]}] +
		  [range($h; length; $b) as $i | {records: .[$i:$i + $b]}]) | .[]' "$E2E_DIR/all.jsonl")
	jq -c '.results[]' "$E2E_DIR/answers" >"$E2E_DIR/results"
	check "$tag: accepted" "$((FIT + 1))" "$(jq -s '[.[] | select(.status == "accepted")] | length' "$E2E_DIR/results")"
	check "$tag: rejected" "$((N - FIT))" "$(jq -s '[.[] | select(.status == "rejected")] | length' "$E2E_DIR/results")"
	check "$tag: the rejected ones are the last big ones" "big-$FIT big-$((N - 1))" \
		"$(jq -rs '[.[] | select(.status == "rejected") | .record_id] | "\(first) \(last)"' "$E2E_DIR/results")"
	check "$tag: every rejection says why" "$((N - FIT))" \
		"$(jq -s '[.[] | select(.status == "rejected") | select(.reason | test("total of charges past 9223372036854.775807 credits"))] | length' "$E2E_DIR/results")"
	check "$tag: the small record after them books" "accepted $(printf '%s' 0.03)" \
		"$(jq -r "select(.record_id == \"big-$N\") | \"\(.status) \(.charge)\"" "$E2E_DIR/results")"
	local want=$((FIT * CHARGE + SMALL))
	req GET /v1/quotas/epfl "$ADMIN_KEY"
	check "$tag: institution used" "$want" "$(e2e_micro "$(jget '.levels[] | select(.level == "institution") | .used')")"
	check "$tag: institution remaining" "$((500000000 - want))" \
		"$(e2e_micro "$(jget '.levels[] | select(.level == "institution") | .remaining')")"
	req GET /v1/quotas/epfl/climate "$ADMIN_KEY"
	check "$tag: project used" "$want" "$(e2e_micro "$(jget '.levels[] | select(.level == "project") | .used')")"
	# reports answer and agree with the quotas and with each other
	req GET "/v1/reports/usage?format=json" "$ADMIN_KEY"
	check "$tag: report status" 200 "$STATUS"
	check "$tag: report total" "$want" "$(e2e_micro "$(jget .total.charge)")"
	check "$tag: report records" "$((FIT + 1))" "$(jget .total.records)"
	req GET "/v1/reports/usage?format=json&group_by=member" "$ADMIN_KEY"
	check "$tag: member report status" 200 "$STATUS"
	local sum=0 c
	for c in $(jget '.rows[].charge'); do sum=$((sum + $(e2e_micro "$c"))); done
	check "$tag: member rows add up to the total" "$want" "$sum"
	req GET "/v1/reports/usage?format=csv&group_by=member" "$ADMIN_KEY"
	check "$tag: csv report status" 200 "$STATUS"
	if [ "$HAVE_MODEL" = 1 ]; then
		printf '{"institution":"epfl","project":"climate","member":"alice@epfl.ch"}' >"$E2E_DIR/m.json"
		req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/m.json"
		local tok
		tok=$(jget .token)
		printf '{"model":"stories","prompt":"Once","max_tokens":4}' >"$E2E_DIR/c.json"
		req POST /v1/completions "$tok" application/json "$E2E_DIR/c.json"
		check "$tag: a completion under the hard allocation is refused" 402 "$STATUS"
		req GET /v1/quotas/me "$tok"
		local rem
		rem=$(e2e_micro "$(jget '.levels[] | select(.level == "institution") | .remaining')")
		[ "$rem" -lt 0 ] && ok || bad "$tag: remaining for the member: $rem"
	fi
	e2e_stop
	# the stopped database: integers only, and the sums the quotas showed
	# (SQLite: each value's type; PostgreSQL: the columns' types)
	local ty=integer
	if e2e_is_pg; then
		ty=bigint
	else
		cp "$E2E_DIR/allot.db" "$E2E_DIR/copy.db"
		[ -f "$E2E_DIR/allot.db-wal" ] && cp "$E2E_DIR/allot.db-wal" "$E2E_DIR/copy.db-wal"
	fi
	check "$tag: bucket columns are integers" "0|$want" "$(stored \
		"select count(*) filter (where typeof(charge) != 'integer' or typeof(bucket) != 'integer'), sum(charge) from usage_buckets" \
		"select (select count(*) from information_schema.columns where table_name = 'usage_buckets' and column_name in ('charge', 'bucket') and data_type <> 'bigint'), sum(charge) from usage_buckets")"
	check "$tag: record money columns are integers" "0|$((FIT + 1))" "$(stored \
		"select count(*) filter (where typeof(charge_micro) != 'integer' or typeof(quantity) != 'integer' or typeof(rate_micro) != 'integer'), count(*) from usage_records" \
		"select (select count(*) from information_schema.columns where table_name = 'usage_records' and column_name in ('charge_micro', 'quantity', 'rate_micro') and data_type <> 'bigint'), count(*) from usage_records")"
	check "$tag: the ledger's bound" "$want|$ty" "$(stored \
		"select b.charge_pos + (select coalesce(sum(charge_micro) filter (where charge_micro > 0), 0) from usage_records where id > b.upto), typeof(b.charge_pos) from ledger_bounds b" \
		"select b.charge_pos + (select coalesce(sum(charge_micro) filter (where charge_micro > 0), 0) from usage_records where id > b.upto), pg_typeof(b.charge_pos) from ledger_bounds b")"
	rm -f "$E2E_DIR"/copy.db*
}

run 400       # the whole lot in one batch
run 64
run 1 296     # one transaction per record from a little before the bound on

e2e_new_db || exit 1
rm -rf "$E2E_DIR/keys"
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1

# --- the gate's worst case: 10 tokens out at 10^12 credits does not fit int64 ----------
# (it wrapped to a negative worst case, and was admitted)
if [ "$HAVE_MODEL" = 1 ]; then
	printf '{"institution":"rich","project":"p","member":"r@rich"}' >"$E2E_DIR/m.json"
	req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/m.json"
	TOK=$(jget .token)
	printf '{"model":"dear","prompt":"Once","max_tokens":10}' >"$E2E_DIR/c.json"
	req POST /v1/completions "$TOK" application/json "$E2E_DIR/c.json"
	check "worst case past int64: refused" 402 "$STATUS"
	jget .error.message | grep -q "may cost up to 9223372036854.775807" && ok ||
		bad "worst case past int64: $BODY"
	req GET /v1/quotas/rich "$ADMIN_KEY"
	check "nothing reserved or charged" "0 0" \
		"$(jget '.levels[] | select(.level == "institution") | "\(.used) \(.reserved)"')"
fi

# --- charter versions are at most 2^53 -------------------------------------------------
charter 9223372036854775807 >"$E2E_DIR/charter.yaml"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/charter.yaml"
check "version 2^63 - 1 refused" 422 "$STATUS"
check "version 2^63 - 1: where and why" "charter.yaml:2:10: 'version' must be at most 2^53 (9007199254740992)" \
	"$(jget '.error.errors[]' | grep version)"
charter 9007199254740993 >"$E2E_DIR/charter.yaml"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/charter.yaml"
check "version 2^53 + 1 refused" 422 "$STATUS"
charter 9007199254740992 >"$E2E_DIR/charter.yaml"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/charter.yaml"
check "version 2^53 accepted" 200 "$STATUS"
req GET /v1/charter "$ADMIN_KEY"
check "version 2^53 in force" 9007199254740992 "$(jget .version)"
"$BIN/allot" charter check "$E2E_DIR/charter.yaml" >/dev/null 2>&1 && ok || bad "allot charter check 2^53"
charter 9223372036854775807 >"$E2E_DIR/charter.yaml"
"$BIN/allot" charter check "$E2E_DIR/charter.yaml" >"$E2E_DIR/check.out" 2>&1 && bad "allot charter check 2^63 - 1 passed" ||
	{ grep -q ":2:10: 'version' must be at most 2^53" "$E2E_DIR/check.out" && ok || bad "charter check: $(cat "$E2E_DIR/check.out")"; }

e2e_done
