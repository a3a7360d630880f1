#!/bin/bash
# Several allotd nodes on one PostgreSQL database, zero overshoot (SPEC
# section 9; docs/POSTGRES.md, "Budgets in the database"): three nodes
# (distinct ports, one database, one keys directory) each register beside
# the others; 40 concurrent completions spread over them against a hard
# project allocation that fits exactly 4 worst cases: exactly 4 admitted
# and charged across the nodes, the other 36 refused with 402, nothing left
# reserved, and every node's quota, the ledger and the budget rows agree.
#
# The arithmetic (as test_gate_overshoot): "Once upon a time" is 5 prompt
# tokens, max_tokens 2 and greedy decoding generate 2, so the worst case and
# the charge are 5 x 100 + 2 x 300 = 1100 micro-credits.
#
# It needs PostgreSQL: it runs in the PostgreSQL pass of the e2e suite
# (ALLOT_TEST_DB=pg, `make e2e-pg`) and skips, saying so, in the SQLite pass
# (by hand: bash scripts/with-pg.sh env ALLOT_TEST_DB=pg bash $0).
if [ "${ALLOT_TEST_DB:-sqlite}" != pg ] || [ -z "${ALLOT_TEST_PG_URI:-}" ]; then
	echo "test_multinode_pg: SKIPPED: needs PostgreSQL; it runs in the PostgreSQL pass (make e2e-pg)"
	exit 0
fi
. "$(dirname "$0")/lib.sh"

skip() { echo "$E2E_NAME: SKIPPED: $*"; exit 0; }
[ -f "$E2E_ROOT/models/stories260K.gguf" ] ||
	skip "models/stories260K.gguf is absent (make test copies it from ../shared/models)"

N=4
CLIENTS=40
WORST=1100
ALLOC=$((N * WORST))
{
	e2e_stories_head multinode-test "pool: 1000"
	cat <<YAML
  - id: hard
    allocation: {credits: 100, period: month}
    overage: {mode: hard}
    limits: {concurrent_requests: 64}
    projects:
      - id: p
        allocation: {credits: $(printf '0.%06d' "$ALLOC"), period: month}
        members: [m@hard]
YAML
} >"$E2E_DIR/charter.yaml"

# --- a bad ALLOT_SYNC_MS is refused before anything is created ------------------------------
for v in abc 10 3600001 -5; do
	out=$(ALLOT_SYNC_MS=$v "$BIN/allotd" --listen 127.0.0.1:0 --db "$E2E_DIR/never.db" \
		--keys "$E2E_DIR/never-keys" --charter "$E2E_DIR/charter.yaml" 2>&1)
	check "ALLOT_SYNC_MS=$v refused" "1 ALLOT_SYNC_MS=$v: expected milliseconds, an integer from 50 to 3600000" "$? ${out#allotd: }"
done
[ ! -e "$E2E_DIR/never.db" ] && [ ! -e "$E2E_DIR/never-keys" ] && ok || bad "a refused start created files"

# --- three nodes on one database ------------------------------------------------------------
e2e_start --charter "$E2E_DIR/charter.yaml" --threads 1 || exit 1
PID1=$E2E_PID URL1=$URL
e2e_start --threads 1 || exit 1
PID2=$E2E_PID URL2=$URL
e2e_start --threads 1 || exit 1
PID3=$E2E_PID URL3=$URL
E2E_PID=$PID1
stop_others() { kill "$PID2" "$PID3" 2>/dev/null; wait "$PID2" "$PID3" 2>/dev/null; }
trap 'stop_others; e2e_stop; e2e_pg_drop' EXIT
for u in "$URL1" "$URL2" "$URL3"; do
	check "node $u serves" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_KEY" "$u/v1/charter")"
done
check "three nodes registered (pg_stat_activity)" 3 \
	"$(psql "$E2E_DB_DEFAULT" -qAtX -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '% (allotd)'")"

URL=$URL1
printf '{"institution":"hard","project":"p","member":"m@hard"}' >"$E2E_DIR/m.json"
req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/m.json"
check "token minted" 201 "$STATUS"
TOKEN=$(jget .token)

# every node loads the model (a request that fits nothing would get 402, not 503)
for u in "$URL1" "$URL2" "$URL3"; do
	for _ in $(seq 1 100); do
		curl -s "$u/readyz" | grep -q 'stories: ready' && break
		sleep 0.2
	done
done

# --- 40 at once, round robin over the nodes --------------------------------------------------
printf '{"model":"stories","prompt":"Once upon a time","max_tokens":2,"temperature":0}' >"$E2E_DIR/req.json"
mkdir -p "$E2E_DIR/out"
URLS=("$URL1" "$URL2" "$URL3")
for i in $(seq 1 $CLIENTS); do
	printf 'url = "%s/v1/completions"\noutput = "%s/out/%d.json"\n' "${URLS[$((i % 3))]}" "$E2E_DIR" "$i"
done >"$E2E_DIR/burst.cfg"
timeout 50 curl -s --no-progress-meter -Z --parallel-max $CLIENTS --parallel-immediate -w '%{http_code} %{url_effective}\n' \
	-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	--data-binary @"$E2E_DIR/req.json" -K "$E2E_DIR/burst.cfg" >"$E2E_DIR/codes" 2>/dev/null
admitted=$(grep -c '^200 ' "$E2E_DIR/codes")
refused=$(grep -c '^402 ' "$E2E_DIR/codes")
for u in "$URL1" "$URL2" "$URL3"; do
	check "$u answered each of its requests with 200 or 402" \
		"$(grep -c "^url = \"$u/" "$E2E_DIR/burst.cfg")" "$(grep -cE "^(200|402) $u/" "$E2E_DIR/codes")"
done
check "exactly what fits admitted across three nodes" $N "$admitted"
check "the rest refused with 402" $((CLIENTS - N)) "$refused"
told=$(cat "$E2E_DIR"/out/*.json | jq -s 'map((.usage.prompt_tokens // 0) * 100 + (.usage.completion_tokens // 0) * 300) | add')
check "the admitted were told their worst case" $((N * WORST)) "$told"
grep -h '"message"' "$E2E_DIR"/out/*.json | head -1 | grep -q 'quota exhausted at the project level (hard/p)' && ok ||
	bad "a refusal names the project: $(grep -h '"message"' "$E2E_DIR"/out/*.json | head -1)"

# --- every node, the ledger and the budget rows agree -----------------------------------------
for u in "$URL1" "$URL2" "$URL3"; do
	URL=$u
	req GET /v1/quotas/hard/p "$ADMIN_KEY"
	check "$u: quota answers" 200 "$STATUS"
	check "$u: project used = the admitted charges" $ALLOC "$(e2e_micro "$(jget '.levels[] | select(.level == "project") | .used')")"
	check "$u: nothing reserved" 0 "$(e2e_micro "$(jget '.levels[] | select(.level == "project") | .reserved')")"
	check "$u: institution used" $ALLOC "$(e2e_micro "$(jget '.levels[] | select(.level == "institution") | .used')")"
done
URL=$URL1
req GET "/v1/usage?institution=hard&project=p&limit=1000" "$ADMIN_KEY"
check "two records per admitted request" $((2 * N)) "$(jget '.records | length')"
sql() { psql "$E2E_DB_DEFAULT" -qAtX -c "$1"; }
check "the ledger's charges" $ALLOC "$(sql "SELECT sum(charge_micro) FROM usage_records WHERE institution = 'hard' AND project = 'p'")"
check "budget row: settled = the ledger" "$ALLOC|0|$ALLOC" \
	"$(sql "SELECT settled, reserved, allocation FROM budgets WHERE level = 'hard/p'")"
check "budget rows: pool and institution settled" "$ALLOC|$ALLOC" \
	"$(sql "SELECT (SELECT settled FROM budgets WHERE level = '*'), (SELECT settled FROM budgets WHERE level = 'hard')")"
check "no reservation left" 0 "$(sql "SELECT count(*) FROM reservations")"
check "no budget row past its allocation" 0 "$(sql "SELECT count(*) FROM budgets WHERE settled + reserved > allocation OR reserved <> 0")"

# --- what one node writes, the others apply within 3 s, no SIGHUP (daemon/nodesync.h) ---------
# code_at URL TOKEN: the HTTP status of a completion with TOKEN through URL.
code_at() {
	curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
		--data-binary @"$E2E_DIR/req.json" "$1/v1/completions"
}
# within3 WANT CMD...: runs CMD until it prints WANT, for at most 3 s; prints its last output.
within3() {
	local want=$1 got end=$((SECONDS + 3))
	shift
	while :; do
		got=$("$@")
		{ [ "$got" = "$want" ] || [ "$SECONDS" -ge "$end" ]; } && break
		sleep 0.1
	done
	printf '%s' "$got"
}
check "node 2 accepts the member's token before the revocation (quota spent: 402)" 402 "$(code_at "$URL2" "$TOKEN")"
printf '{"institution":"hard","member":"m@hard"}' >"$E2E_DIR/rv.json"
req POST /v1/tokens/revoke "$ADMIN_KEY" application/json "$E2E_DIR/rv.json"
check "member revoked through node 1" 200 "$STATUS"
check "node 2 refuses the revoked member's token within 3 s" 401 "$(within3 401 code_at "$URL2" "$TOKEN")"
check "node 3 refuses the revoked member's token within 3 s" 401 "$(within3 401 code_at "$URL3" "$TOKEN")"

printf '{"institution":"hard","project":"q","member":"n@hard"}' >"$E2E_DIR/n.json"
mint_n() {
	curl -s -o "$E2E_DIR/n.out" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_KEY" \
		-H 'Content-Type: application/json' --data-binary @"$E2E_DIR/n.json" "$1/v1/tokens"
}
before=$(mint_n "$URL2")
[ "$before" != 201 ] && ok || bad "node 2 minted for n@hard before the charter naming it"
sed -e 's/^version: 1$/version: 2/' "$E2E_DIR/charter.yaml" >"$E2E_DIR/charter2.yaml"
cat >>"$E2E_DIR/charter2.yaml" <<YAML
      - id: q
        allocation: {credits: 0.01, period: month}
        members: [n@hard]
YAML
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/charter2.yaml"
check "charter version 2 (new member n@hard) applied through node 1" 200 "$STATUS"
check "node 2 mints for the new member within 3 s, no SIGHUP" 201 "$(within3 201 mint_n "$URL2")"
TOKEN_N=$(jq -r .token "$E2E_DIR/n.out")
JTI_N=$(jq -r .jti "$E2E_DIR/n.out")
check "node 3 serves the new member within 3 s" 200 "$(within3 200 code_at "$URL3" "$TOKEN_N")"
printf '{"jti":"%s"}' "$JTI_N" >"$E2E_DIR/rvj.json"
URL=$URL2
req POST /v1/tokens/revoke "$ADMIN_KEY" application/json "$E2E_DIR/rvj.json"
URL=$URL1
check "token (jti) revoked through node 2" 200 "$STATUS"
check "node 3 refuses the revoked jti within 3 s" 401 "$(within3 401 code_at "$URL3" "$TOKEN_N")"
check "node 1 refuses the revoked jti within 3 s" 401 "$(within3 401 code_at "$URL1" "$TOKEN_N")"

stop_others
e2e_done
