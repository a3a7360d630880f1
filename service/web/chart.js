// chart.js — quota bars and stacked daily usage, drawn as plain SVG.
import { h, num } from './ui.js';

const NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...kids) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of kids) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}
let hatchN = 0;

// A quota level: settled solid, reserved hatched, allocation and
// allocation + rollover marked.
export function quotaBar(level) {
  const used = num(level.used), res = num(level.reserved), alloc = num(level.allocation);
  const roll = num(level.rollover), cap = alloc + roll;
  const max = Math.max(cap, used + res, 1e-9) * 1.05;
  const W = 400, x = (v) => (Math.max(0, v) / max) * W;
  const id = `hatch${++hatchN}`;
  const label = `${level.id}: settled ${level.used}, reserved ${level.reserved} of allocation ${level.allocation}` +
    (roll ? ` plus rollover ${level.rollover}` : '');
  return s('svg', { viewBox: `0 0 ${W} 30`, role: 'img', 'aria-label': label, preserveAspectRatio: 'none' },
    s('defs', {}, s('pattern', { id, width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
      s('rect', { width: 6, height: 6, fill: '#fff3cd' }), s('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#7a5c00', 'stroke-width': 3 }))),
    s('rect', { x: 0, y: 6, width: W, height: 18, fill: '#eef1f5', stroke: '#999' }),
    s('rect', { x: 0, y: 6, width: x(used), height: 18, fill: '#1f4e79', 'data-part': 'settled' }),
    s('rect', { x: x(used), y: 6, width: x(res), height: 18, fill: `url(#${id})`, 'data-part': 'reserved' }),
    s('line', { x1: x(alloc), x2: x(alloc), y1: 0, y2: 30, stroke: '#000', 'stroke-width': 2 }),
    roll ? s('line', { x1: x(cap), x2: x(cap), y1: 0, y2: 30, stroke: '#000', 'stroke-width': 2, 'stroke-dasharray': '3 2' }) : '');
}

// items: [[colour, text]]: swatches drawn as SVG (no inline style: the CSP forbids it).
export function legend(items) {
  return h('div.legend', {}, items.map(([colour, text]) =>
    h('span', {}, s('svg', { width: 14, height: 14, 'aria-hidden': 'true' },
      s('rect', { width: 14, height: 14, fill: colour, stroke: '#555' })), ' ', text)));
}

const PALETTE = ['#1f4e79', '#c55a11', '#548235', '#7030a0', '#bf9000', '#2e75b6', '#843c0c', '#385723'];

// rows: [{day, key, charge}] over days (sorted list of YYYY-MM-DD);
// line: a daily allocation share drawn over the bars (or null).
export function stackedDays(rows, days, line, caption) {
  const keys = [...new Set(rows.map((r) => r.key))].sort();
  const byDay = new Map(days.map((d) => [d, new Map()]));
  for (const r of rows) byDay.get(r.day)?.set(r.key, (byDay.get(r.day).get(r.key) || 0) + num(r.charge));
  const totals = days.map((d) => [...byDay.get(d).values()].reduce((a, b) => a + b, 0));
  const max = Math.max(...totals, line || 0, 1e-9) * 1.1;
  const W = 600, H = 200, bw = W / Math.max(days.length, 1);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H + 20}`, role: 'img', 'aria-label': caption });
  days.forEach((d, i) => {
    let y = H;
    keys.forEach((k, ki) => {
      const v = byDay.get(d).get(k) || 0;
      if (!v) return;
      const hh = (v / max) * H;
      y -= hh;
      svg.append(s('rect', { x: i * bw + 1, y, width: Math.max(bw - 2, 1), height: hh, fill: PALETTE[ki % PALETTE.length] },
        s('title', {}, `${d} ${k}: ${v}`)));
    });
    if (days.length <= 31 && (i % Math.ceil(days.length / 8) === 0))
      svg.append(s('text', { x: i * bw + 2, y: H + 14, 'font-size': 10, fill: '#333' }, d.slice(5)));
  });
  if (line) {
    const y = H - (line / max) * H;
    svg.append(s('line', { x1: 0, x2: W, y1: y, y2: y, stroke: '#b00020', 'stroke-width': 2, 'stroke-dasharray': '6 3' }));
  }
  const leg = keys.map((k, ki) => [PALETTE[ki % PALETTE.length], k]);
  if (line) leg.push(['#b00020', 'daily share of the allocation']);
  return h('figure.chart', {}, svg, h('figcaption', { text: caption }), legend(leg));
}
