#!/bin/bash
# web_render.sh [INSTITUTIONS] [RECORDS] [DAYS] — how long the dashboard's
# pages take against a deployment of INSTITUTIONS institutions (default
# 100) and RECORDS signed usage records (default 1,000,000) ending over the
# last DAYS days (default: this month so far in the charter's zone, so that
# every record is in the period the institution page shows: a month's worth
# of records at its end, the worst case).  bench/web_seed writes the charter
# (projects, members, three providers) and books the records through the
# store's ledger_insert into the database before allotd opens it (the rows,
# bucket totals, bounds and log leaves ingestion writes); WEB_SEED_MODE=post
# sends them signed through POST /v1/usage in batches of 1,000 instead
# (realistic, but far slower on a loaded machine).
# Prints, with the load average: the seeding rate; the median time of each
# API call the pages make (curl, WEB_BENCH_RUNS times, default 5); the
# median of WEB_BENCH_RUNS browser loads of each page, from navigation to
# its data on screen (headless chromium), and of switching the institution
# page's chart to the records' report by provider.  Asserts nothing.
# Run: make bench-web [WEB_BENCH_ARGS="100 20000"] (docs/DASHBOARD.md).
set -u
cd "$(dirname "$0")/.."
. tests/e2e/lib.sh
E2E_ROOT=$(pwd) # lib.sh finds the root from $0, which is not under tests/e2e here
BIN=${ALLOT_BIN_DIR:-$E2E_ROOT/bin}
SEED=${WEB_SEED:-$E2E_ROOT/build/bench/web_seed}
INSTS=${1:-100} RECORDS=${2:-1000000} RUNS=${WEB_BENCH_RUNS:-5}
TZ_C=Europe/Zurich
if [ -n "${3:-}" ]; then
	SPAN=$(($3 * 86400))
else
	SPAN=$(($(date +%s) - $(TZ=$TZ_C date -d "$(TZ=$TZ_C date +%Y-%m-01)" +%s) - 300))
	[ "$SPAN" -ge 3600 ] || SPAN=3600
fi
[ -x "$SEED" ] || { echo "web_render: $SEED is missing (make build/bench/web_seed)" >&2; exit 1; }
[ -f tests/e2e/web/node_modules/puppeteer-core/package.json ] ||
	(cd tests/e2e/web && npm install --no-audit --no-fund --no-package-lock --loglevel=error) || exit 1
load() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"; }
finish() {
	e2e_stop
	rm -f tests/e2e/web/.render-bench.mjs
	rm -rf "$E2E_DIR"
}
trap finish EXIT

"$SEED" charter "$E2E_DIR" "$INSTS" "$RECORDS" || exit 1
echo "web_render: $(load) before seeding"
t0=$(date +%s)
if [ "${WEB_SEED_MODE:-load}" = post ]; then # signed, through POST /v1/usage
	e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
	for p in cscs lumi ovh; do
		e2e_api_key "{\"role\":\"provider\",\"provider\":\"$p\"}" >"$E2E_DIR/$p.apikey"
	done
	"$SEED" post "$E2E_DIR" "$URL" "$INSTS" "$RECORDS" "$SPAN" 2 || exit 1
else # booked through the store before allotd opens the database
	"$SEED" load "$E2E_DIR/allot.db" "$INSTS" "$RECORDS" "$SPAN" 2>"$E2E_DIR/seed.log" ||
		{ cat "$E2E_DIR/seed.log" >&2; exit 1; }
	e2e_start --charter "$E2E_DIR/charter.yaml" || exit 1
fi
IKEY=$(e2e_api_key '{"role":"institution","institution":"epfl"}')
AKEY=$(e2e_api_key '{"role":"auditor"}')
echo "web_render: seeded $INSTS institutions, $RECORDS records over $((SPAN / 3600)) hours" \
	"(${WEB_SEED_MODE:-load}) in $(($(date +%s) - t0)) s; $(load)"

# --- each API call the pages make, timed by curl (median of RUNS) ---
FROM=$(TZ=$TZ_C date +%Y-%m-01) TO=$(TZ=$TZ_C date -d '+1 day' +%F) AFROM=$(TZ=$TZ_C date -d '-30 days' +%F)
timed() { # LABEL KEY PATH
	local t=() i
	for i in $(seq 1 "$RUNS"); do
		t+=("$(curl -s -o "$E2E_DIR/t.body" -w '%{time_total}' -H "Authorization: Bearer $2" "$URL$3")")
	done
	printf 'web_render:   %-58s median %6.0f ms (min %.0f, max %.0f), %s bytes\n' "$1" \
		"$(printf '%s\n' "${t[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p" | awk '{print $1 * 1000}')" \
		"$(printf '%s\n' "${t[@]}" | sort -g | head -1 | awk '{print $1 * 1000}')" \
		"$(printf '%s\n' "${t[@]}" | sort -g | tail -1 | awk '{print $1 * 1000}')" "$(wc -c <"$E2E_DIR/t.body")"
}
echo "web_render: API calls ($RUNS each; $(load)):"
timed "/v1/me" "$IKEY" /v1/me
timed "/v1/quotas/epfl" "$IKEY" /v1/quotas/epfl
timed "/v1/reports/daily by project (the chart's default)" "$IKEY" \
	"/v1/reports/daily?institution=epfl&from=$FROM&to=$TO&by=project"
timed "/v1/reports/daily by member" "$IKEY" "/v1/reports/daily?institution=epfl&from=$FROM&to=$TO&by=member"
timed "/v1/reports/usage day,provider (the chart by provider)" "$IKEY" \
	"/v1/reports/usage?from=$FROM&to=$TO&group_by=day,provider&institution=epfl"
timed "/v1/reports/usage day,project (the same records)" "$IKEY" \
	"/v1/reports/usage?from=$FROM&to=$TO&group_by=day,project&institution=epfl"
timed "/v1/charter (the admin's institution picker)" "$ADMIN_KEY" /v1/charter
timed "/v1/reports/usage institution, 30 days (auditor page)" "$AKEY" \
	"/v1/reports/usage?from=$AFROM&to=$TO&format=json&group_by=institution"
timed "/v1/log/checkpoint" "$AKEY" /v1/log/checkpoint
timed "/v1/audit" "$AKEY" /v1/audit
curl -s -H "Authorization: Bearer $IKEY" "$URL/v1/reports/usage?from=$FROM&to=$TO&institution=epfl" |
	jq -r '"web_render: epfl has \(.total.records) records (\(.total.charge) credits) in this period"'

# --- the pages in the browser ---
cat >tests/e2e/web/.render-bench.mjs <<'JS'
import puppeteer from 'puppeteer-core';
const [url, runs, ...pairs] = process.argv.slice(2);
const n = Number(runs);
const b = await puppeteer.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
const line = (label, times) => {
  times.sort((a, c) => a - c);
  console.log(`web_render:   ${label}: median ${times[(n - 1) >> 1].toFixed(0)} ms (min ${times[0].toFixed(0)}, max ${times[n - 1].toFixed(0)})`);
};
for (const pair of pairs) {
  const [label, cred, hash] = pair.split('|');
  const times = [], stack = [];
  for (let i = 0; i < n; i++) {
    const p = await b.newPage();
    await p.goto(`${url}/ui/icon.svg`); // any page of the origin, to sign in through sessionStorage
    await p.evaluate((c) => sessionStorage.setItem('allot.credential', c), cred);
    const t = performance.now();
    await p.goto(`${url}/${hash}`);
    await p.waitForSelector('#page [data-ready="1"]', { timeout: 120000 });
    times.push(performance.now() - t);
    if (hash === '#quotas' && await p.$('select[name="stack"]')) {
      const t2 = performance.now();
      await p.select('select[name="stack"]', 'provider');
      await p.waitForSelector('table[data-table="daily"][data-by="provider"]', { timeout: 120000 });
      stack.push(performance.now() - t2);
    }
    await p.close();
  }
  line(label, times);
  if (stack.length === n) line(`${label}, chart switched to by provider`, stack);
}
await b.close();
JS
echo "web_render: pages in headless chromium ($RUNS loads each; $(load)):"
node tests/e2e/web/.render-bench.mjs "$URL" "$RUNS" "institution page (institution key)|$IKEY|#quotas" \
	"institution page (admin, $INSTS institutions)|$ADMIN_KEY|#quotas" \
	"auditor page (report + verification)|$AKEY|#audit"
rc=$?
echo "web_render: $(load) after"
exit $rc
