#!/bin/sh
# with-pg.sh COMMAND [ARGS...] — runs COMMAND with ALLOT_TEST_PG_URI set to
# a PostgreSQL server: the one already given in ALLOT_TEST_PG_URI, else a
# throwaway cluster made here (initdb in a temp dir, listening on a Unix
# socket only, no TCP, stopped and removed afterwards).  As root (CI), the
# cluster runs as the `postgres` user that Debian's package creates: the
# server refuses to run as root.  Without initdb (PostgreSQL not installed)
# COMMAND runs without the variable and the PostgreSQL tests skip, saying so.
set -u
if [ -n "${ALLOT_TEST_PG_URI:-}" ]; then
	exec "$@"
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
	echo "with-pg: PostgreSQL's initdb is not installed (Debian package postgresql): PostgreSQL tests will skip" >&2
	exec "$@"
fi
dir=$(mktemp -d /tmp/allot-pg.XXXXXX)
run=""
if [ "$(id -u)" = 0 ]; then
	if ! id postgres >/dev/null 2>&1; then
		echo "with-pg: running as root and there is no postgres user: PostgreSQL tests will skip" >&2
		rmdir "$dir"
		exec "$@"
	fi
	chown postgres: "$dir"
	run="runuser -u postgres --"
fi
chmod 755 "$dir"
# ALLOT_PG_PRELOAD=LIBS (benchmarks only): the server's shared_preload_libraries,
# e.g. pg_stat_statements (then tracking nested statements too; bench/gate's
# ALLOT_BENCH_PGSS=1 prints its counters, docs/BENCH_PG.md).
preload=""
case "${ALLOT_PG_PRELOAD:-}" in
'') ;;
*[!a-z_,]*) echo "with-pg: ALLOT_PG_PRELOAD: library names only (a-z, _, commas)" >&2; exit 2 ;;
*pg_stat_statements*) preload="-c shared_preload_libraries=$ALLOT_PG_PRELOAD -c pg_stat_statements.track=all -c pg_stat_statements.track_planning=on" ;;
*) preload="-c shared_preload_libraries=$ALLOT_PG_PRELOAD" ;;
esac
stop() {
	$run "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
	rm -rf "$dir"
}
if ! $run "$bindir/initdb" -D "$dir/data" -A trust -U allot -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
   ! $run "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
	-o "-c listen_addresses='' -c unix_socket_directories=$dir -c max_connections=200 $preload" start >/dev/null 2>&1; then
	echo "with-pg: could not start a throwaway PostgreSQL cluster in $dir:" >&2
	tail -5 "$dir/initdb.log" "$dir/server.log" 2>/dev/null >&2
	stop
	exit 1
fi
ALLOT_TEST_PG_URI="postgresql:///postgres?host=$dir&user=allot"
export ALLOT_TEST_PG_URI
echo "with-pg: PostgreSQL $("$bindir/postgres" --version | awk '{print $NF}') at $ALLOT_TEST_PG_URI"
"$@"
rc=$?
stop
exit $rc
