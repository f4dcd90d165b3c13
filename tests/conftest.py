from __future__ import annotations

import pytest

from tests.backends import STACKS, job_store, provision
from tests.stack import running_stack


@pytest.fixture(scope="module", params=STACKS)
def backend(request):
    """Each stack the suite runs on; Redis and RabbitMQ (with PostgreSQL) only when their URLs are set."""
    provisioned = provision(request.param)
    yield provisioned
    provisioned.release()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, backend):
    """A web server and one worker (2 pool slots), shared by a test module."""
    with running_stack(tmp_path_factory.mktemp(f"stack-{backend.name}"), backend.env) as running:
        running.backend = backend.name
        yield running


@pytest.fixture
def store(tmp_path):
    """This process's engine points at a fresh SQLite file for the test, as robotni.store.engine.engine() hands it out."""
    with job_store("sqlite", tmp_path):
        yield tmp_path
