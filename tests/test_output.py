"""Job output in the store: chunk after chunk, read from any offset (robotni.queries.output_of)."""

from __future__ import annotations

from robotni.store import queries
from robotni.store.engine import engine
from robotni.store.models import LogChunk

TEXT = b"hello big world"


def test_output_reads_across_chunks_from_any_offset(store):
    chunks = [("j", 0, b"hello "), ("j", 6, b"big "), ("j", 10, b"world"), ("other", 0, b"not this job's")]
    with engine().begin() as conn:
        conn.execute(LogChunk.__table__.insert(), [{"job_id": j, "start": s, "data": d} for j, s, d in chunks])
    for offset in range(len(TEXT) + 2):
        for limit in (0, 1, 3, 7, 100):
            assert queries.output_of("j", offset, limit) == TEXT[offset : offset + limit], (offset, limit)
    assert queries.output_of("no-such-job", 0, 10) == b""
