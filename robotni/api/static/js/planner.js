// Schedules from a prompt: POST /planner/plan shows what would be made (and which words each field came from);
// only "Make these schedules" calls POST /planner/execute, with the same prompt, and shows what it made.

import { api } from "./api.js";
import { FormErrors } from "./forms.js";
import { $, enc, h, localZone, shortId } from "./dom.js";
import { refreshSchedules, schedules, timing } from "./schedules.js";

const form = $("planner-form");
const errors = new FormErrors(form, $("planner-error"));
let planned = null; // {request, plan}: the body the shown plan was made from

function request() {
  const body = {
    prompt: $("planner-prompt").value.trim(),
    timezone: $("planner-timezone").value.trim() || "UTC",
  };
  const project = $("planner-project").value.trim();
  if (project) body.project = project;
  return body;
}

function from(schedule, ...fields) {
  const words = fields.map((f) => schedule.from && schedule.from[f]).filter((w) => typeof w === "string" && w);
  return words.length ? h("span", { class: "from" }, `from “${words.join("”, “")}”`) : null;
}

function planItem(schedule) {
  const exists = schedules.all.some((s) => s.name === schedule.name);
  const rows = [
    ["Runs", schedule.type, from(schedule, "type")],
    ["Params", h("code", {}, JSON.stringify(schedule.params || {})), from(schedule, "params")],
    ["Project", schedule.project, from(schedule, "project")],
    ["When", timing(schedule), from(schedule, "cron", "interval_seconds", "timezone")],
  ];
  return h(
    "li",
    { class: "plan-item" },
    h(
      "div",
      { class: "plan-name" },
      h("strong", {}, schedule.name),
      " ",
      h("span", { class: exists ? "state off" : "state on" }, exists ? "replaces the schedule of that name" : "new"),
    ),
    h(
      "dl",
      { class: "plan-facts" },
      rows.map(([term, value, note]) => h("div", {}, h("dt", {}, term), h("dd", {}, value, note ? " " : null, note))),
    ),
  );
}

function renderPlan(plan) {
  $("plan").hidden = false;
  $("plan-error").textContent = "";
  $("plan-source").textContent = plan.source === "model" ? "(read by the model)" : "(read by the rules)";
  const items = plan.schedules.map(planItem);
  if (!items.length) items.push(h("li", { class: "muted" }, "Nothing in this prompt makes a schedule."));
  $("plan-schedules").replaceChildren(...items);
  $("plan-unplaced").textContent = plan.unplaced.length
    ? `Not used: “${plan.unplaced.join("”, “")}”. Say it another way if it matters.`
    : "";
  $("plan-model-error").textContent = plan.model_error ? `The model could not be used: ${plan.model_error}` : "";
  $("plan-make").disabled = !plan.schedules.length;
  $("plan-make").focus();
}

async function showPlan(event) {
  event.preventDefault();
  errors.clear();
  discard();
  $("plan-result").replaceChildren();
  const body = request();
  if (!body.prompt) {
    errors.show("prompt", "Say what should run, and when.");
    return;
  }
  const button = $("planner-plan");
  button.disabled = true;
  $("planner-status").textContent = "Planning…";
  try {
    const { data } = await api("POST", "planner/plan", { body });
    planned = { request: body, plan: data };
    renderPlan(data);
  } catch (exc) {
    if (exc.status === 422) errors.showResponse(exc.body);
    else errors.show("", exc.message);
  } finally {
    button.disabled = false;
    $("planner-status").textContent = "";
  }
}

function resultItem({ action, schedule, job_id: jobId }) {
  return h(
    "li",
    {},
    h("a", { href: "#schedule=" + enc(schedule.id) }, schedule.name),
    ` ${action}`,
    jobId ? [", first job ", shortId(jobId)] : null,
  );
}

async function make() {
  if (!planned) return;
  const body = { ...planned.request, run_immediately: $("plan-run-now").checked, dry_run: false };
  const button = $("plan-make");
  button.disabled = true;
  try {
    const { data } = await api("POST", "planner/execute", { body });
    discard();
    const made = h("ul", { class: "plan-made" }, data.schedules.map(resultItem));
    $("plan-result").replaceChildren(h("h3", {}, "Made"), made);
    refreshSchedules();
  } catch (exc) {
    $("plan-error").textContent = exc.message;
    button.disabled = false;
  }
}

function discard() {
  planned = null;
  $("plan").hidden = true;
  $("plan-schedules").replaceChildren();
}

form.addEventListener("submit", showPlan);
$("plan-make").addEventListener("click", make);
$("plan-discard").addEventListener("click", () => {
  discard();
  $("planner-prompt").focus();
});
$("planner-timezone").value = localZone();
