#!/bin/bash
# The OpenAI-compatible clients users pick, installed from npm into
# tests/e2e/clients/node_modules (ignored by git, reused by later runs) with
# the exact versions of tests/e2e/clients/package.json, each against the
# running gate: the Vercel AI SDK (ai, @ai-sdk/openai, @ai-sdk/openai-compatible),
# LangChain (@langchain/openai) and LlamaIndex (@llamaindex/openai); every
# call's usage must equal the ledger's charge (tests/e2e/clients/clients.test.mjs).
# Without node, npm, the registry or the stories model the test is skipped
# with a message.
. "$(dirname "$0")/lib.sh"

DIR=$E2E_ROOT/tests/e2e/clients
skip() { echo "$E2E_NAME: SKIPPED: $*"; rm -rf "$E2E_DIR"; exit 0; }
[ -f "$E2E_ROOT/models/stories260K.gguf" ] || skip "models/stories260K.gguf is absent"
command -v node >/dev/null 2>&1 || skip "node is not installed"
installed() { # every dependency at its pinned version
	local p v
	for p in $(jq -r '.dependencies | keys[]' "$DIR/package.json"); do
		v=$(jq -r --arg p "$p" '.dependencies[$p]' "$DIR/package.json")
		[ "$(jq -r .version "$DIR/node_modules/$p/package.json" 2>/dev/null)" = "$v" ] || return 1
	done
}
if ! installed; then
	command -v npm >/dev/null 2>&1 || skip "npm is not installed"
	(cd "$DIR" && timeout 300 npm install --no-audit --no-fund --no-package-lock --loglevel=error) \
		>"$E2E_DIR/npm.log" 2>&1 || skip "npm install failed (registry unreachable?): $(tail -2 "$E2E_DIR/npm.log" | tr '\n' ' ')"
fi
echo "$E2E_NAME: $(cd "$DIR" && for p in $(jq -r '.dependencies | keys[]' package.json); do printf '%s@%s ' "$p" "$(jq -r .version "node_modules/$p/package.json")"; done)on node $(node --version)"

e2e_stories_gate clients-test || exit 1

if ALLOT_URL=$URL ALLOT_TOKEN=$TOKEN ALLOT_RATE_IN=100 ALLOT_RATE_OUT=300 \
	timeout 180 node "$DIR/clients.test.mjs"; then ok; else bad "the clients test (see above)"; fi
check "nothing left reserved" 0 "$(curl -s -H "Authorization: Bearer $TOKEN" "$URL/v1/quotas/me" | jq -r '.levels[] | select(.level == "project") | .reserved')"

e2e_done
