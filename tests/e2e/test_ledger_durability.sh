#!/bin/bash
# Durability end to end: a client streams signed batches of 200 records while
# allotd is killed with SIGKILL at random moments and restarted, 10 times.
# The client notes which batches were acknowledged (HTTP 200 received) and
# retries the others, as `allot usage submit` does.  Afterwards every
# acknowledged record is present exactly once, every submitted record was
# accepted exactly once over all answers, and every balance (quota "used" of
# each project and of the institution) equals the sum of its records.
. "$(dirname "$0")/lib.sh"

# Fewer batches when allotd is a sanitizer build (make asan): ingestion is
# several times slower there and the kills come at the same pace.
DEFAULT_BATCHES=60
if ldd "$BIN/allotd" 2>/dev/null | grep -q libasan || nm "$BIN/allotd" 2>/dev/null | grep -q __asan_init; then
	DEFAULT_BATCHES=20
fi
BATCHES=${ALLOT_E2E_DUR_BATCHES:-$DEFAULT_BATCHES}
PER=200
KILLS=10
N=$((BATCHES * PER))

e2e_cscs_charter ledger-durability
start() { e2e_start --charter "$E2E_DIR/charter.yaml" && echo "$URL" >"$E2E_DIR/url.tmp" &&
	mv "$E2E_DIR/url.tmp" "$E2E_DIR/url"; }
start || exit 1
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')

# --- the records: N signed, in batches of PER ------------------------------------------
END=$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ)
START=$(date -u -d '-70 minutes' +%Y-%m-%dT%H:%M:%SZ)
awk -v n="$N" -v s="$START" -v e="$END" 'BEGIN {
	for (i = 0; i < n; i++) {
		k = i % 3; q = 1 + (i * 7919) % 5000
		if (k == 0) { p = "climate"; m = "alice@epfl.ch"; r = "gpu_seconds"; c = "\"h100\"" }
		if (k == 1) { p = "climate"; m = "bob@epfl.ch"; r = "cpu_seconds"; c = "null" }
		if (k == 2) { p = "vision"; m = "carol@epfl.ch"; r = "gpu_seconds"; c = "\"h100\"" }
		printf "{\"record_id\":\"dur-%d\",\"provider\":\"cscs\",\"seq\":%d,\"institution\":\"epfl\",\"project\":\"%s\",\"member\":\"%s\",\"resource\":\"%s\",\"class\":%s,\"quantity\":%d,\"start\":\"%s\",\"end\":\"%s\"}\n", i, i, p, m, r, c, q, s, e
	} }' | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" >"$E2E_DIR/all.jsonl"
check "signed" "$N" "$(wc -l <"$E2E_DIR/all.jsonl")"
split -l "$PER" -d -a 4 "$E2E_DIR/all.jsonl" "$E2E_DIR/b."
for part in "$E2E_DIR"/b.[0-9][0-9][0-9][0-9]; do jq -s -c '{records: .}' "$part" >"$part.json"; done

# --- the client: each batch until acknowledged; logs "batch attempt code acc dup" ---------
client() {
	local part code try
	for part in "$E2E_DIR"/b.[0-9][0-9][0-9][0-9].json; do
		try=0
		while :; do
			try=$((try + 1))
			code=$(curl -s -m 10 -o "$part.out" -w '%{http_code}' -X POST \
				-H "Authorization: Bearer $PKEY" -H 'Content-Type: application/json' \
				--data-binary "@$part" "$(cat "$E2E_DIR/url")/v1/usage")
			if [ "$code" = 200 ]; then
				echo "$(basename "$part" .json) $try $code $(jq -r '"\(.summary.accepted) \(.summary.duplicate) \(.summary.rejected + .summary.conflict)"' "$part.out")"
				break
			fi
			echo "$(basename "$part" .json) $try ${code:-000} - - -"
			[ "$try" -gt 200 ] && return 1
			sleep 0.05
		done
	done
}
client >"$E2E_DIR/client.log" 2>&1 &
CPID=$!

# --- the killer: SIGKILL at random moments, restart -------------------------------------
KILLED_BUSY=0
for k in $(seq 1 "$KILLS"); do
	sleep "$(awk -v r="$RANDOM" 'BEGIN {printf "%.2f", 0.1 + (r % 60) / 100}')"
	kill -0 "$CPID" 2>/dev/null && KILLED_BUSY=$((KILLED_BUSY + 1))
	e2e_kill9
	start || { bad "restart $k failed"; break; }
done
wait "$CPID"
check "client finished every batch" 0 $?
ACKED=$(awk '$3 == 200' "$E2E_DIR/client.log" | wc -l)
FAILED_TRIES=$(awk '$3 != 200' "$E2E_DIR/client.log" | wc -l)
check "every batch acknowledged in the end" "$BATCHES" "$ACKED"
# A batch answered at the first attempt was accepted whole.  After a kill a
# batch may have been committed but not answered: its retry then reports
# (some) duplicates.  The ledger check below counts each record once.
check "first-attempt batches accepted whole" "" "$(awk '$2 == 1 && $3 == 200 && $4 != '"$PER"'' "$E2E_DIR/client.log" | head -3)"
UNANSWERED=$(awk '$3 == 200 && $5 > 0' "$E2E_DIR/client.log" | wc -l)
check "nothing rejected" 0 "$(awk '$3 == 200 {s += $6} END {print s + 0}' "$E2E_DIR/client.log")"
check "accepted + duplicate = batch size" "" "$(awk '$3 == 200 && $4 + $5 != '"$PER"'' "$E2E_DIR/client.log" | head -3)"

# --- every acknowledged record exactly once ------------------------------------------------
: >"$E2E_DIR/listed"
AFTER=
while :; do
	req GET "/v1/usage?provider=cscs&limit=1000${AFTER:+&after=$AFTER}" "$ADMIN_KEY"
	[ "$STATUS" = 200 ] || { bad "listing: $STATUS $BODY"; break; }
	jget '.records[] | "\(.record_id) \(.project) \(.charge)"' >>"$E2E_DIR/listed"
	AFTER=$(jget .next)
	[ "$AFTER" = null ] && break
done
awk '$3 == 200 {print $1}' "$E2E_DIR/client.log" | while read -r b; do
	jq -r '.records[].record_id' "$E2E_DIR/$b.json"
done | sort >"$E2E_DIR/acked_ids"
cut -d' ' -f1 "$E2E_DIR/listed" | sort >"$E2E_DIR/listed_ids"
check "no record_id twice" "" "$(uniq -d "$E2E_DIR/listed_ids" | head -3)"
check "every acknowledged record present" "" "$(comm -23 "$E2E_DIR/acked_ids" "$E2E_DIR/listed_ids" | head -3)"
check "records in the ledger" "$N" "$(wc -l <"$E2E_DIR/listed_ids")"

# --- balances equal the sum of their records -------------------------------------------------
to_micro() { awk '{ n = split($0, p, "."); f = (n > 1 ? p[2] : ""); while (length(f) < 6) f = f "0";
	s = (substr(p[1], 1, 1) == "-") ? -1 : 1; i = p[1]; sub(/^-/, "", i);
	printf "%.0f\n", s * (i * 1000000 + f) }'; }
sum_listed() { awk -v p="$1" 'p == "" || $2 == p {print $3}' "$E2E_DIR/listed" | to_micro |
	awk '{s += $1} END {printf "%.0f", s}'; }
# and the expected sum from the records themselves: quantity x rate
EXPECT=$(jq -r '"\(.project) \(.quantity * (if .resource == "gpu_seconds" then 31415 else 125 end))"' \
	"$E2E_DIR/all.jsonl")
for p in climate vision; do
	req GET "/v1/quotas/epfl/$p" "$ADMIN_KEY"
	USED=$(jget '.levels[] | select(.level == "project") | .used' | to_micro)
	check "$p used = sum of its listed records" "$(sum_listed "$p")" "$USED"
	check "$p used = sum of quantity x rate" \
		"$(printf '%s\n' "$EXPECT" | awk -v p="$p" '$1 == p {s += $2} END {printf "%.0f", s}')" "$USED"
done
req GET /v1/quotas/epfl "$ADMIN_KEY"
check "institution used = sum of all records" "$(sum_listed "")" \
	"$(jget '.levels[] | select(.level == "institution") | .used' | to_micro)"
req GET "/v1/reports/usage?group_by=project" "$ADMIN_KEY"
check "report total = sum of all records" "$(sum_listed "")" "$(jget .total.charge | to_micro)"
echo "$E2E_NAME: $N records in $BATCHES batches, $KILLS kills ($KILLED_BUSY while the client streamed), $FAILED_TRIES failed attempts retried, $UNANSWERED batches committed before an answer was lost"

e2e_done
