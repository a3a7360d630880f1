#!/bin/sh
# deps.sh — the Debian packages allot needs to build, run and test.
# Sourced by setup.sh and .ci/run so the list lives in one place.
ALLOT_DEBS="build-essential pkg-config clang libclang-rt-14-dev \
libsqlite3-dev libmicrohttpd-dev libssl-dev libyaml-dev libjansson-dev \
libcurl4-openssl-dev libpq-dev libcmocka-dev prometheus \
curl ca-certificates tzdata sqlite3 jq bc python3 postgresql groff-base gdb \
chromium"
# Node.js and npm (for the OpenAI-client test) are installed only where
# missing: a machine may carry another build of Node.js that conflicts with
# Debian's npm package.
ALLOT_NODE_DEBS="nodejs npm"
ALLOT_PKGCONFIG="sqlite3 libmicrohttpd libcrypto yaml-0.1 jansson libcurl libpq cmocka"
