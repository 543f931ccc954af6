// The HQ console's shell script: it builds the ctx every page module gets
// (the page contract in docs/DESIGN.md, "HQ console") and loads the current page's
// module, /console/static/pages/PAGE.js, into <main id="page">.

// The shell's page carries its configuration as a JSON data block; on
// another page (the login) the module only offers makeCtx.
const cfgBlock = document.getElementById('console-config');
const cfg = cfgBlock ? JSON.parse(cfgBlock.textContent) : { lang: document.documentElement.lang, shell: {} };

const locales = { ja: 'ja-JP', en: 'en-GB' };
const rank = { viewer: 1, read: 1, analyst: 2, admin: 3 };

// fill replaces {name} placeholders with params' values.
function fill(s, params) {
  if (!params) return s;
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
}

// makeFmt returns the number, money and time formatters of a language.
function makeFmt(lang) {
  const locale = locales[lang] || locales.ja;
  const nf = new Intl.NumberFormat(locale);
  const df = new Intl.DateTimeFormat(locale, {
    year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
  const units = [['year', 365 * 86400], ['month', 30 * 86400], ['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
  return {
    num: (n) => (n == null || Number.isNaN(Number(n)) ? '' : nf.format(n)),
    // yen: 12,000円 in Japanese, ¥12,000 in English.
    yen: (n) => {
      if (n == null || Number.isNaN(Number(n))) return '';
      return lang === 'en' ? (n < 0 ? '-¥' + nf.format(-n) : '¥' + nf.format(n)) : nf.format(n) + '円';
    },
    time: (iso) => {
      if (!iso) return '';
      const d = new Date(iso);
      return Number.isNaN(d.getTime()) ? String(iso) : df.format(d);
    },
    ago: (iso) => {
      if (!iso) return '';
      const d = new Date(iso);
      if (Number.isNaN(d.getTime())) return String(iso);
      const secs = Math.round((d.getTime() - Date.now()) / 1000);
      for (const [unit, size] of units) {
        if (Math.abs(secs) >= size || unit === 'second') return rtf.format(Math.trunc(secs / size), unit);
      }
      return '';
    },
  };
}

// apiError is what ctx.api rejects with: the server's message, its status.
function apiError(status, message, body) {
  const e = new Error(message || `HTTP ${status}`);
  e.status = status;
  e.body = body;
  return e;
}

const scripts = new Map();

// makeCtx builds the ctx a page's render gets; strings are the page
// module's own ({ja: {...}, en: {...}}).
export function makeCtx(strings) {
  const lang = cfg.lang === 'en' ? 'en' : 'ja';
  const ctx = {
    lang,
    page: cfg.page,
    user: cfg.user,
    role: cfg.role,
    csrf: cfg.csrf,
    fmt: makeFmt(lang),
    // t looks a key up in the page's strings (the other language, then
    // the key itself, when missing) and fills {name} placeholders.
    t(key, params) {
      const s = (strings && strings[lang] && strings[lang][key]) ?? (strings && strings.ja && strings.ja[key]) ?? key;
      return fill(s, params);
    },
    can(role) {
      return (rank[cfg.role] || 0) >= (rank[role] || 99);
    },
    // api calls HQ's JSON API as the logged-in user: the session cookie,
    // the CSRF header, JSON in and out. It rejects with an Error carrying
    // .status and the server's message.
    async api(method, path, body) {
      method = (method || 'GET').toUpperCase();
      const headers = { Accept: 'application/json' };
      if (cfg.csrf) headers['X-CSRF-Token'] = cfg.csrf;
      const init = { method, headers, credentials: 'same-origin' };
      if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
      } else if (method !== 'GET' && method !== 'HEAD') {
        headers['Content-Type'] = 'application/json';
      }
      let res;
      try {
        res = await fetch(path, init);
      } catch (e) {
        throw apiError(0, `${method} ${path}: ${e.message}`);
      }
      const text = await res.text();
      let data = null;
      if (text) {
        try { data = JSON.parse(text); } catch { data = text; }
      }
      if (!res.ok) {
        const msg = (data && typeof data === 'object' && data.error) || (typeof data === 'string' && data.trim()) || `${res.status} ${res.statusText}`;
        throw apiError(res.status, msg, data);
      }
      return data;
    },
    // sse opens an EventSource on path and calls onEvent(type, data) with
    // each event's data parsed as JSON (the raw text when it is not).
    // Unnamed events come as 'message'; named ones need their names in
    // types, as EventSource only delivers those it is asked for. The
    // source is closed when the page is left; close() ends it sooner.
    sse(path, onEvent, types = []) {
      const es = new EventSource(path);
      const deliver = (ev) => {
        let data = ev.data;
        try { data = JSON.parse(ev.data); } catch { /* not JSON: the text */ }
        onEvent(ev.type, data, ev);
      };
      es.addEventListener('message', deliver);
      for (const t of types) es.addEventListener(t, deliver);
      addEventListener('pagehide', () => es.close(), { once: true });
      return es;
    },
    // loadScript adds a classic script once per url; the promise settles
    // when it has run.
    loadScript(url) {
      if (!scripts.has(url)) {
        scripts.set(url, new Promise((resolve, reject) => {
          const s = document.createElement('script');
          s.src = url;
          s.onload = () => resolve();
          s.onerror = () => { scripts.delete(url); reject(new Error(`could not load ${url}`)); };
          document.head.appendChild(s);
        }));
      }
      return scripts.get(url);
    },
    // chartJS loads the Chart.js shipped in the binary, once.
    async chartJS() {
      await ctx.loadScript('/console/static/vendor/chart.umd.min.js');
      return window.Chart;
    },
  };
  return ctx;
}

// message replaces the page's content with one line of text.
function message(root, kind, text) {
  const p = document.createElement('p');
  p.className = `console-${kind}`;
  p.setAttribute('role', 'alert');
  p.dataset.testid = `page-${kind}`;
  p.textContent = text;
  root.replaceChildren(p);
}

async function boot() {
  const root = document.getElementById('page');
  const url = `/console/static/pages/${cfg.page}.js`;
  let mod;
  try {
    mod = await import(url);
  } catch (e) {
    message(root, 'missing', fill(cfg.shell.missing, { page: cfg.page, url }));
    console.warn(`console: page module ${url}:`, e);
    return;
  }
  const ctx = makeCtx(mod.strings);
  root.replaceChildren();
  try {
    await mod.render(root, ctx);
  } catch (e) {
    message(root, 'error', fill(cfg.shell.failed, { error: e.message || String(e) }));
    console.error(e);
  }
  document.body.dataset.rendered = cfg.page;
}

if (cfgBlock) boot();
