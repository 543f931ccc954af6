// The Charts page: decisions, reviews and denies per hour per store, yen
// refused, the rules fired most. The numbers come from HQ's hourly rollup
// (GET /v1/stats/hourly, /v1/stats/rules), kept at ingest, so no chart
// scans the events; Chart.js is served by HQ itself (ctx.chartJS()).
// Each canvas keeps its chart: Chart.getChart(canvas).data is what it drew.

import { el } from './dom.js';

export const strings = {
  ja: {
    title: 'チャート',
    range: '期間', store: '店舗', allStores: '全店舗', apply: '表示',
    h24: '過去24時間', d7: '過去7日間', d30: '過去30日間',
    perHour: '1時間ごとの判定・確認・拒否', deniesByStore: '店舗別の拒否件数(1時間ごと)',
    yen: '拒否した金額(1時間ごと)', rules: '発動回数の多いルール',
    decisions: '判定', reviews: '確認', denies: '拒否', yenRefused: '拒否額(円)',
    fired: '発動', shadow: 'シャドー', others: 'その他',
    totals: '判定 {decisions} 件 · 確認 {reviews} 件 · 拒否 {denies} 件 · 拒否額 {yen}',
    failed: '読み込めませんでした: {msg}',
  },
  en: {
    title: 'Charts',
    range: 'Range', store: 'Store', allStores: 'All stores', apply: 'Show',
    h24: 'Last 24 hours', d7: 'Last 7 days', d30: 'Last 30 days',
    perHour: 'Decisions, reviews and denies per hour', deniesByStore: 'Denies per hour by store',
    yen: 'Yen refused per hour', rules: 'Rules fired most',
    decisions: 'Decisions', reviews: 'Reviews', denies: 'Denies', yenRefused: 'Refused (yen)',
    fired: 'Fired', shadow: 'Shadow', others: 'Others',
    totals: '{decisions} decisions · {reviews} reviews · {denies} denies · {yen} refused',
    failed: 'Could not load: {msg}',
  },
};

const hour = 3600 * 1000;
const ranges = { h24: 24, d7: 24 * 7, d30: 24 * 30 };
// Stores beyond this many (by denies) are drawn as one "others" series.
const topStores = 8;
const palette = ['#e5262e', '#ffb000', '#2f7ed8', '#1f7a3a', '#8e44ad', '#16a0a0', '#d35400', '#7f8c8d', '#bdc3c7'];

function panel(title, testid) {
  const canvas = el('canvas', { 'data-testid': testid, role: 'img', 'aria-label': title });
  return { box: el('section', { class: 'ch-panel' }, el('h2', { text: title }), el('div', { class: 'ch-canvas' }, canvas)), canvas };
}

export async function render(root, ctx) {
  const t = ctx.t;
  const params = new URLSearchParams(location.search);
  const range = el('select', { 'data-testid': 'charts-range' },
    ...Object.keys(ranges).map((k) => el('option', { value: k, text: t(k) })));
  range.value = ranges[params.get('range')] ? params.get('range') : 'h24';
  const store = el('input', { type: 'text', 'data-testid': 'charts-store', value: params.get('store') || '', placeholder: t('allStores'), size: 10 });
  const form = el('form', { class: 'ch-controls' },
    el('label', {}, el('span', { text: t('range') }), range),
    el('label', {}, el('span', { text: t('store') }), store),
    el('button', { type: 'submit', 'data-testid': 'charts-apply', text: t('apply') }));
  const totals = el('p', { class: 'ch-totals', 'data-testid': 'charts-totals' });
  const error = el('p', { class: 'ch-error', 'data-testid': 'charts-error', hidden: true });
  const perHour = panel(t('perHour'), 'chart-hourly');
  const byStore = panel(t('deniesByStore'), 'chart-denies-by-store');
  const yen = panel(t('yen'), 'chart-yen');
  const rules = panel(t('rules'), 'chart-rules');
  root.replaceChildren(el('h1', { text: t('title') }), form, error, totals,
    el('div', { class: 'ch-grid' }, perHour.box, byStore.box, yen.box, rules.box));

  const Chart = await ctx.chartJS();
  const charts = [];
  const draw = (canvas, config) => {
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
    charts.push(new Chart(canvas, config));
  };

  const load = async () => {
    error.hidden = true;
    const hours = ranges[range.value];
    const until = new Date(Math.floor(Date.now() / hour) * hour + hour);
    const since = new Date(until.getTime() - hours * hour);
    // top: HQ keeps the topStores stores by denies and sums the others
    // under "*", so a fleet of a thousand stores is still a few rows an
    // hour, with the fleet's totals.
    const q = new URLSearchParams({ since: since.toISOString(), until: until.toISOString(), top: String(topStores) });
    if (store.value.trim()) q.set('store', store.value.trim());
    const rq = new URLSearchParams({ since: since.toISOString(), until: until.toISOString(), limit: '10' });
    const [rows, top] = await Promise.all([
      ctx.api('GET', '/v1/stats/hourly?' + q.toString()),
      ctx.api('GET', '/v1/stats/rules?' + rq.toString()),
    ]);
    const url = new URL(location.href);
    url.search = new URLSearchParams({ range: range.value, ...(store.value.trim() ? { store: store.value.trim() } : {}) }).toString();
    history.replaceState(null, '', url);

    // Every hour of the range, empty ones too, in the page's time zone.
    const slots = [];
    for (let h = since.getTime(); h < until.getTime(); h += hour) slots.push(h);
    const index = new Map(slots.map((h, i) => [h, i]));
    const fmtHour = (h) => {
      const d = new Date(h);
      const loc = ctx.lang === 'ja' ? 'ja-JP' : 'en-GB';
      return hours > 24 ? d.toLocaleString(loc, { month: 'numeric', day: 'numeric', hour: '2-digit' }) : d.toLocaleTimeString(loc, { hour: '2-digit', minute: '2-digit' });
    };
    const labels = slots.map(fmtHour);
    const zeros = () => slots.map(() => 0);
    const sum = { decisions: zeros(), reviews: zeros(), denies: zeros(), yen: zeros() };
    const storeDenies = new Map();
    let total = { decisions: 0, reviews: 0, denies: 0, yen: 0 };
    for (const r of rows) {
      const i = index.get(new Date(r.hour).getTime());
      if (i === undefined) continue;
      sum.decisions[i] += r.decisions;
      sum.reviews[i] += r.reviews;
      sum.denies[i] += r.denies;
      sum.yen[i] += r.yenRefused;
      total = { decisions: total.decisions + r.decisions, reviews: total.reviews + r.reviews, denies: total.denies + r.denies, yen: total.yen + r.yenRefused };
      if (!storeDenies.has(r.store)) storeDenies.set(r.store, { total: 0, series: zeros() });
      const s = storeDenies.get(r.store);
      s.total += r.denies;
      s.series[i] += r.denies;
    }
    totals.textContent = t('totals', { decisions: ctx.fmt.num(total.decisions), reviews: ctx.fmt.num(total.reviews), denies: ctx.fmt.num(total.denies), yen: ctx.fmt.yen(total.yen) });

    // Stores by denies, the others (store "*") last.
    const ranked = [...storeDenies.entries()].sort((a, b) => (a[0] === '*') - (b[0] === '*') || b[1].total - a[1].total || a[0].localeCompare(b[0]));
    const storeSets = ranked.map(([name, s], i) => ({
      label: name === '*' ? t('others') : name, data: s.series, stack: 'denies',
      backgroundColor: name === '*' ? palette[palette.length - 1] : palette[i % (palette.length - 1)],
    }));

    for (const c of charts.splice(0)) c.destroy();
    draw(perHour.canvas, {
      type: 'line',
      data: { labels, datasets: [
        { label: t('decisions'), data: sum.decisions, borderColor: '#2f7ed8', backgroundColor: '#2f7ed8', tension: 0.2 },
        { label: t('reviews'), data: sum.reviews, borderColor: '#ffb000', backgroundColor: '#ffb000', tension: 0.2 },
        { label: t('denies'), data: sum.denies, borderColor: '#e5262e', backgroundColor: '#e5262e', tension: 0.2 },
      ] },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    draw(byStore.canvas, {
      type: 'bar',
      data: { labels, datasets: storeSets },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
    });
    draw(yen.canvas, {
      type: 'bar',
      data: { labels, datasets: [{ label: t('yenRefused'), data: sum.yen, backgroundColor: '#e5262e' }] },
      options: { scales: { y: { beginAtZero: true, ticks: { callback: (v) => ctx.fmt.yen(v) } } },
        plugins: { tooltip: { callbacks: { label: (c) => ctx.fmt.yen(c.parsed.y) } } } },
    });
    draw(rules.canvas, {
      type: 'bar',
      data: { labels: top.map((r) => r.rule), datasets: [
        { label: t('fired'), data: top.map((r) => r.fired), backgroundColor: '#e5262e', stack: 'rules' },
        { label: t('shadow'), data: top.map((r) => r.shadow), backgroundColor: '#7f8c8d', stack: 'rules' },
      ] },
      options: { indexAxis: 'y', scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } } },
    });
    root.dataset.loaded = String(Date.now());
  };

  const run = () => load().catch((err) => {
    error.textContent = t('failed', { msg: err.message || String(err) });
    error.hidden = false;
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    run();
  });
  await run();
}
