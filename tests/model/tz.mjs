// tz.mjs — the model's own calendar: local dates, local midnights and
// accounting periods in an IANA zone, computed with the JavaScript Intl API
// (ICU's zone data), independently of allot's TZif reader.  Instants are
// integer milliseconds since the epoch (UTC).

const fmtCache = new Map();

function formatter(zone) {
	let f = fmtCache.get(zone);
	if (!f) {
		f = new Intl.DateTimeFormat('en-US', {
			timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric',
			day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
		});
		fmtCache.set(zone, f);
	}
	return f;
}

// Local civil time of instant ms: {y, mo, d, h, mi, s}.
export function local(zone, ms) {
	const p = {};
	for (const x of formatter(zone).formatToParts(new Date(ms)))
		if (x.type !== 'literal') p[x.type] = Number(x.value);
	return { y: p.year, mo: p.month, d: p.day, h: p.hour % 24, mi: p.minute, s: p.second };
}

// UTC offset in ms at instant ms (whole seconds).
export function offsetAt(zone, ms) {
	const t = Math.floor(ms / 1000) * 1000;
	const l = local(zone, t);
	return Date.UTC(l.y, l.mo - 1, l.d, l.h, l.mi, l.s) - t;
}

// The instant of local midnight starting date (y, mo, d).  The model only
// uses zones whose midnights exist and happen once; anything else throws.
export function midnight(zone, y, mo, d) {
	const naive = Date.UTC(y, mo - 1, d);
	let t = naive - offsetAt(zone, naive);
	t = naive - offsetAt(zone, t);
	const l = local(zone, t);
	const ok = l.h === 0 && l.mi === 0 && l.s === 0;
	const n = new Date(naive);
	if (!ok || l.y !== n.getUTCFullYear() || l.mo !== n.getUTCMonth() + 1 || l.d !== n.getUTCDate())
		throw new Error(`model: local midnight of ${y}-${mo}-${d} in ${zone} is not unique`);
	return t;
}

// Civil date arithmetic (proleptic Gregorian) via UTC dates.
function addDays(y, mo, d, k) {
	const t = new Date(Date.UTC(y, mo - 1, d) + k * 86400000);
	return [t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate()];
}

function pad(n, w = 2) { return String(n).padStart(w, '0'); }

export function dayKey(zone, ms) {
	const l = local(zone, ms);
	return `${pad(l.y, 4)}-${pad(l.mo)}-${pad(l.d)}`;
}

export function monthKey(zone, ms) {
	const l = local(zone, ms);
	return `${pad(l.y, 4)}-${pad(l.mo)}`;
}

// First local date of the period of kind holding local date (y, mo, d), and
// the first date of the next one.
function periodDates(kind, y, mo, d) {
	switch (kind) {
	case 'day': return [[y, mo, d], addDays(y, mo, d, 1)];
	case 'week': {
		const wd = (new Date(Date.UTC(y, mo - 1, d)).getUTCDay() + 6) % 7; // Monday 0
		const s = addDays(y, mo, d, -wd);
		return [s, addDays(...s, 7)];
	}
	case 'month': return [[y, mo, 1], mo === 12 ? [y + 1, 1, 1] : [y, mo + 1, 1]];
	case 'quarter': {
		const q = Math.floor((mo - 1) / 3) * 3 + 1;
		return [[y, q, 1], q === 10 ? [y + 1, 1, 1] : [y, q + 3, 1]];
	}
	case 'year': return [[y, 1, 1], [y + 1, 1, 1]];
	default: throw new Error(`model: period kind ${kind}`);
	}
}

export const TOTAL = { start: -Infinity, end: Infinity };

// Period [start, end) of kind holding instant ms.
export function period(zone, kind, ms) {
	if (kind === 'total')
		return TOTAL;
	const l = local(zone, ms);
	const [s, e] = periodDates(kind, l.y, l.mo, l.d);
	return { start: midnight(zone, ...s), end: midnight(zone, ...e) };
}

// The period before the one holding ms.
export function prevPeriod(zone, kind, ms) {
	if (kind === 'total')
		return null;
	return period(zone, kind, period(zone, kind, ms).start - 1);
}

// Instants in [from, to) where the UTC offset changes (scanning hourly, then
// bisecting to the second).  offsetAt reads whole seconds, so the bisection
// runs on whole seconds: lo has the old offset, hi the new one, and it ends
// when they are one second apart, whatever the phase of from within a second
// (bisecting in milliseconds once looped forever when from fell in the first
// second after a transition's hour).
export function transitions(zone, from, to) {
	const out = [];
	const H = 3600000;
	let prev = offsetAt(zone, from);
	for (let t = from + H; t < to; t += H) {
		const o = offsetAt(zone, t);
		if (o !== prev) {
			let lo = Math.floor((t - H) / 1000), hi = Math.floor(t / 1000);
			while (hi - lo > 1) {
				const mid = Math.floor((lo + hi) / 2);
				if (offsetAt(zone, mid * 1000) === prev) lo = mid; else hi = mid;
			}
			out.push(hi * 1000);
			prev = o;
		}
	}
	return out;
}

export function rfc3339(ms) {
	return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
