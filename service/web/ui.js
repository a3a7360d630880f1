// ui.js — DOM helpers and the API client shared by every page.
// The credential lives in sessionStorage (this tab only), never in a cookie.
const KEY = 'allot.credential';

export const session = {
  get: () => sessionStorage.getItem(KEY),
  set: (v) => sessionStorage.setItem(KEY, v),
  clear: () => sessionStorage.removeItem(KEY),
};

// h('tag.class', {attr: v, onclick: fn}, ...children): an element.
export function h(spec, attrs = {}, ...kids) {
  const [tag, ...cls] = spec.split('.');
  const el = document.createElement(tag);
  if (cls.length) el.className = cls.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

// api(path, {method, body, type, raw}): JSON (or the Response with raw).
export async function api(path, opts = {}) {
  const headers = { Accept: 'application/json' };
  const cred = session.get();
  if (cred) headers.Authorization = `Bearer ${cred}`;
  let body = opts.body;
  if (body !== undefined && typeof body !== 'string') body = JSON.stringify(body);
  if (body !== undefined) headers['Content-Type'] = opts.type || 'application/json';
  const r = await fetch(path, { method: opts.method || 'GET', headers, body, cache: 'no-store' });
  if (opts.raw) return r;
  const text = await r.text();
  let j = null;
  try { j = text ? JSON.parse(text) : null; } catch { j = null; }
  if (!r.ok && !opts.allowError) throw new ApiError(r.status, j);
  return j;
}

// A table: cols = [{key, label, num}], rows = objects.
export function table(caption, cols, rows, attrs = {}) {
  return h('div.scroll', {}, h('table', attrs,
    h('caption', { text: caption }),
    h('thead', {}, h('tr', {}, cols.map((c) => h(c.num ? 'th.num' : 'th', { scope: 'col', text: c.label })))),
    h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => {
      const v = c.get ? c.get(r) : r[c.key];
      return h(c.num ? 'td.num' : 'td', { 'data-field': c.key }, v instanceof Node ? v : (v ?? ''));
    }))))));
}

export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', {}, h('label', { for: id, text: label }), input);
}

export function errorBox(e) {
  return h('p.error', { role: 'alert', text: e instanceof Error ? e.message : String(e) });
}

// Decimal strings from the API are exact; numbers here only size drawings.
export const num = (s) => (s === null || s === undefined ? 0 : Number(s));

export function localDate(iso, tz) {
  return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(new Date(iso));
}

// YYYY-MM-DD of "now + days" in zone tz.
export function dayIn(tz, days = 0) {
  return localDate(new Date(Date.now() + days * 86400000).toISOString(), tz);
}

export function download(name, type, data) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
