// The fleet page: stores with their registers counted, a store's registers
// on demand, and the rollout of the pushed policy, kept live by the
// /v1/fleet/stream events. Every list is paged by the server.

export const strings = {
  ja: {
    title: '店舗・レジ',
    rollout: 'ポリシー配信',
    noPolicy: '配信中のポリシーはありません',
    scope: '対象 {scope}',
    scopeAll: '全店舗',
    applied: '適用済み {n}',
    refused: '拒否 {n}',
    pending: '待機中 {n}',
    offline: 'オフライン {n}',
    percent: '{p}% 適用',
    refusals: '拒否したレジ',
    waiting: '未適用のレジ',
    store: '店舗',
    registers: 'レジ数',
    online: 'オンライン',
    offlineCol: 'オフライン',
    lastSeen: '最終受信',
    policies: 'ポリシー',
    maxOutbox: '未送信(最大)',
    scannersDown: 'スキャナ異常',
    more: 'さらに表示',
    register: 'レジ',
    state: '状態',
    policy: 'ポリシー',
    denylist: '拒否リスト',
    outbox: '未送信',
    scanner: 'スキャナ',
    refusal: '最後の拒否',
    up: '接続',
    down: '切断',
    none: 'なし',
    isOnline: 'オンライン',
    isOffline: 'オフライン',
    live: 'ライブ',
    reconnecting: '再接続中…',
    noStores: 'まだ状態を報告したレジはありません',
    unreadable: '読めないバンドル ({scope}): {error}',
    expand: '{store} のレジを表示',
    collapse: '{store} のレジを閉じる',
    already: '新しい v{v} を適用済み',
  },
  en: {
    title: 'Fleet',
    rollout: 'Policy rollout',
    noPolicy: 'No policy has been pushed',
    scope: 'scope {scope}',
    scopeAll: 'all stores',
    applied: 'applied {n}',
    refused: 'refused {n}',
    pending: 'pending {n}',
    offline: 'offline {n}',
    percent: '{p}% applied',
    refusals: 'Registers that refused',
    waiting: 'Registers not on it yet',
    store: 'Store',
    registers: 'Registers',
    online: 'Online',
    offlineCol: 'Offline',
    lastSeen: 'Last seen',
    policies: 'Policies',
    maxOutbox: 'Outbox (max)',
    scannersDown: 'Scanners down',
    more: 'More',
    register: 'Register',
    state: 'State',
    policy: 'Policy',
    denylist: 'Denylist',
    outbox: 'Outbox',
    scanner: 'Scanner',
    refusal: 'Last refusal',
    up: 'up',
    down: 'down',
    none: 'none',
    isOnline: 'online',
    isOffline: 'offline',
    live: 'live',
    reconnecting: 'reconnecting…',
    noStores: 'No register has reported yet',
    unreadable: 'unreadable bundle ({scope}): {error}',
    expand: 'show the registers of {store}',
    collapse: 'hide the registers of {store}',
    already: 'already on newer v{v}',
  },
};

const PAGE = 100; // stores per page

// h makes an element: attributes (data-*, class, text, on*) and children.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null) el.append(c);
  }
  return el;
}

// debounce runs f at most once per wait, after the last call.
function debounce(f, wait) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(f, wait);
  };
}

export async function render(root, ctx) {
  const t = ctx.t;
  const state = {
    stores: [],       // StoreSummary, in order
    next: '',         // the after of the next page, '' when none
    open: new Map(),  // store → its registers' tbody, while expanded
  };

  const error = h('p', { class: 'fleet-error', 'data-testid': 'error', role: 'alert', hidden: true });
  const live = h('span', { class: 'fleet-live', 'data-testid': 'live', text: t('reconnecting') });
  const rollout = h('section', { class: 'fleet-rollout', 'data-testid': 'rollout' });
  const storesBody = h('tbody');
  const more = h('button', { type: 'button', 'data-testid': 'stores-more', text: t('more'), hidden: true,
    onclick: () => loadStores(state.next).catch(show) });
  const empty = h('p', { class: 'fleet-empty', 'data-testid': 'stores-empty', text: t('noStores'), hidden: true });
  root.replaceChildren(
    h('header', { class: 'fleet-head' }, h('h1', { text: t('title') }), live),
    error,
    rollout,
    h('table', { class: 'fleet-stores', 'data-testid': 'stores' },
      h('thead', {}, h('tr', {},
        h('th', { text: t('store') }), h('th', { text: t('registers') }), h('th', { text: t('online') }),
        h('th', { text: t('offlineCol') }), h('th', { text: t('lastSeen') }), h('th', { text: t('policies') }),
        h('th', { text: t('maxOutbox') }), h('th', { text: t('scannersDown') }))),
      storesBody),
    empty,
    more,
  );

  function show(err) {
    error.textContent = err && err.message ? err.message : String(err);
    error.hidden = false;
  }
  function ok() { error.hidden = true; }

  const linkText = (l) => (l === 'up' || l === 'down' || l === 'none') ? t(l) : (l || '—');
  const policyText = (name, v) => (v ? `${name} v${v}` : '—');

  // ---- rollout ----
  async function loadRollout() {
    const r = await ctx.api('GET', '/v1/policy/rollout?limit=50');
    ok();
    drawRollout(r);
  }

  function drawRollout(r) {
    const parts = [h('h2', { text: t('rollout') })];
    for (const p of r.pushed || []) {
      if (p.error) {
        parts.push(h('p', { class: 'fleet-error', 'data-testid': 'rollout-unreadable',
          text: t('unreadable', { scope: p.scope, error: p.error }) }));
      }
    }
    const ro = r.rollout;
    if (!ro) {
      parts.push(h('p', { 'data-testid': 'rollout-none', text: t('noPolicy') }));
      rollout.replaceChildren(...parts);
      return;
    }
    const name = r.policy ? r.policy.name : '';
    const scope = ro.scope === 'all' ? t('scopeAll') : ro.scope;
    const pct = ro.registers ? Math.floor((100 * ro.applied) / ro.registers) : 0;
    const seg = (cls, n) => h('span', { class: `seg ${cls}`, style: `flex-grow:${n}`, title: `${n}` });
    parts.push(
      h('p', { class: 'fleet-policy', 'data-testid': 'rollout-policy' },
        h('strong', { text: policyText(name || '?', ro.version) }), ' ',
        h('span', { class: 'muted', text: t('scope', { scope }) })),
      h('div', { class: 'fleet-bar', 'data-testid': 'rollout-bar', role: 'progressbar',
        'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct) },
        seg('applied', ro.applied), seg('refused', ro.refused), seg('pending', ro.pending), seg('offline', ro.offline)),
      h('p', { class: 'fleet-counts' },
        h('span', { class: 'pct', 'data-testid': 'rollout-percent', 'data-percent': String(pct), text: t('percent', { p: pct }) }), ' ',
        h('span', { class: 'c applied', 'data-testid': 'rollout-applied', text: t('applied', { n: ctx.fmt.num(ro.applied) }) }), ' ',
        h('span', { class: 'c refused', 'data-testid': 'rollout-refused', text: t('refused', { n: ctx.fmt.num(ro.refused) }) }), ' ',
        h('span', { class: 'c pending', 'data-testid': 'rollout-pending', text: t('pending', { n: ctx.fmt.num(ro.pending) }) }), ' ',
        h('span', { class: 'c offline', 'data-testid': 'rollout-offline', text: t('offline', { n: ctx.fmt.num(ro.offline) }) })),
    );
    if (ro.refusals.length) {
      parts.push(h('h3', { text: t('refusals') }), h('ul', { class: 'fleet-refusals', 'data-testid': 'rollout-refusals' },
        ro.refusals.map((x) => h('li', { 'data-testid': 'refusal', 'data-register': `${x.store}/${x.register}` },
          h('strong', { text: `${x.store}/${x.register}` }), ' ',
          h('code', { 'data-testid': 'refusal-reason', text: reasonText(x.reason) }),
          x.detail ? h('span', { class: 'muted', text: ` — ${x.detail}` }) : null))));
    }
    if (ro.waiting.length) {
      parts.push(h('h3', { text: t('waiting') }), h('ul', { class: 'fleet-waiting', 'data-testid': 'rollout-waiting' },
        ro.waiting.map((x) => h('li', { 'data-register': `${x.store}/${x.register}` },
          `${x.store}/${x.register} `,
          h('span', { class: `badge ${x.state}`, text: x.state === 'offline' ? t('isOffline') : t('pending', { n: '' }).trim() }),
          ' ', h('span', { class: 'muted', text: ctx.fmt.ago(x.lastSeen) })))));
    }
    rollout.replaceChildren(...parts);
  }

  // reasonText turns "already on newer v4" (the server's wording for a
  // register past the version) into the page's language.
  function reasonText(reason) {
    const m = /^already on newer v(\d+)$/.exec(reason || '');
    return m ? t('already', { v: m[1] }) : reason;
  }

  // ---- stores ----
  async function loadStores(after) {
    const q = `/v1/fleet/stores?limit=${PAGE}` + (after ? `&after=${encodeURIComponent(after)}` : '');
    const page = await ctx.api('GET', q);
    ok();
    if (!after) state.stores = [];
    state.stores.push(...page.stores);
    state.next = page.next || '';
    drawStores();
  }

  // reloadStores reads again every page shown so far.
  async function reloadStores() {
    const shown = Math.max(state.stores.length, 1);
    const all = [];
    let after = '';
    let next = '';
    do {
      const q = `/v1/fleet/stores?limit=${PAGE}` + (after ? `&after=${encodeURIComponent(after)}` : '');
      const page = await ctx.api('GET', q);
      all.push(...page.stores);
      next = page.next || '';
      after = next;
    } while (next && all.length < shown);
    ok();
    state.stores = all;
    state.next = next;
    drawStores();
  }

  function drawStores() {
    const rows = [];
    for (const s of state.stores) {
      const isOpen = state.open.has(s.store);
      const toggle = h('button', { type: 'button', class: 'fleet-toggle', 'data-testid': 'store-toggle',
        'aria-expanded': String(isOpen), title: t(isOpen ? 'collapse' : 'expand', { store: s.store }),
        text: `${isOpen ? '▾' : '▸'} ${s.store}`, onclick: () => toggleStore(s.store).catch(show) });
      rows.push(h('tr', { 'data-testid': 'store-row', 'data-store': s.store, class: s.offline ? 'has-offline' : '' },
        h('td', {}, toggle),
        h('td', { 'data-testid': 'store-registers', text: ctx.fmt.num(s.registers) }),
        h('td', { 'data-testid': 'store-online', text: ctx.fmt.num(s.online) }),
        h('td', { 'data-testid': 'store-offline', class: s.offline ? 'warn' : '', text: ctx.fmt.num(s.offline) }),
        h('td', { title: ctx.fmt.time(s.lastSeen), text: ctx.fmt.ago(s.lastSeen) }),
        h('td', { 'data-testid': 'store-policies' },
          s.policies.map((p) => h('span', { class: 'chip', text: `${policyText(p.name, p.version)} ×${p.registers}` }))),
        h('td', { text: ctx.fmt.num(s.maxOutbox) }),
        h('td', { class: s.scannersDown ? 'warn' : '', text: ctx.fmt.num(s.scannersDown) })));
      if (isOpen) {
        rows.push(h('tr', { class: 'fleet-detail', 'data-store-detail': s.store },
          h('td', { colspan: '8' }, state.open.get(s.store).table)));
      }
    }
    storesBody.replaceChildren(...rows);
    empty.hidden = state.stores.length > 0;
    more.hidden = !state.next;
  }

  // ---- one store's registers ----
  async function toggleStore(store) {
    if (state.open.has(store)) {
      state.open.delete(store);
      drawStores();
      return;
    }
    const body = h('tbody');
    const table = h('table', { class: 'fleet-registers', 'data-testid': 'registers', 'data-store': store },
      h('thead', {}, h('tr', {},
        h('th', { text: t('register') }), h('th', { text: t('state') }), h('th', { text: t('lastSeen') }),
        h('th', { text: t('policy') }), h('th', { text: t('denylist') }), h('th', { text: t('outbox') }),
        h('th', { text: t('scanner') }), h('th', { text: t('refusal') }))),
      body);
    const open = { table, body, rows: new Map() };
    state.open.set(store, open);
    await loadRegisters(store, open);
    drawStores();
  }

  async function loadRegisters(store, open) {
    // A store's registers fit in pages of 1000; read them all.
    let after = '';
    const regs = [];
    for (;;) {
      const page = await ctx.api('GET', `/v1/fleet?store=${encodeURIComponent(store)}&limit=1000` +
        (after ? `&after=${encodeURIComponent(after)}` : ''));
      regs.push(...page);
      if (page.length < 1000) break;
      after = page[page.length - 1].register;
    }
    ok();
    open.rows.clear();
    for (const e of regs) open.rows.set(e.register, registerRow(e));
    open.body.replaceChildren(...open.rows.values());
  }

  function registerRow(e) {
    return h('tr', { 'data-testid': 'register-row', 'data-register': `${e.store}/${e.register}`,
      'data-online': String(e.online), 'data-policy-version': String(e.policyVersion || 0) },
      h('td', { text: e.register }),
      h('td', {}, h('span', { class: `badge ${e.online ? 'online' : 'offline'}`, 'data-testid': 'register-state',
        text: e.online ? t('isOnline') : t('isOffline') })),
      h('td', { title: ctx.fmt.time(e.lastSeen), text: ctx.fmt.ago(e.lastSeen) }),
      h('td', { 'data-testid': 'register-policy', text: policyText(e.policyName, e.policyVersion) }),
      h('td', { text: ctx.fmt.num(e.denylistSeq) }),
      h('td', { class: e.outboxDepth > 0 ? 'warn' : '', text: ctx.fmt.num(e.outboxDepth) }),
      h('td', { class: e.scanner === 'down' ? 'warn' : '', text: linkText(e.scanner) }),
      h('td', { 'data-testid': 'register-refusal', class: e.refusal ? 'warn' : '', text: e.refusal || '' }));
  }

  // A status event carries the register's whole entry: its row is
  // replaced in place; counts are read again shortly after.
  function onStatus(e) {
    const open = state.open.get(e.store);
    if (open) {
      const row = registerRow(e);
      const old = open.rows.get(e.register);
      open.rows.set(e.register, row);
      if (old) old.replaceWith(row);
      else open.body.replaceChildren(...[...open.rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r));
    }
    refreshSoon();
  }

  const refreshSoon = debounce(() => {
    Promise.all([loadRollout(), reloadStores()]).catch(show);
  }, 400);

  await Promise.all([loadRollout(), loadStores('')]).catch(show);
  const es = ctx.sse('/v1/fleet/stream', (type, data) => {
    live.textContent = t('live');
    live.classList.add('on');
    if (type === 'status') onStatus(data);
    else if (type === 'policies') loadRollout().catch(show);
  }, ['status', 'policies']);
  if (es) {
    es.addEventListener('open', () => {
      live.textContent = t('live');
      live.classList.add('on');
      refreshSoon(); // a reconnect may have missed changes
    });
    es.addEventListener('error', () => {
      live.textContent = t('reconnecting');
      live.classList.remove('on');
    });
  }
}
