"""The try-it page at / is served from the package, with its assets, and stays out of the API document."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.stack import ROOT, Stack

STATIC = ROOT / "robotni" / "api" / "static"


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("page"))
    try:
        running.start_web()
        yield running
    finally:
        running.stop()


def imports(module: Path) -> list[Path]:
    """The modules an ES module imports (relative paths only: the page loads nothing from elsewhere)."""
    found = re.findall(r'^import (?:[^"]* from )?"(\./[^"]+)";$', module.read_text(), re.MULTILINE)
    return [(module.parent / path).resolve() for path in found]


def test_page_and_its_assets_are_served(web):
    page = web.http.get(web.url + "/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(static/[^"]+)"', page.text)
    assert sorted(assets) == ["static/app.js", "static/style.css"]
    modules, seen = [STATIC / "app.js"], set()
    while modules:  # every module app.js reaches, each served as JavaScript (a module needs the MIME type)
        module = modules.pop()
        if module not in seen:
            seen.add(module)
            modules += imports(module)
    assert seen == set(STATIC.rglob("*.js")), "every script is imported, none is left over"
    for path in [STATIC / "style.css", *seen]:
        response = web.http.get(f"{web.url}/static/{path.relative_to(STATIC)}")
        assert response.status_code == 200 and response.content == path.read_bytes()
        if path.suffix == ".js":
            assert response.headers["Content-Type"].startswith("text/javascript")


def test_page_is_not_an_api_endpoint(web):
    paths = web.http.get(web.url + "/openapi.json").json()["paths"]
    assert "/" not in paths and not any(path.startswith("/static") for path in paths)


def test_page_never_parses_data_as_html_nor_loads_anything_from_elsewhere():
    scripts = sorted(STATIC.rglob("*.js"))
    for script in scripts:
        text = script.read_text()
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", text), (
            script
        )
    for path in [STATIC / "index.html", STATIC / "style.css", *scripts]:
        # The SVG namespace is a name, not an address anything is fetched from.
        text = path.read_text().replace('"http://www.w3.org/2000/svg"', "")
        assert not re.search(r"https?://", text), path
