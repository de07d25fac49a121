"""Every privrec process of a state dir registers itself, so ``privrec down`` can stop them all.

A long-running command (worker, trainer, gateway, replay, ...) writes
``<state_dir>/procs/<pid>.json`` (mode 0600) as it starts and removes it as it
exits. The pid comes with the kernel's start time of the process, so a stale
entry (a process killed by SIGKILL) is recognised and pruned, and ``down``
never signals a process that merely reused the pid.

Before, ``down`` stopped the broker and Redis and left workers and gateways
running against nothing; the next ``up`` picked new ports and they never
reconnected.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.embedded import process
from pipeline.files import write_private

__all__ = ["PROCS_DIR", "RegisteredProcess", "live_processes", "register_process", "stop_processes"]

PROCS_DIR = "procs"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredProcess:
    """One running privrec command of the state dir."""

    pid: int
    start_time: int | None
    kind: str  # the sub-command: worker, train, gateway, ...
    started_at: float  # epoch seconds

    def alive(self) -> bool:
        return process.is_alive(self.pid, self.start_time)


def register_process(state_dir: Path, kind: str) -> Path | None:
    """Register this process under ``state_dir``; the entry is removed at exit.

    None (and a warning) when the state dir cannot be written: the command
    still runs, only ``down`` will not know it.
    """
    folder = Path(state_dir) / PROCS_DIR
    pid = os.getpid()
    entry = RegisteredProcess(pid, process.process_start_time(pid), kind, time.time())
    path = folder / f"{pid}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(asdict(entry)))
    except OSError as exc:
        log.warning(
            "could not register in %s (%s): `privrec down` will not stop this process", folder, exc.strerror
        )
        return None

    def unregister() -> None:
        if os.getpid() == pid:  # not in a forked child
            path.unlink(missing_ok=True)

    atexit.register(unregister)
    return path


def live_processes(state_dir: Path, *, exclude_pid: int | None = None) -> list[RegisteredProcess]:
    """The registered processes still running (stale entries are removed)."""
    folder = Path(state_dir) / PROCS_DIR
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            entry = RegisteredProcess(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if not entry.alive():
            path.unlink(missing_ok=True)
        elif entry.pid != exclude_pid:
            out.append(entry)
    return sorted(out, key=lambda e: e.started_at)


def stop_processes(
    entries: list[RegisteredProcess], timeout_s: float = 15.0
) -> tuple[list[RegisteredProcess], list[RegisteredProcess]]:
    """SIGTERM them all at once, SIGKILL those still running after ``timeout_s``.

    Returns (stopped gracefully, killed). A process that exits by itself
    meanwhile counts as stopped.
    """
    for e in entries:
        if e.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(e.pid, signal.SIGTERM)
    process.wait_until(lambda: not any(e.alive() for e in entries), timeout_s, 0.1)
    killed = [e for e in entries if e.alive()]
    for e in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(e.pid, signal.SIGKILL)
    process.wait_until(lambda: not any(e.alive() for e in killed), 5.0, 0.05)
    stopped = [e for e in entries if e not in killed]
    return stopped, killed
