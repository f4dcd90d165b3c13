// The dashboard: the last hour from GET /stats?window=3600, read again every few seconds while it is shown.

import { api } from "./api.js";
import { bars, columns } from "./charts.js";
import { $, Ticker, duration, h } from "./dom.js";

const WINDOW_SECONDS = 3600;
const POLL_MS = 10000;
const FINISHED = ["completed", "failed", "cancelled", "timed_out"];
let last = null; // the stats drawn, to draw again at a new width

/** A time of the API (ISO 8601) in ms. */
function ms(t) {
  return Date.parse(t);
}

function legend() {
  $("chart-finished-legend").replaceChildren(
    ...FINISHED.map((name) => h("li", {}, h("span", { class: `swatch s-${name}` }), name.replace("_", " "))),
  );
}

function draw(stats) {
  // The buckets' own span: the API rounds them to whole buckets, the last one holding now.
  const bucketMs = stats.bucket_seconds * 1000;
  const finished = stats.finished.map((b) => ({ t: ms(b.t), values: b }));
  const end = finished.length ? finished[finished.length - 1].t + bucketMs : ms(stats.now);
  const start = finished.length ? finished[0].t : end - stats.window * 1000;
  const totals = Object.fromEntries(FINISHED.map((name) => [name, 0]));
  for (const bucket of stats.finished) for (const name of FINISHED) totals[name] += bucket[name] || 0;
  const said = FINISHED.map((name) => `${totals[name]} ${name}`).join(", ");
  columns($("chart-finished"), {
    buckets: finished,
    series: FINISHED,
    start,
    end,
    bucketMs,
    unit: "jobs",
    label: `Jobs finished per ${stats.bucket_seconds} s over the last ${stats.window / 60} minutes: ${said}`,
    none: "No job finished in this hour.",
  });
  // A depth is counted at its bucket's end: its column covers the bucket before it.
  const depth = stats.queue_depth.map((p) => ({ t: ms(p.t) - bucketMs, values: { waiting: p.waiting } }));
  const now = stats.queue_depth.length ? stats.queue_depth[stats.queue_depth.length - 1].waiting : 0;
  columns($("chart-queue"), {
    buckets: depth,
    series: ["waiting"],
    start,
    end,
    bucketMs,
    unit: "waiting",
    label: `Jobs waiting to start over the last ${stats.window / 60} minutes; ${now} at the last count`,
    none: "No job waited in this hour.",
  });
  $("queues-body").replaceChildren(
    ...stats.queues.map((q) =>
      h("tr", {}, h("td", {}, q.queue), h("td", {}, String(q.queued)), h("td", {}, String(q.running))),
    ),
  );
  const rows = stats.durations.map((d) => ({
    name: d.type,
    value: d.p95_seconds,
    marker: d.p50_seconds,
    short: duration(d.p95_seconds * 1000),
    text: `p95 ${duration(d.p95_seconds * 1000)}, p50 ${duration(d.p50_seconds * 1000)}, ${d.count} jobs`,
  }));
  bars($("chart-durations"), {
    rows,
    label: "p95 duration per worker type: " + rows.map((r) => `${r.name} ${r.short}`).join(", "),
    none: "No job finished in this hour.",
  });
}

async function load() {
  const seq = ticker.seq;
  try {
    const { data } = await api("GET", "stats", { query: [["window", String(WINDOW_SECONDS)]] });
    if (seq !== ticker.seq) return;
    last = data;
    draw(data);
    $("dashboard-error").textContent = "";
    $("dashboard-updated").textContent = `as of ${new Date(ms(data.now)).toLocaleTimeString()}`;
  } catch (exc) {
    if (seq === ticker.seq) $("dashboard-error").textContent = `Could not load the figures: ${exc.message}`;
  }
}

const ticker = new Ticker(load, () => POLL_MS);

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => last && !$("view-dashboard").hidden && draw(last), 150);
});
$("dashboard-refresh").addEventListener("click", () => ticker.run());
legend();

export const dashboardView = {
  el: $("view-dashboard"),
  show() {
    if (!ticker.on) ticker.start();
  },
  hide() {
    ticker.stop();
  },
};
