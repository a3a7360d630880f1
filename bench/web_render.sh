#!/bin/bash
# web_render.sh [INSTITUTIONS] [RECORDS] — how long the dashboard's pages take
# to render in headless chromium against a deployment of INSTITUTIONS
# institutions (default 100) and RECORDS signed usage records (default
# 20000), seeded as tests/e2e/test_web.sh seeds (tests/e2e/web/seed.sh).
# Prints figures (milliseconds from navigation to the page's data on screen,
# median of 5 loads); asserts nothing.  Run: make bench-web (docs/DASHBOARD.md).
set -u
cd "$(dirname "$0")/.."
. tests/e2e/lib.sh
E2E_ROOT=$(pwd) # lib.sh finds the root from $0, which is not under tests/e2e here
BIN=${ALLOT_BIN_DIR:-$E2E_ROOT/bin}
. tests/e2e/web/seed.sh
INSTS=${1:-100} RECORDS=${2:-20000}
[ -f tests/e2e/web/node_modules/puppeteer-core/package.json ] ||
	(cd tests/e2e/web && npm install --no-audit --no-fund --no-package-lock --loglevel=error) || exit 1
t0=$(date +%s)
web_seed "$INSTS" "$RECORDS" || exit 1
echo "web_render: seeded $INSTS institutions, $RECORDS records in $(($(date +%s) - t0)) s"
cat >"$E2E_DIR/render.mjs" <<'JS'
import puppeteer from 'puppeteer-core';
const [url, ...pairs] = process.argv.slice(2);
const b = await puppeteer.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
for (const pair of pairs) {
  const [label, cred, hash] = pair.split('|');
  const times = [];
  for (let i = 0; i < 5; i++) {
    const p = await b.newPage();
    await p.goto(`${url}/ui/icon.svg`); // any page of the origin, to sign in through sessionStorage
    await p.evaluate((c) => sessionStorage.setItem('allot.credential', c), cred);
    const t = performance.now();
    await p.goto(`${url}/${hash}`);
    await p.waitForSelector('#page [data-ready="1"]', { timeout: 120000 });
    times.push(performance.now() - t);
    await p.close();
  }
  times.sort((a, c) => a - c);
  console.log(`web_render: ${label}: median ${times[2].toFixed(0)} ms (min ${times[0].toFixed(0)}, max ${times[4].toFixed(0)})`);
}
await b.close();
JS
cp "$E2E_DIR/render.mjs" tests/e2e/web/.render-bench.mjs
node tests/e2e/web/.render-bench.mjs "$URL" "institution page (institution key)|$IKEY|#quotas" \
	"institution page (admin, $INSTS institutions)|$ADMIN_KEY|#quotas" "auditor page (report + verification)|$AKEY|#audit"
rc=$?
rm -f tests/e2e/web/.render-bench.mjs
e2e_stop
rm -rf "$E2E_DIR"
exit $rc
