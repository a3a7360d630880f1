// ledger.mjs — the independent model of one history's part of the ledger:
// it prices records from the charter (exact BigInt micro-credits), chooses
// periods by `end` in the charter's zone, applies duplicates, conflicts,
// corrections and lateness, books gate settlements, and predicts every quota
// level and report row.  It reads nothing from allot but the answers it is
// judging; SPEC.md sections 2, 6, 7, 8 and docs/LEDGER.md are its source.
import { canonical, max, min } from './util.mjs';
import * as tz from './tz.mjs';

const PPM = 1000000n;

export class Ledger {
	// ns: {inst, provider, cls, model}; world: {zone, graceMs, ledgerStart,
	// versions: [{version, eff}]} shared by the histories of one daemon.
	constructor(ns, world, params) {
		this.ns = ns;
		this.world = world;
		this.paramsAt = [{ eff: world.ledgerStart, params }];
		this.records = new Map(); // record_id -> {canon, outcome, rec, rate, net, voided}
		// Refused records are decided for good (SPEC section 6, docs/LEDGER.md
		// "Rejections are final"): record_id -> {canon, outcome, rec}.
		this.rejections = new Map();
		this.books = []; // every accepted charge
	}

	// The latest parameters (scheduled or not): what a change starts from.
	get params() { return this.paramsAt[this.paramsAt.length - 1].params; }

	// The parameters in force at ms (SPEC section 2, effective dates).
	paramsAtTime(ms) {
		let p = null;
		for (const e of this.paramsAt)
			if (e.eff <= ms) p = e.params;
		return p;
	}

	versionAt(ms) {
		let v = null;
		for (const e of this.world.versions)
			if (e.eff <= ms) v = e.version;
		return v;
	}

	setParams(eff, params) { this.paramsAt.push({ eff, params }); }

	// The levels a charge touches: [{key, kind, alloc: {credits, ppm, period}}].
	levels(params, proj, member) {
		const p = params.projects[proj];
		const out = [];
		if (member && p.memberAlloc)
			out.push({ key: `${this.ns.inst}/${proj}/${member}`, level: 'member', proj, member, alloc: p.memberAlloc });
		out.push({ key: `${this.ns.inst}/${proj}`, level: 'project', proj, alloc: p.alloc });
		out.push({ key: this.ns.inst, level: 'institution', alloc: params.inst });
		return out;
	}

	matches(b, lv) {
		if (lv.level === 'member') return b.proj === lv.proj && b.member === lv.member;
		if (lv.level === 'project') return b.proj === lv.proj;
		return true;
	}

	used(lv, start, end) {
		let s = 0n;
		for (const b of this.books)
			if (b.book >= start && b.book < end && this.matches(b, lv)) s += b.charge;
		return s;
	}

	// Rollover into the period holding ms (PERIODS.md): once, not compounded,
	// floor; nothing from a period that ended before the ledger began.
	rollover(lv, kind, ms) {
		const a = lv.alloc;
		if (a.ppm === 0n || kind === 'total') return 0n;
		const prev = tz.prevPeriod(this.world.zone, kind, ms);
		if (!(prev.end > this.world.ledgerStart)) return 0n;
		const u = this.used(lv, prev.start, prev.end);
		const unused = min(a.credits, max(0n, a.credits - u));
		return (unused * a.ppm) / PPM;
	}

	// Every figure of each level at instant ms under the active charter.
	quota(proj, member, ms) {
		const params = this.paramsAtTime(ms);
		return this.levels(params, proj, member).map((lv) => {
			const kind = params.kind;
			const per = tz.period(this.world.zone, kind, ms);
			const used = this.used(lv, per.start, per.end);
			const roll = this.rollover(lv, kind, ms);
			const base = lv.alloc.credits + roll;
			const q = {
				level: lv.level, id: lv.key, allocation: lv.alloc.credits, rollover: roll, used,
				reserved: 0n, remaining: base - used, overage: max(0n, used - base),
				period: kind, period_start: per.start, period_end: per.end,
				overage_mode: params.mode,
			};
			if (params.mode === 'soft') q.grace = (base * params.gracePpm) / PPM;
			if (lv.level === 'institution' && params.alerts.length)
				q.alerts_crossed = params.alerts.filter((pct) =>
					(base > 0n ? used * 100n >= base * BigInt(pct) : used > 0n));
			return q;
		});
	}

	// Room for a gated request at every level (docs/GATE.md step 5).
	room(proj, member, ms) {
		return this.quota(proj, member, ms).map((q) => q.allocation + q.rollover + (q.grace ?? 0n) - q.used);
	}

	isLate(params, end, now) {
		if (params.kind === 'total') return false;
		const per = tz.period(this.world.zone, params.kind, end);
		return now >= per.end + this.world.graceMs;
	}

	// Would the late decision change within [now - slack, now + slack]?
	lateAmbiguous(end, now, slack) {
		const params = this.paramsAtTime(end);
		if (!params || params.kind === 'total') return false;
		const edge = tz.period(this.world.zone, params.kind, end).end + this.world.graceMs;
		return Math.abs(edge - now) <= slack;
	}

	overage(params, proj, member, book, charge) {
		if (charge <= 0n) return false;
		let over = false;
		for (const lv of this.levels(params, proj, member)) {
			const per = tz.period(this.world.zone, params.kind, book);
			const base = lv.alloc.credits + this.rollover(lv, params.kind, book);
			over ||= this.used(lv, per.start, per.end) + charge > base;
		}
		return over;
	}

	// Predicts one provider record's outcome at receipt time now and books it.
	submit(rec, now) {
		const canon = canonical(rec);
		const have = this.records.get(rec.record_id);
		if (have) {
			if (have.canon === canon) return { ...have.outcome, status: 'duplicate' };
			return { record_id: rec.record_id, status: 'conflict' };
		}
		const refused = this.rejections.get(rec.record_id);
		if (refused) return refused.canon === canon ? refused.outcome : { record_id: rec.record_id, status: 'conflict' };
		const rej = (why) => {
			const outcome = { record_id: rec.record_id, status: 'rejected', why };
			this.rejections.set(rec.record_id, { canon, outcome, rec });
			return outcome;
		};
		const end = Date.parse(rec.end);
		if (end > now + 300000) return rej('future');
		const params = this.paramsAtTime(end);
		if (!params) return rej('no charter');
		const p = params.projects[rec.project];
		if (!p) return rej('project');
		if (rec.model) return rej('model of another provider'); // the only model here is local's
		if (rec.member && !p.members.some((m) => `${m}@${this.ns.inst}` === rec.member)) return rej('member');
		let rate, charge, orig = null;
		if (rec.kind === 'usage') {
			rate = rec.resource === 'gpu_seconds' ? params.rates.gpu : params.rates.cpu;
			charge = BigInt(rec.quantity) * rate;
		} else {
			orig = this.records.get(rec.supersedes);
			if (!orig || orig.rec.kind !== 'usage') return rej('supersedes');
			if (orig.voided) return rej('void');
			rate = orig.rate;
			if (rec.kind === 'void') {
				if (rec.quantity !== orig.rec.quantity) return rej('void quantity');
				charge = -orig.net;
			} else {
				charge = BigInt(rec.quantity) * rate;
				if (rec.adjustment !== 'debit') {
					if (charge > orig.net) return rej('below zero');
					charge = -charge;
				}
			}
		}
		const late = this.isLate(params, end, now);
		const book = late ? now : end;
		const overage = this.overage(params, rec.project, rec.member ?? null, book, charge);
		const outcome = {
			record_id: rec.record_id, status: 'accepted', charge, late, overage,
			charter_version: this.versionAt(end),
		};
		// Net quantity (docs/LEDGER.md, "Net quantities"): usage and debits
		// add, credits and refunds subtract their quantity, and a void
		// subtracts whatever the record still had (so a voided record nets
		// to zero), as its charge does.
		const qty = rec.kind === 'void' ? -orig.netQty
			: rec.kind === 'usage' || rec.adjustment === 'debit' ? BigInt(rec.quantity) : -BigInt(rec.quantity);
		const entry = { canon, outcome, rec, rate, net: charge, netQty: qty, voided: false };
		this.records.set(rec.record_id, entry);
		if (orig) {
			orig.net += charge;
			orig.netQty += qty;
			if (rec.kind === 'void') orig.voided = true;
			orig.corrected = true;
		}
		this.books.push({
			book, proj: rec.project, member: rec.member ?? null, charge, provider: rec.provider,
			resource: rec.resource, model: null, kind: rec.kind, late, qty,
			corrects: orig ? orig.rec.record_id : null, id: rec.record_id,
		});
		return outcome;
	}

	// A settled gated request: tokens_in and tokens_out records of the model's
	// provider at the active rates, booked at now (quantities of 0 book nothing).
	settle(proj, member, pt, ct, now) {
		const params = this.paramsAtTime(now);
		let total = 0n;
		for (const [res, q, rate] of [['tokens_in', pt, params.rates.tin], ['tokens_out', ct, params.rates.tout]]) {
			if (q <= 0) continue;
			const charge = BigInt(q) * rate;
			total += charge;
			this.books.push({
				book: now, proj, member, charge, provider: 'local', resource: res,
				model: this.ns.model, kind: 'usage', late: false, qty: BigInt(q), corrects: null, id: null,
			});
		}
		return total;
	}

	worst(pt, maxTokens, now) {
		const r = this.paramsAtTime(now).rates;
		return BigInt(pt) * r.tin + BigInt(maxTokens) * r.tout;
	}

	// Report rows for [from, to) grouped by groups; quantity only where the
	// grouping has resource, and only trusted (qtyOk) where no correction
	// touches the group unless net quantities are expected.
	report(from, to, groups, netQty) {
		const rows = new Map();
		const zone = this.world.zone;
		const corrected = new Set(this.books.filter((b) => b.corrects).map((b) => b.corrects));
		for (const b of this.books) {
			if (b.book < from || b.book >= to) continue;
			const bucket = Math.floor(b.book / 900000) * 900000;
			const key = groups.map((g) => {
				switch (g) {
				case 'institution': return this.ns.inst;
				case 'project': return b.proj;
				// project-level usage (no member) is its project's group
				case 'member': return b.member ?? `/${b.proj}`;
				case 'provider': return b.provider;
				case 'resource': return b.resource;
				case 'model': return b.model ?? '';
				case 'day': return tz.dayKey(zone, bucket);
				case 'month': return tz.monthKey(zone, bucket);
				default: throw new Error(g);
				}
			});
			const k = JSON.stringify(key);
			let r = rows.get(k);
			if (!r) rows.set(k, (r = { key, charge: 0n, records: 0, qtyUsage: 0n, qtyNet: 0n, touched: false }));
			r.charge += b.charge;
			r.records += 1;
			if (b.kind === 'usage') r.qtyUsage += b.qty;
			r.qtyNet += b.qty; // debits add, credits, refunds and voids subtract
			if (b.corrects || (b.id && corrected.has(b.id))) r.touched = true;
		}
		for (const r of rows.values()) {
			r.quantity = netQty ? r.qtyNet : r.qtyUsage;
			r.qtyOk = netQty || !r.touched;
		}
		return rows;
	}

	total(from, to) {
		let charge = 0n, records = 0;
		for (const b of this.books)
			if (b.book >= from && b.book < to) { charge += b.charge; records++; }
		return { charge, records };
	}
}

