// Small DOM and formatting helpers every view shares. Everything that comes from the API is inserted as text
// (textContent, append(string), setAttribute); nothing is ever parsed as HTML.

export const STATUSES = ["waiting", "queued", "scheduled", "running", "completed", "failed", "cancelled", "timed_out"];
export const TERMINAL = new Set(["completed", "failed", "cancelled", "timed_out"]);
export const CANCELLABLE = new Set(["waiting", "queued", "scheduled", "running"]);

export const $ = (id) => document.getElementById(id);
export const enc = encodeURIComponent;
const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.setAttribute("class", value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) el.append(child);
  }
  return el;
}

/** An element with attributes (set as attributes, never as HTML) and children (nodes or text). */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for an SVG element. */
export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Preferences kept across visits (never the token: that is per tab, see api.js). */
export const prefs = {
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

export function statusClass(status) {
  return "status s-" + (STATUSES.includes(status) ? status : "unknown");
}

export function statusBadge(status) {
  return h("span", { class: statusClass(status) }, status);
}

export function when(iso, short = false) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  if (short && date.toDateString() === new Date().toDateString()) return date.toLocaleTimeString();
  return short
    ? date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" })
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function duration(ms) {
  if (ms < 0 || !Number.isFinite(ms)) return "—";
  const s = ms / 1000;
  if (s < 10) return s.toFixed(1) + " s";
  if (s < 60) return Math.round(s) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function took(job) {
  if (!job.started_at) return "—";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  return duration(end - new Date(job.started_at));
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** The browser's IANA timezone, the default clock of a schedule made here. */
export function localZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export function shortId(id) {
  return h("a", { href: "#job=" + enc(id), title: id, class: "id" }, id.slice(0, 8));
}

/** A definition list's rows: [term, value, title?]. */
export function facts(rows) {
  return rows.map(([term, value, title]) => h("div", { class: "fact" }, h("dt", {}, term), h("dd", { title }, value)));
}

/** Runs fn every `delay()` ms while started; `run()` runs it now (and then keeps the rhythm). One timer at a time. */
export class Ticker {
  constructor(fn, delay) {
    this.fn = fn;
    this.delay = delay;
    this.timer = null;
    this.on = false;
    this.seq = 0;
  }

  start() {
    this.on = true;
    this.run();
  }

  stop() {
    this.on = false;
    this.seq++;
    clearTimeout(this.timer);
  }

  async run() {
    clearTimeout(this.timer);
    const seq = ++this.seq;
    try {
      await this.fn();
    } finally {
      if (this.on && seq === this.seq) this.timer = setTimeout(() => this.run(), this.delay());
    }
  }
}

/** A button that asks once more before doing something that cannot be undone (no modal: keyboard stays put). */
export function confirmTwice(button, label, action) {
  if (button.dataset.armed) {
    delete button.dataset.armed;
    action();
    return;
  }
  const original = button.textContent;
  button.dataset.armed = "1";
  button.textContent = label;
  setTimeout(() => {
    if (!button.dataset.armed) return;
    delete button.dataset.armed;
    button.textContent = original;
  }, 4000);
}
