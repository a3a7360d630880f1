// clients.test.mjs — the OpenAI-compatible clients users pick, against
// allotd's gate, each as its documentation shows it (tests/e2e/test_clients.sh):
// the Vercel AI SDK (`ai` with `@ai-sdk/openai`: the default model, which
// calls the Responses API, .chat() and .completion(); and
// `@ai-sdk/openai-compatible`), LangChain (`@langchain/openai`: ChatOpenAI
// invoke, stream, batch and its Responses mode, OpenAI.generate with two
// prompts, context overflow as ContextOverflowError) and LlamaIndex
// (`@llamaindex/openai`: chat, complete), and where the bundled engine has
// them, structured output (generateObject, withStructuredOutput) and
// embeddings through each (embed, embedMany, OpenAIEmbeddings, OpenAIEmbedding).
//
// Environment: ALLOT_URL, ALLOT_TOKEN (a member token), ALLOT_MODEL
// (default "stories"), ALLOT_RATE_IN / ALLOT_RATE_OUT (micro-credits per
// token).  For every call the usage the client reports must equal what the
// ledger charged: the member's "used" in GET /v1/quotas/me moves by exactly
// input * RATE_IN + output * RATE_OUT, and nothing is left reserved.
// Prints one line per failure and "N passed, N failed"; exits 1 on failure.
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI, OpenAI as LangChainOpenAI } from '@langchain/openai';
import { OpenAI as LlamaOpenAI, OpenAIEmbedding } from '@llamaindex/openai';
import { OpenAIEmbeddings } from '@langchain/openai';
import { embed, embedMany, generateObject, generateText, streamText } from 'ai';
import { z } from 'zod';

globalThis.AI_SDK_LOG_WARNINGS = false; // "toolChoice not supported" and the like

const url = process.env.ALLOT_URL;
const token = process.env.ALLOT_TOKEN;
const model = process.env.ALLOT_MODEL || 'stories';
const rateIn = BigInt(process.env.ALLOT_RATE_IN || '100');
const rateOut = BigInt(process.env.ALLOT_RATE_OUT || '300');
if (!url || !token) {
  console.error('clients.test.mjs: set ALLOT_URL and ALLOT_TOKEN');
  process.exit(2);
}
const baseURL = `${url}/v1`;
const prompt = 'Once upon a time';
let passed = 0;
let failed = 0;
function truthy(what, cond, detail = '') {
  if (cond) passed++;
  else {
    failed++;
    console.error(`FAIL [clients]: ${what} ${detail}`);
  }
}
function check(what, expected, actual) {
  truthy(what, String(expected) === String(actual), `: expected [${expected}], got [${actual}]`);
}

function micro(s) {
  const [i, f = ''] = s.split('.');
  return BigInt(i) * 1000000n + BigInt((f + '000000').slice(0, 6));
}
async function level(field) {
  const r = await fetch(`${url}/v1/quotas/me`, { headers: { Authorization: `Bearer ${token}` } });
  const j = await r.json();
  return micro(j.levels.find((l) => l.level === 'project')[field]);
}

// call NAME FN: FN returns {text, input, output} (the client's own usage
// figures); the ledger must have moved by exactly that.
async function call(name, fn) {
  const before = await level('used');
  let r;
  try {
    r = await fn();
  } catch (e) {
    failed++;
    console.error(`FAIL [clients]: ${name}: ${e.status || ''} ${e.message}`);
    return;
  }
  truthy(`${name}: text`, typeof r.text === 'string' && r.text.length > 0, JSON.stringify(r.text));
  truthy(`${name}: usage reported`, Number.isInteger(r.input) && r.input > 0 && Number.isInteger(r.output) && r.output > 0,
    JSON.stringify(r));
  if (!Number.isInteger(r.input) || !Number.isInteger(r.output)) return;
  const charge = BigInt(r.input) * rateIn + BigInt(r.output) * rateOut;
  check(`${name}: ledger charged what the client reports`, charge, (await level('used')) - before);
  check(`${name}: nothing left reserved`, 0n, await level('reserved'));
}

// ---- Vercel AI SDK ---------------------------------------------------------------
const openai = createOpenAI({ baseURL, apiKey: token });
await call('ai-sdk openai(model) (Responses API)', async () => {
  const r = await generateText({ model: openai(model), prompt, maxOutputTokens: 16, maxRetries: 0 });
  return { text: r.text, input: r.usage.inputTokens, output: r.usage.outputTokens };
});
await call('ai-sdk openai(model) streamText', async () => {
  const r = streamText({ model: openai(model), prompt, maxOutputTokens: 16, maxRetries: 0 });
  let text = '';
  for await (const t of r.textStream) text += t;
  const u = await r.usage;
  return { text, input: u.inputTokens, output: u.outputTokens };
});
await call('ai-sdk openai.chat()', async () => {
  const r = await generateText({
    model: openai.chat(model), maxOutputTokens: 16, maxRetries: 0, instructions: 'You tell stories.',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Once upon' }, { type: 'text', text: ' a time' }] }],
  });
  return { text: r.text, input: r.usage.inputTokens, output: r.usage.outputTokens };
});
await call('ai-sdk openai.chat() streamText', async () => {
  const r = streamText({ model: openai.chat(model), prompt, maxOutputTokens: 16, maxRetries: 0 });
  let text = '';
  for await (const t of r.textStream) text += t;
  const u = await r.usage;
  return { text, input: u.inputTokens, output: u.outputTokens };
});
await call('ai-sdk openai.completion()', async () => {
  const r = await generateText({ model: openai.completion(model), prompt, maxOutputTokens: 16, maxRetries: 0 });
  return { text: r.text, input: r.usage.inputTokens, output: r.usage.outputTokens };
});
const compat = createOpenAICompatible({ name: 'allot', baseURL, apiKey: token, includeUsage: true });
await call('ai-sdk openai-compatible chatModel', async () => {
  const r = await generateText({ model: compat.chatModel(model), prompt, maxOutputTokens: 16, maxRetries: 0 });
  return { text: r.text, input: r.usage.inputTokens, output: r.usage.outputTokens };
});
await call('ai-sdk openai-compatible chatModel streamText', async () => {
  const r = streamText({ model: compat.chatModel(model), prompt, maxOutputTokens: 16, maxRetries: 0 });
  let text = '';
  for await (const t of r.textStream) text += t;
  const u = await r.usage;
  return { text, input: u.inputTokens, output: u.outputTokens };
});
await call('ai-sdk openai-compatible completionModel', async () => {
  const r = await generateText({ model: compat.completionModel(model), prompt, maxOutputTokens: 16, maxRetries: 0 });
  return { text: r.text, input: r.usage.inputTokens, output: r.usage.outputTokens };
});

// ---- LangChain -------------------------------------------------------------------------
const lcOpts = { model, apiKey: token, configuration: { baseURL }, maxTokens: 16, maxRetries: 0 };
const chat = new ChatOpenAI(lcOpts);
await call('langchain ChatOpenAI invoke', async () => {
  const m = await chat.invoke([['system', 'You tell stories.'], ['human', prompt]]);
  return { text: m.content, input: m.usage_metadata?.input_tokens, output: m.usage_metadata?.output_tokens };
});
await call('langchain ChatOpenAI stream', async () => {
  let text = '';
  let usage;
  for await (const c of await chat.stream(prompt)) {
    text += c.content;
    if (c.usage_metadata) usage = c.usage_metadata;
  }
  return { text, input: usage?.input_tokens, output: usage?.output_tokens };
});
await call('langchain ChatOpenAI batch', async () => {
  const ms = await chat.batch([prompt, 'The cat']);
  return { text: ms.map((m) => m.content).join(''),
    input: ms.reduce((a, m) => a + m.usage_metadata.input_tokens, 0),
    output: ms.reduce((a, m) => a + m.usage_metadata.output_tokens, 0) };
});
await call('langchain ChatOpenAI useResponsesApi', async () => {
  const rc = new ChatOpenAI({ ...lcOpts, useResponsesApi: true });
  const m = await rc.invoke(prompt);
  const text = typeof m.content === 'string' ? m.content : m.content.map((p) => p.text || '').join('');
  return { text, input: m.usage_metadata?.input_tokens, output: m.usage_metadata?.output_tokens };
});
await call('langchain OpenAI.generate with two prompts', async () => {
  const llm = new LangChainOpenAI(lcOpts);
  const r = await llm.generate([prompt, 'The cat']);
  check('langchain generate: two generations', 2, r.generations.length);
  const u = r.llmOutput?.tokenUsage || {};
  return { text: r.generations.map((g) => g[0].text).join(''), input: u.promptTokens, output: u.completionTokens };
});
try {
  await chat.invoke('Once upon a time '.repeat(1000));
  failed++;
  console.error('FAIL [clients]: langchain context overflow: no error');
} catch (e) {
  check('langchain context overflow: ContextOverflowError', 'ContextOverflowError', e.constructor.name);
}

// ---- LlamaIndex ----------------------------------------------------------------------------
const llama = new LlamaOpenAI({ model, apiKey: token, baseURL, maxTokens: 16, maxRetries: 0 });
await call('llamaindex chat', async () => {
  const r = await llama.chat({ messages: [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: prompt }] });
  return { text: r.message.content, input: r.raw?.usage?.prompt_tokens, output: r.raw?.usage?.completion_tokens };
});
await call('llamaindex complete', async () => {
  const r = await llama.complete({ prompt });
  return { text: r.text, input: r.raw?.usage?.prompt_tokens, output: r.raw?.usage?.completion_tokens };
});

// ---- structured output and embeddings: where the bundled engine has them -------------------
// (infer/engine.h of issue 14; a build without them answers 400 unsupported,
// which test_oai_surface.sh checks)
const probe = await fetch(`${baseURL}/embeddings`, {
  method: 'POST', body: JSON.stringify({ model, input: 'x' }),
  headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
});
const features = probe.status === 200;
// The bundled engine has both since issue 14's engine work was merged: a
// build that refuses them fails here rather than skipping.
if (!features) {
  const j = await probe.json();
  check('the bundled engine serves embeddings', 200, `${probe.status} ${j.error?.code}`);
} else {
  const person = z.object({ name: z.string(), age: z.number() });
  await call('ai-sdk generateObject (Responses API, json_schema)', async () => {
    const r = await generateObject({ model: openai(model), schema: person, prompt, maxOutputTokens: 96, maxRetries: 0 });
    truthy('generateObject: matches the schema', person.safeParse(r.object).success, JSON.stringify(r.object));
    return { text: JSON.stringify(r.object), input: r.usage.inputTokens, output: r.usage.outputTokens };
  });
  await call('ai-sdk generateObject (chat, json_schema)', async () => {
    const r = await generateObject({ model: openai.chat(model), schema: person, prompt, maxOutputTokens: 96, maxRetries: 0 });
    truthy('generateObject chat: matches the schema', person.safeParse(r.object).success, JSON.stringify(r.object));
    return { text: JSON.stringify(r.object), input: r.usage.inputTokens, output: r.usage.outputTokens };
  });
  await call('langchain withStructuredOutput (jsonSchema)', async () => {
    const s = new ChatOpenAI({ ...lcOpts, maxTokens: 96 }).withStructuredOutput(person, { method: 'jsonSchema', includeRaw: true });
    const r = await s.invoke(prompt);
    truthy('withStructuredOutput: matches the schema', person.safeParse(r.parsed).success, JSON.stringify(r.parsed));
    return { text: JSON.stringify(r.parsed), input: r.raw.usage_metadata?.input_tokens, output: r.raw.usage_metadata?.output_tokens };
  });
  // embeddings: metered as input tokens only
  async function embedCall(name, fn) {
    const before = await level('used');
    try {
      const r = await fn();
      truthy(`${name}: a vector`, Array.isArray(r.vector) && r.vector.length > 0, String(r.vector?.length));
      if (r.input !== undefined) check(`${name}: ledger charged the input tokens`, BigInt(r.input) * rateIn, (await level('used')) - before);
      check(`${name}: nothing left reserved`, 0n, await level('reserved'));
      return r.vector;
    } catch (e) {
      failed++;
      console.error(`FAIL [clients]: ${name}: ${e.status || ''} ${e.message}`);
      return null;
    }
  }
  const text = 'Once upon a time';
  const v1 = await embedCall('ai-sdk embed', async () => {
    const r = await embed({ model: openai.embedding(model), value: text, maxRetries: 0 });
    return { vector: r.embedding, input: r.usage.tokens };
  });
  const vs = await embedCall('ai-sdk embedMany', async () => {
    const r = await embedMany({ model: openai.embedding(model), values: ['The cat', text], maxRetries: 0 });
    check('embedMany: two vectors', 2, r.embeddings.length);
    return { vector: r.embeddings[1], input: r.usage.tokens };
  });
  const v3 = await embedCall('langchain OpenAIEmbeddings', async () => {
    const e = new OpenAIEmbeddings({ model, apiKey: token, configuration: { baseURL }, maxRetries: 0 });
    return { vector: await e.embedQuery(text) };
  });
  const v4 = await embedCall('llamaindex OpenAIEmbedding', async () => {
    const e = new OpenAIEmbedding({ model, apiKey: token, baseURL, maxRetries: 0 });
    return { vector: await e.getTextEmbedding(text) };
  });
  const same = (a, b) => a && b && a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) < 1e-6);
  truthy('embeddings: the same text, the same vector alone and in a batch', same(v1, vs));
  truthy('embeddings: the same vector through every client', same(v1, v3) && same(v1, v4));
}

console.log(`clients: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
