#!/usr/bin/env bash
# test_readme.sh — README.md's walkthrough runs as written: every ```sh block,
# in order, as one bash script (set -euo pipefail) against a fresh allotd, from
# a directory laid out like the repository after `make run` (bin/, policies/,
# var/admin.key).  The daemon listens on a free port instead of 8080: the
# test replaces 127.0.0.1:8080 in the blocks.  A block after the line
# <!-- readme-test: needs-model --> is skipped, with a message, when
# models/stories260K.gguf is absent.  Then the results are checked.
. "$(dirname "$0")/lib.sh"

README=$E2E_ROOT/README.md
MODEL=$E2E_ROOT/models/stories260K.gguf

# The two set-up commands stay exactly as they are.
grep -qx 'make run    # installs packages, builds, fetches the default model, starts allotd' "$README" && ok || bad "README lost its make run line"
grep -qx 'make test   # the same set-up, then every unit, end-to-end and fuzz-smoke test' "$README" && ok || bad "README lost its make test line"

have_model=1
[ -f "$MODEL" ] || have_model=0
[ "$have_model" = 1 ] || echo "$E2E_NAME: SKIP the needs-model blocks: $MODEL is absent (make setup fetches it)"

e2e_start --charter "$E2E_ROOT/policies/default.yaml"

# Extract the runnable blocks.
awk -v model="$have_model" -v port="$PORT" '
	/^<!-- readme-test: needs-model -->$/ { needs = 1; next }
	/^```sh$/ { inblock = 1; skip = needs && !model; needs = 0; n++
		    print "echo \"--- README block " n (skip ? " (skipped: no model)" : "") "\""; next }
	/^```/ { if (inblock) { inblock = 0; next } needs = 0 }
	inblock && !skip { gsub(/127\.0\.0\.1:8080/, "127.0.0.1:" port); print }
	!inblock && NF { needs = 0 }
' "$README" >"$E2E_DIR/walkthrough.sh"
nblocks=$(grep -c '^echo "--- README block' "$E2E_DIR/walkthrough.sh")
[ "$nblocks" -ge 6 ] && ok || bad "expected at least 6 sh blocks in README.md, found $nblocks"

WORK=$E2E_DIR/repo
mkdir -p "$WORK/var"
ln -s "$BIN" "$WORK/bin"
ln -s "$E2E_ROOT/policies" "$WORK/policies"
(umask 077; printf '%s\n' "$ADMIN_KEY" >"$WORK/var/admin.key")

(cd "$WORK" && unset ALLOT_SERVER ALLOT_KEY &&
	bash -euo pipefail "$E2E_DIR/walkthrough.sh") >"$E2E_DIR/out" 2>"$E2E_DIR/err"
rc=$?
if [ "$rc" = 0 ]; then ok; else
	bad "the README walkthrough exited $rc; its stderr:"
	tail -20 "$E2E_DIR/err" >&2
fi
out=$(cat "$E2E_DIR/out")

# What the walkthrough did, checked from its output and the server.
grep -q '^accepted 3, duplicate 0, refused 0$' <<<"$out" && ok || bad "usage submit did not accept the 3 sample records"
grep -q '^OK: [0-9]* log entries verified' <<<"$out" && ok || bad "log verify did not say OK"
grep -q '^OK: allot/' <<<"$out" && ok || bad "log monitor did not say OK"
grep -q '^rate gpu_seconds class h100: - -> 0.03$' <<<"$out" && ok || bad "charter validate did not show the new rate"
grep -q '^provider cscs: added$' <<<"$out" && ok || bad "charter validate did not show the new provider"
grep -q '^charter local-commons version 2 applied' <<<"$out" && ok || bad "charter apply did not apply version 2"
tr -d '\r' <<<"$out" | grep -q '^epfl/climate,2026-12-01,219.6,2$' && ok || bad "the report has no epfl/climate row of 219.6 credits"
# 7200 GPU-s x 0.03 + 36000 CPU-s x 0.0001, before any gated call
block4=$(awk '/^--- README block 4/,/^--- README block 5/' <<<"$out")
grep -qE '^project +epfl/climate +4000 +0 +219\.6 ' <<<"$block4" && ok || bad "quota show does not show 219.6 used by epfl/climate"
if [ "$have_model" = 1 ]; then
	grep -q '"choices"' <<<"$out" && ok || bad "the gated chat call answered no choices"
fi
e2e_done
