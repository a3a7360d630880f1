#!/bin/sh
# run.sh — what `make run` does after building: start allotd on the default
# charter and model at 127.0.0.1:8080, with an admin key kept in var/admin.key.
set -eu
cd "$(dirname "$0")/.."
mkdir -p var
if [ -z "${ALLOT_ADMIN_KEY:-}" ]; then
	if [ ! -s var/admin.key ]; then
		umask 077
		printf 'allot_%s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >var/admin.key
	fi
	ALLOT_ADMIN_KEY=$(cat var/admin.key)
fi
export ALLOT_ADMIN_KEY
LISTEN=${ALLOT_LISTEN:-127.0.0.1:8080}
# A second `make run` beside a running one: say so and start nothing.
if command -v curl >/dev/null 2>&1 && curl -fs -m 2 "http://$LISTEN/healthz" >/dev/null 2>&1; then
	echo "allotd is already running on http://$LISTEN: use that one (its admin key is in" >&2
	echo "var/admin.key), or stop it first (Ctrl-C in its terminal, or kill the pid in var/allot.db.lock)." >&2
	exit 1
fi
cat <<MSG
allotd starting on http://$LISTEN (charter policies/default.yaml, models in models/)
admin key (also in var/admin.key): $ALLOT_ADMIN_KEY

Dashboard: http://$LISTEN/  (sign in with the admin key above; an institution,
auditor or provider key from \`bin/allot keys create\`, or a member token, shows
that role's pages; see docs/DASHBOARD.md).  Public page: http://$LISTEN/public

Try, in another terminal:
  export ALLOT_KEY=\$(cat var/admin.key) ALLOT_SERVER=http://$LISTEN
  TOKEN=\$(bin/allot token mint --institution epfl --project climate --member alice@epfl.ch)
  curl -s http://$LISTEN/v1/completions -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"model":"stories","prompt":"Once upon a time","max_tokens":40}'
  bin/allot quota show epfl/climate

MSG
exec bin/allotd --listen "$LISTEN" "$@"
