#!/bin/bash
# Four clients submit overlapping signed batches at once (the same records in
# different orders and batch cuts): afterwards every record_id is stored
# exactly once, every record was accepted exactly once across all clients,
# and the totals equal the sum of the distinct records.
. "$(dirname "$0")/lib.sh"

N=${ALLOT_E2E_CONC_RECORDS:-800}   # distinct records
CLIENTS=4

e2e_cscs_charter ledger-concurrency
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')

# --- N signed records with known charges ------------------------------------------
END=$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ)
START=$(date -u -d '-70 minutes' +%Y-%m-%dT%H:%M:%SZ)
: >"$E2E_DIR/expect"
for i in $(seq 0 $((N - 1))); do
	case $((i % 3)) in
	0) p=climate m=alice@epfl.ch r=gpu_seconds c='"h100"' rate=31415 ;;
	1) p=climate m=bob@epfl.ch r=cpu_seconds c=null rate=125 ;;
	2) p=vision m=carol@epfl.ch r=gpu_seconds c='"h100"' rate=31415 ;;
	esac
	q=$((1 + (i * 7919) % 5000))
	printf '{"record_id":"conc-%d","provider":"cscs","seq":%d,"institution":"epfl","project":"%s","member":"%s","resource":"%s","class":%s,"quantity":%d,"start":"%s","end":"%s"}\n' \
		"$i" "$i" "$p" "$m" "$r" "$c" "$q" "$START" "$END"
	echo "conc-$i $p $((q * rate))" >>"$E2E_DIR/expect"
done | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" >"$E2E_DIR/all.jsonl"
check "signed all records" "$N" "$(wc -l <"$E2E_DIR/all.jsonl")"

# --- four clients: same records, different orders and batch cuts ------------------
# client 0: in order; 1: reversed; 2: shuffled; 3: shuffled, every record twice.
cp "$E2E_DIR/all.jsonl" "$E2E_DIR/c0.jsonl"
tac "$E2E_DIR/all.jsonl" >"$E2E_DIR/c1.jsonl"
shuf --random-source=<(yes 2) "$E2E_DIR/all.jsonl" >"$E2E_DIR/c2.jsonl"
cat "$E2E_DIR/all.jsonl" "$E2E_DIR/all.jsonl" | shuf --random-source=<(yes 3) >"$E2E_DIR/c3.jsonl"
SIZES=(100 75 50 120)
for c in 0 1 2 3; do
	split -l "${SIZES[$c]}" -d -a 3 "$E2E_DIR/c$c.jsonl" "$E2E_DIR/c$c.part."
	for part in "$E2E_DIR"/c$c.part.*; do
		jq -s -c '{records: .}' "$part" >"$part.json"
	done
done

client() { # c: posts its batches in order; writes "status accepted duplicate rejected conflict"
	local c=$1 part code
	for part in "$E2E_DIR"/c$c.part.*.json; do
		code=$(curl -s -o "$part.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $PKEY" \
			-H 'Content-Type: application/json' --data-binary "@$part" "$URL/v1/usage")
		printf '%s %s\n' "$code" "$(jq -r '[.summary.accepted, .summary.duplicate, .summary.rejected, .summary.conflict] | join(" ")' "$part.out" 2>/dev/null)"
	done >"$E2E_DIR/client$c.log"
}
PIDS=()
for c in $(seq 0 $((CLIENTS - 1))); do client "$c" & PIDS+=($!); done
wait "${PIDS[@]}"

SENT=$((N * 5))   # clients 0-2 send every record once, client 3 twice
read -r ok200 acc dup rej con < <(cat "$E2E_DIR"/client*.log |
	awk '{n++; if ($1 == 200) ok++; a += $2; d += $3; r += $4; c += $5}
	     END {print ok + 0, a + 0, d + 0, r + 0, c + 0}')
NBATCH=$(cat "$E2E_DIR"/client*.log | wc -l)
check "every batch answered 200" "$NBATCH" "$ok200"
check "each record accepted exactly once across clients" "$N" "$acc"
check "all other submissions are duplicates" "$((SENT - N))" "$dup"
check "nothing rejected" 0 "$rej"
check "no conflicts" 0 "$con"

# --- the ledger: every record_id exactly once (paginated listing) --------------------
: >"$E2E_DIR/listed"
AFTER=
PAGES=0
while :; do
	req GET "/v1/usage?provider=cscs&limit=137${AFTER:+&after=$AFTER}" "$ADMIN_KEY"
	[ "$STATUS" = 200 ] || { bad "listing page: $STATUS $BODY"; break; }
	jget '.records[] | "\(.record_id) \(.project) \(.charge)"' >>"$E2E_DIR/listed"
	PAGES=$((PAGES + 1))
	AFTER=$(jget .next)
	[ "$AFTER" = null ] && break
	[ "$PAGES" -gt 1000 ] && { bad "pagination does not end"; break; }
done
check "listed records" "$N" "$(wc -l <"$E2E_DIR/listed")"
check "no record_id twice" "" "$(cut -d' ' -f1 "$E2E_DIR/listed" | sort | uniq -d | head -3)"
check "the listed ids are the submitted ids" "" \
	"$(diff <(cut -d' ' -f1 "$E2E_DIR/listed" | sort) <(cut -d' ' -f1 "$E2E_DIR/expect" | sort) | head -3)"

# --- totals: the sum of the distinct records, to the micro-credit ---------------------
# decimal credits -> integer micro-credits (exact: string arithmetic in awk)
to_micro() { awk '{ n = split($0, p, "."); f = (n > 1 ? p[2] : ""); while (length(f) < 6) f = f "0";
	s = (substr(p[1], 1, 1) == "-") ? -1 : 1; i = p[1]; sub(/^-/, "", i);
	printf "%.0f\n", s * (i * 1000000 + f) }'; }
EXP_ALL=$(awk '{s += $3} END {printf "%.0f", s}' "$E2E_DIR/expect")
EXP_CLIMATE=$(awk '$2 == "climate" {s += $3} END {printf "%.0f", s}' "$E2E_DIR/expect")
EXP_VISION=$(awk '$2 == "vision" {s += $3} END {printf "%.0f", s}' "$E2E_DIR/expect")
check "listed charges sum" "$EXP_ALL" \
	"$(cut -d' ' -f3 "$E2E_DIR/listed" | to_micro | awk '{s += $1} END {printf "%.0f", s}')"
req GET "/v1/reports/usage?group_by=project&format=json" "$ADMIN_KEY"
check "report total" "$EXP_ALL" "$(jget .total.charge | to_micro)"
check "report records" "$N" "$(jget .total.records)"
check "report climate" "$EXP_CLIMATE" "$(jget '.rows[] | select(.project == "epfl/climate") | .charge' | to_micro)"
check "report vision" "$EXP_VISION" "$(jget '.rows[] | select(.project == "epfl/vision") | .charge' | to_micro)"
req GET /v1/quotas/epfl "$ADMIN_KEY"
check "institution used" "$EXP_ALL" "$(jget '.levels[] | select(.level == "institution") | .used' | to_micro)"
req GET /v1/quotas/epfl/climate "$ADMIN_KEY"
check "climate used" "$EXP_CLIMATE" "$(jget '.levels[] | select(.level == "project") | .used' | to_micro)"
req GET /v1/quotas/epfl/vision "$ADMIN_KEY"
check "vision used" "$EXP_VISION" "$(jget '.levels[] | select(.level == "project") | .used' | to_micro)"
echo "$E2E_NAME: $N records, $CLIENTS clients, $NBATCH batches, $SENT submissions, $PAGES pages"

e2e_done
