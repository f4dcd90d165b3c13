"""The page's views in headless Chromium where tokens are set: the token field, schedules (from the form and from a
prompt), a workflow's live graph, the dashboard's charts, 375 px and the keyboard. Screenshots go to each test's
tmp_path.
"""

from __future__ import annotations

import re

import pytest

from tests.browser import chromium, expect, tab
from tests.stack import running_stack

ADMIN = "admin-token-" + "a" * 20
SHOP = "shop-token-" + "s" * 20
PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One embedded stack with tokens (an all-projects one and one for `shop`) and beat, for schedules' runs."""
    with running_stack(tmp_path_factory.mktemp("views"), {"ROBOTNI_API_TOKENS": f"{ADMIN}:*;{SHOP}:shop"}) as running:
        running.http.headers["Authorization"] = f"Bearer {ADMIN}"
        running.start_beat()
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, stack):
    """A tab holding the all-projects token."""
    with tab(browser, stack.url + "/", token=ADMIN) as opened:
        expect(opened.locator("#token-status")).to_have_text("Token for every project.")
        yield opened


def make_schedule(stack, name: str, project: str, **fields) -> dict:
    body = {"name": name, "type": "add", "params": {"x": 1, "y": 2}, "project": project, "interval_seconds": 3600}
    response = stack.http.post(stack.api("/schedules"), json=body | fields)
    assert response.status_code == 201, response.text
    return response.json()


def diamond(stack, name: str) -> dict:
    """a runs until cancelled; b and c run whatever a became; d waits for both."""
    steps = [
        {"name": "a", "type": "sleeper", "params": {"seconds": 60}},
        {"name": "b", "type": "add", "params": {"x": 1, "y": 2}, "depends_on": ["a"], "on_parent_failure": "run"},
        {"name": "c", "type": "add", "params": {"x": 3, "y": 4}, "depends_on": ["a"], "on_parent_failure": "run"},
        {"name": "d", "type": "add", "params": {"x": 5, "y": 6}, "depends_on": ["b", "c"]},
    ]
    response = stack.http.post(stack.api("/workflows"), json={"name": name, "steps": steps})
    assert response.status_code == 202, response.text
    return response.json()


def node(page, step: str):
    return page.locator(f"svg.graph a.node[data-step='{step}']")


def test_the_token_field_shows_only_that_tokens_projects(browser, stack, tmp_path):
    shop = stack.submit("add", {"x": 1, "y": 1}, project="shop")
    blog = stack.submit("add", {"x": 2, "y": 2}, project="blog")
    make_schedule(stack, "shop-hourly", "shop")
    make_schedule(stack, "blog-hourly", "blog")
    with tab(browser, stack.url + "/") as page:
        expect(page.locator("#token-status")).to_contain_text("needs an API token")
        expect(page.locator("#jobs-error")).to_contain_text("401")
        page.locator("#token-input").fill(SHOP)
        page.locator("#token-input").press("Enter")  # the page starts again with the token
        expect(page.locator("#token-status")).to_have_text("Token for project: shop.")
        expect(page.locator(f"#jobs-body tr[data-job-id='{shop['id']}']")).to_be_visible()
        expect(page.locator(f"#jobs-body tr[data-job-id='{blog['id']}']")).to_have_count(0)
        assert set(page.locator("#jobs-body tr td:nth-child(3)").all_text_contents()) == {"shop"}
        expect(page.locator("#project-input")).to_have_value("shop")  # "default" is not the token's
        assert page.evaluate("sessionStorage.getItem('robotni.token')") == SHOP
        page.screenshot(path=tmp_path / "jobs-shop-token.png", full_page=True)

        page.get_by_role("link", name="Schedules").click()
        expect(page.locator("#schedules-body")).to_contain_text("shop-hourly")
        expect(page.locator("#schedules-body")).not_to_contain_text("blog-hourly")
        page.locator("#token-forget").click()
        expect(page.locator("#token-status")).to_contain_text("needs an API token")
        assert page.evaluate("sessionStorage.getItem('robotni.token')") is None


def test_the_job_and_workflow_lists_filter_and_page(page, stack):
    """Both lists (robotni/api/static/js/pagedlist.js): a filter reads the first page again, More adds the next,
    and a refresh keeps what More added."""
    for i in range(23):
        stack.submit("add", {"x": i, "y": 1}, project="pager")
    for i in range(21):
        steps = [{"name": "only", "type": "add", "params": {"x": i, "y": 2}}]
        response = stack.http.post(stack.api("/workflows"), json={"name": f"w{i}", "project": "wpager", "steps": steps})
        assert response.status_code == 202, response.text
    for view, project, project_filter, body, more, refresh, shown in (
        ("Jobs", "pager", "#filter-project", "#jobs-body tr", "#more-button", "#refresh-button", 23),
        (
            "Workflows",
            "wpager",
            "#workflow-filter-project",
            "#workflows-body tr",
            "#workflows-more",
            "#workflows-refresh",
            21,
        ),
    ):
        page.get_by_role("link", name=view, exact=True).click()
        # The filter applies once typing pauses: a "More" clicked before that reads the unfiltered list's next page,
        # which the filtered first page then replaces.
        with page.expect_response(lambda response, wanted=f"project={project}": wanted in response.url):
            page.locator(project_filter).fill(project)
        expect(page.locator(body)).to_have_count(20)
        assert set(page.locator(f"{body} td:nth-child(3)").all_text_contents()) == {project}
        page.locator(more).click()
        expect(page.locator(body)).to_have_count(shown)
        expect(page.locator(more)).to_be_hidden()
        page.locator(refresh).click()
        expect(page.locator(body)).to_have_count(shown)
        page.locator(project_filter).fill("nobody-here")
        expect(page.locator(body)).to_have_count(0)


def test_a_schedule_from_the_form_runs_opens_its_job_is_disabled_and_deleted(page, stack, tmp_path):
    page.get_by_role("link", name="Schedules").click()
    form = page.locator("#schedule-form")
    form.get_by_label("Name", exact=True).fill("every-two-seconds")
    form.get_by_label("Worker type", exact=True).select_option("add")
    form.get_by_label("x required", exact=True).fill("20")
    form.get_by_label("y required", exact=True).fill("22")
    form.get_by_label("Interval", exact=True).fill("2")
    form.get_by_label("Unit", exact=True).select_option(label="seconds")
    form.get_by_role("button", name="Create schedule").click()

    expect(page.locator("#schedule-name-shown")).to_have_text("every-two-seconds")
    expect(page.locator("#schedules-body")).to_contain_text("every 2 s")
    schedule_id = re.fullmatch(r".*#schedule=(.+)", page.url).group(1)
    done = page.locator("#schedule-runs tr").filter(has=page.locator(".s-completed")).first
    expect(done).to_be_visible(timeout=30_000)  # beat made it, a worker ran it
    job_id = done.locator("a.id").get_attribute("title")
    page.screenshot(path=tmp_path / "schedule.png", full_page=True)

    page.locator(f"#schedule-runs a[title='{job_id}']").click()  # a run opens its job
    expect(page.locator("#job-id")).to_have_text(job_id)
    expect(page.locator("#job-result")).to_contain_text('"sum": 42')
    page.go_back()
    expect(page.locator("#schedule-name-shown")).to_have_text("every-two-seconds")

    page.locator("#schedule-toggle").click()
    expect(page.locator("#schedule-state")).to_have_text("disabled")
    expect(page.locator("#schedule-toggle")).to_have_text("Enable")
    assert stack.http.get(stack.api(f"/schedules/{schedule_id}")).json()["enabled"] is False

    page.locator("#schedule-delete").click()
    page.locator("#schedule-delete").click()  # "Really delete?"
    expect(page.locator("#schedule")).to_be_hidden()
    expect(page.locator("#schedules-body")).not_to_contain_text("every-two-seconds")
    assert stack.http.get(stack.api(f"/schedules/{schedule_id}")).status_code == 404


def test_a_schedule_from_a_prompt_shows_its_plan_before_it_is_made(page, stack, tmp_path):
    page.get_by_role("link", name="Schedules").click()
    page.locator("#planner-prompt").fill("run helloworld every 5 minutes")
    page.locator("#planner-timezone").fill("Europe/Paris")
    page.locator("#planner-project").fill("prompted")
    page.get_by_role("button", name="Show the plan").click()
    plan = page.locator("#plan")
    expect(plan.locator(".plan-item")).to_have_count(1)
    expect(plan).to_contain_text("helloworld")
    expect(plan).to_contain_text("every 5 min")
    expect(plan).to_contain_text("prompted")
    expect(plan).to_contain_text("from “every 5 minutes”")  # each field says which words it came from
    assert stack.http.get(stack.api("/schedules?project=prompted")).json() == []  # shown, not made
    page.screenshot(path=tmp_path / "plan.png", full_page=True)

    page.get_by_label("Also run each once now").check()
    page.get_by_role("button", name="Make these schedules").click()
    made = page.locator("#plan-result li")
    expect(made).to_have_count(1)
    expect(made).to_contain_text("created")
    [schedule] = stack.http.get(stack.api("/schedules?project=prompted")).json()
    assert (schedule["type"], schedule["interval_seconds"], schedule["enabled"]) == ("helloworld", 300, True)
    job_id = made.locator("a.id").get_attribute("title")  # the run made now

    made.get_by_role("link", name=schedule["name"]).click()
    expect(page.locator("#schedule-name-shown")).to_have_text(schedule["name"])
    run = page.locator(f"#schedule-runs a[title='{job_id}']")
    run.click()  # the run opens its job
    expect(page.locator("#job-id")).to_have_text(job_id)
    expect(page.locator("#job-status")).to_have_text("completed", timeout=30_000)
    page.go_back()
    page.locator("#schedule-toggle").click()
    expect(page.locator("#schedule-state")).to_have_text("disabled")
    assert stack.http.get(stack.api(f"/schedules/{schedule['id']}")).json()["enabled"] is False


def test_a_workflow_graph_follows_its_steps_live_and_a_step_opens_its_job(page, stack, tmp_path):
    workflow = diamond(stack, "diamond")
    jobs = {step["name"]: step["job_id"] for step in workflow["steps"]}
    page.get_by_role("link", name="Workflows").click()
    with page.expect_request(lambda r: "/api/worker/events?project=default" in r.url, timeout=10_000):
        page.locator("#workflows-body").get_by_role("link", name="diamond").first.click()  # live: its project's stream
    expect(page.locator("svg.graph a.node")).to_have_count(4)
    expect(page.locator("svg.graph path.edge")).to_have_count(4)
    expect(node(page, "a")).to_have_class(re.compile(r"\bs-running\b"), timeout=20_000)
    for step in "bcd":
        expect(node(page, step)).to_have_class(re.compile(r"\bs-waiting\b"))
    page.evaluate("window.sameDocument = true")  # gone if the page reloaded
    page.screenshot(path=tmp_path / "diamond-running.png")

    assert stack.http.delete(stack.api(f"/jobs/{jobs['a']}")).status_code in (200, 202)
    expect(node(page, "a")).to_have_class(re.compile(r"\bs-cancelled\b"), timeout=20_000)
    for step in "bcd":
        expect(node(page, step)).to_have_class(re.compile(r"\bs-completed\b"), timeout=30_000)
    expect(page.locator("#workflow-status")).to_have_text("failed")  # a step did not complete
    assert page.evaluate("window.sameDocument") is True
    page.screenshot(path=tmp_path / "diamond-ended.png")

    node(page, "d").click()
    expect(page.locator("#job-id")).to_have_text(jobs["d"])
    expect(page.locator("#job-status")).to_have_text("completed")


def test_the_dashboard_charts_show_the_last_hour(page, stack, tmp_path):
    done = [stack.submit("add", {"x": i, "y": 1}) for i in range(3)] + [stack.submit("failer")]
    for job in done:
        stack.wait_for(job["id"])
    parked = stack.submit("parked")  # no worker takes its queue: it waits
    page.get_by_role("link", name="Dashboard").click()
    finished = page.locator("#chart-finished svg rect.mark")
    expect(finished.first).to_be_attached(timeout=10_000)
    assert sum(int(v) for v in finished.evaluate_all("els => els.map(e => e.dataset.value)")) >= 4
    expect(page.locator("#chart-finished svg rect.mark.s-failed").first).to_be_attached()
    durations = page.locator("#chart-durations svg g.row")
    expect(durations.filter(has_text="add")).to_have_count(1)
    assert all(
        float(v) >= 0
        for v in page.locator("#chart-durations rect.mark").evaluate_all("els => els.map(e => e.dataset.value)")
    )
    waiting = page.locator("#chart-queue svg rect.mark")
    expect(waiting.last).to_have_attribute("data-value", re.compile(r"^[1-9]"))  # the parked job, now
    expect(page.locator("#queues-body tr").filter(has_text="parked")).to_contain_text("1")
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
    stack.http.delete(stack.api(f"/jobs/{parked['id']}"))


def test_every_view_fits_375_px_without_sideways_scrolling(browser, stack, tmp_path):
    workflow = diamond(stack, "narrow")
    make_schedule(stack, "a-rather-long-schedule-name-for-a-narrow-screen", "default")
    shown = {  # each view, and what shows it has its data
        "#jobs": "#jobs-body tr",
        "#schedules": "#schedules-body tr",
        f"#workflow={workflow['id']}": "svg.graph a.node",
        "#dashboard": "#chart-finished svg, #dashboard-error:not(:empty)",
    }
    with tab(browser, stack.url + "/", token=ADMIN, viewport=PHONE) as page:
        for view, content in shown.items():
            page.goto(f"{stack.url}/{view}")
            expect(page.locator(content).first).to_be_visible()
            widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert widths[0] <= widths[1] == PHONE["width"], (view, widths)
            page.screenshot(path=tmp_path / f"375-{view.strip('#').split('=')[0]}.png", full_page=True)
    stack.http.delete(stack.api(f"/workflows/{workflow['id']}"))


def focused(page) -> str:
    return page.evaluate("(e => e.id || e.getAttribute('href') || e.textContent.trim())(document.activeElement)")


def tab_to(page, target: str, limit: int = 60) -> list[str]:
    """Press Tab until target (an id, href or text) has the focus; the stops on the way."""
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stops.append(focused(page))
        if stops[-1] == target:
            return stops
    raise AssertionError(f"Tab never reached {target!r}: {stops}")


def test_the_keyboard_reaches_the_main_controls_and_enter_activates_them(page, stack):
    workflow = diamond(stack, "by-keyboard")
    stops = tab_to(page, "submit-button")
    for control in ("#jobs", "#schedules", "#workflows", "#dashboard", "token-input", "token-use", "type-select"):
        assert control in stops, (control, stops)
    assert stops.index("#dashboard") < stops.index("token-input") < stops.index("type-select")

    page.locator("#type-select").select_option("add")
    page.locator("#submit-form").get_by_label("x required", exact=True).fill("2")
    page.locator("#submit-form").get_by_label("y required", exact=True).fill("3")
    page.locator("#submit-button").focus()
    page.keyboard.press("Enter")  # submits the form
    expect(page.locator("#job-result")).to_contain_text('"sum": 5', timeout=30_000)

    page.locator("a[href='#workflows']").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#view-workflows")).to_be_visible()
    tab_to(page, f"#workflow={workflow['id']}")
    page.keyboard.press("Enter")
    expect(page.locator("svg.graph a.node")).to_have_count(4)
    tab_to(page, f"#job={workflow['steps'][0]['job_id']}")  # the graph's first node: focus moved to the workflow
    page.keyboard.press("Enter")
    expect(page.locator("#job-id")).to_have_text(workflow["steps"][0]["job_id"])
    stack.http.delete(stack.api(f"/workflows/{workflow['id']}"))

    page.locator("a[href='#schedules']").focus()
    page.keyboard.press("Enter")
    tab_to(page, "planner-prompt")
    tab_to(page, "planner-plan")
    page.keyboard.press("Enter")  # an empty prompt: said next to it
    expect(page.locator("[data-error-for='prompt']")).to_contain_text("Say what should run")
