#!/bin/bash
# Ingestion across nodes, and one transparency log whichever node appends
# (SPEC sections 6 and 9; docs/POSTGRES.md, "What stays as on SQLite";
# docs/DEPLOY.md).  Three allotd nodes on one PostgreSQL database:
#
# - ROUNDS times (ALLOT_MULTINODE_INGEST_ROUNDS, default 20; `make soak`
#   100), one signed provider batch goes to one node and another to the next
#   node at the same instant (curl --parallel): in even rounds the same 20
#   records, in odd rounds 20 records of which 10 are the other batch's;
#   each batch also holds one record `c-R` that the other batch holds with
#   other content.  Every answer is 200; every record is `accepted` in
#   exactly one answer and `duplicate` in the other (same charge), `c-R`
#   `accepted` once and `conflict` once; the database holds each record
#   once, the charges the accepted answers named, and both nodes' quotas
#   say so.  One pair more runs with the bookings held back by a session
#   that holds the row every booking locks first, until both nodes wait for
#   it: both look their records up before either books, every time.
#   (Before the fix in ledger/book.c the node that lost that race answered
#   500: its lookup ran before the winner's commit, and the unique index
#   then refused its insert.)  Likewise a record both nodes refuse at once:
#   one refusal is kept and both answer `rejected` (before the fix in
#   store/pg_queue.c the second node's insert of its refusal failed and
#   aborted its batch: 500).
# - the log: `allot log monitor` keeps one state across the three nodes, a
#   `kill -9` and restart of one of them, and traffic through each; a node
#   whose checkpoint another node had just outgrown must not answer an
#   older one (before the fix in ledger/ledgerlog.c a node served its
#   cached checkpoint for 5 s and the monitor reported the log as shrunk);
#   `allot log verify` passes on an export of each node, all three at one
#   size and root.
# - `allotd --fsck` is clean at the end (tests/e2e/lib.sh, e2e_done).
#
# It needs PostgreSQL: it runs in the PostgreSQL pass of the e2e suite
# (ALLOT_TEST_DB=pg, `make e2e-pg`) and skips, saying so, in the SQLite pass
# (by hand: bash scripts/with-pg.sh env ALLOT_TEST_DB=pg bash $0).
if [ "${ALLOT_TEST_DB:-sqlite}" != pg ] || [ -z "${ALLOT_TEST_PG_URI:-}" ]; then
	echo "test_multinode_ingest_pg: SKIPPED: needs PostgreSQL; it runs in the PostgreSQL pass (make e2e-pg)"
	exit 0
fi
. "$(dirname "$0")/lib.sh"

ROUNDS=${ALLOT_MULTINODE_INGEST_ROUNDS:-20}
case $ROUNDS in '' | *[!0-9]* | 0) echo "ALLOT_MULTINODE_INGEST_ROUNDS must be a positive integer" >&2; exit 2 ;; esac

e2e_cscs_charter multinode-ingest
# --- three nodes on one database ------------------------------------------------------------
e2e_start --charter "$E2E_DIR/charter.yaml" --deployment e2e || exit 1
PID1=$E2E_PID PORT1=$PORT
e2e_start --deployment e2e || exit 1
PID2=$E2E_PID PORT2=$PORT
e2e_start --deployment e2e || exit 1
PID3=$E2E_PID PORT3=$PORT
E2E_PID=$PID1
URLS=("http://127.0.0.1:$PORT1" "http://127.0.0.1:$PORT2" "http://127.0.0.1:$PORT3")
stop_others() { kill "$PID2" "$PID3" 2>/dev/null; wait "$PID2" "$PID3" 2>/dev/null; }
trap 'stop_others; e2e_stop; e2e_pg_drop' EXIT
URL=${URLS[0]}
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')
AKEY=$(e2e_api_key '{"role":"auditor"}')
export ALLOT_KEY=$AKEY

# --- the records: per round 30 numbered ones and two versions of c-R -------------------------
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
HOURAGO=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
rec() { # id member quantity
	printf '{"record_id":"%s","provider":"cscs","institution":"epfl","project":"climate","member":"%s","resource":"gpu_seconds","class":"h100","model":null,"quantity":%s,"start":"%s","end":"%s","kind":"usage","supersedes":null}\n' \
		"$1" "$2" "$3" "$HOURAGO" "$NOW"
}
H=$((ROUNDS + 1))          # the held round (below)
M=(alice bob)
for r in $(seq 1 "$H"); do
	for j in $(seq 1 30); do rec "b-$r-$j" "${M[$((j % 2))]}@epfl.ch" "$j"; done
	rec "c-$r" alice@epfl.ch 1
	rec "c-$r" alice@epfl.ch 2
done | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" >"$E2E_DIR/signed.jsonl"
check "records signed" $((H * 32)) "$(wc -l <"$E2E_DIR/signed.jsonl")"
# batch A of round R: b-R-1..20 and c-R (1); batch B: b-R-1..20 (R even) or
# b-R-11..30 (R odd), and c-R (2)
mkdir -p "$E2E_DIR/b"
awk -v dir="$E2E_DIR/b" '
function emit(f, n, arr,   i, s) {
	s = "{\"records\":["
	for (i = 1; i <= n; i++) s = s (i > 1 ? "," : "") arr[i]
	print s "]}" > f
	close(f)
}
{
	r = int((NR - 1) / 32) + 1; j = (NR - 1) % 32 + 1; line[j] = $0
	if (j < 32) next
	na = 0; nb = 0
	for (k = 1; k <= 20; k++) a[++na] = line[k]
	lo = r % 2 ? 11 : 1
	for (k = lo; k < lo + 20; k++) b[++nb] = line[k]
	a[++na] = line[31]; b[++nb] = line[32]
	emit(dir "/a" r ".json", na, a); emit(dir "/b" r ".json", nb, b)
}' "$E2E_DIR/signed.jsonl"

# --- the monitor's first checkpoint, then the races ---------------------------------------
"$BIN/allot" log monitor --server "${URLS[0]}" --state "$E2E_DIR/monitor.json" >/dev/null
check "monitor: first checkpoint" 0 $?

# post_pair R I J: batch A of round R to node I, batch B to node J, at once
post_pair() {
	local r=$1 i=$2 j=$3 f
	for f in a b; do
		local u=${URLS[$i]}
		[ $f = b ] && u=${URLS[$j]}
		printf 'url = "%s/v1/usage"\noutput = "%s/b/%s%s.out"\n' "$u" "$E2E_DIR" "$f" "$r"
		printf 'header = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\n' "$PKEY"
		printf 'data-binary = "@%s/b/%s%s.json"\nwrite-out = "%%{http_code}\\n"\n' "$E2E_DIR" "$f" "$r"
		[ $f = a ] && printf 'next\n'
	done >"$E2E_DIR/b/pair$r.cfg"
	timeout 30 curl -s --no-progress-meter -Z --parallel-immediate -K "$E2E_DIR/b/pair$r.cfg"
}
T0=$(date +%s)
codes=$(for r in $(seq 1 "$ROUNDS"); do post_pair "$r" $((r % 3)) $(((r + 1) % 3)); done | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
check "every answer of $ROUNDS pairs is 200" "200x$((2 * ROUNDS)) " "$codes"
echo "$E2E_NAME: $ROUNDS pairs of batches posted in $(($(date +%s) - T0)) s"

# One pair more with the bookings held back: a session holds the row that
# every booking locks first (ledger_bounds) until both nodes wait for it, so
# both look their records up before either books: the race, every time.
wait_sql() { # WHAT EXPECTED SQL
	local v=
	for _ in $(seq 1 100); do
		v=$(e2e_sql "$3")
		[ "$v" = "$2" ] && break
		sleep 0.1
	done
	check "$1" "$2" "$v"
}
# hold SQL: a session runs SQL in a transaction and keeps it open; release
hold() {
	coproc HOLD { PGAPPNAME=allot-e2e-hold psql "$E2E_DB_DEFAULT" -qAtX >/dev/null 2>&1; }
	HOLD_IN=${HOLD[1]} HOLD_P=$HOLD_PID
	echo "BEGIN; $1" >&"$HOLD_IN"
	wait_sql "a session holds: $1" 1 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'allot-e2e-hold' AND state = 'idle in transaction'"
}
release() {
	echo "COMMIT;" >&"$HOLD_IN"
	eval "exec $HOLD_IN>&-"
	wait "$HOLD_P" 2>/dev/null
}
WAITING="SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
hold "SELECT 1 FROM ledger_bounds WHERE id = 1 FOR UPDATE;"
post_pair "$H" 0 1 >"$E2E_DIR/held.codes" &
PAIR=$!
wait_sql "both nodes wait for the held row" 2 "$WAITING"
release
wait "$PAIR"
check "both held answers are 200" "200 200" "$(sort "$E2E_DIR/held.codes" | tr '\n' ' ' | sed 's/ $//')"

# The same for a record both nodes refuse (an unknown member): the refusals'
# table is held (SHARE: lookups go on, inserts wait) until both wait, so
# both decide before either stores its decision.  Before the fix in
# store/pg_queue.c the second insert failed on the unique index, which
# aborted its batch's transaction (500).
rec u-1 nobody@epfl.ch 5 | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" | jq -s '{records: .}' >"$E2E_DIR/b/au.json"
cp "$E2E_DIR/b/au.json" "$E2E_DIR/b/bu.json"
hold "LOCK TABLE usage_rejections IN SHARE MODE;"
post_pair u 1 2 >"$E2E_DIR/rej.codes" &
PAIR=$!
wait_sql "both nodes wait to store their refusal" 2 "$WAITING"
release
wait "$PAIR"
check "both answers to the refused record are 200" "200 200" "$(sort "$E2E_DIR/rej.codes" | tr '\n' ' ' | sed 's/ $//')"
check "both say rejected, for one reason" "rejected rejected 1" \
	"$(jq -s -r '"\(.[0].results[0].status) \(.[1].results[0].status) \([.[].results[0].reason] | unique | length)"' "$E2E_DIR/b/au.out" "$E2E_DIR/b/bu.out")"
check "one refusal kept" 1 "$(e2e_sql "SELECT count(*) FROM usage_rejections WHERE record_id = 'u-1'")"

# every record: one answer accepted, the other duplicate (the same charge);
# c-R: accepted once, conflict once
for r in $(seq 1 "$H"); do echo "$E2E_DIR/b/a$r.out" "$E2E_DIR/b/b$r.out"; done | xargs \
	jq -c '.results[] | {id: .record_id, status, charge}' >"$E2E_DIR/results.jsonl"
jq -s '
	group_by(.id) |
	map({id: .[0].id, c: (.[0].id | startswith("c-")), s: (map(.status) | sort),
	     charges: (map(select(.status != "conflict") | .charge) | unique)}) |
	{ids: length,
	 bad: map(select(
		(.c and .s != ["accepted", "conflict"]) or
		((.c | not) and (.s != ["accepted"] and .s != ["accepted", "duplicate"])) or
		(.charges | length) != 1)) }' "$E2E_DIR/results.jsonl" >"$E2E_DIR/judged.json"
# even rounds: 20 + c; odd rounds: 30 + c
IDS=$(( (H / 2) * 21 + ((H + 1) / 2) * 31 ))
check "every record answered" "$IDS" "$(jq .ids "$E2E_DIR/judged.json")"
check "each record accepted once, duplicate (same charge) or conflict on the other side" 0 \
	"$(jq '.bad | length' "$E2E_DIR/judged.json")"
jq -c '.bad[:3][]' "$E2E_DIR/judged.json" >&2
echo "$E2E_NAME: c-R won by batch A in $(jq -s '[.[] | select((.id | startswith("c-")) and .status == "accepted" and .charge == "0.031415")] | length' "$E2E_DIR/results.jsonl") of $H rounds"

# --- each record booked once ----------------------------------------------------------------
# decimal credits to micro-credits, in jq (exact: sums far below 2^53)
MICRO='def micro: split(".") as $p | ($p[0] | tonumber) * 1000000 + ((($p[1] // "") + "000000")[0:6] | tonumber);'
told=$(jq -s "$MICRO"' map(select(.status == "accepted") | .charge | micro) | add' "$E2E_DIR/results.jsonl")
check "the database holds each record once" "$IDS|$IDS" \
	"$(e2e_sql "SELECT count(*), count(DISTINCT record_id) FROM usage_records WHERE provider = 'cscs'")"
check "the ledger's charges are what the accepted answers said" "$told" \
	"$(e2e_sql "SELECT sum(charge_micro) FROM usage_records WHERE provider = 'cscs'")"
check "c-R holds the accepted side's content" 0 \
	"$(e2e_sql "SELECT count(*) FROM usage_records WHERE record_id LIKE 'c-%' AND quantity NOT IN (1, 2)")"
for u in "${URLS[@]}"; do
	URL=$u
	req GET /v1/quotas/epfl/climate "$ADMIN_KEY"
	check "$u: project used = the accepted charges" "$told" "$(jget "$MICRO"' .levels[] | select(.level == "project") | .used | micro')"
done

# --- one log: a node must not serve a checkpoint older than another's ------------------------
# (nodes 2 and 3 have signed none so far: the races and the quotas sign nothing)
URL=${URLS[1]}
req GET /v1/log/checkpoint "$AKEY"
check "node 2 signs a checkpoint" 200 "$STATUS"
OLD2=$(printf '%s' "$BODY" | sed -n 2p)
URL=${URLS[0]}
req POST /v1/usage "$PKEY" application/json "$E2E_DIR/b/a1.json"
check "a repeated batch books nothing" "200 0" "$STATUS $(jget .summary.accepted)"
one_more() { # ID I: one new record through node I (0-based)
	rec "$1" alice@epfl.ch 7 | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" | jq -s '{records: .}' >"$E2E_DIR/one.json"
	URL=${URLS[$2]}
	req POST /v1/usage "$PKEY" application/json "$E2E_DIR/one.json"
	check "$1 accepted through node $(($2 + 1))" accepted "$(jget '.results[0].status')"
}
one_more x-1 0
mon() { # NODE-INDEX WHAT
	local out
	out=$("$BIN/allot" log monitor --server "${URLS[$1]}" --state "$E2E_DIR/monitor.json" 2>&1)
	check "monitor through node $(($1 + 1)) $2 ($out)" 0 $?
}
# node 3 signs its first checkpoint now, one leaf past node 2's; node 2,
# asked next, must not answer the one it signed a moment ago
mon 2 "after the races"
check "the monitor saw node 3 one leaf past node 2's checkpoint" $((OLD2 + 1)) \
	"$(jq -r .checkpoint "$E2E_DIR/monitor.json" | sed -n 2p)"
mon 1 "right after node 3 (node 2 had signed size $OLD2)"
mon 0 "after the others"

# --- kill -9 and restart of node 2; traffic through the others meanwhile ---------------------
kill -9 "$PID2"; wait "$PID2" 2>/dev/null
one_more x-2 2
SAVED=$E2E_PID
e2e_start_on "$PORT2" --deployment e2e || exit 1
PID2=$E2E_PID
E2E_PID=$SAVED
one_more x-3 1
mon 1 "across its restart"
one_more x-4 0
mon 2 "after the restart"
mon 0 "again"

# --- exports from every node verify, at one size and root --------------------------------
LOGPUB=$(curl -s "${URLS[0]}/v1/log/key" | jq -r .key)
heads=
for i in 0 1 2; do
	"$BIN/allot" --server "${URLS[$i]}" log export --out "$E2E_DIR/x$i.json"
	check "export through node $((i + 1))" 0 $?
	out=$("$BIN/allot" log verify "$E2E_DIR/x$i.json" --key "$LOGPUB" 2>&1)
	check "node $((i + 1))'s export verifies ($out)" 0 $?
	check "node $((i + 1))'s export is the complete log" 1 "$(printf '%s' "$out" | grep -c 'the complete log')"
	heads="$heads $(jq -r .checkpoint "$E2E_DIR/x$i.json" | sed -n 2,3p | tr '\n' ' ')"
done
check "three nodes, one size and root" 1 "$(printf '%s\n' $heads | paste - - | sort -u | wc -l)"
check "the log holds every record" "$((IDS + 4))" \
	"$(e2e_sql "SELECT count(*) FROM tlog_leaves_all l JOIN usage_records u ON u.leaf_index = l.idx WHERE u.provider = 'cscs'")"

stop_others
e2e_done
