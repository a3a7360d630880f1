#!/bin/bash
# allotd --fsck (docs/FSCK.md): clean on a database the daemon wrote, and
# the database unchanged by it; on copies tampered with as an attacker or a
# bug would (the append-only triggers dropped first), each change is
# reported where it was made, with exit 1; bad flags and unreadable
# databases exit 2.  The same tampering on both stores (e2e_tamper: a copy
# of allot.db through sqlite3, or under ALLOT_TEST_DB=pg a database made
# from the test's with CREATE DATABASE ... TEMPLATE, through psql), written
# in each store's spelling; then what only one store has.
. "$(dirname "$0")/lib.sh"

PUB=$("$BIN/allot" keygen --out "$E2E_DIR/cscs.key")
cat >"$E2E_DIR/charter.yaml" <<YAML
charter: fsck-test
version: 1
effective: 2026-01-01T00:00:00Z
timezone: Europe/Zurich
pool: 1000000
rates:
  - {resource: gpu_seconds, class: h100, credits: 0.031415}
  - {resource: cpu_seconds, credits: 0.000125}
providers:
  - {id: cscs, keys: ["$PUB"], resources: [gpu_seconds, cpu_seconds]}
institutions:
  - id: epfl
    allocation: {credits: 100000, period: month, rollover: 0.5}
    projects:
      - id: climate
        allocation: {credits: 50000, period: month}
        member_allocation: {credits: 20000, period: month}
        members: [alice@epfl.ch, bob@epfl.ch]
      - id: vision
        allocation: {credits: 50000, period: total}
        members: [carol@epfl.ch]
  - id: ethz
    allocation: {credits: 5000, period: week}
    projects:
      - id: robotics
        allocation: {credits: 5000, period: week}
        members: [dave@ethz.ch]
YAML
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
HOURAGO=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
LASTMONTH=$(date -u -d "$(date -u +%Y-%m-01) -20 days" +%Y-%m-%dT12:00:00Z)
rec() { # id inst proj member resource quantity [start] [extra json]
	printf '{"record_id":"%s","provider":"cscs","institution":"%s","project":"%s","member":"%s","resource":"%s","class":%s,"model":null,"quantity":%s,"start":"%s","end":"%s","kind":"usage","supersedes":null}\n' \
		"$1" "$2" "$3" "$4" "$5" "$([ "$5" = gpu_seconds ] && echo '"h100"' || echo null)" "$6" \
		"${7:-$HOURAGO}" "${7:-$NOW}" | jq -c ". + {${8:-}}"
}
{
	for i in $(seq 1 8); do
		rec "a-$i" epfl climate alice@epfl.ch gpu_seconds $((i * 100))
		rec "b-$i" epfl climate bob@epfl.ch cpu_seconds $((i * 7000))
		rec "c-$i" epfl vision carol@epfl.ch gpu_seconds $((i * 30))
		rec "d-$i" ethz robotics dave@ethz.ch cpu_seconds $((i * 50))
	done
	rec old-1 epfl climate alice@epfl.ch gpu_seconds 1000 "$LASTMONTH"
	rec refund-1 epfl climate alice@epfl.ch gpu_seconds 100 "" \
		'"kind":"adjustment","adjustment":"refund","supersedes":"a-1"'
} | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" | jq -s '{records: .}' >"$E2E_DIR/b.json"
req POST /v1/usage "$PKEY" application/json "$E2E_DIR/b.json"
check "records accepted" 34 "$(jget .summary.accepted)"
# While allotd owns the database, fsck refuses it (exit 2), naming the holder.
out=$("$BIN/allotd" --fsck --db "$E2E_DB_DEFAULT" 2>&1); rc=$?
check "fsck beside a running allotd exits 2" 2 "$rc"
printf '%s' "$out" | grep -q "pid $E2E_PID" && ok || bad "fsck names the running allotd: $out"
e2e_stop

DB=$E2E_DB_DEFAULT
fsck() { # DB [flags...]: sets OUT (stdout and stderr) and RC
	OUT=$("$BIN/allotd" --fsck --db "$@" 2>&1)
	RC=$?
}
# has DESCRIPTION PATTERN: one line of OUT matches (grep -E)
has() { printf '%s\n' "$OUT" | grep -qE -e "$2" && ok || bad "$1: no line matches [$2] in: $OUT"; }
# the only lines of OUT are the expected ones (and the summary)
only() { # DESCRIPTION PATTERN
	local extra
	extra=$(printf '%s\n' "$OUT" | grep -vE -e "$2" -e '^fsck: [0-9]+ checks, [0-9]+ disagreements$')
	[ -z "$extra" ] && ok || bad "$1: unexpected lines: $extra"
}
KEY="epfl/climate/alice@epfl.ch"

# Each store's spelling of the same tampering; state: what fsck must leave
# as it was (the file's bytes; PostgreSQL: the log's head, the ledger's
# totals and the row counts).
if e2e_is_pg; then
	FORGED="sha256('forged')"
	PREV_MONTH_BUCKET="extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC') - interval '10 days')::bigint / 900"
	LEAF_TRIGGER=tlog_leaves_append_only NODE_TRIGGER=tlog_nodes_append_only
	DROP_LEAF_TRIGGER="DROP TRIGGER $LEAF_TRIGGER ON tlog_leaves"
	DROP_NODE_TRIGGER="DROP TRIGGER $NODE_TRIGGER ON tlog_nodes"
	DROP_RECORD_TRIGGER="DROP TRIGGER usage_records_append_only ON usage_records"
	# a record's leaf may be kept in its row (migration 0007): changed
	# there with the row's trigger off for the statement
	FORGE_ROW_LEAF="ALTER TABLE usage_records DISABLE TRIGGER usage_records_append_only;
		UPDATE usage_records SET leaf_hash = $FORGED WHERE leaf_index = 5 AND leaf_hash IS NOT NULL;
		ALTER TABLE usage_records ENABLE TRIGGER usage_records_append_only"
	# a record's SHA-256 is NULL where it is that of its canonical bytes (0007)
	RECORD_SHA="coalesce(sha256, sha256('forged'))"
	state() { e2e_sql "SELECT h.size, encode(h.root, 'hex'), b.charge_pos, b.quantity, b.upto,
		(SELECT count(*) FROM usage_records), (SELECT sum(charge) FROM usage_buckets)
		FROM tlog_head h, ledger_bounds b"; }
else
	FORGED="randomblob(32)"
	PREV_MONTH_BUCKET="CAST(strftime('%s', date('now', 'start of month', '-10 days')) AS INTEGER) / 900"
	LEAF_TRIGGER=tlog_leaves_no_update NODE_TRIGGER=tlog_nodes_no_update
	DROP_LEAF_TRIGGER="DROP TRIGGER $LEAF_TRIGGER"
	DROP_NODE_TRIGGER="DROP TRIGGER $NODE_TRIGGER"
	DROP_RECORD_TRIGGER="DROP TRIGGER usage_no_delete"
	FORGE_ROW_LEAF="SELECT 1"
	RECORD_SHA=sha256
	state() { sha256sum <"$DB"; }
fi

# --- a database the daemon wrote is clean, and fsck leaves it as it was -----------
BEFORE=$(state)
fsck "$DB"; check "clean database exits 0 ($OUT)" 0 "$RC"
has "summary line" '^fsck: [0-9]+ checks, 0 disagreements$'
N=$(printf '%s' "$OUT" | sed -n 's/^fsck: \([0-9]*\) checks.*/\1/p')
[ "${N:-0}" -ge 60 ] && ok || bad "a few dozen checks expected, got $N"
check "fsck wrote nothing to the database" "$BEFORE" "$(state)"
fsck "$DB" --format json; check "json exit" 0 "$RC"
check "json summary" "0 $N" "$(printf '%s' "$OUT" | jq -r '"\(.disagreements) \(.checks)"')"
if e2e_is_pg; then
	printf '%s' "$OUT" | jq -r .database | grep -q "dbname=$E2E_PG_DB" && ok || bad "json names the database: $OUT"
fi
# the daemon's own flags are accepted (one command line serves and checks)
fsck "$DB" --keys "$E2E_DIR/keys" --charter "$E2E_DIR/charter.yaml"; check "daemon flags ignored" 0 "$RC"

# --- a bucket sum changed ---------------------------------------------------------
e2e_tamper bucket "UPDATE usage_buckets SET charge = charge + 1 WHERE member = 'alice@epfl.ch' AND
	bucket = (SELECT max(bucket) FROM usage_buckets WHERE member = 'alice@epfl.ch')"
STORED=$(e2e_tsql "SELECT charge FROM usage_buckets WHERE member = 'alice@epfl.ch' ORDER BY bucket DESC LIMIT 1")
fsck "$T"; check "changed bucket exits 1" 1 "$RC"
has "the bucket, stored and recomputed" \
	"^fsck: bucket $KEY at [-0-9T:]+Z: stored $(printf '%s' "$STORED" | awk '{printf "%.6f", $1 / 1e6}' | sed 's/0*$//; s/\.$//'), recomputed "
# what the store derives from the bucket disagrees too; nothing else does
only "a changed bucket" "^fsck: (bucket|quota used|sum cache) (epfl/climate/alice|member epfl/climate/alice|project epfl/climate |institution epfl |pool \* )"
has "the summary counts them" '^fsck: [0-9]+ checks, [1-9][0-9]* disagreements$'

# --- a bucket row deleted, one added --------------------------------------------------
e2e_tamper bucket-rows "DELETE FROM usage_buckets WHERE member = 'dave@ethz.ch';
	INSERT INTO usage_buckets VALUES ('ethz', 'robotics', 'eve@ethz.ch', 1, 5)"
fsck "$T"; check "missing bucket rows exit 1" 1 "$RC"
has "missing row" "^fsck: bucket row missing ethz/robotics/dave@ethz.ch at .*: stored none, recomputed "
has "row without records" "^fsck: bucket row without records ethz/robotics/eve@ethz.ch at 1970-01-01T00:15:00Z: stored 0.000005, recomputed none"

# --- a charge in the previous month: this month's rollover (epfl carries half) -------------
e2e_tamper rollover "INSERT INTO usage_buckets VALUES ('epfl', 'climate', 'alice@epfl.ch',
	$PREV_MONTH_BUCKET, 1000000)"
fsck "$T"; check "previous month's bucket exits 1" 1 "$RC"
has "the bucket" '^fsck: bucket row without records epfl/climate/alice@epfl.ch at .*: stored 1, recomputed none$'
has "the rollover from it" '^fsck: rollover institution epfl \[.*\): stored 49999.5, recomputed 50000$'
only "a previous month's bucket" '^fsck: (bucket row without records|rollover institution epfl )'

# --- a log leaf altered (its trigger dropped first) -----------------------------------------
e2e_tamper leaf "$DROP_LEAF_TRIGGER; UPDATE tlog_leaves SET leaf_hash = $FORGED WHERE idx = 5; $FORGE_ROW_LEAF"
fsck "$T"; check "altered leaf exits 1" 1 "$RC"
has "the leaf" '^fsck: log leaf hash leaf 5 \([a-z]+ [0-9]+\): stored [0-9a-f]{64}, recomputed [0-9a-f]{64}$'
has "the root" '^fsck: log root tree of [0-9]+ leaves: stored [0-9a-f]{64}, recomputed [0-9a-f]{64}$'
has "the dropped trigger" "^fsck: append-only trigger $LEAF_TRIGGER on tlog_leaves: stored missing, recomputed present\$"
only "an altered leaf" "^fsck: (log (leaf hash leaf 5|root|node level)|append-only trigger $LEAF_TRIGGER )"

# --- a stored subtree node altered ------------------------------------------------------------
e2e_tamper node "$DROP_NODE_TRIGGER; UPDATE tlog_nodes SET hash = $FORGED WHERE level = 4 AND idx = 0"
fsck "$T"; check "altered node exits 1" 1 "$RC"
has "the node" '^fsck: log node level 4 index 0: stored [0-9a-f]{64}, recomputed [0-9a-f]{64}$'

# --- a usage record deleted, and one inserted without its leaf ---------------------------------
e2e_tamper record-deleted "$DROP_RECORD_TRIGGER; DELETE FROM usage_records WHERE record_id = 'd-3'"
fsck "$T"; check "deleted record exits 1" 1 "$RC"
if e2e_is_pg; then
	# (its leaf was kept in its row, migration 0007: a hole in the log)
	has "its leaf is missing" '^fsck: log leaf leaf [0-9]+: stored missing, recomputed present$'
	has "the head's size" '^fsck: log head size tlog_head: stored ([0-9]+), recomputed '
else
	has "its leaf has no entry" '^fsck: log leaf leaf [0-9]+ \(usage [0-9]+\): stored leaf, recomputed no entry$'
	has "leaf count" '^fsck: log leaves entries logged: stored ([0-9]+), recomputed '
fi
has "its bucket" '^fsck: bucket ethz/robotics/dave@ethz.ch at .*: stored [0-9.]+, recomputed '
# (PostgreSQL's ledger_bounds covers every record; SQLite's may lag behind
# its last records, which fsck then leaves out of that check)
if e2e_is_pg; then
	has "the ledger's totals" '^fsck: ledger bounds positive charges records up to id [0-9]+: stored [0-9.]+, recomputed '
fi
e2e_tamper record-added "INSERT INTO usage_records(provider, record_id, kind, institution, project, member,
	resource, quantity, start_us, end_us, received_us, book_us, charter_version, rate_micro, charge_micro,
	canonical, sha256) SELECT provider, 'forged', kind, institution, project, member, resource, quantity,
	start_us, end_us, received_us, book_us, charter_version, rate_micro, charge_micro, canonical, sha256
	FROM usage_records WHERE record_id = 'c-2'"
ID=$(e2e_tsql "SELECT id FROM usage_records WHERE record_id = 'forged'")
fsck "$T"; check "unlogged record exits 1" 1 "$RC"
has "unlogged record named" "^fsck: unlogged entry usage record $ID \\(cscs/forged\\): stored no leaf, recomputed its leaf$"
has "its bucket" '^fsck: bucket epfl/vision/carol@epfl.ch at .*: stored [0-9.]+, recomputed '
has "the project's total quota" '^fsck: quota used project epfl/vision \(total\): stored [0-9.]+, recomputed '

# --- a record both booked and refused (migration 0013: decided once); the ledger's totals changed
e2e_tamper booked-and-refused "INSERT INTO usage_rejections(provider, record_id, sha256, reason, received_us)
	SELECT provider, record_id, $RECORD_SHA, 'forged refusal', received_us FROM usage_records WHERE record_id = 'c-2'"
fsck "$T"; check "booked and refused exits 1" 1 "$RC"
has "named" '^fsck: records both booked and rejected cscs/c-2: stored 2, recomputed 1$'
only "booked and refused" '^fsck: records both booked and rejected '
e2e_tamper bounds "UPDATE ledger_bounds SET quantity = quantity + 1"
fsck "$T"; check "changed ledger totals exit 1" 1 "$RC"
only "changed ledger totals" '^fsck: ledger bounds quantities records up to id [0-9]+: stored [0-9]+, recomputed [0-9]+$'
has "named" '^fsck: ledger bounds quantities '

if e2e_is_pg; then
	# --- the log head set back (the root every checkpoint is signed over) --------------------
	e2e_tamper head "UPDATE tlog_head SET size = size - 1"
	fsck "$T"; check "a log head set back exits 1" 1 "$RC"
	has "the head's size" '^fsck: log head size tlog_head: stored ([0-9]+), recomputed [0-9]+$'
	has "the root" '^fsck: log root tree of [0-9]+ leaves: stored [0-9a-f]{64}, recomputed [0-9a-f]{64}$'

	# --- guards switched off: a trigger disabled, an amount column made numeric --------------
	e2e_tamper disabled "ALTER TABLE charters DISABLE TRIGGER charters_append_only"
	fsck "$T"; check "a disabled trigger exits 1" 1 "$RC"
	only "a disabled trigger" '^fsck: append-only trigger charters_append_only on charters: stored missing, recomputed present$'
	has "named" '^fsck: append-only trigger charters_append_only '
	e2e_tamper numeric "ALTER TABLE usage_buckets ALTER COLUMN charge TYPE numeric"
	fsck "$T"; check "a numeric amount column exits 1" 1 "$RC"
	has "named" '^fsck: column not of an integer type usage_buckets.charge: stored numeric, recomputed an integer type$'

	# --- a database that does not exist: exit 2, nothing created -----------------------------
	fsck "$(e2e_pg_uri "${E2E_PG_DB}_absent")"; check "absent database exits 2" 2 "$RC"
	has "absent named" '^allotd --fsck: '
	check "nothing created" 0 "$(psql "$ALLOT_TEST_PG_URI" -qAtX -c "SELECT count(*) FROM pg_database WHERE datname = '${E2E_PG_DB}_absent'")"
else
	# --- a floating-point amount ---------------------------------------------------------------
	# (a whole REAL is stored back as an integer by the column's affinity: half a
	# micro-credit stays REAL, as an overflowing sum would)
	# (migration 0009's CHECK(typeof(charge) = 'integer') refuses it: the
	# tampering turns CHECK constraints off)
	e2e_tamper real "PRAGMA ignore_check_constraints = 1; UPDATE usage_buckets SET charge = charge + 0.5 WHERE member = 'carol@epfl.ch'"
	NREAL=$(e2e_tsql "SELECT count(*) FROM usage_buckets WHERE typeof(charge) = 'real'")
	fsck "$T"; check "REAL column exits 1" 1 "$RC"
	has "REAL named" "^fsck: rows not of type integer usage_buckets.charge: stored $NREAL, recomputed 0\$"

	# --- unreadable databases: exit 2, nothing created -----------------------------------------
	fsck "$E2E_DIR/absent.db"; check "absent database exits 2" 2 "$RC"
	has "absent named" "^allotd --fsck: .*absent.db"
	[ ! -e "$E2E_DIR/absent.db" ] && ok || bad "fsck created a database"
	cp "$DB" "$E2E_DIR/newer.db"
	sqlite3 "$E2E_DIR/newer.db" "PRAGMA user_version = 999"
	fsck "$E2E_DIR/newer.db"; check "newer schema exits 2" 2 "$RC"
	has "newer schema says so" "schema version 999, this allotd reads"
fi

# --- usage errors: exit 2 ----------------------------------------------------------------------
fsck "$DB" --format xml; check "bad format exits 2" 2 "$RC"
has "format message" '^allotd --fsck: --format must be text or json$'
fsck "$DB" --bogus; check "unknown flag exits 2" 2 "$RC"
has "unknown flag named" 'unknown argument "--bogus"'
OUT=$("$BIN/allotd" --fsck --db 2>&1); check "--db without a value exits 2" 2 $?

e2e_done
