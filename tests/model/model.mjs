#!/usr/bin/env node
// model.mjs — the model-based test of the whole ledger (docs/TESTING.md).
// Runs seeded histories against the real allotd, several per daemon (each in
// its own institution, provider, class and model), and compares every answer,
// quota and report with the independent model in ledger.mjs.  On a
// disagreement it prints the seed and shrinks to the shortest failing prefix.
//
//   node tests/model/model.mjs [--histories N] [--seed FIRST] [--only SEED]
//        [--seeds S1,S2,...] [--prefix STEPS] [--group G] [--jobs J] [--no-shrink] [--verbose]
// Environment: ALLOT_BIN_DIR (default bin/), ALLOT_MODEL_HISTORIES,
// ALLOT_MODEL_SEED, ALLOT_MODEL_GROUP, ALLOT_MODEL_JOBS, ALLOT_MODEL_FEATURES (comma list:
// scheduled, report_tz, report_keys, net_qty, model_provider, rejections; default all, `none` for none), ALLOT_MODEL_KEEP=1 keeps daemon dirs.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLASSES, generate, worldOf } from './gen.mjs';
import { Disagreement, History } from './history.mjs';
import { REGRESSIONS } from './regress.mjs';
import * as tz from './tz.mjs';
import { World } from './world.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const REG = new Map(REGRESSIONS.map((r) => [r.seed, r]));
const FEATURES = ['scheduled', 'report_tz', 'report_keys', 'net_qty', 'model_provider', 'rejections'];

function options() {
	const env = process.env;
	const o = {
		histories: Number(env.ALLOT_MODEL_HISTORIES ?? 200), seed: Number(env.ALLOT_MODEL_SEED ?? 1),
		group: Number(env.ALLOT_MODEL_GROUP ?? 10), jobs: Number(env.ALLOT_MODEL_JOBS ?? 2), only: null, prefix: null, shrink: true, verbose: false,
		bin: path.resolve(ROOT, env.ALLOT_BIN_DIR ?? 'bin'), models: path.join(ROOT, 'models'),
		keep: env.ALLOT_MODEL_KEEP === '1', features: {},
	};
	// Every feature is on by default (allotd has them all since issue 11);
	// ALLOT_MODEL_FEATURES=none (or a list) narrows them.
	const list = env.ALLOT_MODEL_FEATURES ?? FEATURES.join(',');
	for (const f of (list === 'none' ? '' : list).split(',').filter(Boolean)) {
		if (!FEATURES.includes(f)) throw new Error(`ALLOT_MODEL_FEATURES: unknown feature "${f}" (known: ${FEATURES.join(', ')})`);
		o.features[f] = true;
	}
	const a = process.argv.slice(2);
	for (let i = 0; i < a.length; i++) {
		const v = () => {
			const x = Number(a[++i]);
			if (!Number.isSafeInteger(x) || x < 0) throw new Error(`${a[i - 1]} needs a non-negative integer`);
			return x;
		};
		switch (a[i]) {
		case '--histories': o.histories = v(); break;
		case '--seed': o.seed = v(); break;
		case '--only': o.only = v(); break;
		case '--seeds': o.seeds = a[++i].split(',').map(Number); break;
		case '--prefix': o.prefix = v(); break;
		case '--group': o.group = Math.max(1, v()); break;
		case '--jobs': o.jobs = Math.max(1, v()); break;
		case '--no-shrink': o.shrink = false; break;
		case '--verbose': o.verbose = true; break;
		default: throw new Error(`unknown argument ${a[i]}`);
		}
	}
	return o;
}

// Runs the histories of seeds (all of one world class) on one daemon; returns
// [{seed, step, message, steps, started, ended}] for each that disagreed.
async function runGroup(o, seeds, prefix = null) {
	const w = worldOf(seeds[0]);
	const world = new World({ bin: o.bin, models: o.models, zone: w.zone, graceDays: w.graceDays });
	const specs = seeds.map((s) => REG.get(s) ?? generate(s));
	const hs = specs.map((sp) => new History(world, sp, o.features));
	world.histories = hs;
	const failures = [];
	let checks = 0;
	const stats = {};
	try {
		await world.boot();
		for (const h of hs) {
			const steps = prefix === null ? h.spec.steps : h.spec.steps.slice(0, prefix);
			const started = Date.now();
			try {
				await h.run(steps);
			} catch (e) {
				const step = e instanceof Disagreement ? e.step : h.step;
				const msg = e instanceof Disagreement ? e.message : `${e.stack}\n${world.log().slice(-2000)}`;
				failures.push({ seed: h.spec.seed, step, message: msg, steps, started, ended: Date.now(), switchCrossed: !!e.switchCrossed });
				if (!world.proc || world.proc.exitCode !== null) {
					// a dead daemon: the rest of the group cannot run here
					await world.start().catch(() => {});
					if (!world.proc) break;
				}
			}
			checks += h.checks;
			for (const [k, v] of Object.entries(h.stats)) stats[k] = (stats[k] ?? 0) + v;
		}
	} finally {
		await world.stop();
		const log = world.log();
		if (/ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:/.test(log))
			failures.push({ seed: seeds[0], step: null, message: `sanitizer report in allotd.log (seeds ${seeds.join(',')}):\n${log.slice(-4000)}`, steps: [] });
		const keep = o.keep || (failures.length > 0 && !o.shrinking);
		world.cleanup(keep);
		if (keep && failures.length) console.error(`model: daemon directory kept: ${world.dir}`);
	}
	return { failures, checks, stats };
}

function crossedMidnight(seed, f) {
	const zone = worldOf(seed).zone;
	return f.ended && tz.dayKey(zone, f.started) !== tz.dayKey(zone, f.ended);
}

async function shrink(o, f) {
	const upto = Math.min(f.steps.length, f.step + 1);
	for (let n = 0; n <= upto; n++) {
		const r = await runGroup({ ...o, shrinking: n < upto }, [f.seed], n);
		if (r.failures.length) return { n, failure: r.failures[0] };
	}
	return null;
}

async function main() {
	const o = options();
	const t0 = Date.now();
	// the hand-written histories of regress.mjs first, then the generated ones
	let seeds = o.seeds ? o.seeds : o.only !== null ? [o.only]
		: [...REG.keys(), ...Array.from({ length: o.histories }, (_, i) => o.seed + i)];
	const byClass = new Map();
	for (const s of seeds) {
		const c = s % CLASSES;
		if (!byClass.has(c)) byClass.set(c, []);
		byClass.get(c).push(s);
	}
	const groups = [];
	for (const ss of byClass.values())
		for (let i = 0; i < ss.length; i += o.group) groups.push(ss.slice(i, i + o.group));
	let failed = 0, checks = 0, done = 0, reruns = 0;
	const stats = {};
	// Groups run o.jobs at a time (a daemon and this process share the CPUs);
	// reports of a failing group are printed when it ends.
	const report = async (g, r) => {
		checks += r.checks;
		for (const [k, v] of Object.entries(r.stats)) stats[k] = (stats[k] ?? 0) + v;
		for (const f of r.failures) {
			if (crossedMidnight(f.seed, f) || f.switchCrossed) {
				// a local midnight passed during the history (periods moved
				// under it), or a charter's instant during the failing step
				reruns++;
				const again = await runGroup(o, [f.seed], o.prefix);
				checks += again.checks;
				if (!again.failures.length) continue;
			}
			failed++;
			const w = worldOf(f.seed);
			console.error(`\nmodel: DISAGREEMENT seed ${f.seed} (zone ${w.zone}, late_grace ${w.graceDays} days) at step ${f.step}:`);
			console.error(`  ${f.message}`);
			if (o.shrink && f.step !== null) {
				const s = await shrink(o, f);
				if (s) {
					console.error(`model: shortest failing prefix of seed ${f.seed}: ${s.n} step(s); it fails at step ${s.failure.step}: ${s.failure.message}`);
					console.error(`model: the prefix:\n${s.failure.steps.map((x, i) => `  ${i}: ${JSON.stringify(x)}`).join('\n')}`);
					console.error(`model: reproduce: ${Object.keys(o.features).length ? `ALLOT_MODEL_FEATURES=${Object.keys(o.features).join(',')} ` : ''}node tests/model/model.mjs --only ${f.seed} --prefix ${s.n}`);
				} else {
					console.error(`model: no prefix of seed ${f.seed} fails when run alone (timing-dependent?); reproduce: node tests/model/model.mjs --only ${f.seed}`);
				}
			}
		}
		done += g.length;
		if (o.verbose) console.log(`model: ${done}/${seeds.length} histories, ${checks} checks, ${Math.round((Date.now() - t0) / 1000)} s`);
	};
	let next = 0;
	const worker = async () => {
		while (next < groups.length) {
			const g = groups[next++];
			await report(g, await runGroup(o, g, o.prefix));
		}
	};
	await Promise.all(Array.from({ length: Math.min(o.jobs, groups.length) }, worker));
	console.log(`model: exercised: ${Object.entries(stats).sort().map(([k, v]) => `${k} ${v}`).join(', ')}`);
	const feat = Object.keys(o.features).join(',') || 'none';
	console.log(`model: ${seeds.length} histories (${REG.size && !o.seeds && o.only === null ? `${REG.size} hand-written, ` : ''}seeds ${o.only ?? o.seed}..${seeds[seeds.length - 1]}), ${groups.length} daemons, ${checks} checks, ${reruns} timing reruns (midnight or charter switch), features: ${feat}: ${failed} disagreed (${Math.round((Date.now() - t0) / 1000)} s)`);
	process.exit(failed ? 1 : 0);
}

main().catch((e) => {
	console.error(`model: ${e.stack ?? e}`);
	process.exit(2);
});
