from __future__ import annotations

import pytest

from tests.stack import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A web server and one worker (2 pool processes) on the embedded default, shared by a test module."""
    running = Stack(tmp_path_factory.mktemp("stack"))
    try:
        running.start_web()
        running.start_worker()
        yield running
    finally:
        running.stop()
