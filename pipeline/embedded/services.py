"""The lifecycle of the embedded services, recorded in ``services.json``.

``up`` and ``down`` hold the state dir's lifecycle lock (:mod:`.lock`); the
ports of a state dir stay the same across restarts (:mod:`.ports`); ``down``
first stops every registered privrec process of the state dir
(:mod:`.registry`) and can save the broker's data (:mod:`.snapshot`), which the
next ``up`` restores.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipeline.embedded import process, redis_server, registry
from pipeline.embedded.binaries import find_redis_server, find_tansu
from pipeline.embedded.lock import lifecycle_lock
from pipeline.embedded.ports import choose_port
from pipeline.embedded.snapshot import (
    load_snapshot,
    read_broker,
    restore_broker,
    snapshot_path,
    write_snapshot,
)
from pipeline.errors import EmbeddedServiceError
from pipeline.files import write_private
from pipeline.services.health import kafka_reachable, redis_reachable

__all__ = ["EMBEDDED_CLUSTER_ID", "DownReport", "EmbeddedServices", "ServiceRecord"]

log = logging.getLogger(__name__)

STATE_FILE = "services.json"
START_TIMEOUT_S = 20.0
EMBEDDED_CLUSTER_ID = "privrec"
"""The cluster id of the Tansu broker privrec starts; never an Apache Kafka one (those are base64 UUIDs)."""


@dataclass(frozen=True)
class ServiceRecord:
    """One process privrec started: enough to find it again and to stop only it."""

    name: str
    pid: int
    start_time: int | None
    host: str
    port: int
    binary: str
    log_path: str
    password_file: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Client address: ``host:port`` for Kafka, ``redis://:PASSWORD@host:port/0`` for Redis.

        Holds the password: give it to clients, never print it (:attr:`display_url`).
        """
        if self.name != "redis":
            return self.address
        if self.password_file is None:
            return f"redis://{self.host}:{self.port}/0"
        password = redis_server.read_password(Path(self.password_file))
        return f"redis://:{quote(password, safe='')}@{self.host}:{self.port}/0"

    @property
    def display_url(self) -> str:
        """:attr:`url` with the password masked, for output."""
        if self.name != "redis":
            return self.address
        auth = ":***@" if self.password_file is not None else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def alive(self) -> bool:
        return process.is_alive(self.pid, self.start_time)


@dataclass
class DownReport:
    """What ``down`` stopped and saved."""

    services: list[str] = field(default_factory=list)
    processes: list[registry.RegisteredProcess] = field(default_factory=list)  # stopped by SIGTERM
    killed: list[registry.RegisteredProcess] = field(default_factory=list)  # needed SIGKILL
    snapshot: dict[str, Any] | None = None


class EmbeddedServices:
    """Start/stop the embedded Tansu broker and Redis under one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.restored: dict[str, Any] | None = None  # what the last `up` restored into a new broker
        self.started: list[str] = []  # what the last `up` started (the rest was running)

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    def records(self) -> dict[str, ServiceRecord]:
        """What ``up`` recorded (possibly stale: check ``alive()``)."""
        try:
            data = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise EmbeddedServiceError(f"unreadable {self.state_file}: {exc}") from None
        return {name: ServiceRecord(**rec) for name, rec in data.items()}

    def _save(self, records: dict[str, ServiceRecord]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_private(self.state_file, json.dumps({n: asdict(r) for n, r in records.items()}, indent=2))

    def running(self, name: str) -> ServiceRecord | None:
        """The live record of ``name`` ("kafka" or "redis"), else None."""
        rec = self.records().get(name)
        return rec if rec is not None and rec.alive() else None

    def up(self, *, kafka: bool = True, redis: bool = True) -> dict[str, ServiceRecord]:
        """Start what is not already running; harmless when everything is up.

        Holds the state dir's lifecycle lock, so concurrent ``up``/``down`` never
        start a second broker or Redis. A new broker gets the last snapshot
        (:mod:`.snapshot`) written back before its record is saved: nobody finds
        it half restored.
        """
        with lifecycle_lock(self.state_dir):
            records = {n: r for n, r in self.records().items() if r.alive()}
            self.restored, self.started = None, []
            try:
                if kafka and "kafka" not in records:
                    rec = self._start_kafka()
                    try:
                        self.restored = self._restore(rec)
                    except BaseException:
                        process.stop(rec.pid, rec.start_time)
                        raise
                    records["kafka"] = rec
                    self.started.append("kafka")
                    self._save(records)
                if redis and "redis" not in records:
                    records["redis"] = self._start_redis()
                    self.started.append("redis")
                    self._save(records)
            finally:
                self._save(records)
            return records

    def down(self, *, snapshot: bool = False, stop_processes: bool = True) -> DownReport:
        """Stop the state dir's privrec processes, then the services ``up`` recorded.

        With ``snapshot``, the broker's data is saved first (``privrec down``
        does; throw-away stacks of tests and benchmarks do not). A broker that
        does not answer cannot be saved: the previous snapshot stays, and the
        report says so.
        """
        with lifecycle_lock(self.state_dir):
            report = DownReport()
            if stop_processes:
                entries = registry.live_processes(self.state_dir, exclude_pid=os.getpid())
                report.processes, report.killed = registry.stop_processes(entries)
            records = self.records()
            kafka = records.get("kafka")
            if snapshot and kafka is not None and kafka.alive():
                started = time.monotonic()
                snap = read_broker(kafka.url)
                write_snapshot(self.state_dir, snap)
                report.snapshot = {
                    "path": str(snapshot_path(self.state_dir)),
                    "topics": len(snap.topics),
                    "records": snap.record_count,
                    "groups": len(snap.groups),
                    "seconds": round(time.monotonic() - started, 2),
                }
            for name, rec in records.items():
                if rec.alive():
                    if not process.stop(rec.pid, rec.start_time):
                        raise EmbeddedServiceError(f"{name} (pid {rec.pid}) did not stop")
                    report.services.append(name)
            self.state_file.unlink(missing_ok=True)
            return report

    def _restore(self, rec: ServiceRecord) -> dict[str, Any] | None:
        snap = load_snapshot(self.state_dir)
        if snap is None:
            return None
        started = time.monotonic()
        written = restore_broker(rec.url, snap)
        log.info("embedded broker restored from its snapshot (%d records)", written)
        return {
            "topics": len(snap.topics),
            "records": written,
            "groups": len(snap.groups),
            "taken_at": snap.taken_at,
            "seconds": round(time.monotonic() - started, 2),
        }

    def _start_kafka(self) -> ServiceRecord:
        binary = find_tansu()
        port = choose_port(self.state_dir, "kafka")
        url = f"tcp://127.0.0.1:{port}"
        argv = [
            binary, "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
            "--cluster-id", EMBEDDED_CLUSTER_ID,
        ]  # fmt: skip
        rec = self._start("kafka", argv, binary, port, lambda r: kafka_reachable(r.url, 1.0))
        log.info("embedded Tansu broker on %s (pid %d)", rec.address, rec.pid)
        return rec

    def _start_redis(self) -> ServiceRecord:
        """Start redis-server with the locked-down config of :mod:`.redis_server`.

        The password reaches the server only through the 0600 config file; the
        argv (visible to every user in ``ps``) holds nothing but that file's path.
        """
        binary = find_redis_server()
        port = choose_port(self.state_dir, "redis")
        redis_dir = self.state_dir / "redis"
        password_file = redis_server.ensure_password(redis_dir).resolve()
        config = redis_server.write_config(redis_dir, port, password_file)
        argv = [binary, str(config)]
        rec = self._start(
            "redis",
            argv,
            binary,
            port,
            lambda r: redis_reachable(r.url, 0.5),
            password_file=str(password_file),
        )
        log.info("embedded Redis on %s (pid %d)", rec.address, rec.pid)
        return rec

    def _start(self, name, argv, binary, port, ready, password_file=None) -> ServiceRecord:  # type: ignore[no-untyped-def]
        log_path = (self.state_dir / "logs" / f"{name}.log").resolve()
        pid = process.spawn(argv, log_path, cwd=self.state_dir.resolve())
        rec = ServiceRecord(
            name=name,
            pid=pid,
            start_time=process.process_start_time(pid),
            host="127.0.0.1",
            port=port,
            binary=binary,
            log_path=str(log_path),
            password_file=password_file,
        )
        if process.wait_until(lambda: not rec.alive() or ready(rec), START_TIMEOUT_S, 0.2) and rec.alive():
            return rec
        process.stop(rec.pid, rec.start_time)
        raise EmbeddedServiceError(
            f"embedded {name} did not answer within {START_TIMEOUT_S:.0f}s; see {log_path}"
        )
