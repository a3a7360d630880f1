#!/bin/bash
# PostgreSQL stopped for about 10 s and started again under traffic (SPEC
# section 9, "fails closed"; docs/POSTGRES.md, "Failures"): two nodes on
# one database answer; node A holds no leases (ALLOT_LEASE_BUSY=0), node B
# is busy (ALLOT_LEASE_BUSY=3) and holds leases when the server stops.
# While it is down every request to A is refused with 503 and none is
# admitted (tier A admits only through the database); B admits from its
# leases exactly what they hold (their settlements wait in its retry
# queue), then refuses with 503 and admits nothing more.  The server starts
# again and both nodes admit again without a restart, each registered
# again on the database (its owner session, store/pg_owner.c); B's queued
# settlements are booked, each exactly once, and `used` is the sum of
# every admitted request's charge.  B stops (returning its leases) and
# starts again without leases; afterwards exactly what fits is admitted,
# nothing passes the allocation, and the database passes allotd --fsck.
#
# It stops the server, so it runs on a throwaway cluster of its own (as
# scripts/with-pg.sh makes one), never on the shared ALLOT_TEST_PG_URI.
# The arithmetic is test_node_kill_pg's: 16000 held, 13000 charged.
# PostgreSQL only: it skips in the SQLite pass (by hand: bash
# scripts/with-pg.sh env ALLOT_TEST_DB=pg bash $0).
if [ "${ALLOT_TEST_DB:-sqlite}" != pg ] || [ -z "${ALLOT_TEST_PG_URI:-}" ]; then
	echo "test_pg_restart: SKIPPED: needs PostgreSQL; it runs in the PostgreSQL pass (make e2e-pg)"
	exit 0
fi
command -v python3 >/dev/null || { echo "test_pg_restart: SKIPPED: python3 missing (the fake upstream)"; exit 0; }
. "$(dirname "$0")/pgown.sh"
pgown_init || { echo "test_pg_restart: SKIPPED: $PGOWN_WHY"; exit 0; }

# --- a cluster of its own ------------------------------------------------------------------
pg_up() { pgown_start db "-c fsync=off"; }
pg_down() { pgown_stop db; }
pgown_initdb db || pgown_failed initdb
pg_up || pgown_failed "the server"
ALLOT_TEST_PG_URI=$(pgown_uri db)
export ALLOT_TEST_PG_URI

. "$(dirname "$0")/lib.sh"
WORST=16000
CHARGE=13000
ALLOC=$((16 * WORST))
e2e_upstream_start
PIDB=
trap 'kill $UPID $PIDB 2>/dev/null; e2e_stop; e2e_pg_drop; pgown_gone' EXIT
e2e_remote_charter pg-restart-test $ALLOC fast:up-ok
# B's leases outlast the outage (20 s); they are returned when B stops
E2E_NODE_A_ENV="ALLOT_LEASE_BUSY=0"
E2E_NODE_B_ENV="ALLOT_LEASE_BUSY=3 ALLOT_LEASE_TTL_MS=20000"
e2e_two_nodes || exit 1
sql() { e2e_sql "$1"; }
nodes() { sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '% (allotd)'"; }
call() { E2E_CALL_MAX_S=10 e2e_remote_call "$@"; }

check "A answers" 200 "$(call "$URLA" fast "$E2E_DIR/r1.json")"
check "B answers" 200 "$(call "$URLB" fast "$E2E_DIR/r2.json")"
check "both nodes registered" 2 "$(nodes)"

# --- B gets busy and takes leases -------------------------------------------------------------
warm=0
for i in 1 2 3 4 5 6; do [ "$(call "$URLB" fast "$E2E_DIR/w$i.json")" = 200 ] && warm=$((warm + 1)); done
check "B answers its busy traffic" 6 "$warm"
for _ in $(seq 1 50); do [ "$(sql "SELECT count(*) FROM leases WHERE level = 'uni/p'")" = 1 ] && break; sleep 0.1; done
# what B's project lease holds (nothing is in flight: its settlements are booked)
room=$(sql "SELECT size - spent FROM leases WHERE level = 'uni/p'")
check "B holds a lease of the project with room for a request" 1 "$([ "${room:-0}" -ge $WORST ] && echo 1 || echo 0)"
lease_fits=0 r=${room:-0}
while [ "$r" -ge $WORST ]; do r=$((r - CHARGE)); lease_fits=$((lease_fits + 1)); done

# --- the server stops for about 10 s under traffic ------------------------------------------
pg_down || bad "the server did not stop"
down_at=$(date +%s)
codes= bcodes=
i=0
while [ $(($(date +%s) - down_at)) -lt 10 ]; do
	i=$((i + 1))
	codes="$codes $(call "$URLA" fast "$E2E_DIR/d$i.json")"
	bcodes="$bcodes $(call "$URLB" fast "$E2E_DIR/e$i.json")"
	sleep 0.3
done
n503=$(printf '%s\n' $codes | grep -c '^503$')
check "while the server is down every request to A is refused with 503 (fails closed)" "$i" "$n503"
check "none admitted by A while the server is down" 0 "$(printf '%s\n' $codes | grep -c '^200$')"
jq -e '.error.message | length > 0' "$E2E_DIR/d1.json" >/dev/null && ok ||
	bad "the 503 says why: $(cat "$E2E_DIR/d1.json")"
# B: its lease's worth admitted, then 503 only (the lease is spent, no top-up)
bseq=$(printf '%s\n' $bcodes | uniq | tr '\n' ' ')
check "B admits from its leases, then refuses with 503 ($bcodes)" "200 503 " "$bseq"
outage=$(printf '%s\n' $bcodes | grep -c '^200$')
check "B admitted exactly what its lease held, never more" "$lease_fits" "$outage"
pg_up || bad "the server did not start again"

# --- both nodes admit again, without a restart -----------------------------------------------
back=0
for _ in $(seq 1 60); do
	a=$(call "$URLA" fast "$E2E_DIR/u.json")
	[ "$a" = 200 ] && { back=$((back + 1)); break; }
	sleep 0.25
done
for _ in $(seq 1 60); do
	b=$(call "$URLB" fast "$E2E_DIR/v.json")
	[ "$b" = 200 ] && { back=$((back + 1)); break; }
	sleep 0.25
done
check "both nodes admit again after the server is back" 2 "$back"
for _ in $(seq 1 40); do [ "$(nodes)" = 2 ] && break; sleep 0.25; done
check "both nodes registered again" 2 "$(nodes)"
kill -0 "$PIDA" && kill -0 "$PIDB" && ok || bad "a node exited"

# --- B's settlements of the outage are booked, each once ----------------------------------------
for _ in $(seq 1 100); do [ "$(curl -s "$URLB/readyz" | jq -r .settlements_queued)" = 0 ] && break; sleep 0.1; done
check "B's retry queue is empty" 0 "$(curl -s "$URLB/readyz" | jq -r .settlements_queued)"
n=$((4 + warm + outage))
check "the ledger: each acknowledged request once, the outage's included" "$((2 * n))|$((2 * n))|$((n * CHARGE))" \
	"$(sql "SELECT count(*), count(DISTINCT record_id), sum(charge_micro) FROM usage_records WHERE institution = 'uni' AND project = 'p'")"
told=$(cat "$E2E_DIR"/r[12].json "$E2E_DIR"/w*.json "$E2E_DIR"/e*.json "$E2E_DIR"/[uv].json |
	jq -s 'map(select(.usage) | .usage.prompt_tokens * 1000 + .usage.completion_tokens * 2000) | add')
check "the clients' admitted usage = the ledger" $((n * CHARGE)) "$told"
URL=$URLA
req GET /v1/quotas/uni/p "$ADMIN_KEY"
check "used = the sum of the admitted requests' charges" "$((n * CHARGE))" \
	"$(e2e_micro "$(jget '.levels[] | select(.level == "project") | .used')")"
# B stops (its leases are returned) and starts again without leases
kill "$PIDB"
wait "$PIDB" 2>/dev/null
check "B's leases returned when it stopped" 0 "$(sql "SELECT count(*) FROM leases")"
ALLOT_LEASE_BUSY=0 e2e_start || exit 1
PIDB=$E2E_PID URLB=$URL
E2E_PID=$PIDA URL=$URLA

# --- exactly what fits, then refused; nothing past the allocation -----------------------------
room=$((ALLOC - n * CHARGE)) fits=0
while [ $room -ge $WORST ]; do room=$((room - CHARGE)); fits=$((fits + 1)); done
admitted=0 last=
for j in $(seq 1 $((fits + 2))); do
	if [ $((j % 2)) = 0 ]; then u=$URLA; else u=$URLB; fi
	last=$(call "$u" fast "$E2E_DIR/f$j.json")
	[ "$last" = 200 ] && admitted=$((admitted + 1))
done
check "exactly what fits admitted after the restart" $fits "$admitted"
check "then refused" 402 "$last"
n=$((n + fits))
check "settled = the acknowledged charges, nothing held" "$((n * CHARGE))|0|0" \
	"$(sql "SELECT settled, reserved, leased FROM budgets WHERE level = 'uni/p'")"
check "the ledger: each acknowledged request once" "$((2 * n))|$((n * CHARGE))" \
	"$(sql "SELECT count(DISTINCT record_id), sum(charge_micro) FROM usage_records WHERE institution = 'uni' AND project = 'p'")"
check "no budget row past its allocation" 0 \
	"$(sql "SELECT count(*) FROM budgets WHERE settled + reserved + leased > allocation")"
kill "$PIDB" 2>/dev/null
wait "$PIDB" 2>/dev/null
PIDB=
e2e_done
