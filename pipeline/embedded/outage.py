"""Stop and restart ONE embedded service on its own port, keeping its data: an outage on purpose.

``privrec down`` stops everything of a state dir, privrec's own processes
first. An outage is different: the clients (workers, the trainer, a replay)
stay up and must wait, reconnect and resume. These helpers stop one service
the way ``down`` would and bring it back the way ``up`` would, on the port it
had (``ports.json``), so clients that know the address reconnect:

* Redis is stopped by SIGTERM, which makes it write its append-only file;
  the restarted server loads it (same config, same password).
* The broker keeps its data in memory only, so :func:`stop_service` first
  saves it (:mod:`.snapshot`) and :func:`start_service` writes it back into
  the new broker (``up`` restores before it records the broker). A broker
  that crashes instead loses everything written since the last snapshot.

The restored broker listens as soon as it starts, so a client that knows its
port can reach it while the snapshot is still being written back (topics
missing, offsets still short). ``up`` avoids this by stopping every privrec
process first; whoever uses these helpers with clients running must keep the
clients off the broker between :func:`stop_service` and the end of
:func:`start_service` (the outage tests freeze them with SIGSTOP meanwhile).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.embedded import process
from pipeline.embedded.lock import lifecycle_lock
from pipeline.embedded.services import EmbeddedServices, ServiceRecord
from pipeline.embedded.snapshot import read_broker, write_snapshot
from pipeline.errors import EmbeddedServiceError

__all__ = ["Stopped", "start_service", "stop_service"]

SERVICES = ("kafka", "redis")


@dataclass(frozen=True)
class Stopped:
    """What :func:`stop_service` stopped (and saved, for the broker)."""

    name: str
    port: int
    records: int | None  # broker records saved; None for Redis (its AOF holds the data)
    seconds: float


def stop_service(state_dir: Path, name: str, *, snapshot: bool = True) -> Stopped:
    """Stop the embedded ``name`` ("kafka" or "redis") of ``state_dir``, nothing else.

    With ``snapshot`` the broker's data is saved first, as ``privrec down``
    saves it. The service's record leaves ``services.json``; its port stays
    remembered for :func:`start_service`.
    """
    if name not in SERVICES:
        raise EmbeddedServiceError(f"unknown embedded service {name!r}")
    services = EmbeddedServices(state_dir)
    with lifecycle_lock(services.state_dir):
        records = services.records()
        rec = records.get(name)
        if rec is None or not rec.alive():
            raise EmbeddedServiceError(f"embedded {name} is not running under {state_dir}")
        started = time.monotonic()
        saved = None
        if name == "kafka" and snapshot:
            snap = read_broker(rec.url)
            write_snapshot(services.state_dir, snap)
            saved = snap.record_count
        if not process.stop(rec.pid, rec.start_time):
            raise EmbeddedServiceError(f"{name} (pid {rec.pid}) did not stop")
        del records[name]
        _save(services, records)
        return Stopped(name, rec.port, saved, round(time.monotonic() - started, 2))


def start_service(state_dir: Path, name: str, *, port: int | None = None) -> ServiceRecord:
    """Start ``name`` again (the broker restored from its snapshot); refuses another port than ``port``.

    A different port would strand every client that outlived the outage, so it
    is an error, not a silent change.
    """
    if name not in SERVICES:
        raise EmbeddedServiceError(f"unknown embedded service {name!r}")
    services = EmbeddedServices(state_dir)
    rec = services.up(kafka=name == "kafka", redis=name == "redis")[name]
    if port is not None and rec.port != port:
        raise EmbeddedServiceError(f"embedded {name} came back on port {rec.port}, not {port}")
    return rec


def _save(services: EmbeddedServices, records: dict[str, Any]) -> None:
    services._save(records)
