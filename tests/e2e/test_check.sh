#!/usr/bin/env bash
# test_check.sh — allotd --check checks what SPEC section 1 names, one line
# per problem: the charter, --listen, the --db scheme and file, the keys
# directory, the charter's model files; and `make run` twice does not start
# a second daemon (scripts/run.sh).
. "$(dirname "$0")/lib.sh"
D=$E2E_DIR
mkdir -p "$D/models" && printf 'GGUF' >"$D/models/stories260K.gguf"
CH=$E2E_ROOT/policies/default.yaml
chk() { "$BIN/allotd" --check --charter "$CH" --db "$D/allot.db" --keys "$D/keys" --models "$D/models" "$@" 2>"$D/err" >"$D/out"; }

chk; check "a fresh, sound configuration" 0 "$?"
grep -qx 'configuration OK' "$D/out" && ok || bad "no 'configuration OK': $(cat "$D/out")"

# a postgres:// URI is opened: a server that cannot be reached is a problem
chk --db "postgresql:///db?host=$D/nosocket"; check "unreachable postgres:// exit" 1 "$?"
grep -q '^allotd --check: --db: .*nosocket' "$D/err" && ok || bad "postgres: $(cat "$D/err")"
chk --db mysql://h/db; grep -q 'unknown scheme "mysql://"' "$D/err" && ok || bad "mysql: $(cat "$D/err")"
chk --listen garbage; check "--listen garbage exit" 1 "$?"
grep -q '^allotd --check: --listen: bad listen address "garbage"' "$D/err" && ok || bad "listen: $(cat "$D/err")"
chk --listen 127.0.0.1:99999; check "port out of range" 1 "$?"
chk --models "$D/nothing"; check "missing model exit" 1 "$?"
grep -q "^allotd --check: model: $D/nothing/stories260K.gguf (model stories): No such file" "$D/err" && ok || bad "model: $(cat "$D/err")"
printf 'not a model' >"$D/bad.gguf"; mkdir -p "$D/badm"; cp "$D/bad.gguf" "$D/badm/stories260K.gguf"
chk --models "$D/badm"; grep -q 'is not a GGUF file' "$D/err" && ok || bad "bad model: $(cat "$D/err")"
# several problems: one line each, and a count
chk --listen garbage --db postgres://x --models "$D/nothing"
check "three problems, one line each" 4 "$(wc -l <"$D/err")"
grep -qx 'allotd --check: 3 problems' "$D/err" && ok || bad "count: $(cat "$D/err")"
# the keys directory: a group-readable one is refused
mkdir -m 750 "$D/keys"; chk; check "keys mode exit" 1 "$?"
grep -q "^allotd --check: --keys: $D/keys is accessible by its group or others (mode 0750)" "$D/err" && ok || bad "keys: $(cat "$D/err")"
chmod 700 "$D/keys"
# a served database: readable, current; keys of a deployment without its database
e2e_start --charter "$CH"
chk --db "$E2E_DB_DEFAULT"; check "a running deployment checks clean" 0 "$?"
grep -qF "database $E2E_DB_DEFAULT readable, schema current" "$D/out" && ok || bad "db: $(cat "$D/out")"
chk --db "$D/other.db"; check "keys without their database" 1 "$?"
grep -q 'holds the log key of an earlier deployment' "$D/err" && ok || bad "deployment: $(cat "$D/err")"
# a bad charter still counts
printf 'charter: x\n' >"$D/bad.yaml"
"$BIN/allotd" --check --charter "$D/bad.yaml" --db "$D/allot.db" --keys "$D/keys" --models "$D/models" >/dev/null 2>"$D/err"
check "bad charter exit" 1 "$?"
grep -q "^$D/bad.yaml:" "$D/err" && ok || bad "charter: $(cat "$D/err")"

# --- settings in the environment (docs/POSTGRES.md, "In the node"): a bad one is refused by
# allotd at start, before anything is created, and by allotd --check.  The check comes before
# the store is opened: the SQLite pass only.
if ! e2e_is_pg; then
	LEASE_RANGE="expected admissions a second (0: leases off), an integer from 0 to 1000000"
	while IFS='|' read -r kv want; do
		out=$(export "$kv"; timeout 10 "$BIN/allotd" --listen 127.0.0.1:0 --db "$D/never.db" \
			--keys "$D/never-keys" --models "$D/models" --charter "$CH" 2>&1)
		check "allotd refuses $kv" "1 $kv: $want" "$? ${out#allotd: }"
		(export "$kv"; chk); check "allotd --check refuses $kv" 1 "$?"
		grep -qxF "allotd --check: environment: $kv: $want" "$D/err" && ok || bad "--check $kv: $(cat "$D/err")"
	done <<SETTINGS
ALLOT_LEASE_BUSY=abc|$LEASE_RANGE
ALLOT_LEASE_BUSY=-1|$LEASE_RANGE
ALLOT_LEASE_TTL_MS=199|expected milliseconds, an integer from 200 to 86400000
ALLOT_LEASE_TTL_MS=3s|expected milliseconds, an integer from 200 to 86400000
ALLOT_LEASE_GRACE_MS=ten|expected milliseconds, an integer from 0 to 86400000
ALLOT_SYNC_MS=10|expected milliseconds, an integer from 50 to 3600000
SETTINGS
	[ ! -e "$D/never.db" ] && [ ! -e "$D/never-keys" ] && ok || bad "a refused start created files"
	(export ALLOT_LEASE_BUSY=0 ALLOT_LEASE_TTL_MS=200 ALLOT_LEASE_GRACE_MS=0; chk)
	check "settings in range check clean" 0 "$?"
fi

# --- make run twice: the second sees the first and starts nothing ---------------
out=$(cd "$E2E_ROOT" && ALLOT_LISTEN=127.0.0.1:$PORT ALLOT_ADMIN_KEY=$ADMIN_KEY timeout 10 sh scripts/run.sh 2>&1); rc=$?
check "run.sh beside a running allotd exits" 1 "$rc"
grep -q "already running on http://127.0.0.1:$PORT" <<<"$out" && ok || bad "run.sh: $out"
kill -0 "$E2E_PID" && ok || bad "the first allotd died"
e2e_done
