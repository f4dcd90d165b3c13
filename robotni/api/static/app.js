// Robotni's try-it page: plain DOM, no framework. Everything that comes from the API is inserted as text
// (textContent, append(string)); nothing is ever parsed as HTML.
"use strict";

(() => {
  const API = new URL("api/worker/", document.baseURI);
  const STATUSES = ["waiting", "queued", "scheduled", "running", "completed", "failed", "cancelled", "timed_out"];
  const TERMINAL = new Set(["completed", "failed", "cancelled", "timed_out"]);
  const CANCELLABLE = new Set(["waiting", "queued", "scheduled", "running"]);
  const PAGE_SIZE = 20;
  const JOB_POLL_MS = 1000;
  const HIDDEN_POLL_MS = 5000;
  const LIST_ACTIVE_POLL_MS = 3000; // while a listed job is still waiting or running
  const LIST_IDLE_POLL_MS = 15000;
  const LOG_FIRST_BYTES = 64 * 1024; // opening a job shows at most this much of its log's tail
  const LOG_KEEP_CHARS = 256 * 1024; // and keeps at most this much while tailing
  const LOG_CHUNKS_PER_POLL = 16;

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  // --- small helpers ---------------------------------------------------------------------------------

  /** An element with attributes (set as attributes, never as HTML) and children (nodes or text). */
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") el.className = value;
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child !== undefined && child !== null && child !== false) el.append(child);
    }
    return el;
  }

  const store = {
    get(key) {
      try {
        return localStorage.getItem("robotni." + key);
      } catch {
        return null;
      }
    },
    set(key, value) {
      try {
        localStorage.setItem("robotni." + key, value);
      } catch {
        /* private mode: nothing to remember */
      }
    },
  };

  function statusClass(status) {
    return "status s-" + (STATUSES.includes(status) ? status : "unknown");
  }

  function when(iso, short = false) {
    if (!iso) return "—";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    if (short && date.toDateString() === new Date().toDateString()) return date.toLocaleTimeString();
    return short
      ? date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" })
      : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }

  function duration(ms) {
    if (ms < 0 || !Number.isFinite(ms)) return "—";
    const s = ms / 1000;
    if (s < 10) return s.toFixed(1) + " s";
    if (s < 60) return Math.round(s) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function took(job) {
    if (!job.started_at) return "—";
    const end = job.finished_at ? new Date(job.finished_at) : new Date();
    return duration(end - new Date(job.started_at));
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  // --- the API ---------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body, message) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, { body, query, headers } = {}) {
    const url = new URL(path, API);
    for (const [name, value] of query || []) url.searchParams.append(name, value);
    const init = { method, cache: "no-store", headers: { Accept: "application/json", ...headers } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (exc) {
      throw new ApiError(0, null, `cannot reach Robotni (${exc.message})`);
    }
    if (response.status === 304) return { status: 304, headers: response.headers, data: null };
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message = (data && typeof data.message === "string" && data.message) || response.statusText;
      throw new ApiError(response.status, data, `${response.status}: ${message || "request failed"}`);
    }
    return { status: response.status, headers: response.headers, data };
  }

  // --- the submit form -------------------------------------------------------------------------------

  const form = $("submit-form");
  const typeSelect = $("type-select");
  const paramsBox = $("params-fields");
  let types = new Map();
  let paramInputs = []; // {name, kind, prop, el}
  let extraInput = null; // the free JSON object for types that accept more than they declare

  function kindOf(prop) {
    if (Array.isArray(prop.enum) && prop.enum.length) return "enum";
    return ["string", "number", "integer", "boolean"].includes(prop.type) ? prop.type : "json";
  }

  function constraintHint(prop) {
    const parts = [];
    if (prop.minimum !== undefined && prop.maximum !== undefined) parts.push(`${prop.minimum} to ${prop.maximum}`);
    else if (prop.minimum !== undefined) parts.push(`at least ${prop.minimum}`);
    else if (prop.maximum !== undefined) parts.push(`at most ${prop.maximum}`);
    if (prop.type === "integer") parts.push("whole number");
    const kind = kindOf(prop);
    if (kind === "json") parts.push(prop.type ? `JSON (${[].concat(prop.type).join(" or ")})` : "JSON");
    return parts.join(", ");
  }

  function inputFor(kind, prop, id, required) {
    const has = Object.prototype.hasOwnProperty.call(prop, "default");
    if (kind === "enum") {
      const select = h("select", { id });
      if (!required || !has) select.append(h("option", { value: "" }, "—"));
      prop.enum.forEach((choice, i) => {
        const text = typeof choice === "string" ? choice : JSON.stringify(choice);
        const option = h("option", { value: String(i) }, text);
        if (has && JSON.stringify(choice) === JSON.stringify(prop.default)) option.selected = true;
        select.append(option);
      });
      return select;
    }
    if (kind === "boolean" && has) {
      const box = h("input", { id, type: "checkbox" });
      box.checked = Boolean(prop.default);
      return box;
    }
    if (kind === "boolean") {
      return h("select", { id }, h("option", { value: "" }, "—"), h("option", {}, "true"), h("option", {}, "false"));
    }
    if (kind === "number" || kind === "integer") {
      const input = h("input", {
        id,
        type: "number",
        step: kind === "integer" ? "1" : "any",
        min: prop.minimum,
        max: prop.maximum,
        inputmode: kind === "integer" ? "numeric" : "decimal",
      });
      if (has) input.value = String(prop.default);
      return input;
    }
    if (kind === "string") {
      const input = h("input", { id, type: "text", maxlength: prop.maxLength, autocomplete: "off", spellcheck: "false" });
      if (has) input.value = String(prop.default);
      return input;
    }
    const area = h("textarea", { id, rows: 3, spellcheck: "false", class: "code" });
    if (has) area.value = pretty(prop.default);
    return area;
  }

  function renderParams(type) {
    paramInputs = [];
    extraInput = null;
    paramsBox.replaceChildren(h("legend", {}, "Params"));
    if (!type) return;
    const schema = type.params_schema || {};
    const properties = schema.properties && typeof schema.properties === "object" ? schema.properties : {};
    const required = new Set(Array.isArray(schema.required) ? schema.required : []);
    Object.entries(properties).forEach(([name, raw], i) => {
      const prop = raw && typeof raw === "object" ? raw : {};
      const kind = kindOf(prop);
      const id = `param-${i}`;
      const el = inputFor(kind, prop, id, required.has(name));
      const label = h("label", { for: id }, h("span", { class: "name" }, name));
      if (required.has(name)) label.append(" ", h("span", { class: "required" }, "required"));
      const field = h("div", { class: kind === "boolean" && el.type === "checkbox" ? "field check" : "field" });
      if (el.type === "checkbox") field.append(h("div", { class: "check-row" }, el, label));
      else field.append(label, el);
      if (prop.description) field.append(h("p", { class: "help" }, String(prop.description)));
      const hint = constraintHint(prop);
      if (hint) field.append(h("p", { class: "help hint" }, hint));
      field.append(h("p", { class: "error", "data-error-for": "params." + name }));
      paramsBox.append(field);
      paramInputs.push({ name, kind, prop, el });
    });
    if (!paramInputs.length) paramsBox.append(h("p", { class: "help" }, "This type declares no params."));
    if (schema.additionalProperties !== false) {
      extraInput = h("textarea", { id: "params-extra", rows: 3, spellcheck: "false", class: "code", placeholder: "{}" });
      const details = h(
        "details",
        { class: "more" },
        h("summary", {}, paramInputs.length ? "Other params (JSON)" : "Params as JSON"),
        h(
          "div",
          { class: "field" },
          h("label", { for: "params-extra" }, "A JSON object, merged under the fields above"),
          extraInput,
          h("p", { class: "error", "data-error-for": "params._extra" }),
        ),
      );
      paramsBox.append(details);
    }
  }

  function showType() {
    const type = types.get(typeSelect.value);
    const info = $("type-description");
    info.replaceChildren();
    if (type) {
      info.append(
        h("span", { class: "block" }, type.description || ""),
        h("span", { class: "block" }, `Queue ${type.queue}, time limit ${Math.round(type.soft_time_limit)} s.`),
      );
      store.set("type", type.name);
    }
    renderParams(type);
    clearErrors();
  }

  async function loadTypes() {
    try {
      const { data } = await api("GET", "types");
      types = new Map(data.map((t) => [t.name, t]));
      const remembered = store.get("type");
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

  function clearErrors() {
    for (const el of form.querySelectorAll("[data-error-for]")) el.textContent = "";
    for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
    $("form-error").textContent = "";
  }

  function errorSlot(key) {
    for (const el of form.querySelectorAll("[data-error-for]")) if (el.dataset.errorFor === key) return el;
    return null;
  }

  function showError(key, message) {
    const slot = errorSlot(key) || $("form-error");
    slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
    const field = slot.closest(".field");
    const input = field && field.querySelector("input, select, textarea");
    if (input) input.classList.add("invalid");
  }

  const messages = (value) =>
    Array.isArray(value) ? value.map(String) : value && typeof value === "object" ? [pretty(value)] : [String(value)];

  /** Field errors of a 422, each next to its input: {json: {type|project|venv: [...], params: [...] | {path: [...]}}}. */
  function showFieldErrors(body) {
    const errors = (body && body.errors) || {};
    let shown = false;
    for (const [location, fields] of Object.entries(errors)) {
      if (!fields || typeof fields !== "object" || Array.isArray(fields)) {
        showError("", `${location}: ${messages(fields).join(" ")}`);
        shown = true;
        continue;
      }
      for (const [field, value] of Object.entries(fields)) {
        shown = true;
        if (field !== "params" || Array.isArray(value) || !value || typeof value !== "object") {
          showError(errorSlot(field) ? field : "", (errorSlot(field) ? "" : `${field}: `) + messages(value).join(" "));
          continue;
        }
        for (const [path, list] of Object.entries(value)) {
          const input = paramInputs.find((p) => path === p.name || path.startsWith(p.name + "."));
          if (input) {
            const rest = path === input.name ? "" : path.slice(input.name.length + 1) + ": ";
            showError("params." + input.name, rest + messages(list).join(" "));
          } else {
            showError("params", (path === "_schema" ? "" : `${path}: `) + messages(list).join(" "));
          }
        }
      }
    }
    if (!shown) showError("", (body && body.message) || "the job was refused");
  }

  /** The params object from the inputs; fields left empty are left out, so the type's defaults apply. */
  function collectParams() {
    let ok = true;
    const fail = (key, message) => {
      showError(key, message);
      ok = false;
    };
    let params = {};
    if (extraInput && extraInput.value.trim()) {
      try {
        params = JSON.parse(extraInput.value);
        if (!params || typeof params !== "object" || Array.isArray(params)) throw new Error("not a JSON object");
      } catch (exc) {
        fail("params._extra", `Not a JSON object: ${exc.message}`);
        params = {};
      }
    }
    for (const { name, kind, prop, el } of paramInputs) {
      const key = "params." + name;
      if (kind === "enum") {
        if (el.value !== "") params[name] = prop.enum[Number(el.value)];
      } else if (kind === "boolean") {
        if (el.type === "checkbox") params[name] = el.checked;
        else if (el.value !== "") params[name] = el.value === "true";
      } else if (kind === "number" || kind === "integer") {
        if (el.validity.badInput) fail(key, "Enter a number.");
        else if (el.value !== "") params[name] = Number(el.value);
      } else if (kind === "string") {
        if (el.value !== "") params[name] = el.value;
      } else if (el.value.trim() !== "") {
        try {
          params[name] = JSON.parse(el.value);
        } catch (exc) {
          fail(key, `Not valid JSON: ${exc.message}`);
        }
      }
    }
    return ok ? params : null;
  }

  async function submitJob(event) {
    event.preventDefault();
    clearErrors();
    const type = typeSelect.value;
    if (!types.has(type)) {
      showError("type", "Pick a worker type.");
      return;
    }
    const params = collectParams();
    if (!params) return;
    const body = { type, params };
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
      if (project) store.set("project", project);
      openJob(data.id, data);
      loadList();
    } catch (exc) {
      status.textContent = "";
      if (exc.status === 422) showFieldErrors(exc.body);
      else showError("", exc.message);
    } finally {
      button.disabled = false;
    }
  }

  // --- the job list ----------------------------------------------------------------------------------

  const list = { jobs: [], next: null, seq: 0, timer: null, rendered: "" };

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

  /** The first page again (as long as what is shown), or with append the page after the last one shown. */
  async function loadList({ append = false } = {}) {
    const seq = ++list.seq;
    clearTimeout(list.timer);
    const limit = append ? PAGE_SIZE : Math.min(500, Math.max(PAGE_SIZE, list.jobs.length));
    try {
      const { data } = await api("GET", "jobs", { query: listQuery(append ? list.next : null, limit) });
      if (seq !== list.seq) return;
      list.jobs = append ? list.jobs.concat(data.jobs) : data.jobs;
      list.next = data.next_cursor;
      $("jobs-error").textContent = "";
      renderList();
    } catch (exc) {
      if (seq !== list.seq) return;
      $("jobs-error").textContent = `Could not load jobs: ${exc.message}`;
    }
    scheduleList();
  }

  function scheduleList() {
    clearTimeout(list.timer);
    const active = list.jobs.some((job) => !TERMINAL.has(job.status));
    const delay = document.hidden ? LIST_IDLE_POLL_MS : active ? LIST_ACTIVE_POLL_MS : LIST_IDLE_POLL_MS;
    list.timer = setTimeout(() => loadList(), delay);
  }

  function resetList() {
    list.jobs = [];
    list.next = null;
    loadList();
  }

  function renderList(force = false) {
    const openId = current && current.id;
    const key = JSON.stringify([openId, list.next, list.jobs]);
    if (!force && key === list.rendered) return;
    list.rendered = key;
    const rows = list.jobs.map((job) =>
      h(
        "tr",
        { "data-job-id": job.id, class: job.id === openId ? "selected" : null },
        h("td", {}, h("span", { class: statusClass(job.status) }, job.status)),
        h("td", {}, job.type),
        h("td", {}, job.project),
        h("td", { title: job.created_at }, when(job.created_at, true)),
        h("td", {}, took(job)),
        h("td", { class: "id" }, h("a", { href: "#job=" + enc(job.id), title: job.id }, job.id.slice(0, 8))),
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

  // --- one job ---------------------------------------------------------------------------------------

  let current = null; // {id, job, etag, token, timer, source, logOffset, logDone, logText, logTrimmed}

  function openJob(id, initial) {
    if (!current || current.id !== id) {
      if (current) unfollow(current);
      current = { id, job: null, etag: null, token: 0, timer: null, logOffset: null, logDone: false, logText: "" };
      current.logTrimmed = false;
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
      renderList(true);
    }
    const hash = "#job=" + enc(id);
    if (location.hash !== hash) history.pushState(null, "", hash);
    follow(current);
  }

  // The job's live events (Server-Sent Events): the browser reconnects by itself and resumes after the last
  // event it saw. Without EventSource, or when the stream cannot open (no such job), the page polls instead.
  function follow(state) {
    if (!window.EventSource) return poll(state, 0);
    if (state.source || (state.job && TERMINAL.has(state.job.status) && state.logDone)) return;
    const source = new EventSource(new URL(`jobs/${enc(state.id)}/events`, API));
    state.source = source;
    state.logOffset = 0; // the stream sends the whole log, then each new piece
    const live = (handler) => (event) => state === current && state.source === source && handler(JSON.parse(event.data));
    source.addEventListener("status", live((data) => {
      state.job = data.job;
      $("job-error").textContent = "";
      renderJob(state);
      patchListRow(state.job);
    }));
    source.addEventListener("progress", live((data) => {
      state.job = { ...state.job, progress: data.progress, progress_message: data.message };
      renderJob(state);
    }));
    source.addEventListener("log", live((data) => {
      appendLog(state, data.data);
      state.logOffset = data.offset + new TextEncoder().encode(data.data).length; // where polling would go on
    }));
    source.addEventListener("end", live(() => {
      unfollow(state);
      state.logDone = true;
      poll(state, 0); // the job as it ended, once
    }));
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED || state.source !== source) return; // reconnecting by itself
      unfollow(state);
      poll(state, 0);
    };
  }

  function unfollow(state) {
    clearTimeout(state.timer);
    if (state.source) state.source.close();
    state.source = null;
  }

  function closeJob() {
    if (current) unfollow(current);
    current = null;
    $("job").hidden = true;
    if (location.hash) history.pushState(null, "", location.pathname + location.search);
    renderList(true);
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
        patchListRow(state.job);
      } else if (state.job && state.job.status === "running") {
        $("job-facts").replaceChildren(...facts(state.job)); // the running time moves on
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

  function facts(job) {
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
    return rows.map(([term, value, title]) =>
      h("div", { class: "fact" }, h("dt", {}, term), h("dd", { title }, value)),
    );
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

    $("job-facts").replaceChildren(...facts(job));
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
      patchListRow(data);
    } catch (exc) {
      if (state !== current) return;
      $("job-error").textContent = exc.message; // 409: it ended otherwise meanwhile; its stream shows how
      button.disabled = false;
    }
    follow(state);
  }

  function followHash() {
    const match = /^#job=(.+)$/.exec(location.hash);
    if (!match) {
      if (current) closeJob();
      return;
    }
    let id;
    try {
      id = decodeURIComponent(match[1]);
    } catch {
      return;
    }
    if (!current || current.id !== id) openJob(id);
  }

  // --- wiring ----------------------------------------------------------------------------------------

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
  $("refresh-button").addEventListener("click", () => loadList());
  $("more-button").addEventListener("click", () => loadList({ append: true }));
  $("cancel-button").addEventListener("click", cancelJob);
  $("close-button").addEventListener("click", closeJob);
  $("jobs-body").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-job-id]");
    if (!row || event.target.closest("a")) return; // the link itself changes the hash
    openJob(row.dataset.jobId);
  });
  window.addEventListener("hashchange", followHash);
  window.addEventListener("popstate", followHash);
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    loadList();
    if (current) follow(current);
  });

  const project = store.get("project");
  if (project) $("project-input").value = project;
  loadTypes();
  loadList();
  followHash();
})();
