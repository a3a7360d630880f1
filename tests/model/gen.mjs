// gen.mjs — the seeded generator of histories.  A history is a charter part
// (one institution, two projects, a provider, a model of the bundled
// backend) and a list of steps: provider batches (new records, duplicates,
// conflicts, corrections, late and boundary records, bad ones), batches
// sent at once, gated
// requests, bursts of concurrent requests, charter changes, kill -9 and
// restart, reports.  Steps are plain data; what depends on time (`end`
// relative to now) or on earlier answers (which record a correction names)
// is resolved when the step runs, the same way on every run of the seed.
import { rng, M } from './util.mjs';

// Zones whose local midnights exist and happen once (tz.mjs relies on it),
// with DST rules of both hemispheres and offsets that are multiples of 15
// minutes (report days fold 15-minute buckets).
export const ZONES = ['Europe/Zurich', 'America/New_York', 'UTC', 'Australia/Lord_Howe', 'Asia/Kathmandu'];
export const GRACES = [0, 3, 10, 90]; // late_grace days
export const CLASSES = ZONES.length * GRACES.length;

// What a seed's daemon shares with other seeds of the same class.
export function worldOf(seed) {
	const c = seed % CLASSES;
	return { zone: ZONES[c % ZONES.length], graceDays: GRACES[Math.floor(c / ZONES.length)] };
}

export const PROMPTS = ['Once upon a time', 'The cat', 'Lily and Tom went to the park', 'A little bird'];

function amount(r, lo, hi) { // micro-credits, random number of fractional digits
	const v = BigInt(r.int(lo, hi));
	return r.chance(0.3) ? (v / M) * M : v;
}

function initialParams(r) {
	const kind = r.pick(['day', 'week', 'month', 'month', 'quarter', 'total']);
	const roll = () => (kind === 'total' || r.chance(0.5) ? 0n : r.pick([250000n, 500000n, 333333n, 1000000n]));
	const inst = { credits: amount(r, 20 * 1e6, 3000 * 1e6), ppm: roll() };
	const pa = { credits: inst.credits / 2n - BigInt(r.int(0, 5 * 1e6)), ppm: roll() };
	if (pa.credits < 0n) pa.credits = 0n;
	const pb = { credits: inst.credits - pa.credits - BigInt(r.int(0, 3 * 1e6)), ppm: roll() };
	if (pb.credits < 0n) pb.credits = 0n;
	const memberAlloc = r.chance(0.5) ? { credits: pa.credits / BigInt(r.int(1, 4)), ppm: roll() } : null;
	const soft = r.chance(0.4);
	return {
		kind, inst,
		projects: {
			a: { alloc: pa, memberAlloc, members: ['u1', 'u2'], maxTok: r.chance(0.3) ? r.int(4, 24) : null },
			b: { alloc: pb, memberAlloc: null, members: ['u3'], maxTok: null },
		},
		mode: soft ? 'soft' : 'hard',
		gracePpm: soft ? r.pick([0n, 100000n, 125000n, 500000n, 1000000n]) : 0n,
		alerts: r.chance(0.5) ? [50, 100] : [],
		rates: {
			gpu: BigInt(r.int(1, 40000)), cpu: BigInt(r.int(1, 900)),
			tin: BigInt(r.int(10, 3000)), tout: BigInt(r.int(10, 9000)),
		},
	};
}

function when(r) {
	const k = r.f();
	if (k < 0.35) return { k: 'recent', ago: r.int(0, 7200) };
	if (k < 0.6) return { k: 'past', ago: r.int(3600, 100 * 86400) };
	if (k < 0.8) return { k: 'boundary', kind: r.pick(['day', 'week', 'month']), back: r.int(0, 3), delta: r.pick([-1, 0, 1, -900, 899, 3600]) };
	if (k < 0.95) return { k: 'dst', n: r.int(0, 3), delta: r.pick([-3601, -1, 0, 1, 1799, 3600]) };
	if (k < 0.975) return { k: 'prehistory' };
	return { k: 'future' };
}

function batch(r) {
	const ops = [];
	const n = r.int(1, 6);
	for (let i = 0; i < n; i++) {
		const k = r.f();
		const proj = r.chance(0.7) ? 'a' : 'b';
		const member = proj === 'a' ? r.pick(['u1', 'u2', null]) : r.pick(['u3', null]);
		if (k < 0.5)
			ops.push({ op: 'new', proj, member, res: r.chance(0.7) ? 'gpu_seconds' : 'cpu_seconds',
				qty: r.chance(0.1) ? r.int(1, 1e9) : r.int(1, 20000), when: when(r), dur: r.int(0, 7200), seq: r.chance(0.8) });
		else if (k < 0.6) ops.push({ op: 'dup', ref: r.int(0, 1e6) });
		else if (k < 0.67) ops.push({ op: 'conflict', ref: r.int(0, 1e6) });
		else if (k < 0.82) ops.push({ op: 'adj', ref: r.int(0, 1e6), adj: r.pick(['debit', 'credit', 'refund']), frac: r.pick([0.1, 0.5, 1, 1.5]), when: when(r) });
		else if (k < 0.92) ops.push({ op: 'void', ref: r.int(0, 1e6), wrong: r.chance(0.2), when: when(r) });
		else if (k < 0.96) ops.push({ op: 'bad', what: r.pick(['member', 'project']), when: when(r) });
		else ops.push({ op: 'foreign', when: when(r) });
	}
	return { t: 'batch', ops };
}

export function generate(seed, opts = {}) {
	const r = rng(seed);
	const params = initialParams(r);
	const steps = [];
	const n = r.int(opts.minSteps ?? 6, opts.maxSteps ?? 16);
	for (let i = 0; i < n; i++) {
		const k = r.f();
		const member = () => r.pick(['u1', 'u2', 'u3']);
		if (k < 0.37) steps.push(batch(r));
		else if (k < 0.42) steps.push({ t: 'parallel', batches: Array.from({ length: r.int(2, 4) }, () => batch(r).ops.filter((o) => o.op === 'new')) });
		else if (k < 0.62) {
			const m = member();
			steps.push({ t: 'gate', member: m, maxTokens: r.int(1, 28), prompt: r.int(0, PROMPTS.length - 1) });
		} else if (k < 0.7) steps.push({ t: 'burst', proj: r.pick(['a', 'b']), k: r.int(3, 6), maxTokens: r.int(4, 20), room: r.pick([0.5, 1, 1.5, 2.5, 4]) });
		else if (k < 0.82) steps.push({ t: 'charter', change: r.pick(['rates', 'alloc', 'tighten', 'overage']), x: r.int(0, 1e9) });
		else if (k < 0.88 && !opts.noRestart) steps.push({ t: 'restart', inflight: r.chance(0.6) ? batch(r).ops : null, gates: r.chance(0.5) ? r.int(1, 3) : 0, delay: r.int(0, 40) });
		else steps.push({ t: 'report', groups: r.pick([[], ['project'], ['member', 'resource'], ['day'], ['project', 'month'], ['provider', 'model', 'resource'], ['resource', 'day']]), range: r.pick(['current', 'previous', 'all', 'days']) });
	}
	steps.push({ t: 'report', groups: ['project', 'member', 'resource', 'day'], range: 'all' });
	return { seed, params, steps };
}
