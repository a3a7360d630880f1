#!/usr/bin/env bash
# test_backup.sh — `allot store backup` under traffic, then a restore
# (docs/OPERATIONS.md, "Backup and restore"): the copy passes allotd --fsck,
# a daemon started on it (with the deployment's keys) shows exactly the log
# root of the copy's signed checkpoint, and `allot log verify` accepts its
# export, consistent with that checkpoint.  Paths outside the backup
# directory (relative, "..", a sibling, a symbolic link), an existing file
# and a directory are refused with a 400 that writes nothing; --backup-dir
# moves the directory.
. "$(dirname "$0")/lib.sh"
if e2e_is_pg; then
	echo "test_backup: SKIPPED under ALLOT_TEST_DB=pg: allot store backup copies a SQLite database file; a PostgreSQL database is backed up with the server's own tools (docs/POSTGRES.md)"
	exit 0
fi
A=$BIN/allot
e2e_cscs_charter backup-test
e2e_start --charter "$E2E_DIR/charter.yaml"
export ALLOT_KEY=$ADMIN_KEY
PROV=$("$A" keys create --role provider --provider cscs 2>/dev/null)

# records NAME FROM COUNT: COUNT signed records cscs-NAME-i into NAME.jsonl
records() {
	for i in $(seq "$2" $(($2 + $3 - 1))); do
		printf '{"record_id":"cscs-%s-%d","provider":"cscs","institution":"epfl","project":"climate","member":"alice@epfl.ch","resource":"cpu_seconds","quantity":%d,"start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}\n' "$1" "$i" "$((i + 1))"
	done | "$A" usage sign --key "$E2E_DIR/cscs.key" >"$E2E_DIR/$1.jsonl"
}
records first 1 50
check "first batch" "accepted 50, duplicate 0, refused 0" "$(ALLOT_KEY=$PROV "$A" usage submit "$E2E_DIR/first.jsonl")"

# traffic: small batches submitted back to back while the backup runs
for b in 1 2 3 4 5 6 7 8; do records "t$b" 1 25; done
(for b in 1 2 3 4 5 6 7 8; do ALLOT_KEY=$PROV "$A" usage submit "$E2E_DIR/t$b.jsonl" >/dev/null; done) &
TRAFFIC=$!
sleep 0.3
out=$("$A" store backup --out "$E2E_DIR/backup.db"); rc=$?
check "backup exit" 0 "$rc"
wait "$TRAFFIC"
check "backup file mode" 600 "$(stat -c %a "$E2E_DIR/backup.db")"
[ -s "$E2E_DIR/backup.db.checkpoint" ] && ok || bad "no backup.db.checkpoint"
[ -e "$E2E_DIR/backup.db-wal" ] && bad "the backup has a -wal beside it" || ok
size=$(sed -n 2p "$E2E_DIR/backup.db.checkpoint")
root=$(sed -n 3p "$E2E_DIR/backup.db.checkpoint")
grep -q "log size $size, root $root" <<<"$out" && ok || bad "the CLI did not report the copy's size and root: $out"
# the live log went on growing after the copy
live=$(curl -s -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/log/checkpoint" | sed -n 2p)
[ "$live" -gt "$size" ] && ok || bad "the live log ($live) did not grow past the copy ($size)"

# a second backup to the same file is refused and changes nothing
sum=$(sha256sum <"$E2E_DIR/backup.db")
"$A" store backup --out "$E2E_DIR/backup.db" >/dev/null 2>&1; check "overwrite refused" 1 "$?"
check "the copy is untouched" "$sum" "$(sha256sum <"$E2E_DIR/backup.db")"
req POST /v1/store/backup "$ADMIN_KEY" application/json <(printf '{"path":"relative.db"}'); check "relative path refused" 400 "$STATUS"

# bad paths (docs/OPERATIONS.md): the backup directory is the database's
# ($E2E_DIR) by default; each refusal is a 400 that says why and writes nothing
OUTSIDE=$E2E_DIR.out # a sibling whose name starts with the backup directory's
mkdir -m 700 "$OUTSIDE"
ln -s "$OUTSIDE" "$E2E_DIR/link"
# backup_bad WHAT PATH MESSAGE-PART
backup_bad() {
	printf '{"path":"%s"}' "$2" >"$E2E_DIR/bad.json"
	req POST /v1/store/backup "$ADMIN_KEY" application/json "$E2E_DIR/bad.json"
	check "$1: status" 400 "$STATUS"
	grep -qF -- "$3" <<<"$(jget .error.message)" && ok || bad "$1: message: $BODY"
}
backup_bad "relative path" relative.db "must be an absolute path"
backup_bad ".. out of the directory" "$E2E_DIR/../$(basename "$E2E_DIR").dotdot.db" "must be in the backup directory"
backup_bad "a sibling directory" "$OUTSIDE/x.db" "must be in the backup directory"
backup_bad "a symbolic link out" "$E2E_DIR/link/x.db" "must be in the backup directory"
backup_bad "an existing file" "$E2E_DIR/backup.db" "already exists"
backup_bad "a directory" "$E2E_DIR/" "must name a file"
ln -s "$OUTSIDE/target.db" "$E2E_DIR/dangling.db"
backup_bad "a symbolic link as the file" "$E2E_DIR/dangling.db" "already exists"
check "nothing written outside" "" "$(ls -A "$OUTSIDE")"
[ -e "$E2E_DIR/../$(basename "$E2E_DIR").dotdot.db" ] && bad ".. wrote a file" || ok
check "the existing copy is untouched" "$sum" "$(sha256sum <"$E2E_DIR/backup.db")"
rm -r "$OUTSIDE" "$E2E_DIR/link" "$E2E_DIR/dangling.db"
# inside, through "..": allowed, and answered as resolved
mkdir -m 700 "$E2E_DIR/sub"
printf '{"path":"%s/sub/../inner.db"}' "$E2E_DIR" >"$E2E_DIR/in.json"
req POST /v1/store/backup "$ADMIN_KEY" application/json "$E2E_DIR/in.json"
check "a path inside through ..: status" 200 "$STATUS"
check "a path inside through ..: resolved" "$(cd "$E2E_DIR" && pwd -P)/inner.db" "$(jget .path)"
PROVREQ=$(printf '{"path":"%s/p.db"}' "$E2E_DIR")
printf '%s' "$PROVREQ" >"$E2E_DIR/p.json"
req POST /v1/store/backup "$PROV" application/json "$E2E_DIR/p.json"; check "a provider may not back up" 403 "$STATUS"
[ -e "$E2E_DIR/p.db" ] && bad "a refused backup wrote a file" || ok
e2e_stop

# --- restore: the copy and the keys, as docs/OPERATIONS.md says ---------------
R=$E2E_DIR/restored
mkdir -m 700 "$R"
cp "$E2E_DIR/backup.db" "$R/allot.db"
cp -a "$E2E_DIR/keys" "$R/keys"
E2E_FSCK_DBS="$R/allot.db $E2E_DIR/backup.db"
E2E_DB=$R/allot.db E2E_KEYS=$R/keys e2e_start --charter "$E2E_DIR/charter.yaml"
cp_now=$(curl -s -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/log/checkpoint")
check "restored log size" "$size" "$(sed -n 2p <<<"$cp_now")"
check "restored log root" "$root" "$(sed -n 3p <<<"$cp_now")"
"$A" log export --out "$E2E_DIR/restored.json" && ok || bad "export of the restored log"
LOG_KEY=$("$A" log key)
v=$("$A" log verify "$E2E_DIR/restored.json" --key "$LOG_KEY" --since "$E2E_DIR/backup.db.checkpoint" 2>&1)
check "log verify of the restored log" 0 "$?"
grep -q "consistent with the earlier checkpoint at size $size" <<<"$v" && ok || bad "verify: $v"
# the records of the first batch are all there
req GET "/v1/quotas/epfl/climate" "$ADMIN_KEY"
[ "$(jget '.levels[] | select(.level=="project") | .used')" != 0 ] && ok || bad "restored quota is empty"
e2e_stop

# --- --backup-dir: backups go there, and no longer beside the database ---------
mkdir -m 700 "$E2E_DIR/bk"
E2E_DB=$R/allot.db E2E_KEYS=$R/keys e2e_start --charter "$E2E_DIR/charter.yaml" --backup-dir "$E2E_DIR/bk"
printf '{"path":"%s/again.db"}' "$R" >"$E2E_DIR/again.json"
req POST /v1/store/backup "$ADMIN_KEY" application/json "$E2E_DIR/again.json"
check "--backup-dir: the database's directory refused" 400 "$STATUS"
[ -e "$R/again.db" ] && bad "a refused backup wrote $R/again.db" || ok
"$A" store backup --out "$E2E_DIR/bk/again.db" >/dev/null; check "--backup-dir: a backup there" 0 "$?"
check "--backup-dir: its mode" 600 "$(stat -c %a "$E2E_DIR/bk/again.db")"
E2E_FSCK_DBS="$E2E_FSCK_DBS $E2E_DIR/bk/again.db"
e2e_done
