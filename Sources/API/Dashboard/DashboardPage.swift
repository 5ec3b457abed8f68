/// The dashboard's HTML: a shell of sections the script fills from the JSON API. No inline
/// script or style, so the Content-Security-Policy can forbid both.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tally dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/app.css">
<script src="/dashboard/charts.js" defer></script>
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header class="bar">
  <h1>Tally</h1>
  <span id="who" class="who"></span>
  <span id="status" class="status" data-status="signed-out">signed out</span>
  <button id="sign-out" type="button" hidden>Sign out</button>
</header>
<main>
  <section id="sign-in" class="card">
    <h2>Sign in</h2>
    <p>Paste a token (<code>tally-server token --role admin --subject you</code>). It is kept in this tab's session storage only.</p>
    <form id="sign-in-form">
      <label for="token">Token</label>
      <textarea id="token" rows="3" autocomplete="off" spellcheck="false" required></textarea>
      <button type="submit">Sign in</button>
      <p id="sign-in-error" class="error" hidden></p>
    </form>
  </section>

  <div id="banner" class="banner" hidden></div>

  <section id="glance" class="card" data-roles="user admin" hidden>
    <h2>At a glance</h2>
    <div id="tiles" class="tiles"></div>
  </section>

  <section id="mine" class="card" data-roles="user" hidden>
    <h2>My credits and unlocked profiles</h2>
    <p>Balance <strong id="balance" data-value="">–</strong>, granted <span id="granted">–</span>, spent <span id="spent">–</span></p>
    <ul id="unlocked-list" class="list"></ul>
  </section>

  <section id="charts" class="card" data-roles="admin" hidden>
    <h2>Charts <small>(event time)</small></h2>
    <label for="range">Range</label>
    <select id="range">
      <option value="minute:60">last hour (per minute)</option>
      <option value="hour:24" selected>last 24 hours</option>
      <option value="hour:168">last 7 days</option>
      <option value="hour:720">last 30 days</option>
    </select>
    <div class="charts">
      <figure><figcaption>Searches (cache hits)</figcaption><svg id="chart-searches" class="chart" viewBox="0 0 400 160" role="img" aria-label="searches"></svg></figure>
      <figure><figcaption>Analyses completed / failed</figcaption><svg id="chart-analyses" class="chart" viewBox="0 0 400 160" role="img" aria-label="analyses"></svg></figure>
      <figure><figcaption>CDN jobs queued by priority</figcaption><svg id="chart-cdn" class="chart" viewBox="0 0 400 160" role="img" aria-label="cdn jobs"></svg></figure>
      <figure><figcaption>Latency p50 / p99 (ms, hourly)</figcaption><svg id="chart-latency" class="chart" viewBox="0 0 400 160" role="img" aria-label="latency"></svg></figure>
      <figure class="wide"><figcaption>Health per component (65 / 75 / 85 % alert lines)</figcaption><svg id="chart-health" class="chart" viewBox="0 0 800 160" role="img" aria-label="health gauges"></svg></figure>
    </div>
  </section>

  <section id="projections" class="card" data-roles="user admin auditor" hidden>
    <h2>Projections</h2>
    <table><thead><tr><th>view</th><th>position</th><th>head</th><th>lag (events)</th><th>lag (s)</th><th>state</th></tr></thead>
      <tbody id="projection-rows"></tbody></table>
  </section>

  <section id="breaker" class="card" data-roles="admin" hidden>
    <h2>Store breaker</h2>
    <p>State: <strong id="breaker-state">–</strong></p>
    <button id="reset-breaker" type="button">Reset breaker…</button>
    <dialog id="confirm-reset">
      <p>Half-open the store's breaker? The next command tries the store.</p>
      <button id="confirm-reset-yes" type="button">Reset</button>
      <button id="confirm-reset-no" type="button">Cancel</button>
    </dialog>
    <p id="reset-result" class="note"></p>
  </section>

  <section id="timeline" class="card" data-roles="admin" hidden>
    <h2>Alerts and breaker transitions</h2>
    <ol id="timeline-list" class="list"></ol>
  </section>

  <section id="audit" class="card" data-roles="auditor" hidden>
    <h2>History</h2>
    <p>Head <strong id="digest-position">–</strong>, chain hash <code id="digest-hash">–</code></p>
    <form id="stream-form">
      <label for="stream">Stream</label>
      <input id="stream" placeholder="user-alice" autocomplete="off" required>
      <button type="submit">Open</button>
    </form>
    <ol id="stream-events" class="list events"></ol>
    <button id="stream-next" type="button" hidden>Next page</button>
    <pre id="event-json" class="json" hidden></pre>
  </section>
</main>
</body>
</html>
"""#
}
