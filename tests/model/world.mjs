// world.mjs — one allotd for a group of histories: the daemon process (start,
// kill -9, restart on the same --db and --keys), the group's charter (one
// institution, provider, class and model per history) and its versions.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fmtMoney, http, sleep } from './util.mjs';

function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const p = s.address().port;
			s.close(() => resolve(p));
		});
	});
}

function frac(v, digits) { // v / 10^digits as a decimal
	const one = 10n ** BigInt(digits);
	const f = (v % one).toString().padStart(digits, '0').replace(/0+$/, '');
	return (v / one).toString() + (f ? '.' + f : '');
}

function allocYaml(a, kind) {
	return `{credits: ${fmtMoney(a.credits)}, period: ${kind}${a.ppm > 0n ? `, rollover: ${frac(a.ppm, 6)}` : ''}}`;
}

export class World {
	constructor(opts) {
		this.opts = opts; // {bin, models, zone, graceDays, log}
		this.zone = opts.zone;
		this.graceMs = opts.graceDays * 86400000;
		const now = Date.now();
		this.ledgerStart = Math.floor((now - 200 * 86400000) / 86400000) * 86400000;
		this.versions = [];
		this.histories = []; // {ns, pub, ledger}
		this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'allot-model.'));
		this.adminKey = 'model-admin-' + Math.random().toString(16).slice(2);
		this.proc = null;
	}

	charterYaml(version, eff) {
		const L = [`charter: model-test`, `version: ${version}`, `effective: ${new Date(eff).toISOString().replace(/\.\d+Z$/, 'Z')}`,
			`timezone: ${this.zone}`, `late_grace: {days: ${this.opts.graceDays}}`, 'rates:'];
		for (const h of this.histories) {
			const r = h.ledger.params.rates;
			L.push(`  - {resource: gpu_seconds, class: ${h.ns.cls}, credits: ${fmtMoney(r.gpu)}}`,
				`  - {resource: cpu_seconds, class: ${h.ns.cls}, credits: ${fmtMoney(r.cpu)}}`,
				`  - {resource: tokens_in, model: ${h.ns.model}, credits: ${fmtMoney(r.tin)}}`,
				`  - {resource: tokens_out, model: ${h.ns.model}, credits: ${fmtMoney(r.tout)}}`);
		}
		L.push('providers:', '  - {id: local, builtin: true}');
		for (const h of this.histories)
			L.push(`  - {id: ${h.ns.provider}, keys: ["${h.pub}"], resources: [gpu_seconds, cpu_seconds]}`);
		L.push('models:');
		for (const h of this.histories)
			L.push(`  - {id: ${h.ns.model}, provider: local, file: stories260K.gguf}`);
		L.push('institutions:');
		for (const h of this.histories) {
			const p = h.ledger.params;
			L.push(`  - id: ${h.ns.inst}`, `    allocation: ${allocYaml(p.inst, p.kind)}`,
				p.mode === 'hard' ? '    overage: {mode: hard}' : `    overage: {mode: soft, grace_percent: ${frac(p.gracePpm, 4)}}`);
			if (p.alerts.length) L.push(`    alerts: [${p.alerts.join(', ')}]`);
			L.push(`    models: [${h.ns.model}]`, '    projects:');
			for (const [id, pr] of Object.entries(p.projects)) {
				L.push(`      - id: ${id}`, `        allocation: ${allocYaml(pr.alloc, p.kind)}`);
				if (pr.memberAlloc) L.push(`        member_allocation: ${allocYaml(pr.memberAlloc, p.kind)}`);
				if (pr.maxTok) L.push(`        limits: {max_tokens_per_request: ${pr.maxTok}}`);
				L.push(`        members: [${pr.members.map((m) => `${m}@${h.ns.inst}`).join(', ')}]`);
			}
		}
		return L.join('\n') + '\n';
	}

	async start() {
		this.port = await freePort();
		this.url = `http://127.0.0.1:${this.port}`;
		const log = fs.openSync(path.join(this.dir, 'allotd.log'), 'a');
		this.proc = spawn(path.join(this.opts.bin, 'allotd'), [
			'--listen', `127.0.0.1:${this.port}`, '--db', path.join(this.dir, 'allot.db'),
			'--keys', path.join(this.dir, 'keys'), '--models', this.opts.models,
			'--charter', path.join(this.dir, 'charter.yaml'), '--threads', '1',
		], { env: { ...process.env, ALLOT_ADMIN_KEY: this.adminKey }, stdio: ['ignore', log, log] });
		fs.closeSync(log);
		let exited = false;
		this.proc.once('exit', () => { exited = true; });
		for (let i = 0; i < 200 && !exited; i++) {
			try {
				const r = await fetch(this.url + '/healthz', { signal: AbortSignal.timeout(5000) });
				if (r.ok) return;
			} catch { /* not yet */ }
			await sleep(50);
		}
		throw new Error(`allotd did not start; log:\n${this.log().slice(-3000)}`);
	}

	log() {
		try { return fs.readFileSync(path.join(this.dir, 'allotd.log'), 'utf8'); } catch { return ''; }
	}

	// Writes version 1 and starts the daemon.
	async boot() {
		this.versions.push({ version: 1, eff: this.ledgerStart });
		fs.writeFileSync(path.join(this.dir, 'charter.yaml'), this.charterYaml(1, this.ledgerStart));
		await this.start();
	}

	// Applies the next version with every history's current parameters.
	async apply(eff) {
		const version = this.versions[this.versions.length - 1].version + 1;
		const r = await http(this.url, 'PUT', '/v1/charter', this.adminKey, this.charterYaml(version, eff));
		if (r.status !== 200 && r.status !== 201)
			throw new Error(`charter version ${version} refused: ${r.status} ${r.text}`);
		this.versions.push({ version, eff });
		return version;
	}

	async kill9() {
		const p = this.proc;
		this.proc = null;
		if (!p || p.exitCode !== null) return;
		const done = new Promise((r) => p.once('exit', r));
		p.kill('SIGKILL');
		await done;
	}

	async stop() {
		const p = this.proc;
		this.proc = null;
		if (!p || p.exitCode !== null) return;
		const done = new Promise((r) => p.once('exit', r));
		p.kill('SIGTERM');
		const t = setTimeout(() => p.kill('SIGKILL'), 10000);
		await done;
		clearTimeout(t);
	}

	cleanup(keep) {
		if (!keep) fs.rmSync(this.dir, { recursive: true, force: true });
	}
}
