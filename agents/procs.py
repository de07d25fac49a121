"""Run privrec's own processes (workers, trainer) as children, and watch them through Redis.

Used by `privrec demo`, the benchmarks and the integration tests, so all three start
workers the same way an operator would: ``privrec worker`` with the same settings.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr

from pipeline.ops.keys import stats_pattern
from pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[1]

T = TypeVar("T")


def settings_env(settings: Settings) -> dict[str, str]:
    """The PRIVREC_* environment under which a child process sees exactly these settings."""
    env: dict[str, str] = {}

    def put(name: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, Path):
            value = value.resolve()
        elif isinstance(value, BaseModel):  # a nested section (gateway.limits): JSON for pydantic-settings
            value = json.dumps(value.model_dump(mode="json"))
        elif isinstance(value, (list, tuple, set, frozenset, dict)):
            value = json.dumps(value if isinstance(value, dict) else list(value), default=str)
        env[name] = str(value)

    def walk(prefix: str, model: BaseModel) -> None:  # nested models at any depth (gateway.limits)
        for name, value in model:
            if isinstance(value, BaseModel):
                walk(f"{prefix}{name.upper()}__", value)
            elif isinstance(value, list | dict):  # pydantic-settings reads complex values as JSON
                put(f"{prefix}{name.upper()}", json.dumps(value, default=str))
            else:
                put(f"{prefix}{name.upper()}", value)

    walk("PRIVREC_", settings)
    return env


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings_env(settings))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `check` until it returns something truthy; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class ChildProcess:
    """One ``privrec <args>`` child with its output in a log file."""

    def __init__(self, settings: Settings, log_path: Path, args: Sequence[str] = ("worker",)) -> None:
        self.settings = settings
        self.args = list(args)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ChildProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, argv list
                [sys.executable, "-m", "agents.cli", *self.args],
                env=child_env(self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 60) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def stop(self, timeout: float = 60) -> None:
        """Graceful stop (SIGTERM: Faust commits and leaves the group)."""
        self.kill(signal.SIGTERM, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def worker_stats(redis_client: Any, app_id: str) -> list[dict[str, Any]]:
    """The live stats every worker of `app_id` publishes to Redis (short TTL)."""
    out = []
    for key in redis_client.scan_iter(stats_pattern("worker", app_id)):
        raw = redis_client.get(key)
        if raw:
            out.append(json.loads(raw))
    return out


def clear_worker_stats(redis_client: Any, app_id: str) -> None:
    for key in redis_client.scan_iter(stats_pattern("worker", app_id)):
        redis_client.delete(key)


def group_settled(
    redis_client: Any, app_id: str, partitions: int, workers: int, fresh_ms: int = 5000
) -> bool:
    """True when `workers` live workers together own every partition exactly once."""
    now = time.time() * 1000
    fresh = [s for s in worker_stats(redis_client, app_id) if now - s["at"] < fresh_ms and s.get("assigned")]
    owned = sorted(p for s in fresh for p in s["assigned"])
    return len(fresh) >= workers and owned == list(range(partitions))


def wait_assigned(redis_client: Any, settings: Settings, workers: int, timeout: float = 120) -> None:
    wait_until(
        lambda: group_settled(redis_client, settings.app_id, settings.partitions, workers),
        timeout,
        f"{workers} worker(s) to own all {settings.partitions} partitions",
    )
