"""The model quality history: one record per training round, kept in Redis beside the cache.

Each full retrain, published or not, appends a :class:`ModelRun` (version,
family and setting, holdout and validation NDCG@10, the live model's, the gate's
decision and reason, sizes, timings; never a user) to a capped list under the
deployment's namespace. ``privrec models`` prints it and the audit can cite it;
the live model's NDCG on ``/metrics`` is the same figure over time.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = ["DEFAULT_KEEP", "SETTING_FIELDS", "Decision", "ModelRun", "decide", "read_runs", "record_run"]

Decision = Literal["published", "published_forced", "kept_live", "not_trained"]
"""``published_forced``: the gate said no, yet the live model held erased users' data (or ``--force``)."""

DEFAULT_KEEP = 500
"""Runs kept: years of daily retrains, a few hundred kilobytes."""


class ModelRun(msgspec.Struct, frozen=True, kw_only=True):
    """What one training round did: figures and decisions only."""

    at_ms: int
    decision: Decision
    reason: str
    version: str | None = None
    family: str = "als"
    setting: dict[str, Any] = msgspec.field(default_factory=dict)
    holdout_ndcg_at_10: float | None = None
    validation_ndcg_at_10: float | None = None
    live_ndcg_at_10: float | None = None
    users: int = 0
    items: int = 0
    interactions: int = 0
    seconds: dict[str, float] = msgspec.field(default_factory=dict)
    tuning: dict[str, Any] = msgspec.field(default_factory=dict)
    """Self-tuning: validation NDCG@10, the previous setting's score, trials, seconds, why it stopped."""


SETTING_FIELDS = (
    "factors",
    "regularization",
    "iterations",
    "alpha",
    "weighting",
    "watched_unit_ms",
    "completion_bonus",
)
"""The trainer settings that define an ALS model's setting (the rest is operations)."""


def decide(published: bool, forced: bool, evaluated: bool) -> Decision:
    """The history's name for a round's outcome."""
    if published:
        return "published_forced" if forced else "published"
    return "kept_live" if evaluated else "not_trained"


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ModelRun).decode


def record_run(redis: Any, key: str, run: ModelRun, keep: int = DEFAULT_KEEP) -> None:
    """Append ``run`` (newest first) and drop the oldest beyond ``keep``, atomically."""
    pipe = redis.pipeline(transaction=True)
    pipe.lpush(key, _encode(run))
    pipe.ltrim(key, 0, keep - 1)
    pipe.execute()


def read_runs(redis: Any, key: str, n: int = 20) -> list[ModelRun]:
    """The newest ``n`` runs, newest first; records that no longer decode are skipped."""
    runs: list[ModelRun] = []
    for raw in redis.lrange(key, 0, n - 1):
        try:
            runs.append(_decode(raw))
        except msgspec.DecodeError:
            continue
    return runs
