"""Check, before patching, that faust-streaming and aiokafka are the versions the patches were written for.

:mod:`agents.compat` replaces private methods of faust-streaming and relies on
private attributes of aiokafka. A new release may rename or reshape any of
them; patching blindly would then either crash deep inside a rebalance or,
worse, silently stop fixing message loss. So at start-up every patched
attribute must exist with the expected shape (a coroutine function or a plain
one, with the expected leading parameters) and the installed versions must be
within the pins of ``pyproject.toml`` (kept equal to :data:`PINS` by a test).
Anything else fails the start with one :class:`CompatError` that lists every
problem.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from pipeline.errors import PrivrecError

__all__ = ["PINS", "CompatError", "Target", "check_compat", "problems", "targets"]

PINS: dict[str, tuple[str, str]] = {
    "faust-streaming": ("0.15.3", "0.16"),
    "aiokafka": ("0.14.0", "0.15"),
}
"""Distribution -> (lowest tested, first untested) version: ``>=low,<high`` in pyproject.toml."""


class CompatError(PrivrecError):
    """faust-streaming or aiokafka is not the version the patches in agents/compat.py were tested on."""


@dataclass(frozen=True)
class Target:
    """An attribute a patch replaces or relies on, and the shape it must have."""

    owner: Any
    name: str
    kind: str  # "async", "sync" or "attr" (exists, anything), "source" (named in __init__'s source)
    params: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        owner = getattr(self.owner, "__qualname__", getattr(self.owner, "__name__", repr(self.owner)))
        return f"{getattr(self.owner, '__module__', '')}.{owner}.{self.name}".lstrip(".")


def targets() -> list[Target]:
    """Everything :mod:`agents.compat` patches or reads, with its expected shape."""
    import aiokafka
    from aiokafka.consumer.fetcher import Fetcher
    from aiokafka.partitioner import DefaultPartitioner
    from faust import streams as faust_streams
    from faust import topics as faust_topics
    from faust.app.base import App
    from faust.tables import recovery as faust_recovery
    from faust.transport import consumer as faust_consumer
    from faust.transport.drivers import aiokafka as faust_aiokafka
    from faust.types.tuples import Message
    from mode.utils.queues import FlowControlEvent

    thread = faust_aiokafka.AIOKafkaConsumerThread
    return [
        # install_true_highwaters
        Target(thread, "_highwaters", "async", ("self", "partitions")),
        # install_fetch_snapshot (and the aiokafka behaviour it works around)
        Target(thread, "_fetch_records", "async", ("self", "consumer", "active_partitions", "timeout")),
        Target(Fetcher, "fetched_records", "async", ("self", "partitions")),
        # install_short_fetch_wait
        Target(thread, "_create_worker_consumer", "sync", ("self", "transport")),
        Target(aiokafka.AIOKafkaConsumer, "_fetch_max_wait_ms", "source"),
        # install_no_ack_for_skipped
        Target(faust_consumer.Consumer, "ack", "sync", ("self", "message")),
        Target(faust_consumer.Consumer, "seek", "async", ("self", "partition", "offset")),
        Target(faust_consumer.Consumer, "assignment", "sync", ("self",)),
        Target(Message, "tracked", "attr"),
        Target(Message, "generation_id", "attr"),
        Target(App, "consumer_generation_id", "attr"),
        Target(FlowControlEvent, "is_active", "sync", ("self",)),
        # install_resume_after_clear
        Target(faust_recovery.Recovery, "on_recovery_completed", "async", ("self", "generation_id")),
        Target(faust_recovery.Recovery, "_resume_streams", "async", ("self", "generation_id")),
        Target(faust_consumer.Consumer, "resume_partitions", "sync", ("self", "tps")),
        Target(FlowControlEvent, "resume", "sync", ("self",)),
        # install_fast_producer_lookup
        Target(faust_topics.Topic, "_get_producer", "async", ("self",)),
        Target(App, "in_transaction", "attr"),
        # install_hole_repair
        Target(faust_consumer.Consumer, "_acked", "source"),
        Target(faust_consumer.Consumer, "_committed_offset", "source"),
        Target(App, "timer", "sync", ("self",)),
        # as_current_event
        Target(faust_streams, "_current_event", "attr"),
        # KafkaPartitioner stands in for aiokafka's DefaultPartitioner
        Target(DefaultPartitioner, "__call__", "sync", ("cls", "key", "all_partitions", "available")),
    ]


def _version_tuple(text: str) -> tuple[int, ...]:
    """``(0, 15, 3)`` from ``0.15.3`` (or ``0.15.3rc1``: the release part only)."""
    m = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(p) for p in m[0].split(".")) if m else ()


def _installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _shape_problem(target: Target) -> str | None:
    if target.kind == "source":
        try:
            source = inspect.getsource(target.owner.__init__)
        except (OSError, TypeError):
            return f"{target.label}: cannot read the source of {target.owner.__qualname__}.__init__"
        return None if target.name in source else f"{target.label}: no longer set in __init__"
    if not hasattr(target.owner, target.name):
        return f"{target.label}: missing"
    if target.kind == "attr":
        return None
    value = inspect.getattr_static(target.owner, target.name)
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    value = inspect.unwrap(value)  # our own patches keep the original in __wrapped__
    if not callable(value):
        return f"{target.label}: not callable"
    is_async = inspect.iscoroutinefunction(value)
    if (target.kind == "async") != is_async:
        expected = "a coroutine function" if target.kind == "async" else "a plain function"
        return f"{target.label}: expected {expected}"
    try:
        names = tuple(inspect.signature(value).parameters)
    except (TypeError, ValueError):
        return f"{target.label}: signature unreadable"
    if names[: len(target.params)] != target.params:
        return f"{target.label}: parameters {names} do not start with {target.params}"
    return None


def problems(
    pins: dict[str, tuple[str, str]] | None = None, checked: list[Target] | None = None
) -> list[str]:
    """Every reason the patches cannot be installed safely (empty: all is as tested)."""
    out = []
    for dist, (low, high) in (PINS if pins is None else pins).items():
        version = _installed_version(dist)
        if version is None:
            out.append(f"{dist} is not installed")
        elif not _version_tuple(low) <= _version_tuple(version) < _version_tuple(high):
            out.append(f"{dist} {version} is outside the tested range >={low},<{high}")
    for target in targets() if checked is None else checked:
        problem = _shape_problem(target)
        if problem is not None:
            out.append(problem)
    return out


_checked: list[bool] = []


def check_compat(*, force: bool = False) -> None:
    """Raise :class:`CompatError` unless the installed libraries are what the patches expect (once)."""
    if _checked and not force:
        return
    found = problems()
    if found:
        raise CompatError(
            "agents/compat.py patches faust-streaming/aiokafka internals and was tested with "
            + ", ".join(f"{d}>={lo},<{hi}" for d, (lo, hi) in PINS.items())
            + "; refusing to start: "
            + "; ".join(found)
        )
    _checked.append(True)
