# fsck_pg.sh — test_fsck.sh's PostgreSQL part (sourced by it under
# ALLOT_TEST_DB=pg, after the records are booked and allotd stopped; DB is
# the test's database URI, fsck/has/only/KEY as there).  Each tampered copy
# is a database made from the test's one (CREATE DATABASE ... TEMPLATE),
# changed through psql as an attacker with the database's role would (the
# append-only triggers dropped or disabled first), and dropped at the end.

# pg_db NAME: the URI of database NAME on the test's server
pg_db() {
	case $ALLOT_TEST_PG_URI in
	*\?*) echo "$ALLOT_TEST_PG_URI&dbname=$1" ;;
	*) echo "$ALLOT_TEST_PG_URI?dbname=$1" ;;
	esac
}
COPIES=
drop_copies() {
	local c
	for c in $COPIES; do
		psql "$ALLOT_TEST_PG_URI" -qAtX -c "DROP DATABASE IF EXISTS $c WITH (FORCE)" >/dev/null 2>&1
	done
	COPIES=
}
trap 'e2e_stop; drop_copies; e2e_pg_drop' EXIT
# tamper NAME SQL: a copy of the database with SQL applied; sets T (its URI)
tamper() {
	local name=${E2E_PG_DB}_$1
	name=${name//-/_}
	COPIES="$COPIES $name"
	psql "$ALLOT_TEST_PG_URI" -qAtX -v ON_ERROR_STOP=1 \
		-c "CREATE DATABASE $name TEMPLATE $E2E_PG_DB" >/dev/null || bad "tamper $1: cannot copy"
	T=$(pg_db "$name")
	psql "$T" -qAtX -v ON_ERROR_STOP=1 -c "$2" >/dev/null || bad "tamper $1: psql failed"
}
tsql() { psql "$T" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

# --- the database the daemon wrote is clean, and fsck leaves it as it was ------------
state() { e2e_sql "SELECT h.size, encode(h.root, 'hex'), b.charge_pos, b.quantity, b.upto,
	(SELECT count(*) FROM usage_records), (SELECT sum(charge) FROM usage_buckets)
	FROM tlog_head h, ledger_bounds b"; }
BEFORE=$(state)
fsck "$DB"; check "clean PostgreSQL database exits 0 ($OUT)" 0 "$RC"
has "summary line" '^fsck: [0-9]+ checks, 0 disagreements$'
N=$(printf '%s' "$OUT" | sed -n 's/^fsck: \([0-9]*\) checks.*/\1/p')
[ "${N:-0}" -ge 60 ] && ok || bad "a few dozen checks expected, got $N"
check "fsck wrote nothing to the database" "$BEFORE" "$(state)"
fsck "$DB" --format json; check "json exit" 0 "$RC"
check "json summary" "0 $N" "$(printf '%s' "$OUT" | jq -r '"\(.disagreements) \(.checks)"')"
printf '%s' "$OUT" | jq -r .database | grep -q "dbname=$E2E_PG_DB" && ok || bad "json names the database: $OUT"

# --- a bucket sum changed ---------------------------------------------------------
tamper bucket "UPDATE usage_buckets SET charge = charge + 1 WHERE member = 'alice@epfl.ch' AND
	bucket = (SELECT max(bucket) FROM usage_buckets WHERE member = 'alice@epfl.ch')"
STORED=$(tsql "SELECT charge FROM usage_buckets WHERE member = 'alice@epfl.ch' ORDER BY bucket DESC LIMIT 1")
fsck "$T"; check "changed bucket exits 1" 1 "$RC"
has "the bucket, stored and recomputed" \
	"^fsck: bucket $KEY at [-0-9T:]+Z: stored $(printf '%s' "$STORED" | awk '{printf "%.6f", $1 / 1e6}' | sed 's/0*$//; s/\.$//'), recomputed "
only "a changed bucket" "^fsck: (bucket|quota used|sum cache) (epfl/climate/alice|member epfl/climate/alice|project epfl/climate |institution epfl |pool \* )"

# --- a bucket row deleted, one added --------------------------------------------------
tamper bucket-rows "DELETE FROM usage_buckets WHERE member = 'dave@ethz.ch';
	INSERT INTO usage_buckets VALUES ('ethz', 'robotics', 'eve@ethz.ch', 1, 5)"
fsck "$T"; check "missing bucket rows exit 1" 1 "$RC"
has "missing row" "^fsck: bucket row missing ethz/robotics/dave@ethz.ch at .*: stored none, recomputed "
has "row without records" "^fsck: bucket row without records ethz/robotics/eve@ethz.ch at 1970-01-01T00:15:00Z: stored 0.000005, recomputed none"

# --- a charge in the previous month: this month's rollover (epfl carries half) -------------
tamper rollover "INSERT INTO usage_buckets VALUES ('epfl', 'climate', 'alice@epfl.ch',
	extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC') - interval '10 days')::bigint / 900, 1000000)"
fsck "$T"; check "previous month's bucket exits 1" 1 "$RC"
has "the bucket" '^fsck: bucket row without records epfl/climate/alice@epfl.ch at .*: stored 1, recomputed none$'
has "the rollover from it" '^fsck: rollover institution epfl \[.*\): stored 49999.5, recomputed 50000$'
only "a previous month's bucket" '^fsck: (bucket row without records|rollover institution epfl )'

# --- a log leaf altered (its trigger dropped first) -----------------------------------------
tamper leaf "DROP TRIGGER tlog_leaves_append_only ON tlog_leaves;
	UPDATE tlog_leaves SET leaf_hash = sha256('forged') WHERE idx = 5"
fsck "$T"; check "altered leaf exits 1" 1 "$RC"
has "the leaf" '^fsck: log leaf hash leaf 5 \([a-z]+ [0-9]+\): stored [0-9a-f]{64}, recomputed [0-9a-f]{64}$'
has "the root" '^fsck: log root tree of [0-9]+ leaves: stored [0-9a-f]{64}, recomputed [0-9a-f]{64}$'
has "the dropped trigger" '^fsck: append-only trigger tlog_leaves_append_only on tlog_leaves: stored missing, recomputed present$'
only "an altered leaf" '^fsck: (log (leaf hash leaf 5|root|node level)|append-only trigger tlog_leaves_append_only )'

# --- a stored subtree node altered ------------------------------------------------------------
tamper node "DROP TRIGGER tlog_nodes_append_only ON tlog_nodes;
	UPDATE tlog_nodes SET hash = sha256('forged') WHERE level = 4 AND idx = 0"
fsck "$T"; check "altered node exits 1" 1 "$RC"
has "the node" '^fsck: log node level 4 index 0: stored [0-9a-f]{64}, recomputed [0-9a-f]{64}$'

# --- the log head set back (the root every checkpoint is signed over) -------------------------
tamper head "UPDATE tlog_head SET size = size - 1"
fsck "$T"; check "a log head set back exits 1" 1 "$RC"
has "the head's size" '^fsck: log head size tlog_head: stored ([0-9]+), recomputed [0-9]+$'
has "the root" '^fsck: log root tree of [0-9]+ leaves: stored [0-9a-f]{64}, recomputed [0-9a-f]{64}$'

# --- a usage record deleted, and one inserted without its leaf ---------------------------------
tamper record-deleted "DROP TRIGGER usage_records_append_only ON usage_records;
	DELETE FROM usage_records WHERE record_id = 'd-3'"
fsck "$T"; check "deleted record exits 1" 1 "$RC"
has "its leaf has no entry" '^fsck: log leaf leaf [0-9]+ \(usage [0-9]+\): stored leaf, recomputed no entry$'
has "leaf count" '^fsck: log leaves entries logged: stored ([0-9]+), recomputed '
has "its bucket" '^fsck: bucket ethz/robotics/dave@ethz.ch at .*: stored [0-9.]+, recomputed '
has "the ledger's totals" '^fsck: ledger bounds positive charges records up to id [0-9]+: stored [0-9.]+, recomputed '
tamper record-added "INSERT INTO usage_records(provider, record_id, kind, institution, project, member,
	resource, quantity, start_us, end_us, received_us, book_us, charter_version, rate_micro, charge_micro,
	canonical, sha256) SELECT provider, 'forged', kind, institution, project, member, resource, quantity,
	start_us, end_us, received_us, book_us, charter_version, rate_micro, charge_micro, canonical, sha256
	FROM usage_records WHERE record_id = 'c-2'"
ID=$(tsql "SELECT id FROM usage_records WHERE record_id = 'forged'")
fsck "$T"; check "unlogged record exits 1" 1 "$RC"
has "unlogged record named" "^fsck: unlogged entry usage record $ID \\(cscs/forged\\): stored no leaf, recomputed its leaf$"
has "its bucket" '^fsck: bucket epfl/vision/carol@epfl.ch at .*: stored [0-9.]+, recomputed '
has "the project's total quota" '^fsck: quota used project epfl/vision \(total\): stored [0-9.]+, recomputed '

# --- a record both booked and refused; the ledger's totals changed ----------------------------
tamper booked-and-refused "INSERT INTO usage_rejections(provider, record_id, sha256, reason, received_us)
	SELECT provider, record_id, sha256, 'forged refusal', received_us FROM usage_records WHERE record_id = 'c-2'"
fsck "$T"; check "booked and refused exits 1" 1 "$RC"
has "named" '^fsck: records both booked and rejected cscs/c-2: stored 2, recomputed 1$'
only "booked and refused" '^fsck: records both booked and rejected '
tamper bounds "UPDATE ledger_bounds SET quantity = quantity + 1"
fsck "$T"; check "changed ledger totals exit 1" 1 "$RC"
only "changed ledger totals" '^fsck: ledger bounds quantities records up to id [0-9]+: stored [0-9]+, recomputed [0-9]+$'
has "named" '^fsck: ledger bounds quantities '

# --- guards switched off: a trigger disabled, an amount column made numeric -------------------
tamper disabled "ALTER TABLE charters DISABLE TRIGGER charters_append_only"
fsck "$T"; check "a disabled trigger exits 1" 1 "$RC"
only "a disabled trigger" '^fsck: append-only trigger charters_append_only on charters: stored missing, recomputed present$'
has "named" '^fsck: append-only trigger charters_append_only '
tamper numeric "ALTER TABLE usage_buckets ALTER COLUMN charge TYPE numeric"
fsck "$T"; check "a numeric amount column exits 1" 1 "$RC"
has "named" '^fsck: column not of an integer type usage_buckets.charge: stored numeric, recomputed an integer type$'

# --- a database that does not exist: exit 2, nothing created -----------------------------------
fsck "$(pg_db "${E2E_PG_DB}_absent")"; check "absent database exits 2" 2 "$RC"
has "absent named" '^allotd --fsck: '
check "nothing created" 0 "$(psql "$ALLOT_TEST_PG_URI" -qAtX -c "SELECT count(*) FROM pg_database WHERE datname = '${E2E_PG_DB}_absent'")"
drop_copies
