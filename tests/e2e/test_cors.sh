#!/bin/bash
# The gate from a browser page of another origin (issue 14, docs/GATE.md
# "CORS"): allotd with --cors-origins naming one origin; two static pages on
# two other loopback ports; headless Debian chromium (puppeteer-core, the
# dashboard test's npm folder tests/e2e/web/) calls the gate from each.  From
# the allowed one the page reads the completion and its usage, which the
# ledger charged; from the other the browser refuses the answer, and the
# preflight it sent is refused, so nothing is charged.
. "$(dirname "$0")/lib.sh"
DIR=$E2E_ROOT/tests/e2e/web

skip() { echo "$E2E_NAME: SKIPPED: $*"; rm -rf "$E2E_DIR"; exit 0; }
[ -f "$E2E_ROOT/models/stories260K.gguf" ] || skip "models/stories260K.gguf is absent (make test copies it from ../shared/models)"
command -v node >/dev/null 2>&1 || skip "node is not installed"
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
[ -n "$CHROMIUM" ] || skip "Debian's chromium is not installed (scripts/deps.sh)"
if [ ! -f "$DIR/node_modules/puppeteer-core/package.json" ]; then
	command -v npm >/dev/null 2>&1 || skip "npm is not installed"
	(cd "$DIR" && timeout 180 npm install --no-audit --no-fund --no-package-lock --loglevel=error) >"$E2E_DIR/npm.log" 2>&1 ||
		skip "npm install failed: $(tail -2 "$E2E_DIR/npm.log" | tr '\n' ' ')"
fi

# two static origins: one allowed, one not
mkdir -p "$E2E_DIR/site"
echo '<!doctype html><title>a page of another origin</title>' >"$E2E_DIR/site/index.html"
PA=$(e2e_free_port)
python3 -m http.server "$PA" --bind 127.0.0.1 --directory "$E2E_DIR/site" >/dev/null 2>&1 &
SA=$!
PB=$(e2e_free_port)
[ "$PB" = "$PA" ] && PB=$((PA + 1))
python3 -m http.server "$PB" --bind 127.0.0.1 --directory "$E2E_DIR/site" >/dev/null 2>&1 &
SB=$!
trap 'kill $SA $SB 2>/dev/null; e2e_stop' EXIT
ALLOWED=http://127.0.0.1:$PA
REFUSED=http://127.0.0.1:$PB
e2e_stories_gate cors --cors-origins "$ALLOWED" || exit 1
for _ in $(seq 1 50); do curl -fs "$ALLOWED/index.html" >/dev/null && curl -fs "$REFUSED/index.html" >/dev/null && break; sleep 0.1; done

nrec() { curl -s -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/usage?limit=1000" | jq '.records | length'; }
N0=$(nrec)

echo "$E2E_NAME: puppeteer-core $(jq -r .version "$DIR/node_modules/puppeteer-core/package.json"), $("$CHROMIUM" --version 2>/dev/null)"
OUT=$(URL=$URL TOKEN=$TOKEN ALLOWED=$ALLOWED REFUSED=$REFUSED CHROMIUM=$CHROMIUM timeout 120 node "$DIR/cors.test.mjs" 2>&1)
RC=$?
printf '%s\n' "$OUT" | grep -v '^ALLOWED_TOKENS'
check "the browser test" 0 "$RC"
# the allowed call was charged as its usage said (2 records: tokens_in and
# tokens_out); the refused one never reached the gate's handler
check "one call charged: two records" $((N0 + 2)) "$(nrec)"
TOK=$(printf '%s\n' "$OUT" | sed -n 's/^ALLOWED_TOKENS //p')
[ "${TOK:-0}" -gt 0 ] && ok || bad "no usage read by the allowed page"
e2e_done
