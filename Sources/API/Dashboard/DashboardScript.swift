/// The dashboard's script: sign-in, the role's sections filled from the JSON API, the live
/// stream read with `fetch()` (the token stays in the Authorization header), polling when
/// the stream is not there, and the last values kept (marked) when views go stale.
enum DashboardScript {
    static let js = #"""
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "tally.token";
  const POLL_MS = 5000;
  const state = { token: null, role: null, subject: null, range: "hour:24", stale: false, unavailable: false,
                  live: false, loadedHead: -1, loading: null, streamNext: null, streamName: null, views: [] };

  function claims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    } catch (e) { return null; }
  }

  /// One request with the signed-in token. An answer that arrives after a sign-out or a
  /// sign-in as someone else is not theirs: it is dropped (not ok, status 0), marking nothing.
  async function api(path, options) {
    const opts = options || {};
    const token = state.token;
    const superseded = { ok: false, status: 0, body: null };
    if (!token) return superseded;
    const headers = { Authorization: "Bearer " + token };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method: opts.method || "GET", headers: headers, body: opts.body, cache: "no-store" });
    } catch (e) {
      if (state.token !== token) return superseded;
      state.unavailable = true;
      return { ok: false, status: 0, body: null };
    }
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (state.token !== token) return superseded;
    if (response.status === 503) state.unavailable = true;
    if (body && body.stale === true) state.stale = true;
    if (body && body.freshness && body.freshness.state === "storeUnavailable") state.stale = true;
    return { ok: response.ok, status: response.status, body: body };
  }

  function text(id, value) { const node = $(id); if (node) node.textContent = value; }
  function fmt(v) { return typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : String(v); }
  function pct(v) { return (100 * (Number(v) || 0)).toFixed(1) + " %"; }

  function setStatus() {
    const node = $("status");
    let s = state.live ? "live" : "polling";
    if (state.stale) s = "stale";
    if (state.unavailable) s = "unavailable";
    node.dataset.status = s;
    node.textContent = s;
    const banner = $("banner");
    if (state.stale || state.unavailable) {
      banner.hidden = false;
      banner.textContent = (state.unavailable ? "Unavailable: the server or its store does not answer." : "Stale: a view cannot reach the store.")
        + " Showing the last values.";
    } else {
      banner.hidden = true;
    }
  }

  function showSections() {
    for (const section of document.querySelectorAll("[data-roles]")) {
      section.hidden = !state.role || !section.dataset.roles.split(" ").includes(state.role);
    }
    $("sign-in").hidden = !!state.role;
    $("sign-out").hidden = !state.role;
    text("who", state.role ? state.subject + " (" + state.role + ")" : "");
  }

  function tile(parent, key, label, value, shown) {
    const div = document.createElement("div");
    div.className = "tile";
    const l = document.createElement("div");
    l.className = "label";
    l.textContent = label;
    const v = document.createElement("div");
    v.className = "value";
    v.dataset.stat = key;
    v.dataset.value = String(value);
    v.textContent = shown === undefined ? fmt(value) : shown;
    div.append(l, v);
    parent.appendChild(div);
  }

  function renderStats(s) {
    const tiles = $("tiles");
    tiles.replaceChildren();
    tile(tiles, "profiles.total", "Profiles", s.profiles.total);
    tile(tiles, "profiles.ai_completion_rate", "Profiles with AI analysis", s.profiles.ai_completion_rate, pct(s.profiles.ai_completion_rate));
    tile(tiles, "posts.total", "Posts", s.posts.total);
    tile(tiles, "analyses.completed", "Analyses completed", s.analyses.completed);
    tile(tiles, "analyses.failed", "Analyses failed", s.analyses.failed);
    tile(tiles, "searches.total", "Searches", s.searches.total);
    tile(tiles, "searches.cache_hit_ratio", "Cache-hit ratio", s.searches.cache_hit_ratio, pct(s.searches.cache_hit_ratio));
    tile(tiles, "unlocks.total", "Unlocks", s.unlocks.total);
    tile(tiles, "credits.granted", "Credits granted", s.credits.granted);
    tile(tiles, "credits.spent", "Credits spent", s.credits.spent);
    for (const p of Object.keys(s.cdn.by_priority || {}).sort()) {
      const c = s.cdn.by_priority[p];
      tile(tiles, "cdn." + p + ".queued", "CDN " + p + " queued / ok / failed", c.queued, c.queued + " / " + c.succeeded + " / " + c.failed);
    }
    tile(tiles, "system.status", "System", s.system.status);
  }

  function renderProjections(views, head) {
    const rows = $("projection-rows");
    rows.replaceChildren();
    for (const v of views) {
      const tr = document.createElement("tr");
      tr.dataset.view = v.name;
      const f = v.freshness;
      for (const [key, value] of [["name", v.name], ["position", f.position], ["head", f.head], ["lag_events", f.lag_events],
                                  ["lag_seconds", f.lag_seconds], ["state", f.state]]) {
        const td = document.createElement("td");
        td.dataset.key = key;
        if (key === "state") td.dataset.state = value;
        td.textContent = String(value);
        tr.appendChild(td);
      }
      rows.appendChild(tr);
    }
  }

  function onFrame(frame) {
    state.views = frame.views;
    renderProjections(frame.views, frame.head);
    text("breaker-state", frame.breaker);
    const wasStale = state.stale;
    state.stale = frame.views.some((v) => v.freshness.state === "storeUnavailable");
    state.unavailable = false;
    setStatus();
    const position = Math.max(...frame.views.map((v) => v.freshness.position));
    if (position !== state.loadedHead || wasStale !== state.stale) refresh(position);
  }

  async function loadUser() {
    const [balance, unlocked] = await Promise.all([api("/api/v1/credits/balance"), api("/api/v1/creator/unlocked?limit=20")]);
    if (balance.ok) {
      $("balance").dataset.value = String(balance.body.balance);
      text("balance", String(balance.body.balance));
      text("granted", String(balance.body.total_granted));
      text("spent", String(balance.body.total_spent));
    }
    if (unlocked.ok) {
      const list = $("unlocked-list");
      list.replaceChildren();
      for (const p of unlocked.body.profiles) {
        const li = document.createElement("li");
        li.textContent = p.username + " (" + p.credits_spent + " credits, " + p.unlocked_at + ")";
        list.appendChild(li);
      }
      if (unlocked.body.profiles.length === 0) list.textContent = "none yet";
    }
  }

  async function loadAdmin() {
    const [resolution, count] = state.range.split(":");
    const series = await api("/api/v1/system/metrics/series?resolution=" + resolution);
    if (series.ok) {
      // The view's default window, widened to the chosen count of buckets back from its end.
      let buckets = series.body.buckets;
      const width = resolution === "minute" ? 60e3 : 3600e3;
      const end = Date.parse(series.body.until);
      if (buckets.length < Number(count) && !isNaN(end)) {
        const from = new Date(end - Number(count) * width).toISOString().replace(/\.\d{3}Z$/, "Z");
        const wider = await api("/api/v1/system/metrics/series?resolution=" + resolution + "&from=" + from + "&until=" + series.body.until);
        if (wider.ok) buckets = wider.body.buckets;
      }
      const labels = buckets.map((b) => b.start);
      TallyCharts.line($("chart-searches"), [{ name: "searches", values: buckets.map((b) => b.searches) },
                                             { name: "cache hits", values: buckets.map((b) => b.cache_hits) }], labels);
      TallyCharts.line($("chart-analyses"), [{ name: "completed", values: buckets.map((b) => b.analyses_ok) },
                                             { name: "failed", values: buckets.map((b) => b.analyses_failed) }], labels);
      const priorities = buckets.length ? Object.keys(buckets[0].cdn).sort() : [];
      TallyCharts.line($("chart-cdn"), priorities.map((p) => ({ name: p, values: buckets.map((b) => b.cdn[p].queued) })), labels);
      const lat = (kind, q) => buckets.map((b) => (b.latency_ms && b.latency_ms[kind] ? b.latency_ms[kind][q] : 0));
      TallyCharts.line($("chart-latency"), [{ name: "search p50", values: lat("search", "p50") }, { name: "search p99", values: lat("search", "p99") },
                                            { name: "analysis p50", values: lat("analysis", "p50") }, { name: "analysis p99", values: lat("analysis", "p99") }], labels);
    }
    const [perf, alerts, history] = await Promise.all([api("/api/v1/system/monitoring/performance?hours=1"), api("/api/v1/system/alerts"),
                                                       api("/api/v1/system/recovery/history?limit=50")]);
    if (perf.ok) {
      const gauges = Object.values(perf.body.gauges).sort((a, b) => (a.component < b.component ? -1 : 1));
      TallyCharts.gauges($("chart-health"), gauges);
    }
    if (alerts.ok || history.ok) {
      const items = [];
      for (const a of alerts.ok ? alerts.body.alerts : []) {
        items.push({ at: a.since, text: "alert " + a.level + ": " + a.component + " " + a.resource + (a.value !== null && a.value !== undefined ? " " + fmt(a.value) : "") });
      }
      for (const t of history.ok ? history.body.transitions : []) {
        items.push({ at: t.at_us, text: "breaker " + t.component + " → " + t.state + " (" + t.reason + ")" });
      }
      items.sort((a, b) => b.at - a.at);
      const list = $("timeline-list");
      list.replaceChildren();
      for (const item of items) {
        const li = document.createElement("li");
        li.textContent = new Date(item.at / 1000).toISOString().replace(/\.\d{3}Z$/, "Z") + " " + item.text;
        list.appendChild(li);
      }
      if (items.length === 0) list.textContent = "nothing yet";
    }
    if (!state.live) {
      const health = await api("/api/v1/system/health");
      if (health.ok) {
        renderProjections(health.body.projections, health.body.store.head_position);
        text("breaker-state", health.body.store.breaker);
      }
    }
  }

  async function loadAuditor() {
    const digest = await api("/api/v1/audit/digest");
    if (digest.ok) {
      text("digest-position", String(digest.body.position));
      text("digest-hash", digest.body.chain_hash);
    }
  }

  async function openStream(name, fromVersion) {
    const page = await api("/api/v1/audit/streams/" + encodeURIComponent(name) + "?limit=20&from_version=" + fromVersion);
    const list = $("stream-events");
    if (fromVersion === 0) list.replaceChildren();
    if (!page.ok) {
      list.textContent = "cannot read " + name + (page.body && page.body.detail ? ": " + page.body.detail : "");
      return;
    }
    for (const event of page.body.events) {
      const li = document.createElement("li");
      li.textContent = "#" + event.position + " v" + event.version + " " + event.type + " " + event.recorded_at;
      li.addEventListener("click", () => { const pre = $("event-json"); pre.hidden = false; pre.textContent = JSON.stringify(event, null, 2); });
      list.appendChild(li);
    }
    if (page.body.events.length === 0 && fromVersion === 0) list.textContent = "no events in " + name;
    state.streamName = name;
    state.streamNext = page.body.next_from_version;
    $("stream-next").hidden = state.streamNext === null || state.streamNext === undefined;
  }

  async function refresh(position) {
    // One load at a time per session; a load of an earlier session does not hold up this one.
    const token = state.token, role = state.role;
    if (!role || state.loading === token) return;
    state.loading = token;
    const staleBefore = state.stale;
    state.unavailable = false;
    try {
      if (role === "user" || role === "admin") {
        const stats = await api("/api/v1/system/stats");
        if (stats.ok) {
          renderStats(stats.body);
          if (!state.live) renderProjections([{ name: "system-stats", freshness: stats.body.freshness }], stats.body.freshness.head);
          if (!state.live) state.stale = stats.body.stale;
        }
      }
      if (role === "user") await loadUser();
      if (role === "admin") await loadAdmin();
      if (role === "auditor") await loadAuditor();
      if (position !== undefined && state.token === token) state.loadedHead = position;
    } finally {
      if (state.loading === token) state.loading = null;
    }
    if (state.token === token) {
      if (state.live && !state.unavailable) state.stale = staleBefore || state.stale;
      setStatus();
      document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
      // When the signed-in page first shows its figures: the benchmark's meaningful paint.
      if (performance.getEntriesByName("tally:first-load").length === 0) performance.mark("tally:first-load");
    }
  }

  /// The live stream through fetch(), parsed as Server-Sent Events; on any failure the page
  /// polls and tries the stream again later.
  async function live() {
    const token = state.token;
    try {
      const response = await fetch("/api/v1/live", { headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" }, cache: "no-store" });
      if (!response.ok || !response.body) throw new Error("live stream: " + response.status);
      state.live = true;
      setStatus();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done || state.token !== token) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data) onFrame(JSON.parse(data));
        }
      }
    } catch (e) {
      // Polling below keeps the page current.
    }
    state.live = false;
    if (state.token === token) {
      setStatus();
      setTimeout(live, 10000);
    }
  }

  function poll() {
    if (state.role && !state.live) refresh();
    setTimeout(poll, POLL_MS);
  }

  async function signIn(token) {
    const c = claims(token);
    if (!c || !c.role) { showError("that is not a Tally token (a JWT with a role claim)"); return false; }
    state.token = token;
    const probe = await api(c.role === "auditor" ? "/api/v1/audit/digest" : c.role === "service" ? "/api/v1/live" : "/api/v1/system/stats");
    if (state.token !== token) return false; // signed out, or in again, while the probe was out
    if (probe.status === 401 || probe.status === 403 || c.role === "service") {
      state.token = null;
      showError(c.role === "service" ? "a service token has nothing to show here" : "the server refused this token (" + probe.status + ")");
      return false;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    state.role = c.role;
    state.subject = c.sub || "?";
    $("sign-in-error").hidden = true;
    showSections();
    await refresh();
    live();
    return true;
  }

  function showError(message) { const node = $("sign-in-error"); node.hidden = false; node.textContent = message; }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.role = null;
    state.live = false;
    showSections();
    $("status").dataset.status = "signed-out";
    text("status", "signed out");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
    $("sign-out").addEventListener("click", signOut);
    $("range").addEventListener("change", () => { state.range = $("range").value; refresh(); });
    $("reset-breaker").addEventListener("click", () => $("confirm-reset").showModal());
    $("confirm-reset-no").addEventListener("click", () => $("confirm-reset").close());
    $("confirm-reset-yes").addEventListener("click", async () => {
      $("confirm-reset").close();
      const result = await api("/api/v1/system/recovery/database", { method: "POST" });
      text("reset-result", result.ok ? "reset: the breaker is " + result.body.breaker : "the reset was refused (" + result.status + ")");
      if (result.ok) text("breaker-state", result.body.breaker);
    });
    $("stream-form").addEventListener("submit", (e) => { e.preventDefault(); openStream($("stream").value.trim(), 0); });
    $("stream-next").addEventListener("click", () => openStream(state.streamName, state.streamNext));
    showSections();
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) signIn(saved);
    poll();
  });
})();
"""#
}
