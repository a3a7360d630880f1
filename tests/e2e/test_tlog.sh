#!/bin/bash
# The transparency log end to end: every record, charter and admin action is
# a leaf; exports carry the signed checkpoint and proofs; `allot log verify`
# catches a changed quantity and a deleted row (done to the database as an
# attacker would: drop the append-only trigger first, with sqlite3 or, under
# ALLOT_TEST_DB=pg, psql); more appends stay
# consistent with an old checkpoint (verify --since, allot log monitor); a
# rebuilt log is reported by the monitor.
. "$(dirname "$0")/lib.sh"

DB=$E2E_DIR/allot.db
# tamper SQLITE-SQL PG-SQL: the attacker's statements on the test's database
tamper() { if e2e_is_pg; then e2e_sql "$2"; else e2e_sql "$1"; fi >/dev/null; }
# every leaf (PostgreSQL keeps a record's leaf in its row: migration 0007)
LEAVES=tlog_leaves
e2e_is_pg && LEAVES=tlog_leaves_all
PUB=$("$BIN/allot" keygen --out "$E2E_DIR/cscs.key")
cat >"$E2E_DIR/charter.yaml" <<YAML
charter: tlog-test
version: 1
effective: 2026-01-01T00:00:00Z
timezone: UTC
rates:
  - {resource: gpu_seconds, class: h100, credits: 0.03}
  - {resource: tokens_in,  model: stories, credits: 0.0001}
  - {resource: tokens_out, model: stories, credits: 0.0003}
providers:
  - {id: cscs, keys: ["$PUB"], resources: [gpu_seconds]}
  - {id: local, builtin: true}
models:
  - {id: stories, provider: local, file: stories260K.gguf}
institutions:
  - id: epfl
    allocation: {credits: 100000, period: month}
    projects:
      - id: climate
        allocation: {credits: 100000, period: month}
        members: [alice@epfl.ch]
YAML
e2e_start --charter "$E2E_DIR/charter.yaml" --deployment e2e || exit 1
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')
AKEY=$(e2e_api_key '{"role":"auditor"}')
IKEY=$(e2e_api_key '{"role":"institution","institution":"epfl"}')
export ALLOT_KEY=$AKEY
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
HOURAGO=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
rec() { # id quantity
	printf '{"record_id":"%s","provider":"cscs","institution":"epfl","project":"climate","member":"alice@epfl.ch","resource":"gpu_seconds","class":"h100","model":null,"quantity":%s,"start":"%s","end":"%s","kind":"usage","supersedes":null}\n' \
		"$1" "$2" "$HOURAGO" "$NOW"
}
ingest() { # ids...
	for id in "$@"; do rec "$id" 100; done | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" |
		jq -s '{records: .}' >"$E2E_DIR/batch.json"
	req POST /v1/usage "$PKEY" application/json "$E2E_DIR/batch.json"
	check "ingest $*" 200 "$STATUS"
}
verify() { # export [extra args]: sets VOUT and VRC
	VOUT=$("$BIN/allot" log verify "$@" --key "$LOGPUB" 2>&1)
	VRC=$?
}

# --- the key and the checkpoint ---------------------------------------------------
req GET /v1/log/key ""
check "log key is public" 200 "$STATUS"
LOGPUB=$(jget .key)
check "origin" "allot/e2e" "$(jget .origin)"
check "vkey names the origin" "allot/e2e" "$(jget .vkey | cut -d+ -f1)"
check "log key file mode" 600 "$(stat -c %a "$E2E_DIR/keys/log.key")"
req GET /v1/log/checkpoint ""; check "checkpoint needs a key" 401 "$STATUS"
req GET /v1/log/checkpoint "$PKEY"; check "provider may not read the checkpoint" 403 "$STATUS"
req GET /v1/log/checkpoint "$IKEY"; check "institution reads the checkpoint" 200 "$STATUS"
check "checkpoint origin line" "allot/e2e" "$(printf '%s' "$BODY" | sed -n 1p)"
# bootstrap key, charter, charter.apply, 3 key.create
SIZE0=$(printf '%s' "$BODY" | sed -n 2p)
check "charter and admin actions are leaves" 6 "$SIZE0"
req GET "/v1/log/entries?start=0&end=2" "$AKEY"; check "entries" 200 "$STATUS"
check "first leaf types" "audit charter" "$(jget '[.entries[].type] | sort | join(" ")')"
req GET "/v1/log/entries" "$IKEY"; check "institution may not read entries" 403 "$STATUS"

# --- ingest, export, verify OK ------------------------------------------------------
ingest job-1 job-2 job-3 job-4
req GET "/v1/usage?proofs=1" "$IKEY"; check "usage export" 200 "$STATUS"
printf '%s' "$BODY" >"$E2E_DIR/usage.json"
check "records carry leaf indices" "6 7 8 9" "$(jget '[.records[].leaf_index] | join(" ")')"
check "records carry proofs" 4 "$(jget '[.records[] | select(.proof | length > 0)] | length')"
check "usage export carries the checkpoint" "allot/e2e" "$(jget .checkpoint | sed -n 1p)"
verify "$E2E_DIR/usage.json"; check "usage export verifies ($VOUT)" 0 "$VRC"
req GET "/v1/usage" "$IKEY"
check "plain listing keeps fields and gains leaf_index" "job-1 3 6" \
	"$(jget '.records[0] | "\(.record_id) \(.charge) \(.leaf_index)"')"
req GET "/v1/reports/usage?group_by=project" "$IKEY"
check "report carries the checkpoint" "allot/e2e" "$(jget .checkpoint | sed -n 1p)"

"$BIN/allot" log export --out "$E2E_DIR/x1.json"; check "log export" 0 $?
jq -r .checkpoint "$E2E_DIR/x1.json" >"$E2E_DIR/cp1.txt"
verify "$E2E_DIR/x1.json"; check "log export verifies ($VOUT)" 0 "$VRC"
check "complete log" 1 "$(printf '%s' "$VOUT" | grep -c 'the complete log')"
VKEY=$(jq -r .vkey "$E2E_DIR/x1.json")
"$BIN/allot" log verify "$E2E_DIR/x1.json" --key "$VKEY" >/dev/null; check "verifies with the vkey" 0 $?
OTHER=$("$BIN/allot" keygen --out "$E2E_DIR/other.key")
"$BIN/allot" log verify "$E2E_DIR/x1.json" --key "$OTHER" 2>/dev/null; check "another key fails" 1 $?
jq '.entries[7].entry.charge = "0.01"' "$E2E_DIR/x1.json" >"$E2E_DIR/x1c.json"
verify "$E2E_DIR/x1c.json"; check "changed charge in the export fails" 1 "$VRC"
check "changed charge named" 1 "$(printf '%s' "$VOUT" | grep -c 'usage record cscs/job-2 (leaf 7)')"
"$BIN/allot" log monitor --state "$E2E_DIR/monitor.json" >/dev/null; check "monitor first run" 0 $?

# --- the attacker changes a quantity in the database ----------------------------------
tamper "DROP TRIGGER usage_no_update; UPDATE usage_records SET quantity = 10 WHERE record_id = 'job-2'" \
	"DROP TRIGGER usage_records_append_only ON usage_records; UPDATE usage_records SET quantity = 10 WHERE record_id = 'job-2'"
check "tampered" 10 "$(e2e_sql "SELECT quantity FROM usage_records WHERE record_id = 'job-2'")"
"$BIN/allot" log export --out "$E2E_DIR/x2.json"
verify "$E2E_DIR/x2.json"; check "verify fails after a changed quantity" 1 "$VRC"
check "names the changed record ($VOUT)" 1 "$(printf '%s' "$VOUT" | grep -c 'usage record cscs/job-2 (leaf 7)')"
req GET "/v1/usage?proofs=1" "$IKEY"; printf '%s' "$BODY" >"$E2E_DIR/usage2.json"
verify "$E2E_DIR/usage2.json"; check "usage export fails too" 1 "$VRC"
check "usage export names it" 1 "$(printf '%s' "$VOUT" | grep -c 'cscs/job-2')"
e2e_sql "UPDATE usage_records SET quantity = 100 WHERE record_id = 'job-2'" >/dev/null
"$BIN/allot" log export --out "$E2E_DIR/x3.json"
verify "$E2E_DIR/x3.json"; check "restored quantity verifies" 0 "$VRC"

# --- ... and deletes a row ---------------------------------------------------------------
# (PostgreSQL: the row is kept aside, to be put back below)
tamper "DROP TRIGGER usage_no_delete; DELETE FROM usage_records WHERE record_id = 'job-3'" \
	"CREATE TABLE saved_job3 AS SELECT * FROM usage_records WHERE record_id = 'job-3';
	DELETE FROM usage_records WHERE record_id = 'job-3'"
"$BIN/allot" log export --out "$E2E_DIR/x4.json"
verify "$E2E_DIR/x4.json"; check "verify fails after a deleted row" 1 "$VRC"
if e2e_is_pg; then
	# (a record's leaf is kept in its row, migration 0007: gone with it)
	check "names the hole the deleted record left ($VOUT)" 1 "$(printf '%s' "$VOUT" | grep -c 'leaf 8 is missing')"
else
	check "names the deleted record ($VOUT)" 1 "$(printf '%s' "$VOUT" | grep -c 'usage record cscs/job-3 (leaf 8) is logged but missing')"
fi
# deleting its leaf too leaves a hole (and breaks the proofs around it)
tamper "CREATE TABLE saved AS SELECT * FROM tlog_leaves WHERE idx = 8;
	DROP TRIGGER tlog_leaves_no_delete; DELETE FROM tlog_leaves WHERE idx = 8" \
	"CREATE TABLE saved AS SELECT * FROM tlog_leaves WHERE idx = 8;
	DROP TRIGGER tlog_leaves_append_only ON tlog_leaves; DELETE FROM tlog_leaves WHERE idx = 8"
"$BIN/allot" log export --out "$E2E_DIR/x5.json"; check "a damaged log still exports" 0 $?
verify "$E2E_DIR/x5.json"; check "verify fails after a deleted leaf" 1 "$VRC"
check "names the hole ($VOUT)" 1 "$(printf '%s' "$VOUT" | grep -c 'leaf 8 is missing')"
req GET "/v1/log/proof/inclusion?index=9" "$IKEY"; check "no proof across the hole" 404 "$STATUS"
e2e_sql "INSERT INTO tlog_leaves SELECT * FROM saved; DROP TABLE saved" >/dev/null
# (PostgreSQL: job-3's leaf is in its row, put back now with it)
e2e_is_pg && e2e_sql "INSERT INTO usage_records OVERRIDING SYSTEM VALUE SELECT * FROM saved_job3;
	DROP TABLE saved_job3" >/dev/null

# --- append more: the old checkpoint is consistent with the new one -----------------------
ingest job-5 job-6
req POST /v1/keys "$ADMIN_KEY" application/json "$E2E_DIR/k.json"
SIZE1=$(jq -r .size "$E2E_DIR/x1.json")
"$BIN/allot" log export --start 10 --since "$SIZE1" --out "$E2E_DIR/x6.json"
check "partial export range" 10 "$(jq -r .start "$E2E_DIR/x6.json")"
verify "$E2E_DIR/x6.json" --since "$E2E_DIR/cp1.txt"; check "consistent with the old checkpoint ($VOUT)" 0 "$VRC"
check "consistency reported" 1 "$(printf '%s' "$VOUT" | grep -c "consistent with the earlier checkpoint at size $SIZE1")"
"$BIN/allot" log export --start 10 --out "$E2E_DIR/x7.json"
verify "$E2E_DIR/x7.json" --since "$E2E_DIR/cp1.txt"; check "--since needs a proof in the export" 1 "$VRC"
"$BIN/allot" log monitor --state "$E2E_DIR/monitor.json" >/dev/null; check "monitor: consistent" 0 $?
check "monitor saved the new size" "$(e2e_sql "SELECT max(idx) + 1 FROM $LEAVES")" \
	"$(jq -r .checkpoint "$E2E_DIR/monitor.json" | sed -n 2p)"
"$BIN/allot" log monitor --state "$E2E_DIR/monitor.json" >/dev/null; check "monitor: unchanged" 0 $?
req GET "/v1/log/proof/inclusion?index=5" "$IKEY"; check "inclusion proof" 200 "$STATUS"
req GET "/v1/log/proof/inclusion?index=999" "$IKEY"; check "inclusion beyond the log" 400 "$STATUS"
req GET "/v1/log/proof/consistency?from=0" "$IKEY"; check "consistency from 0" 400 "$STATUS"
req GET "/v1/log/proof/consistency?from=3&to=x" "$IKEY"; check "consistency bad to" 400 "$STATUS"
req GET "/v1/log/export?start=5&end=2" "$AKEY"; check "export bad range" 400 "$STATUS"

# --- the log survives a restart; a rebuilt log is caught by the monitor -----------------
e2e_stop
e2e_start --charter "$E2E_DIR/charter.yaml" --deployment e2e || exit 1
"$BIN/allot" log monitor --state "$E2E_DIR/monitor.json" >/dev/null; check "monitor after restart" 0 $?
e2e_stop
if ! e2e_is_pg; then
	# the start logs the records again from scratch (the backfill of a
	# database older than the log): a new tree the monitor catches
	e2e_sql "DROP TRIGGER tlog_nodes_no_delete; DELETE FROM tlog_nodes; DELETE FROM tlog_leaves"
	e2e_start --charter "$E2E_DIR/charter.yaml" --deployment e2e || exit 1
	ingest job-7
	"$BIN/allot" log monitor --state "$E2E_DIR/monitor.json" 2>"$E2E_DIR/mon.err" >/dev/null
	check "monitor reports the rewritten log" 1 $?
	check "monitor says why" 1 "$(grep -c 'ALERT' "$E2E_DIR/mon.err")"
else
	# A PostgreSQL database never predates its log: no backfill, and a start
	# on a wiped log (tlog_head, the log's size and root, set back to empty)
	# is refused while the keys directory holds the log's key.  The log is put
	# back after.
	e2e_sql "CREATE TABLE saved_leaves AS SELECT * FROM tlog_leaves;
		CREATE TABLE saved_nodes AS SELECT * FROM tlog_nodes;
		CREATE TABLE saved_head AS SELECT * FROM tlog_head;
		DROP TRIGGER tlog_nodes_append_only ON tlog_nodes;
		DELETE FROM tlog_nodes; DELETE FROM tlog_leaves; UPDATE tlog_head SET size = 0, root = sha256('')" >/dev/null
	if e2e_start --charter "$E2E_DIR/charter.yaml" --deployment e2e 2>/dev/null; then
		bad "a start on a wiped log was not refused"
		e2e_stop
	else
		ok
	fi
	check "the refusal says why" 1 "$(grep -c 'holds no log entries, but the keys directory' "$E2E_DIR/allotd.log")"
	e2e_sql "INSERT INTO tlog_leaves SELECT * FROM saved_leaves; INSERT INTO tlog_nodes SELECT * FROM saved_nodes;
		UPDATE tlog_head h SET size = s.size, root = s.root FROM saved_head s;
		DROP TABLE saved_leaves, saved_nodes, saved_head" >/dev/null
	e2e_start --charter "$E2E_DIR/charter.yaml" --deployment e2e || exit 1
	ingest job-7
	"$BIN/allot" log monitor --state "$E2E_DIR/monitor.json" >/dev/null; check "monitor: the log put back" 0 $?
	echo "test_tlog: the rebuilt-log part skipped: a PostgreSQL store has no start-up backfill to rebuild the log (refused instead, checked)"
fi
verify "$E2E_DIR/x1.json"; check "the old export still verifies offline" 0 "$VRC"

# --- the gate's settlements are leaves too ---------------------------------------------------
if [ -f "$E2E_ROOT/models/stories260K.gguf" ]; then
	printf '{"institution":"epfl","project":"climate","member":"alice@epfl.ch"}' >"$E2E_DIR/m.json"
	req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/m.json"
	TOKEN=$(jget .token)
	printf '{"model":"stories","prompt":"Once upon a time","max_tokens":8,"temperature":0}' >"$E2E_DIR/g.json"
	STATUS=$(curl -s -o "$E2E_DIR/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
		-H 'Content-Type: application/json' --data-binary @"$E2E_DIR/g.json" "$URL/v1/completions")
	check "completion through the gate" 200 "$STATUS"
	"$BIN/allot" log export --out "$E2E_DIR/x8.json"
	check "gate settlements are logged" 2 \
		"$(jq '[.entries[] | select(.entry.source == "gate")] | length' "$E2E_DIR/x8.json")"
	verify "$E2E_DIR/x8.json"; check "an export with settlements verifies ($VOUT)" 0 "$VRC"
else
	echo "test_tlog: gate settlements not checked: models/stories260K.gguf is absent"
fi

# --- concurrent batches (group commit, savepoints): the tree stays right ----------------------
for b in 1 2 3 4 5 6; do
	for i in $(seq 1 15); do rec "par-$b-$i" 10; done | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" |
		jq -s '{records: .}' >"$E2E_DIR/par$b.json"
	# one record of each batch is a conflict (a rejected item inside the group)
	rec job-1 999 | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" | jq -s '.[0]' >"$E2E_DIR/c.json"
	jq --slurpfile c "$E2E_DIR/c.json" '.records += $c' "$E2E_DIR/par$b.json" >"$E2E_DIR/p.json" &&
		mv "$E2E_DIR/p.json" "$E2E_DIR/par$b.json"
done
PIDS=
for b in 1 2 3 4 5 6; do
	curl -s -o "$E2E_DIR/par$b.out" -H "Authorization: Bearer $PKEY" -H 'Content-Type: application/json' \
		--data-binary @"$E2E_DIR/par$b.json" "$URL/v1/usage" &
	PIDS="$PIDS $!"
done
wait $PIDS
check "parallel batches accepted" 90 "$(cat "$E2E_DIR"/par*.out | jq -s '[.[].summary.accepted] | add')"
"$BIN/allot" log export --out "$E2E_DIR/x9.json"
verify "$E2E_DIR/x9.json"; check "the log after parallel batches verifies ($VOUT)" 0 "$VRC"
check "every record has its leaf" 0 "$(e2e_sql "SELECT count(*) FROM usage_records u WHERE u.record_id LIKE 'par-%' AND NOT EXISTS (SELECT 1 FROM $LEAVES l WHERE l.type = 'usage' AND l.ref = u.id AND l.idx = u.leaf_index)")"
if ! e2e_is_pg && [ -f "$E2E_ROOT/models/stories260K.gguf" ]; then
	# SQLite: a gate record's leaf row keeps no name (its id is in the
	# record's row); a provider record's leaf names it (docs/LEDGER.md)
	check "gate leaves without a name" "2|0" "$(e2e_sql "SELECT count(*), count(l.name) FROM tlog_leaves l JOIN usage_records u ON l.type = 'usage' AND l.ref = u.id WHERE u.source = 'gate'")"
	check "a provider leaf names its record" "cscs/par-1-1" "$(e2e_sql "SELECT l.name FROM tlog_leaves l JOIN usage_records u ON l.type = 'usage' AND l.ref = u.id WHERE u.record_id = 'par-1-1'")"
fi

# --- allotd --fsck names what was done to the database above (docs/FSCK.md) ----------------
# job-3's row was deleted (its bucket still counts it); the log was wiped and
# rebuilt, and job-1 and job-2 still carry their old leaf_index.
e2e_stop
if e2e_is_pg; then
	# (PostgreSQL: the rows and the log were put back above; the append-only
	# triggers the tampering dropped are still missing)
	FOUT=$("$BIN/allotd" --fsck --db "$E2E_DB_DEFAULT" 2>&1); check "fsck finds the tampering" 1 $?
	check "fsck: the three dropped triggers ($FOUT)" 3 "$(grep -cE '^fsck: append-only trigger (usage_records|tlog_leaves|tlog_nodes)_append_only on [a-z_]+: stored missing' <<<"$FOUT")"
else
	FOUT=$("$BIN/allotd" --fsck --db "$DB" 2>&1); check "fsck finds the tampering" 1 $?
	check "fsck: the deleted row's bucket" 1 "$(grep -c '^fsck: bucket epfl/climate/alice@epfl.ch at ' <<<"$FOUT")"
	check "fsck: the stale leaf indices" 2 "$(grep -cE '^fsck: unlogged entry usage record [0-9]+ \(cscs/job-[12]\): stored leaf [0-9]+ is not its leaf' <<<"$FOUT")"
fi
E2E_FSCK_SKIP="the test tampered with its database on purpose"

e2e_done
