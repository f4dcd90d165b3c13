"""robotni.submission.waitcap: a project's waiting jobs are counted only as often as the cap needs."""

from __future__ import annotations

from robotni.submission.waitcap import SHARE, WaitingCap


class Backlog:
    def __init__(self, waiting: int):
        self.waiting, self.counts = waiting, 0

    def count(self, project: str) -> int:
        self.counts += 1
        return self.waiting


def submit(cap: WaitingCap, backlog: Backlog, limit: int) -> bool:
    if cap.full("p", limit) is not None:
        return False
    backlog.waiting += 1
    return True


def test_far_from_the_cap_a_count_lets_a_tenth_of_the_room_through():
    backlog = Backlog(0)
    cap = WaitingCap(backlog.count)
    assert all(submit(cap, backlog, 1000) for _ in range(1000 // SHARE))
    assert backlog.counts == 1
    assert submit(cap, backlog, 1000) and backlog.counts == 2


def test_the_cap_holds_with_as_many_processes_as_shares():
    backlog = Backlog(0)
    processes = [WaitingCap(backlog.count) for _ in range(SHARE)]
    accepted = sum(submit(process, backlog, 500) for _ in range(200) for process in processes)
    assert accepted == 500 and backlog.waiting == 500


def test_at_the_cap_every_submit_counts_and_is_refused_with_the_number():
    backlog = Backlog(3)
    cap = WaitingCap(backlog.count)
    assert cap.full("p", 3) == 3 and cap.full("p", 3) == 3 and backlog.counts == 2
