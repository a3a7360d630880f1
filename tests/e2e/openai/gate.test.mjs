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
    if (usage) usage = { ...usage };
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
  if (usage.total_tokens === undefined) usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
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

// Chat with content parts and role developer (what multi-part front-ends send).
await shape('chat with content parts', async () => {
  const data = await client.chat.completions.create({
    model, max_tokens: 16,
    messages: [{ role: 'developer', content: 'You tell stories.' },
      { role: 'user', content: [{ type: 'text', text: 'Once upon' }, { type: 'text', text: ' a time' }] }],
  });
  check('chat with parts: model is the id asked for', model, data.model);
  return { usage: data.usage, text: data.choices[0].message.content };
});

// Completions with a prompt array: one choice per prompt, indices as OpenAI's.
await shape('completions with two prompts', async () => {
  const data = await client.completions.create({ model, prompt: ['Once upon a time', 'The cat'], max_tokens: 8 });
  check('two prompts: indices', '0,1', data.choices.map((c) => c.index).join(','));
  return { usage: data.usage, text: data.choices[1].text };
});

// The stream carries no usage chunk unless asked.
try {
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 8, stream: true });
  let chunks = 0;
  let empty = 0;
  for await (const chunk of stream) {
    chunks++;
    if (!chunk.choices || chunk.choices.length === 0 || chunk.usage) empty++;
  }
  truthy('stream without include_usage: every chunk has choices[0]', chunks > 0 && empty === 0, `${empty} of ${chunks}`);
} catch (e) {
  failed++;
  console.error(`FAIL [openai]: stream without usage: ${e.message}`);
}

// The Responses API, whole and streamed.
await shape('responses', async () => {
  const r = await client.responses.create({ model, input: prompt, instructions: 'You tell stories.', max_output_tokens: 16 });
  check('responses: object', 'response', r.object);
  return { usage: { prompt_tokens: r.usage.input_tokens, completion_tokens: r.usage.output_tokens,
    total_tokens: r.usage.total_tokens }, text: r.output_text };
});
await shape('responses stream', async () => {
  const stream = await client.responses.create({ model, input: [{ role: 'user', content: prompt }], max_output_tokens: 16, stream: true });
  let text = '';
  let usage;
  const types = new Set();
  for await (const ev of stream) {
    types.add(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') usage = ev.response.usage;
  }
  truthy('responses stream: created and completed', types.has('response.created') && types.has('response.completed'), [...types].join(' '));
  return { usage: usage && { prompt_tokens: usage.input_tokens, completion_tokens: usage.output_tokens,
    total_tokens: usage.total_tokens }, text };
});
try {
  const runner = client.responses.stream({ model, input: prompt, max_output_tokens: 8 });
  const final = await runner.finalResponse();
  truthy('responses stream helper: final text', final.output_text.length > 0, JSON.stringify(final.output));
} catch (e) {
  failed++;
  console.error(`FAIL [openai]: responses stream helper: ${e.message}`);
}

// models.retrieve
try {
  const m = await client.models.retrieve(model);
  check('models.retrieve: id', model, m.id);
} catch (e) {
  failed++;
  console.error(`FAIL [openai]: models.retrieve: ${e.status} ${e.message}`);
}

// Embeddings, JSON output and logprobs, where the bundled engine has them
// (a build without them refuses them as unsupported: test_oai_surface.sh).
let features = false;
try {
  const e = await client.embeddings.create({ model, input: ['Once upon a time', 'The cat'] });
  features = true;
  check('embeddings: two vectors', 2, e.data.length);
  truthy('embeddings: usage', e.usage.prompt_tokens > 0, JSON.stringify(e.usage));
  const one = await client.embeddings.create({ model, input: 'Once upon a time', encoding_format: 'float' });
  truthy('embeddings: alone as in a batch (base64 and float alike)',
    one.data[0].embedding.every((x, i) => Math.abs(x - e.data[0].embedding[i]) < 1e-6));
} catch (e) {
  // the bundled engine has embeddings (issue 14): a refusal is a failure
  check('embeddings served by the bundled engine', 'served', `${e.status} ${e.code}`);
}
if (features) {
  await shape('chat json_schema', async () => {
    const data = await client.chat.completions.create({
      model, messages, max_tokens: 16,
      response_format: { type: 'json_schema', json_schema: { name: 'p', strict: true,
        schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false } } },
    });
    const c = data.choices[0];
    if (c.finish_reason === 'stop') truthy('json_schema: parses', typeof JSON.parse(c.message.content).name === 'string', c.message.content);
    return { usage: data.usage, text: c.message.content };
  });
  await shape('chat logprobs', async () => {
    const data = await client.chat.completions.create({ model, messages, max_tokens: 8, logprobs: true, top_logprobs: 2 });
    check('logprobs: one per token', data.usage.completion_tokens, data.choices[0].logprobs.content.length);
    return { usage: data.usage, text: data.choices[0].message.content };
  });
}

// Errors arrive as the client's typed errors, with OpenAI's type, code and param.
async function expectError(what, cls, status, type, code, param, run) {
  try {
    await run();
    failed++;
    console.error(`FAIL [openai]: ${what}: no error`);
  } catch (e) {
    check(`${what}: status`, status, e.status);
    check(`${what}: class`, cls.name, e.constructor.name);
    check(`${what}: type`, type, e.type);
    check(`${what}: code`, code, e.code);
    check(`${what}: param`, param, e.param);
  }
}
await expectError('max_tokens over the limit', OpenAI.BadRequestError, 400, 'invalid_request_error',
  'invalid_request', 'max_tokens', () => client.completions.create({ model, prompt, max_tokens: 1000000 }));
await expectError('tool use', OpenAI.BadRequestError, 400, 'invalid_request_error', 'unsupported', 'tools', () =>
  client.chat.completions.create({ model, messages, tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }));
await expectError('unknown model', OpenAI.NotFoundError, 404, 'not_found_error', 'model_not_found', 'model', () =>
  client.chat.completions.create({ model: 'gpt-4o', messages }));
await expectError('models.retrieve of an unknown model', OpenAI.NotFoundError, 404, 'not_found_error',
  'model_not_found', 'model', () => client.models.retrieve('gpt-4o'));
await expectError('a route of another role', OpenAI.PermissionDeniedError, 403, 'permission_error', 'forbidden',
  null, () => client.get('/charter'));
const stranger = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'v4.public.not-a-token', maxRetries: 0 });
await expectError('bad token', OpenAI.AuthenticationError, 401, 'authentication_error', 'unauthorized', null,
  () => stranger.models.list());
const long = 'Once upon a time '.repeat(1000);
await expectError('context overflow', OpenAI.APIError, 413, 'invalid_request_error', 'context_length_exceeded',
  'prompt', () => client.completions.create({ model, prompt: long, max_tokens: 1 }));
if (process.env.ALLOT_TOKEN_POOR) {
  const poor = new OpenAI({ baseURL: `${url}/v1`, apiKey: process.env.ALLOT_TOKEN_POOR, maxRetries: 0 });
  await expectError('allocation exhausted', OpenAI.APIError, 402, 'insufficient_quota', 'quota_exceeded', null,
    () => poor.completions.create({ model, prompt, max_tokens: 200 }));
}
if (process.env.ALLOT_TOKEN_SLOW) {
  const slow = new OpenAI({ baseURL: `${url}/v1`, apiKey: process.env.ALLOT_TOKEN_SLOW, maxRetries: 0 });
  await slow.completions.create({ model, prompt, max_tokens: 1 }).catch(() => {});
  await expectError('rate limit', OpenAI.RateLimitError, 429, 'rate_limit_error', 'rate_limited', null,
    () => slow.completions.create({ model, prompt, max_tokens: 1 }));
}

console.log(`openai client: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
