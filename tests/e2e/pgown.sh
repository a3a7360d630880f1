# pgown.sh — PostgreSQL clusters of a test's own, for the tests that stop,
# kill or promote servers and so must never touch the shared
# ALLOT_TEST_PG_URI (test_pg_restart, test_pg_standby).  Sourced before
# lib.sh.  Each cluster NAME has its data in $PGOWN/NAME.data, its log in
# $PGOWN/NAME.log and its Unix socket in the directory $PGOWN/NAME (no
# TCP); as root (CI) the servers run as the `postgres` user, as
# scripts/with-pg.sh does.
#
#   pgown_init            sets PGBIN, PGOWN, PGRUN; 1 (with the reason in
#                         PGOWN_WHY) when initdb or pg_ctl is missing
#   pgown_initdb NAME     initdb of NAME (trust, user allot)
#   pgown_start NAME [-c settings...]   starts NAME and waits for it
#   pgown_stop NAME [MODE]              pg_ctl stop -m MODE (default fast)
#   pgown_uri NAME        the URI of NAME's postgres database
#   pgown_gone            stops every cluster at once and removes $PGOWN
pgown_init() {
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	local b
	for b in initdb pg_ctl; do
		[ -x "$PGBIN/$b" ] || { PGOWN_WHY="$b is not installed (clusters of its own)"; return 1; }
	done
	PGOWN=$(mktemp -d /tmp/allot-pgown.XXXXXX)
	PGRUN=
	if [ "$(id -u)" = 0 ]; then
		chown postgres: "$PGOWN"
		PGRUN="runuser -u postgres --"
	fi
	chmod 755 "$PGOWN"
}
pgown_initdb() {
	$PGRUN mkdir -p "$PGOWN/$1" &&
		$PGRUN "$PGBIN/initdb" -D "$PGOWN/$1.data" -A trust -U allot -E UTF8 --no-sync \
			>"$PGOWN/$1.initdb.log" 2>&1
}
pgown_start() {
	local name=$1
	shift
	$PGRUN "$PGBIN/pg_ctl" -D "$PGOWN/$name.data" -l "$PGOWN/$name.log" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories=$PGOWN/$name -c max_connections=100 $*" \
		start >/dev/null 2>&1
}
pgown_stop() { $PGRUN "$PGBIN/pg_ctl" -D "$PGOWN/$1.data" -m "${2:-fast}" -w stop >/dev/null 2>&1; }
pgown_uri() { echo "postgresql:///postgres?host=$PGOWN/$1&user=allot"; }
pgown_gone() {
	[ -n "${PGOWN:-}" ] && [ -d "$PGOWN" ] || return 0
	local d
	for d in "$PGOWN"/*.data; do
		[ -d "$d" ] && $PGRUN "$PGBIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1
	done
	rm -rf "$PGOWN"
}
# pgown_failed WHAT: says what could not be set up, with the servers' last
# log lines, removes the clusters and exits 1.
pgown_failed() {
	echo "$(basename "$0" .sh): cannot set up PostgreSQL of its own in $PGOWN: $1" >&2
	tail -5 "$PGOWN"/*.log >&2 2>/dev/null
	pgown_gone
	exit 1
}
