// What the job form and the schedule form share: the worker types, inputs made from a type's params JSON Schema,
// and a 422's field errors shown next to their inputs.

import { api } from "./api.js";
import { h, pretty } from "./dom.js";

let typesLoading = null;

/** The worker types (GET /types), loaded once for every form; a failed load is tried again next time. */
export function workerTypes() {
  if (!typesLoading) {
    typesLoading = api("GET", "types").then(
      ({ data }) => data,
      (exc) => {
        typesLoading = null;
        throw exc;
      },
    );
  }
  return typesLoading;
}

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

const messages = (value) =>
  Array.isArray(value) ? value.map(String) : value && typeof value === "object" ? [pretty(value)] : [String(value)];

/** A form's error slots (`[data-error-for=key]`), its banner, and a 422's errors placed in them. */
export class FormErrors {
  constructor(form, banner) {
    this.form = form;
    this.banner = banner;
  }

  clear() {
    for (const el of this.form.querySelectorAll("[data-error-for]")) el.textContent = "";
    for (const el of this.form.querySelectorAll(".invalid")) el.classList.remove("invalid");
    this.banner.textContent = "";
  }

  slot(key) {
    for (const el of this.form.querySelectorAll("[data-error-for]")) if (el.dataset.errorFor === key) return el;
    return null;
  }

  show(key, message) {
    const slot = this.slot(key) || this.banner;
    slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
    const field = slot.closest(".field");
    const input = field && field.querySelector("input, select, textarea");
    if (input) input.classList.add("invalid");
  }

  /** Field errors of a 422, each next to its input: {json: {field: [...], params: [...] | {path: [...]}}}. */
  showResponse(body, params) {
    const errors = (body && body.errors) || {};
    let shown = false;
    for (const [location, fields] of Object.entries(errors)) {
      if (!fields || typeof fields !== "object" || Array.isArray(fields)) {
        this.show("", `${location}: ${messages(fields).join(" ")}`);
        shown = true;
        continue;
      }
      for (const [field, value] of Object.entries(fields)) {
        shown = true;
        if (field !== "params" || !params || Array.isArray(value) || !value || typeof value !== "object") {
          const known = Boolean(this.slot(field));
          this.show(known ? field : "", (known ? "" : `${field}: `) + messages(value).join(" "));
          continue;
        }
        for (const [path, list] of Object.entries(value)) params.showError(this, path, messages(list).join(" "));
      }
    }
    if (!shown) this.show("", (body && body.message) || "refused");
  }
}

/** The inputs of a type's params (a fieldset), and the params object they make. */
export class ParamsFields {
  constructor(box, prefix = "") {
    this.box = box;
    this.prefix = prefix;
    this.inputs = []; // {name, kind, prop, el}
    this.extra = null; // the free JSON object for types that accept more than they declare
  }

  render(type) {
    this.inputs = [];
    this.extra = null;
    this.box.replaceChildren(h("legend", {}, "Params"));
    if (!type) return;
    const schema = type.params_schema || {};
    const properties = schema.properties && typeof schema.properties === "object" ? schema.properties : {};
    const required = new Set(Array.isArray(schema.required) ? schema.required : []);
    Object.entries(properties).forEach(([name, raw], i) => {
      const prop = raw && typeof raw === "object" ? raw : {};
      const kind = kindOf(prop);
      const id = `${this.prefix}param-${i}`;
      const el = inputFor(kind, prop, id, required.has(name));
      const label = h("label", { for: id }, h("span", { class: "name" }, name));
      if (required.has(name)) label.append(" ", h("span", { class: "required" }, "required"));
      const field = h("div", { class: el.type === "checkbox" ? "field check" : "field" });
      if (el.type === "checkbox") field.append(h("div", { class: "check-row" }, el, label));
      else field.append(label, el);
      if (prop.description) field.append(h("p", { class: "help" }, String(prop.description)));
      const hint = constraintHint(prop);
      if (hint) field.append(h("p", { class: "help hint" }, hint));
      field.append(h("p", { class: "error", "data-error-for": "params." + name }));
      this.box.append(field);
      this.inputs.push({ name, kind, prop, el });
    });
    if (!this.inputs.length) this.box.append(h("p", { class: "help" }, "This type declares no params."));
    if (schema.additionalProperties !== false) {
      const id = `${this.prefix}params-extra`;
      this.extra = h("textarea", { id, rows: 3, spellcheck: "false", class: "code", placeholder: "{}" });
      this.box.append(
        h(
          "details",
          { class: "more" },
          h("summary", {}, this.inputs.length ? "Other params (JSON)" : "Params as JSON"),
          h(
            "div",
            { class: "field" },
            h("label", { for: id }, "A JSON object, merged under the fields above"),
            this.extra,
            h("p", { class: "error", "data-error-for": "params._extra" }),
          ),
        ),
      );
    }
  }

  /** The params object from the inputs (null if one is not valid); fields left empty use the type's defaults. */
  collect(errors) {
    let ok = true;
    const fail = (key, message) => {
      errors.show(key, message);
      ok = false;
    };
    let params = {};
    if (this.extra && this.extra.value.trim()) {
      try {
        params = JSON.parse(this.extra.value);
        if (!params || typeof params !== "object" || Array.isArray(params)) throw new Error("not a JSON object");
      } catch (exc) {
        fail("params._extra", `Not a JSON object: ${exc.message}`);
        params = {};
      }
    }
    for (const { name, kind, prop, el } of this.inputs) {
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

  /** A params error (path `name` or `name.sub`) next to its input, else under the whole fieldset. */
  showError(errors, path, message) {
    const input = this.inputs.find((p) => path === p.name || path.startsWith(p.name + "."));
    if (input) {
      const rest = path === input.name ? "" : path.slice(input.name.length + 1) + ": ";
      errors.show("params." + input.name, rest + message);
    } else {
      errors.show("params", (path === "_schema" ? "" : `${path}: `) + message);
    }
  }
}

/** A type's description, as both forms show it under their type select. */
export function describeType(type) {
  if (!type) return [];
  return [
    h("span", { class: "block" }, type.description || ""),
    h("span", { class: "block" }, `Queue ${type.queue}, time limit ${Math.round(type.soft_time_limit)} s.`),
  ];
}
