#!/usr/bin/env bash
# test_cli.sh — the CLI guides (issue 15): a 401 names ALLOT_KEY; charter
# errors name the FILE given; validate prints a readable diff; history and
# keys list are aligned tables with RFC 3339 times; --format json is honoured
# by usage submit, charter check, charter apply errors, keygen, log monitor
# and log key; token revoke --member as admin names --institution.
. "$(dirname "$0")/lib.sh"
A=$BIN/allot
e2e_start --charter "$E2E_ROOT/policies/default.yaml"
cd "$E2E_DIR"

# --- a 401 says how to get a key ---------------------------------------------
err=$(ALLOT_KEY= "$A" keys list 2>&1 >/dev/null); rc=$?
check "401 exit" 1 "$rc"
grep -q 'ALLOT_KEY' <<<"$err" && ok || bad "a 401 does not mention ALLOT_KEY: $err"
export ALLOT_KEY=$ADMIN_KEY

# --- charter errors name the file ------------------------------------------
printf 'charter: local-commons\nversion: [\n' >mine.yaml
err=$("$A" charter apply mine.yaml 2>&1 >/dev/null)
grep -q '^mine.yaml:3:1: ' <<<"$err" && ok || bad "apply errors do not name mine.yaml: $err"
grep -q 'charter.yaml' <<<"$err" && bad "apply errors still name charter.yaml: $err" || ok
err=$("$A" charter validate mine.yaml 2>&1 >/dev/null)
grep -q '^mine.yaml:3:1: ' <<<"$err" && ok || bad "validate errors do not name mine.yaml: $err"
j=$("$A" --format json charter apply mine.yaml 2>/dev/null); rc=$?
check "apply error exit" 1 "$rc"
check "apply error as JSON" "422 mine.yaml:3:1" \
	"$(jq -r '"\(.error.status) \(.error.errors[0] | split(": ")[0])"' <<<"$j" 2>&1)"

# --- validate: a readable diff ---------------------------------------------
sed 's/^version: 1/version: 2/; s/credits: 0.0003}/credits: 0.003}/; s/members: \[alice@epfl.ch, bob@epfl.ch\]/members: [alice@epfl.ch]/; s/overage: {mode: soft, grace_percent: 10}/overage: {mode: hard}/; s/requests_per_minute: 300,/requests_per_minute: 30,/' \
	"$E2E_ROOT/policies/default.yaml" >v2.yaml
out=$("$A" charter validate v2.yaml 2>&1); rc=$?
check "validate exit" 0 "$rc"
for line in 'rate tokens_out model stories: 0.0003 -> 0.003' 'institution epfl: changed' \
	'    members: -bob@epfl.ch' 'institution unige: changed' \
	'  limit requests_per_minute: 300 -> 30' '  overage: soft (grace 10%) -> hard'; do
	grep -qxF -- "$line" <<<"$out" && ok || bad "validate text lacks [$line]: $out"
done
grep -q '^ *[{}]' <<<"$out" && bad "validate prints raw JSON: $out" || ok
check "validate JSON: removed member" "bob@epfl.ch" \
	"$("$A" --format json charter validate v2.yaml | jq -r '.changes.institutions[] | select(.id=="epfl") | .projects[0].members.removed[0]')"
"$A" charter apply v2.yaml >/dev/null && ok || bad "apply v2"

# --- aligned tables, RFC 3339 times ---------------------------------------------
aligned() { # every row has its second column where the header has it
	awk '{ match($0, /^[^ ]+ +/) } NR==1 { p = RLENGTH } NR>1 && RLENGTH != p { bad = 1 } END { exit bad }'
}
hist=$("$A" charter history)
check "history rows" 3 "$(wc -l <<<"$hist")"
aligned <<<"$hist" && ok || bad "history columns misaligned: $hist"
"$A" keys create --role auditor --label "a long label here" >/dev/null 2>&1
keys=$("$A" keys list)
aligned <<<"$keys" && ok || bad "keys list misaligned: $keys"
grep -qE '^admin_[0-9a-f]+ +admin +- +20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z ' <<<"$keys" && ok ||
	bad "keys list has no RFC 3339 created time: $keys"
check "keys list JSON" admin "$("$A" --format json keys list | jq -r '.keys[0].role')"

# --- --format json everywhere ---------------------------------------------------
check "charter check JSON (valid)" true "$("$A" --format json charter check v2.yaml | jq -r .valid)"
check "charter check JSON (errors)" "false mine.yaml:3:1" \
	"$("$A" --format json charter check mine.yaml | jq -r '"\(.valid) \(.errors[0] | split(": ")[0])"')"
check "keygen JSON" ed25519: "$("$A" --format json keygen --out p.key | jq -r '.public_key[0:8]')"
printf '{"record_id":"x"}\n' >bad.jsonl
PROV=$("$A" keys create --role provider --provider local 2>/dev/null)
j=$(ALLOT_KEY=$PROV "$A" --format json usage submit bad.jsonl 2>/dev/null)
check "usage submit JSON (one refused)" "0 1" "$(jq -r '"\(.accepted) \(.refused)"' <<<"$j" 2>&1)"
j=$(ALLOT_KEY=$ADMIN_KEY "$A" --format json usage submit bad.jsonl 2>/dev/null)
check "usage submit JSON (refused key)" "403" "$(jq -r '.error.status' <<<"$j" 2>&1)"
check "log key" "$(curl -s "$URL/v1/log/key" | jq -r .key)" "$("$A" log key)"
check "log monitor JSON" ok "$("$A" --format json log monitor --state w.state | jq -r .result)"
check "log monitor JSON again" ok "$("$A" --format json log monitor --state w.state | jq -r .result)"
# log verify --since takes a JSON file holding a checkpoint (the monitor's state)
"$A" log export --out x.json
v=$("$A" log verify x.json --key "$("$A" log key)" --since w.state 2>&1); check "verify --since a state file" 0 "$?"
grep -q '^OK: consistent with the earlier checkpoint' <<<"$v" && ok || bad "verify --since w.state: $v"
printf '{"x":1}\n' >nocp.json
err=$("$A" log verify x.json --key "$("$A" log key)" --since nocp.json 2>&1); check "verify --since JSON without a note" 2 "$?"
grep -q -- '--since nocp.json: a JSON file without a "checkpoint" note' <<<"$err" && ok || bad "--since message: $err"
# quota show: an aligned table with right-aligned amounts
q=$("$A" quota show epfl/climate)
aligned <<<"$q" && ok || bad "quota show misaligned: $q"
# where the 5th column (USED) ends, on every line: one place
ends=$(awk '{ p = 0; l = $0; for (i = 1; i <= 5; i++) { match(l, /[^ ]+/); p += RSTART + RLENGTH - 1; l = substr(l, RSTART + RLENGTH) } print p }' <<<"$q" | sort -u | wc -l)
check "quota amounts right-aligned" 1 "$ends"

# --- token revoke --member as admin ---------------------------------------------
err=$("$A" token revoke --member alice@epfl.ch 2>&1 >/dev/null); rc=$?
check "revoke --member without --institution exit" 1 "$rc"
grep -q -- '--institution' <<<"$err" && ok || bad "revoke --member does not name --institution: $err"
"$A" token revoke --member alice@epfl.ch --institution epfl >/dev/null && ok || bad "revoke with --institution"
e2e_done
