// The workflows view: the list, and one workflow (#workflow=ID) as a graph of its steps, live.
//
// Live: while a workflow runs, the page follows its project's event stream (GET /events?project=P) and reads the
// workflow again when one of its steps' jobs changes status; the stream's cursor is taken when it opens, so the
// read made on opening misses nothing. If the stream is refused, it polls instead.

import { api, stream } from "./api.js";
import { PagedList } from "./pagedlist.js";
import { navigate } from "./router.js";
import { showGraph } from "./graph.js";
import { $, Ticker, enc, h, shortId, statusBadge, when } from "./dom.js";

const LIST_ACTIVE_POLL_MS = 3000; // while a listed workflow runs
const LIST_IDLE_POLL_MS = 15000;
const FALLBACK_POLL_MS = 2000; // one workflow, when its project's stream cannot be had

// --- the list ------------------------------------------------------------------------------------------

const list = new PagedList({
  resource: "workflows",
  query: () =>
    [
      ["status", $("workflow-filter-status").value],
      ["project", $("workflow-filter-project").value.trim()],
    ].filter(([, value]) => value),
  errorId: "workflows-error",
  render: () => renderList(),
  delay: (workflows) =>
    workflows.some((w) => w.status === "running") && !document.hidden ? LIST_ACTIVE_POLL_MS : LIST_IDLE_POLL_MS,
});

function renderList() {
  const rows = list.items.map((w) =>
    h(
      "tr",
      { class: open && open.id === w.id ? "selected" : null },
      h("td", {}, statusBadge(w.status)),
      h("td", { class: "wrap" }, h("a", { href: "#workflow=" + enc(w.id) }, w.name)),
      h("td", { class: "opt" }, w.project),
      h("td", { class: "opt", title: w.created_at }, when(w.created_at, true)),
      h("td", { class: "id" }, h("a", { href: "#workflow=" + enc(w.id), title: w.id, tabindex: -1 }, w.id.slice(0, 8))),
    ),
  );
  $("workflows-body").replaceChildren(...rows);
  $("workflows-empty").hidden = list.items.length > 0;
  $("workflows-more").hidden = !list.next;
}

function patchListRow(workflow) {
  const i = list.items.findIndex((w) => w.id === workflow.id);
  if (i < 0 || list.items[i].status === workflow.status) return;
  list.items[i] = { ...list.items[i], status: workflow.status, finished_at: workflow.finished_at };
  renderList();
}

// --- one workflow --------------------------------------------------------------------------------------

let open = null; // {id, workflow, source, reading, again, fallback}

async function read(state) {
  if (state.reading) {
    state.again = true; // one read at a time; a change seen meanwhile gets one more
    return;
  }
  state.reading = true;
  try {
    do {
      state.again = false;
      const { data } = await api("GET", "workflows/" + enc(state.id));
      if (state !== open) return;
      state.workflow = data;
      $("workflow-error").textContent = "";
      render(data);
      patchListRow(data);
      if (data.status !== "running") stopLive(state);
      else if (!state.source && !state.fallback) startLive(state);
    } while (state.again && state === open);
  } catch (exc) {
    if (state !== open) return;
    $("workflow-error").textContent = exc.status === 404 ? `There is no workflow ${state.id}.` : exc.message;
  } finally {
    state.reading = false;
  }
}

function startLive(state) {
  const jobs = () => new Set(state.workflow.steps.map((s) => s.job_id));
  state.source = stream("events", {
    query: [["project", state.workflow.project]],
    onOpen: () => read(state),
    on: {
      status: (event) => {
        if (state === open && jobs().has(event.job_id)) read(state);
      },
    },
    onError: () => {
      state.source = null;
      if (state !== open) return;
      state.fallback = new Ticker(() => read(state), () => FALLBACK_POLL_MS);
      state.fallback.start();
    },
  });
}

function stopLive(state) {
  if (state.source) state.source.close();
  if (state.fallback) state.fallback.stop();
  state.source = null;
  state.fallback = null;
}

function render(workflow) {
  $("workflow-name").textContent = workflow.name;
  $("workflow-status").replaceChildren(statusBadge(workflow.status));
  const counts = {};
  for (const step of workflow.steps) counts[step.job.status] = (counts[step.job.status] || 0) + 1;
  const summary = Object.entries(counts).map(([status, n]) => `${n} ${status}`);
  const ended = workflow.finished_at ? ` · ended ${when(workflow.finished_at, true)}` : "";
  const steps = `${workflow.steps.length} steps: ${summary.join(", ")}`;
  $("workflow-note").textContent = `${workflow.project} · ${steps}${ended}`;
  const cancel = $("workflow-cancel");
  cancel.hidden = workflow.status !== "running";
  cancel.disabled = workflow.cancel_requested;
  showGraph($("workflow-graph"), workflow.id, workflow.steps);
  $("workflow-steps").replaceChildren(
    ...workflow.steps.map((step) =>
      h(
        "tr",
        {},
        h("td", { class: "wrap" }, step.name),
        h("td", {}, statusBadge(step.job.status)),
        h("td", { class: "wrap" }, step.depends_on.join(", ") || "—"),
        h("td", { class: "id" }, shortId(step.job_id)),
      ),
    ),
  );
}

function openWorkflow(id) {
  if (open && open.id === id) {
    if (!open.source && !open.fallback) read(open); // back on the view: catch up, and follow again if it runs
    return;
  }
  if (open) stopLive(open);
  open = { id, workflow: null, source: null, reading: false, again: false, fallback: null };
  $("workflow").hidden = false;
  for (const el of ["workflow-name", "workflow-note", "workflow-error"]) $(el).textContent = "";
  $("workflow-status").replaceChildren();
  $("workflow-steps").replaceChildren();
  $("workflow-graph").replaceChildren();
  delete $("workflow-graph").dataset.key;
  $("workflow-cancel").hidden = true;
  renderList();
  read(open);
  $("workflow-title").focus(); // a keyboard user goes on from the workflow they opened
}

function closeWorkflow() {
  if (open) stopLive(open);
  open = null;
  $("workflow").hidden = true;
  renderList();
}

async function cancelWorkflow() {
  const state = open;
  if (!state) return;
  $("workflow-cancel").disabled = true;
  try {
    await api("DELETE", "workflows/" + enc(state.id));
  } catch (exc) {
    if (state === open) $("workflow-error").textContent = exc.message; // 409: it ended otherwise meanwhile
  }
  if (state === open) read(state);
  list.ticker.run();
}

// --- wiring --------------------------------------------------------------------------------------------

list.wire({
  form: "workflow-filters",
  changed: ["workflow-filter-status"],
  typed: ["workflow-filter-project"],
  refresh: "workflows-refresh",
  more: "workflows-more",
});
$("workflow-close").addEventListener("click", () => navigate("#workflows"));
$("workflow-cancel").addEventListener("click", cancelWorkflow);

export const workflowsView = {
  el: $("view-workflows"),
  show(id) {
    if (!list.ticker.on) list.ticker.start();
    if (id) openWorkflow(id);
    else if (open) closeWorkflow();
  },
  hide() {
    list.ticker.stop();
    if (open) stopLive(open);
  },
};
