#!/bin/sh
# setup.sh — everything `make run` and `make test` need before building:
# Debian packages, the default model in models/, and var/.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh

missing=""
for p in $ALLOT_PKGCONFIG; do
	pkg-config --exists "$p" 2>/dev/null || missing="$missing $p"
done
command -v cc >/dev/null 2>&1 || missing="$missing cc"
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "setup: installing Debian packages (missing:$missing)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# shellcheck disable=SC2086
		apt-get install -y -qq $ALLOT_DEBS >/dev/null
		command -v npm >/dev/null 2>&1 || apt-get install -y -qq $ALLOT_NODE_DEBS >/dev/null || true
	else
		echo "setup: missing:$missing" >&2
		echo "setup: run as root:  apt-get install -y $ALLOT_DEBS" >&2
		exit 1
	fi
fi

mkdir -p var models
sh scripts/fetch-model.sh
