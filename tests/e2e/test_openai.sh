#!/bin/bash
# The official OpenAI Node.js client (npm package `openai`) against the gate:
# completions (also with two prompts) and chat completions (also with content
# parts), streamed and not, the Responses API, models.retrieve, and each
# error type as the client's error class; the usage the client reports must
# equal what the ledger charged (tests/e2e/openai/gate.test.mjs).
# The package is installed from the npm registry into tests/e2e/openai/
# node_modules (ignored by git, reused by later runs); without node, npm, the
# registry or the stories model the test is skipped with a message.
. "$(dirname "$0")/lib.sh"

DIR=$E2E_ROOT/tests/e2e/openai
skip() { echo "test_openai: SKIPPED: $*"; rm -rf "$E2E_DIR"; exit 0; }
[ -f "$E2E_ROOT/models/stories260K.gguf" ] || skip "models/stories260K.gguf is absent"
command -v node >/dev/null 2>&1 || skip "node is not installed"
if [ ! -f "$DIR/node_modules/openai/package.json" ]; then
	command -v npm >/dev/null 2>&1 || skip "npm is not installed"
	(cd "$DIR" && timeout 180 npm install --no-audit --no-fund --no-package-lock --loglevel=error) \
		>"$E2E_DIR/npm.log" 2>&1 || skip "npm install openai failed (registry unreachable?): $(tail -2 "$E2E_DIR/npm.log" | tr '\n' ' ')"
fi
echo "test_openai: openai $(jq -r .version "$DIR/node_modules/openai/package.json") on node $(node --version)"

E2E_STORIES_MORE=$(cat <<'YAML'
        member_allocation: {credits: 100, period: month}
      - id: poor
        allocation: {credits: 0.001, period: month}
        members: [pat@epfl.ch]
      - id: slow
        allocation: {credits: 10, period: month}
        limits: {requests_per_minute: 1}
        members: [sam@epfl.ch]
YAML
)
e2e_stories_gate openai-test || exit 1
mint() {
	printf '{"institution":"epfl","project":"%s","member":"%s"}' "$1" "$2" >"$E2E_DIR/m.json"
	req POST /v1/tokens "$ADMIN_KEY" application/json "$E2E_DIR/m.json"
	check "mint $2" 201 "$STATUS"
	jget .token
}
POOR=$(mint poor pat@epfl.ch)
SLOW=$(mint slow sam@epfl.ch)

if ALLOT_URL=$URL ALLOT_TOKEN=$TOKEN ALLOT_TOKEN_POOR=$POOR ALLOT_TOKEN_SLOW=$SLOW ALLOT_RATE_IN=100 ALLOT_RATE_OUT=300 \
	timeout 120 node "$DIR/gate.test.mjs"; then ok; else bad "the OpenAI client test (see above)"; fi
# what the client saw is what the ledger holds: 2 records per sequence of
# the 11 successful calls (the two-prompt completion runs two sequences);
# where the engine has embeddings, JSON output and logprobs, 2 more calls
# (4 records) and 2 embeddings (1 tokens_in record each), and this probe's
printf '{"model":"stories","input":"x"}' >"$E2E_DIR/e.json"
req POST /v1/embeddings "$TOKEN" application/json "$E2E_DIR/e.json"
WANT=24; [ "$STATUS" = 200 ] && WANT=31
req GET "/v1/usage?member=alice@epfl.ch&limit=1000" "$ADMIN_KEY"
check "ledger records of the successful calls" "$WANT" "$(jget '.records | length')"

e2e_done
