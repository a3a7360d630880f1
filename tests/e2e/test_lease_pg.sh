#!/bin/bash
# Leases of busy levels, and kill -9 of a node holding them mid-traffic
# (SPEC section 9; docs/POSTGRES.md, "Leases and epochs"): node B, busy
# (ALLOT_LEASE_BUSY=3 admissions a second), takes leases and admits from
# them without a database round trip (its /metrics count them); four slow
# requests are in flight when B is killed with kill -9.  Node A (leases
# off) admits through the database only: at first what fits beside B's
# leases, never more; once B's leases pass their expiry + grace (short
# here: ALLOT_LEASE_TTL_MS=3000, ALLOT_LEASE_GRACE_MS=1500) A's refusal
# returns them and A admits the rest, exactly what fits.  B's acknowledged
# requests are in the ledger once each, its unanswered ones never, and no
# row ever passes its allocation.
#
# The arithmetic is test_node_kill_pg's: 16000 held, 13000 charged.
# PostgreSQL only: it skips in the SQLite pass (by hand: bash
# scripts/with-pg.sh env ALLOT_TEST_DB=pg bash $0).
if [ "${ALLOT_TEST_DB:-sqlite}" != pg ] || [ -z "${ALLOT_TEST_PG_URI:-}" ]; then
	echo "test_lease_pg: SKIPPED: needs PostgreSQL; it runs in the PostgreSQL pass (make e2e-pg)"
	exit 0
fi
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "$E2E_NAME: SKIPPED: python3 missing (the fake upstream)"; exit 0; }

WORST=16000
CHARGE=13000
ALLOC=$((40 * WORST))
e2e_upstream_start 6
PIDB=
trap 'kill $UPID $PIDB 2>/dev/null; e2e_stop; e2e_pg_drop' EXIT
e2e_remote_charter lease-test $ALLOC fast:up-ok slow:up-slow
E2E_NODE_A_ENV="ALLOT_LEASE_BUSY=0 ALLOT_LEASE_GRACE_MS=1500"
E2E_NODE_B_ENV="ALLOT_LEASE_BUSY=3 ALLOT_LEASE_TTL_MS=3000 ALLOT_LEASE_GRACE_MS=1500"
e2e_two_nodes || exit 1
sql() { e2e_sql "$1"; }
call() { e2e_remote_call "$@"; }
metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }

# --- B gets busy: leases, then admissions with no round trip -----------------------------
# (sampled while B is busy: an idle lease goes back after half its TTL, and
# on a loaded machine a check after the loop can come later than that)
acked=0 held_rows=0 held_metric=0 held_budget=0 over=0
for i in $(seq 1 24); do
	c=$(call "$URLB" fast "$E2E_DIR/b$i.json")
	[ "$c" = 200 ] && acked=$((acked + 1))
	[ "$i" -ge 4 ] || continue
	[ "$(metric "$URLB" allot_gate_leases_held)" -gt 0 ] 2>/dev/null && held_metric=1
	IFS='|' read -r rows leased fits <<<"$(sql "SELECT (SELECT count(*) > 0 FROM leases)::int, (leased > 0)::int,
		(settled + reserved + leased <= allocation)::int FROM budgets WHERE level = 'uni/p'")"
	[ "$rows" = 1 ] && held_rows=1
	[ "$leased" = 1 ] && held_budget=1
	[ "$fits" = 1 ] || over=$((over + 1))
done
check "B answers its busy traffic" 24 "$acked"
check "B holds leases" 1 "$held_rows"
fromlease=$(metric "$URLB" 'allot_gate_admission_paths_total{path="lease"}')
[ "${fromlease:-0}" -gt 0 ] && ok || bad "B admitted from its leases (metric: ${fromlease:-none})"
check "B's leases show in /metrics" 1 "$held_metric"
check "the project's row holds B's leases" 1 "$held_budget"
check "within the allocation at every sample" 0 "$over"

# --- four in flight, then kill -9 -------------------------------------------------------------
SLOW=()
for i in 1 2 3 4; do
	call "$URLB" slow "$E2E_DIR/s$i.json" >"$E2E_DIR/s$i.code" &
	SLOW+=($!)
done
sleep 0.5
kill -9 "$PIDB"
wait "$PIDB" 2>/dev/null
PIDB=
wait "${SLOW[@]}" 2>/dev/null
check "B's requests in flight got no answer" "000000000000" "$(cat "$E2E_DIR"/s[1-4].code | tr -d '\n')"
check "B's leases are still held (not expired + grace yet)" 1 "$(sql "SELECT (count(*) > 0)::int FROM leases")"

# --- A admits what fits, never past the leases; then B's room comes back -----------------------
admitted=0 refused=0 over=0
for i in $(seq 1 60); do
	c=$(call "$URLA" fast "$E2E_DIR/a$i.json")
	case $c in
	200) admitted=$((admitted + 1)) ;;
	402) refused=$((refused + 1)) ;;
	esac
	o=$(sql "SELECT count(*) FROM budgets WHERE settled + reserved + leased > allocation")
	[ "$o" = 0 ] || over=$((over + 1))
	[ "$refused" -ge 1 ] && [ "$(sql "SELECT count(*) FROM leases")" = 0 ] &&
		[ "$c" = 402 ] && break
	[ "$c" = 402 ] && sleep 0.5
done
check "no row past its allocation at any moment" 0 "$over"
check "B's leases returned after their expiry + grace" 0 "$(sql "SELECT count(*) FROM leases")"
n=$((acked + admitted))
settled=$(sql "SELECT settled FROM budgets WHERE level = 'uni/p'")
check "settled = the acknowledged charges" $((n * CHARGE)) "$settled"
check "then exactly what fits: less than one worst case left" 1 \
	"$([ $((ALLOC - settled)) -ge 0 ] && [ $((ALLOC - settled)) -lt $WORST ] && echo 1 || echo 0)"
check "nothing held" "0|0" "$(sql "SELECT reserved, leased FROM budgets WHERE level = 'uni/p'")"
check "the ledger: each acknowledged request once" "$((2 * n))|$((2 * n))|$((n * CHARGE))" \
	"$(sql "SELECT count(*), count(DISTINCT record_id), sum(charge_micro) FROM usage_records WHERE institution = 'uni' AND project = 'p'")"
e2e_done
