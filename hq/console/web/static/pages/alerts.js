// The Alerts page: the fleet's alerts as HQ stores them, live (SSE), with
// filters, each with its reasons as the store display renders them.
//
// The stream is opened first and the list fetched once the stream says it
// follows the feed ("ready"): an alert stored in between comes by both
// ways and is shown once (rows are keyed by event id). A reconnecting
// EventSource sends the last id it saw and HQ goes on from there.

import { el } from './dom.js';

export const strings = {
  ja: {
    title: 'アラート',
    store: '店舗', rule: 'ルール', outcome: '判定', since: '開始', until: '終了',
    all: 'すべて', deny: '拒否', review: '確認', chain: 'チェーン',
    apply: '表示', clear: 'クリア', older: 'さらに古いアラート',
    live: 'ライブ', connecting: '接続中…', offline: '再接続中…', history: '期間指定(ライブなし)',
    none: '該当するアラートはありません',
    at: '日時', where: '店舗/レジ', account: '口座', amount: '金額', reasons: '理由', state: '状態',
    open: '確認待ち', approved: '承認', rejected: '却下', timed_out: '時間切れ', denied: '拒否済み',
    policy: 'ポリシー {name} v{version}', by: '{who}', newCount: '新着 {n} 件', shadow: '(シャドー)',
    failed: '読み込めませんでした: {msg}',
  },
  en: {
    title: 'Alerts',
    store: 'Store', rule: 'Rule', outcome: 'Outcome', since: 'From', until: 'To',
    all: 'All', deny: 'Deny', review: 'Review', chain: 'Chain',
    apply: 'Show', clear: 'Clear', older: 'Older alerts',
    live: 'Live', connecting: 'Connecting…', offline: 'Reconnecting…', history: 'Time range (not live)',
    none: 'No alerts match',
    at: 'Time', where: 'Store/register', account: 'Account', amount: 'Amount', reasons: 'Reasons', state: 'State',
    open: 'Waiting', approved: 'Approved', rejected: 'Rejected', timed_out: 'Timed out', denied: 'Denied',
    policy: 'policy {name} v{version}', by: '{who}', newCount: '{n} new', shadow: '(shadow)',
    failed: 'Could not load: {msg}',
  },
};

const pageSize = 50;

// isoLocal turns an <input type=datetime-local> value into RFC 3339.
function isoLocal(v) {
  return v ? new Date(v).toISOString() : '';
}

// kind is the alert's colour: deny, review, or chain (HQ's chain rules).
function kind(a) {
  if (a.chain) return 'chain';
  return a.decision ? a.decision.outcome : 'review';
}

export async function render(root, ctx) {
  const t = ctx.t;
  const params = new URLSearchParams(location.search);
  const f = {
    store: el('input', { type: 'text', 'data-testid': 'alerts-filter-store', value: params.get('store') || '', size: 8 }),
    rule: el('input', { type: 'text', 'data-testid': 'alerts-filter-rule', value: params.get('rule') || '', size: 12 }),
    outcome: el('select', { 'data-testid': 'alerts-filter-outcome' },
      el('option', { value: '', text: t('all') }),
      el('option', { value: 'deny', text: t('deny') }),
      el('option', { value: 'review', text: t('review') })),
    since: el('input', { type: 'datetime-local', 'data-testid': 'alerts-filter-since' }),
    until: el('input', { type: 'datetime-local', 'data-testid': 'alerts-filter-until' }),
  };
  f.outcome.value = params.get('outcome') || '';
  const status = el('span', { class: 'al-status', 'data-testid': 'alerts-live' });
  const error = el('p', { class: 'al-error', 'data-testid': 'alerts-error', hidden: true });
  const list = el('ol', { class: 'al-list', 'data-testid': 'alerts-list' });
  const empty = el('p', { class: 'al-empty', text: t('none'), hidden: true });
  const older = el('button', { type: 'button', 'data-testid': 'alerts-older', text: t('older'), hidden: true });
  const label = (key, input) => el('label', {}, el('span', { text: t(key) }), input);
  const form = el('form', { class: 'al-filters', 'data-testid': 'alerts-filters' },
    label('store', f.store), label('rule', f.rule), label('outcome', f.outcome),
    label('since', f.since), label('until', f.until),
    el('button', { type: 'submit', 'data-testid': 'alerts-apply', text: t('apply') }),
    el('button', { type: 'button', 'data-testid': 'alerts-clear', text: t('clear'), onclick: () => {
      for (const k of Object.keys(f)) f[k].value = '';
      start();
    } }),
    status);
  root.replaceChildren(el('h1', { text: t('title') }), form, error, list, empty, older);

  let es = null;           // the live stream
  let shown = new Map();   // event id → row
  let oldest = null;       // the last row of the list: the next page's cursor
  let generation = 0;      // a newer start() makes older answers moot

  const showError = (err) => {
    error.textContent = t('failed', { msg: err.message || String(err) });
    error.hidden = false;
  };

  const filters = () => {
    const q = new URLSearchParams();
    if (f.store.value.trim()) q.set('store', f.store.value.trim());
    if (f.rule.value.trim()) q.set('rule', f.rule.value.trim());
    if (f.outcome.value) q.set('outcome', f.outcome.value);
    if (f.since.value) q.set('since', isoLocal(f.since.value));
    return q;
  };

  const row = (a) => {
    const k = kind(a);
    const texts = a.text ? a.text[ctx.lang] || a.text.ja : (a.chain ? [a.chain.reason] : []);
    const reasons = el('ul', { class: 'al-reasons', 'data-testid': 'alert-reasons' },
      ...texts.map((s) => el('li', { text: s })));
    const pol = a.decision && a.decision.policy && a.decision.policy.name
      ? el('span', { class: 'al-policy', text: t('policy', { name: a.decision.policy.name, version: a.decision.policy.version }) }) : null;
    const state = el('span', { class: `al-state al-state-${a.state}`, 'data-testid': 'alert-state', text: t(a.state) || a.state });
    if (a.resolution && a.resolution.by) state.title = a.resolution.by;
    return el('li', { class: `al-row al-${k}`, 'data-testid': 'alert-row', 'data-id': a.id, 'data-outcome': k },
      el('span', { class: 'al-outcome', text: t(k) }),
      el('time', { class: 'al-at', datetime: a.at, title: a.at, text: ctx.fmt.time(a.at) }),
      el('span', { class: 'al-where', 'data-testid': 'alert-where', text: a.chain ? (a.chain.stores || []).join(', ') || a.store : `${a.store} / ${a.register}` }),
      el('span', { class: 'al-account', 'data-testid': 'alert-account', text: a.maskedAccount || '' }),
      el('span', { class: 'al-amount', text: a.amount ? ctx.fmt.yen(a.amount) : '' }),
      state, reasons, pol);
  };

  // add shows an alert once, in its place by time of sale, newest first:
  // the stream's alerts are mostly the newest, but a stream (re)starting
  // reads the last moments of the feed again, and a register back from
  // offline delivers old alerts late — they flash where they belong.
  const add = (a, live) => {
    if (shown.has(a.id)) return;
    const r = row(a);
    r.dataset.at = String(Date.parse(a.at));
    shown.set(a.id, r);
    empty.hidden = true;
    if (live) {
      r.classList.add('al-new');
      r.dataset.shownAt = String(Date.now()); // when it arrived live: the tests measure the delay
    }
    const at = Number(r.dataset.at);
    for (const other of list.children) {
      const oat = Number(other.dataset.at);
      if (oat < at || (oat === at && other.dataset.id < a.id)) {
        list.insertBefore(r, other);
        return;
      }
    }
    list.append(r);
  };

  const fetchPage = async (gen) => {
    const q = filters();
    q.set('order', 'desc');
    q.set('limit', String(pageSize));
    if (f.until.value) q.set('until', isoLocal(f.until.value));
    if (oldest) {
      q.set('until', oldest.at);
      q.set('before', oldest.id);
    }
    const page = await ctx.api('GET', '/v1/alerts?' + q.toString());
    if (gen !== generation) return;
    for (const a of page) add(a, false);
    if (page.length > 0) oldest = page[page.length - 1];
    older.hidden = page.length < pageSize;
    empty.hidden = shown.size > 0;
    list.dataset.loaded = String(gen); // the list is in: what the tests wait for
  };

  const start = () => {
    const gen = ++generation;
    if (es) es.close();
    es = null;
    shown = new Map();
    oldest = null;
    list.replaceChildren();
    delete list.dataset.loaded;
    error.hidden = true;
    older.hidden = true;
    const q = filters();
    const url = new URL(location.href);
    url.search = q.toString();
    history.replaceState(null, '', url);
    if (f.until.value) {
      // A closed range: history only.
      status.textContent = t('history');
      status.className = 'al-status al-history';
      fetchPage(gen).catch(showError);
      return;
    }
    status.textContent = t('connecting');
    status.className = 'al-status al-connecting';
    let listed = false;
    es = ctx.sse('/v1/alerts/stream?' + q.toString(), (type, data) => {
      if (gen !== generation) return;
      const v = typeof data === 'string' ? JSON.parse(data) : data;
      if (type === 'ready') {
        status.textContent = t('live');
        status.className = 'al-status al-live';
        if (!listed) {
          listed = true;
          fetchPage(gen).catch(showError);
        }
      } else if (type === 'alert') {
        add(v, true);
      }
    }, ['ready', 'alert']);
    es.addEventListener('error', () => {
      if (gen !== generation) return;
      status.textContent = t('offline');
      status.className = 'al-status al-offline';
    });
  };

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    start();
  });
  older.addEventListener('click', () => fetchPage(generation).catch(showError));
  start();
}
