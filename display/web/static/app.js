// posguard store display. Plain JS, no build step, nothing from the network
// but this server. All data is put into the page with textContent, never as
// HTML, because alert text comes from registers.
"use strict";

(function () {
  const body = document.body;
  const strings = JSON.parse(document.getElementById("strings").textContent);
  const csrf = body.dataset.csrf;

  const st = {
    lang: pickLang(),
    muted: localStorage.getItem("posguard.muted") === "1",
    alerts: new Map(),   // id -> alert
    tiles: new Map(),    // register -> tile
    streamUp: false,     // SSE connected and snapshot received
    brokerUp: false,     // server says the broker link is up
    skew: 0,             // server clock - page clock, ms
    pinnedIDs: "",       // ids of the cards pinned at the last render
    audio: null,
  };

  function pickLang() {
    const saved = localStorage.getItem("posguard.lang");
    if (saved && strings[saved]) return saved;
    return strings[body.dataset.lang] ? body.dataset.lang : "ja";
  }
  function t(key) { return (strings[st.lang] && strings[st.lang][key]) || key; }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // ---- live state ---------------------------------------------------------

  function connect() {
    const es = new EventSource("/events");
    es.addEventListener("snapshot", (m) => {
      const s = JSON.parse(m.data);
      st.skew = Date.parse(s.now) - Date.now();
      st.alerts.clear();
      for (const a of s.alerts || []) st.alerts.set(a.id, a);
      st.tiles.clear();
      for (const r of s.registers || []) st.tiles.set(r.register, r);
      st.brokerUp = !!(s.broker && s.broker.connected);
      st.streamUp = true;
      render();
    });
    es.addEventListener("alert", (m) => {
      const a = JSON.parse(m.data);
      const fresh = !st.alerts.has(a.id);
      st.alerts.set(a.id, a);
      if (fresh && (a.outcome === "deny" || a.outcome === "chain")) alarm();
      render();
    });
    es.addEventListener("register", (m) => {
      const r = JSON.parse(m.data);
      st.tiles.set(r.register, r);
      render();
    });
    es.addEventListener("broker", (m) => {
      st.brokerUp = !!JSON.parse(m.data).connected;
      render();
    });
    es.onerror = () => {
      // EventSource retries by itself; until a new snapshot arrives,
      // what is on screen may be stale and must say so.
      st.streamUp = false;
      render();
      // It gives up for good on an HTTP error, which is what a restarted
      // display server answers (it has forgotten the session). Wait until
      // the server answers again, then reload for a fresh session and
      // CSRF token (or the login page).
      if (es.readyState === EventSource.CLOSED) waitAndReload();
    };
  }

  function waitAndReload() {
    setTimeout(async () => {
      try {
        const res = await fetch("/", { cache: "no-store", credentials: "same-origin" });
        if (res.ok) { location.reload(); return; }
      } catch (e) { /* still down */ }
      waitAndReload();
    }, 2000);
  }

  // ---- sound and flash ----------------------------------------------------

  // Browsers only allow audio after a user gesture; the first click or key
  // anywhere unlocks it.
  function unlockAudio() {
    if (!st.audio && window.AudioContext) st.audio = new AudioContext();
    if (st.audio && st.audio.state === "suspended") st.audio.resume();
  }
  document.addEventListener("click", unlockAudio);
  document.addEventListener("keydown", unlockAudio);

  function alarm() {
    const f = document.getElementById("flash");
    f.classList.remove("on");
    void f.offsetWidth; // restart the animation
    f.classList.add("on");
    if (st.muted || !st.audio) return;
    const now = st.audio.currentTime;
    for (let i = 0; i < 3; i++) {
      const o = st.audio.createOscillator();
      const g = st.audio.createGain();
      o.type = "square";
      o.frequency.value = 880;
      g.gain.setValueAtTime(0.0001, now + i * 0.3);
      g.gain.exponentialRampToValueAtTime(0.3, now + i * 0.3 + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.3 + 0.22);
      o.connect(g).connect(st.audio.destination);
      o.start(now + i * 0.3);
      o.stop(now + i * 0.3 + 0.25);
    }
  }

  // ---- rendering ----------------------------------------------------------

  const pending = (a) => a.outcome === "review" && (a.state === "open" || a.state === "sent");
  // A review just resolved stays pinned where the manager was looking,
  // with its outcome and who resolved it, for pinResolvedMS; then it joins
  // the list below.
  const pinResolvedMS = Number(body.dataset.pinResolved) || 120000;
  const justResolved = (a) => a.outcome === "review" && !pending(a) && !!a.resolvedAt &&
    Date.now() + st.skew - Date.parse(a.resolvedAt) < pinResolvedMS;
  const pinned = (a) => pending(a) || justResolved(a);

  function fmtTime(iso) {
    const d = new Date(iso);
    return d.toLocaleTimeString(st.lang === "ja" ? "ja-JP" : "en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function fmtDate(iso) {
    return new Date(iso).toLocaleDateString(st.lang === "ja" ? "ja-JP" : "en-GB", { year: "numeric", month: "short", day: "numeric" });
  }
  function fmtYen(n) {
    return st.lang === "ja" ? n.toLocaleString("ja-JP") + t("yen") : "¥" + n.toLocaleString("en-US");
  }
  function remaining(a) {
    if (!a.deadline) return null;
    return Math.max(0, Math.ceil((Date.parse(a.deadline) - (Date.now() + st.skew)) / 1000));
  }
  function fmtCountdown(s) {
    const m = Math.floor(s / 60), r = s % 60;
    return m + ":" + String(r).padStart(2, "0");
  }

  function render() {
    const live = st.streamUp && st.brokerUp;
    body.classList.toggle("stale", !live);
    const banner = document.getElementById("stale");
    banner.textContent = !st.streamUp ? t("connLost") : t("brokerLost");
    const liveEl = document.getElementById("live");
    liveEl.className = live ? "live-on" : "live-off";
    liveEl.textContent = live ? t("live") : t("reconnecting");

    for (const e of document.querySelectorAll("[data-t]")) {
      if (e.id !== "live" && e.id !== "stale") e.textContent = t(e.dataset.t);
    }
    document.getElementById("mute").textContent = st.muted ? t("unmute") : t("mute");
    document.documentElement.lang = st.lang;
    document.title = t("title") + " — " + body.dataset.store;

    const all = [...st.alerts.values()].sort((x, y) => Date.parse(y.at) - Date.parse(x.at));

    const top = all.filter(pinned);
    document.getElementById("pinned").replaceChildren(...top.map(alertCard));
    document.getElementById("pinned-section").hidden = top.length === 0;
    st.pinnedIDs = top.map((a) => a.id).join("\n");

    const list = document.getElementById("alerts");
    const rest = all.filter((a) => !pinned(a));
    list.replaceChildren(...(rest.length ? rest.map(alertCard) : [el("p", "empty", t("noAlerts"))]));

    const tiles = document.getElementById("tiles");
    const ts = [...st.tiles.values()].sort((x, y) => x.register.localeCompare(y.register));
    tiles.replaceChildren(...(ts.length ? ts.map(tileCard) : [el("p", "empty", t("noRegisters"))]));
  }

  function tileCard(r) {
    const d = el("div", "tile " + (r.online ? "online" : "offline"));
    d.dataset.register = r.register;
    const head = el("div", "name", t("registerPrefix") + r.register + " ");
    head.append(el("span", r.online ? "state-online" : "state-offline", r.online ? t("online") : t("offline")));
    d.append(head);
    const dl = el("dl");
    const row = (k, v) => { dl.append(el("dt", "", t(k)), el("dd", "", v)); };
    // The version alone is an opaque number (often a Unix time); the issue
    // date says how current the policy is.
    let policy = r.policyName ? r.policyName + " v" + r.policyVersion : "—";
    if (r.policyName && r.policyIssuedAt) policy += " (" + t("issued") + " " + fmtDate(r.policyIssuedAt) + ")";
    row("policy", policy);
    row("scanner", r.scanner ? t("link_" + r.scanner) : "—");
    row("lastDecision", r.lastDecision ? t(r.lastDecision) : "—");
    d.append(dl);
    if (r.refusal) d.append(el("p", "error", r.refusal));
    if (r.peersUnreachable) d.append(el("p", "error peers", t("noPeers")));
    return d;
  }

  function alertCard(a) {
    const d = el("article", "alert " + a.outcome + (a.state ? " state-" + a.state : ""));
    d.dataset.id = a.id;
    if (a.reviewId) d.dataset.review = a.reviewId;
    const head = el("div", "head");
    head.append(el("span", "outcome", t(a.outcome)), el("span", "time", fmtTime(a.at)), el("span", "reg", t("registerPrefix") + a.register));
    if (pending(a)) {
      const left = remaining(a);
      const c = el("span", "countdown", left === null ? "" : t("remaining") + " " + fmtCountdown(left));
      c.dataset.deadline = a.deadline || "";
      head.append(c);
    }
    d.append(head);

    // Parentheses in the page's language: full width in Japanese.
    const paren = (s) => st.lang === "ja" ? "（" + s + "）" : " (" + s + ")";
    if (a.score || a.shadowScore) {
      let s = t("score") + " " + (a.score || 0);
      if (a.shadowScore) s += paren(t("shadowScore") + " " + a.shadowScore);
      d.append(el("div", "score", s));
    }
    const rules = el("ul", "rules");
    for (const r of a.rules || []) {
      // The register's reasons rendered in both languages by the display
      // server; the English sentence for a register that predates them.
      let text = (r.text && r.text[st.lang]) || r.reason;
      if (r.score) text += paren("+" + r.score);
      if (r.mode === "shadow") text += paren(t("shadow"));
      rules.append(el("li", r.mode === "shadow" ? "shadow" : "", text));
    }
    d.append(rules);

    const cart = el("div", "cart");
    const parts = (a.cart || []).map((l) => {
      const name = (l.names && l.names[st.lang]) || l.category;
      const qty = st.lang === "ja" ? " " + l.quantity + t("items") : " ×" + l.quantity;
      return name + qty + paren(fmtYen(l.amount));
    });
    cart.append(el("b", "", fmtYen(a.amount || 0)), document.createTextNode("  " + parts.join(" · ")));
    d.append(cart);
    const acct = el("div", "acct", t("account") + ": ");
    acct.append(el("b", "", a.account || "—"));
    d.append(acct);

    if (a.outcome === "review") d.append(reviewFooter(a));
    return d;
  }

  const refusals = ["badPIN", "rateLimited", "noPINs", "unknownReview", "alreadyEnded", "pinGuessing", "refused"];

  function reviewFooter(a) {
    const f = el("div", "actions");
    if (a.state === "open") {
      // Why the review is open again: no answer in time, or the
      // register's refusal (wrong PIN, too many attempts ...).
      if (a.detail === "noAnswer") f.append(el("span", "result noanswer", t("noAnswer")));
      else if (refusals.includes(a.detail)) f.append(el("span", "result refused", t(a.detail)));
      const ok = el("button", "approve", t("approve"));
      ok.type = "button";
      ok.addEventListener("click", () => askPin(a, "approve"));
      const no = el("button", "reject", t("reject"));
      no.type = "button";
      no.addEventListener("click", () => askPin(a, "reject"));
      f.append(ok, no);
    } else if (a.state === "sent") {
      f.append(el("span", "result sent", t("sent")));
    } else {
      const word = { approved: "approved", rejected: "rejected", timeout: "timedOut" }[a.state] || a.state;
      let text = t(word);
      if (a.resolvedBy) text += " — " + t("by") + " " + a.resolvedBy;
      if (a.resolvedAt) text += " " + fmtTime(a.resolvedAt);
      f.append(el("span", "result " + a.state, text));
    }
    return f;
  }

  // Countdowns tick without a server round trip; the server decides when a
  // review is really over. A resolved card whose pinned time is up moves
  // down.
  setInterval(() => {
    const top = [...st.alerts.values()].sort((x, y) => Date.parse(y.at) - Date.parse(x.at)).filter(pinned);
    if (top.map((a) => a.id).join("\n") !== st.pinnedIDs) render();
    for (const c of document.querySelectorAll(".countdown[data-deadline]")) {
      const left = Math.max(0, Math.ceil((Date.parse(c.dataset.deadline) - (Date.now() + st.skew)) / 1000));
      c.textContent = t("remaining") + " " + fmtCountdown(left);
    }
  }, 1000);

  // ---- resolving ----------------------------------------------------------

  const dialog = document.getElementById("pin-dialog");
  const pinInput = document.getElementById("pin-input");
  const pinError = document.getElementById("pin-error");
  let asking = null;

  function askPin(a, action) {
    asking = { register: a.register, reviewId: a.reviewId, action: action };
    document.getElementById("pin-title").textContent = t(action) + " — " + t("registerPrefix") + a.register;
    pinInput.value = "";
    pinError.textContent = "";
    dialog.showModal();
    pinInput.focus();
  }
  document.getElementById("pin-cancel").addEventListener("click", () => { asking = null; dialog.close(); });
  document.getElementById("pin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!asking) return;
    const req = Object.assign({ pin: pinInput.value }, asking);
    pinInput.value = "";
    try {
      const res = await fetch("/api/resolve", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(req),
        credentials: "same-origin",
      });
      if (res.status === 202) {
        asking = null;
        dialog.close();
        return;
      }
      const out = await res.json().catch(() => ({}));
      pinError.textContent = res.status === 429 ? t("tooMany") : t("resolveFailed") + (out.error ? ": " + out.error : "");
    } catch (e) {
      pinError.textContent = t("resolveFailed");
    }
  });

  // ---- controls -----------------------------------------------------------

  document.getElementById("mute").addEventListener("click", () => {
    st.muted = !st.muted;
    localStorage.setItem("posguard.muted", st.muted ? "1" : "0");
    render();
  });
  document.getElementById("lang").addEventListener("click", () => {
    st.lang = st.lang === "ja" ? "en" : "ja";
    localStorage.setItem("posguard.lang", st.lang);
    render();
  });

  render();
  connect();
})();
