// cors.test.mjs — the gate called from a web page of another origin, in
// headless Debian chromium (puppeteer-core), run by tests/e2e/test_cors.sh:
// from an origin in --cors-origins the browser's preflight passes and the
// page reads the completion, its usage and X-Allot-Remaining; from any other
// origin the browser itself refuses the answer (fetch fails) and nothing is
// charged.  The browser, not a test written here, applies the CORS rules.
import puppeteer from 'puppeteer-core';

const E = process.env;
let pass = 0, fail = 0;
const ok = (cond, what) => {
  if (cond) pass++;
  else { fail++; console.error(`FAIL [test_cors]: ${what}`); }
};

const browser = await puppeteer.launch({
  executablePath: E.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
});

// In a page of origin, a streamed-off chat completion against the gate with
// the member token (a JSON body and an Authorization header: preflighted).
async function callFrom(origin) {
  const page = await browser.newPage();
  await page.goto(`${origin}/index.html`);
  const r = await page.evaluate(async (gate, token) => {
    try {
      const res = await fetch(`${gate}/v1/chat/completions`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ model: 'stories', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 8, temperature: 0 }),
      });
      const j = await res.json();
      return { status: res.status, usage: j.usage, remaining: res.headers.get('X-Allot-Remaining'), origin: location.origin };
    } catch (e) {
      return { error: String(e), origin: location.origin };
    }
  }, E.URL, E.TOKEN);
  await page.close();
  return r;
}

const allowed = await callFrom(E.ALLOWED);
ok(allowed.origin === E.ALLOWED, `the page's origin is ${E.ALLOWED} (got ${allowed.origin})`);
ok(allowed.status === 200, `allowed origin: 200 (got ${JSON.stringify(allowed)})`);
ok(allowed.usage && allowed.usage.completion_tokens > 0, 'allowed origin: the page reads usage');
ok(allowed.remaining !== null && allowed.remaining !== undefined, 'allowed origin: X-Allot-Remaining is exposed to the page');
console.log(`ALLOWED_TOKENS ${allowed.usage ? allowed.usage.prompt_tokens + allowed.usage.completion_tokens : 0}`);

const refused = await callFrom(E.REFUSED);
ok(refused.origin === E.REFUSED, `the page's origin is ${E.REFUSED} (got ${refused.origin})`);
ok(typeof refused.error === 'string' && /TypeError|Failed to fetch/.test(refused.error),
  `other origin: the browser refuses the answer (got ${JSON.stringify(refused)})`);

await browser.close();
console.log(`cors.test.mjs: ${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
