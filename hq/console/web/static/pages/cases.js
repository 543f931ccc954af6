// The Cases page: the fraud team's queue (open cases first, filter by
// state), a case with its history, its alerts (reasons as the store display
// words them: the API's text.ja/en) and the sales they are about, and the
// verdicts — confirm fraud (denylists the account everywhere), false
// positive (allowlists it until an expiry), close — each with a required
// note. Only analysts and admins see the verdict controls; HQ refuses the
// others anyway.

import { el } from './dom.js';

export const strings = {
  ja: {
    title: 'ケース',
    state: '状態',
    all: 'すべて',
    open: '未対応',
    confirmed_fraud: '不正確定',
    false_positive: '誤検知',
    closed: 'クローズ',
    id: 'ID',
    account: 'アカウント',
    storeIncident: '店舗インシデント',
    stores: '店舗',
    alerts: 'アラート',
    opened: '開始',
    updated: '更新',
    label: '判定',
    fraud: '不正',
    legit: '正当',
    more: 'さらに表示',
    none: 'ケースはありません',
    pick: '左の一覧からケースを選んでください',
    history: '履歴',
    at: '日時',
    by: '担当者',
    note: 'メモ',
    move: '変更',
    caseAlerts: 'アラート',
    sales: '売上',
    where: '店舗／レジ',
    reasons: '理由',
    outcome: '判定',
    total: '金額',
    items: '点数',
    rules: 'ルール',
    allow: '許可',
    review: '確認待ち',
    deny: '拒否',
    noAlerts: 'アラートはありません',
    noSales: '売上はありません',
    verdict: '判定を記録',
    notePlaceholder: '理由（必須）：例　S002の防犯カメラで同一人物を確認',
    allowFor: '許可の期間',
    days: '{n}日',
    confirm: '不正と確定',
    falsePositive: '誤検知',
    close: 'クローズ',
    needNote: 'メモを入力してください',
    moved: 'ケース {id} を「{state}」にしました。',
    listed: '{list} の変更 #{seq} を配信しました。',
    denylist: '拒否リスト',
    allowlist: '許可リスト',
    warning: '注意: {warning}',
    readOnly: '閲覧のみ：判定を記録するにはアナリスト権限が必要です。',
    final: 'このケースは判定済みです。',
    shadow: '試験',
  },
  en: {
    title: 'Cases',
    state: 'State',
    all: 'All',
    open: 'Open',
    confirmed_fraud: 'Confirmed fraud',
    false_positive: 'False positive',
    closed: 'Closed',
    id: 'ID',
    account: 'Account',
    storeIncident: 'Store incident',
    stores: 'Stores',
    alerts: 'Alerts',
    opened: 'Opened',
    updated: 'Updated',
    label: 'Label',
    fraud: 'fraud',
    legit: 'legitimate',
    more: 'More',
    none: 'No cases',
    pick: 'Pick a case from the list',
    history: 'History',
    at: 'When',
    by: 'Who',
    note: 'Note',
    move: 'Change',
    caseAlerts: 'Alerts',
    sales: 'Sales',
    where: 'Store / register',
    reasons: 'Reasons',
    outcome: 'Outcome',
    total: 'Amount',
    items: 'Items',
    rules: 'Rules',
    allow: 'allowed',
    review: 'review',
    deny: 'denied',
    noAlerts: 'No alerts',
    noSales: 'No sales',
    verdict: 'Record a verdict',
    notePlaceholder: 'Why (required), e.g. same person on S002 CCTV',
    allowFor: 'Allow for',
    days: '{n} days',
    confirm: 'Confirm fraud',
    falsePositive: 'False positive',
    close: 'Close',
    needNote: 'Write a note first',
    moved: 'Case {id} is now "{state}".',
    listed: '{list} change #{seq} published.',
    denylist: 'Denylist',
    allowlist: 'Allowlist',
    warning: 'Warning: {warning}',
    readOnly: 'Read only: recording a verdict needs the analyst role.',
    final: 'This case has its verdict.',
    shadow: 'shadow',
  },
};

const states = ['open', 'confirmed_fraud', 'false_positive', 'closed'];
const pageSize = 50;

function table(testid, head, rows) {
  return el('table', { testid, class: 'cases-table' },
    el('thead', {}, el('tr', {}, head.map(([h, cls]) => el('th', { class: cls }, h)))),
    el('tbody', {}, rows));
}

// selected is the case id in the URL's hash (#case=ID).
function selected() {
  return new URLSearchParams(location.hash.slice(1)).get('case') || '';
}

export async function render(root, ctx) {
  const t = ctx.t;
  const stateName = (s) => t(s);
  const outcomeName = (o) => (o ? t(o) : '');
  let filter = new URLSearchParams(location.search).get('state') ?? 'open';

  const select = el('select', { testid: 'case-state', 'aria-label': t('state') },
    el('option', { value: '' }, t('all')),
    states.map((s) => el('option', { value: s }, stateName(s))));
  select.value = filter;
  const queue = el('div', { class: 'cases-queue' });
  const detail = el('section', { class: 'cases-detail', testid: 'case-detail' }, el('p', { class: 'muted' }, t('pick')));
  root.replaceChildren(
    el('div', { class: 'cases-head' }, el('h1', {}, t('title')), el('label', {}, t('state'), ' ', select)),
    el('div', { class: 'cases-layout' }, queue, detail));

  const error = (where, e) => where.replaceChildren(el('p', { class: 'error', testid: 'case-error', role: 'alert' }, e.message || String(e)));

  // The queue: a page at a time, oldest first within the state.
  async function loadQueue() {
    const rows = el('tbody');
    const tbl = el('table', { testid: 'case-list', class: 'cases-table' },
      el('thead', {}, el('tr', {},
        [t('id'), t('account'), t('stores'), t('state'), t('alerts'), t('opened')].map((h, i) => el('th', { class: i === 4 ? 'num' : null }, h)))),
      rows);
    const moreBtn = el('button', { type: 'button', testid: 'case-more', hidden: true }, t('more'));
    queue.replaceChildren(tbl, moreBtn);
    let after = '';
    async function page() {
      const q = new URLSearchParams({ limit: String(pageSize) });
      if (filter) q.set('state', filter);
      if (after) q.set('after', after);
      let list;
      try {
        list = await ctx.api('GET', `/v1/cases?${q}`);
      } catch (e) {
        error(queue, e);
        return;
      }
      for (const c of list) {
        const tr = el('tr', { testid: `case-row-${c.id}`, class: `case-row state-${c.state}`, tabindex: 0,
          'aria-selected': String(c.id === selected()), onclick: () => { location.hash = `case=${c.id}`; } },
        el('td', {}, c.id),
        el('td', {}, c.account || el('em', {}, t('storeIncident'))),
        el('td', {}, (c.stores || []).join(', ')),
        el('td', {}, el('span', { class: `badge badge-${c.state}` }, stateName(c.state))),
        el('td', { class: 'num' }, ctx.fmt.num(c.alerts)),
        el('td', { title: ctx.fmt.time(c.opened) }, ctx.fmt.ago(c.opened)));
        tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') tr.click(); });
        rows.append(tr);
      }
      if (!rows.children.length) rows.append(el('tr', {}, el('td', { colspan: 6, class: 'muted', testid: 'case-none' }, t('none'))));
      after = list.length ? list[list.length - 1].id : after;
      moreBtn.hidden = list.length < pageSize;
    }
    moreBtn.addEventListener('click', page);
    await page();
  }

  // One case: header, verdict controls, history, alerts and sales.
  async function loadCase(id) {
    for (const tr of queue.querySelectorAll('tr.case-row')) tr.setAttribute('aria-selected', String(tr.dataset.testid === `case-row-${id}`));
    if (!id) {
      detail.replaceChildren(el('p', { class: 'muted' }, t('pick')));
      return;
    }
    let c;
    try {
      c = await ctx.api('GET', `/v1/cases/${encodeURIComponent(id)}`);
    } catch (e) {
      error(detail, e);
      return;
    }
    const msg = el('p', { testid: 'case-message', class: 'case-message', role: 'status' });
    detail.replaceChildren(
      el('h2', {}, `#${c.id} `, c.account ? el('span', { testid: 'case-account' }, c.account) : t('storeIncident'), ' ',
        el('span', { class: `badge badge-${c.state}`, testid: 'case-state-badge' }, stateName(c.state))),
      el('dl', { class: 'case-facts' },
        el('dt', {}, t('stores')), el('dd', {}, (c.stores || []).join(', ')),
        el('dt', {}, t('opened')), el('dd', {}, ctx.fmt.time(c.opened)),
        el('dt', {}, t('updated')), el('dd', {}, ctx.fmt.time(c.updated)),
        c.label ? [el('dt', {}, t('label')), el('dd', { testid: 'case-label' }, t(c.label))] : null),
      verdictControls(c, msg),
      msg,
      el('h3', {}, t('history')),
      table('case-history', [[t('at')], [t('move')], [t('by')], [t('note')]], c.history.map((h) => el('tr', {},
        el('td', { class: 'when' }, ctx.fmt.time(h.at)),
        el('td', {}, h.from ? `${stateName(h.from)} → ${stateName(h.to)}` : stateName(h.to)),
        el('td', {}, h.by),
        el('td', { class: 'note' }, h.note)))));
    const events = el('div', { class: 'case-events' });
    detail.append(events);
    await loadEvents(c, events);
  }

  function verdictControls(c, msg) {
    if (!ctx.can('analyst')) return el('p', { class: 'muted', testid: 'case-readonly' }, t('readOnly'));
    if (c.state === 'closed') return el('p', { class: 'muted' }, t('final'));
    const note = el('textarea', { testid: 'case-note', rows: 2, maxlength: 500, placeholder: t('notePlaceholder'), 'aria-label': t('note'), required: true });
    const allowFor = el('select', { testid: 'case-allow-for', 'aria-label': t('allowFor') },
      [1, 7, 30, 90].map((n) => el('option', { value: `${n * 24}h`, selected: n === 30 }, t('days', { n }))));
    const buttons = [];
    const act = (testid, label, cls, path, body) => {
      const b = el('button', { type: 'button', testid, class: cls, disabled: true }, label);
      b.addEventListener('click', async () => {
        if (!note.value.trim()) {
          msg.textContent = t('needNote');
          return;
        }
        for (const x of buttons) x.disabled = true;
        msg.className = 'case-message';
        try {
          const out = await ctx.api('POST', `/v1/cases/${encodeURIComponent(c.id)}/${path}`, body());
          let text = t('moved', { id: c.id, state: stateName(out.case.state) });
          if (out.listSeq) text += ' ' + t('listed', { list: t(out.list), seq: out.listSeq });
          if (out.warning) text += ' ' + t('warning', { warning: out.warning });
          await Promise.all([loadQueue(), loadCase(c.id)]);
          const m = detail.querySelector('[data-testid="case-message"]');
          if (m) m.textContent = text;
        } catch (e) {
          msg.className = 'case-message error';
          msg.textContent = e.message;
          for (const x of buttons) x.disabled = !note.value.trim();
        }
      });
      buttons.push(b);
      return b;
    };
    const controls = [];
    if (c.state === 'open') {
      controls.push(act('case-confirm', t('confirm'), 'danger', 'confirm', () => ({ note: note.value })));
      controls.push(el('span', { class: 'fp' },
        act('case-false-positive', t('falsePositive'), 'ok', 'false-positive', () => ({ note: note.value, allowFor: allowFor.value })),
        c.account ? el('label', {}, ' ', t('allowFor'), ' ', allowFor) : null));
    }
    controls.push(act('case-close', t('close'), 'plain', 'close', () => ({ note: note.value })));
    note.addEventListener('input', () => { for (const b of buttons) b.disabled = !note.value.trim(); });
    return el('fieldset', { class: 'case-verdict', testid: 'case-verdict' }, el('legend', {}, t('verdict')), note, el('div', { class: 'case-buttons' }, controls));
  }

  // The case's alerts and their sales, a page at a time.
  async function loadEvents(c, box) {
    const alertRows = el('tbody');
    const saleRows = el('tbody');
    const moreBtn = el('button', { type: 'button', testid: 'case-events-more', hidden: true }, t('more'));
    box.replaceChildren(
      el('h3', {}, t('caseAlerts')),
      el('table', { testid: 'case-alerts', class: 'cases-table' },
        el('thead', {}, el('tr', {}, [t('at'), t('where'), t('reasons')].map((h) => el('th', {}, h)))), alertRows),
      el('h3', {}, t('sales')),
      el('table', { testid: 'case-sales', class: 'cases-table' },
        el('thead', {}, el('tr', {}, [[t('at')], [t('where')], [t('account')], [t('total'), 'num'], [t('items'), 'num'], [t('outcome')], [t('rules')]]
          .map(([h, cls]) => el('th', { class: cls }, h)))), saleRows),
      moreBtn);
    const seenSales = new Set();
    let cursor = '';
    async function page() {
      const q = new URLSearchParams({ limit: String(pageSize) });
      if (cursor) q.set('cursor', cursor);
      let out;
      try {
        out = await ctx.api('GET', `/v1/cases/${encodeURIComponent(c.id)}/events?${q}`);
      } catch (e) {
        box.append(el('p', { class: 'error', role: 'alert' }, e.message));
        return;
      }
      for (const a of out.alerts) {
        const lines = (a.text && (a.text[ctx.lang] || a.text.ja)) || [a.detail || ''];
        alertRows.append(el('tr', { testid: 'case-alert', class: a.chain ? 'chain' : null },
          el('td', { class: 'when' }, ctx.fmt.time(a.at)),
          el('td', {}, a.chain ? `HQ (${(a.chain.stores || []).join(', ')})` : `${a.store} / ${a.register}`),
          el('td', {}, el('ul', { class: 'reasons' }, lines.map((l) => el('li', {}, l))))));
      }
      for (const s of out.sales) {
        const k = `${s.store}/${s.register}/${s.saleId}`;
        if (seenSales.has(k)) continue;
        seenSales.add(k);
        saleRows.append(el('tr', { testid: 'case-sale', class: `outcome-${s.outcome}` },
          el('td', { class: 'when' }, ctx.fmt.time(s.at)),
          el('td', {}, `${s.store} / ${s.register}`),
          el('td', {}, s.account || ''),
          el('td', { class: 'num' }, ctx.fmt.yen(s.total)),
          el('td', { class: 'num' }, ctx.fmt.num(s.items)),
          el('td', {}, el('span', { class: `badge badge-${s.outcome}` }, outcomeName(s.outcome))),
          el('td', {}, (s.rules || []).join(', '))));
      }
      if (!alertRows.children.length) alertRows.append(el('tr', {}, el('td', { colspan: 3, class: 'muted' }, t('noAlerts'))));
      if (!saleRows.children.length) saleRows.append(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, t('noSales'))));
      cursor = out.next;
      moreBtn.hidden = !out.next;
    }
    moreBtn.addEventListener('click', page);
    await page();
  }

  select.addEventListener('change', async () => {
    filter = select.value;
    const u = new URL(location.href);
    u.searchParams.set('state', filter);
    history.replaceState(null, '', u);
    await loadQueue();
  });
  addEventListener('hashchange', () => loadCase(selected()));
  await loadQueue();
  await loadCase(selected());
}
