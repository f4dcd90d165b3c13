"""The jobs view of the page at / in real headless Chromium, where no tokens are set (loopback use).

Needs `pip install -e '.[browser]'` and `apt-get install chromium`; without them the module is skipped.
"""

from __future__ import annotations

import pytest

from tests.browser import chromium, expect, tab
from tests.stack import running_stack

JOB_URL = "/api/worker/jobs/"


@pytest.fixture(scope="module")
def embedded_stack(tmp_path_factory):
    """Gunicorn and one worker on the embedded default: the page does not depend on the backend, so once is enough."""
    with running_stack(tmp_path_factory.mktemp("browser")) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, embedded_stack):
    with tab(browser, embedded_stack.url + "/") as opened:
        expect(opened.locator("#type-select option[value='fakejob']")).to_be_attached()
        yield opened


def submit(page, type: str, **fields: str) -> str:
    """Fill the form for a worker type and submit it; the id of the job the page opens."""
    before = page.locator("#job-id").text_content()
    page.locator("#type-select").select_option(type)
    for name, value in fields.items():
        page.locator("#submit-form").get_by_label(name, exact=True).fill(value)
    page.locator("#submit-button").click()
    expect(page.locator("#job-id")).not_to_have_text(before or "", timeout=10_000)
    expect(page.locator("#job-id")).not_to_be_empty()
    return page.locator("#job-id").text_content()


def row_status(page, job_id: str):
    return page.locator(f"#jobs-body tr[data-job-id='{job_id}'] .status")


def test_form_follows_the_schema_and_shows_field_errors(page):
    page.locator("#type-select").select_option("fakejob")
    form = page.locator("#submit-form")
    delay = form.get_by_label("delay_seconds", exact=True)
    expect(delay).to_have_value("5")  # the schema's default
    expect(page.locator("#params-fields")).to_contain_text("0 to 100")
    delay.fill("1000")
    page.locator("#submit-button").click()
    expect(form.locator("[data-error-for='params.delay_seconds']")).to_contain_text("maximum of 100")
    expect(page.locator("#job")).to_be_hidden()
    page.locator("#type-select").select_option("add")
    expect(form.get_by_label("x required", exact=True)).to_have_value("")
    page.locator("#project-input").fill("not a name")
    page.locator("#submit-button").click()
    expect(form.locator("[data-error-for='project']")).to_contain_text("letters, digits")


def test_submit_and_watch_a_job_complete(page, embedded_stack):
    page.locator("#project-input").fill("browser")
    job_id = submit(page, "fakejob", delay_seconds="1")
    expect(page.locator("#job-status")).to_have_text("completed", timeout=30_000)
    expect(page.locator("#job-result")).to_contain_text('"waited": 1')
    expect(page.locator("#job-log")).to_have_text("Fake job completed\n")
    expect(page.locator("#job-progress")).to_have_attribute("aria-valuenow", "100")
    expect(row_status(page, job_id)).to_have_text("completed")
    job = embedded_stack.job(job_id)
    assert job["status"] == "completed" and job["project"] == "browser" and job["params"] == {"delay_seconds": 1}


def test_data_is_inserted_as_text_never_as_html(page, embedded_stack):
    page.locator("#type-select").select_option("helloworld")
    page.locator("#params-fields summary").click()
    page.locator("#params-extra").fill('{"note": "<img id=pwned src=x onerror=alert(1)>"}')
    page.locator("#submit-button").click()
    expect(page.locator("#job-status")).to_have_text("completed", timeout=30_000)
    expect(page.locator("#job-params")).to_contain_text("<img id=pwned src=x onerror=alert(1)>")
    expect(page.locator("#pwned")).to_have_count(0)
    expect(page.locator("#job-log")).to_have_text("Hello, World!\n")


def test_the_page_follows_its_job_over_sse_and_a_running_job_cancels(page, embedded_stack):
    with page.expect_request(lambda r: r.url.endswith("/events"), timeout=10_000) as stream:
        job_id = submit(page, "sleeper", seconds="30")
    assert stream.value.url.endswith(f"{JOB_URL}{job_id}/events")  # no polling while the stream is open
    expect(page.locator("#job-status")).to_have_text("running", timeout=20_000)
    expect(page.locator("#job-log")).to_have_text("sleeping\n")  # log lines arrive as stream events
    page.locator("#cancel-button").click()
    expect(page.locator("#job-status")).to_have_text("cancelled", timeout=15_000)
    expect(page.locator("#cancel-button")).to_be_hidden()
    assert embedded_stack.job(job_id)["status"] == "cancelled"


def test_cancel_a_fakejob_from_the_page(page, embedded_stack, tmp_path):
    # fakejob waits a random 1 to 30 s: cancel at once, so it cannot finish first (queued or running, both cancel).
    job_id = submit(page, "fakejob", delay_seconds="30")
    page.locator("#cancel-button").click()
    expect(page.locator("#job-status")).to_have_text("cancelled", timeout=15_000)
    expect(row_status(page, job_id)).to_have_text("cancelled")
    assert embedded_stack.job(job_id)["status"] == "cancelled"
    page.screenshot(path=tmp_path / "page.png", full_page=True)
