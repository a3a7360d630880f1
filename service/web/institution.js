// institution.js — quotas as bars (settled, reserved, allocation, rollover,
// reset date), the run-rate projection, daily usage stacked by project,
// member, provider or model, the drill-down institution → project → member, and tokens.
import { h, api, table, field, errorBox, num, localDate, dayIn } from './ui.js';
import { quotaBar, legend, stackedDays } from './chart.js';

const FIGS = [['used', 'settled'], ['reserved', 'reserved'], ['allocation', 'allocation'],
  ['rollover', 'rollover'], ['remaining', 'remaining']];

export function levelView(level, tz, extra) {
  const end = level.period_end;
  return h('div.quota', { 'data-level': level.level, 'data-id': level.id },
    h('h3', {}, `${level.level} ${level.id}`, ' ', h('span.muted', { text: `(${level.period})` })),
    quotaBar(level),
    h('dl.figures', {}, FIGS.map(([k, label]) => h('div', {}, h('dt', { text: label }),
      h('dd', { 'data-field': k, text: level[k] })))),
    end ? h('p.muted', { 'data-field': 'resets', text: `resets on ${localDate(end, tz)}` }) : null,
    level.alerts_crossed?.length ? h('p.error', { text: `alert thresholds crossed: ${level.alerts_crossed.join('%, ')}%` }) : null,
    extra || null);
}

export const BAR_LEGEND = [['#1f4e79', 'settled'], ['#7a5c00', 'reserved (hatched)'], ['#000', 'allocation (solid line), + rollover (dashed)']];

// used over the elapsed part of the period, carried to its end.
export function projection(level, tz, now = Date.now()) {
  const start = Date.parse(level.period_start), end = Date.parse(level.period_end);
  if (!start || !end || now <= start) return null;
  const used = num(level.used) + num(level.reserved), cap = num(level.allocation) + num(level.rollover);
  const perMs = used / (now - start);
  const atEnd = used + perMs * (end - now);
  let text = `At this rate (${(perMs * 86400000).toFixed(2)} per day) the period ends at about ${atEnd.toFixed(2)} of ${cap}.`;
  let runout = null;
  if (perMs > 0 && atEnd > cap) {
    runout = new Date(now + Math.max(0, cap - used) / perMs).toISOString();
    text += ` The allocation runs out on ${localDate(runout, tz)}.`;
  } else {
    text += ' The allocation lasts the period.';
  }
  return h('p', { 'data-field': 'projection', 'data-runout': runout || '' }, text);
}

// Stacked by project or member: GET /v1/reports/daily, from the ledger's
// 15-minute totals (its cost does not grow with the number of records);
// by provider or model: GET /v1/reports/usage over the records, which also
// counts them (slower on a ledger of millions: docs/DASHBOARD.md).
export const STACKS = ['project', 'member', 'provider', 'model'];
const FROM_BUCKETS = new Set(['project', 'member']);

async function dailyUsage(box, inst, q, tz, by) {
  const lvl = q.levels.find((l) => l.level === 'institution');
  const from = localDate(lvl.period_start, tz);
  const to = dayIn(tz, 1);
  const i = encodeURIComponent(inst);
  const buckets = FROM_BUCKETS.has(by);
  const rep = await api(buckets ? `/v1/reports/daily?institution=${i}&from=${from}&to=${to}&by=${by}`
    : `/v1/reports/usage?from=${from}&to=${to}&group_by=day,${by}&institution=${i}`);
  const days = [];
  for (let t = Date.parse(`${from}T12:00:00Z`); ; t += 86400000) {
    const d = new Date(t).toISOString().slice(0, 10);
    if (d >= to) break;
    days.push(d);
  }
  const periodDays = Math.max(1, Math.round((Date.parse(lvl.period_end) - Date.parse(lvl.period_start)) / 86400000));
  const share = (num(lvl.allocation) + num(lvl.rollover)) / periodDays;
  const rows = rep.rows.map((r) => ({ day: r.day, key: r[by] || '(none)', charge: r.charge }));
  const cols = [{ key: 'day', label: 'day' }, { key: by, label: by }, { key: 'charge', label: 'charge', num: true }];
  if (!buckets) cols.push({ key: 'records', label: 'records', num: true });
  box.replaceChildren(stackedDays(rows, days, share, `Daily usage of ${inst} this period by ${by} (credits)`),
    table(`Daily usage by ${by}`, cols, rep.rows, { 'data-table': 'daily', 'data-by': by }));
}

function drill(inst, proj, tz) {
  const box = h('div.card', { 'data-drill': proj });
  api(`/v1/quotas/${encodeURIComponent(inst)}/${encodeURIComponent(proj)}`).then((q) => {
    box.append(h('h3', { text: `Members of ${inst}/${proj}` }));
    const members = q.members || [];
    if (!members.length) box.append(h('p.muted', { text: 'No member has an allocation of their own here.' }));
    for (const m of members) box.append(levelView(m, tz));
  }).catch((e) => box.append(errorBox(e)));
  return box;
}

function tokenTools(inst, projects) {
  const proj = h('select', {}, projects.map((p) => h('option', { value: p, text: p })));
  const member = h('input', { type: 'text', placeholder: 'alice@example.org', required: true });
  const ttl = h('input', { type: 'number', min: 60, value: 3600 });
  const out = h('div', { 'data-field': 'minted' });
  const mint = h('form.card', { 'data-form': 'mint' }, h('h2', { text: 'Mint a member token' }),
    h('div.row', {}, field('project', proj), field('member', member), field('lifetime (seconds)', ttl),
      h('div', {}, h('button', { type: 'submit', text: 'Mint' }))), out);
  mint.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    out.replaceChildren();
    try {
      const r = await api('/v1/tokens', { method: 'POST', body: { institution: inst, project: proj.value, member: member.value.trim(), ttl: Number(ttl.value) } });
      const tok = h('p.token', { 'data-field': 'token', text: r.token });
      const copy = h('button.secondary', { type: 'button', text: 'Copy' });
      copy.addEventListener('click', async () => {
        try { await navigator.clipboard.writeText(r.token); copy.textContent = 'Copied'; } catch { copy.textContent = 'Select and copy the text above'; }
      });
      out.append(h('p', {}, 'Shown once: copy it now. Token id ', h('code', { 'data-field': 'jti', text: r.jti }),
        `, expires ${r.expires_at}.`), tok, copy);
    } catch (e) { out.append(errorBox(e)); }
  });
  const jti = h('input', { type: 'text', placeholder: 'token id (jti)' });
  const rmember = h('input', { type: 'text', placeholder: 'or every token of a member' });
  const rout = h('div', { 'data-field': 'revoked' });
  const revoke = h('form.card', { 'data-form': 'revoke' }, h('h2', { text: 'Revoke tokens' }),
    h('div.row', {}, field('token id', jti), field('member', rmember), h('div', {}, h('button', { type: 'submit', text: 'Revoke' }))), rout);
  revoke.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    rout.replaceChildren();
    const body = jti.value.trim() ? { jti: jti.value.trim() } : { member: rmember.value.trim(), institution: inst };
    try {
      const r = await api('/v1/tokens/revoke', { method: 'POST', body });
      rout.append(h('p.ok', { role: 'status', text: `Revoked: ${JSON.stringify(r)}` }));
    } catch (e) { rout.append(errorBox(e)); }
  });
  return [mint, revoke];
}

export async function institutionPage(root, me) {
  const tz = me.timezone || 'UTC';
  let inst = me.institution;
  if (!inst) { // admin, auditor: choose
    const c = await api('/v1/charter');
    const ids = c.charter.institutions.map((i) => i.id);
    const sel = h('select', {}, ids.map((i) => h('option', { value: i, text: i })));
    const body = h('div');
    sel.addEventListener('change', () => { body.replaceChildren(); render(body, sel.value, tz, me).catch((e) => body.append(errorBox(e))); });
    root.append(h('div.row', {}, field('institution', sel)), body);
    inst = ids[0];
    if (!inst) return root.append(h('p', { text: 'The charter names no institution.' }));
    return render(body, inst, tz, me);
  }
  return render(root, inst, tz, me);
}

async function render(root, inst, tz, me) {
  const q = await api(`/v1/quotas/${encodeURIComponent(inst)}`);
  const lvl = q.levels.find((l) => l.level === 'institution');
  root.append(h('h1', { text: `Quotas of ${inst}` }), legend(BAR_LEGEND));
  for (const l of q.levels) root.append(levelView(l, tz, l.level === 'institution' ? projection(l, tz) : null));
  const by = h('select', { name: 'stack' }, STACKS.map((k) => h('option', { value: k, text: k })));
  const chart = h('div');
  by.addEventListener('change', () => dailyUsage(chart, inst, q, tz, by.value).catch((e) => chart.replaceChildren(errorBox(e))));
  root.append(h('h2', { text: 'Daily usage' }), h('div.row', {}, field('stacked by', by)), chart);
  await dailyUsage(chart, inst, q, tz, STACKS[0]);
  root.append(h('h2', { text: 'Projects' }));
  const drillBox = h('div');
  const projects = q.projects || [];
  for (const p of projects) {
    const name = p.id.split('/').slice(1).join('/');
    const btn = h('button.secondary', { type: 'button', 'data-drill-button': name, text: `Members of ${name}` });
    btn.addEventListener('click', () => drillBox.replaceChildren(drill(inst, name, tz)));
    root.append(levelView(p, tz, btn));
  }
  root.append(drillBox);
  if (lvl && (me.role === 'institution' || me.role === 'admin'))
    root.append(...tokenTools(inst, projects.map((p) => p.id.split('/').slice(1).join('/'))));
}
