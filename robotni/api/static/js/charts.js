// Two small chart kinds in inline SVG, drawn at the width of their box (so text stays its size at 375 px):
// stacked columns over time, and horizontal bars per name. Each mark carries its number (data-value) and a
// <title>; each chart has an aria-label that says what it shows in words.

import { svg } from "./dom.js";

const HEIGHT = 180;
const MARGIN = { top: 10, right: 8, bottom: 22, left: 34 };
const ROW_H = 30;
const LABEL_W = 96;
const VALUE_W = 64;
const X_LABEL_W = 100; // room for one time label under the axis: a narrow chart has fewer of them

/** 0, a round number at or above max (1, 2, 5 × 10^n), and its half: the y axis's gridlines. */
function niceMax(max) {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function frame(box, height, label) {
  const width = Math.max(260, Math.floor(box.clientWidth || 600));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label });
  return [chart, width];
}

function empty(chart, width, height, text) {
  chart.append(svg("text", { x: width / 2, y: height / 2, class: "chart-empty" }, text));
}

/**
 * Stacked columns: buckets [{t (ms), values: {series: n}}] between start and end (ms), each `bucketMs` wide;
 * series names in stacking order, each drawn with the class `mark s-<name>`.
 */
export function columns(box, { buckets, series, start, end, bucketMs, label, unit, none }) {
  const [chart, width] = frame(box, HEIGHT, label);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const totals = buckets.map((b) => series.reduce((sum, name) => sum + (b.values[name] || 0), 0));
  const top = niceMax(Math.max(0, ...totals));
  const x = (ms) => MARGIN.left + ((ms - start) / (end - start)) * plotW;
  const y = (n) => MARGIN.top + plotH - (n / top) * plotH;

  const grid = svg("g", { class: "grid" });
  for (const n of [0, top / 2, top].filter(Number.isInteger)) {
    grid.append(
      svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(n), y2: y(n) }),
      svg("text", { x: MARGIN.left - 4, y: y(n) + 4, class: "tick y" }, String(n)),
    );
  }
  const ticks = Math.max(1, Math.min(4, Math.floor(plotW / X_LABEL_W)));
  for (let i = 0; i <= ticks; i++) {
    const ms = start + ((end - start) * i) / ticks;
    const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
    grid.append(svg("text", { x: x(ms), y: HEIGHT - 6, class: "tick x", "text-anchor": anchor }, clock(ms)));
  }
  chart.append(grid);

  const barW = Math.max(1, (bucketMs / (end - start)) * plotW - 1);
  const marks = svg("g", { class: "marks" });
  buckets.forEach((bucket, i) => {
    if (!totals[i] || bucket.t < start || bucket.t >= end) return;
    let base = 0;
    for (const name of series) {
      const value = bucket.values[name] || 0;
      if (!value) continue;
      marks.append(
        svg(
          "rect",
          {
            x: x(bucket.t),
            y: y(base + value),
            width: barW,
            height: y(base) - y(base + value),
            class: `mark s-${name}`,
            "data-value": value,
          },
          svg("title", {}, `${clock(bucket.t)}: ${value} ${name}${unit ? " " + unit : ""}`),
        ),
      );
      base += value;
    }
  });
  chart.append(marks);
  if (!totals.some(Boolean)) empty(chart, width, HEIGHT, none);
  box.replaceChildren(chart);
}

/** Horizontal bars: rows [{name, value, marker?, short, text}]: value a bar, marker a tick on it, short its label. */
export function bars(box, { rows, label, none }) {
  const height = rows.length ? rows.length * ROW_H + 8 : 60;
  const [chart, width] = frame(box, height, label);
  const plotW = width - LABEL_W - VALUE_W;
  const top = Math.max(...rows.map((r) => r.value), 0) || 1;
  rows.forEach((row, i) => {
    const yTop = 4 + i * ROW_H;
    const length = Math.max(1, (row.value / top) * plotW);
    const name = row.name.length > 13 ? row.name.slice(0, 12) + "…" : row.name;
    const group = svg(
      "g",
      { class: "row" },
      svg("title", {}, `${row.name}: ${row.text}`),
      svg("text", { x: LABEL_W - 6, y: yTop + 19, class: "tick y" }, name),
      svg("rect", {
        x: LABEL_W,
        y: yTop + 6,
        width: length,
        height: ROW_H - 12,
        class: "mark",
        "data-value": row.value,
      }),
      svg("text", { x: LABEL_W + length + 4, y: yTop + 19, class: "tick value" }, row.short),
    );
    if (row.marker !== undefined && row.marker !== null) {
      const at = LABEL_W + (row.marker / top) * plotW;
      group.append(svg("line", { x1: at, x2: at, y1: yTop + 3, y2: yTop + ROW_H - 3, class: "marker" }));
    }
    chart.append(group);
  });
  if (!rows.length) empty(chart, width, height, none);
  box.replaceChildren(chart);
}
