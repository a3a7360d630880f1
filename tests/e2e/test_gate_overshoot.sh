#!/bin/bash
# No overshoot (SPEC section 7): 64 concurrent clients spend from one project
# whose allocation fits exactly N worst-case requests.
#   hard: exactly N are admitted, exactly those are charged, the rest get
#         402, and the balance never goes below zero (sampled while the
#         burst runs, and at the end used == N x worst case == allocation);
#   soft (grace_percent G): exactly the N + grace requests are admitted and
#         the overage stays within the grace.
# Each round uses a fresh project (one per round and mode in the charter).
# Rounds: ALLOT_OVERSHOOT_ROUNDS (default 20; 3 under ALLOT_E2E_QUICK=1).
#
# The arithmetic: prompt "Once upon a time" is 5 tokens with BOS; max_tokens 2
# and greedy decoding always generate 2; at 0.0001 in and 0.0003 out the worst
# case (and the actual charge) is 5 x 100 + 2 x 300 = 1100 micro-credits, so
# an allocation of N x 0.0011 credits fits exactly N requests.
. "$(dirname "$0")/lib.sh"

if [ ! -f "$E2E_ROOT/models/stories260K.gguf" ]; then
	echo "test_gate_overshoot: SKIPPED: models/stories260K.gguf is absent (make test copies it from ../shared/models)"
	exit 0
fi
if [ -n "${ALLOT_E2E_QUICK:-}" ]; then ROUNDS=${ALLOT_OVERSHOOT_ROUNDS:-3}; else ROUNDS=${ALLOT_OVERSHOOT_ROUNDS:-20}; fi
CLIENTS=64
N=10
WORST=1100                 # micro-credits per request
GRACE_PERCENT=50           # soft: N/2 more requests fit the grace
ALLOC=$((N * WORST))       # micro-credits
ALLOC_TXT=$(printf '0.%06d' "$ALLOC")
SOFT_N=$(( (ALLOC + ALLOC * GRACE_PERCENT / 100) / WORST ))

{
	e2e_stories_head overshoot-test
	for mode in hard soft; do
		echo "  - id: $mode"
		echo "    allocation: {credits: 1000, period: month}"
		if [ $mode = hard ]; then echo "    overage: {mode: hard}"
		else echo "    overage: {mode: soft, grace_percent: $GRACE_PERCENT}"; fi
		echo "    projects:"
		for r in $(seq 1 "$ROUNDS"); do
			echo "      - id: r$r"
			echo "        allocation: {credits: $ALLOC_TXT, period: month}"
			echo "        members: [m$r@$mode]"
		done
	done
} >"$E2E_DIR/charter.yaml"
e2e_start --charter "$E2E_DIR/charter.yaml" --threads 1 || exit 1

project() { # mode round field -> micro-credits
	req GET "/v1/quotas/$1/r$2" "$ADMIN_KEY"
	e2e_micro "$(jget ".levels[] | select(.level == \"project\") | .$3")"
}

printf '{"model":"stories","prompt":"Once upon a time","max_tokens":2,"temperature":0}' >"$E2E_DIR/req.json"
t0=$(date +%s.%N)
for mode in hard soft; do
	want=$N; [ $mode = soft ] && want=$SOFT_N
	for r in $(seq 1 "$ROUNDS"); do
		printf '{"institution":"%s","project":"r%s","member":"m%s@%s"}' $mode "$r" "$r" $mode >"$E2E_DIR/m.json"
		req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/m.json"
		TOKEN=$(jget .token)
		rm -rf "$E2E_DIR/out"; mkdir -p "$E2E_DIR/out"
		for i in $(seq 1 $CLIENTS); do
			printf 'url = "%s/v1/completions"\noutput = "%s/out/%d.json"\n' "$URL" "$E2E_DIR" "$i"
		done >"$E2E_DIR/burst.cfg"
		# sampler: the project's figures while the burst runs
		( while [ ! -f "$E2E_DIR/out/done" ]; do
			curl -s -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/quotas/$mode/r$r" |
				jq -r '.levels[] | select(.level == "project") | "\(.used) \(.reserved) \(.remaining)"' >>"$E2E_DIR/samples.$mode"
		done ) &
		SAMPLER=$!
		# one curl, 64 transfers opened at once
		curl -s --no-progress-meter -Z --parallel-max $CLIENTS --parallel-immediate -w '%{http_code}\n' \
			-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
			--data-binary @"$E2E_DIR/req.json" -K "$E2E_DIR/burst.cfg" >"$E2E_DIR/out/codes" 2>/dev/null
		touch "$E2E_DIR/out/done"; wait $SAMPLER
		admitted=$(grep -c '^200$' "$E2E_DIR/out/codes")
		refused=$(grep -c '^402$' "$E2E_DIR/out/codes")
		# exactly what fits: never more (overshoot), never fewer (a charge
		# counted twice while its reservation is released)
		check "$mode round $r: admitted" "$want" "$admitted"
		check "$mode round $r: the rest refused with 402" $((CLIENTS - admitted)) "$refused"
		# what the clients were told they used
		told=$(cat "$E2E_DIR"/out/*.json | jq -s 'map((.usage.prompt_tokens // 0) * 100 + (.usage.completion_tokens // 0) * 300) | add')
		used=$(project $mode "$r" used)
		check "$mode round $r: charged exactly what the admitted were told" "$told" "$used"
		check "$mode round $r: nothing reserved after" 0 "$(project $mode "$r" reserved)"
		req GET "/v1/usage?institution=$mode&project=r$r&limit=1000" "$ADMIN_KEY"
		check "$mode round $r: two records per admitted request" $((2 * admitted)) "$(jget '.records | length')"
		if [ $mode = hard ]; then
			[ "$used" -le "$ALLOC" ] && ok || bad "hard round $r: used $used > allocation $ALLOC"
			check "hard round $r: each admitted request charged its worst case" $((admitted * WORST)) "$used"
		else
			[ "$used" -le $((ALLOC + ALLOC * GRACE_PERCENT / 100)) ] && ok ||
				bad "soft round $r: used $used beyond allocation + grace"
			check "soft round $r: each admitted request charged its worst case" $((admitted * WORST)) "$used"
		fi
	done
done
t1=$(date +%s.%N)
# Sampled during every burst: the balance (allocation - used) never below
# zero under hard (within the grace under soft), and "remaining"
# (allocation - used - reserved) never negative under hard: a settling
# request's charge and its reservation are never both counted.
for mode in hard soft; do
	limit=$ALLOC; [ $mode = soft ] && limit=$((ALLOC + ALLOC * GRACE_PERCENT / 100))
	BAD=0
	while read -r u _ _; do [ "$(e2e_micro "$u")" -le "$limit" ] || BAD=$((BAD + 1)); done <"$E2E_DIR/samples.$mode"
	check "$mode: no sampled balance past $limit micro-credits ($(grep -c . "$E2E_DIR/samples.$mode") samples)" 0 "$BAD"
done
check "hard: remaining never negative while requests settle" 0 "$(awk '$3 ~ /^-/' "$E2E_DIR/samples.hard" | wc -l)"
echo "test_gate_overshoot: $ROUNDS rounds x 2 modes x $CLIENTS clients (N=$N hard, $SOFT_N soft) in $(printf '%.1f' "$(echo "$t1 - $t0" | bc)") s"

e2e_done
