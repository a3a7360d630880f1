// auditor.js — reports with any grouping and date range, CSV/JSON export,
// the audit log, and the transparency log verified in this browser.
import { h, api, table, field, errorBox, dayIn, download } from './ui.js';
import { openCheckpoint, verifyInclusion, verifyConsistency, leafHash, b64 } from './verify.js';

const GROUPS = ['institution', 'project', 'member', 'provider', 'resource', 'model', 'day', 'month'];
// Leaves checked against the checkpoint: the latest ones, as on screen.
const VERIFY_LEAVES = 20;
const SEEN = 'allot.checkpoint.';

function reportQuery(from, to, groups, fmt) {
  const q = new URLSearchParams({ from, to, format: fmt });
  if (groups.length) q.set('group_by', groups.join(','));
  return `/v1/reports/usage?${q}`;
}

function reports(tz) {
  const from = h('input', { type: 'date', value: dayIn(tz, -30) });
  const to = h('input', { type: 'date', value: dayIn(tz, 1) });
  const boxes = GROUPS.map((g) => h('input', { type: 'checkbox', value: g, id: `g-${g}`, checked: g === 'institution' }));
  const out = h('div', { 'data-field': 'report' });
  const groups = () => boxes.filter((b) => b.checked).map((b) => b.value);
  const run = async () => {
    out.replaceChildren();
    try {
      const r = await api(reportQuery(from.value, to.value, groups(), 'json'));
      const cols = [...r.group_by.map((g) => ({ key: g, label: g })),
        ...(r.rows[0] && 'quantity' in r.rows[0] ? [{ key: 'quantity', label: 'quantity', num: true }] : []),
        { key: 'charge', label: 'charge', num: true }, { key: 'records', label: 'records', num: true }];
      out.append(table(`Usage ${r.from} to ${r.to}`, cols, r.rows, { 'data-table': 'report' }),
        h('p', {}, 'Total charge ', h('strong', { 'data-field': 'total-charge', text: r.total?.charge ?? '' }),
          ' over ', h('strong', { 'data-field': 'total-records', text: r.total?.records ?? '' }), ' records.'));
    } catch (e) { out.append(errorBox(e)); }
  };
  const exp = (fmt) => async () => {
    try {
      const r = await api(reportQuery(from.value, to.value, groups(), fmt), { raw: true });
      const text = await r.text();
      if (!r.ok) throw new Error(text);
      download(`usage-${from.value}-${to.value}.${fmt}`, fmt === 'csv' ? 'text/csv' : 'application/json', text);
    } catch (e) { out.append(errorBox(e)); }
  };
  const form = h('form.card', { 'data-form': 'report' }, h('h2', { text: 'Usage report' }),
    h('div.row', {}, field('from (local date)', from), field('to (local date, exclusive)', to)),
    h('fieldset', {}, h('legend', { text: 'group by' }),
      h('div.row', {}, boxes.map((b) => h('span', {}, b, ' ', h('label', { for: b.id, text: b.value, class: 'inline' }))))),
    h('div.row', {}, h('button', { type: 'submit', text: 'Show' }),
      h('button.secondary', { type: 'button', 'data-export': 'csv', onclick: exp('csv'), text: 'Export CSV' }),
      h('button.secondary', { type: 'button', 'data-export': 'json', onclick: exp('json'), text: 'Export JSON' })),
    out);
  form.addEventListener('submit', (ev) => { ev.preventDefault(); run(); });
  run();
  return form;
}

async function auditLog() {
  const a = await api('/v1/audit');
  const rows = (a.entries || []).slice(-50).reverse();
  return h('section.card', {}, h('h2', { text: 'Audit log (latest 50)' }),
    table('Admin actions', [{ key: 'id', label: 'id', num: true }, { key: 'at', label: 'at' }, { key: 'actor', label: 'actor' },
      { key: 'action', label: 'action' }, { key: 'target', label: 'target' }], rows, { 'data-table': 'audit' }));
}

// Verifies the latest checkpoint, the leaves on screen and consistency with
// the checkpoint this browser saw last; the verdict turns red on any failure.
export async function verifyLog(box) {
  const problems = [], notes = [];
  const verdict = h('p.verdict', { 'data-verdict': 'pending', role: 'status', text: 'Verifying…' });
  const list = h('ul');
  box.replaceChildren(h('h2', { text: 'Transparency log, verified in this browser' }), verdict, list);
  let cp = null, entries = [];
  try {
    const key = await api('/v1/log/key');
    const r = await api('/v1/log/checkpoint', { raw: true });
    if (!r.ok) throw new Error(`GET /v1/log/checkpoint: HTTP ${r.status}`);
    cp = await openCheckpoint(await r.text(), key);
    notes.push(`Checkpoint of ${cp.origin}: ${cp.size} leaves, root ${cp.rootB64}, signature verified (Ed25519, WebCrypto).`);
    const start = Math.max(0, cp.size - VERIFY_LEAVES);
    const ent = await api(`/v1/log/entries?start=${start}&end=${cp.size}`);
    entries = ent.entries || [];
    const checks = await Promise.all(entries.map(async (e) => {
      if (typeof e.data !== 'string') return `leaf ${e.leaf_index}: the entry is missing`;
      const p = await api(`/v1/log/proof/inclusion?index=${e.leaf_index}&size=${cp.size}`);
      const ok = await verifyInclusion(e.leaf_index, cp.size, await leafHash(e.data), p.proof, cp.root);
      e.verified = ok;
      return ok ? null : `leaf ${e.leaf_index} (${e.type}) does not match the signed log: altered after it was logged`;
    }));
    problems.push(...checks.filter(Boolean));
    if (entries.length) notes.push(`${entries.length - checks.filter(Boolean).length} of ${entries.length} entries on screen proved included.`);
    const seen = JSON.parse(localStorage.getItem(SEEN + cp.origin) || 'null');
    if (seen) {
      if (seen.size > cp.size) {
        problems.push(`the log shrank: ${cp.size} leaves now, ${seen.size} in the checkpoint seen on ${seen.at}`);
      } else if (seen.size >= 1) {
        const c = seen.size === cp.size ? { proof: [] }
          : await api(`/v1/log/proof/consistency?from=${seen.size}&to=${cp.size}`);
        if (await verifyConsistency(seen.size, cp.size, b64(seen.root), cp.root, c.proof))
          notes.push(`Consistent with the checkpoint seen on ${seen.at} (${seen.size} leaves).`);
        else problems.push(`not consistent with the checkpoint seen on ${seen.at} (${seen.size} leaves): the log was rewritten`);
      }
    } else {
      notes.push('First visit: this checkpoint is kept in localStorage to check the next one against.');
    }
    if (!problems.length)
      localStorage.setItem(SEEN + cp.origin, JSON.stringify({ size: cp.size, root: cp.rootB64, at: new Date().toISOString() }));
  } catch (e) {
    problems.push(e.message);
  }
  verdict.dataset.verdict = problems.length ? 'bad' : 'good';
  verdict.className = `verdict ${problems.length ? 'bad' : 'good'}`;
  verdict.textContent = problems.length ? `NOT verified: ${problems[0]}` : 'Verified: the signed log holds every entry shown below.';
  list.replaceChildren(...problems.map((p) => h('li.error', { text: p })), ...notes.map((n) => h('li', { text: n })));
  const rows = entries.map((e) => {
    let d = {};
    try { d = JSON.parse(e.data); } catch { d = {}; }
    return { leaf: e.leaf_index, type: e.type, what: d.type === 'usage' ? `${d.provider}/${d.record_id}` : (d.action || d.charter_id || ''),
      owner: [d.institution, d.project, d.member].filter(Boolean).join('/'), quantity: d.quantity ?? '', charge: d.charge ?? '',
      proof: e.verified ? 'included' : 'NOT proved' };
  }).reverse();
  box.append(table('Latest log entries', [{ key: 'leaf', label: 'leaf', num: true }, { key: 'type', label: 'type' },
    { key: 'what', label: 'entry' }, { key: 'owner', label: 'owner' }, { key: 'quantity', label: 'quantity', num: true },
    { key: 'charge', label: 'charge', num: true }, { key: 'proof', label: 'proof' }], rows, { 'data-table': 'log' }));
}

export async function auditorPage(root, me) {
  const tz = me.timezone || 'UTC';
  const logBox = h('section.card', { 'data-section': 'verify' });
  root.append(h('h1', { text: 'Reports and the transparency log' }), reports(tz), logBox);
  await verifyLog(logBox);
  root.append(h('button.secondary', { type: 'button', onclick: () => verifyLog(logBox), text: 'Verify again' }));
  root.append(await auditLog());
}
