// verify.js — checks the transparency log in the browser: the checkpoint's
// Ed25519 signature (C2SP signed note) with WebCrypto, RFC 9162 inclusion
// proofs of leaves and consistency proofs between two checkpoints.
const enc = new TextEncoder();

export const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
export const hex = (u) => [...u].map((b) => b.toString(16).padStart(2, '0')).join('');

export async function sha256(...parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const buf = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { buf.set(p, o); o += p.length; }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const node = (l, r) => sha256(Uint8Array.of(1), l, r);
export const leafHash = (text) => sha256(Uint8Array.of(0), enc.encode(text));
const half = (x) => Math.floor(x / 2);
const odd = (x) => x % 2 === 1;
const pow2 = (x) => { while (x > 1 && !odd(x)) x = half(x); return x === 1; };

// A signed checkpoint: {origin, size, root} when the signature of the log
// key verifies and the origin is the key's name; throws otherwise.
export async function openCheckpoint(note, logKey) {
  if (!logKey.key?.startsWith('ed25519:')) throw new Error('the log key is not an ed25519: key');
  const pub = b64(logKey.key.slice(8));
  const name = logKey.origin;
  const cut = note.lastIndexOf('\n\n');
  if (cut < 0) throw new Error('the checkpoint is not a signed note');
  const text = note.slice(0, cut + 1);
  const keyId = (await sha256(enc.encode(name), Uint8Array.of(0x0a, 0x01), pub)).slice(0, 4);
  const key = await crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
  let verified = false;
  for (const line of note.slice(cut + 2).split('\n').filter(Boolean)) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new Error(`malformed signature line: ${line}`);
    if (m[1] !== name) continue;
    const raw = b64(m[2]);
    if (!eq(raw.slice(0, 4), keyId)) continue;
    if (!(await crypto.subtle.verify({ name: 'Ed25519' }, key, raw.slice(4), enc.encode(text))))
      throw new Error('the checkpoint signature does not verify under the log key');
    verified = true;
  }
  if (!verified) throw new Error(`the checkpoint carries no signature by ${name}`);
  const [origin, size, root] = text.split('\n');
  if (origin !== name) throw new Error(`the checkpoint is of log ${origin}, not ${name}`);
  if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new Error('the checkpoint size is malformed');
  const rootBytes = b64(root);
  if (rootBytes.length !== 32) throw new Error('the checkpoint root is not 32 bytes');
  return { origin, size: Number(size), root: rootBytes, rootB64: root, note };
}

// RFC 9162 2.1.3.2
export async function verifyInclusion(index, size, leaf, proof, root) {
  if (index >= size) return false;
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof.map(b64)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = await node(p, r);
      if (!odd(fn)) while (!odd(fn) && fn !== 0) { fn = half(fn); sn = half(sn); }
    } else {
      r = await node(r, p);
    }
    fn = half(fn); sn = half(sn);
  }
  return sn === 0 && eq(r, root);
}

// RFC 9162 2.1.4.2 (size1 >= 1)
export async function verifyConsistency(size1, size2, root1, root2, proof) {
  if (size1 < 1 || size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && eq(root1, root2);
  let path = proof.map(b64);
  if (pow2(size1)) path = [root1, ...path];
  if (!path.length) return false;
  let fn = size1 - 1, sn = size2 - 1;
  while (odd(fn)) { fn = half(fn); sn = half(sn); }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = await node(c, fr);
      sr = await node(c, sr);
      if (!odd(fn)) while (!odd(fn) && fn !== 0) { fn = half(fn); sn = half(sn); }
    } else {
      sr = await node(sr, c);
    }
    fn = half(fn); sn = half(sn);
  }
  return sn === 0 && eq(fr, root1) && eq(sr, root2);
}
