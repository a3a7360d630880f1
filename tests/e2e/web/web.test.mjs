// web.test.mjs — the dashboard in headless Debian chromium (puppeteer-core),
// run by tests/e2e/test_web.sh against a seeded allotd.  Every role signs in;
// numbers on screen are compared with what the API answers; the exported CSV
// byte for byte; a token is minted and revoked from the page and used; an
// invalid charter shows each error at its line; the auditor's verification
// turns red on an altered record and on a shrunk log.  Any console error,
// page error or CSP violation fails the test.  Screenshots go to SHOTS.
import puppeteer from 'puppeteer-core';
import fs from 'node:fs';
import path from 'node:path';

const E = process.env;
const URL = E.URL, SHOTS = E.SHOTS, DL = E.DOWNLOADS;
let pass = 0, fail = 0;
const ok = (cond, what) => {
  if (cond) pass++;
  else { fail++; console.error(`FAIL [test_web]: ${what}`); }
};
const eq = (want, got, what) => ok(JSON.stringify(want) === JSON.stringify(got), `${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);

async function api(p, key, opts = {}) {
  const r = await fetch(URL + p, { ...opts, headers: { Authorization: `Bearer ${key}`, ...(opts.headers || {}) } });
  const text = await r.text();
  return { status: r.status, text, json: (() => { try { return JSON.parse(text); } catch { return null; } })() };
}

const browser = await puppeteer.launch({
  executablePath: E.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
});
const problems = [];

async function newPage(name) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 900 });
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'assert') problems.push(`${name}: console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`${name}: request failed: ${r.url()} ${r.failure()?.errorText}`));
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  return page;
}

async function signIn(page, cred, hash = '') {
  await page.goto(`${URL}/${hash}`);
  await page.waitForSelector('#cred', { visible: true });
  await page.type('#cred', cred);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#page [data-ready="1"]', { timeout: 30000 });
}

// record_id column of the page's "records" table = the API's latest 50 of 7 days
async function recordsMatch(page, key, query, what) {
  const from = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Zurich' }).format(new Date(Date.now() - 7 * 86400000));
  const r = (await api(`/v1/me/usage?${query}&from=${from}&limit=1000`, key)).json;
  const want = r.records.slice(-50).reverse().map((x) => x.record_id);
  const got = await page.$$eval('table[data-table="records"] td[data-field="record_id"]', (tds) => tds.map((t) => t.textContent));
  eq(want, got, what);
  return want.length;
}
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

// ---- institution: quota bars, daily usage, drill-down, mint and revoke ------
{
  const page = await newPage('institution');
  await signIn(page, E.IKEY);
  const q = (await api('/v1/quotas/epfl', E.IKEY)).json;
  for (const l of [...q.levels, ...q.projects]) {
    const shown = await page.$$eval(`.quota[data-id="${l.id}"][data-level="${l.level}"] dd`, (dds) =>
      Object.fromEntries(dds.map((d) => [d.dataset.field, d.textContent])));
    eq({ used: l.used, reserved: l.reserved, allocation: l.allocation, rollover: l.rollover, remaining: l.remaining },
      shown, `quota figures of ${l.level} ${l.id}`);
  }
  const resets = await texts(page, '.quota[data-level="institution"] [data-field="resets"]');
  const localEnd = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Zurich' }).format(new Date(q.levels[0].period_end));
  eq([`resets on ${localEnd}`], resets, 'reset date in the charter zone');
  ok((await texts(page, '[data-field="projection"]'))[0]?.startsWith('At this rate'), 'run-rate projection shown');
  // daily usage table = the API's report
  const lvl = q.levels.find((l) => l.level === 'institution');
  const from = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Zurich' }).format(new Date(lvl.period_start));
  const to = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Zurich' }).format(new Date(Date.now() + 86400000));
  const dailyRows = (by) => page.$$eval(`table[data-table="daily"][data-by="${by}"] tbody tr`,
    (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  // by project (the default): the bucket totals of /v1/reports/daily, which
  // equal the report over the records
  const dd = (await api(`/v1/reports/daily?institution=epfl&from=${from}&to=${to}&by=project`, E.IKEY)).json;
  eq(dd.rows.map((r) => [r.day, r.project, r.charge]), await dailyRows('project'), 'daily usage rows by project');
  ok(dd.rows.length > 0, 'this period has usage');
  const byProj = (await api(`/v1/reports/usage?from=${from}&to=${to}&group_by=day,project&institution=epfl`, E.IKEY)).json;
  const sorted = (rows) => rows.map((r) => JSON.stringify([r.day, r.project, r.charge])).sort();
  eq(sorted(byProj.rows), sorted(dd.rows), 'daily totals from the buckets = the report over the records');
  ok((await page.$$('figure.chart svg rect')).length >= dd.rows.length, 'daily chart drawn');
  // by provider: the report over the records, with their counts
  await page.select('select[name="stack"]', 'provider');
  const rep = (await api(`/v1/reports/usage?from=${from}&to=${to}&group_by=day,provider&institution=epfl`, E.IKEY)).json;
  await page.waitForSelector('table[data-table="daily"][data-by="provider"]');
  eq(rep.rows.map((r) => [r.day, r.provider, r.charge, String(r.records)]), await dailyRows('provider'), 'daily usage rows by provider');
  await page.select('select[name="stack"]', 'project');
  await page.waitForSelector('table[data-table="daily"][data-by="project"]');
  // drill-down to the members of climate
  await page.click('[data-drill-button="climate"]');
  await page.waitForSelector('[data-drill="climate"] .quota[data-level="member"]');
  const qm = (await api('/v1/quotas/epfl/climate', E.IKEY)).json;
  const memUsed = await texts(page, '[data-drill="climate"] .quota[data-level="member"] dd[data-field="used"]');
  eq(qm.members.map((m) => m.used), memUsed, 'member drill-down figures');
  await shot(page, 'institution');
  // readable on a phone: nothing wider than the screen but the tables' own scrollers
  await page.setViewport({ width: 390, height: 844 }); // isMobile would reload the page
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  ok(wide <= 390, `the institution page fits a 390 px phone screen (scrollWidth ${wide})`);
  await shot(page, 'institution-phone');
  await page.setViewport({ width: 1100, height: 900 });
  // mint a token from the page and use it
  await page.select('form[data-form="mint"] select', 'climate');
  await page.type('form[data-form="mint"] input[type="text"]', 'alice@epfl.ch');
  await page.click('form[data-form="mint"] button[type="submit"]');
  await page.waitForSelector('[data-field="token"]');
  const token = (await texts(page, '[data-field="token"]'))[0];
  const jti = (await texts(page, '[data-field="jti"]'))[0];
  ok(token.startsWith('v4.public.'), 'a minted token is shown');
  eq(200, (await api('/v1/quotas/me', token)).status, 'the minted token works');
  // the member's page with it
  const mp = await newPage('member');
  await signIn(mp, token);
  const me = (await api('/v1/quotas/me', token)).json;
  for (const l of me.levels) {
    const used = await texts(mp, `.quota[data-level="${l.level}"][data-id="${l.id}"] dd[data-field="remaining"]`);
    eq([l.remaining], used, `member page: remaining at ${l.level}`);
  }
  ok(await recordsMatch(mp, token, '', 'member page: recent records') > 0, 'the member has recent records');
  await shot(mp, 'member');
  await mp.close();
  // revoke it from the page
  await page.type('form[data-form="revoke"] input', jti);
  await page.click('form[data-form="revoke"] button[type="submit"]');
  await page.waitForSelector('[data-field="revoked"] p');
  ok((await texts(page, '[data-field="revoked"] p.ok')).length === 1, 'revocation confirmed on the page');
  eq(401, (await api('/v1/quotas/me', token)).status, 'the revoked token is refused');
  await page.close();
}

// ---- auditor: report, CSV export byte for byte, log verification ------------
{
  const page = await newPage('auditor');
  const cdp = await page.createCDPSession();
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: DL });
  await signIn(page, E.AKEY);
  await page.waitForSelector('table[data-table="report"]');
  const from = await page.$eval('form[data-form="report"] input[type="date"]', (e) => e.value);
  const to = await page.$$eval('form[data-form="report"] input[type="date"]', (e) => e[1].value);
  const rep = (await api(`/v1/reports/usage?from=${from}&to=${to}&format=json&group_by=institution`, E.AKEY)).json;
  eq([rep.total.charge, String(rep.total.records)],
    [...await texts(page, '[data-field="total-charge"]'), ...await texts(page, '[data-field="total-records"]')], 'report totals');
  const rows = await page.$$eval('table[data-table="report"] tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  eq(rep.rows.map((r) => [r.institution, r.charge, String(r.records)]), rows, 'report rows');
  await page.click('button[data-export="csv"]');
  const file = path.join(DL, `usage-${from}-${to}.csv`);
  for (let i = 0; i < 100 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
  const csv = (await api(`/v1/reports/usage?from=${from}&to=${to}&format=csv&group_by=institution`, E.AKEY)).text;
  ok(fs.existsSync(file) && fs.readFileSync(file, 'utf8') === csv, 'exported CSV equals the API\'s byte for byte');
  // verification: good first
  const verdict = () => page.$eval('[data-verdict]', (e) => e.dataset.verdict);
  await page.waitForFunction(() => document.querySelector('[data-verdict]')?.dataset.verdict !== 'pending');
  eq('good', await verdict(), 'log verified');
  const proofs = await texts(page, 'table[data-table="log"] td[data-field="proof"]');
  ok(proofs.length === 20 && proofs.every((p) => p === 'included'), 'every entry on screen proved included');
  await shot(page, 'auditor');
  const oldNote = (await api('/v1/log/checkpoint', E.AKEY)).text;
  // the log grows (an admin action is a leaf); the next check is consistent
  await api('/v1/keys', E.ADMIN_KEY, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"role":"auditor"}' });
  await new Promise((r) => setTimeout(r, 5200)); // the checkpoint cache re-signs after 5 s
  const again = async () => {
    await page.evaluate(() => { document.querySelector('[data-verdict]').dataset.verdict = 'pending'; });
    await page.$$eval('button', (bs) => bs.find((b) => b.textContent === 'Verify again').click());
    await page.waitForFunction(() => document.querySelector('[data-verdict]')?.dataset.verdict !== 'pending');
    return verdict();
  };
  eq('good', await again(), 'a grown log is consistent with the one seen before');
  ok((await texts(page, '[data-section="verify"] li')).some((t) => t.startsWith('Consistent with the checkpoint')), 'consistency checked');
  // a proxy alters one record's charge on its way to the browser
  await page.setRequestInterception(true);
  let mode = 'tamper';
  page.on('request', async (r) => {
    const u = new globalThis.URL(r.url());
    if (mode === 'tamper' && u.pathname === '/v1/log/entries') {
      const real = await api(u.pathname + u.search, E.AKEY);
      const j = real.json;
      const e = j.entries.find((x) => x.type === 'usage');
      e.data = e.data.replace(/"charge":"[0-9.]+"/, '"charge":"0.01"');
      return r.respond({ status: 200, contentType: 'application/json', body: JSON.stringify(j) });
    }
    if (mode === 'shrink' && u.pathname === '/v1/log/checkpoint')
      return r.respond({ status: 200, contentType: 'text/plain; charset=utf-8', body: oldNote });
    return r.continue();
  });
  eq('bad', await again(), 'an altered record turns the verification red');
  ok((await texts(page, '[data-section="verify"] li.error')).some((t) => t.includes('does not match the signed log')), 'the altered leaf is named');
  await shot(page, 'auditor-tampered');
  mode = 'shrink';
  eq('bad', await again(), 'a shrunk log turns the verification red');
  ok((await texts(page, '[data-section="verify"] li.error')).some((t) => t.startsWith('the log shrank')), 'the shrink is named');
  mode = 'none';
  eq('good', await again(), 'the real log verifies again');
  await page.close();
}

// ---- admin: invalid charter errors at their lines, diff, apply, history ----
{
  const page = await newPage('admin');
  await signIn(page, E.ADMIN_KEY, '#charter');
  const bad = 'charter: web-commons\nversion: 2\ncolour: blue\neffective: 2026-01-01T00:00:00Z\ntimezone: Mars/Olympus\n';
  await page.$eval('#charter-text', (t, v) => { t.value = v; }, bad);
  await page.click('button[data-action="validate"]');
  await page.waitForSelector('[data-field="annotated"]');
  const v = (await api('/v1/charter/validate', E.ADMIN_KEY, { method: 'POST', headers: { 'Content-Type': 'application/yaml' }, body: bad })).json;
  ok(v.errors.length >= 2, 'the invalid charter has several errors');
  for (const err of v.errors) {
    const m = /:(\d+):(\d+): (.*)$/.exec(err);
    const shown = await texts(page, `[data-error-line="${m[1]}"][data-error-col="${m[2]}"]`);
    ok(shown.some((s) => s.includes(`line ${m[1]}, column ${m[2]}: ${m[3]}`)), `error shown at line ${m[1]}: ${m[3]}`);
  }
  await shot(page, 'admin-errors');
  const good = fs.readFileSync(E.CHARTER, 'utf8').replace('version: 1', 'version: 2').replace('credits: 30000, period: month', 'credits: 31000, period: month');
  await page.$eval('#charter-text', (t, val) => { t.value = val; }, good);
  await page.click('button[data-action="validate"]');
  await page.waitForSelector('table[data-table="diff"]');
  const diff = await page.$$eval('table[data-table="diff"] tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  ok(diff.some((r) => r[0] === 'epfl/vision' && r[4] === '+1000'), `the diff shows epfl/vision +1000 (${JSON.stringify(diff)})`);
  await page.click('button[data-action="apply"]');
  await page.waitForSelector('[data-field="applied"]');
  eq(2, (await api('/v1/charter', E.ADMIN_KEY)).json.version, 'the charter applied from the page is active');
  const hist = await page.$$eval('table[data-table="history"] tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
  eq(['2', '1'], hist, 'history lists both versions');
  await shot(page, 'admin');
  await page.close();
}

// ---- provider: sequence figures ---------------------------------------------
{
  const page = await newPage('provider');
  await signIn(page, E.PKEY);
  const s = (await api('/v1/providers/cscs/sequence', E.PKEY)).json;
  for (const k of ['records', 'min_seq', 'max_seq', 'gap_count', 'missing']) eq([String(s[k])], await texts(page, `dd[data-field="${k}"]`), `provider ${k}`);
  ok(s.gap_count > 0, 'the seeded records have a gap');
  const gaps = await page.$$('table[data-table="gaps"] tbody tr');
  eq(s.gaps.length, gaps.length, 'gap rows');
  ok(await recordsMatch(page, E.PKEY, 'provider=cscs', 'provider page: records') > 0, 'the provider has recent records');
  const rj = (await api('/v1/providers/cscs/rejections', E.PKEY)).json.rejections;
  eq(2, rj.length, 'the seeded refusals are kept');
  const shown = await page.$$eval('table[data-table="refused"] tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  eq(rj.map((x) => x.record_id).reverse(), shown.map((r) => r[1]), 'refused records on the page, latest first');
  eq(rj.map((x) => x.reason).reverse(), shown.map((r) => r[3]), 'their reasons');
  await shot(page, 'provider');
  await page.close();
}

// ---- the public page ----------------------------------------------------------
{
  const page = await newPage('public');
  await page.goto(`${URL}/public`);
  await page.waitForSelector('[data-field="pool-used"]');
  const pub = await (await fetch(`${URL}/public.json`)).json();
  eq([pub.pool.used], await texts(page, '[data-field="pool-used"]'), 'public pool use');
  const cells = await page.$$eval('table[data-table="public-usage"] tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  const months = [...new Set(pub.institutions.flatMap((i) => i.usage.map((u) => u.month)))].sort();
  eq(pub.institutions.map((i) => [i.name, `${i.allocation.credits} per ${i.allocation.period}`,
    ...months.map((m) => i.usage.find((u) => u.month === m)?.charge ?? '')]), cells, 'public usage table');
  ok((await texts(page, '[data-field="checkpoint"]'))[0]?.startsWith('allot/'), 'public checkpoint shown');
  await shot(page, 'public');
  await page.close();
}

await browser.close();
for (const p of problems) { fail++; console.error(`FAIL [test_web]: ${p}`); }
console.log(`web.test.mjs: ${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
