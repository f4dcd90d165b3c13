// The token field: the tab's API token (sessionStorage), and what it covers (GET /whoami). A scoped token's
// projects fill the project fields' suggestions, and a project field left at one the token does not cover moves
// to the token's first project. The lists need nothing here: the API shows a token only its own projects' data.

import { UNAUTHORIZED, api, token } from "./api.js";
import { $, h } from "./dom.js";

const PROJECT_FIELDS = ["project-input", "schedule-project", "planner-project"];

function say(text, alarm = false) {
  const status = $("token-status");
  status.textContent = text;
  status.classList.toggle("error", alarm);
}

function applyScope(projects) {
  $("project-list").replaceChildren(...(projects || []).map((name) => h("option", { value: name })));
  if (!projects || !projects.length) return;
  for (const id of PROJECT_FIELDS) {
    const input = $(id);
    if (!projects.includes(input.value.trim())) input.value = projects[0];
  }
}

/** Ask the API what the tab's token covers, and say it. */
async function describeToken() {
  const held = Boolean(token.get());
  try {
    const { data } = await api("GET", "whoami");
    if (!data.token_required) {
      say(held ? "No tokens are configured here: the token is not needed." : "No token needed (this machine only).");
    } else if (data.projects === null) {
      say("Token for every project.");
    } else {
      say(`Token for ${data.projects.length === 1 ? "project" : "projects"}: ${data.projects.join(", ")}.`);
    }
    applyScope(data.projects);
  } catch (exc) {
    if (exc.status === 401) return; // said by the UNAUTHORIZED listener below
    say(`Could not check the token: ${exc.message}`, true);
  }
}

function use(value) {
  token.set(value);
  // Everything on the page came from the old token (lists, open streams): start again with the new one.
  location.reload();
}

export function startToken() {
  const input = $("token-input");
  input.value = token.get();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    use(input.value.trim());
  });
  $("token-forget").addEventListener("click", () => use(""));
  document.addEventListener(UNAUTHORIZED, () => {
    say(token.get() ? "This token is not valid here." : "This Robotni needs an API token: enter it here.", true);
    input.setAttribute("aria-invalid", "true");
  });
  describeToken();
}
