#!/bin/sh
# run-limited.sh SECONDS COMMAND [ARG...] — runs COMMAND with a time limit, so
# that one hung test fails the suite with a diagnosis instead of eating the
# whole CI budget.  Prints the command's duration.  Near the limit it prints
# the processes and, where gdb is installed, every thread's stack of each
# running allotd; at the limit timeout(1) ends the command's whole process
# group (TERM, then KILL 10 s later) and this exits 124.
set -u
limit=$1; shift
start=$(date +%s)
timeout -k 10 "$limit" "$@" &
pid=$!
# The watcher polls, so it ends within two seconds of the command.
(
	warn=$((start + limit - 15))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$warn" ]; then
			echo "run-limited: $* is still running after $((limit - 15)) s of $limit s; processes:" >&2
			ps -eo pid,ppid,etimes,stat,wchan:20,args 2>/dev/null | awk '$1 != 2 && $2 != 2' | cut -c1-240 >&2
			for p in $(pgrep -x allotd 2>/dev/null); do
				if command -v gdb >/dev/null 2>&1; then
					echo "run-limited: threads of allotd $p:" >&2
					gdb -batch -p "$p" -ex 'thread apply all bt 12' 2>&1 | grep -E '^(Thread|#)' | head -300 >&2
				else
					echo "run-limited: allotd $p (gdb is not installed; no stacks)" >&2
				fi
			done
			exit 0
		fi
		sleep 2
	done
) &
watcher=$!
wait "$pid"
rc=$?
wait "$watcher" 2>/dev/null
end=$(date +%s)
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "run-limited: FAIL: $* did not finish within $limit s (ended after $((end - start)) s)" >&2
	exit 124
fi
echo "run-limited: $(basename -- "$1")${2:+ $(basename -- "$2")}: $((end - start)) s"
exit "$rc"
