#!/usr/bin/env python3
"""Drives headless Chromium through the DevTools protocol against a live tally-server and
prints what the dashboard showed, as one JSON object on stdout. DashboardBrowserTests runs
it (with the virtual environment's python, which has websocket-client) and checks the result;
this script only observes and reports, it decides nothing.

  dashboard-browser.py --chromium PATH --base URL --tokens FILE --out DIR --phase main|outage
  dashboard-browser.py --chromium PATH --base URL --tokens FILE --out DIR --phase paint [--runs N]

--phase paint is the benchmark (never a test): the admin signed in (token already in
sessionStorage), the page loaded N times; per load the navigation's timings, the first
contentful paint and `tally:first-load` (the page's mark once its first figures are shown).
"""
import argparse, base64, json, os, shutil, subprocess, sys, tempfile, time, urllib.request

import websocket  # websocket-client


class Browser:
    def __init__(self, chromium, timeout):
        self.profile = tempfile.mkdtemp(prefix="tally-chromium-")
        self.timeout = timeout
        self.process = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--hide-scrollbars", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             "--user-data-dir=" + self.profile, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        self.until(lambda: os.path.exists(port_file) and len(open(port_file).read().split()) >= 2, "chromium's DevTools port")
        port = open(port_file).read().split()[0]
        targets = []
        def page_target():
            nonlocal targets
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
            return any(t.get("type") == "page" for t in targets)
        self.until(page_target, "a page target")
        url = next(t for t in targets if t.get("type") == "page")["webSocketDebuggerUrl"]
        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self.next_id = 0
        self.errors = []
        self.events = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(domain + ".enable")

    def until(self, condition, what, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise SystemExit(json.dumps({"error": "timed out waiting for " + what, "console_errors": getattr(self, "errors", [])}))

    def note(self, message):
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append("exception: " + str(details.get("exception", {}).get("description") or details.get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append("console." + params["type"] + ": " + " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append("log: " + entry.get("text", "") + " " + entry.get("url", ""))
        elif method:
            self.events.append(method)

    def call(self, method, params=None):
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == mine:
                if "error" in message:
                    raise SystemExit(json.dumps({"error": method + ": " + json.dumps(message["error"]), "console_errors": self.errors}))
                return message.get("result", {})
            self.note(message)

    def pump(self):
        """Reads the events that arrived (console errors above all) without waiting long."""
        self.ws.settimeout(0.05)
        try:
            while True:
                self.note(json.loads(self.ws.recv()))
        except websocket.WebSocketTimeoutException:
            pass
        finally:
            self.ws.settimeout(self.timeout)

    def js(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise SystemExit(json.dumps({"error": "evaluating " + expression + ": " + json.dumps(result["exceptionDetails"]), "console_errors": self.errors}))
        return result.get("result", {}).get("value")

    def wait(self, expression, what):
        self.until(lambda: (self.pump(), self.js(expression))[1], what)

    def viewport(self, width, height):
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500})

    def open(self, url):
        self.call("Page.navigate", {"url": url})
        self.wait("document.readyState === 'complete' && !!document.getElementById('status')", "the page to load")

    def screenshot(self, path):
        # The whole page, not only the viewport: its content size at the current width.
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.ws.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


STATS = "Object.fromEntries([...document.querySelectorAll('[data-stat]')].map(e => [e.dataset.stat, [e.dataset.value, e.textContent]]))"
CHARTS = ("Object.fromEntries([...document.querySelectorAll('svg.chart')].map(s => [s.id, "
          "[...s.querySelectorAll('path')].filter(p => (p.getAttribute('d') || '').length > 4).length]))")
PAINT = ("(() => { const n = performance.getEntriesByType('navigation')[0]; "
         "const p = performance.getEntriesByName('first-contentful-paint')[0]; "
         "return {response_end_ms: n.responseEnd, dom_content_loaded_ms: n.domContentLoadedEventEnd, "
         "first_contentful_paint_ms: p ? p.startTime : null, "
         "first_load_ms: performance.getEntriesByName('tally:first-load')[0].startTime}; })()")
VISIBLE = "(id => { const e = document.getElementById(id); return !!e && e.offsetParent !== null && e.getBoundingClientRect().width > 0; })"


def sign_in(browser, base, token):
    browser.open(base + "/")
    # A token saved by an earlier sign-in signs the page in again and saves itself once its
    # probe answers: let that finish before forgetting it, or it comes back.
    browser.wait("!sessionStorage.getItem('tally.token') || Number(document.body.dataset.loaded || 0) >= 1", "the saved session's sign-in")
    browser.js("sessionStorage.clear()")
    browser.open(base + "/")
    # As a person would: only through the form, once the page shows it.
    browser.wait(VISIBLE + "('sign-in-form')", "the sign-in form")
    browser.js(f"document.getElementById('token').value = {json.dumps(token)}; document.querySelector('#sign-in-form button').click(); true")
    browser.wait("Number(document.body.dataset.loaded || 0) >= 1", "the first load after sign-in")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chromium", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--phase", choices=["main", "outage", "paint"], required=True)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    tokens = json.load(open(args.tokens))
    os.makedirs(args.out, exist_ok=True)
    shot = lambda name: browser.screenshot(os.path.join(args.out, name + ".png"))
    report = {"phase": args.phase}
    browser = Browser(args.chromium, args.timeout)
    try:
        browser.viewport(1280, 800)
        if args.phase == "paint":
            sign_in(browser, args.base, tokens["admin"])
            runs = []
            for _ in range(args.runs):
                browser.open(args.base + "/")
                browser.wait("performance.getEntriesByName('tally:first-load').length > 0 && "
                             "document.querySelectorAll('#chart-searches path').length > 0", "the first load")
                runs.append(browser.js(PAINT))
            report["runs"] = runs
            report["console_errors"] = browser.errors
            print(json.dumps(report))
            return
        if args.phase == "outage":
            sign_in(browser, args.base, tokens["admin"])
            browser.wait("document.getElementById('status').dataset.status === 'stale'", "the page to say stale")
            report["status"] = browser.js("document.getElementById('status').textContent")
            report["banner"] = browser.js("document.getElementById('banner').hidden ? '' : document.getElementById('banner').textContent")
            report["stats"] = browser.js(STATS)
            report["projection_states"] = browser.js("[...document.querySelectorAll('#projection-rows td[data-key=state]')].map(e => e.textContent)")
            report["screenshots"] = [shot("dashboard-stale-1280")]
            report["console_errors"] = browser.errors
            print(json.dumps(report))
            return
        # Admin on a desktop viewport.
        sign_in(browser, args.base, tokens["admin"])
        browser.wait("document.querySelectorAll('[data-stat]').length > 5 && document.querySelectorAll('#chart-searches path').length > 0",
                     "the stats and charts")
        browser.wait("document.getElementById('status').dataset.status === 'live'", "the live stream")
        report["admin"] = {
            "status": browser.js("document.getElementById('status').textContent"),
            "stats": browser.js(STATS),
            "charts": browser.js(CHARTS),
            "alert_lines": browser.js("document.querySelectorAll('#chart-health [data-alert-line]').length"),
            "projections": browser.js("[...document.querySelectorAll('#projection-rows tr')].map(r => r.dataset.view)"),
            "timeline": browser.js("document.querySelectorAll('#timeline-list li').length"),
            "reset_visible": browser.js(VISIBLE + "('reset-breaker')"),
        }
        # New events, appended through the API as a worker would: the page follows by itself.
        before = int(report["admin"]["stats"]["searches.total"][0])
        request = urllib.request.Request(args.base + "/api/v1/creator/search/live.update", method="POST", data=b"{}",
                                         headers={"Authorization": "Bearer " + tokens["user"], "Content-Type": "application/json"})
        urllib.request.urlopen(request).read()
        browser.wait(f"(document.querySelector('[data-stat=\"searches.total\"]') || {{}}).dataset.value === '{before + 1}'", "the page to show the new search")
        report["admin"]["searches_after_append"] = browser.js("document.querySelector('[data-stat=\"searches.total\"]').dataset.value")
        report["screenshots"] = [shot("dashboard-admin-1280")]
        # The reset, confirmed in the page's dialog.
        browser.js("document.getElementById('reset-breaker').click(); true")
        browser.wait("document.getElementById('confirm-reset').open", "the confirmation dialog")
        browser.js("document.getElementById('confirm-reset-yes').click(); true")
        browser.wait("document.getElementById('reset-result').textContent.startsWith('reset:')", "the reset's answer")
        report["admin"]["reset_result"] = browser.js("document.getElementById('reset-result').textContent")
        # The phone viewport.
        browser.viewport(390, 844)
        browser.open(args.base + "/")
        browser.wait("Number(document.body.dataset.loaded || 0) >= 1 && document.querySelectorAll('#chart-searches path').length > 0", "the phone load")
        report["admin_phone"] = {
            "overflow": browser.js("document.documentElement.scrollWidth - window.innerWidth"),
            "charts": browser.js(CHARTS),
            "stats": browser.js(STATS),
        }
        report["screenshots"].append(shot("dashboard-admin-390"))
        # A user: their own sections, no operations, no reset button.
        browser.viewport(1280, 800)
        sign_in(browser, args.base, tokens["user"])
        browser.wait("document.getElementById('balance').dataset.value !== ''", "the user's balance")
        report["user"] = {
            "stats": browser.js(STATS),
            "balance": browser.js("document.getElementById('balance').dataset.value"),
            "reset_present": browser.js(VISIBLE + "('reset-breaker')"),
            "charts_visible": browser.js(VISIBLE + "('charts')"),
            "unlocked": browser.js("[...document.querySelectorAll('#unlocked-list li')].map(e => e.textContent)"),
        }
        report["screenshots"].append(shot("dashboard-user-1280"))
        browser.viewport(390, 844)
        browser.open(args.base + "/")
        browser.wait("Number(document.body.dataset.loaded || 0) >= 1", "the user's phone load")
        report["user"]["phone_overflow"] = browser.js("document.documentElement.scrollWidth - window.innerWidth")
        report["screenshots"].append(shot("dashboard-user-390"))
        # An auditor: the head digest and the stream browser.
        browser.viewport(1280, 800)
        sign_in(browser, args.base, tokens["auditor"])
        browser.wait("document.getElementById('digest-position').textContent !== '–'", "the digest")
        browser.js(f"document.getElementById('stream').value = {json.dumps(tokens['stream'])}; document.querySelector('#stream-form button').click(); true")
        browser.wait("document.querySelectorAll('#stream-events li').length > 0", "the stream's events")
        browser.js("document.querySelector('#stream-events li').click(); true")
        browser.wait("!document.getElementById('event-json').hidden", "one event's JSON")
        report["auditor"] = {
            "digest_position": browser.js("document.getElementById('digest-position').textContent"),
            "digest_hash": browser.js("document.getElementById('digest-hash').textContent"),
            "events": browser.js("document.querySelectorAll('#stream-events li').length"),
            "event_json": json.loads(browser.js("document.getElementById('event-json').textContent")),
            "reset_present": browser.js(VISIBLE + "('reset-breaker')"),
        }
        report["screenshots"].append(shot("dashboard-auditor-1280"))
        browser.pump()
        report["console_errors"] = browser.errors
        print(json.dumps(report))
    finally:
        browser.close()


if __name__ == "__main__":
    main()
