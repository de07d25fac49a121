"""What `privrec status` reads, against a tiny in-memory Redis: process stats, live model, receipts."""

from __future__ import annotations

import json

from pipeline.ops.keys import stats_key
from pipeline.ops.summary import _receipt_summary, live_model, process_reports
from pipeline.serving.layout import Layout
from tests.support.fake_redis import FakeRedis, published


def stats(kind: str, pid: str, at: int, **extra) -> str:
    return json.dumps({kind: pid, "at": at, **extra})


def test_process_reports_of_one_app_newest_first():
    now = 1_000_000
    redis = FakeRedis(
        {
            stats_key("worker", "app:a"): stats("worker", "app:a", now - 30_000, assigned=[2, 0]),
            stats_key("worker", "app:b"): stats(
                "worker", "app:b", now - 1_000, assigned=[1], metrics="http://h:1/metrics"
            ),
            stats_key("worker", "app-other:c"): stats("worker", "app-other:c", now),  # another app
            stats_key("worker", "app:broken"): "{not json",
            stats_key("trainer", "app:t"): stats(
                "trainer", "app:t", now - 2_000, metrics="http://h:2/metrics"
            ),
        }
    )
    workers = process_reports(redis, "app", "worker", now)
    assert [(w.id, w.age_s, w.assigned, w.metrics) for w in workers] == [
        ("app:b", 1.0, (1,), "http://h:1/metrics"),
        ("app:a", 30.0, (0, 2), None),
    ]
    (trainer,) = process_reports(redis, "app", "trainer", now)
    assert trainer.to_dict() == {
        "kind": "trainer",
        "id": "app:t",
        "age_s": 2.0,
        "assigned": [],
        "metrics": "http://h:2/metrics",
        "pid": None,
        "host": None,
    }
    assert not trainer.exited()  # no pid: nobody can tell


def test_a_report_of_a_gone_process_on_this_host_has_exited():
    import json
    import os
    import socket

    from pipeline.ops.summary import process_identity

    me = process_identity()
    assert me["pid"] == os.getpid() and me["host"] == socket.gethostname()
    mine = {"worker": "app:me", "at": 1, **me}
    gone = mine | {"worker": "app:gone", "start_time": (me["start_time"] or 0) + 1}  # a reused pid
    elsewhere = gone | {"worker": "app:far", "host": "another-host"}
    redis = FakeRedis({stats_key("worker", d["worker"]): json.dumps(d) for d in (mine, gone, elsewhere)})
    exited = {r.id: r.exited() for r in process_reports(redis, "app", "worker", 2)}
    assert exited == {"app:me": False, "app:gone": True, "app:far": False}


def test_live_model_and_its_ages():
    layout = Layout("privrec:app")
    assert live_model(FakeRedis({}), layout) is None
    model = live_model(published(layout, "v3", ndcg=0.3, switched_ms=2_000_000), layout)
    assert model is not None
    assert model.to_dict(now_ms=2_010_000) == {
        "version": "v3",
        "family": "als",  # an ALS meta from before families has no "family" key
        "ndcg_at_10": 0.3,
        "trained_at_ms": 1_940_000,
        "trained_at": "1970-01-01T00:32:20Z",
        "age_s": 70.0,
        "published_at_ms": 2_000_000,
        "published_at": "1970-01-01T00:33:20Z",
        "published_age_s": 10.0,
        "validation_ndcg_at_10": None,
        "tuning": {},
    }


def test_live_model_carries_its_self_tuning():
    layout = Layout("privrec:app")
    redis = published(layout, "v3", ndcg=0.3, switched_ms=2_000_000)
    tuning = {"family": "als", "setting": {"factors": 128}, "validation_ndcg_at_10": 0.17, "trials": 9}
    meta = {"version": "v3", "metrics": {"ndcg_at_10": 0.3, "validation_ndcg_at_10": 0.17, "tuning": tuning}}
    redis.data[layout.meta("v3")] = json.dumps(meta)
    model = live_model(redis, layout)
    assert model is not None and model.validation_ndcg_at_10 == 0.17 and model.tuning == tuning


def test_receipt_summary_reads_times_and_stage_names_only():
    value = json.dumps(
        {
            "schema": "receipt.v1",
            "request_id": "ab" * 16,
            "pseudonym": "k1." + "0" * 32,
            "requested_at": 1_000,
            "completed_at": 3_500,
            "stages": {"trainer": 3_000, "stream": 1_500, "cache": 3_500},
            "remains": [],
        }
    ).encode()
    summary = _receipt_summary(value, timestamp_ms=9_999)
    assert summary == {
        "request_id": "ab" * 16,
        "completed_at_ms": 3_500,
        "completed_at": "1970-01-01T00:00:03Z",
        "duration_s": 2.5,
        "stages": ["cache", "stream", "trainer"],
    }
    assert "0" * 32 not in json.dumps(summary)  # never the pseudonym
    garbled = _receipt_summary(b"\xff", timestamp_ms=9_999)
    assert garbled == {
        "request_id": None,
        "completed_at_ms": 9_999,
        "completed_at": "1970-01-01T00:00:09Z",
        "duration_s": None,
        "stages": [],
    }
