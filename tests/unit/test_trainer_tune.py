"""The trainer's self-tuning cadence: tuned at the first full retrain, then every ``retune_every``."""

from __future__ import annotations

from typing import Any

import pytest

import agents.trainer as trainer_module
from agents.trainer import Trainer, TrainReport
from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.recs.tune import TuneResult
from pipeline.settings import Settings

KEY = PseudonymKey("k1", b"0123456789abcdef0123456789abcdef")


@pytest.fixture
def trainer(tmp_path: Any) -> Trainer:
    settings = Settings(state_dir=tmp_path, trainer={"factors": 4, "iterations": 2, "retune_every": 3})
    return Trainer(settings, None, None, Pseudonymizer([KEY]))


def test_tuned_at_the_first_retrain_then_every_n_and_the_setting_is_what_fits(
    trainer: Trainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def fake_tune(store: Any, settings: Any) -> TuneResult:
        calls.append(len(calls))
        return TuneResult(
            "als", {"factors": 10 + len(calls), "weighting": "binary"}, 0.3, 5, 1.5, 40, "trials"
        )

    monkeypatch.setattr(trainer_module, "tune", fake_tune)
    rounds = []
    for _ in range(7):
        report = TrainReport()
        trainer.maybe_tune(report)
        rounds.append("tune" in report.seconds)
    assert rounds == [True, False, False, True, False, False, True]
    assert trainer.fit_settings.factors == 13 and trainer.fit_settings.weighting == "binary"
    assert trainer.cfg.factors == 4  # the configured defaults stay as they are


def test_a_failed_retune_keeps_the_setting_in_force(
    trainer: Trainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = iter(
        [
            TuneResult("als", {"factors": 12}, 0.3, 5, 1.0),
            TuneResult("als", {"factors": 4}, None, 0, 0.0, reason="too little data"),
        ]
    )
    monkeypatch.setattr(trainer_module, "tune", lambda store, settings: next(results))
    trainer.maybe_tune(TrainReport())
    trainer.retrains_since_tune = trainer.cfg.retune_every
    trainer.maybe_tune(TrainReport())
    assert trainer.fit_settings.factors == 12


def test_the_audit_setting_table_says_how_the_setting_was_chosen() -> None:
    from agents.audit import _tuning_rows

    rows = _tuning_rows(
        {"validation_ndcg_at_10": 0.17, "default_ndcg_at_10": 0.16, "trials": 9, "seconds": 3.2}
    )
    assert rows["self-tuned: validation NDCG@10"] == 0.17 and rows["self-tuned: trials"] == 9
    assert _tuning_rows({"validation_ndcg_at_10": None, "reason": "tuning off"}) == {
        "self-tuned": "no (tuning off)"
    }
    assert _tuning_rows({}) == {}
