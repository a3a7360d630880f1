// admin.js — the active charter, an editor whose errors from
// POST /v1/charter/validate show at their line and column, the diff per
// institution and project, apply, and the history of applied versions.
import { h, api, table, errorBox } from './ui.js';

// "FILE:LINE:COLUMN: message" -> {line, col, message}
export function parseDiag(text) {
  const m = /^.*?:(\d+):(\d+): (.*)$/.exec(text);
  return m ? { line: Number(m[1]), col: Number(m[2]), message: m[3] } : { line: 0, col: 0, message: text };
}

function annotated(yaml, errors, warnings) {
  const at = new Map();
  for (const [d, kind] of [...errors.map((e) => [parseDiag(e), 'error']), ...warnings.map((w) => [parseDiag(w), 'warning'])]) {
    if (!at.has(d.line)) at.set(d.line, []);
    at.get(d.line).push({ ...d, kind });
  }
  const lines = yaml.split('\n');
  return h('pre.lines', { 'data-field': 'annotated' }, lines.map((text, i) => {
    const n = i + 1, ds = at.get(n) || [];
    return h(ds.length ? 'span.bad' : 'span', { 'data-line': n },
      h('span.ln', { 'aria-hidden': 'true', text: String(n) }), text, '\n',
      ds.map((d) => h('span.msg', { 'data-error-line': n, 'data-error-col': d.col, role: 'note' },
        `${' '.repeat(Math.max(0, d.col - 1))}^ line ${n}, column ${d.col}: ${d.kind === 'warning' ? 'warning: ' : ''}${d.message}`)));
  }));
}

function diffTable(changes) {
  if (!changes) return h('p.muted', { text: 'No changes to show.' });
  const rows = [];
  const alloc = (a) => (a ? `${a.credits} per ${a.period}${a.rollover && a.rollover !== '0' ? `, rollover ${a.rollover}` : ''}` : '—');
  for (const i of changes.institutions || []) {
    rows.push({ who: i.id, change: i.change, from: alloc(i.allocation?.from), to: alloc(i.allocation?.to), delta: i.allocation?.delta ?? '' });
    for (const p of i.projects || [])
      rows.push({ who: `${i.id}/${p.id}`, change: p.change, from: alloc(p.allocation?.from), to: alloc(p.allocation?.to), delta: p.allocation?.delta ?? '' });
  }
  const extra = Object.keys(changes).filter((k) => !['institutions', 'from_version', 'to_version'].includes(k));
  return h('div', {}, table(`What changes from version ${changes.from_version} to ${changes.to_version}`,
    [{ key: 'who', label: 'institution / project' }, { key: 'change', label: 'change' }, { key: 'from', label: 'from' },
      { key: 'to', label: 'to' }, { key: 'delta', label: 'delta', num: true }], rows, { 'data-table': 'diff' }),
  extra.length ? h('pre.json', { text: JSON.stringify(Object.fromEntries(extra.map((k) => [k, changes[k]])), null, 2) }) : null);
}

async function history() {
  const hist = await api('/v1/charter/history');
  return table('Applied versions', [{ key: 'version', label: 'version', num: true }, { key: 'charter', label: 'charter' },
    { key: 'status', label: 'status' }, { key: 'applied_at', label: 'applied' }, { key: 'effective', label: 'effective' },
    { key: 'author', label: 'author' }, { key: 'sha256', label: 'sha256', get: (r) => r.sha256.slice(0, 16) + '…' }],
  [...hist.charters].reverse(), { 'data-table': 'history' });
}

export async function adminPage(root) {
  const active = await api('/v1/charter');
  const editor = h('textarea', { id: 'charter-text', spellcheck: 'false', 'aria-describedby': 'charter-help' });
  const result = h('div', { 'data-field': 'validate' });
  const histBox = h('section.card', {}, h('h2', { text: 'History' }), await history());
  const send = async (apply) => {
    result.replaceChildren();
    const yaml = editor.value;
    try {
      const v = await api('/v1/charter/validate', { method: 'POST', body: yaml, type: 'application/yaml', allowError: true });
      if (!v || v.error) {
        const err = v?.error || {};
        result.append(errorBox(err.message || 'validation failed'), annotated(yaml, err.errors || [], err.warnings || []));
        return;
      }
      if (!v.valid) {
        result.append(h('p.error', { role: 'alert', 'data-field': 'error-count', text: `${v.errors.length} error(s): nothing was applied.` }),
          annotated(yaml, v.errors, v.warnings || []));
        const first = parseDiag(v.errors[0]);
        const lines = yaml.split('\n');
        const pos = lines.slice(0, first.line - 1).reduce((a, l) => a + l.length + 1, 0) + Math.max(0, first.col - 1);
        editor.focus();
        editor.setSelectionRange(pos, pos);
        return;
      }
      result.append(h('p.ok', { role: 'status', text: `Valid${v.warnings?.length ? ` with ${v.warnings.length} warning(s)` : ''}.` }),
        v.warnings?.length ? annotated(yaml, [], v.warnings) : null, diffTable(v.changes));
      if (apply) {
        const r = await api('/v1/charter', { method: 'PUT', body: yaml, type: 'application/yaml' });
        // the history first: "applied" is shown once the page says all of it
        histBox.replaceChildren(h('h2', { text: 'History' }), await history());
        result.append(h('p.ok', { role: 'status', 'data-field': 'applied', text: `Applied version ${r.version ?? ''}.` }));
      }
    } catch (e) { result.append(errorBox(e)); }
  };
  root.append(h('h1', { text: `Charter ${active.charter.charter}, version ${active.version}` }),
    h('section.card', {}, h('h2', { text: 'Active charter' }),
      h('p', {}, `Effective ${active.effective}, applied ${active.applied_at} by ${active.author}, status ${active.status}.`),
      h('pre.json', { 'data-field': 'active', text: JSON.stringify(active.charter, null, 2) })),
    h('section.card.editor', {}, h('h2', { text: 'Edit and apply' }),
      h('label', { for: 'charter-text', text: 'Charter (YAML)' }),
      h('p.muted', { id: 'charter-help', text: 'Paste or write the next version. Validate shows every error at its line and column and what changes for whom; Apply validates again and applies.' }),
      editor,
      h('div.row', {}, h('button', { type: 'button', 'data-action': 'validate', onclick: () => send(false), text: 'Validate' }),
        h('button.secondary', { type: 'button', 'data-action': 'apply', onclick: () => send(true), text: 'Apply' })),
      result),
    histBox);
}
