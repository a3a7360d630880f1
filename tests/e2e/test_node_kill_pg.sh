#!/bin/bash
# A node killed (kill -9) while it holds budget mid-traffic, on PostgreSQL
# (SPEC section 9; docs/POSTGRES.md, "Failures"): two nodes on one
# database; node B answers two requests (acknowledged), then holds four
# slow ones in flight, which fill the project's room, so node A refuses
# (B's reservations count on A); B is killed with kill -9; A's next
# refusal releases what B held at once (B's registration ended with its
# process) and A admits exactly what fits; nothing ever passes the
# allocation, the acknowledged settlements are in the ledger exactly once
# and B's unanswered requests are not.
#
# The arithmetic: a completion of "hi" bounds its prompt at 8 + 2 = 10
# tokens; max_tokens 3 at 0.001 in and 0.002 out holds 10 x 1000 + 3 x 2000
# = 16000 micro-credits; the fake upstream answers 7 in and 3 out: 13000.
#
# PostgreSQL only: it runs in the PostgreSQL pass (ALLOT_TEST_DB=pg, `make
# e2e-pg`) and skips in the SQLite pass (by hand: bash scripts/with-pg.sh
# env ALLOT_TEST_DB=pg bash $0).
if [ "${ALLOT_TEST_DB:-sqlite}" != pg ] || [ -z "${ALLOT_TEST_PG_URI:-}" ]; then
	echo "test_node_kill_pg: SKIPPED: needs PostgreSQL; it runs in the PostgreSQL pass (make e2e-pg)"
	exit 0
fi
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "$E2E_NAME: SKIPPED: python3 missing (the fake upstream)"; exit 0; }

WORST=16000
CHARGE=13000
ALLOC=$((6 * WORST))
e2e_upstream_start 8
PIDB=
trap 'kill $UPID $PIDB 2>/dev/null; e2e_stop; e2e_pg_drop' EXIT
e2e_remote_charter node-kill-test $ALLOC fast:up-ok slow:up-slow
e2e_two_nodes || exit 1
sql() { e2e_sql "$1"; }
call() { e2e_remote_call "$@"; }

# --- B answers two, then holds four in flight ---------------------------------------------
for i in 1 2; do check "B answers request $i" 200 "$(call "$URLB" fast "$E2E_DIR/b$i.json")"; done
SLOW=()
for i in 1 2 3 4; do
	call "$URLB" slow "$E2E_DIR/s$i.json" >"$E2E_DIR/s$i.code" &
	SLOW+=($!)
done
for _ in $(seq 1 100); do [ "$(sql "SELECT count(*) FROM reservations")" = 4 ] && break; sleep 0.1; done
check "B holds four reservations" "4|$((4 * WORST))|$((2 * CHARGE))" \
	"$(sql "SELECT (SELECT count(*) FROM reservations), reserved, settled FROM budgets WHERE level = 'uni/p'")"
check "A refuses: B's reservations hold the room" 402 "$(call "$URLA" fast "$E2E_DIR/a0.json")"
grep -q 'quota exhausted at the project level (uni/p)' "$E2E_DIR/a0.json" && ok ||
	bad "the refusal names the project: $(cat "$E2E_DIR/a0.json")"

# --- kill -9 of B mid-traffic ------------------------------------------------------------
kill -9 "$PIDB"
wait "$PIDB" 2>/dev/null
PIDB=
wait "${SLOW[@]}" 2>/dev/null
for i in 1 2 3 4; do
	check "B's request $i in flight got no answer" 000 "$(cat "$E2E_DIR/s$i.code")"
done

# --- A gets B's room back at once and admits exactly what fits ------------------------------
room=$((ALLOC - 2 * CHARGE)) fits=0
while [ $room -ge $WORST ]; do room=$((room - CHARGE)); fits=$((fits + 1)); done
admitted=0 codes=
for i in $(seq 1 $((fits + 2))); do
	c=$(call "$URLA" fast "$E2E_DIR/a$i.json")
	codes="$codes $c"
	[ "$c" = 200 ] && admitted=$((admitted + 1))
done
check "A admits what fits once B's room came back ($codes)" $fits "$admitted"
check "then refuses" 402 "${codes##* }"
check "no reservation left" 0 "$(sql "SELECT count(*) FROM reservations")"

# --- no overshoot; acknowledged settlements exactly once ------------------------------------
n=$((2 + fits))
check "the project's row: settled = the acknowledged charges, nothing held" "$((n * CHARGE))|0|0" \
	"$(sql "SELECT settled, reserved, leased FROM budgets WHERE level = 'uni/p'")"
check "never past the allocation" 1 "$(sql "SELECT count(*) FROM budgets WHERE level = 'uni/p' AND settled <= allocation")"
check "the ledger: two records per acknowledged request, each once" "$((2 * n))|$((2 * n))|$((n * CHARGE))" \
	"$(sql "SELECT count(*), count(DISTINCT record_id), sum(charge_micro) FROM usage_records WHERE institution = 'uni' AND project = 'p'")"
told=$(cat "$E2E_DIR"/b[12].json "$E2E_DIR"/a[0-9]*.json | jq -s 'map(select(.usage) | .usage.prompt_tokens * 1000 + .usage.completion_tokens * 2000) | add')
check "the clients' acknowledged usage = the ledger" $((n * CHARGE)) "$told"
URL=$URLA
req GET /v1/quotas/uni/p "$ADMIN_KEY"
check "A's quota: used" $((n * CHARGE)) "$(e2e_micro "$(jget '.levels[] | select(.level == "project") | .used')")"
check "no budget row past its allocation" 0 \
	"$(sql "SELECT count(*) FROM budgets WHERE settled + reserved + leased > allocation OR reserved <> 0 OR leased <> 0")"
e2e_done
