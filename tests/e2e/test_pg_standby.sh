#!/bin/bash
# The synchronous standby promoted (docs/DEPLOY.md, "A synchronous standby"
# and "What each failure does"): a primary and a synchronous standby of
# its own (initdb, pg_basebackup, synchronous_standby_names), two allotd
# nodes on one multi-host URI (`host=PRIMARY,STANDBY` and
# `target_session_attrs=read-write`).  Under traffic (signed provider
# batches and gated requests through both nodes) the primary is killed
# (`pg_ctl stop -m immediate`: no shutdown checkpoint, as a lost machine)
# and the standby promoted; then:
# - while no primary answers, every gated request is refused with 503 and
#   every provider batch fails (never a 200 that the database did not keep);
# - both nodes admit again without a restart, on the promoted standby
#   (printed: seconds from the kill to each node's first 200);
# - every provider record acknowledged before the kill, and every gated
#   request answered 200, is in the promoted database exactly once (the
#   gate's settlements were committed with synchronous_commit = on here,
#   --flush-ms 0, so each answer waited for the standby);
# - `allot log monitor` keeps one state across the promotion (the log goes
#   on from the same head), and the promoted database passes allotd --fsck.
#
# It kills and promotes servers, so it runs on clusters of its own, never on
# the shared ALLOT_TEST_PG_URI.  PostgreSQL only: it skips in the SQLite
# pass (by hand: bash scripts/with-pg.sh env ALLOT_TEST_DB=pg bash $0).
if [ "${ALLOT_TEST_DB:-sqlite}" != pg ] || [ -z "${ALLOT_TEST_PG_URI:-}" ]; then
	echo "test_pg_standby: SKIPPED: needs PostgreSQL; it runs in the PostgreSQL pass (make e2e-pg)"
	exit 0
fi
command -v python3 >/dev/null || { echo "test_pg_standby: SKIPPED: python3 missing (the fake upstream)"; exit 0; }
. "$(dirname "$0")/pgown.sh"
pgown_init || { echo "test_pg_standby: SKIPPED: $PGOWN_WHY"; exit 0; }
[ -x "$PGBIN/pg_basebackup" ] || { pgown_gone; echo "test_pg_standby: SKIPPED: pg_basebackup is not installed"; exit 0; }

# --- a primary and its synchronous standby ---------------------------------------------------
pgown_initdb p || pgown_failed initdb
pgown_start p "-c wal_level=replica -c max_wal_senders=4 -c synchronous_standby_names=standby1" ||
	pgown_failed "the primary"
$PGRUN mkdir -p "$PGOWN/s"
$PGRUN "$PGBIN/pg_basebackup" -d "host=$PGOWN/p user=allot" -D "$PGOWN/s.data" -X stream -R \
	>"$PGOWN/basebackup.log" 2>&1 || pgown_failed pg_basebackup
echo "primary_conninfo = 'host=$PGOWN/p user=allot application_name=standby1'" |
	$PGRUN tee -a "$PGOWN/s.data/postgresql.auto.conf" >/dev/null
pgown_start s "-c hot_standby=on" || pgown_failed "the standby"
psql_p() { psql "$(pgown_uri p)" -qAtX -c "$1"; }
for _ in $(seq 1 100); do
	[ "$(psql_p "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'" 2>/dev/null)" = sync ] && break
	sleep 0.1
done
[ "$(psql_p "SELECT sync_state FROM pg_stat_replication")" = sync ] || pgown_failed "the standby is not synchronous"
ALLOT_TEST_PG_URI="postgresql:///postgres?host=$PGOWN/p,$PGOWN/s&user=allot&target_session_attrs=read-write"
export ALLOT_TEST_PG_URI

. "$(dirname "$0")/lib.sh"
UP=$(e2e_free_port)
python3 "$(dirname "$0")/fake/upstream.py" "$UP" "$E2E_DIR/upstream.log" 2>>"$E2E_DIR/upstream.err" &
UPID=$!
PIDB=
trap 'kill $UPID $PIDB 2>/dev/null; e2e_stop; e2e_pg_drop; pgown_gone' EXIT
e2e_cscs_charter pg-standby-test
# the gate's model beside the provider's records (one more provider, one more project)
PUBR=$("$BIN/allot" keygen --out "$E2E_DIR/remote.key")
sed -i "s|^providers:|providers:\n  - {id: remote, keys: [\"$PUBR\"], resources: [tokens_in, tokens_out]}|; s|^rates:|rates:\n  - {resource: tokens_in, credits: 0.001}\n  - {resource: tokens_out, credits: 0.002}|" \
	"$E2E_DIR/charter.yaml"
cat >>"$E2E_DIR/charter.yaml" <<YAML
models:
  - {id: fast, provider: remote, url: "http://127.0.0.1:$UP/v1", upstream_model: up-ok}
YAML
# every commit synchronous (--flush-ms 0): each answer waited for the standby
e2e_start --charter "$E2E_DIR/charter.yaml" --deployment e2e --flush-ms 0 || exit 1
PIDA=$E2E_PID URLA=$URL
e2e_start --deployment e2e --flush-ms 0 || exit 1
PIDB=$E2E_PID URLB=$URL
E2E_PID=$PIDA URL=$URLA
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$UP/" -X POST -d '{}' && break; sleep 0.1; done
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')
AKEY=$(e2e_api_key '{"role":"auditor"}')
TOK=$(ALLOT_KEY=$ADMIN_KEY "$BIN/allot" token mint --institution epfl --project climate --member alice@epfl.ch 2>/dev/null)
sql() { psql "$E2E_DB_DEFAULT" -qAtX -c "$1"; }
call() { # URL OUT: a gated completion's status
	curl -s -m 10 -o "$2" -w '%{http_code}' -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
		--data-binary '{"model":"fast","prompt":"hi","max_tokens":3}' "$1/v1/completions"
}
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
HOURAGO=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
batch() { # NAME: a signed batch of 5 records NAME-1..5 in $E2E_DIR/NAME.json
	for j in 1 2 3 4 5; do
		printf '{"record_id":"%s-%s","provider":"cscs","institution":"epfl","project":"climate","member":"bob@epfl.ch","resource":"cpu_seconds","quantity":%s,"start":"%s","end":"%s","kind":"usage"}\n' \
			"$1" "$j" "$j" "$HOURAGO" "$NOW"
	done | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" | jq -s '{records: .}' >"$E2E_DIR/$1.json"
}
post() { # URL NAME: the batch's status; its accepted ids appended to acked.txt
	local s
	s=$(curl -s -m 10 -o "$E2E_DIR/$2.out" -w '%{http_code}' -H "Authorization: Bearer $PKEY" \
		-H 'Content-Type: application/json' --data-binary "@$E2E_DIR/$2.json" "$1/v1/usage")
	[ "$s" = 200 ] && jq -r '.results[] | select(.status == "accepted") | .record_id' "$E2E_DIR/$2.out" >>"$E2E_DIR/acked.txt"
	echo "$s"
}
: >"$E2E_DIR/acked.txt"
GATED=0
traffic() { # ROUND: one batch and one gated request through each node
	local s
	for n in A B; do
		if [ $n = A ]; then u=$URLA; else u=$URLB; fi
		batch "b-$1-$n"
		s=$(post "$u" "b-$1-$n")
		[ "$s" = 200 ] || bad "round $1: node $n: a batch answered $s"
		s=$(call "$u" "$E2E_DIR/g.json")
		[ "$s" = 200 ] && GATED=$((GATED + 1)) || bad "round $1: node $n: a gated request answered $s"
	done
}
for r in 1 2 3; do traffic "$r"; done
check "before the kill: every batch and request answered" 6 "$GATED"
ALLOT_KEY=$AKEY "$BIN/allot" log monitor --state "$E2E_DIR/monitor.json" >/dev/null
check "monitor before the promotion" 0 $?
ACKED=$(wc -l <"$E2E_DIR/acked.txt")

# --- the primary is lost, the standby promoted -------------------------------------------------
pgown_stop p immediate || bad "the primary did not stop"
lost=$(date +%s%N)
codes=
for i in 1 2 3; do
	batch "d-$i"
	codes="$codes $(call "$URLA" "$E2E_DIR/d-$i.gated.json") $(post "$URLB" "d-$i")"
done
check "while no primary answers nothing is answered 200" 0 "$(printf '%s\n' $codes | grep -c '^200$')"
check "every gated request and every batch is refused with 503 (answers:$codes)" 6 "$(printf '%s\n' $codes | grep -c '^503$')"
$PGRUN "$PGBIN/pg_ctl" -D "$PGOWN/s.data" -w -t 60 promote >/dev/null 2>&1 || bad "the standby was not promoted"
promoted=$(date +%s%N)
back() { # URL: seconds from the loss to its first 200 ("" if none within 30 s)
	for _ in $(seq 1 120); do
		if [ "$(call "$1" "$E2E_DIR/u.json")" = 200 ]; then
			echo $((($(date +%s%N) - lost) / 1000000))
			return
		fi
		sleep 0.25
	done
}
msA=$(back "$URLA")
msB=$(back "$URLB")
[ -n "$msA" ] && GATED=$((GATED + 1))
[ -n "$msB" ] && GATED=$((GATED + 1))
[ -n "$msA" ] && [ -n "$msB" ] && ok || bad "a node did not admit again after the promotion (A: ${msA:-never}, B: ${msB:-never})"
echo "test_pg_standby: the primary killed, the standby promoted $(((promoted - lost) / 1000000)) ms later; first 200 on node A ${msA:-never} ms, node B ${msB:-never} ms after the kill"
kill -0 "$PIDA" && kill -0 "$PIDB" && ok || bad "a node exited"
for r in 4 5; do traffic "$r"; done
check "after the promotion: every batch and request answered" 12 "$GATED"

# --- nothing acknowledged is lost, nothing booked twice ---------------------------------------
ACKED2=$(wc -l <"$E2E_DIR/acked.txt")
check "acknowledged provider records (3 rounds before, 2 after; 5 per batch, 2 batches a round)" "30|50" "$ACKED|$ACKED2"
sort "$E2E_DIR/acked.txt" >"$E2E_DIR/acked.sorted"
sql "SELECT record_id FROM usage_records WHERE provider = 'cscs' ORDER BY record_id" >"$E2E_DIR/held.txt"
LC_ALL=C sort "$E2E_DIR/acked.sorted" -o "$E2E_DIR/acked.sorted"
check "every acknowledged provider record is in the promoted database, once" "" \
	"$(LC_ALL=C comm -3 "$E2E_DIR/acked.sorted" "$E2E_DIR/held.txt" | head -3)"
check "every gated 200 booked once (tokens_in and tokens_out)" "$((2 * GATED))" \
	"$(sql "SELECT count(*) FROM usage_records WHERE source = 'g'")"
check "no budget row past its allocation" 0 \
	"$(sql "SELECT count(*) FROM budgets WHERE settled + reserved + leased > allocation")"
ALLOT_KEY=$AKEY "$BIN/allot" log monitor --state "$E2E_DIR/monitor.json" >/dev/null
check "monitor after the promotion: the log went on from the same head" 0 $?
check "the promoted server is the primary" f "$(sql 'SELECT pg_is_in_recovery()')"
kill "$PIDB" 2>/dev/null
wait "$PIDB" 2>/dev/null
PIDB=
e2e_done
