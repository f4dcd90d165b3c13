"""What the browser tests share: Debian's /usr/bin/chromium driven by Playwright, and a tab on the page that fails
its test if the page threw or broke its content security policy.

Needs `pip install -e '.[browser]'` and `apt-get install chromium`; a module importing this is skipped without them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[browser]'")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium", allow_module_level=True)

expect = sync_api.expect
# Without the background-networking flags Chromium phones home, and on a closed network its connections are refused.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 860}
TOKEN_KEY = "robotni.token"  # where the page keeps the tab's token (sessionStorage), robotni/api/static/js/api.js


@contextmanager
def chromium() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def tab(browser: Any, url: str, token: str | None = None, viewport: dict[str, int] = DESKTOP) -> Iterator[Any]:
    """A fresh tab at url, holding token as if typed into the token field; asserts the page stayed error-free."""
    context = browser.new_context(viewport=viewport)
    if token:  # before the page's scripts run, on the first load only (the test may change or forget it later)
        key, value = json.dumps(TOKEN_KEY), json.dumps(token)
        context.add_init_script(f"sessionStorage.getItem({key}) ?? sessionStorage.setItem({key}, {value})")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    # Chromium logs every 4xx fetch as a console error; those are expected here (422, 304 are not errors).
    page.on(
        "console",
        lambda msg: msg.type == "error" and "Failed to load resource" not in msg.text and problems.append(msg.text),
    )
    page.goto(url)
    try:
        yield page
    finally:
        context.close()
    assert not problems, problems
