"""The pure parts of `up`/`down`: offset mapping of a restore, stable ports, the lock, the registry."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.embedded import registry
from pipeline.embedded.lock import lifecycle_lock
from pipeline.embedded.ports import choose_port, remembered_ports
from pipeline.embedded.snapshot import (
    GroupOffsets,
    PartitionRecords,
    Record,
    Snapshot,
    TopicRecords,
    load_snapshot,
    map_offset,
    snapshot_path,
    write_snapshot,
)
from pipeline.errors import EmbeddedServiceError


@given(st.lists(st.integers(0, 1000), unique=True).map(sorted), st.integers(0, 1100))
def test_a_committed_offset_keeps_the_records_before_it(old, committed):
    new = map_offset(old, committed)
    assert new == sum(1 for o in old if o < committed)  # exactly the records already read stay read


def test_map_offset_edges():
    assert map_offset([], 7) == 0
    assert map_offset([3, 4, 9], 10) == 3  # read everything: the new end
    assert map_offset([3, 4, 9], 3) == 0
    assert map_offset([3, 4, 9], 5) == 2  # a gap (compaction) keeps the position


def test_snapshot_round_trip_is_private(tmp_path):
    snap = Snapshot(
        1,
        123,
        [TopicRecords("t", [PartitionRecords(0, [Record(5, 1000, b"k", None, [("h", b"v")])], 6)])],
        [GroupOffsets("g", [("t", 0, 6)])],
    )
    path = write_snapshot(tmp_path, snap)
    assert path == snapshot_path(tmp_path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_snapshot(tmp_path) == snap
    assert load_snapshot(tmp_path / "none") is None
    path.write_bytes(b"\x00garbage")
    with pytest.raises(EmbeddedServiceError, match="unreadable broker snapshot"):
        load_snapshot(tmp_path)


def test_ports_are_remembered_and_replaced_when_taken(tmp_path):
    first = choose_port(tmp_path, "kafka")
    assert choose_port(tmp_path, "kafka") == first
    assert remembered_ports(tmp_path) == {"kafka": first}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first))
        taken.listen()
        other = choose_port(tmp_path, "kafka")
    assert other != first
    assert remembered_ports(tmp_path) == {"kafka": other}


def _hold(state_dir: str, started: object, seconds: float) -> None:
    with lifecycle_lock(__import__("pathlib").Path(state_dir)):
        started.set()  # type: ignore[attr-defined]
        time.sleep(seconds)


def test_the_lock_excludes_another_process(tmp_path):
    ctx = multiprocessing.get_context("fork")
    started = ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path), started, 1.0))
    holder.start()
    try:
        assert started.wait(10)
        with pytest.raises(EmbeddedServiceError, match="holds"), lifecycle_lock(tmp_path, timeout_s=0.2):
            pass
        t0 = time.monotonic()
        with lifecycle_lock(tmp_path, timeout_s=10):
            assert not holder.is_alive() or time.monotonic() - t0 > 0.1
    finally:
        holder.join(10)


def test_registry_lists_live_processes_and_prunes_the_dead(tmp_path):
    child = subprocess.Popen(["sleep", "30"])
    try:
        path = registry.register_process(tmp_path, "self")
        assert path is not None and oct(path.stat().st_mode & 0o777) == "0o600"
        assert [e.kind for e in registry.live_processes(tmp_path)] == ["self"]
        assert registry.live_processes(tmp_path, exclude_pid=os.getpid()) == []
        stale = tmp_path / registry.PROCS_DIR / "999999999.json"
        stale.write_text('{"pid": 999999999, "start_time": 1, "kind": "worker", "started_at": 0}')
        registry.live_processes(tmp_path)
        assert not stale.exists()
        entry = registry.RegisteredProcess(child.pid, None, "worker", 0.0)
        stopped, killed = registry.stop_processes([entry], timeout_s=5)
        assert stopped == [entry] and killed == []
        assert not entry.alive()
    finally:
        child.kill()
        path and path.unlink(missing_ok=True)
