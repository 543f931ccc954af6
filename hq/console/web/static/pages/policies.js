// The console's Policies page: the policy versions pushed to the
// registers (GET /v1/policies), who pushed each and how far it rolled out
// (GET /v1/fleet), the unified diff between two versions
// (GET /v1/policies/diff), each version's backtest report
// (GET /v1/policies/{version}/report) and, for admins, the upload of a
// policy bundle signed offline (POST /v1/policies).

export const strings = {
  ja: {
    title: 'ポリシー',
    intro: 'レジに配信したポリシーの版、配信した人、版どうしの差分、過去の取引で試したバックテストの結果です。',
    noKeys: 'HQ にポリシー検証鍵がありません（--policy-trusted-key）。署名済みポリシーを受け付けず、CLI の配信も記録しません。',
    keys: '検証鍵: {keys}',
    uploadTitle: '署名済みポリシーを配信',
    uploadHelp: 'posguard policy sign で署名したバンドル（.cose）を選び、配信先を指定してください。HQ は署名を検証し、記録してからレジに配信します。',
    file: 'バンドル',
    scope: '配信先',
    scopeHelp: 'all（全店舗）または店舗 ID',
    upload: '配信する',
    uploading: '配信中…',
    uploaded: 'v{version}（{name}）を {scope} に配信しました。',
    uploadedAgain: 'v{version} は記録済みです。{scope} に再配信しました。',
    warning: '注意: {warning}',
    noFile: 'バンドルのファイルを選んでください。',
    versions: '版の一覧',
    none: 'まだ記録された版はありません。',
    version: '版',
    name: '名前',
    who: '配信した人',
    when: '日時',
    scopeCol: '配信先',
    source: '経路',
    viaHQ: 'HQ',
    viaBroker: 'CLI',
    rollout: '適用',
    rolloutOf: '{n} / {total} 台',
    from: '比較元',
    to: '比較先',
    report: 'レポート',
    openReport: '開く',
    newTab: '別タブ',
    more: 'さらに表示',
    diff: '差分を表示',
    diffTitle: 'v{from} → v{to} の差分',
    same: '2 つの版の内容は同じです。',
    pickTwo: '比較する 2 つの版を選んでください。',
    reportTitle: 'v{version} のバックテスト',
    fleetError: '適用状況を取得できません: {error}',
  },
  en: {
    title: 'Policies',
    intro: 'The policy versions pushed to the registers, who pushed them, the diff between two versions, and each version\'s backtest over recorded sales.',
    noKeys: 'HQ has no policy verify key (--policy-trusted-key): it accepts no signed policy and records no CLI push.',
    keys: 'Verify keys: {keys}',
    uploadTitle: 'Push a signed policy',
    uploadHelp: 'Choose a bundle signed with posguard policy sign (.cose) and its scope. HQ verifies the signature, records it, then publishes it to the registers.',
    file: 'Bundle',
    scope: 'Scope',
    scopeHelp: 'all (every store) or a store id',
    upload: 'Push',
    uploading: 'Pushing…',
    uploaded: 'Pushed v{version} ({name}) to {scope}.',
    uploadedAgain: 'v{version} was already recorded; published again to {scope}.',
    warning: 'Warning: {warning}',
    noFile: 'Choose a bundle file.',
    versions: 'Versions',
    none: 'No version recorded yet.',
    version: 'Version',
    name: 'Name',
    who: 'Pushed by',
    when: 'When',
    scopeCol: 'Scope',
    source: 'Via',
    viaHQ: 'HQ',
    viaBroker: 'CLI',
    rollout: 'Applied',
    rolloutOf: '{n} / {total} registers',
    from: 'From',
    to: 'To',
    report: 'Report',
    openReport: 'Open',
    newTab: 'New tab',
    more: 'More',
    diff: 'Show diff',
    diffTitle: 'Diff v{from} → v{to}',
    same: 'The two versions are the same.',
    pickTwo: 'Pick two versions to compare.',
    reportTitle: 'Backtest of v{version}',
    fleetError: 'Rollout unavailable: {error}',
  },
};

// el makes an element with attributes (data-* and on* included) and
// children (strings become text).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'className') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c != null) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// base64 encodes a file's bytes for the JSON body.
async function base64(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

// diffView colours a unified diff line by line.
function diffView(text) {
  const pre = el('pre', { className: 'policy-diff', dataset: { testid: 'policy-diff' } });
  for (const line of text.split('\n')) {
    let cls = 'ctx';
    if (line.startsWith('+++') || line.startsWith('---')) cls = 'file';
    else if (line.startsWith('@@')) cls = 'hunk';
    else if (line.startsWith('+')) cls = 'add';
    else if (line.startsWith('-')) cls = 'del';
    pre.append(el('span', { className: `diff-${cls}` }, line + '\n'));
  }
  return pre;
}

export async function render(root, ctx) {
  const t = ctx.t.bind(ctx);
  const status = el('p', { className: 'policy-status', role: 'status', dataset: { testid: 'policy-status' } });
  const error = el('p', { className: 'error', role: 'alert', hidden: true, dataset: { testid: 'policy-error' } });
  const showError = (e) => { error.textContent = e.message || String(e); error.hidden = false; };
  const clearError = () => { error.hidden = true; error.textContent = ''; };

  const keysNote = el('p', { className: 'policy-keys', dataset: { testid: 'policy-keys' } });
  const tbody = el('tbody');
  const table = el('table', { className: 'policy-table', dataset: { testid: 'policy-table' } },
    el('thead', {}, el('tr', {},
      el('th', {}, t('from')), el('th', {}, t('to')),
      el('th', { className: 'num' }, t('version')), el('th', {}, t('name')), el('th', {}, t('who')),
      el('th', {}, t('when')), el('th', {}, t('scopeCol')), el('th', {}, t('source')),
      el('th', { className: 'num' }, t('rollout')), el('th', {}, t('report')))),
    tbody);
  const empty = el('p', { className: 'loading', hidden: true, dataset: { testid: 'policy-empty' } }, t('none'));
  const more = el('button', { type: 'button', hidden: true, dataset: { testid: 'policy-more' } }, t('more'));
  const diffButton = el('button', { type: 'button', dataset: { testid: 'policy-diff-button' } }, t('diff'));
  const diffBox = el('section', { className: 'policy-diff-box', dataset: { testid: 'policy-diff-box' } });
  const reportBox = el('section', { className: 'policy-report-box', dataset: { testid: 'policy-report-box' } });

  root.append(el('h1', {}, t('title')), el('p', { className: 'intro' }, t('intro')), keysNote, error);

  // The upload, for admins only; the server refuses others anyway.
  if (ctx.can('admin')) {
    const file = el('input', { type: 'file', accept: '.cose,application/cose,application/octet-stream', dataset: { testid: 'policy-file' } });
    const scope = el('input', { type: 'text', value: 'all', size: 12, title: t('scopeHelp'), dataset: { testid: 'policy-scope' } });
    const button = el('button', { type: 'submit', dataset: { testid: 'policy-upload' } }, t('upload'));
    const form = el('form', { className: 'policy-upload', dataset: { testid: 'policy-upload-form' } },
      el('h2', {}, t('uploadTitle')), el('p', { className: 'help' }, t('uploadHelp')),
      el('label', {}, t('file'), ' ', file), ' ',
      el('label', {}, t('scope'), ' ', scope), ' ', button);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearError();
      const f = file.files[0];
      if (!f) { showError(new Error(t('noFile'))); return; }
      button.disabled = true;
      status.textContent = t('uploading');
      try {
        const ans = await ctx.api('POST', '/v1/policies', { bundle: await base64(f), scope: scope.value.trim() || 'all' });
        let msg = t(ans.new ? 'uploaded' : 'uploadedAgain', { version: ans.version, name: ans.name, scope: scope.value.trim() || 'all' });
        if (ans.warning) msg += ' ' + t('warning', { warning: ans.warning });
        status.textContent = msg;
        file.value = '';
        await reload();
      } catch (e) {
        status.textContent = '';
        showError(e);
      } finally {
        button.disabled = false;
      }
    });
    root.append(form);
  }
  root.append(status, el('h2', {}, t('versions')), table, empty, more,
    el('p', { className: 'policy-actions' }, diffButton), diffBox, reportBox);

  // Rollout: how many registers report each version in force.
  let rollout = null;
  let fleetTotal = 0;
  async function loadFleet() {
    try {
      const fleet = await ctx.api('GET', '/v1/fleet');
      rollout = new Map();
      fleetTotal = fleet.length;
      for (const r of fleet) {
        if (r.policyVersion) rollout.set(r.policyVersion, (rollout.get(r.policyVersion) || 0) + 1);
      }
    } catch (e) {
      rollout = null;
      keysNote.after(el('p', { className: 'error', dataset: { testid: 'policy-fleet-error' } }, t('fleetError', { error: e.message })));
    }
  }

  function openReport(v) {
    const url = `/v1/policies/${v}/report`;
    reportBox.replaceChildren(
      el('h2', {}, t('reportTitle', { version: v }), ' ',
        el('a', { href: url, target: '_blank', rel: 'noopener', dataset: { testid: 'policy-report-link' } }, t('newTab'))),
      el('iframe', { src: url, title: t('reportTitle', { version: v }), className: 'policy-report', dataset: { testid: 'policy-report-frame' } }));
    reportBox.scrollIntoView({ block: 'start' });
  }

  function row(p, i) {
    const when = el('span', { title: ctx.fmt.time(p.pushedAt) }, ctx.fmt.time(p.pushedAt));
    const applied = rollout ? t('rolloutOf', { n: ctx.fmt.num(rollout.get(p.version) || 0), total: ctx.fmt.num(fleetTotal) }) : '—';
    return el('tr', { dataset: { testid: 'policy-row', version: p.version } },
      el('td', {}, el('input', { type: 'radio', name: 'diff-from', value: p.version, checked: i === 1, 'aria-label': `${t('from')} v${p.version}`, dataset: { testid: `diff-from-${p.version}` } })),
      el('td', {}, el('input', { type: 'radio', name: 'diff-to', value: p.version, checked: i === 0, 'aria-label': `${t('to')} v${p.version}`, dataset: { testid: `diff-to-${p.version}` } })),
      el('td', { className: 'num' }, `v${p.version}`),
      el('td', {}, p.name),
      el('td', { dataset: { testid: 'policy-who' } }, p.pushedBy),
      el('td', {}, when, el('br'), el('small', { className: 'muted' }, ctx.fmt.ago(p.pushedAt))),
      el('td', {}, p.scope),
      el('td', { title: p.kid }, p.source === 'hq' ? t('viaHQ') : t('viaBroker')),
      el('td', { className: 'num', dataset: { testid: 'policy-rollout' } }, applied),
      el('td', {}, el('button', { type: 'button', onclick: () => openReport(p.version), dataset: { testid: `policy-report-${p.version}` } }, t('openReport'))));
  }

  let shown = 0;
  let next = 0;
  async function loadPage(before) {
    const list = await ctx.api('GET', '/v1/policies' + (before ? `?before=${before}` : ''));
    if (!list.verifyKeys.length) {
      keysNote.textContent = t('noKeys');
      keysNote.className = 'policy-keys error';
    } else {
      keysNote.textContent = t('keys', { keys: list.verifyKeys.join(', ') });
      keysNote.className = 'policy-keys muted';
    }
    for (const p of list.versions) tbody.append(row(p, shown++));
    next = list.next;
    more.hidden = !next;
    empty.hidden = shown > 0;
    table.hidden = shown === 0;
  }

  async function reload() {
    tbody.replaceChildren();
    shown = 0;
    await loadFleet();
    await loadPage(0);
  }

  more.addEventListener('click', async () => {
    clearError();
    try { await loadPage(next); } catch (e) { showError(e); }
  });

  diffButton.addEventListener('click', async () => {
    clearError();
    const from = root.querySelector('input[name="diff-from"]:checked');
    const to = root.querySelector('input[name="diff-to"]:checked');
    if (!from || !to || from.value === to.value) {
      diffBox.replaceChildren(el('p', { className: 'muted' }, t('pickTwo')));
      return;
    }
    try {
      const d = await ctx.api('GET', `/v1/policies/diff?from=${encodeURIComponent(from.value)}&to=${encodeURIComponent(to.value)}`);
      diffBox.replaceChildren(el('h2', {}, t('diffTitle', { from: d.from, to: d.to })),
        d.diff ? diffView(d.diff) : el('p', { dataset: { testid: 'policy-diff-same' } }, t('same')));
    } catch (e) {
      showError(e);
    }
  });

  await reload();
}
