"""A failing audit never stops the trainer: it is counted and logged, and the retrain's result stands."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import agents.audit as audit
from pipeline.settings import load_settings


class _Trainer:
    def __init__(self) -> None:
        self.settings = load_settings()
        self.producer = None
        self.counters: dict[str, int] = {}

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


def test_failing_audit_is_counted_not_raised(monkeypatch, caplog) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("redis went away")

    monkeypatch.setattr(audit, "collect_audit", boom)
    trainer = _Trainer()
    with caplog.at_level(logging.ERROR, logger="agents.audit"):
        assert audit.audit_after_retrain(trainer, SimpleNamespace()) is None
    assert trainer.counters == {"audits_failed": 1}
    assert "audit after retrain failed" in caplog.text


def test_an_outage_during_the_audit_is_one_line_with_the_reason(monkeypatch, caplog, tmp_path) -> None:
    """A broker away while the audit is flushed to its topic: a warning naming the service, no traceback."""
    from kafka.errors import KafkaTimeoutError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from pipeline.audit import BudgetView, assemble

    report = assemble(
        generated_at_ms=0, model=None, figures=None, ndcg_baselines={}, data={}, budget=BudgetView(),
        cfg=load_settings().audit,
    )  # fmt: skip

    class _AwayBroker:
        def send(self, *args, **kwargs):
            return None

        def flush(self, timeout=None):
            raise KafkaTimeoutError("Timeout after waiting for 10 secs.")

    monkeypatch.setattr(audit, "collect_audit", lambda *a, **k: report)
    trainer = _Trainer()
    trainer.settings = load_settings(state_dir=tmp_path)
    trainer.producer = _AwayBroker()
    with caplog.at_level(logging.WARNING, logger="agents.audit"):
        assert audit.audit_after_retrain(trainer, SimpleNamespace()) is None
    assert "broker unreachable (KafkaTimeoutError)" in caplog.text
    assert all(record.exc_info is None for record in caplog.records)

    def redis_away(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(audit, "collect_audit", redis_away)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="agents.audit"):
        assert audit.audit_after_retrain(trainer, SimpleNamespace()) is None
    assert "redis unreachable (ConnectionError)" in caplog.text
    assert all(record.exc_info is None for record in caplog.records)
    assert trainer.counters == {"audits_failed": 2}


def test_successful_audit_is_written_and_counted(monkeypatch, tmp_path) -> None:
    from pipeline.audit import BudgetView, assemble

    report = assemble(
        generated_at_ms=0, model=None, figures=None, ndcg_baselines={}, data={}, budget=BudgetView(),
        cfg=load_settings().audit,
    )  # fmt: skip
    monkeypatch.setattr(audit, "collect_audit", lambda *a, **k: report)
    trainer = _Trainer()
    trainer.settings = load_settings(state_dir=tmp_path)
    path = audit.audit_after_retrain(trainer, SimpleNamespace())
    assert path is not None and path.exists() and path.with_suffix(".json").exists()
    assert trainer.counters == {"audits_written": 1}
    assert audit.latest_audit(trainer.settings)[1] == path
