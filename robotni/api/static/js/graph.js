// A workflow's steps as a small graph in inline SVG: parents above their dependents, each step a link to its job.
// Layers by longest path from a root; within a layer, steps sit near the middle of their parents (one barycenter
// pass), which keeps a diamond or a fan-in untangled. Redrawn only when the steps change; a status change only
// recolours its node, so keyboard focus stays where it was.

import { enc, svg } from "./dom.js";

const NODE_W = 136;
const NODE_H = 46;
const GAP_X = 20;
const GAP_Y = 42;
const PAD = 6;
const NAME_CHARS = 17; // what fits in a node at 0.85rem; the full name is in its title
const MIN_SCALE = 0.6; // a wide graph scrolls rather than shrink below this

function layers(steps) {
  const index = new Map(steps.map((s, i) => [s.name, i]));
  const depth = new Map();
  for (const step of steps) {
    // Steps come parents first (GET /workflows/{id}), so every parent's depth is known here.
    const parents = step.depends_on.filter((p) => depth.has(p));
    depth.set(step.name, parents.length ? 1 + Math.max(...parents.map((p) => depth.get(p))) : 0);
  }
  const rows = [];
  for (const step of steps) (rows[depth.get(step.name)] ||= []).push(step);
  const column = new Map();
  for (const row of rows) {
    const centre = (step) => {
      const known = step.depends_on.filter((p) => column.has(p)).map((p) => column.get(p));
      return known.length ? known.reduce((a, b) => a + b, 0) / known.length : index.get(step.name);
    };
    const keyed = row.map((step) => [centre(step), index.get(step.name), step]);
    keyed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    row.splice(0, row.length, ...keyed.map(([, , step]) => step));
    row.forEach((step, i) => column.set(step.name, i - (row.length - 1) / 2));
  }
  return rows;
}

function node(step, x, y) {
  const name = step.name.length > NAME_CHARS ? step.name.slice(0, NAME_CHARS - 1) + "…" : step.name;
  return svg(
    "a",
    { href: "#job=" + enc(step.job_id), class: "node", "data-step": step.name },
    svg("title", {}),
    svg("rect", { x, y, width: NODE_W, height: NODE_H, rx: 8 }),
    svg("text", { x: x + NODE_W / 2, y: y + 19, class: "step-name" }, name),
    svg("text", { x: x + NODE_W / 2, y: y + 36, class: "step-status" }),
  );
}

function recolour(el, step) {
  const status = step.job ? step.job.status : "unknown";
  el.setAttribute("class", `node s-${status}`);
  el.setAttribute("aria-label", `step ${step.name}: ${status}, open its job`);
  el.querySelector("title").textContent = `${step.name}: ${status}`;
  el.querySelector(".step-status").textContent = status;
}

function draw(box, steps) {
  const rows = layers(steps);
  const widest = Math.max(...rows.map((r) => r.length));
  const width = widest * NODE_W + (widest - 1) * GAP_X + 2 * PAD;
  const height = rows.length * NODE_H + (rows.length - 1) * GAP_Y + 2 * PAD;
  const at = new Map();
  rows.forEach((row, depth) => {
    const left = (width - (row.length * NODE_W + (row.length - 1) * GAP_X)) / 2;
    row.forEach((step, i) => at.set(step.name, [left + i * (NODE_W + GAP_X), PAD + depth * (NODE_H + GAP_Y)]));
  });
  const edges = [];
  for (const step of steps) {
    const [cx, cy] = at.get(step.name);
    for (const parent of step.depends_on) {
      if (!at.has(parent)) continue;
      const [px, py] = at.get(parent);
      const x1 = px + NODE_W / 2;
      const y1 = py + NODE_H;
      const x2 = cx + NODE_W / 2;
      const y2 = cy - 3; // the arrowhead ends at the node's edge
      const bend = (y2 - y1) / 2;
      const d = `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`;
      edges.push(svg("path", { d, class: "edge", "marker-end": "url(#workflow-arrow)" }));
    }
  }
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, width, height, class: "graph", role: "group", "aria-label": "Steps" },
    svg(
      "defs",
      {},
      svg(
        "marker",
        { id: "workflow-arrow", viewBox: "0 0 8 8", refX: 6, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" },
        svg("path", { d: "M0,0 L8,4 L0,8 z", class: "arrow" }),
      ),
    ),
    svg("g", { class: "edges" }, edges),
    svg("g", { class: "nodes" }, steps.map((step) => node(step, ...at.get(step.name)))),
  );
  chart.style.minWidth = `${Math.round(width * MIN_SCALE)}px`;
  box.replaceChildren(chart);
}

/** Show steps in box: drawn anew when the steps or edges changed, else only each node's status. */
export function showGraph(box, workflowId, steps) {
  const key = JSON.stringify([workflowId, steps.map((s) => [s.name, s.job_id, s.depends_on])]);
  if (box.dataset.key !== key) {
    box.dataset.key = key;
    draw(box, steps);
  }
  const nodes = new Map([...box.querySelectorAll("a.node")].map((el) => [el.dataset.step, el]));
  for (const step of steps) if (nodes.has(step.name)) recolour(nodes.get(step.name), step);
}
