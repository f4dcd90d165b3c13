"""A rate of 30/m holds over two minutes, across two workers of one job store and broker (Redis + PostgreSQL).

Its own file: it takes more than two minutes, and `pytest -n 2 --dist loadfile` runs it beside the other files.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.backends import web_on
from tests.stack import wait_until

JOBS = 70  # 30 start in the first minute, 30 in the second, the last 10 once the second 30 leave the window
RATE, WINDOW = 30, timedelta(seconds=60)


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    with web_on("redis", tmp_path_factory.mktemp("rates"), {}) as stack:
        yield stack


@pytest.mark.timeout(360)  # two minutes at the least, by design
def test_a_rate_of_30_a_minute_holds_over_two_minutes_and_drops_no_job(web):
    web.start_worker("w1")
    web.start_worker("w2")  # 2 workers x 2 pool slots: the rate is the cluster's, not a worker's
    ids = [web.submit("perminute")["id"] for _ in range(JOBS)]
    reason = f"rate of type 'perminute': {RATE} started in the last 60 s, at its rate of 30/m"
    assert wait_until(lambda: web.job(ids[-1])["waiting_for"] == reason, 60, "the last job's reason")
    ended = [web.wait_for(job_id, timeout=240) for job_id in ids]
    assert {job["status"] for job in ended} == {"completed"}  # none dropped
    starts = sorted(datetime.fromisoformat(job["started_at"]) for job in ended)
    busiest = max(sum(1 for t in starts if s <= t < s + WINDOW) for s in starts)
    assert busiest <= RATE + 1, f"{busiest} starts in one 60 s window: {starts}"
    two_minutes = [t for t in starts if t < starts[0] + 2 * WINDOW]
    assert 2 * RATE - 5 <= len(two_minutes) <= 2 * RATE + 1, f"{len(two_minutes)} starts in two minutes: {starts}"
