// Which view the address's hash shows: #jobs (the default), #job=ID, #schedules, #schedule=ID, #workflows,
// #workflow=ID, #dashboard. Links are plain <a href="#..."> (the back button works); code moves with navigate().

const ROUTES = [
  [/^#?(?:jobs)?$/, "jobs"],
  [/^#job=(.+)$/, "jobs"],
  [/^#schedules$/, "schedules"],
  [/^#schedule=(.+)$/, "schedules"],
  [/^#workflows$/, "workflows"],
  [/^#workflow=(.+)$/, "workflows"],
  [/^#dashboard$/, "dashboard"],
];

let views = {};
let active = null;
let shown = null; // the hash shown: a back step fires both hashchange and popstate

function parse(hash) {
  for (const [pattern, name] of ROUTES) {
    const match = pattern.exec(hash);
    if (!match) continue;
    try {
      return [name, match[1] === undefined ? null : decodeURIComponent(match[1])];
    } catch {
      return [name, null];
    }
  }
  return ["jobs", null];
}

function route() {
  if (location.hash === shown) return;
  shown = location.hash;
  const [name, arg] = parse(location.hash);
  if (active && active !== name) views[active].hide();
  for (const [key, view] of Object.entries(views)) view.el.hidden = key !== name;
  for (const link of document.querySelectorAll("nav.views a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  active = name;
  views[name].show(arg);
}

/** Go to a hash (pushing it to the history) and show its view. */
export function navigate(hash) {
  if (location.hash !== hash) history.pushState(null, "", hash || location.pathname + location.search);
  route();
}

/** views: {name: {el, show(arg), hide()}}; show(arg) runs on every visit, arg from the hash or null. */
export function startRouter(all) {
  views = all;
  window.addEventListener("hashchange", route);
  window.addEventListener("popstate", route);
  route();
}
