// The jobs view: the submit form, the job list, and one job (job.js) beside them.

import { api } from "./api.js";
import { FormErrors, ParamsFields, describeType, workerTypes } from "./forms.js";
import { closeJob, onJob, openJob, openJobId, pauseJob, resumeJob } from "./job.js";
import { navigate } from "./router.js";
import { $, TERMINAL, Ticker, enc, h, prefs, shortId, statusBadge, took, when } from "./dom.js";

const PAGE_SIZE = 20;
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

const list = { jobs: [], next: null, rendered: "", append: false };

function listQuery(cursor, limit) {
  const query = [["limit", String(limit)]];
  const type = $("filter-type").value;
  const status = $("filter-status").value;
  const project = $("filter-project").value.trim();
  if (type) query.push(["type", type]);
  if (status) query.push(["status", status]);
  if (project) query.push(["project", project]);
  if (cursor) query.push(["cursor", cursor]);
  return query;
}

/** The first page again (as long as what is shown), or with list.append the page after the last one shown. */
async function loadList() {
  const append = list.append;
  list.append = false;
  const limit = append ? PAGE_SIZE : Math.min(500, Math.max(PAGE_SIZE, list.jobs.length));
  const seq = list.ticker.seq;
  try {
    const { data } = await api("GET", "jobs", { query: listQuery(append ? list.next : null, limit) });
    if (seq !== list.ticker.seq) return;
    list.jobs = append ? list.jobs.concat(data.jobs) : data.jobs;
    list.next = data.next_cursor;
    $("jobs-error").textContent = "";
    renderList();
  } catch (exc) {
    if (seq !== list.ticker.seq) return;
    $("jobs-error").textContent = `Could not load jobs: ${exc.message}`;
  }
}

list.ticker = new Ticker(loadList, () => {
  const active = list.jobs.some((job) => !TERMINAL.has(job.status));
  return document.hidden || !active ? LIST_IDLE_POLL_MS : LIST_ACTIVE_POLL_MS;
});

function resetList() {
  list.jobs = [];
  list.next = null;
  list.ticker.run();
}

function renderList(force = false) {
  const openId = openJobId();
  const key = JSON.stringify([openId, list.next, list.jobs]);
  if (!force && key === list.rendered) return;
  list.rendered = key;
  const rows = list.jobs.map((job) =>
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
  $("jobs-empty").hidden = list.jobs.length > 0;
  $("more-button").hidden = !list.next;
}

function patchListRow(job) {
  const i = list.jobs.findIndex((j) => j.id === job.id);
  if (i >= 0) {
    list.jobs[i] = job;
    renderList();
  }
}

// --- wiring --------------------------------------------------------------------------------------------

typeSelect.addEventListener("change", showType);
form.addEventListener("submit", submitJob);
$("filters").addEventListener("submit", (event) => event.preventDefault());
$("filter-type").addEventListener("change", resetList);
$("filter-status").addEventListener("change", resetList);
let projectTimer = null;
$("filter-project").addEventListener("input", () => {
  clearTimeout(projectTimer);
  projectTimer = setTimeout(resetList, 300);
});
$("refresh-button").addEventListener("click", () => list.ticker.run());
$("more-button").addEventListener("click", () => {
  list.append = true;
  list.ticker.run();
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
