/* lastgang: the little JavaScript the pages use. Pages work without it except the charts. */
"use strict";

function pollJob() {
  const badge = document.getElementById("job-state");
  if (!badge || badge.dataset.refresh !== "yes") return;
  const url = badge.dataset.jobUrl;
  const tick = async () => {
    try {
      const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (r.ok) {
        const job = await r.json();
        if (job.state === "done" || job.state === "failed") { window.location.reload(); return; }
        const p = job.progress;
        const fill = document.getElementById("job-progress");
        const what = document.getElementById("job-what");
        if (p && fill && p.total) fill.style.width = Math.max(5, Math.round(100 * p.done / p.total)) + "%";
        if (p && what) what.textContent = p.what;
      }
    } catch (e) { /* keep polling */ }
    delay = Math.min(1000, delay * 2);
    window.setTimeout(tick, delay);
  };
  let delay = 100;
  window.setTimeout(tick, delay);
}

const STYLE = {
  production: { type: "bar" },
  consumption: { type: "scatter", mode: "lines", line: { color: "#1f1f1f", width: 2, shape: "hv" } },
  own_draw: { type: "bar", marker: { color: "#C0392B", pattern: { shape: "/" } } },
  local: { type: "bar", marker: { color: "#2E9E4F" } },
  grid: { type: "bar", marker: { color: "#8C8C8C" } },
  grid_import: { type: "bar", marker: { color: "#8C8C8C" }, yaxis: "y2", xaxis: "x2" },
  grid_export: { type: "bar", marker: { color: "#2C7FB8" }, yaxis: "y2", xaxis: "x2" },
};

// legal-time tick labels by zoom: hours within a day, days within a month, months beyond
const TICKS = [
  { dtickrange: [null, 86399999], value: "%H:%M" },
  { dtickrange: [86400000, 1209600000], value: "%a %d %b" },
  { dtickrange: ["M1", null], value: "%b %Y" },
];

function drawChart(el, data) {
  const twoPanels = data.series.some((s) => s.kind === "grid_import" || s.kind === "grid_export");
  const traces = data.series.map((s) => {
    const base = STYLE[s.kind] || { type: "bar" };
    const trace = Object.assign({}, base, {
      name: s.name, x: data.x, y: s.values, customdata: data.labels,
      hovertemplate: "%{customdata}: %{y:.3f} " + data.unit + "<extra>" + s.name + "</extra>",
    });
    if (s.colour) trace.marker = Object.assign({}, trace.marker || {}, { color: s.colour });
    if (!twoPanels) { delete trace.xaxis; delete trace.yaxis; }
    trace.offset = 0; trace.width = data.widths;
    if (trace.type !== "bar") {
      delete trace.offset; delete trace.width;
      // a step line holds each value over its whole bar: one more point where the last bar ends
      if (s.values.length) { trace.x = data.x.concat([data.end]); trace.y = s.values.concat([s.values[s.values.length - 1]]); trace.customdata = data.labels.concat([data.labels[data.labels.length - 1]]); }
    }
    return trace;
  });
  const layout = {
    barmode: "relative", bargap: 0, hovermode: "x unified",
    margin: { l: 60, r: 20, t: 30, b: 40 }, legend: { orientation: "h", y: -0.12 },
    xaxis: { type: "date", anchor: "y", nticks: 13, automargin: true, tickformatstops: TICKS,
      showticklabels: !twoPanels, range: data.x.length ? [data.x[0], data.end] : undefined },
    yaxis: { title: { text: data.unit }, zeroline: true, zerolinewidth: 2, domain: twoPanels ? [0.38, 1] : [0, 1] },
    title: { text: data.title, font: { size: 15 } },
  };
  if (twoPanels) {
    layout.xaxis2 = { type: "date", anchor: "y2", matches: "x", nticks: 13, automargin: true, tickformatstops: TICKS };
    layout.yaxis2 = { title: { text: "grid " + data.unit }, domain: [0, 0.28], zeroline: true, zerolinewidth: 2 };
  }
  window.Plotly.newPlot(el, traces, layout, { displaylogo: false, responsive: true });
}

function loadChart(id) {
  const el = document.getElementById(id);
  if (!el || !el.dataset.url) return;
  const go = async () => {
    if (!window.Plotly) { window.setTimeout(go, 50); return; }
    const r = await fetch(el.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = await r.json();
    if (!r.ok) { el.textContent = data.detail || "The chart data could not be loaded."; return; }
    const summary = document.getElementById(id.replace("-chart", "") + "-summary") || document.getElementById("chart-summary");
    if (summary && data.summary) summary.textContent = data.summary;
    const prev = document.getElementById("nav-prev");
    const next = document.getElementById("nav-next");
    if (prev && data.prev) prev.href = "?view=" + el.dataset.view + "&date=" + data.prev;
    if (next && data.next) next.href = "?view=" + el.dataset.view + "&date=" + data.next;
    drawChart(el, data);
    el.dataset.drawn = "yes";
  };
  go();
}

document.addEventListener("DOMContentLoaded", () => {
  pollJob();
  loadChart("monitoring-chart");
  loadChart("consumption-chart");
});
