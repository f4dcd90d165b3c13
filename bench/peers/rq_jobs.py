"""RQ's job: a plain function its workers import by name (`bench.peers.rq_jobs.noop`); each job runs in a fork of
the worker, RQ's default."""

from __future__ import annotations

from bench.peers.job import run_noop

noop = run_noop
