// app.js — sign-in, the role's pages, navigation.  No framework, no build step.
import { h, api, session, errorBox } from './ui.js';
import { institutionPage } from './institution.js';
import { memberPage } from './member.js';
import { auditorPage } from './auditor.js';
import { adminPage } from './admin.js';
import { providerPage } from './provider.js';

// Pages each role sees, in menu order.
const PAGES = {
  admin: [['charter', 'Charter', adminPage], ['audit', 'Reports & log', auditorPage], ['quotas', 'Institutions', institutionPage]],
  auditor: [['audit', 'Reports & log', auditorPage], ['quotas', 'Institutions', institutionPage]],
  institution: [['quotas', 'Quotas', institutionPage]],
  provider: [['provider', 'Records', providerPage]],
  member: [['member', 'My quota', memberPage]],
};

const $ = (id) => document.getElementById(id);

function showSignin(message) {
  $('signin').hidden = false;
  $('page').replaceChildren();
  $('nav').replaceChildren();
  $('who').textContent = '';
  $('signout').hidden = true;
  $('signin-error').textContent = message || '';
  $('cred').focus();
}

async function start() {
  if (!session.get()) return showSignin();
  let me;
  try {
    me = await api('/v1/me');
  } catch (e) {
    session.clear();
    return showSignin(e.status === 401 ? 'That key or token was not accepted.' : e.message);
  }
  $('signin').hidden = true;
  $('signout').hidden = false;
  $('who').textContent = `${me.role}${me.institution ? ' · ' + me.institution : ''}${me.provider ? ' · ' + me.provider : ''}` +
    `${me.member ? ' · ' + me.member : ''}`;
  document.body.dataset.role = me.role;
  const pages = PAGES[me.role] || [];
  const want = location.hash.slice(1);
  const show = async (key) => {
    const pg = pages.find((p) => p[0] === key) || pages[0];
    [...$('nav').children].forEach((b) => b.setAttribute('aria-current', b.dataset.page === pg[0] ? 'page' : 'false'));
    if (location.hash.slice(1) !== pg[0]) history.replaceState(null, '', `#${pg[0]}`);
    const root = h('div', { 'data-page': pg[0] });
    $('page').replaceChildren(root);
    try {
      await pg[2](root, me);
    } catch (e) {
      root.append(errorBox(e));
    }
    root.dataset.ready = '1';
  };
  $('nav').replaceChildren(...pages.map(([key, label]) =>
    h('button', { type: 'button', 'data-page': key, onclick: () => show(key), text: label })));
  await show(want);
}

$('signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const v = $('cred').value.trim();
  $('cred').value = '';
  if (!v) return;
  session.set(v);
  start();
});
$('signout').addEventListener('click', () => {
  session.clear();
  history.replaceState(null, '', '/');
  showSignin();
});
start();
