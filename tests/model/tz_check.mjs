#!/usr/bin/env node
// tz_check.mjs — checks the model's own calendar (tz.mjs) before the
// histories use it: every offset change that transitions() finds is the
// exact second where offsetAt changes, for scan starts at every phase within
// the seconds around an hour (a millisecond bisection once looped forever
// when the scan started in the first second after a transition's hour, and
// the model test hung).  Prints how many cases it ran; exits 1 on a wrong one.
import * as tz from './tz.mjs';

const ZONES = ['Europe/Zurich', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'UTC'];
const H = 3600000;
let cases = 0, bad = 0;
for (const zone of ZONES) {
	const base = Date.UTC(2026, 0, 1);
	const whole = tz.transitions(zone, base, base + 366 * 86400000);
	for (const T of whole) {
		// each found instant is where the offset changes, to the second
		if (tz.offsetAt(zone, T - 1000) === tz.offsetAt(zone, T)) {
			console.error(`tz_check: ${zone}: ${new Date(T).toISOString()} is not an offset change`);
			bad++;
		}
		// scans starting at every 50 ms phase within 3 s of the hour find it
		for (let ph = -3000; ph <= 3000; ph += 50) {
			const from = Math.floor(T / H) * H - 5 * H + ph;
			const got = tz.transitions(zone, from, T + 2 * H);
			cases++;
			if (got.length !== 1 || got[0] !== T) {
				console.error(`tz_check: ${zone}: scan from ${new Date(from).toISOString()} found ${got.map((x) => new Date(x).toISOString())}, expected ${new Date(T).toISOString()}`);
				bad++;
			}
		}
	}
	cases++;
	if (['Europe/Zurich', 'America/New_York', 'Australia/Lord_Howe'].includes(zone) !== (whole.length === 2)) {
		console.error(`tz_check: ${zone}: ${whole.length} offset changes in 2026`);
		bad++;
	}
}
console.log(`tz_check: ${cases} cases, ${bad} wrong`);
process.exit(bad ? 1 : 0);
