// Robotni's page: plain DOM and ES modules, no framework and no build step. Each view is a module under js/;
// this one starts the token field and the router that shows the view the address names.

import { dashboardView } from "./js/dashboard.js";
import { jobsView } from "./js/jobs.js";
import "./js/planner.js";
import { startRouter } from "./js/router.js";
import { schedulesView } from "./js/schedules.js";
import { startToken } from "./js/token.js";
import { workflowsView } from "./js/workflows.js";

// The skip link moves the focus without touching the address: a hash there names a view.
document.querySelector("a.skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});
startToken();
startRouter({ jobs: jobsView, schedules: schedulesView, workflows: workflowsView, dashboard: dashboardView });
