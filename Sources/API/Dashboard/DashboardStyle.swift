/// The dashboard's style sheet: one column on a phone, a grid from 800 px.
enum DashboardStyle {
    static let css = #"""
:root { --fg: #1d2330; --muted: #5b6474; --bg: #f4f6f9; --card: #fff; --line: #d8dde6; --ok: #1a7f37; --warn: #b35900; --bad: #c62828; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
.bar { display: flex; flex-wrap: wrap; align-items: center; gap: 12px; padding: 10px 16px; background: #1d2330; color: #fff; }
.bar h1 { font-size: 18px; margin: 0; }
.who { color: #c9d1e0; }
.status { margin-left: auto; padding: 2px 10px; border-radius: 10px; background: #5b6474; font-size: 13px; }
.status[data-status="live"] { background: var(--ok); }
.status[data-status="polling"] { background: #3d5a99; }
.status[data-status="stale"], .status[data-status="unavailable"] { background: var(--bad); }
main { display: grid; grid-template-columns: 1fr; gap: 12px; padding: 12px; max-width: 1400px; margin: 0 auto; }
@media (min-width: 800px) { main { grid-template-columns: 1fr 1fr; } #charts, #glance, #banner, #audit, #sign-in { grid-column: 1 / -1; } }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; min-width: 0; }
.card h2 { font-size: 16px; margin: 0 0 8px; }
.banner { padding: 10px 16px; border-radius: 8px; background: #fdecea; color: var(--bad); border: 1px solid #f5c2c0; font-weight: 600; grid-column: 1 / -1; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
.tile .label { color: var(--muted); font-size: 12px; }
.tile .value { font-size: 20px; font-weight: 600; overflow-wrap: anywhere; }
.charts { display: grid; grid-template-columns: 1fr; gap: 12px; }
@media (min-width: 800px) { .charts { grid-template-columns: 1fr 1fr; } .charts .wide { grid-column: 1 / -1; } }
figure { margin: 0; min-width: 0; }
figcaption { color: var(--muted); font-size: 13px; }
.chart { width: 100%; height: auto; background: #fafbfc; border: 1px solid var(--line); border-radius: 4px; }
.chart text { font-size: 9px; }
.chart text:not(.legend) { fill: var(--muted); }
table { width: 100%; border-collapse: collapse; font-size: 13px; display: block; overflow-x: auto; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td[data-state="live"] { color: var(--ok); }
td[data-state="storeUnavailable"], td[data-state="catchingUp"], td[data-state="rebuilding"] { color: var(--bad); }
.list { padding-left: 20px; margin: 6px 0; max-height: 320px; overflow-y: auto; font-size: 13px; }
.list li { padding: 2px 0; overflow-wrap: anywhere; }
.events li { cursor: pointer; text-decoration: underline dotted; }
.json { background: #1d2330; color: #e3e8f1; padding: 8px; border-radius: 6px; overflow-x: auto; font-size: 12px; }
.error { color: var(--bad); }
.note { color: var(--muted); }
textarea, input, select { width: 100%; font: inherit; padding: 6px; margin: 4px 0 8px; border: 1px solid var(--line); border-radius: 4px; }
button { font: inherit; padding: 6px 12px; border: 1px solid #3d5a99; background: #3d5a99; color: #fff; border-radius: 4px; cursor: pointer; }
#reset-breaker { background: var(--bad); border-color: var(--bad); }
code { overflow-wrap: anywhere; }
.legend { font-size: 10px; }
"""#
}
