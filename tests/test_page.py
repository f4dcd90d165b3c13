"""The try-it page at / is served from the package, with its assets, and stays out of the API document."""

from __future__ import annotations

import re

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


def test_page_and_its_assets_are_served(web):
    page = web.http.get(web.url + "/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(static/[^"]+)"', page.text)
    assert sorted(assets) == ["static/app.js", "static/style.css"]
    for asset in assets:
        response = web.http.get(f"{web.url}/{asset}")
        assert response.status_code == 200 and response.content == (STATIC / asset.removeprefix("static/")).read_bytes()


def test_page_is_not_an_api_endpoint(web):
    paths = web.http.get(web.url + "/openapi.json").json()["paths"]
    assert "/" not in paths and not any(path.startswith("/static") for path in paths)


def test_page_never_parses_data_as_html_nor_loads_anything_from_elsewhere():
    script = (STATIC / "app.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", script)
    for name in ("index.html", "app.js", "style.css"):
        assert not re.search(r"https?://", (STATIC / name).read_text()), name
