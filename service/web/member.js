// member.js — a member token's own remaining quota at every level.
import { h, api } from './ui.js';
import { legend } from './chart.js';
import { levelView, BAR_LEGEND, projection } from './institution.js';
import { recentRecords } from './provider.js';

export async function memberPage(root, me) {
  const tz = me.timezone || 'UTC';
  const q = await api('/v1/quotas/me');
  root.append(h('h1', { text: `Quota of ${me.member} (${me.institution}/${me.project})` }), legend(BAR_LEGEND));
  for (const l of q.levels) root.append(levelView(l, tz, l.level === 'member' || l.level === 'project' ? projection(l, tz) : null));
  root.append(h('h2', { text: 'Recent requests' }), await recentRecords('', tz, 'member'));
  root.append(h('p.muted', { text: 'Each answer of the gate also carries X-Allot-Remaining headers with these figures.' }));
}
