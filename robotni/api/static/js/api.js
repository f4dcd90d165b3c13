// The one way the page talks to the API: JSON calls (`api`) and event streams (`stream`), both with the tab's
// token as a Bearer header when one is set.
//
// Streams are read with fetch(), not EventSource: EventSource cannot send an Authorization header, and where tokens
// are configured every call needs one. `stream` does what EventSource does: it parses text/event-stream, remembers
// the last event id, and after a dropped connection reconnects with Last-Event-ID (the API resumes there), waiting
// the `retry:` the server asked for. An HTTP error (404, 401, ...) ends it, as it ends an EventSource.

export const API = new URL("api/worker/", document.baseURI);
const TOKEN_KEY = "robotni.token";
const DEFAULT_RETRY_MS = 1000;
export const UNAUTHORIZED = "robotni:unauthorized"; // dispatched on document when a call is refused with 401

/** The tab's token: sessionStorage, so it lives as long as the tab and is never written to disk by the page. */
export const token = {
  get() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch {
      return "";
    }
  },
  set(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      /* storage refused: the token lasts until the page is left */
    }
  },
};

class ApiError extends Error {
  constructor(status, body, message) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function headers(extra = {}) {
  const all = { Accept: "application/json", ...extra };
  const secret = token.get();
  if (secret) all.Authorization = `Bearer ${secret}`;
  return all;
}

function urlOf(path, query) {
  const url = new URL(path, API);
  for (const [name, value] of query || []) url.searchParams.append(name, value);
  return url;
}

async function refusal(response) {
  const text = await response.text().catch(() => "");
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401) document.dispatchEvent(new CustomEvent(UNAUTHORIZED));
  const message = (data && typeof data.message === "string" && data.message) || response.statusText;
  return new ApiError(response.status, data, `${response.status}: ${message || "request failed"}`);
}

/** A JSON call: {status, headers, data}; throws ApiError (status 0 when the API cannot be reached). */
export async function api(method, path, { body, query, headers: extra } = {}) {
  const init = { method, cache: "no-store", headers: headers(extra) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(urlOf(path, query), init);
  } catch (exc) {
    throw new ApiError(0, null, `cannot reach Robotni (${exc.message})`);
  }
  if (response.status === 304) return { status: 304, headers: response.headers, data: null };
  if (!response.ok) throw await refusal(response);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  return { status: response.status, headers: response.headers, data };
}

/**
 * Follow a text/event-stream: `on[eventName](data)` for each event (data parsed as JSON), `onOpen()` each time the
 * stream (re)opens, `onError(ApiError)` once if the API refuses it. Returns {close()}.
 */
export function stream(path, { query, on = {}, onOpen, onError } = {}) {
  const controller = new AbortController();
  let lastId = null;
  let retry = DEFAULT_RETRY_MS;
  let timer = null;
  let closed = false;

  const close = () => {
    closed = true;
    clearTimeout(timer);
    controller.abort();
  };
  const again = () => {
    if (!closed) timer = setTimeout(connect, retry);
  };
  const dispatch = (type, data, id) => {
    if (id !== null) lastId = id;
    const handler = on[type];
    if (!handler || closed || !data) return;
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      return; // not ours to understand
    }
    handler(parsed);
  };

  async function connect() {
    const extra = { Accept: "text/event-stream" };
    if (lastId !== null) extra["Last-Event-ID"] = lastId;
    let response;
    try {
      const init = { headers: headers(extra), cache: "no-store", signal: controller.signal };
      response = await fetch(urlOf(path, query), init);
    } catch {
      return again(); // unreachable or dropped before the headers: try again, as EventSource does
    }
    if (!response.ok || !response.body) {
      const error = await refusal(response);
      if (!closed && onError) onError(error);
      closed = true;
      return;
    }
    if (onOpen) onOpen();
    try {
      await readEvents(response.body, dispatch, (ms) => (retry = ms));
    } catch {
      /* the connection dropped: resume below */
    }
    again();
  }

  connect();
  return { close };
}

/** Parse the event-stream format (the HTML standard, "Server-sent events") as it arrives. */
async function readEvents(body, dispatch, setRetry) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let type = "";
  let data = [];
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(buffer);
      if (!match || (match[0] === "\r" && match.index === buffer.length - 1)) break; // a \r\n may be split
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === "") {
        dispatch(type || "message", data.join("\n"), id);
        type = "";
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: the keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = text;
      else if (field === "data") data.push(text);
      else if (field === "id" && !text.includes("\0")) id = text;
      else if (field === "retry" && /^\d+$/.test(text)) setRetry(Number(text));
    }
  }
}
