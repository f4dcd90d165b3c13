// The schedules view: the list, one schedule with its runs (#schedule=ID: enable, disable, delete, each run's
// job one click away), and the form that makes a schedule. The prompt that plans schedules is planner.js.

import { api } from "./api.js";
import { FormErrors, ParamsFields, describeType, workerTypes } from "./forms.js";
import { navigate } from "./router.js";
import { $, Ticker, confirmTwice, enc, facts, h, localZone, pretty, shortId, statusBadge, took, when } from "./dom.js";

const LIST_POLL_MS = 15000;
const OPEN_POLL_MS = 3000; // one schedule's next run and runs, while it is open
const RUNS_SHOWN = 20;

// --- the list ------------------------------------------------------------------------------------------

export const schedules = { all: [] };

/** How a schedule's timing reads: "every 5 min" or "cron 0 7 * * * (Europe/Paris)". */
export function timing(schedule) {
  if (schedule.interval_seconds) return "every " + everyText(schedule.interval_seconds);
  return `cron ${schedule.cron} (${schedule.timezone})`;
}

function everyText(seconds) {
  for (const [size, unit] of [
    [86400, "d"],
    [3600, "h"],
    [60, "min"],
  ]) {
    if (seconds % size === 0) return `${seconds / size} ${unit}`;
  }
  return `${seconds} s`;
}

function what(schedule) {
  return schedule.workflow ? `workflow ${schedule.workflow.name}` : schedule.type;
}

function stateBadge(schedule) {
  return h("span", { class: schedule.enabled ? "state on" : "state off" }, schedule.enabled ? "enabled" : "disabled");
}

async function loadList() {
  const seq = listTicker.seq;
  try {
    const { data } = await api("GET", "schedules");
    if (seq !== listTicker.seq) return;
    schedules.all = data;
    $("schedules-error").textContent = "";
    renderList();
  } catch (exc) {
    if (seq === listTicker.seq) $("schedules-error").textContent = `Could not load schedules: ${exc.message}`;
  }
}

const listTicker = new Ticker(loadList, () => LIST_POLL_MS);

/** Load the list again now (after a change made elsewhere, e.g. by the planner). */
export function refreshSchedules() {
  return listTicker.run();
}

function renderList() {
  const rows = schedules.all.map((s) =>
    h(
      "tr",
      { "data-schedule-id": s.id, class: open && open.id === s.id ? "selected" : null },
      h("td", { class: "wrap" }, h("a", { href: "#schedule=" + enc(s.id) }, s.name)),
      h("td", { class: "wrap" }, what(s)),
      h("td", { class: "opt" }, s.project),
      h("td", { class: "wrap" }, timing(s)),
      h("td", { class: "opt", title: s.next_run_at || "" }, when(s.next_run_at, true)),
      h("td", {}, stateBadge(s)),
    ),
  );
  $("schedules-body").replaceChildren(...rows);
  $("schedules-empty").hidden = schedules.all.length > 0;
}

// --- one schedule --------------------------------------------------------------------------------------

let open = null; // {id, schedule}

async function loadOpen() {
  const state = open;
  if (!state) return;
  try {
    const [one, runs] = await Promise.all([
      api("GET", "schedules/" + enc(state.id)),
      api("GET", `schedules/${enc(state.id)}/runs`, { query: [["limit", String(RUNS_SHOWN)]] }),
    ]);
    if (state !== open) return;
    state.schedule = one.data;
    renderOpen(state.schedule, runs.data);
    $("schedule-error").textContent = "";
  } catch (exc) {
    if (state !== open) return;
    $("schedule-error").textContent = exc.status === 404 ? `There is no schedule ${state.id}.` : exc.message;
  }
}

const openTicker = new Ticker(loadOpen, () => OPEN_POLL_MS);

function renderOpen(schedule, runs) {
  $("schedule-name-shown").textContent = schedule.name;
  $("schedule-state").replaceChildren(stateBadge(schedule));
  $("schedule-note").textContent = schedule.last_error ? `last due time made no job: ${schedule.last_error}` : "";
  const rows = [
    ["Runs", what(schedule)],
    ["Project", schedule.project],
    ["When", timing(schedule)],
    ["Next run", when(schedule.next_run_at, true), schedule.next_run_at],
    ["Last run", when(schedule.last_run_at, true), schedule.last_run_at],
    ["Made by", schedule.source === "file" ? `the file ${schedule.source_file}` : "the API"],
  ];
  $("schedule-facts").replaceChildren(...facts(rows));
  $("schedule-what").textContent = pretty(schedule.workflow || { type: schedule.type, params: schedule.params });
  const toggle = $("schedule-toggle");
  toggle.textContent = schedule.enabled ? "Disable" : "Enable";
  const remove = $("schedule-delete");
  remove.disabled = schedule.source === "file"; // its definition is the file: change it there
  remove.title = remove.disabled ? "Declared in the schedules file: remove it there" : "";
  $("schedule-runs").replaceChildren(
    ...runs.map((run) =>
      h(
        "tr",
        {},
        h("td", { title: run.due_at }, when(run.due_at, true)),
        h("td", {}, run.job ? statusBadge(run.job.status) : h("span", { class: "muted" }, "removed")),
        h("td", { class: "id" }, shortId(run.job_id)),
        h("td", { class: "opt" }, run.job ? took(run.job) : "—"),
      ),
    ),
  );
  $("schedule-runs-empty").hidden = runs.length > 0;
}

function openSchedule(id) {
  if (open && open.id === id) return;
  open = { id, schedule: null };
  $("schedule").hidden = false;
  for (const el of ["schedule-name-shown", "schedule-note", "schedule-error", "schedule-what"]) $(el).textContent = "";
  $("schedule-state").replaceChildren();
  $("schedule-facts").replaceChildren();
  $("schedule-runs").replaceChildren();
  const remove = $("schedule-delete");
  remove.textContent = "Delete";
  delete remove.dataset.armed; // a click armed for another schedule must not delete this one
  openTicker.start();
  renderList();
  $("schedule-title").focus(); // a keyboard user goes on from the schedule they opened
}

function closeSchedule() {
  open = null;
  openTicker.stop();
  $("schedule").hidden = true;
  renderList();
}

async function change(action) {
  const state = open;
  if (!state || !state.schedule) return;
  $("schedule-error").textContent = "";
  try {
    if (action === "delete") {
      await api("DELETE", "schedules/" + enc(state.id));
      navigate("#schedules");
    } else {
      await api("POST", `schedules/${enc(state.id)}/${state.schedule.enabled ? "disable" : "enable"}`);
      await openTicker.run();
    }
  } catch (exc) {
    if (state === open) $("schedule-error").textContent = exc.message;
  }
  refreshSchedules();
}

// --- the form ------------------------------------------------------------------------------------------

const form = $("schedule-form");
const typeSelect = $("schedule-type");
const params = new ParamsFields($("schedule-params"), "schedule-");
const errors = new FormErrors(form, $("schedule-form-error"));
let types = new Map();

function showType() {
  const type = types.get(typeSelect.value);
  $("schedule-type-description").replaceChildren(...describeType(type));
  params.render(type);
}

async function loadTypes() {
  try {
    const data = await workerTypes();
    types = new Map(data.map((t) => [t.name, t]));
    typeSelect.replaceChildren(...data.map((t) => h("option", { value: t.name }, t.name)));
    showType();
  } catch (exc) {
    typeSelect.replaceChildren(h("option", { value: "" }, "unavailable"));
    errors.show("", `Could not load the worker types: ${exc.message}`);
  }
}

function timingFields() {
  const byCron = $("schedule-by-cron").checked;
  const timezone = $("schedule-timezone").value.trim() || "UTC";
  if (byCron) return { cron: $("schedule-cron").value.trim(), timezone };
  const count = $("schedule-interval").valueAsNumber;
  if (!Number.isInteger(count) || count < 1) {
    errors.show("interval_seconds", "Enter a whole number, 1 or more.");
    return null;
  }
  return { interval_seconds: count * Number($("schedule-unit").value), timezone };
}

async function createSchedule(event) {
  event.preventDefault();
  errors.clear();
  const name = $("schedule-name").value.trim();
  if (!name) errors.show("name", "Give it a name.");
  if (!types.has(typeSelect.value)) errors.show("type", "Pick a worker type.");
  const values = params.collect(errors);
  const timed = timingFields();
  if (!name || !types.has(typeSelect.value) || !values || !timed) return;
  const body = { name, type: typeSelect.value, params: values, enabled: $("schedule-enabled").checked, ...timed };
  const project = $("schedule-project").value.trim();
  if (project) body.project = project;
  const button = $("schedule-create");
  button.disabled = true;
  $("schedule-form-status").textContent = "Creating…";
  try {
    const { data } = await api("POST", "schedules", { body });
    $("schedule-form-status").textContent = `Created ${data.name}.`;
    $("schedule-name").value = "";
    await refreshSchedules();
    navigate("#schedule=" + enc(data.id));
  } catch (exc) {
    $("schedule-form-status").textContent = "";
    if (exc.status === 422) errors.showResponse(exc.body, params);
    else errors.show("", exc.message);
  } finally {
    button.disabled = false;
  }
}

// --- wiring --------------------------------------------------------------------------------------------

typeSelect.addEventListener("change", showType);
form.addEventListener("submit", createSchedule);
for (const id of ["schedule-interval", "schedule-unit"]) {
  $(id).addEventListener("input", () => ($("schedule-every").checked = true));
}
$("schedule-cron").addEventListener("input", () => ($("schedule-by-cron").checked = true));
$("schedules-refresh").addEventListener("click", refreshSchedules);
$("schedule-close").addEventListener("click", () => navigate("#schedules"));
$("schedule-toggle").addEventListener("click", () => change("toggle"));
$("schedule-delete").addEventListener("click", (event) =>
  confirmTwice(event.currentTarget, "Really delete?", () => change("delete")),
);

$("schedule-timezone").value = localZone();
let typesAsked = false;

export const schedulesView = {
  el: $("view-schedules"),
  show(id) {
    if (!typesAsked) {
      typesAsked = true; // the form's params are drawn once the view is first shown
      loadTypes();
    }
    if (!listTicker.on) listTicker.start();
    if (id) openSchedule(id);
    else if (open) closeSchedule();
    if (open && !openTicker.on) openTicker.start();
  },
  hide() {
    listTicker.stop();
    openTicker.stop();
  },
};
