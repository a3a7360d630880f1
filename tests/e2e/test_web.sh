#!/bin/bash
# The dashboard and the public page (issue #16, docs/DASHBOARD.md): the
# embedded files are served with a strict Content-Security-Policy, ETags and
# no cookies; /public follows the charter's `public:`; then headless Debian
# chromium, driven by puppeteer-core (tests/e2e/web/, installed from npm on
# first use like tests/e2e/openai), signs in as every role
# (tests/e2e/web/web.test.mjs).  Screenshots are kept in build/web-shots/.
. "$(dirname "$0")/lib.sh"
DIR=$E2E_ROOT/tests/e2e/web
. "$DIR/seed.sh"

web_seed 3 60 || { bad "seeding failed"; e2e_done; exit 1; }

# --- headers ---
hdrs() { curl -s -D - -o "$E2E_DIR/body" "$@" | tr -d '\r'; }
H=$(hdrs "$URL/")
check "GET / status" "HTTP/1.1 200 OK" "$(printf '%s\n' "$H" | head -1)"
CSP=$(printf '%s\n' "$H" | sed -n 's/^Content-Security-Policy: //p')
case $CSP in *"default-src 'none'"*"script-src 'self'"*"style-src 'self'"*"frame-ancestors 'none'"*) ok ;; *) bad "CSP: [$CSP]" ;; esac
case $CSP in *unsafe-inline* | *unsafe-eval* | *http:* | *https:*) bad "CSP allows too much: [$CSP]" ;; *) ok ;; esac
check "text/html" "text/html; charset=utf-8" "$(printf '%s\n' "$H" | sed -n 's/^Content-Type: //p')"
check "nosniff" "nosniff" "$(printf '%s\n' "$H" | sed -n 's/^X-Content-Type-Options: //p')"
check "HTML is revalidated" "no-cache" "$(printf '%s\n' "$H" | sed -n 's/^Cache-Control: //p')"
printf '%s\n' "$H" | grep -qi '^Set-Cookie' && bad "a cookie was set" || ok
grep -q '<script' "$E2E_DIR/body" && ! grep -q '<script>' "$E2E_DIR/body" && ok || bad "index.html has an inline script"
ETAG=$(printf '%s\n' "$H" | sed -n 's/^ETag: //p')
case $ETAG in \"[0-9a-f]*\") ok ;; *) bad "strong ETag: [$ETAG]" ;; esac
check "If-None-Match gives 304" 304 "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$URL/")"
check "app.js type" "text/javascript; charset=utf-8" "$(hdrs "$URL/ui/app.js" | sed -n 's/^Content-Type: //p')"
check "app.js is the file" "$(sha256sum <"$E2E_ROOT/service/web/app.js")" "$(sha256sum <"$E2E_DIR/body")"
check "unknown file" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/ui/nope.js")"
check "no path escapes" 404 "$(curl -s -o /dev/null -w '%{http_code}' --path-as-is "$URL/ui/../allot.db")"
check "POST / refused" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/")"
req GET /v1/me "$IKEY"
check "/v1/me of an institution key" "institution epfl Europe/Zurich" "$(jget '"\(.role) \(.institution) \(.timezone)"')"
req GET /v1/me ""
check "/v1/me needs a credential" 401 "$STATUS"
# GET /v1/me/usage: provider keys and member tokens read their own records
# only (the provider and member pages); GET /v1/usage stays as SPEC 4 says
req GET "/v1/me/usage?limit=1000" "$PKEY"
check "a provider lists its records" "200 cscs 60" "$STATUS $(jget '[.records[].provider] | unique | join(",")') $(jget '.records | length')"
req GET "/v1/me/usage?provider=other" "$PKEY"
check "a provider may not read another's" 403 "$STATUS"
req GET "/v1/usage" "$PKEY"
check "GET /v1/usage is not for providers" 403 "$STATUS"
TOK=$(ALLOT_KEY=$IKEY "$BIN/allot" token mint --institution epfl --project climate --member bob@epfl.ch 2>>"$E2E_DIR/cli.log")
req GET "/v1/me/usage?limit=1000" "$TOK"
check "a member lists its own records" "200 epfl/climate/bob@epfl.ch" "$STATUS $(jget '[.records[] | "\(.institution)/\(.project)/\(.member)"] | unique | join(",")')"
req GET "/v1/me/usage?member=alice@epfl.ch" "$TOK"
check "a member may not read another's" 403 "$STATUS"
req GET "/v1/me/usage" "$IKEY"
check "/v1/me/usage is not for institution keys (they have /v1/usage)" 403 "$STATUS"
req GET "/v1/reports/usage" "$TOK"
check "a member gets no reports" 403 "$STATUS"

# --- GET /v1/reports/daily: charges per local day from the bucket totals,
# the same figures as the report over the records ---
FROM=$(TZ=Europe/Zurich date -d '-40 days' +%F) TO=$(TZ=Europe/Zurich date -d '+1 day' +%F)
daily_vs_report() { # LABEL KEY DAILY-QUERY REPORT-GROUPS FIELD
	local d r
	d=$(curl -s -H "Authorization: Bearer $2" "$URL/v1/reports/daily?from=$FROM&to=$TO&$3" |
		jq -c "[.rows[] | {d: .day, k: (.$5 // \"\"), c: .charge}] | sort")
	r=$(curl -s -H "Authorization: Bearer $2" "$URL/v1/reports/usage?from=$FROM&to=$TO&group_by=$4" |
		jq -c "[.rows[] | {d: .day, k: (.$5 // \"\"), c: .charge}] | sort")
	case $d in '[]' | '') bad "$1: no rows ($d)" ;; *) check "$1" "$r" "$d" ;; esac
}
daily_vs_report "daily by project = report day,project" "$IKEY" "institution=epfl&by=project" "day,project&institution=epfl" project
daily_vs_report "daily by member = report day,member" "$IKEY" "institution=epfl&by=member" "day,member&institution=epfl" member
daily_vs_report "daily of the institution = report day" "$IKEY" "institution=epfl" "day&institution=epfl" none
daily_vs_report "daily of a project = its report" "$IKEY" "project=epfl/climate&by=member" "day,member&project=epfl/climate" member
daily_vs_report "daily of the pool by institution = report day,institution" "$AKEY" "by=institution" "day,institution" institution
req GET "/v1/reports/daily?institution=epfl&from=$FROM&to=$TO" "$IKEY"
check "daily total = report total" \
	"$(curl -s -H "Authorization: Bearer $IKEY" "$URL/v1/reports/usage?from=$FROM&to=$TO&institution=epfl" | jq -r .total.charge)" \
	"$(jget .total.charge)"
check "daily names its zone" "Europe/Zurich" "$(jget .timezone)"
req GET "/v1/reports/daily?institution=inst002&from=$FROM&to=$TO" "$IKEY"
check "daily: an institution key reads its own only" 403 "$STATUS"
req GET "/v1/reports/daily?from=$FROM&to=$TO" "$TOK"
check "daily: not for member tokens" 403 "$STATUS"
req GET "/v1/reports/daily?from=$FROM&to=$TO" "$PKEY"
check "daily: not for provider keys" 403 "$STATUS"
for q in "from=$FROM" "to=$TO" "from=$FROM&to=$TO&by=provider" "from=$FROM&to=$TO&provider=cscs" \
	"from=2026-12-01T00:07:00Z&to=$TO" "from=2020-01-01&to=2022-01-01" "from=$TO&to=$FROM" \
	"from=$FROM&to=$TO&project=climate" "from=$FROM&to=$TO&by=day"; do
	req GET "/v1/reports/daily?$q" "$AKEY"
	check "daily refuses $q" 400 "$STATUS"
done

# --- /public: the charter says public: true ---
req GET /public.json ""
check "public.json" 200 "$STATUS"
check "public pool use equals the pool level's used" \
	"$(curl -s -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/quotas/epfl" | jq -r '.levels[] | select(.level == "pool") | .used')" \
	"$(jget .pool.used)"
check "public sums equal the report's" \
	"$(curl -s -H "Authorization: Bearer $ADMIN_KEY" "$URL/v1/reports/usage?group_by=institution,month&from=2000-01-01&to=2100-01-01" | jq -c '[.rows[] | {i: .institution, m: .month, c: .charge, r: .records}] | sort')" \
	"$(jget '[.institutions[] | .id as $i | .usage[] | {i: $i, m: .month, c: .charge, r: .records}] | sort' | jq -c .)"
check "public has a checkpoint" "allot/local" "$(jget .checkpoint | head -1)"
check "public page is HTML" "text/html; charset=utf-8" "$(hdrs "$URL/public" | sed -n 's/^Content-Type: //p')"
check "public with Accept: JSON" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/json' "$URL/public")"

# --- the browser ---
run_browser() {
	command -v node >/dev/null 2>&1 || { echo "test_web: SKIP the browser part: node is not installed"; return 0; }
	local chromium=${CHROMIUM:-$(command -v chromium || true)}
	[ -n "$chromium" ] || { echo "test_web: SKIP the browser part: Debian's chromium is not installed (scripts/deps.sh)"; return 0; }
	if [ ! -f "$DIR/node_modules/puppeteer-core/package.json" ]; then
		command -v npm >/dev/null 2>&1 || { echo "test_web: SKIP the browser part: npm is not installed"; return 0; }
		(cd "$DIR" && timeout 180 npm install --no-audit --no-fund --no-package-lock --loglevel=error) >"$E2E_DIR/npm.log" 2>&1 ||
			{ echo "test_web: SKIP the browser part: npm install failed: $(tail -2 "$E2E_DIR/npm.log" | tr '\n' ' ')"; return 0; }
	fi
	echo "test_web: puppeteer-core $(jq -r .version "$DIR/node_modules/puppeteer-core/package.json"), $("$chromium" --version 2>/dev/null)"
	SHOTS=$E2E_ROOT/build/web-shots
	mkdir -p "$SHOTS" "$E2E_DIR/downloads"
	if URL=$URL SHOTS=$SHOTS DOWNLOADS=$E2E_DIR/downloads CHROMIUM=$chromium IKEY=$IKEY AKEY=$AKEY \
		PKEY=$PKEY ADMIN_KEY=$ADMIN_KEY CHARTER=$E2E_DIR/charter.yaml \
		timeout 240 node "$DIR/web.test.mjs"; then ok; else bad "the browser test (see above)"; fi
}
run_browser

# --- /public is 404 once the charter stops publishing ---
sed 's/^public: true/public: false/; s/^version: 2/version: 3/; s/^version: 1/version: 3/' "$E2E_DIR/charter.yaml" >"$E2E_DIR/private.yaml"
req PUT /v1/charter "$ADMIN_KEY" application/yaml "$E2E_DIR/private.yaml"
check "apply a private charter" 200 "$STATUS"
req GET /public ""
check "/public of a private commons" 404 "$STATUS"
req GET /public.json ""
check "/public.json of a private commons" 404 "$STATUS"

e2e_done
