#!/usr/bin/env bash
# test_cors_origins.sh — the --cors-origins list (docs/OPERATIONS.md,
# "Browsers on other origins"): "*" listed with named origins (or twice) is
# refused at start with one line that says why, before anything is created;
# "*" alone and a list of origins still start, and a preflight is answered
# as each says.
. "$(dirname "$0")/lib.sh"
e2e_cscs_charter cors-origins
MSG='"*" allows every origin and cannot be listed with others; give "*" alone, or only the origins'
for list in '*,https://a.example' 'https://a.example,*' 'https://a.example,*,http://localhost:3000' '*,*'; do
	out=$("$BIN/allotd" --listen 127.0.0.1:"$(e2e_free_port)" --db "$E2E_DIR/no.db" \
		--keys "$E2E_DIR/nokeys" --charter "$E2E_DIR/charter.yaml" --cors-origins "$list" 2>&1)
	check "'$list' refused" "1 allotd: --cors-origins \"$list\": $MSG" "$? $out"
	out=$(ALLOT_CORS_ORIGINS=$list "$BIN/allotd" --check 2>&1)
	check "'$list' refused by --check too (ALLOT_CORS_ORIGINS)" "1 allotd: --cors-origins \"$list\": $MSG" "$? $out"
done
[ -e "$E2E_DIR/no.db" ] || [ -e "$E2E_DIR/nokeys" ] && bad "a refused start created files" || ok

# preflight ORIGIN: the status of a preflight of POST /v1/chat/completions
preflight() {
	curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H "Origin: $1" \
		-H 'Access-Control-Request-Method: POST' "$URL/v1/chat/completions"
}
e2e_start --charter "$E2E_DIR/charter.yaml" --cors-origins '*' || exit 1
check "'*' alone: any origin" 204 "$(preflight https://anything.example)"
e2e_stop
e2e_start --charter "$E2E_DIR/charter.yaml" --cors-origins 'https://a.example,http://localhost:3000' || exit 1
check "a list: a listed origin" 204 "$(preflight http://localhost:3000)"
check "a list: another origin" 403 "$(preflight https://b.example)"
e2e_done
