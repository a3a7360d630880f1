# lib.sh — helpers for end-to-end tests against the real allotd on loopback.
# Each test script sources this, calls e2e_start, runs checks, calls e2e_done.
set -u
E2E_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ALLOT_BIN_DIR:-$E2E_ROOT/bin}
# absolute, so that a test that changes directory still finds it
# (make asan passes ALLOT_BIN_DIR=build/asan/bin)
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
E2E_PASS=0
E2E_FAIL=0
E2E_NAME=$(basename "$0" .sh)
E2E_DIR=$(mktemp -d /tmp/allot-e2e.XXXXXX)
ADMIN_KEY=e2e-admin-key-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
export ALLOT_ADMIN_KEY=$ADMIN_KEY
E2E_PID=

# ALLOT_TEST_DB=pg, with ALLOT_TEST_PG_URI (scripts/with-pg.sh sets it):
# every allotd a test starts on its default database runs on a PostgreSQL
# database of its own instead of allot.db: created here, fsck'd and dropped
# when the test ends.  Unset or "sqlite": allot.db in E2E_DIR.  (Tests
# that open allot.db themselves stay on SQLite.)
E2E_PG_DB=
E2E_PG_USED=
E2E_PG_COPIES=
E2E_DB_DEFAULT=$E2E_DIR/allot.db
# e2e_pg_uri NAME: the URI of database NAME on the test's PostgreSQL server.
e2e_pg_uri() {
	case $ALLOT_TEST_PG_URI in
	*\?*) echo "$ALLOT_TEST_PG_URI&dbname=$1" ;;
	*) echo "$ALLOT_TEST_PG_URI?dbname=$1" ;;
	esac
}
if [ "${ALLOT_TEST_DB:-sqlite}" = pg ]; then
	if [ -z "${ALLOT_TEST_PG_URI:-}" ]; then
		echo "e2e: ALLOT_TEST_DB=pg needs ALLOT_TEST_PG_URI (run under scripts/with-pg.sh)" >&2
		exit 1
	fi
	E2E_PG_DB=allot_e2e_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
	E2E_DB_DEFAULT=$(e2e_pg_uri "$E2E_PG_DB")
	if ! psql "$ALLOT_TEST_PG_URI" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $E2E_PG_DB" >/dev/null; then
		echo "e2e: cannot create the PostgreSQL database $E2E_PG_DB" >&2
		exit 1
	fi
fi

# e2e_pg_drop: drops the test's PostgreSQL database (ALLOT_TEST_DB=pg) and
# the copies e2e_tamper made of it.
e2e_pg_drop() {
	[ -n "$E2E_PG_DB" ] || return 0
	local db
	for db in $E2E_PG_COPIES $E2E_PG_DB; do
		psql "$ALLOT_TEST_PG_URI" -qAtX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
			>/dev/null 2>&1 || echo "e2e: could not drop the PostgreSQL database $db" >&2
	done
	E2E_PG_COPIES=
	E2E_PG_DB=
}

# e2e_new_db: the test's default database made anew, empty (as a new
# deployment's): allot.db and its journal removed, or under
# ALLOT_TEST_DB=pg the PostgreSQL database dropped and created again.
# Call it while no allotd runs on it.
e2e_new_db() {
	if [ -z "$E2E_PG_DB" ]; then
		rm -f "$E2E_DIR/allot.db" "$E2E_DIR/allot.db-wal" "$E2E_DIR/allot.db-shm"
		return 0
	fi
	psql "$ALLOT_TEST_PG_URI" -qAtX -v ON_ERROR_STOP=1 \
		-c "DROP DATABASE IF EXISTS $E2E_PG_DB WITH (FORCE)" \
		-c "CREATE DATABASE $E2E_PG_DB" >/dev/null ||
		{ echo "e2e: cannot make the PostgreSQL database $E2E_PG_DB anew" >&2; return 1; }
}

# e2e_sql SQL: runs SQL on the test's default database (sqlite3 on allot.db,
# or psql under ALLOT_TEST_DB=pg) and prints its rows, columns joined by
# '|'.  e2e_sql_ro: the same, read-only (beside a running daemon).  Write
# SQL that both read alike.
e2e_sql() {
	if [ -z "$E2E_PG_DB" ]; then
		sqlite3 "$E2E_DIR/allot.db" "$1"
	else
		psql "$E2E_DB_DEFAULT" -qAtX -v ON_ERROR_STOP=1 -c "$1"
	fi
}
e2e_sql_ro() {
	if [ -z "$E2E_PG_DB" ]; then
		sqlite3 -readonly "$E2E_DIR/allot.db" "$1"
	else
		PGOPTIONS="-c default_transaction_read_only=on" e2e_sql "$1"
	fi
}

# e2e_is_pg: true under ALLOT_TEST_DB=pg (the default database is PostgreSQL).
e2e_is_pg() { [ -n "$E2E_PG_DB" ]; }

# e2e_tamper NAME SQL: a copy of the test's default database with SQL
# applied, as an attacker (or a bug) with the database's rights would;
# sets T to the copy: $E2E_DIR/t-NAME.db made with cp and changed with
# sqlite3, or under ALLOT_TEST_DB=pg a database made from the test's (CREATE
# DATABASE ... TEMPLATE, dropped when the test ends) changed with psql.
# The test's database is left as it was.  Call it while no allotd runs on it.
e2e_tamper() {
	if [ -z "$E2E_PG_DB" ]; then
		T=$E2E_DIR/t-$1.db
		cp "$E2E_DIR/allot.db" "$T"
		sqlite3 "$T" "$2" || bad "tamper $1: sqlite3 failed"
		return 0
	fi
	local name=${E2E_PG_DB}_$1
	name=${name//-/_}
	E2E_PG_COPIES="$E2E_PG_COPIES $name"
	psql "$ALLOT_TEST_PG_URI" -qAtX -v ON_ERROR_STOP=1 \
		-c "CREATE DATABASE $name TEMPLATE $E2E_PG_DB" >/dev/null || bad "tamper $1: cannot copy"
	T=$(e2e_pg_uri "$name")
	psql "$T" -qAtX -v ON_ERROR_STOP=1 -c "$2" >/dev/null || bad "tamper $1: psql failed"
}
# e2e_tsql SQL: runs SQL on the last copy e2e_tamper made and prints its rows.
e2e_tsql() {
	if [ -z "$E2E_PG_DB" ]; then
		sqlite3 "$T" "$1"
	else
		psql "$T" -qAtX -v ON_ERROR_STOP=1 -c "$1"
	fi
}

e2e_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
		echo $((20000 + $$ % 20000))
}

# e2e_start_on PORT [extra allotd args...]: starts allotd on PORT with the
# database E2E_DB and keys E2E_KEYS (default: allot.db and keys in
# E2E_DIR) and waits until it answers /healthz.
e2e_start_on() {
	PORT=$1
	shift
	URL=http://127.0.0.1:$PORT
	export ALLOT_SERVER=$URL
	[ -z "${E2E_DB:-}" ] && [ -n "$E2E_PG_DB" ] && E2E_PG_USED=1
	"$BIN/allotd" --listen 127.0.0.1:"$PORT" --db "${E2E_DB:-$E2E_DB_DEFAULT}" \
		--keys "${E2E_KEYS:-$E2E_DIR/keys}" --models "$E2E_ROOT/models" "$@" \
		>>"$E2E_DIR/allotd.log" 2>&1 &
	E2E_PID=$!
	for _ in $(seq 1 100); do
		curl -fs "$URL/healthz" >/dev/null 2>&1 && return 0
		kill -0 "$E2E_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "e2e: allotd did not start on port $PORT; log:" >&2
	tail -40 "$E2E_DIR/allotd.log" >&2
	return 1
}

# e2e_start [extra allotd args...]: e2e_start_on a free port.
e2e_start() { e2e_start_on "$(e2e_free_port)" "$@"; }

e2e_stop() {
	if [ -n "$E2E_PID" ]; then
		kill "$E2E_PID" 2>/dev/null
		wait "$E2E_PID" 2>/dev/null
		E2E_PID=
	fi
}

e2e_kill9() {
	[ -n "$E2E_PID" ] && kill -9 "$E2E_PID" 2>/dev/null && wait "$E2E_PID" 2>/dev/null
	E2E_PID=
}

ok() { E2E_PASS=$((E2E_PASS + 1)); }
bad() { E2E_FAIL=$((E2E_FAIL + 1)); echo "FAIL [$E2E_NAME]: $*" >&2; }

# check DESCRIPTION EXPECTED ACTUAL
check() {
	if [ "$2" = "$3" ]; then ok; else bad "$1: expected [$2], got [$3]"; fi
}

# req METHOD PATH KEY [CONTENT-TYPE BODY-FILE|-]: sets STATUS and BODY.
req() {
	local method=$1 path=$2 key=$3 ct=${4:-} data=${5:-}
	local args=(-s -o "$E2E_DIR/body" -w '%{http_code}' -X "$method")
	[ -n "$key" ] && args+=(-H "Authorization: Bearer $key")
	[ -n "$ct" ] && args+=(-H "Content-Type: $ct")
	[ -n "$data" ] && args+=(--data-binary "@$data")
	STATUS=$(curl "${args[@]}" "$URL$path")
	BODY=$(cat "$E2E_DIR/body")
}

jget() { printf '%s' "$BODY" | jq -r "$1"; }

# e2e_fsck DB...: allotd --fsck on each database (after the daemon stopped);
# a disagreement, or a database it cannot read, fails the test.
e2e_fsck() {
	local db out rc
	for db in "$@"; do
		out=$("$BIN/allotd" --fsck --db "$db" 2>&1)
		rc=$?
		if [ "$rc" = 0 ]; then
			ok
			case $db in
			postgres://* | postgresql://*) echo "$E2E_NAME: PostgreSQL ${db##*dbname=}: ${out##*$'\n'}" ;;
			*) echo "$E2E_NAME: $(basename "$db"): ${out##*$'\n'}" ;;
			esac
		else
			bad "allotd --fsck --db $db exited $rc:"
			printf '%s\n' "$out" >&2
		fi
	done
}

# Every test ends with the invariants checked on its database
# (docs/FSCK.md): allot.db when the test made one, and each database a test
# adds to E2E_FSCK_DBS.  A test that damaged allot.db on purpose (and checked
# that fsck says so) sets E2E_FSCK_SKIP to the reason.
E2E_FSCK_DBS=
E2E_FSCK_SKIP=

e2e_done() {
	e2e_stop
	local dbs=$E2E_FSCK_DBS
	if [ -n "$E2E_FSCK_SKIP" ]; then
		echo "$E2E_NAME: allot.db: fsck skipped: $E2E_FSCK_SKIP"
	elif [ -f "$E2E_DIR/allot.db" ]; then
		dbs="$E2E_DIR/allot.db $dbs"
	fi
	# shellcheck disable=SC2086
	[ -n "$dbs" ] && e2e_fsck $dbs
	[ -z "$E2E_FSCK_SKIP" ] && [ -n "$E2E_PG_USED" ] && e2e_fsck "$E2E_DB_DEFAULT"
	e2e_pg_drop
	# a sanitizer build reports memory errors and leaks in the daemon's log
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$E2E_DIR/allotd.log" 2>/dev/null; then
		bad "sanitizer report in allotd.log:"
		grep -m5 -A8 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$E2E_DIR/allotd.log" >&2
	fi
	echo "$E2E_NAME: $E2E_PASS passed, $E2E_FAIL failed"
	if [ "$E2E_FAIL" = 0 ]; then rm -rf "$E2E_DIR"; else echo "logs kept in $E2E_DIR" >&2; fi
	[ "$E2E_FAIL" = 0 ]
}
trap 'e2e_stop; e2e_pg_drop' EXIT

# e2e_api_key JSON: mints an API key with the admin key; prints its secret.
e2e_api_key() {
	printf '%s' "$1" >"$E2E_DIR/k.json"
	req POST /v1/keys "$ADMIN_KEY" application/json "$E2E_DIR/k.json"
	jget .secret
}

# e2e_cscs_charter NAME: a provider key in $E2E_DIR/cscs.key (public key in
# $PUB) and $E2E_DIR/charter.yaml: provider cscs (gpu_seconds h100 at
# 0.031415, cpu_seconds at 0.000125), institution epfl with projects climate
# (alice, bob) and vision (carol).
e2e_cscs_charter() {
	PUB=$("$BIN/allot" keygen --out "$E2E_DIR/cscs.key")
	cat >"$E2E_DIR/charter.yaml" <<YAML
charter: $1
version: 1
effective: 2026-01-01T00:00:00Z
timezone: Europe/Zurich
rates:
  - {resource: gpu_seconds, class: h100, credits: 0.031415}
  - {resource: cpu_seconds, credits: 0.000125}
providers:
  - {id: cscs, keys: ["$PUB"], resources: [gpu_seconds, cpu_seconds]}
institutions:
  - id: epfl
    allocation: {credits: 100000, period: month}
    projects:
      - id: climate
        allocation: {credits: 50000, period: month}
        members: [alice@epfl.ch, bob@epfl.ch]
      - id: vision
        allocation: {credits: 50000, period: month}
        members: [carol@epfl.ch]
YAML
}

# e2e_micro CREDITS: decimal credits as the API writes them ("-1.25",
# "0.0011") printed as integer micro-credits, exactly (bash integers are
# int64; no floating point).  More than 6 decimals: a message, nothing printed.
e2e_micro() {
	local v=$1 sign='' int frac=''
	case "$v" in -*) sign=-; v=${v#-} ;; esac
	int=${v%%.*}
	[ "$int" != "$v" ] && frac=${v#*.}
	if [ "${#frac}" -gt 6 ]; then
		echo "e2e_micro: $1 has more than 6 decimals" >&2
		return 1
	fi
	frac=$(printf '%-6s' "$frac" | tr ' ' 0)
	echo "$sign$(( 10#$int * 1000000 + 10#$frac ))"
}

# e2e_stories_head NAME [LINE]: prints the head of a charter on the bundled
# stories model: charter NAME (version 1, UTC; then LINE if given, e.g.
# "pool: 1000"), stories at 0.0001 credits a prompt token and 0.0003 a
# completion token on the builtin provider, down to its "institutions:"
# line, after which a test writes its own.
e2e_stories_head() {
	printf 'charter: %s\nversion: 1\neffective: 2026-01-01T00:00:00Z\ntimezone: UTC\n' "$1"
	if [ -n "${2:-}" ]; then printf '%s\n' "$2"; fi
	cat <<'YAML'
rates:
  - {resource: tokens_in,  model: stories, credits: 0.0001}
  - {resource: tokens_out, model: stories, credits: 0.0003}
providers:
  - {id: local, builtin: true}
models:
  - {id: stories, provider: local, file: stories260K.gguf}
institutions:
YAML
}

# e2e_stories_gate NAME [allotd args...]: the gate on the bundled stories
# model, as the OpenAI-surface and client tests use it: writes
# $E2E_DIR/charter.yaml (e2e_stories_head NAME; institution epfl, 1000
# credits a month, at most 256 tokens a request, with project climate, 500 a
# month, member alice@epfl.ch), then the lines of $E2E_STORIES_MORE if set
# (climate is the file's last project, so they may add to it or add
# projects); starts allotd on it with --threads 1 and the args; mints
# alice's member token into TOKEN (checked: 201).  Returns 1 when allotd did
# not start.
e2e_stories_gate() {
	local name=$1
	shift
	{
		e2e_stories_head "$name"
		cat <<'YAML'
  - id: epfl
    allocation: {credits: 1000, period: month}
    limits: {max_tokens_per_request: 256}
    projects:
      - id: climate
        allocation: {credits: 500, period: month}
        members: [alice@epfl.ch]
YAML
	} >"$E2E_DIR/charter.yaml"
	[ -n "${E2E_STORIES_MORE:-}" ] && printf '%s\n' "$E2E_STORIES_MORE" >>"$E2E_DIR/charter.yaml"
	e2e_start --charter "$E2E_DIR/charter.yaml" --threads 1 "$@" || return 1
	printf '{"institution":"epfl","project":"climate","member":"alice@epfl.ch"}' >"$E2E_DIR/m.json"
	req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/m.json"
	check "mint" 201 "$STATUS"
	TOKEN=$(jget .token)
}

# e2e_upstream_start [SLOW_S]: the fake OpenAI-compatible upstream
# (tests/e2e/fake/upstream.py; model up-slow answers after SLOW_S seconds
# when given) on a free port: sets UP (its port) and UPID, logs to
# $E2E_DIR/upstream.log, and waits until it answers.  The caller kills
# UPID in its EXIT trap.
e2e_upstream_start() {
	UP=$(e2e_free_port)
	(
		[ -n "${1:-}" ] && export FAKE_UPSTREAM_SLOW_S=$1
		exec python3 "$E2E_ROOT/tests/e2e/fake/upstream.py" "$UP" "$E2E_DIR/upstream.log" \
			2>>"$E2E_DIR/upstream.err"
	) &
	UPID=$!
	for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$UP/" -X POST -d '{}' && break; sleep 0.1; done
}

# e2e_remote_charter NAME ALLOC MODEL:UPSTREAM_MODEL...: the charter of the
# multi-node tests in $E2E_DIR/charter.yaml: provider remote (its key in
# $E2E_DIR/p.key, public key in PUB) at 0.001 credits a token in and 0.002
# out, each MODEL forwarded to the fake upstream (e2e_upstream_start) as
# UPSTREAM_MODEL; institution uni (100 credits a month, hard) with project
# p of ALLOC micro-credits a month and member m@uni.ch.
e2e_remote_charter() {
	local name=$1 alloc=$2 m
	shift 2
	PUB=$("$BIN/allot" keygen --out "$E2E_DIR/p.key")
	{
		cat <<YAML
charter: $name
version: 1
effective: 2026-01-01T00:00:00Z
timezone: UTC
rates:
  - {resource: tokens_in, credits: 0.001}
  - {resource: tokens_out, credits: 0.002}
providers:
  - {id: remote, keys: ["$PUB"], resources: [tokens_in, tokens_out]}
models:
YAML
		for m in "$@"; do
			echo "  - {id: ${m%%:*}, provider: remote, url: \"http://127.0.0.1:$UP/v1\", upstream_model: ${m#*:}}"
		done
		cat <<YAML
institutions:
  - id: uni
    allocation: {credits: 100, period: month}
    overage: {mode: hard}
    projects:
      - id: p
        allocation: {credits: $(printf '%d.%06d' $((alloc / 1000000)) $((alloc % 1000000))), period: month}
        members: [m@uni.ch]
YAML
	} >"$E2E_DIR/charter.yaml"
}

# e2e_two_nodes: node A (with the charter e2e_remote_charter wrote) and node
# B on the test's database, each with the environment words of
# E2E_NODE_A_ENV / E2E_NODE_B_ENV (e.g. "ALLOT_LEASE_BUSY=0"); sets PIDA
# URLA PIDB URLB, leaves E2E_PID and URL at A's, and mints TOK, a member
# token of m@uni.ch in uni/p.  Returns 1 when a node did not start.
e2e_two_nodes() {
	e2e_env_run "${E2E_NODE_A_ENV:-}" e2e_start --charter "$E2E_DIR/charter.yaml" || return 1
	PIDA=$E2E_PID URLA=$URL
	e2e_env_run "${E2E_NODE_B_ENV:-}" e2e_start || return 1
	PIDB=$E2E_PID URLB=$URL
	E2E_PID=$PIDA URL=$URLA
	export ALLOT_SERVER=$URLA
	TOK=$(ALLOT_KEY=$ADMIN_KEY "$BIN/allot" token mint --institution uni --project p --member m@uni.ch 2>/dev/null)
}

# e2e_env_run "K=V ..." CMD...: runs CMD (a function too) with those
# variables set and exported for its duration.
e2e_env_run() {
	local kv=$1
	shift
	# shellcheck disable=SC2086
	[ -n "$kv" ] && local -x $kv
	"$@"
}

# e2e_remote_call URL MODEL OUT: a completion of "hi" (max_tokens 3) with
# TOK at node URL, its body in OUT; prints its HTTP status (000: no answer
# within E2E_CALL_MAX_S seconds, default 20).  Its worst case is 16000
# micro-credits at e2e_remote_charter's rates (a prompt bound of 10 tokens
# and 3 out); the fake upstream's up-ok answers 7 in and 3 out: 13000.
e2e_remote_call() {
	curl -s -m "${E2E_CALL_MAX_S:-20}" -o "$3" -w '%{http_code}' -H "Authorization: Bearer $TOK" \
		-H 'Content-Type: application/json' \
		--data-binary "{\"model\":\"$2\",\"prompt\":\"hi\",\"max_tokens\":3}" "$1/v1/completions"
}
