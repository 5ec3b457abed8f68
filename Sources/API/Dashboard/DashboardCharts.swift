/// The dashboard's charts, drawn as SVG by hand (no library): line charts of series and
/// bars of health gauges with the alert lines.
enum DashboardCharts {
    static let js = #"""
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 400, H = 160, L = 34, R = 8, T = 8, B = 22;
  const COLORS = ["#3d5a99", "#c62828", "#1a7f37", "#b35900", "#6a3d9a", "#00838f"];

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clear(svg) { while (svg.firstChild) svg.removeChild(svg.firstChild); }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function shortLabel(iso) {
    // 2026-12-01T10:00:00Z -> 12-01 10:00
    return iso.length >= 16 ? iso.slice(5, 10) + " " + iso.slice(11, 16) : iso;
  }

  /// series: [{name, values: [numbers]}], labels: [iso strings], one per value.
  function line(svg, series, labels) {
    clear(svg);
    const n = labels.length;
    const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
    const x = (i) => L + (n <= 1 ? 0 : (i * (W - L - R)) / (n - 1));
    const y = (v) => T + (H - T - B) * (1 - v / max);
    svg.appendChild(el("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: "#aab2c0" }));
    svg.appendChild(el("line", { x1: L, y1: T, x2: L, y2: y(0), stroke: "#aab2c0" }));
    svg.appendChild(el("text", { x: 2, y: T + 8 }, String(max)));
    svg.appendChild(el("text", { x: 2, y: y(0) }, "0"));
    if (n > 0) {
      svg.appendChild(el("text", { x: L, y: H - 6 }, shortLabel(labels[0])));
      svg.appendChild(el("text", { x: W - R, y: H - 6, "text-anchor": "end" }, shortLabel(labels[n - 1])));
    }
    series.forEach((s, k) => {
      if (n === 0) return;
      let d = "";
      s.values.forEach((v, i) => { d += (i === 0 ? "M" : "L") + x(i).toFixed(1) + "," + y(v).toFixed(1); });
      if (n === 1) d += "L" + (W - R) + "," + y(s.values[0]).toFixed(1);
      // Every other series dashed, so equal series stay visible.
      svg.appendChild(el("path", { d: d, fill: "none", stroke: COLORS[k % COLORS.length], "stroke-width": k % 2 ? 1.5 : 2.5,
        "stroke-dasharray": k % 2 ? "5 3" : "none", "data-series": s.name }));
      svg.appendChild(el("text", { x: L + 6 + k * 80, y: T + 10, fill: COLORS[k % COLORS.length], class: "legend" }, s.name));
    });
  }

  /// gauges: [{component, memory_pct, cpu_pct, disk_pct}]; bars per resource, lines at 65/75/85 %.
  function gauges(svg, list) {
    clear(svg);
    // The wide chart has a wider viewBox, so its text keeps the size of the others'.
    const W = (svg.viewBox && svg.viewBox.baseVal && svg.viewBox.baseVal.width) || 400;
    ["memory", "cpu", "disk"].forEach((name, k) => {
      svg.appendChild(el("text", { x: W - R - 150 + k * 50, y: T + 2, fill: COLORS[k], class: "legend" }, name));
    });
    const y = (v) => T + (H - T - B) * (1 - Math.min(100, v) / 100);
    for (const [level, color] of [[65, "#b35900"], [75, "#c62828"], [85, "#7b1111"]]) {
      svg.appendChild(el("line", { x1: L, y1: y(level), x2: W - R, y2: y(level), stroke: color, "stroke-dasharray": "4 3", "data-alert-line": level }));
      svg.appendChild(el("text", { x: 2, y: y(level) + 3 }, level + "%"));
    }
    svg.appendChild(el("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: "#aab2c0" }));
    const groups = Math.max(1, list.length);
    const gw = (W - L - R) / groups;
    list.forEach((g, i) => {
      ["memory_pct", "cpu_pct", "disk_pct"].forEach((key, k) => {
        const v = Number(g[key]) || 0;
        const bw = gw / 4;
        const x0 = L + i * gw + bw * (k + 0.5);
        svg.appendChild(el("path", { d: `M${x0.toFixed(1)},${y(0).toFixed(1)}V${y(v).toFixed(1)}h${(bw * 0.8).toFixed(1)}V${y(0).toFixed(1)}Z`,
          fill: COLORS[k], "data-gauge": g.component + "." + key }));
      });
      svg.appendChild(el("text", { x: L + i * gw + gw / 2, y: H - 6, "text-anchor": "middle" }, g.component));
    });
    if (list.length === 0) svg.appendChild(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no health samples yet"));
  }

  window.TallyCharts = { line: line, gauges: gauges };
})();
"""#
}
