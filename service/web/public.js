// public.js — the commons' public page: aggregate use per institution and
// month, the pool, the rates, and the latest signed checkpoint with how to
// verify it.  Everything comes from GET /public.json (no sign-in).
import { h, table, num } from './ui.js';
import { quotaBar } from './chart.js';

async function main() {
  const page = document.getElementById('page');
  const r = await fetch('/public.json', { headers: { Accept: 'application/json' } });
  const p = await r.json();
  if (!r.ok) { page.replaceChildren(h('p.error', { text: p?.error?.message || `HTTP ${r.status}` })); return; }
  const months = [...new Set(p.institutions.flatMap((i) => i.usage.map((u) => u.month)))].sort();
  const cols = [{ key: 'name', label: 'institution' }, { key: 'alloc', label: 'allocation', num: true },
    ...months.map((m) => ({ key: m, label: m, num: true }))];
  const rows = p.institutions.map((i) => ({ name: i.name, alloc: `${i.allocation.credits} per ${i.allocation.period}`,
    ...Object.fromEntries(i.usage.map((u) => [u.month, u.charge])) }));
  const pool = p.pool.allocation !== null
    ? h('div.quota', { 'data-level': 'pool' }, h('h3', { text: `Pool, ${p.pool.month}` }),
      quotaBar({ id: 'pool', used: p.pool.used, reserved: '0', allocation: p.pool.allocation, rollover: '0' }),
      h('p', {}, 'Used ', h('strong', { 'data-field': 'pool-used', text: p.pool.used }), ` of ${p.pool.allocation} ${p.unit}s this month.`))
    : h('p', {}, `This month the institutions used `, h('strong', { 'data-field': 'pool-used', text: p.pool.used }), ` ${p.unit}s.`);
  page.replaceChildren(
    h('h1', { text: p.title || p.charter }),
    h('p', { text: `Charter ${p.charter}, version ${p.version}. Amounts in ${p.unit}s; months in ${p.timezone}. As of ${p.at}.` }),
    h('section.card', {}, h('h2', { text: 'The pool' }), pool),
    h('section.card', {}, h('h2', { text: 'Use per institution and month' }), table('Charges per month', cols, rows, { 'data-table': 'public-usage' })),
    h('section.card', {}, h('h2', { text: 'Rates' }), table(`${p.unit}s per unit`, [{ key: 'resource', label: 'resource' },
      { key: 'model', label: 'model' }, { key: 'class', label: 'class' }, { key: 'credits', label: p.unit, num: true }], p.rates)),
    h('section.card', {}, h('h2', { text: 'Latest signed checkpoint of the transparency log' }),
      p.checkpoint ? h('pre.json', { 'data-field': 'checkpoint', text: p.checkpoint }) : h('p', { text: 'No checkpoint yet.' }),
      h('p', {}, 'Log key: ', h('code', { text: p.log_key.vkey })),
      h('p', { text: p.verify })));
  void num;
}
main().catch((e) => document.getElementById('page').replaceChildren(h('p.error', { text: e.message })));
