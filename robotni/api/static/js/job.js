// One job, followed live (#job=ID): status, progress, log, result, cancel.

import { api, stream } from "./api.js";
import { $, CANCELLABLE, STATUSES, TERMINAL, enc, facts, h, pretty, statusClass, took, when } from "./dom.js";

const JOB_POLL_MS = 1000;
const HIDDEN_POLL_MS = 5000;
const LOG_FIRST_BYTES = 64 * 1024; // opening a job shows at most this much of its log's tail
const LOG_KEEP_CHARS = 256 * 1024; // and keeps at most this much while tailing
const LOG_CHUNKS_PER_POLL = 16;

let current = null; // {id, job, etag, token, timer, source, logOffset, logDone, logText, logTrimmed}

const hooks = { changed: () => {}, selected: () => {} };

/** What the job list does when the open job changes (changed(job)) or another job opens or closes (selected()). */
export function onJob(changed, selected) {
  Object.assign(hooks, { changed, selected });
}

export function openJobId() {
  return current && current.id;
}

/** Open a job (initial: the job as already known) and follow it live; the same job again only resumes. */
export function openJob(id, initial) {
  if (current && current.id === id) return follow(current);
  if (current) unfollow(current);
  current = { id, job: null, etag: null, token: 0, timer: null, source: null, logOffset: null, logDone: false };
  Object.assign(current, { logText: "", logTrimmed: false });
  $("job").hidden = false;
  $("job-id").textContent = id;
  $("job-log").textContent = "";
  $("job-error").textContent = "";
  for (const el of ["job-status", "job-note", "job-progress-message", "job-log-size"]) $(el).textContent = "";
  $("job-facts").replaceChildren();
  if (initial) {
    current.job = initial;
    renderJob(current);
  }
  hooks.selected();
  follow(current);
}

// The job's live events: the stream reconnects by itself and resumes after the last event it saw. When the
// stream is refused (no such job), the page polls instead, which says why.
function follow(state) {
  if (state.source || (state.job && TERMINAL.has(state.job.status) && state.logDone)) return;
  state.logOffset = 0; // the stream sends the whole log, then each new piece
  const live = (handler) => (data) => state === current && handler(data);
  state.source = stream(`jobs/${enc(state.id)}/events`, {
    on: {
      status: live((data) => {
        state.job = data.job;
        $("job-error").textContent = "";
        renderJob(state);
        hooks.changed(state.job);
      }),
      progress: live((data) => {
        state.job = { ...state.job, progress: data.progress, progress_message: data.message };
        renderJob(state);
      }),
      log: live((data) => {
        appendLog(state, data.data);
        state.logOffset = data.offset + new TextEncoder().encode(data.data).length; // where polling would go on
      }),
      end: live(() => {
        unfollow(state);
        state.logDone = true;
        poll(state, 0); // the job as it ended, once
      }),
    },
    onError: () => {
      state.source = null;
      if (state === current) poll(state, 0);
    },
  });
}

/** Stop following the open job (its view is hidden); openJob with its id resumes. */
export function pauseJob() {
  if (current) unfollow(current);
}

/** Catch up with the open job (the tab is visible again). */
export function resumeJob() {
  if (current) follow(current);
}

function unfollow(state) {
  clearTimeout(state.timer);
  state.token++; // a poll in flight finds itself stale
  if (state.source) state.source.close();
  state.source = null;
}

export function closeJob() {
  if (current) unfollow(current);
  current = null;
  $("job").hidden = true;
  hooks.selected();
}

function poll(state, delay) {
  clearTimeout(state.timer);
  const token = ++state.token;
  state.timer = setTimeout(() => pollJob(state, token), delay);
}

async function pollJob(state, token) {
  const stale = () => state !== current || token !== state.token;
  try {
    const headers = state.etag ? { "If-None-Match": state.etag } : {};
    const response = await api("GET", "jobs/" + enc(state.id), { headers });
    if (stale()) return;
    if (response.status !== 304) {
      state.etag = response.headers.get("ETag");
      state.job = response.data;
      renderJob(state);
      hooks.changed(state.job);
    } else if (state.job && state.job.status === "running") {
      $("job-facts").replaceChildren(...jobFacts(state.job)); // the running time moves on
    }
    await tailLog(state, stale);
    if (stale()) return;
    $("job-error").textContent = "";
  } catch (exc) {
    if (stale()) return;
    $("job-error").textContent = exc.status === 404 ? `There is no job ${state.id}.` : exc.message;
    if (exc.status === 404) return;
  }
  if (stale()) return;
  if (state.job && TERMINAL.has(state.job.status) && state.logDone) return; // nothing more will change
  poll(state, document.hidden ? HIDDEN_POLL_MS : JOB_POLL_MS);
}

async function tailLog(state, stale) {
  const job = state.job;
  if (!job || state.logDone) return;
  if (state.logOffset === null) {
    state.logOffset = Math.max(0, (job.log_bytes || 0) - LOG_FIRST_BYTES);
    state.logTrimmed = state.logOffset > 0;
  }
  const ended = TERMINAL.has(job.status);
  if (!ended && (job.log_bytes || 0) <= state.logOffset) return;
  for (let i = 0; i < LOG_CHUNKS_PER_POLL; i++) {
    const query = [["offset", String(state.logOffset)]];
    const { data } = await api("GET", `jobs/${enc(state.id)}/logs`, { query });
    if (stale()) return;
    appendLog(state, data.data);
    state.logOffset = data.next_offset;
    if (data.complete) state.logDone = true;
    if (data.complete || data.next_offset >= data.size) break;
  }
}

function appendLog(state, text) {
  if (!text) return;
  const pre = $("job-log");
  const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  state.logText += text;
  if (state.logText.length > LOG_KEEP_CHARS) {
    const cut = state.logText.indexOf("\n", state.logText.length - LOG_KEEP_CHARS);
    state.logText = state.logText.slice(cut >= 0 ? cut + 1 : state.logText.length - LOG_KEEP_CHARS);
    state.logTrimmed = true;
  }
  pre.textContent = (state.logTrimmed ? "… (earlier output not shown)\n" : "") + state.logText;
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function jobFacts(job) {
  const rows = [
    ["Type", job.type],
    ["Project", job.project],
    ["Queue", job.queue],
    ["Worker", job.worker || "—"],
    ["Attempts", `${job.attempts} of ${job.max_attempts}`],
    ["Created", when(job.created_at, true), job.created_at],
    ["Started", when(job.started_at, true), job.started_at],
    ["Finished", when(job.finished_at, true), job.finished_at],
    ["Took", took(job)],
  ];
  if (job.exit_code !== null && job.exit_code !== undefined) rows.push(["Exit code", String(job.exit_code)]);
  if (job.venv) rows.push(["Virtualenv", job.venv]);
  if (job.workflow_id) {
    const link = h("a", { href: "#workflow=" + enc(job.workflow_id) }, job.step || job.workflow_id.slice(0, 8));
    rows.push(["Workflow step", link]);
  }
  return facts(rows);
}

function renderJob(state) {
  const job = state.job;
  const ended = TERMINAL.has(job.status);
  const status = $("job-status");
  status.className = statusClass(job.status);
  status.textContent = job.status;
  const note = $("job-note");
  if (job.cancel_requested && !ended) note.textContent = "cancelling…";
  else if (job.status === "queued") note.textContent = "waiting for a worker";
  else if (job.status === "waiting") note.textContent = "waiting for its parents";
  else if (job.status === "scheduled") note.textContent = job.run_at ? `due ${when(job.run_at, true)}` : "waiting";
  else note.textContent = "";

  const fraction = job.progress ?? (job.status === "completed" ? 1 : 0);
  const percent = Math.round(Math.min(1, Math.max(0, fraction)) * 100);
  const bar = $("job-progress");
  bar.className = `progress p-${STATUSES.includes(job.status) ? job.status : "unknown"}`;
  bar.classList.toggle("indeterminate", job.status === "running" && job.progress === null);
  bar.hidden = ended && job.progress === null && job.status !== "completed"; // stopped before it reported any
  bar.setAttribute("aria-valuenow", String(percent));
  $("job-progress-bar").style.width = percent + "%";
  $("job-progress-message").textContent = job.progress_message
    ? `${percent}% · ${job.progress_message}`
    : job.progress !== null
      ? `${percent}%`
      : "";

  $("job-facts").replaceChildren(...jobFacts(job));
  $("job-result-box").hidden = job.status !== "completed";
  $("job-result").textContent = job.result === null || job.result === undefined ? "(no result)" : pretty(job.result);
  $("job-failure-box").hidden = !job.error;
  $("job-failure-box").classList.toggle("failed", job.status !== "cancelled");
  $("job-failure-title").textContent = job.status === "cancelled" ? "Reason" : "Error";
  $("job-failure").textContent = job.error || "";
  $("job-params").textContent = pretty(job.params);
  $("job-log-size").textContent = `${job.log_bytes || 0} bytes`;
  $("job-log").classList.toggle("ended", ended);

  const cancel = $("cancel-button");
  cancel.hidden = !CANCELLABLE.has(job.status);
  cancel.disabled = Boolean(job.cancel_requested);
  cancel.textContent = job.cancel_requested ? "Cancelling…" : "Cancel job";
}

async function cancelJob() {
  const state = current;
  if (!state) return;
  const button = $("cancel-button");
  button.disabled = true;
  try {
    const { data } = await api("DELETE", "jobs/" + enc(state.id));
    if (state !== current) return;
    state.job = data;
    state.etag = null;
    renderJob(state);
    hooks.changed(data);
  } catch (exc) {
    if (state !== current) return;
    $("job-error").textContent = exc.message; // 409: it ended otherwise meanwhile; its stream shows how
    button.disabled = false;
  }
  follow(state);
}

$("cancel-button").addEventListener("click", cancelJob);
