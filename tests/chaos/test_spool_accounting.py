"""The spool's dropped count when a full spool deletes the batch the writer has in flight: the
points count as dropped only if the sink then refuses the batch (found by the spool-full
chaos scenario, where the connector reported more dropped points than the database missed)."""

from __future__ import annotations

from connectors.common.spool import Spool


def _fill(spool: Spool, start: int, count: int) -> None:
    for index in range(start, start + count):
        spool.append(f"m,t=x v={index} {index}\n".encode(), 1)


def test_a_batch_deleted_in_flight_and_then_written_is_not_dropped(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 16)
    _fill(spool, 0, 1000)
    _, count, position = spool.read(100_000)  # the writer sends this batch...
    _fill(spool, 1000, 6000)  # ...while the spool overflows and deletes its segment
    assert spool.dropped >= count
    spool.commit(position, count)  # the sink took it after all
    _, remaining, _ = spool.read(100_000)
    assert count + remaining + spool.dropped == 7000
    assert spool.pending == remaining


def test_a_batch_deleted_in_flight_and_refused_stays_dropped(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 16)
    _fill(spool, 0, 1000)
    spool.read(100_000)  # the sink refuses the batch: no commit
    _fill(spool, 1000, 6000)
    dropped = spool.dropped
    _, remaining, position = spool.read(100_000)
    spool.commit(position, remaining)
    assert spool.dropped == dropped and remaining + dropped == 7000
