#!/bin/bash
# allot store copy SQLITE_PATH postgres://... (docs/POSTGRES.md, "Moving a
# deployment"): a SQLite deployment with a charter, keys, provider records,
# a rejection and an audit trail is copied into an empty PostgreSQL
# database; allotd started on the copy answers the same quotas, reports and
# signed log checkpoint, keeps the old keys, still knows every record (a
# resubmitted one is a duplicate) and goes on appending to the same log.
# Sources with a REAL in a money column, an integer or a hex text where
# PostgreSQL wants bytes, a second copy into the now full database, a
# missing source and a source that is no allot database are refused, naming
# why, and change nothing.
# Runs in the PostgreSQL pass of the e2e suite (ALLOT_TEST_DB=pg); skipped,
# saying so, otherwise.
. "$(dirname "$0")/lib.sh"

skip() { echo "$E2E_NAME: SKIPPED: $*"; rm -rf "$E2E_DIR"; exit 0; }
[ -n "$E2E_PG_DB" ] || skip "ALLOT_TEST_DB is not pg (the PostgreSQL pass of the e2e suite sets it)"

SRC=$E2E_DIR/src.db
e2e_cscs_charter copy-e2e
E2E_DB=$SRC
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
PKEY=$(e2e_api_key '{"role":"provider","provider":"cscs"}')
IKEY=$(e2e_api_key '{"role":"institution","institution":"epfl"}')
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
HOURAGO=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
rec() { # id quantity [project [member]]
	printf '{"record_id":"%s","provider":"cscs","institution":"epfl","project":"%s","member":"%s","resource":"gpu_seconds","class":"h100","model":null,"quantity":%s,"start":"%s","end":"%s","kind":"usage","supersedes":null}\n' \
		"$1" "${3:-climate}" "${4:-alice@epfl.ch}" "$2" "$HOURAGO" "$NOW"
}
ingest() { # file: signed records, one a line
	jq -s '{records: .}' "$1" >"$E2E_DIR/batch.json"
	req POST /v1/usage "$PKEY" application/json "$E2E_DIR/batch.json"
}
{ rec job-1 100; rec job-2 7200; rec job-3 5 vision carol@epfl.ch; rec job-4 1 nosuch; } |
	"$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" >"$E2E_DIR/recs.jsonl"
ingest "$E2E_DIR/recs.jsonl"; check "records on SQLite" 200 "$STATUS"
check "three accepted, one refused" "3 1" "$(jget '"\(.summary.accepted) \(.summary.rejected // .summary.refused)"')"
snapshot() { # prefix: the answers a copy must repeat
	req GET /v1/quotas/epfl "$IKEY"; printf '%s' "$BODY" | jq -S 'del(.at, .as_of, .now)' >"$E2E_DIR/$1.quota"
	req GET "/v1/reports/usage?group_by=project,resource" "$ADMIN_KEY"
	printf '%s' "$BODY" | jq -S 'del(.generated_at, .as_of)' >"$E2E_DIR/$1.report"
	req GET /v1/log/checkpoint "$IKEY"; printf '%s' "$BODY" | sed -n 2,3p >"$E2E_DIR/$1.log"
	req GET "/v1/audit?limit=1000" "$ADMIN_KEY"; printf '%s' "$BODY" | jq -S '.entries // .' >"$E2E_DIR/$1.audit"
}
snapshot before
e2e_stop

# --- sources the copy refuses: the empty destination stays empty -----------------------------
# A copy of the source changed as a bug would (its CHECK constraints off):
# a money column holding a REAL, an integer and a text where bytes belong.
refused() { # NAME EXIT SQL TEXT: the source with SQL applied is refused with EXIT, saying TEXT
	cp "$SRC" "$E2E_DIR/$1.db"
	sqlite3 "$E2E_DIR/$1.db" "PRAGMA ignore_check_constraints = 1; $3" || bad "$1: sqlite3 failed"
	"$BIN/allot" store copy "$E2E_DIR/$1.db" "$E2E_DB_DEFAULT" >/dev/null 2>"$E2E_DIR/$1.err"
	check "$1: refused" "$2" "$?"
	grep -qF -e "$4" "$E2E_DIR/$1.err" && grep -qF "; nothing was written to the destination" "$E2E_DIR/$1.err" &&
		ok || bad "$1: says why [$4]: $(cat "$E2E_DIR/$1.err")"
}
refused real 2 "UPDATE usage_buckets SET charge = charge + 0.5 WHERE member = 'alice@epfl.ch'" \
	"store copy: usage_buckets.charge: a floating-point value ("
grep -qF "money and quantities are integers" "$E2E_DIR/real.err" && ok || bad "a REAL says money is integer: $(cat "$E2E_DIR/real.err")"
refused integer-bytes 2 "UPDATE api_keys SET secret_sha256 = 7 WHERE id = (SELECT min(id) FROM api_keys)" \
	"store copy: api_keys.secret_sha256: an integer where the destination wants bytes"
# text is taken as its bytes (as the store may have written it), so a hash
# written as hex text is 64 bytes, which PostgreSQL's CHECK refuses
refused text-bytes 1 "UPDATE api_keys SET secret_sha256 = hex(secret_sha256)" \
	'store copy: COPY api_keys: ERROR: new row for relation "api_keys" violates check constraint "api_keys_secret_sha256_check"'
# a kind or source that is none of the names PostgreSQL's codes stand for
refused bad-kind 2 "DROP TRIGGER usage_no_update; UPDATE usage_records SET kind = 'bogus' WHERE id = (SELECT min(id) FROM usage_records)" \
	'store copy: usage_records.kind: "bogus" is not one of its names'
refused bad-source 2 "DROP TRIGGER usage_no_update; UPDATE usage_records SET source = 'elsewhere' WHERE id = (SELECT max(id) FROM usage_records)" \
	'store copy: usage_records.source: "elsewhere" is not one of its names'
check "nothing copied by the refusals" "0|0|0" \
	"$(e2e_sql "SELECT (SELECT count(*) FROM api_keys), (SELECT count(*) FROM usage_buckets), (SELECT count(*) FROM usage_records)")"

# --- the copy --------------------------------------------------------------------------------
OUT=$("$BIN/allot" store copy "$SRC" "$E2E_DB_DEFAULT" 2>"$E2E_DIR/copy.err")
check "store copy exits 0" 0 "$?"
SIZE=$(sed -n 1p "$E2E_DIR/before.log")
ROOT=$(sed -n 2p "$E2E_DIR/before.log" | base64 -d | od -An -tx1 | tr -d ' \n')
case "$OUT" in
"copied "*" rows in "*" tables; the log has $SIZE leaves and root $ROOT on both sides") ok ;;
*) bad "copy's report names the log's size $SIZE and root $ROOT: $OUT" ;;
esac
grep -q "^allot: copied usage_records: 3 rows$" "$E2E_DIR/copy.err" && ok || bad "progress names the records: $(cat "$E2E_DIR/copy.err")"
check "records in PostgreSQL" 3 "$(e2e_sql "SELECT count(*) FROM usage_records")"
check "the rejection came too" 1 "$(e2e_sql "SELECT count(*) FROM usage_rejections")"

# --- refusals change nothing --------------------------------------------------------------------
"$BIN/allot" store copy "$SRC" "$E2E_DB_DEFAULT" >/dev/null 2>"$E2E_DIR/again.err"
check "a second copy into a full database fails" 1 "$?"
grep -q "already holds a deployment" "$E2E_DIR/again.err" && ok || bad "says why: $(cat "$E2E_DIR/again.err")"
"$BIN/allot" store copy "$E2E_DIR/missing.db" "$E2E_DB_DEFAULT" >/dev/null 2>"$E2E_DIR/missing.err"
[ "$?" != 0 ] && ok || bad "a missing source is refused"
grep -q "store copy: cannot open the source" "$E2E_DIR/missing.err" && ok || bad "says why: $(cat "$E2E_DIR/missing.err")"
[ ! -e "$E2E_DIR/missing.db" ] && ok || bad "the missing source was created"
sqlite3 "$E2E_DIR/other.db" "CREATE TABLE t(x)"
"$BIN/allot" store copy "$E2E_DIR/other.db" "$E2E_DB_DEFAULT" >/dev/null 2>"$E2E_DIR/other.err"
check "a database that is not allot's is refused" 2 "$?"
grep -q "no allot database" "$E2E_DIR/other.err" && ok || bad "says why: $(cat "$E2E_DIR/other.err")"
"$BIN/allot" store copy "$E2E_DB_DEFAULT" "$SRC" >/dev/null 2>"$E2E_DIR/back.err"
check "a copy into an existing SQLite file is refused" 1 "$?"
grep -q "exists: a copy into SQLite makes a new file" "$E2E_DIR/back.err" && ok || bad "says why: $(cat "$E2E_DIR/back.err")"
"$BIN/allot" store copy "$SRC" "$E2E_DIR/x.db" >/dev/null 2>&1
check "SQLite to SQLite is a usage error" 2 "$?"
check "records still 3 after the refusals" 3 "$(e2e_sql "SELECT count(*) FROM usage_records")"

# --- allotd on the copy ------------------------------------------------------------------------
unset E2E_DB
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
snapshot after
for f in quota report log audit; do
	cmp -s "$E2E_DIR/before.$f" "$E2E_DIR/after.$f" && ok ||
		bad "the copy answers the same $f: $(diff "$E2E_DIR/before.$f" "$E2E_DIR/after.$f" | head -5)"
done
ingest "$E2E_DIR/recs.jsonl"; check "resubmitted on the copy" 200 "$STATUS"
check "every copied record is a duplicate" 3 "$(jget .summary.duplicate)"
rec job-5 10 | "$BIN/allot" usage sign --key "$E2E_DIR/cscs.key" >"$E2E_DIR/new.jsonl"
ingest "$E2E_DIR/new.jsonl"; check "a new record on the copy" 1 "$(jget .summary.accepted)"
check "the log goes on from the copied size" $((SIZE + 1)) "$(e2e_sql "SELECT count(*) FROM tlog_leaves_all")"
check "the log's head moved with it" $((SIZE + 1)) "$(e2e_sql "SELECT size FROM tlog_head")"
e2e_api_key '{"role":"auditor"}' >/dev/null
check "the copy's audit ids go on after the copied ones (no clash)" 201 "$STATUS"
snapshot pg
e2e_stop

# --- and back: PostgreSQL into a new SQLite file -----------------------------------------------
BACK=$E2E_DIR/back.db
OUT=$("$BIN/allot" store copy "$E2E_DB_DEFAULT" "$BACK" 2>"$E2E_DIR/copy2.err")
check "store copy back exits 0" 0 "$?"
SIZE2=$(sed -n 1p "$E2E_DIR/pg.log")
ROOT2=$(sed -n 2p "$E2E_DIR/pg.log" | base64 -d | od -An -tx1 | tr -d ' \n')
case "$OUT" in
*"the log has $SIZE2 leaves and root $ROOT2 on both sides") ok ;;
*) bad "the way back names the log's size $SIZE2 and root $ROOT2: $OUT $(cat "$E2E_DIR/copy2.err")" ;;
esac
check "records in the new file" 4 "$(sqlite3 "$BACK" "SELECT count(*) FROM usage_records")"
check "money stays integer" integer "$(sqlite3 "$BACK" "SELECT DISTINCT typeof(charge_micro) FROM usage_records")"
E2E_DB=$BACK
e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
snapshot sq
for f in quota report log audit; do
	cmp -s "$E2E_DIR/pg.$f" "$E2E_DIR/sq.$f" && ok ||
		bad "the copy back answers the same $f: $(diff "$E2E_DIR/pg.$f" "$E2E_DIR/sq.$f" | head -5)"
done
ingest "$E2E_DIR/new.jsonl"; check "the record made on PostgreSQL is a duplicate" 1 "$(jget .summary.duplicate)"
e2e_stop
rm -f "$E2E_DIR/bad.db"
psql "$E2E_DB_DEFAULT" -qAtX -c "CREATE TABLE extra_table (x int)" >/dev/null
"$BIN/allot" store copy "$E2E_DB_DEFAULT" "$E2E_DIR/bad.db" >/dev/null 2>"$E2E_DIR/bad.err"
check "a source table with no place is refused" 2 "$?"
grep -q "extra_table has no place in the destination; nothing was written" "$E2E_DIR/bad.err" && ok || bad "says why: $(cat "$E2E_DIR/bad.err")"
[ ! -e "$E2E_DIR/bad.db" ] && ok || bad "the half-made file is removed"
e2e_done
