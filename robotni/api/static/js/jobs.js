// The jobs view: the submit form, the job list, and one job (job.js) beside them.

import { api } from "./api.js";
import { FormErrors, ParamsFields, describeType, workerTypes } from "./forms.js";
import { closeJob, onJob, openJob, openJobId, pauseJob, resumeJob } from "./job.js";
import { PagedList } from "./pagedlist.js";
import { navigate } from "./router.js";
import { $, TERMINAL, enc, h, prefs, shortId, statusBadge, took, when } from "./dom.js";

const LIST_ACTIVE_POLL_MS = 3000; // while a listed job is still waiting or running
const LIST_IDLE_POLL_MS = 15000;

// --- the submit form -----------------------------------------------------------------------------------

const form = $("submit-form");
const typeSelect = $("type-select");
const params = new ParamsFields($("params-fields"));
const errors = new FormErrors(form, $("form-error"));
let types = new Map();

function showType() {
  const type = types.get(typeSelect.value);
  $("type-description").replaceChildren(...describeType(type));
  if (type) prefs.set("type", type.name);
  params.render(type);
  errors.clear();
}

async function loadTypes() {
  try {
    const data = await workerTypes();
    types = new Map(data.map((t) => [t.name, t]));
    const remembered = prefs.get("type");
    typeSelect.replaceChildren(...data.map((t) => h("option", { value: t.name }, t.name)));
    if (!data.length) typeSelect.append(h("option", { value: "" }, "no worker types"));
    if (remembered && types.has(remembered)) typeSelect.value = remembered;
    $("filter-type").append(...data.map((t) => h("option", { value: t.name }, t.name)));
    showType();
  } catch (exc) {
    typeSelect.replaceChildren(h("option", { value: "" }, "unavailable"));
    $("form-error").textContent = `Could not load the worker types: ${exc.message}`;
  }
}

async function submitJob(event) {
  event.preventDefault();
  errors.clear();
  const type = typeSelect.value;
  if (!types.has(type)) {
    errors.show("type", "Pick a worker type.");
    return;
  }
  const values = params.collect(errors);
  if (!values) return;
  const body = { type, params: values };
  const project = $("project-input").value.trim();
  if (project) body.project = project;
  const venv = $("venv-input").value.trim();
  if (venv) body.venv = venv;
  const button = $("submit-button");
  const status = $("form-status");
  button.disabled = true;
  status.textContent = "Submitting…";
  try {
    const { data } = await api("POST", "jobs", { body });
    status.textContent = `Submitted ${data.id.slice(0, 8)}.`;
    if (project) prefs.set("project", project);
    openJob(data.id, data);
    navigate("#job=" + enc(data.id));
    list.ticker.run();
  } catch (exc) {
    status.textContent = "";
    if (exc.status === 422) errors.showResponse(exc.body, params);
    else errors.show("", exc.message);
  } finally {
    button.disabled = false;
  }
}

// --- the job list --------------------------------------------------------------------------------------

const list = new PagedList({
  resource: "jobs",
  query: () =>
    [
      ["type", $("filter-type").value],
      ["status", $("filter-status").value],
      ["project", $("filter-project").value.trim()],
    ].filter(([, value]) => value),
  errorId: "jobs-error",
  render: () => renderList(),
  delay: (jobs) =>
    document.hidden || !jobs.some((job) => !TERMINAL.has(job.status)) ? LIST_IDLE_POLL_MS : LIST_ACTIVE_POLL_MS,
});
let renderedList = "";

function renderList(force = false) {
  const openId = openJobId();
  const key = JSON.stringify([openId, list.next, list.items]);
  if (!force && key === renderedList) return;
  renderedList = key;
  const rows = list.items.map((job) =>
    h(
      "tr",
      { "data-job-id": job.id, class: job.id === openId ? "selected" : null },
      h("td", {}, statusBadge(job.status)),
      h("td", {}, job.type),
      h("td", {}, job.project),
      h("td", { title: job.created_at, class: "opt" }, when(job.created_at, true)),
      h("td", { class: "opt" }, took(job)),
      h("td", { class: "id" }, shortId(job.id)),
    ),
  );
  $("jobs-body").replaceChildren(...rows);
  $("jobs-empty").hidden = list.items.length > 0;
  $("more-button").hidden = !list.next;
}

function patchListRow(job) {
  const i = list.items.findIndex((j) => j.id === job.id);
  if (i >= 0) {
    list.items[i] = job;
    renderList();
  }
}

// --- wiring --------------------------------------------------------------------------------------------

typeSelect.addEventListener("change", showType);
form.addEventListener("submit", submitJob);
list.wire({
  form: "filters",
  changed: ["filter-type", "filter-status"],
  typed: ["filter-project"],
  refresh: "refresh-button",
  more: "more-button",
});
$("close-button").addEventListener("click", () => navigate("#jobs"));
onJob(patchListRow, () => renderList(true));
$("jobs-body").addEventListener("click", (event) => {
  const row = event.target.closest("tr[data-job-id]");
  if (!row || event.target.closest("a")) return; // the link itself changes the hash
  navigate("#job=" + enc(row.dataset.jobId));
});
document.addEventListener("visibilitychange", () => {
  if (document.hidden || $("view-jobs").hidden) return;
  list.ticker.run();
  resumeJob();
});

const remembered = prefs.get("project");
if (remembered) $("project-input").value = remembered;
loadTypes();

export const jobsView = {
  el: $("view-jobs"),
  show(jobId) {
    if (!list.ticker.on) list.ticker.start();
    if (!jobId) {
      if (openJobId()) closeJob();
      return;
    }
    const fresh = openJobId() !== jobId;
    openJob(jobId);
    if (fresh) $("job-title").focus(); // a keyboard user goes on from the job they opened
  },
  hide() {
    list.ticker.stop();
    pauseJob();
  },
};
