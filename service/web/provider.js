// provider.js — a provider's records as the ledger numbered them: how many,
// the seq range, gaps and repeats (GET /v1/providers/{id}/sequence).
import { h, api, table, dayIn } from './ui.js';

// Records listed: the latest of the last RECENT_DAYS days.
const RECENT_DAYS = 7, SHOWN = 50;

// The latest records (GET /v1/me/usage: the credential's own).
export async function recentRecords(query, tz, who) {
  const r = await api(`/v1/me/usage?${query}&from=${dayIn(tz, -RECENT_DAYS)}&limit=1000`);
  const rows = (r.records || []).slice(-SHOWN).reverse();
  const cols = who === 'provider'
    ? [{ key: 'seq', label: 'seq', num: true }, { key: 'record_id', label: 'record' }, { key: 'kind', label: 'kind' },
      { key: 'owner', label: 'owner', get: (x) => `${x.institution}/${x.project}/${x.member}` }]
    : [{ key: 'booked', label: 'booked' }, { key: 'model', label: 'model' }, { key: 'record_id', label: 'record' }];
  cols.push({ key: 'resource', label: 'resource' }, { key: 'quantity', label: 'quantity', num: true },
    { key: 'charge', label: 'charge', num: true }, { key: 'late', label: 'late', get: (x) => (x.late ? 'late' : '') });
  return table(`Latest ${rows.length} records of the last ${RECENT_DAYS} days`, cols, rows, { 'data-table': 'records' });
}

// Records the ledger refused, kept for good: sent again, each gets the same
// answer (GET /v1/providers/{id}/rejections, docs/LEDGER.md).
const REFUSED_PAGES = 5;
async function refusedRecords(id) {
  const rows = [];
  let after = 0;
  for (let i = 0; i < REFUSED_PAGES; i++) {
    const r = await api(`/v1/providers/${encodeURIComponent(id)}/rejections?limit=1000${after ? `&after=${after}` : ''}`);
    rows.push(...(r.rejections || []));
    if (r.next === null || r.next === undefined) break;
    after = r.next;
  }
  if (!rows.length) return h('p.ok', { text: 'No refused records.' });
  return table(`Refused records (${rows.length}, latest first)`, [{ key: 'received', label: 'received' },
    { key: 'record_id', label: 'record' }, { key: 'seq', label: 'seq', num: true }, { key: 'reason', label: 'reason' }],
  rows.reverse(), { 'data-table': 'refused' });
}

export async function providerPage(root, me) {
  const id = me.provider;
  const pages = [];
  let after = -1;
  for (let i = 0; i < 20; i++) { // at most 20 pages of gaps
    const s = await api(`/v1/providers/${encodeURIComponent(id)}/sequence${after >= 0 ? `?after=${after}` : ''}`);
    pages.push(s);
    if (s.next === null || s.next === undefined) break;
    after = s.next;
  }
  const s = pages[0];
  const gaps = pages.flatMap((p) => p.gaps || []);
  const repeats = pages.flatMap((p) => p.repeats || []);
  const fig = (k, label) => h('div', {}, h('dt', { text: label }), h('dd', { 'data-field': k, text: String(s[k] ?? '') }));
  root.append(...[h('h1', { text: `Records of provider ${id}` }),
    h('dl.figures.card', {}, fig('records', 'records'), fig('with_seq', 'with seq'), fig('min_seq', 'lowest seq'),
      fig('max_seq', 'highest seq'), fig('gap_count', 'gaps'), fig('missing', 'missing seqs'), fig('repeat_count', 'repeated seqs')),
    s.gap_count ? table('Sequence gaps (missing seq ranges)', [{ key: 'from', label: 'from', num: true }, { key: 'to', label: 'to', num: true },
      { key: 'count', label: 'missing', num: true }], gaps.map((g) => (Array.isArray(g) ? { from: g[0], to: g[1], count: g[1] - g[0] + 1 } : g)),
    { 'data-table': 'gaps' }) : h('p.ok', { text: 'No gaps: every seq from the lowest to the highest arrived.' }),
    repeats.length ? table('Repeated seqs', [{ key: 'seq', label: 'seq', num: true }, { key: 'count', label: 'times', num: true }],
      repeats.map((r) => (typeof r === 'object' ? r : { seq: r })), { 'data-table': 'repeats' }) : null,
    await refusedRecords(id),
    await recentRecords(`provider=${encodeURIComponent(id)}`, me.timezone || 'UTC', 'provider'),
    h('p.muted', { text: 'A submitted batch answers each record with its outcome (accepted, duplicate, conflict or refused with the reason); allot usage submit prints them.' })].filter(Boolean));
}
