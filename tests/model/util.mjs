// util.mjs — small pieces the model test shares: a seeded PRNG, exact
// micro-credit amounts (BigInt), HTTP against allotd, Ed25519 signing.
import crypto from 'node:crypto';

// mulberry32: a small, well-mixed 32-bit generator; every random choice of a
// history comes from its seed through this.
export function rng(seed) {
	let a = (seed >>> 0) ^ 0x9e3779b9;
	const next = () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
	return {
		f: next,
		int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // [lo, hi]
		pick: (xs) => xs[Math.floor(next() * xs.length)],
		chance: (p) => next() < p,
	};
}

// ---- money: BigInt micro-credits -------------------------------------------
export const M = 1000000n;

// "12.5" / "-0.000001" -> BigInt micro-credits; throws on anything else.
export function parseMoney(s) {
	if (typeof s !== 'string' || !/^-?\d+(\.\d{1,6})?$/.test(s))
		throw new Error(`not an exact amount: ${JSON.stringify(s)}`);
	const neg = s.startsWith('-');
	const [i, f = ''] = s.replace('-', '').split('.');
	const v = BigInt(i) * M + BigInt(f.padEnd(6, '0'));
	return neg ? -v : v;
}

export function fmtMoney(v) {
	const neg = v < 0n;
	const a = neg ? -v : v;
	let f = (a % M).toString().padStart(6, '0').replace(/0+$/, '');
	return (neg ? '-' : '') + (a / M).toString() + (f ? '.' + f : '');
}

export const min = (a, b) => (a < b ? a : b);
export const max = (a, b) => (a > b ? a : b);

// ---- HTTP --------------------------------------------------------------------
export const HTTP_TIMEOUT_MS = 120000;

export async function http(base, method, path, key, body, headers = {}) {
	const h = { ...headers };
	if (key) h.Authorization = `Bearer ${key}`;
	let data;
	if (body !== undefined) {
		if (typeof body === 'string') {
			data = body;
			h['Content-Type'] ??= 'application/yaml';
		} else {
			data = JSON.stringify(body);
			h['Content-Type'] = 'application/json';
		}
	}
	// A daemon that stops answering fails the history in two minutes, naming
	// the request, instead of fetch's five-minute wait on every later one.
	let r;
	try {
		r = await fetch(base + path, { method, headers: h, body: data, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
	} catch (e) {
		if (e.name === 'TimeoutError')
			throw new Error(`${method} ${path}: no answer from allotd in ${HTTP_TIMEOUT_MS / 1000} s`);
		throw e;
	}
	const text = await r.text();
	let json = null;
	try { json = JSON.parse(text); } catch { /* not JSON */ }
	return { status: r.status, json, text, headers: r.headers };
}

// ---- Ed25519 -----------------------------------------------------------------
export function keypair() {
	const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
	const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
	return { privateKey, pub: 'ed25519:' + raw.toString('base64') };
}

// Canonical bytes (docs/LEDGER.md): no sig, no nulls, keys sorted, compact.
export function canonical(rec) {
	const o = {};
	for (const k of Object.keys(rec).sort())
		if (k !== 'sig' && rec[k] !== null && rec[k] !== undefined)
			o[k] = rec[k];
	return JSON.stringify(o);
}

export function sign(rec, privateKey) {
	const sig = crypto.sign(null, Buffer.from(canonical(rec)), privateKey).toString('base64');
	return { ...rec, sig };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
