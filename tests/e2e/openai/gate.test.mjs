// gate.test.mjs — the official OpenAI Node.js client against allotd's gate.
//
// Environment: ALLOT_URL (http://127.0.0.1:PORT), ALLOT_TOKEN (a member
// token: the client's apiKey), ALLOT_MODEL (default "stories"),
// ALLOT_RATE_IN / ALLOT_RATE_OUT (micro-credits per token, from the charter).
// For every shape (completions and chat completions, streamed and not) the
// usage the client reports must equal what the ledger charged: the member's
// "used" in GET /v1/quotas/me moves by exactly
// prompt_tokens * RATE_IN + completion_tokens * RATE_OUT.
// Prints one line per failure and a summary; exits 1 on any failure.
import OpenAI from 'openai';

const url = process.env.ALLOT_URL;
const token = process.env.ALLOT_TOKEN;
const model = process.env.ALLOT_MODEL || 'stories';
const rateIn = BigInt(process.env.ALLOT_RATE_IN || '100');
const rateOut = BigInt(process.env.ALLOT_RATE_OUT || '300');
if (!url || !token) {
  console.error('gate.test.mjs: set ALLOT_URL and ALLOT_TOKEN');
  process.exit(2);
}

const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: token, maxRetries: 0, timeout: 30000 });
let passed = 0;
let failed = 0;
function check(what, expected, actual) {
  if (String(expected) === String(actual)) passed++;
  else {
    failed++;
    console.error(`FAIL [openai]: ${what}: expected [${expected}], got [${actual}]`);
  }
}
function truthy(what, cond, detail = '') {
  if (cond) passed++;
  else {
    failed++;
    console.error(`FAIL [openai]: ${what} ${detail}`);
  }
}

// Exact decimal credits ("12.3456") to integer micro-credits.
function micro(s) {
  const neg = s.startsWith('-');
  const [i, f = ''] = (neg ? s.slice(1) : s).split('.');
  const v = BigInt(i) * 1000000n + BigInt((f + '000000').slice(0, 6));
  return neg ? -v : v;
}

async function memberLevel(field) {
  const r = await fetch(`${url}/v1/quotas/me`, { headers: { Authorization: `Bearer ${token}` } });
  const j = await r.json();
  // the most restrictive level the member's charges all touch: the project
  const lv = j.levels.find((l) => l.level === 'member') || j.levels.find((l) => l.level === 'project');
  return micro(lv[field]);
}

async function shape(name, run) {
  const before = await memberLevel('used');
  let usage;
  let text;
  try {
    ({ usage, text } = await run());
  } catch (e) {
    failed++;
    console.error(`FAIL [openai]: ${name}: ${e.status || ''} ${e.message}`);
    return;
  }
  truthy(`${name}: usage reported`, usage && usage.prompt_tokens > 0, JSON.stringify(usage));
  if (!usage) return;
  truthy(`${name}: text`, typeof text === 'string' && text.length > 0, JSON.stringify(text));
  truthy(`${name}: completion tokens within max_tokens`,
    usage.completion_tokens >= 1 && usage.completion_tokens <= 16, JSON.stringify(usage));
  check(`${name}: total_tokens`, usage.prompt_tokens + usage.completion_tokens, usage.total_tokens);
  const after = await memberLevel('used');
  const charge = BigInt(usage.prompt_tokens) * rateIn + BigInt(usage.completion_tokens) * rateOut;
  check(`${name}: ledger charged what the client reports`, charge, after - before);
  check(`${name}: nothing left reserved`, 0n, await memberLevel('reserved'));
}

const prompt = 'Once upon a time';
const messages = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: prompt }];

// models
const models = [];
for await (const m of client.models.list()) models.push(m.id);
truthy('models.list includes the model', models.includes(model), JSON.stringify(models));

await shape('completions', async () => {
  const { data, response } = await client.completions
    .create({ model, prompt, max_tokens: 16, temperature: 0 })
    .withResponse();
  truthy('completions: X-Allot-Remaining', response.headers.get('x-allot-remaining') !== null);
  check('completions: object', 'text_completion', data.object);
  return { usage: data.usage, text: data.choices[0].text };
});

await shape('completions stream', async () => {
  const stream = await client.completions.create({
    model, prompt, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage;
  for await (const chunk of stream) {
    if (chunk.choices && chunk.choices.length) text += chunk.choices[0].text || '';
    if (chunk.usage) usage = chunk.usage;
  }
  return { usage, text };
});

await shape('chat', async () => {
  const { data, response } = await client.chat.completions
    .create({ model, messages, max_tokens: 16 })
    .withResponse();
  truthy('chat: X-Allot-Remaining', response.headers.get('x-allot-remaining') !== null);
  check('chat: role', 'assistant', data.choices[0].message.role);
  check('chat: object', 'chat.completion', data.object);
  return { usage: data.usage, text: data.choices[0].message.content };
});

await shape('chat stream', async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_completion_tokens: 16, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage;
  for await (const chunk of stream) {
    if (chunk.choices && chunk.choices.length) text += chunk.choices[0].delta.content || '';
    if (chunk.usage) usage = chunk.usage;
  }
  return { usage, text };
});

// The client's stream helper accumulates the same text and usage.
try {
  const runner = client.chat.completions.stream({ model, messages, max_tokens: 8, stream_options: { include_usage: true } });
  const final = await runner.finalChatCompletion();
  truthy('chat stream helper: final message', final.choices[0].message.content.length > 0);
  truthy('chat stream helper: usage', final.usage && final.usage.completion_tokens <= 8, JSON.stringify(final.usage));
} catch (e) {
  failed++;
  console.error(`FAIL [openai]: chat stream helper: ${e.message}`);
}

// Errors arrive as the client's typed errors.
async function expectError(what, status, run) {
  try {
    await run();
    failed++;
    console.error(`FAIL [openai]: ${what}: no error`);
  } catch (e) {
    check(`${what}: status`, status, e.status);
  }
}
await expectError('max_tokens over the limit', 400, () =>
  client.completions.create({ model, prompt, max_tokens: 1000000 }));
await expectError('unknown model', 404, () =>
  client.chat.completions.create({ model: 'gpt-4o', messages }));
const stranger = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'v4.public.not-a-token', maxRetries: 0 });
await expectError('bad token', 401, () => stranger.models.list());

console.log(`openai client: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
