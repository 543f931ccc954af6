// The Lists page: the denylist and the allowlist, each entry with who
// added it, when, why and until when; adding and removing with a required
// reason (analysts and admins only: the controls are not drawn for a
// viewer, and HQ refuses a viewer's change anyway); and the audit trail of
// both lists, newest first. Every table is a page at a time from HQ.

import { el } from './dom.js';

export const strings = {
  ja: {
    title: 'リスト',
    denylist: '拒否リスト',
    allowlist: '許可リスト',
    audit: '監査履歴',
    search: 'アカウントで検索',
    account: 'アカウント',
    accounts: 'アカウント（複数は空白区切り）',
    added: '追加日時',
    by: '追加者',
    who: '担当者',
    why: '理由',
    expires: '有効期限',
    never: '無期限',
    expired: '期限切れ',
    rule: 'ルール',
    seq: '版',
    none: '該当する項目はありません',
    more: 'さらに表示',
    add: '追加',
    addTo: '{list}に追加',
    remove: '削除',
    removeFrom: '{account} を{list}から削除',
    reason: '理由（必須）',
    reasonPlaceholder: '例：カード会社から盗難の連絡',
    duration: '期間',
    forever: '無期限',
    days: '{n}日',
    hours: '{n}時間',
    cancel: 'キャンセル',
    needReason: '理由を入力してください',
    needAccount: 'アカウントを入力してください',
    done: '{list} を変更しました（版 {seq}）。',
    warning: '注意: {warning}',
    readOnly: '閲覧のみ：リストの変更にはアナリスト権限が必要です。',
    list: 'リスト',
    both: '両方',
    at: '日時',
    change: '変更',
    added_: '追加',
    removed_: '削除',
  },
  en: {
    title: 'Lists',
    denylist: 'Denylist',
    allowlist: 'Allowlist',
    audit: 'Audit trail',
    search: 'Search by account',
    account: 'Account',
    accounts: 'Accounts (separated by spaces or lines)',
    added: 'Added',
    by: 'Added by',
    who: 'Who',
    why: 'Why',
    expires: 'Expires',
    never: 'never',
    expired: 'expired',
    rule: 'Rule',
    seq: 'Version',
    none: 'No entries',
    more: 'More',
    add: 'Add',
    addTo: 'Add to the {list}',
    remove: 'Remove',
    removeFrom: 'Remove {account} from the {list}',
    reason: 'Reason (required)',
    reasonPlaceholder: 'e.g. card reported stolen by the issuer',
    duration: 'For',
    forever: 'no expiry',
    days: '{n} days',
    hours: '{n} hours',
    cancel: 'Cancel',
    needReason: 'Give a reason',
    needAccount: 'Give an account',
    done: '{list} changed (version {seq}).',
    warning: 'Warning: {warning}',
    readOnly: 'Read only: changing the lists needs the analyst role.',
    list: 'List',
    both: 'Both',
    at: 'When',
    change: 'Change',
    added_: 'added',
    removed_: 'removed',
  },
};

const pageSize = 50;

// Durations offered per list: a denylist entry may be for good; an allow
// entry always ends (HQ allows at most a year).
const durations = {
  denylist: ['', '24h', '168h', '720h'],
  allowlist: ['24h', '168h', '720h', '2160h'],
};

export async function render(root, ctx) {
  const t = ctx.t;
  const can = ctx.can('analyst');
  const tabs = ['denylist', 'allowlist', 'audit'];
  let current = new URLSearchParams(location.hash.slice(1)).get('tab');
  if (!tabs.includes(current)) current = 'denylist';

  const nav = el('div', { class: 'lists-tabs', role: 'tablist' },
    tabs.map((tab) => el('button', { type: 'button', role: 'tab', testid: `tab-${tab}`, onclick: () => show(tab) }, t(tab))));
  const body = el('div', { class: 'lists-body' });
  root.replaceChildren(el('h1', {}, t('title')), nav, body);

  const durationName = (d) => {
    if (!d) return t('forever');
    const h = parseInt(d, 10);
    return h % 24 === 0 ? t('days', { n: h / 24 }) : t('hours', { n: h });
  };

  function show(tab) {
    current = tab;
    history.replaceState(null, '', `#tab=${tab}`);
    for (const b of nav.children) b.setAttribute('aria-selected', String(b.dataset.testid === `tab-${tab}`));
    if (tab === 'audit') return audit();
    return list(tab);
  }

  // A list: search, the add form, the entries a page at a time, and a
  // remove panel for the entry whose remove button was pressed.
  async function list(name) {
    const msg = el('p', { testid: 'list-message', class: 'list-message', role: 'status' });
    const search = el('input', { type: 'search', testid: 'list-search', placeholder: t('search'), 'aria-label': t('search') });
    const rows = el('tbody');
    const moreBtn = el('button', { type: 'button', testid: 'list-more', hidden: true }, t('more'));
    const removePanel = el('div', { class: 'list-remove', testid: 'list-remove-panel', hidden: true });
    const parts = [el('div', { class: 'list-tools' }, search)];
    if (can) parts.push(addForm(name, msg));
    else parts.push(el('p', { class: 'muted', testid: 'list-readonly' }, t('readOnly')));
    parts.push(msg, removePanel);
    const head = [t('account'), t('added'), t('by'), t('why'), t('expires'), t('rule')];
    if (can) head.push('');
    parts.push(el('table', { testid: `${name}-table`, class: 'lists-table' },
      el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))), rows), moreBtn);
    body.replaceChildren(...parts);

    let after = '';
    let timer = 0;
    async function page(reset) {
      if (reset) {
        after = '';
        rows.replaceChildren();
      }
      const q = new URLSearchParams({ limit: String(pageSize) });
      if (search.value.trim()) q.set('account', search.value.trim());
      if (after) q.set('after', after);
      let out;
      try {
        out = await ctx.api('GET', `/v1/${name}?${q}`);
      } catch (e) {
        msg.className = 'list-message error';
        msg.textContent = e.message;
        return;
      }
      for (const e of out.entries) rows.append(entryRow(name, e, removePanel, msg, () => page(true)));
      if (!rows.children.length) rows.append(el('tr', {}, el('td', { colspan: head.length, class: 'muted', testid: 'list-none' }, t('none'))));
      after = out.next;
      moreBtn.hidden = !out.next;
    }
    moreBtn.addEventListener('click', () => page(false));
    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => page(true), 250);
    });
    body.reload = () => page(true);
    await page(true);
  }

  function entryRow(name, e, removePanel, msg, reload) {
    let exp = t('never');
    if (e.expiresAt) exp = ctx.fmt.time(e.expiresAt) + (e.expired ? ` (${t('expired')})` : '');
    const cells = [
      el('td', { class: 'account' }, e.account),
      el('td', { title: e.seq ? `${t('seq')} ${e.seq}` : null }, ctx.fmt.time(e.added)),
      el('td', {}, e.by || ''),
      el('td', { class: 'why' }, e.why || e.reason || '',
        e.reason && e.why && e.reason !== e.why ? el('div', { class: 'muted detail' }, e.reason) : null),
      el('td', { class: e.expired ? 'expired' : null }, exp),
      el('td', { title: (e.events || []).join('\n') || null }, e.rule || ''),
    ];
    if (can) {
      cells.push(el('td', {}, el('button', { type: 'button', class: 'remove', testid: `remove-${e.account}`,
        onclick: () => openRemove(name, e.account, removePanel, msg, reload) }, t('remove'))));
    }
    return el('tr', { testid: `entry-${e.account}` }, cells);
  }

  function openRemove(name, account, panel, msg, reload) {
    const reason = el('input', { type: 'text', testid: 'remove-reason', maxlength: 500, required: true,
      placeholder: t('reasonPlaceholder'), 'aria-label': t('reason') });
    const go = el('button', { type: 'submit', testid: 'remove-confirm', class: 'danger' }, t('remove'));
    const form = el('form', { class: 'list-form', novalidate: true },
      el('strong', {}, t('removeFrom', { account, list: t(name) })), ' ',
      el('label', {}, t('reason'), ' ', reason), ' ', go, ' ',
      el('button', { type: 'button', onclick: () => { panel.hidden = true; } }, t('cancel')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!reason.value.trim()) {
        msg.className = 'list-message error';
        msg.textContent = t('needReason');
        return;
      }
      go.disabled = true;
      if (await change(name, { remove: [account], reason: reason.value }, msg)) {
        panel.hidden = true;
        await reload();
      }
      go.disabled = false;
    });
    panel.replaceChildren(form);
    panel.hidden = false;
    reason.focus();
  }

  function addForm(name, msg) {
    const accounts = el('input', { type: 'text', testid: 'add-account', 'aria-label': t('accounts'), placeholder: t('accounts'), required: true });
    const reason = el('input', { type: 'text', testid: 'add-reason', maxlength: 500, required: true,
      placeholder: t('reasonPlaceholder'), 'aria-label': t('reason') });
    const dur = el('select', { testid: 'add-duration', 'aria-label': t('duration') },
      durations[name].map((d) => el('option', { value: d }, durationName(d))));
    if (name === 'allowlist') dur.value = '720h';
    const go = el('button', { type: 'submit', testid: 'add-submit' }, t('add'));
    const form = el('form', { class: 'list-form', testid: 'add-form', novalidate: true },
      el('strong', {}, t('addTo', { list: t(name) })), ' ',
      accounts, ' ', reason, ' ', el('label', {}, t('duration'), ' ', dur), ' ', go);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const add = accounts.value.split(/\s+/).filter(Boolean);
      if (!add.length) {
        msg.className = 'list-message error';
        msg.textContent = t('needAccount');
        return;
      }
      if (!reason.value.trim()) {
        msg.className = 'list-message error';
        msg.textContent = t('needReason');
        return;
      }
      const req = { add, reason: reason.value };
      if (dur.value) req[name === 'allowlist' ? 'allowFor' : 'denyFor'] = dur.value;
      go.disabled = true;
      if (await change(name, req, msg)) {
        accounts.value = '';
        reason.value = '';
        await body.reload();
      }
      go.disabled = false;
    });
    return form;
  }

  // change posts a list change and says how it went; true when stored.
  async function change(name, req, msg) {
    try {
      const out = await ctx.api('POST', `/v1/${name}`, req);
      msg.className = 'list-message';
      msg.textContent = t('done', { list: t(name), seq: out.seq }) + (out.warning ? ' ' + t('warning', { warning: out.warning }) : '');
      return true;
    } catch (e) {
      msg.className = 'list-message error';
      msg.textContent = e.message;
      return false;
    }
  }

  // The audit trail: both lists' changes, newest first.
  async function audit() {
    const which = el('select', { testid: 'audit-list', 'aria-label': t('list') },
      el('option', { value: '' }, t('both')), el('option', { value: 'denylist' }, t('denylist')), el('option', { value: 'allowlist' }, t('allowlist')));
    const search = el('input', { type: 'search', testid: 'audit-search', placeholder: t('search'), 'aria-label': t('search') });
    const rows = el('tbody');
    const moreBtn = el('button', { type: 'button', testid: 'audit-more', hidden: true }, t('more'));
    const msg = el('p', { class: 'list-message', role: 'status' });
    body.replaceChildren(el('div', { class: 'list-tools' }, which, ' ', search), msg,
      el('table', { testid: 'audit-table', class: 'lists-table' },
        el('thead', {}, el('tr', {}, [t('at'), t('list'), t('who'), t('why'), t('change'), t('seq')].map((h) => el('th', {}, h)))), rows),
      moreBtn);
    let cursor = '';
    let timer = 0;
    async function page(reset) {
      if (reset) {
        cursor = '';
        rows.replaceChildren();
      }
      const q = new URLSearchParams({ limit: String(pageSize) });
      if (which.value) q.set('list', which.value);
      if (search.value.trim()) q.set('account', search.value.trim());
      if (cursor) q.set('cursor', cursor);
      let out;
      try {
        out = await ctx.api('GET', `/v1/lists/audit?${q}`);
      } catch (e) {
        msg.className = 'list-message error';
        msg.textContent = e.message;
        return;
      }
      for (const c of out.changes) {
        const what = [];
        if (c.add && c.add.length) what.push(el('div', { class: 'added' }, `+ ${t('added_')}: ${c.add.join(', ')}`));
        if (c.remove && c.remove.length) what.push(el('div', { class: 'removed' }, `− ${t('removed_')}: ${c.remove.join(', ')}`));
        rows.append(el('tr', { testid: 'audit-row' },
          el('td', {}, ctx.fmt.time(c.at)),
          el('td', {}, t(c.list)),
          el('td', { class: 'who' }, c.by),
          el('td', { class: 'why' }, c.reason),
          el('td', {}, what),
          el('td', { class: 'num' }, c.seq)));
      }
      if (!rows.children.length) rows.append(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, t('none'))));
      cursor = out.next;
      moreBtn.hidden = !out.next;
    }
    moreBtn.addEventListener('click', () => page(false));
    which.addEventListener('change', () => page(true));
    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => page(true), 250);
    });
    await page(true);
  }

  await show(current);
}
