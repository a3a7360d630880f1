// history.mjs — runs one generated history against a World's allotd and
// compares every answer, every quota level and every report with the model.
// A disagreement throws Disagreement naming the step.
import { Ledger } from './ledger.mjs';
import { PROMPTS } from './gen.mjs';
import * as tz from './tz.mjs';
import { fmtMoney, http, keypair, max, min, parseMoney, rng, sign } from './util.mjs';

export class Disagreement extends Error {
	constructor(step, msg) {
		super(msg);
		this.step = step;
	}
}

const clone = (p) => JSON.parse(JSON.stringify(p, (k, v) => (typeof v === 'bigint' ? `${v}n` : v)),
	(k, v) => (typeof v === 'string' && /^-?\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v));

export class History {
	constructor(world, spec, features) {
		this.world = world;
		this.spec = spec;
		this.f = features;
		const S = spec.seed;
		this.ns = { inst: `h${S}`, provider: `p${S}`, cls: `c${S}`, model: `m${S}` };
		const kp = keypair();
		this.priv = kp.privateKey;
		this.pub = kp.pub;
		this.ledger = new Ledger(this.ns, world, clone(spec.params));
		this.accepted = []; // record ids accepted, in order
		this.refused = []; // record ids rejected (for good), in order
		this.seq = 0;
		this.tokens = {};
		this.promptTokens = new Map();
		this.step = -1;
		this.checks = 0;
		this.stats = {};
	}

	count(k) { this.stats[k] = (this.stats[k] ?? 0) + 1; }

	fail(msg) { throw new Disagreement(this.step, msg); }

	expect(what, want, got) {
		this.checks++;
		if (String(want) !== String(got))
			this.fail(`${what}: model says ${want}, allotd says ${got}`);
	}

	async setup() {
		const W = this.world;
		const r = await http(W.url, 'POST', '/v1/keys', W.adminKey, { role: 'provider', provider: this.ns.provider });
		if (r.status !== 201 && r.status !== 200) this.fail(`provider key: ${r.status} ${r.text}`);
		this.pkey = r.json.secret;
		for (const [proj, pr] of Object.entries(this.ledger.params.projects))
			for (const m of pr.members) {
				const t = await http(W.url, 'POST', '/v1/tokens', W.adminKey,
					{ institution: this.ns.inst, project: proj, member: `${m}@${this.ns.inst}`, ttl: 7200 });
				if (t.status !== 201) this.fail(`mint token: ${t.status} ${t.text}`);
				this.tokens[m] = { token: t.json.token, proj, member: `${m}@${this.ns.inst}` };
			}
	}

	async run(steps) {
		await this.setup();
		await this.checkQuotas();
		for (this.step = 0; this.step < steps.length; this.step++) {
			const s = steps[this.step];
			await this.clearOfSwitch();
			const started = Date.now();
			try {
				await this[`do_${s.t}`](s);
			} catch (e) {
				// A step slowed down past a scheduled charter's instant (a
				// loaded machine) was judged against one charter while allotd
				// used two: model.mjs runs such a history again.
				if (e instanceof Disagreement && this.switchedDuring(started, Date.now()))
					e.switchCrossed = true;
				throw e;
			}
			await this.clearOfSwitch();
			await this.checkQuotas();
		}
		this.step = steps.length;
		await this.checkListing();
	}

	// No step runs within 1.5 s of a scheduled charter's instant, so that each
	// request is judged wholly before or wholly after it.
	async clearOfSwitch() {
		for (const e of this.ledger.paramsAt) {
			const d = e.eff - Date.now();
			if (d > -1500 && d < 1500) await new Promise((r) => setTimeout(r, d + 1500));
		}
	}

	// Whether a charter version took effect in (from, to].
	switchedDuring(from, to) {
		return this.ledger.paramsAt.some((e) => e.eff > from && e.eff <= to);
	}

	// Until every version applied so far is in force (a burst is judged
	// against the charter its tighten step applied, which is scheduled when
	// an earlier version's instant is still ahead).
	async untilInForce() {
		const last = Math.max(...this.ledger.paramsAt.map((e) => e.eff));
		const d = last - Date.now();
		if (d >= 0) await new Promise((r) => setTimeout(r, d + 100));
	}

	// ---- time: ends relative to now, avoiding instants where the late
	// decision could go either way while the request is in flight ------------
	resolveEnd(w, now) {
		const Z = this.world.zone;
		let end;
		switch (w.k) {
		case 'recent': end = now - w.ago * 1000; break;
		case 'past': end = now - w.ago * 1000; break;
		case 'boundary': {
			let p = tz.period(Z, w.kind, now);
			for (let i = 0; i < w.back; i++) p = tz.period(Z, w.kind, p.start - 1);
			end = p.start + w.delta * 1000;
			break;
		}
		case 'dst': {
			const tr = tz.transitions(Z, now - 300 * 86400000, now - 60000);
			end = tr.length ? tr[tr.length - 1 - (w.n % tr.length)] + w.delta * 1000 : now - 86400000 * (w.n + 1);
			break;
		}
		case 'prehistory': end = this.world.ledgerStart - 86400000; break;
		case 'future': end = now + 86400000; break;
		default: throw new Error(w.k);
		}
		end = Math.floor(Math.min(end, now - 1000) / 1000) * 1000;
		if (w.k === 'future') end = Math.floor((now + 86400000) / 1000) * 1000;
		while (end >= this.world.ledgerStart && this.ledger.lateAmbiguous(end, now, 120000))
			end -= 600000;
		return end;
	}

	record(fields, end, dur) {
		return {
			record_id: fields.record_id, provider: this.ns.provider, seq: fields.seq ?? null,
			institution: this.ns.inst, project: fields.project, member: fields.member ?? null,
			resource: fields.resource, class: this.ns.cls, model: null, quantity: fields.quantity,
			start: tz.rfc3339(end - dur * 1000), end: tz.rfc3339(end),
			kind: fields.kind ?? 'usage', adjustment: fields.adjustment ?? null, supersedes: fields.supersedes ?? null,
		};
	}

	ref(i) {
		if (!this.accepted.length) return null;
		return this.ledger.records.get(this.accepted[i % this.accepted.length]);
	}

	// A record sent before, accepted or rejected (feature "rejections": a
	// refused record sent again, or its id reused, gets the first answer).
	refAny(i) {
		if (!this.f.rejections) return this.ref(i);
		const n = this.accepted.length + this.refused.length;
		if (!n) return null;
		const k = i % n;
		return k < this.accepted.length ? this.ledger.records.get(this.accepted[k])
			: this.ledger.rejections.get(this.refused[k - this.accepted.length]);
	}

	// Keeps the ids of what was decided, for later references.
	noteOutcomes(recs, want) {
		for (let i = 0; i < recs.length; i++) {
			if (want[i].status === 'accepted') this.accepted.push(recs[i].record_id);
			else if (want[i].status === 'rejected' && !this.refused.includes(recs[i].record_id)) this.refused.push(recs[i].record_id);
		}
	}

	buildBatch(ops, now) {
		const recs = [];
		let n = 0;
		const id = () => `r${this.spec.seed}-${this.step}-${n++}`;
		for (const op of ops) {
			if (op.op === 'new') {
				const end = this.resolveEnd(op.when, now);
				recs.push(this.record({ record_id: id(), seq: op.seq ? this.seq++ : null, project: op.proj,
					member: op.member ? `${op.member}@${this.ns.inst}` : null, resource: op.res, quantity: op.qty }, end, op.dur));
				continue;
			}
			if (op.op === 'foreign') {
				// a record naming the model of another provider (the bundled
				// backend's): refused (feature model_provider)
				if (!this.f.model_provider) continue;
				const end = this.resolveEnd(op.when, now);
				recs.push({ ...this.record({ record_id: id(), project: 'a', resource: 'gpu_seconds', quantity: 7 }, end, 60), model: this.ns.model });
				continue;
			}
			if (op.op === 'bad') {
				const end = this.resolveEnd(op.when, now);
				recs.push(this.record({ record_id: id(), project: op.what === 'project' ? 'zz' : 'a',
					member: op.what === 'member' ? `eve@${this.ns.inst}` : null, resource: 'gpu_seconds', quantity: 5 }, end, 60));
				continue;
			}
			const o = op.op === 'dup' || op.op === 'conflict' ? this.refAny(op.ref) : this.ref(op.ref);
			if (!o) continue;
			const base = o.rec;
			if (op.op === 'dup') { recs.push({ ...base }); continue; }
			if (op.op === 'conflict') { recs.push({ ...base, quantity: base.quantity + 1 }); continue; }
			if (base.kind !== 'usage') continue; // corrections of corrections: covered by 'void' below
			const end = this.resolveEnd(op.when, now);
			const common = { record_id: id(), project: base.project, member: base.member, resource: base.resource, supersedes: base.record_id };
			if (op.op === 'adj')
				recs.push(this.record({ ...common, kind: 'adjustment', adjustment: op.adj,
					quantity: Math.max(1, Math.floor(base.quantity * op.frac)) }, end, 0));
			else
				recs.push(this.record({ ...common, kind: 'void', quantity: op.wrong ? base.quantity + 1 : base.quantity }, end, 0));
		}
		return recs;
	}

	async do_batch(s) {
		const t0 = Date.now();
		const recs = this.buildBatch(s.ops, t0);
		if (!recs.length) return;
		const want = recs.map((r) => this.ledger.submit(r, t0));
		this.noteOutcomes(recs, want);
		const body = { records: recs.map((r) => sign(r, this.priv)) };
		const r = await this.post(body);
		this.compareBatch(recs, want, r.json.results);
	}

	// Batches of new records sent at once (they may share a group commit):
	// each record's outcome is as if alone, except `overage`, which depends
	// on the order the daemon books them in.
	async do_parallel(s) {
		const t0 = Date.now();
		const sets = [];
		for (const [j, ops] of s.batches.entries()) {
			const recs = this.buildBatch(ops, t0).map((r) => ({ ...r, record_id: `${r.record_id}-${j}` }));
			if (recs.length) sets.push(recs);
		}
		const wants = sets.map((recs) => recs.map((r) => this.ledger.submit(r, t0)));
		sets.forEach((recs, k) => this.noteOutcomes(recs, wants[k]));
		const rs = await Promise.all(sets.map((recs) => this.post({ records: recs.map((r) => sign(r, this.priv)) })));
		this.count('parallel batches');
		rs.forEach((r, i) => this.compareBatch(sets[i], wants[i].map((w) => ({ ...w, overage: undefined })), r.json.results));
	}

	async post(body) {
		const r = await http(this.world.url, 'POST', '/v1/usage', this.pkey, body);
		if (r.status !== 200) this.fail(`POST /v1/usage: ${r.status} ${r.text}`);
		return r;
	}

	compareBatch(recs, want, got, restarted = false) {
		this.expect('batch results', want.length, got.length);
		for (let i = 0; i < want.length; i++) {
			const w = want[i], g = got[i], id = recs[i].record_id;
			let status = w.status;
			if (restarted && status === 'accepted' && g.status === 'duplicate') status = 'duplicate';
			if (status !== g.status)
				this.fail(`record ${id} (${recs[i].kind}, end ${recs[i].end}): model says ${w.status}${w.why ? ` (${w.why})` : ''}, allotd says ${g.status}${g.reason ? ` (${g.reason})` : ''}`);
			this.count(status);
			if (status === 'accepted' && w.late) this.count('late');
			if (status === 'accepted' && w.overage) this.count('overage');
			if (status === 'accepted' && recs[i].kind !== 'usage') this.count('correction');
			if (status === 'accepted' || status === 'duplicate') {
				this.expect(`record ${id} charge`, fmtMoney(w.charge), g.charge);
				this.expect(`record ${id} late`, w.late, g.late);
				this.expect(`record ${id} charter_version`, w.charter_version, g.charter_version);
				if (status === 'accepted' && w.overage !== undefined) this.expect(`record ${id} overage`, w.overage, g.overage);
			}
		}
	}

	// ---- the gate --------------------------------------------------------------
	async promptCount(model, text, token) {
		if (!this.promptTokens.has(text)) {
			const r = await http(this.world.url, 'POST', '/v1/tokenize', token, { model, text });
			if (r.status !== 200) this.fail(`tokenize: ${r.status} ${r.text}`);
			this.promptTokens.set(text, r.json.count);
		}
		return this.promptTokens.get(text);
	}

	// Predicts (status, worst) for one completion of the member now.
	async predictGate(tk, maxTokens, prompt, now) {
		const pr = this.ledger.paramsAtTime(now).projects[tk.proj];
		if (pr.maxTok && maxTokens > pr.maxTok) return { status: 400 };
		const pt = await this.promptCount(this.ns.model, prompt, tk.token);
		const worst = this.ledger.worst(pt, maxTokens, now);
		const rooms = this.ledger.room(tk.proj, tk.member, now);
		return { status: rooms.every((r) => worst <= r) ? 200 : 402, pt, worst, rooms };
	}

	async complete(tk, maxTokens, prompt) {
		return http(this.world.url, 'POST', '/v1/completions', tk.token,
			{ model: this.ns.model, prompt, max_tokens: maxTokens, temperature: 0 });
	}

	async do_gate(s) {
		const tk = this.tokens[s.member];
		const prompt = PROMPTS[s.prompt];
		const t0 = Date.now();
		const want = await this.predictGate(tk, s.maxTokens, prompt, t0);
		const r = await this.complete(tk, s.maxTokens, prompt);
		this.expect(`gate ${s.member} max_tokens ${s.maxTokens} worst ${want.worst !== undefined ? fmtMoney(want.worst) : '-'} rooms ${(want.rooms ?? []).map(fmtMoney)} status (${r.text.slice(0, 200)})`, want.status, r.status);
		this.count(`gate ${r.status}`);
		if (r.status !== 200) return;
		const charge = this.booked(tk, want, r.json.usage, s.maxTokens, t0);
		// X-Allot-Remaining: the tightest level's room after this request
		// (docs/GATE.md; on a tie the first of member, project, institution)
		let at = 0;
		want.rooms.forEach((x, i) => { if (x < want.rooms[at]) at = i; });
		const levels = this.ledger.levels(this.ledger.paramsAtTime(t0), tk.proj, tk.member);
		this.expect('X-Allot-Remaining', fmtMoney(max(0n, want.rooms[at] - charge)), r.headers.get('x-allot-remaining'));
		this.expect('X-Allot-Remaining-Level', levels[at].level, r.headers.get('x-allot-remaining-level'));
	}

	booked(tk, want, usage, maxTokens, t0) {
		this.expect('usage.prompt_tokens', want.pt, usage.prompt_tokens);
		if (usage.completion_tokens > maxTokens)
			this.fail(`completion_tokens ${usage.completion_tokens} > max_tokens ${maxTokens}`);
		return this.ledger.settle(tk.proj, tk.member, usage.prompt_tokens, usage.completion_tokens, t0);
	}

	// A burst of concurrent requests against a project made tight first: no
	// level may be spent past its room, and used == the answers' charges.
	async do_burst(s) {
		const members = Object.values(this.tokens).filter((t) => t.proj === s.proj);
		const prompt = PROMPTS[0];
		// A version scheduled by an earlier step (its instant a few seconds
		// ahead) would switch the rates or max_tokens between the worst case
		// computed here and the burst: the burst's own charter is applied
		// after it and put in force with it.  So the burst starts once every
		// version applied so far is in force, and its worst case is that of
		// the charter the burst runs under.
		await this.untilInForce();
		const t0 = Date.now();
		const pt = await this.promptCount(this.ns.model, prompt, members[0].token);
		const mt = Math.min(s.maxTokens, this.ledger.paramsAtTime(t0).projects[s.proj].maxTok ?? s.maxTokens);
		const worst = this.ledger.worst(pt, mt, t0);
		await this.tighten(s.proj, BigInt(Math.round(s.room * 1000)) * worst / 1000n, t0, true);
		await this.untilInForce();
		const t1 = Date.now();
		const before = members.map((tk) => this.ledger.room(tk.proj, tk.member, t1));
		const tks = Array.from({ length: s.k }, (_, i) => members[i % members.length]);
		const rs = await Promise.all(tks.map((tk) => this.complete(tk, mt, prompt)));
		const spent = new Map();
		let admitted = 0;
		rs.forEach((r, i) => {
			if (r.status === 402) return;
			if (r.status !== 200) this.fail(`burst request: ${r.status} ${r.text.slice(0, 200)}`);
			admitted++;
			const c = this.booked(tks[i], { pt }, r.json.usage, mt, t1);
			for (const lv of this.ledger.levels(this.ledger.paramsAtTime(t1), tks[i].proj, tks[i].member))
				spent.set(lv.key, (spent.get(lv.key) ?? 0n) + c);
		});
		members.forEach((tk, j) => {
			this.ledger.levels(this.ledger.paramsAtTime(t1), tk.proj, tk.member).forEach((lv, i) => {
				const sp = spent.get(lv.key) ?? 0n;
				this.checks++;
				if (sp > max(0n, before[j][i]))
					this.fail(`burst overshoot at ${lv.key}: ${fmtMoney(sp)} charged, room was ${fmtMoney(before[j][i])}`);
			});
		});
		this.count(admitted === s.k ? 'burst all admitted' : admitted ? 'burst partly admitted' : 'burst none admitted');
		const fits = members.some((tk, j) => before[j].every((r) => worst <= r) && tks.includes(tk));
		this.expect(`burst: some request admitted iff the worst case ${fmtMoney(worst)} fits`, fits, admitted > 0);
	}

	// Sets project proj's allocation so that its room is about `room`; with
	// loosen, the member and institution levels get more room than that.
	async tighten(proj, room, now, loosen = false) {
		const p = clone(this.ledger.params);
		const pr = p.projects[proj];
		const [q, qi] = this.ledger.quota(proj, null, now);
		// loosen: no rollover at this project, so that the room is exact
		if (loosen) pr.alloc.ppm = 0n;
		const c = max(0n, q.used - (loosen ? 0n : q.rollover) + room);
		pr.alloc.credits = c;
		if (pr.memberAlloc) {
			pr.memberAlloc.credits = loosen ? c : min(pr.memberAlloc.credits, c);
			if (loosen) pr.memberAlloc.ppm = 0n;
		}
		const sum = Object.values(p.projects).reduce((a, x) => a + x.alloc.credits, 0n);
		if (sum > p.inst.credits) p.inst.credits = sum;
		if (loosen) p.inst.credits = max(p.inst.credits, max(0n, qi.used) + 2n * sum + 1000000n);
		await this.applyParams(p);
	}

	// Applies p now, or (feature scheduled, when `later` is given) with an
	// effective 2..5 s ahead: nothing may change before that instant.
	async applyParams(p, later = 0) {
		this.count(later && this.f.scheduled ? 'charter scheduled' : 'charter');
		let eff = Math.floor(Date.now() / 1000) * 1000 - 1000;
		if (later && this.f.scheduled) eff += (1 + later) * 1000;
		// never before the latest version (SPEC: effective does not go back)
		eff = Math.max(eff, this.world.versions[this.world.versions.length - 1].eff);
		const prev = this.ledger.paramsAt.length;
		this.ledger.setParams(eff, p);
		try {
			await this.world.apply(eff);
		} catch (e) {
			this.ledger.paramsAt.length = prev;
			this.fail(e.message);
		}
	}

	async do_charter(s) {
		const r = rng(s.x);
		const later = r.chance(0.5) ? r.int(2, 4) : 0;
		const p = clone(this.ledger.params);
		if (s.change === 'rates') {
			p.rates = { gpu: BigInt(r.int(1, 40000)), cpu: BigInt(r.int(1, 900)), tin: BigInt(r.int(10, 3000)), tout: BigInt(r.int(10, 9000)) };
		} else if (s.change === 'alloc') {
			p.inst.credits = BigInt(r.int(1, 3000)) * 1000000n + BigInt(r.int(0, 999999));
			p.projects.a.alloc.credits = p.inst.credits / BigInt(r.int(2, 5));
			p.projects.b.alloc.credits = (p.inst.credits - p.projects.a.alloc.credits) / BigInt(r.int(1, 3));
			if (p.projects.a.memberAlloc)
				p.projects.a.memberAlloc.credits = p.projects.a.alloc.credits / BigInt(r.int(1, 4));
		} else if (s.change === 'tighten') {
			return this.tighten(r.pick(['a', 'b']), BigInt(r.int(0, 20000)), Date.now());
		} else {
			p.mode = p.mode === 'hard' ? 'soft' : 'hard';
			p.gracePpm = p.mode === 'soft' ? r.pick([0n, 100000n, 125000n, 500000n, 1000000n]) : 0n;
		}
		await this.applyParams(p, later);
	}

	// ---- kill -9 and restart: everything acknowledged is there exactly once --
	// A batch may be in flight when the daemon dies: sent again after the
	// restart, each of its records is accepted once in all (acknowledged ones
	// come back as duplicates with their original outcome).
	async do_restart(s) {
		this.count('kill -9');
		let recs = [], want = [], body = null, sent = null;
		const gates = s.gates ? await this.gatesInFlight(s.gates) : null;
		if (s.inflight) {
			const t0 = Date.now();
			recs = this.buildBatch(s.inflight, t0);
			want = recs.map((r) => this.ledger.submit(r, t0));
			this.noteOutcomes(recs, want);
			body = { records: recs.map((r) => sign(r, this.priv)) };
			if (recs.length) sent = http(this.world.url, 'POST', '/v1/usage', this.pkey, body).catch((e) => ({ status: 0, error: e }));
		}
		if (s.inflight || gates) await new Promise((r) => setTimeout(r, s.delay));
		await this.world.kill9();
		const first = sent ? await sent : null;
		await this.world.start();
		if (gates) await this.gatesAfter(gates);
		if (first) {
			if (first.status === 200) {
				this.count('in flight, answered');
				this.compareBatch(recs, want, first.json.results);
			} else {
				this.count('in flight, cut');
			}
			const again = await this.post(body);
			const dupes = want.map((w) => (w.status === 'accepted' && first.status === 200 ? { ...w, status: 'duplicate' } : w));
			this.compareBatch(recs, dupes, again.json.results, first.status !== 200);
		}
		await this.checkListing();
	}

	// Completions of distinct members in flight at kill -9 (started here,
	// before the batch's delay).  An answered one is booked as usual; one cut
	// off is charged in full or not at all, never twice: its member's new
	// gate records after the restart are none, or its tokens_in and
	// tokens_out records, which the model then books as listed.
	async gatesInFlight(n) {
		const before = new Set((await this.listing()).filter((x) => x.provider === 'local').map((x) => x.record_id));
		const t0 = Date.now();
		const tks = Object.values(this.tokens).slice(0, n);
		const mt = 8, prompt = PROMPTS[1];
		const pt = await this.promptCount(this.ns.model, prompt, tks[0].token);
		const calls = tks.map((tk) => this.complete(tk, Math.min(mt, this.ledger.paramsAtTime(t0).projects[tk.proj].maxTok ?? mt), prompt)
			.catch(() => ({ status: 0 })));
		return { before, t0, tks, pt, calls };
	}

	async gatesAfter(g) {
		const rs = await Promise.all(g.calls);
		const fresh = (await this.listing()).filter((x) => x.provider === 'local' && !g.before.has(x.record_id));
		rs.forEach((r, i) => {
			const tk = g.tks[i];
			const mine = fresh.filter((x) => x.member === tk.member);
			if (r.status === 200) {
				this.count('gate in flight, answered');
				const u = r.json.usage;
				this.booked(tk, { pt: g.pt }, u, 8, g.t0);
				this.expect(`gate records of ${tk.member} answered before kill -9`, (u.prompt_tokens > 0) + (u.completion_tokens > 0), mine.length);
				return;
			}
			if (r.status !== 0) {
				this.count(`gate in flight ${r.status}`);
				this.expect(`gate records of ${tk.member} refused before kill -9`, 0, mine.length);
				return;
			}
			this.count(mine.length ? 'gate in flight, cut, charged' : 'gate in flight, cut, not charged');
			if (!mine.length) return;
			const tin = mine.find((x) => x.resource === 'tokens_in'), tout = mine.find((x) => x.resource === 'tokens_out');
			this.checks++;
			if (!tin || mine.length > 2 || mine.filter((x) => x.resource === 'tokens_in').length !== 1)
				this.fail(`gate records of ${tk.member} cut off by kill -9: ${JSON.stringify(mine)}`);
			this.expect(`cut-off request of ${tk.member}: prompt tokens`, g.pt, tin.quantity);
			const ct = tout ? tout.quantity : 0;
			if (ct > 8) this.fail(`cut-off request of ${tk.member}: ${ct} completion tokens > max_tokens 8`);
			const book = Date.parse(tin.booked);
			const charge = this.ledger.settle(tk.proj, tk.member, g.pt, ct, book);
			const listed = mine.reduce((a, x) => a + parseMoney(x.charge), 0n);
			this.expect(`cut-off request of ${tk.member}: charge`, fmtMoney(charge), fmtMoney(listed));
		});
	}

	async listing() {
		const W = this.world;
		const got = [];
		let after = null;
		for (;;) {
			const r = await http(W.url, 'GET', `/v1/usage?institution=${this.ns.inst}&limit=1000${after ? `&after=${after}` : ''}`, W.adminKey);
			if (r.status !== 200) this.fail(`list usage: ${r.status} ${r.text}`);
			got.push(...r.json.records);
			if (!r.json.next) return got;
			after = r.json.next;
		}
	}

	// ---- checks ---------------------------------------------------------------
	async checkQuotas() {
		const W = this.world;
		for (const proj of Object.keys(this.ledger.params.projects)) {
			const now = Date.now();
			const r = await http(W.url, 'GET', `/v1/quotas/${this.ns.inst}/${proj}`, W.adminKey);
			if (r.status !== 200) this.fail(`quota ${proj}: ${r.status} ${r.text}`);
			const want = this.ledger.quota(proj, null, now);
			this.compareLevels(`quota ${this.ns.inst}/${proj}`, want, r.json.levels);
			const pr = this.ledger.params.projects[proj];
			const members = r.json.members ?? [];
			this.expect(`quota ${proj} member levels`, pr.memberAlloc ? pr.members.length : 0, members.length);
			if (pr.memberAlloc)
				pr.members.forEach((m, i) => this.compareLevels(`quota member ${m}`,
					[this.ledger.quota(proj, `${m}@${this.ns.inst}`, now)[0]], [members[i]]));
		}
	}

	compareLevels(what, want, got) {
		this.expect(`${what}: levels`, want.map((q) => q.level).join(','), got.map((q) => q.level).join(','));
		want.forEach((w, i) => {
			const g = got[i], at = `${what} ${w.level} ${w.id}`;
			for (const k of ['allocation', 'rollover', 'used', 'reserved', 'remaining', 'overage'])
				this.expect(`${at} ${k}`, fmtMoney(w[k]), fmtMoney(parseMoney(g[k])));
			if (w.grace !== undefined) this.expect(`${at} grace`, fmtMoney(w.grace), fmtMoney(parseMoney(g.grace)));
			this.expect(`${at} overage_mode`, w.overage_mode, g.overage_mode);
			this.expect(`${at} period`, w.period, g.period);
			if (w.period === 'total') this.expect(`${at} period_start`, null, g.period_start);
			else {
				this.expect(`${at} period_start`, tz.rfc3339(w.period_start), tz.rfc3339(Date.parse(g.period_start)));
				this.expect(`${at} period_end`, tz.rfc3339(w.period_end), tz.rfc3339(Date.parse(g.period_end)));
			}
			if (w.alerts_crossed) this.expect(`${at} alerts_crossed`, JSON.stringify(w.alerts_crossed), JSON.stringify(g.alerts_crossed));
		});
	}

	// Every record the model booked is listed exactly once (and nothing else).
	async checkListing() {
		const got = await this.listing();
		const prov = got.filter((x) => x.provider === this.ns.provider).map((x) => x.record_id).sort();
		const want = this.ledger.books.filter((b) => b.id).map((b) => b.id).sort();
		this.expect('provider records listed once each', want.join(' '), prov.join(' '));
		this.expect('gate records listed', this.ledger.books.filter((b) => !b.id).length, got.filter((x) => x.provider === 'local').length);
	}

	async do_report(s) {
		const Z = this.world.zone, now = Date.now();
		const k0 = this.ledger.paramsAtTime(now).kind;
		const kind = k0 === 'total' ? 'month' : k0;
		let from = -Infinity, to = Infinity;
		if (s.range === 'current') ({ start: from, end: to } = tz.period(Z, kind, now));
		else if (s.range === 'previous') ({ start: from, end: to } = tz.prevPeriod(Z, kind, now));
		else if (s.range === 'days') {
			to = tz.period(Z, 'day', now).start;
			from = to;
			for (let i = 0; i < 3; i++) from = tz.period(Z, 'day', from - 1).start;
		}
		const q = [`institution=${this.ns.inst}`, 'format=json'];
		if (s.groups.length) q.push(`group_by=${s.groups.join(',')}`);
		if (from !== -Infinity) q.push(`from=${this.f.report_tz ? tz.dayKey(Z, from) : tz.rfc3339(from)}`);
		if (to !== Infinity) q.push(`to=${this.f.report_tz ? tz.dayKey(Z, to) : tz.rfc3339(to)}`);
		const r = await http(this.world.url, 'GET', `/v1/reports/usage?${q.join('&')}`, this.world.adminKey);
		this.count('report');
		if (r.status !== 200) this.fail(`report ${q.join('&')}: ${r.status} ${r.text}`);
		const what = `report ${q.join('&')}`;
		const tot = this.ledger.total(from, to);
		this.expect(`${what} total charge`, fmtMoney(tot.charge), r.json.total.charge);
		this.expect(`${what} total records`, tot.records, r.json.total.records);
		const want = this.ledger.report(from, to, s.groups, !!this.f.net_qty);
		// Without group_by the answer is one row, the total, even when empty.
		if (!s.groups.length && !want.size)
			want.set('[]', { key: [], charge: 0n, records: 0, quantity: 0n, qtyOk: true });
		// Group keys: with report_keys, projects must be qualified
		// (`inst/proj`, SPEC section 8); without, either form is taken.
		// A member key is `inst/proj/member`, or `inst/proj` for usage
		// without a member (docs/LEDGER.md, "Qualified keys"); compared by
		// the member part ('' for the project-level usage).
		const norm = (g, v) => {
			if (g === 'member') {
				const parts = v.split('/');
				return parts.length === 2 ? `/${parts[1]}` : parts.pop();
			}
			if (!this.f.report_keys && (g === 'project' || g === 'institution')) return v.split('/').pop();
			return v;
		};
		const qual = (g, v) => (this.f.report_keys && g === 'project' ? `${this.ns.inst}/${v}` : v);
		const gotRows = new Map();
		for (const row of r.json.rows)
			gotRows.set(JSON.stringify(s.groups.map((g) => norm(g, row[g]))), row);
		const wantRows = new Map();
		for (const w of want.values())
			wantRows.set(JSON.stringify(w.key.map((v, i) => qual(s.groups[i], v))), w);
		this.expect(`${what} row keys`, [...wantRows.keys()].sort().join(' '), [...gotRows.keys()].sort().join(' '));
		for (const [k, w] of wantRows) {
			const g = gotRows.get(k);
			this.expect(`${what} row ${k} charge`, fmtMoney(w.charge), g.charge);
			this.expect(`${what} row ${k} records`, w.records, g.records);
			if (s.groups.includes('resource') && w.qtyOk) this.expect(`${what} row ${k} quantity`, w.quantity, g.quantity);
		}
	}
}
