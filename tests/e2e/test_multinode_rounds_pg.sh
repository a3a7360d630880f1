#!/bin/bash
# Rounds of racing clients on three allotd nodes sharing one PostgreSQL
# database (SPEC section 9; docs/POSTGRES.md, "Budgets in the database";
# docs/DEPLOY.md).  Two projects: hard/p (overage hard) and soft/q (overage
# soft, grace 10 %).  ROUNDS times (ALLOT_MULTINODE_ROUNDS, default 5;
# `make soak` 20) both allocations are topped up by a charter version
# applied through one node (round R: 10 R worst cases each), then 64
# clients race, 32 for each project, spread over the three nodes.  Every
# round admits exactly what fits: 10 on hard/p, 11 (the allocation and its
# grace) on soft/q; the rest get 402, nothing else.  At the end, on every
# node, `used` is the sum of the usage the clients were told, nothing is
# reserved, and the budget rows agree with the ledger; an export of the log
# taken after traffic through all three nodes verifies (`allot log verify`).
#
# The arithmetic (as test_multinode_pg): "Once upon a time" is 5 prompt
# tokens, max_tokens 2 and greedy decoding generate 2, so the worst case and
# the charge are 5 x 100 + 2 x 300 = 1100 micro-credits.
#
# The other nodes load a version applied through one node on SIGHUP
# (`systemctl reload`; docs/DEPLOY.md, "Charters on several nodes"): each
# round reloads them and waits until every node serves the new version.
# Before that (checked in round 2) a node with the older version refuses:
# its admissions are judged against the budget rows, whose allocation is the
# newest version's once a node holding it has admitted, never past them.
#
# It needs PostgreSQL: it runs in the PostgreSQL pass of the e2e suite
# (ALLOT_TEST_DB=pg, `make e2e-pg`) and skips, saying so, in the SQLite pass
# (by hand: bash scripts/with-pg.sh env ALLOT_TEST_DB=pg bash $0).
if [ "${ALLOT_TEST_DB:-sqlite}" != pg ] || [ -z "${ALLOT_TEST_PG_URI:-}" ]; then
	echo "test_multinode_rounds_pg: SKIPPED: needs PostgreSQL; it runs in the PostgreSQL pass (make e2e-pg)"
	exit 0
fi
. "$(dirname "$0")/lib.sh"

skip() { echo "$E2E_NAME: SKIPPED: $*"; exit 0; }
[ -f "$E2E_ROOT/models/stories260K.gguf" ] ||
	skip "models/stories260K.gguf is absent (make test copies it from ../shared/models)"
ROUNDS=${ALLOT_MULTINODE_ROUNDS:-5}
case $ROUNDS in '' | *[!0-9]* | 0) echo "ALLOT_MULTINODE_ROUNDS must be a positive integer" >&2; exit 2 ;; esac

WORST=1100
HARD_FITS=10                 # worst cases added to each allocation per round
SOFT_FITS=11                 # ... and with soft's 10 % grace
CLIENTS=32                   # per project and round
credits() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }
# charter VERSION: both projects at VERSION x 10 worst cases
charter() {
	local a
	a=$(credits $(($1 * HARD_FITS * WORST)))
	cat <<YAML
charter: multinode-rounds
version: $1
effective: 2026-01-01T00:00:00Z
timezone: UTC
pool: 1000
rates:
  - {resource: tokens_in,  model: stories, credits: 0.0001}
  - {resource: tokens_out, model: stories, credits: 0.0003}
providers:
  - {id: local, builtin: true}
models:
  - {id: stories, provider: local, file: stories260K.gguf}
institutions:
  - id: hard
    allocation: {credits: 100, period: month}
    overage: {mode: hard}
    limits: {concurrent_requests: 64}
    projects:
      - id: p
        allocation: {credits: $a, period: month}
        members: [m@hard]
  - id: soft
    allocation: {credits: 100, period: month}
    overage: {mode: soft, grace_percent: 10}
    limits: {concurrent_requests: 64}
    projects:
      - id: q
        allocation: {credits: $a, period: month}
        members: [n@soft]
YAML
}
charter 1 >"$E2E_DIR/charter.yaml"

# --- three nodes on one database ------------------------------------------------------------
# Their background poll (ALLOT_SYNC_MS, default 1 s) would also load a new
# version, at any moment: round 2's probe of "a node with the older
# version" must find it older, so the poll waits an hour and each round's
# SIGHUP is what loads it (the reload follows the database first).
export ALLOT_SYNC_MS=3600000
e2e_start --charter "$E2E_DIR/charter.yaml" --threads 1 || exit 1
PID1=$E2E_PID URL1=$URL
e2e_start --threads 1 || exit 1
PID2=$E2E_PID URL2=$URL
e2e_start --threads 1 || exit 1
PID3=$E2E_PID URL3=$URL
E2E_PID=$PID1
URLS=("$URL1" "$URL2" "$URL3")
PIDS=("$PID1" "$PID2" "$PID3")
stop_others() { kill "$PID2" "$PID3" 2>/dev/null; wait "$PID2" "$PID3" 2>/dev/null; }
trap 'stop_others; e2e_stop; e2e_pg_drop' EXIT
URL=$URL1
mint() { # INSTITUTION PROJECT MEMBER: sets TOKEN
	printf '{"institution":"%s","project":"%s","member":"%s"}' "$@" >"$E2E_DIR/m.json"
	req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/m.json"
	check "token for $3" 201 "$STATUS"
	TOKEN=$(jget .token)
}
mint hard p m@hard; HTOKEN=$TOKEN
mint soft q n@soft; STOKEN=$TOKEN
for u in "${URLS[@]}"; do
	for _ in $(seq 1 100); do
		curl -s "$u/readyz" | grep -q 'stories: ready' && break
		sleep 0.2
	done
done
printf '{"model":"stories","prompt":"Once upon a time","max_tokens":2,"temperature":0}' >"$E2E_DIR/req.json"
mkdir -p "$E2E_DIR/out"

# one TOKEN NODE-INDEX NAME: one completion; prints its status
one() {
	curl -s -o "$E2E_DIR/out/$3.json" -w '%{http_code}' -H "Authorization: Bearer $1" \
		-H 'Content-Type: application/json' --data-binary @"$E2E_DIR/req.json" \
		"${URLS[$2]}/v1/completions"
}
# burst TOKEN PREFIX: CLIENTS completions at once, round robin over the
# nodes; one line per answer: status, url, X-Allot-Remaining
burst() {
	local i
	for i in $(seq 1 $CLIENTS); do
		printf 'url = "%s/v1/completions"\noutput = "%s/out/%s-%d.json"\n' "${URLS[$((i % 3))]}" "$E2E_DIR" "$2" "$i"
	done >"$E2E_DIR/$2.cfg"
	timeout 50 curl -s --no-progress-meter -Z --parallel-max $CLIENTS --parallel-immediate \
		-w '%{http_code} %{url_effective} %header{x-allot-remaining}\n' \
		-H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
		--data-binary @"$E2E_DIR/req.json" -K "$E2E_DIR/$2.cfg" >"$E2E_DIR/$2.codes" 2>/dev/null
}

# --- the rounds -----------------------------------------------------------------------------
T0=$(date +%s)
: >"$E2E_DIR/all.codes"
for r in $(seq 1 "$ROUNDS"); do
	if [ "$r" -gt 1 ]; then
		n=$((r % 3))             # the node that applies this round's charter
		charter "$r" >"$E2E_DIR/v$r.yaml"
		URL=${URLS[$n]}
		req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/v$r.yaml"
		check "round $r: version $r applied through node $((n + 1))" "200 $r" "$STATUS $(jget .version)"
		[ "$r" = 2 ] &&
			check "round $r: a node with the older version refuses" 402 "$(one "$HTOKEN" $(((n + 1) % 3)) "probe-$r")"
		for i in 0 1 2; do [ "$i" = "$n" ] || kill -HUP "${PIDS[$i]}"; done
		for i in 0 1 2; do
			v=
			for _ in $(seq 1 50); do
				v=$(curl -s -H "Authorization: Bearer $ADMIN_KEY" "${URLS[$i]}/v1/charter" | jq -r .version)
				[ "$v" = "$r" ] && break
				sleep 0.1
			done
			check "round $r: node $((i + 1)) serves version $r" "$r" "$v"
		done
	fi
	burst "$HTOKEN" "h$r" &
	hb=$!
	burst "$STOKEN" "s$r"
	wait "$hb"
	cat "$E2E_DIR/h$r.codes" "$E2E_DIR/s$r.codes" >>"$E2E_DIR/all.codes"
	check "round $r: hard/p admits exactly what fits" $HARD_FITS "$(grep -c '^200 ' "$E2E_DIR/h$r.codes")"
	check "round $r: soft/q admits exactly up to the grace" $SOFT_FITS "$(grep -c '^200 ' "$E2E_DIR/s$r.codes")"
	check "round $r: every other answer is 402" $((2 * CLIENTS)) "$(grep -cE '^(200|402) ' "$E2E_DIR/h$r.codes" "$E2E_DIR/s$r.codes" | awk -F: '{s += $2} END {print s}')"
done
echo "$E2E_NAME: $ROUNDS rounds of $((2 * CLIENTS)) clients in $(($(date +%s) - T0)) s"
for i in 0 1 2; do # client c goes to node c % 3
	check "${URLS[$i]} answered each of its clients" $((ROUNDS * 2 * ((CLIENTS + 2 - (i + 2) % 3) / 3))) \
		"$(grep -c " ${URLS[$i]}/" "$E2E_DIR/all.codes")"
done
check "every admitted hard/p answer tells a remainder, never below zero" "$((ROUNDS * HARD_FITS)) 0" \
	"$(cat "$E2E_DIR"/h*.codes | awk '$1 == 200 && $3 != "" {n++} $3 ~ /^-/ {neg++} END {print n + 0, neg + 0}')"

# --- what the clients were told, every node, the ledger and the budget rows ------------------
told() { # PREFIX-GLOB: the charges in the usage the admitted clients saw
	cat "$E2E_DIR"/out/$1 2>/dev/null |
		jq -s 'map(select(.usage) | .usage.prompt_tokens * 100 + .usage.completion_tokens * 300) | add // 0'
}
HTOLD=$(told 'h[0-9]*.json')
STOLD=$(told 's[0-9]*.json')
check "the hard clients were told the worst case of each admission" $((ROUNDS * HARD_FITS * WORST)) "$HTOLD"
check "the soft clients likewise, up to the grace" $((ROUNDS * SOFT_FITS * WORST)) "$STOLD"
micro() {
	local v=$1 int frac=
	int=${v%%.*}; [ "$int" != "$v" ] && frac=${v#*.}
	frac=$(printf '%-6s' "$frac" | tr ' ' 0)
	echo $(( 10#$int * 1000000 + 10#$frac ))
}
for u in "${URLS[@]}"; do
	URL=$u
	for lv in hard/p:$HTOLD soft/q:$STOLD; do
		req GET "/v1/quotas/${lv%%:*}" "$ADMIN_KEY"
		check "$u ${lv%%:*}: used = what the clients were told" "${lv#*:}" \
			"$(micro "$(jget '.levels[] | select(.level == "project") | .used')")"
		check "$u ${lv%%:*}: nothing reserved" 0 "$(micro "$(jget '.levels[] | select(.level == "project") | .reserved')")"
	done
done
sql() { e2e_sql_ro "$1"; }
check "the ledger's charges" "$HTOLD|$STOLD" \
	"$(sql "SELECT (SELECT sum(charge_micro) FROM usage_records WHERE project = 'p'), (SELECT sum(charge_micro) FROM usage_records WHERE project = 'q')")"
check "budget row hard/p: settled, reserved, allocation" "$HTOLD|0|$((ROUNDS * HARD_FITS * WORST))" \
	"$(sql "SELECT settled, reserved, allocation FROM budgets WHERE level = 'hard/p'")"
check "budget row soft/q: settled, reserved, allocation with the grace" "$STOLD|0|$((ROUNDS * SOFT_FITS * WORST))" \
	"$(sql "SELECT settled, reserved, allocation FROM budgets WHERE level = 'soft/q'")"
check "no reservation left" 0 "$(sql "SELECT count(*) FROM reservations")"
check "no budget row past its allocation" 0 "$(sql "SELECT count(*) FROM budgets WHERE settled + reserved > allocation OR reserved <> 0")"

# --- the log after traffic through all three nodes --------------------------------------------
# record ids gate:<jti>:<boot>.<n>-in|out (docs/GATE.md): one boot per node
check "settlements booked by each node" 3 \
	"$(sql "SELECT count(DISTINCT substring(record_id from ':([-0-9A-Za-z_]+)\\.[-0-9A-Za-z_]+-(in|out)\$')) FROM usage_records WHERE provider = 'local'")"
export ALLOT_KEY=$ADMIN_KEY
"$BIN/allot" --server "$URL2" log export --out "$E2E_DIR/x.json"
check "log export through node 2" 0 $?
LOGPUB=$(curl -s "$URL3/v1/log/key" | jq -r .key)
out=$("$BIN/allot" log verify "$E2E_DIR/x.json" --key "$LOGPUB" 2>&1)
check "the export verifies ($out)" 0 $?
check "the export is the complete log" 1 "$(printf '%s' "$out" | grep -c 'the complete log')"
check "every settlement is a leaf of the export" \
	"$(sql "SELECT count(*) FROM usage_records WHERE provider = 'local'")" \
	"$(jq '[.entries[] | select(.type == "usage")] | length' "$E2E_DIR/x.json")"
check "every charter version is a leaf of the export" "$ROUNDS" \
	"$(jq '[.entries[] | select(.type == "charter")] | length' "$E2E_DIR/x.json")"

stop_others
e2e_done
