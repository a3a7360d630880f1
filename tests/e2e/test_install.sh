#!/usr/bin/env bash
# test_install.sh — `make install PREFIX=...` into a temporary prefix: the
# binaries, allot(1) and allotd(8) (groff -wall clean, `man -l` renders),
# the systemd unit (hardened: dedicated user, StateDirectory,
# ProtectSystem=strict, NoNewPrivileges, ExecReload sends SIGHUP) and its
# sysusers.d user; then the unit's own ExecStart command line, with its
# paths moved into the temporary directory, serves /healthz and reloads on
# SIGHUP.
# Before lib.sh, which would make a PostgreSQL database for nothing: the
# installed unit's own command line keeps its SQLite file, whatever the store.
if [ "${ALLOT_TEST_DB:-sqlite}" = pg ]; then
	echo "test_install: SKIPPED under ALLOT_TEST_DB=pg: the installed unit runs allotd on its own SQLite file (the SQLite pass ran it)"
	exit 0
fi
. "$(dirname "$0")/lib.sh"
P=$E2E_DIR/prefix
make --no-print-directory -s -C "$E2E_ROOT" install PREFIX="$P" BINDIR="$BIN" >"$E2E_DIR/install.log" 2>&1
check "make install exit" 0 "$?"
for f in bin/allotd bin/allot share/man/man1/allot.1 share/man/man8/allotd.8 \
	lib/systemd/system/allotd.service lib/sysusers.d/allot.conf share/allot/charter.example.yaml; do
	[ -f "$P/$f" ] && ok || bad "make install did not install $f"
done
check "allotd is executable" 755 "$(stat -c %a "$P/bin/allotd")"

# --- man pages -------------------------------------------------------------------
for m in share/man/man1/allot.1 share/man/man8/allotd.8; do
	if command -v groff >/dev/null 2>&1; then
		w=$(groff -man -wall -Tutf8 -z "$P/$m" 2>&1)
		check "groff -wall on $m" "" "$w"
	else
		echo "$E2E_NAME: SKIP groff -wall: groff is not installed (Debian groff-base)"
	fi
	if command -v man >/dev/null 2>&1; then
		out=$(MANWIDTH=80 man -l "$P/$m" 2>"$E2E_DIR/man.err")
		check "man -l $m: no warnings" "" "$(cat "$E2E_DIR/man.err")"
		grep -q '^SYNOPSIS' <<<"$out" && ok || bad "man -l $m renders no SYNOPSIS"
	else
		echo "$E2E_NAME: SKIP man -l: man is not installed (Debian man-db)"
	fi
done

# --- the unit ----------------------------------------------------------------------
U=$P/lib/systemd/system/allotd.service
for d in 'User=allot' 'StateDirectory=allot' 'ProtectSystem=strict' 'NoNewPrivileges=yes' \
	'ExecReload=/bin/kill -HUP $MAINPID' 'PrivateTmp=yes' 'CapabilityBoundingSet=' 'UMask=0077'; do
	grep -qxF -- "$d" "$U" && ok || bad "the unit lacks $d"
done
grep -q '^u allot ' "$P/lib/sysusers.d/allot.conf" && ok || bad "no sysusers.d user allot"
exec_start=$(sed -n 's/^ExecStart=//p' "$U")
case "$exec_start" in "$P/bin/allotd "*) ok ;; *) bad "ExecStart does not run $P/bin/allotd: $exec_start" ;; esac
grep -q '@BINDIR@' "$U" && bad "the unit still holds @BINDIR@" || ok

# Start the unit's command line with its state and configuration moved here.
S=$E2E_DIR/state C=$E2E_DIR/etc
mkdir -m 700 "$S" && mkdir -p "$C" "$S/models"
cp "$P/share/allot/charter.example.yaml" "$C/charter.yaml"
PORT=$(e2e_free_port)
URL=http://127.0.0.1:$PORT
cmd=${exec_start//\/var\/lib\/allot/$S}
cmd=${cmd//\/etc\/allot/$C}
cmd=${cmd//127.0.0.1:8080/127.0.0.1:$PORT}
# shellcheck disable=SC2086
(cd "$S" && exec $cmd) >>"$E2E_DIR/allotd.log" 2>&1 &
E2E_PID=$!
for _ in $(seq 1 100); do curl -fs "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
check "/healthz of the unit's command line" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")"
[ -f "$S/allot.db" ] && ok || bad "no database in the state directory"
check "keys directory mode" 700 "$(stat -c %a "$S/keys" 2>&1)"
# ExecReload: SIGHUP re-reads the charter (version 2 applied)
sed 's/^version: 1$/version: 2/' "$C/charter.yaml" >"$C/charter.new" && mv "$C/charter.new" "$C/charter.yaml"
kill -HUP "$E2E_PID"
v=
for _ in $(seq 1 50); do
	v=$(curl -s -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/charter" | jq -r .version)
	[ "$v" = 2 ] && break
	sleep 0.1
done
check "SIGHUP applied the edited charter" 2 "$v"
e2e_stop
E2E_FSCK_DBS=$S/allot.db
e2e_done
