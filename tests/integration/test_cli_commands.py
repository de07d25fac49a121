"""Every ``privrec`` subcommand not covered elsewhere, run as a user runs it: a subprocess.

Commands already run as subprocesses by other tests: ``up``, ``down``, ``status``,
``topics create|list``, ``smoke`` (test_cli_lifecycle), ``lag`` and ``lag --watch``
(test_lag), ``recs``, ``controls``, ``serve`` (test_serving), ``erase`` (test_rights,
test_export), ``export`` (test_export), ``demo`` and ``eval`` on MovieLens
(test_recs_pipeline). The rest are here; the stream commands share one worker
and one set of topics (module scope) to keep the added time small.

Assertions are on what a user sees (exit status, key lines, JSON keys), not on
record formats, so the tests survive internal changes.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from agents.procs import ChildProcess, settings_env
from pipeline.ops.summary import process_reports
from pipeline.settings import Settings
from tests.cli import REPO, privrec
from tests.integration.harness import wait_assigned, wait_for
from tests.support.settings import isolated_settings

pytestmark = pytest.mark.integration

KEY = "test1:base64:" + base64.b64encode(b"k" * 32).decode()


def _find(doc: Any, key: str) -> list[Any]:
    """Every value of ``key`` anywhere in a JSON document (formats may nest differently)."""
    if isinstance(doc, dict):
        return [v for k, v in doc.items() if k == key] + [x for v in doc.values() for x in _find(v, key)]
    if isinstance(doc, list):
        return [x for v in doc for x in _find(v, key)]
    return []


def _one_line_error(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("privrec: error:"), done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def settings(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state = tmp_path_factory.mktemp("cli") / "state"
    return isolated_settings(
        kafka_bootstrap,
        redis_url,
        state,
        pseudonym={"keys": KEY},
        stream={"idle_close_ms": 600_000},
        trainer={"tune_budget_s": 20},  # models/status/eval show the self-tuned setting
    )


@pytest.fixture(scope="module")
def env(settings: Settings) -> dict[str, str]:
    created = privrec("topics", "create", env=settings_env(settings))
    assert created.returncode == 0, created.stderr
    return settings_env(settings)


@pytest.fixture(scope="module")
def worker(settings: Settings, env: dict[str, str]) -> Iterator[ChildProcess]:
    """One ``privrec worker`` for the module; ``test_worker_stops_cleanly`` ends it."""
    child = ChildProcess(settings, Path(settings.state_dir) / "logs" / "worker.log", ["worker"]).start()
    try:
        wait_assigned(settings, 1, timeout=120)
        yield child
    finally:
        child.kill()


@pytest.fixture(scope="module")
def redis(settings: Settings) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(settings.redis.url.get_secret_value())
    yield client
    client.close()


def test_config_show_prints_effective_settings_with_secrets_masked(tmp_path):
    done = privrec(
        "config",
        "show",
        "--json",
        env={"PRIVREC_PSEUDONYM__KEYS": KEY, "PRIVREC_APP_ID": "cli-config-test", "PRIVREC_PARTITIONS": "3"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)["values"]
    assert shown["app_id"] == "cli-config-test" and shown["partitions"] == 3
    assert KEY.split(":")[-1] not in done.stdout  # the secret is masked


def test_consent_show_grant_revoke(env, worker):
    # (that --show reads the partition the producer wrote to is tests/unit/test_cli_partition.py)
    users = [f"cli-consent-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    empty = privrec("consent", users[0], "--show", env=env)
    assert empty.returncode == 0, empty.stderr
    assert _find(json.loads(empty.stdout), "consent") == [None]

    granted = privrec("consent", users[0], "--grant", "personalization", "analytics", env=env)
    assert granted.returncode == 0, granted.stderr
    assert "consent updated" in granted.stdout
    waited = privrec("consent", users[1], "--grant", "personalization", "--wait", "--timeout", "60", env=env)
    assert waited.returncode == 0, waited.stderr
    assert "consent updated" in waited.stdout and "applied by the workers" in waited.stdout
    for user in users:
        shown = privrec("consent", user, "--show", env=env)
        assert shown.returncode == 0, shown.stderr
        assert _find(json.loads(shown.stdout), "personalization") == [True], shown.stdout

    # a change with --show is applied, and the resulting record is printed
    revoked = privrec("consent", users[0], "--revoke", "personalization", "--show", env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert _find(json.loads(revoked.stdout), "personalization") == [False], revoked.stdout
    shown = json.loads(privrec("consent", users[0], "--show", env=env).stdout)
    assert _find(shown, "personalization") == [False]
    assert _find(shown, "analytics") == [True]

    _one_line_error(privrec("consent", users[1], "--grant", "telepathy", env=env))


@pytest.mark.slow
def test_replay_windows_close_and_train_once(settings, env, worker):
    replayed = privrec(
        "replay", "--format", "synthetic", "--users", "40", "--items", "30", "--events", "1500",
        "--consent", "all", "--json",
        env=env,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    out = json.loads(replayed.stdout)
    assert {"users", "consent", "events", "messages", "seconds", "windows_closed"} <= set(out)
    assert out["events"] > 0 and out["users"] > 0 and out["windows_closed"] is False

    closed = privrec("windows", "close", env=env)
    assert closed.returncode == 0, closed.stderr
    assert f"sent to {settings.partitions} partitions" in closed.stdout

    # the worker emits the closed windows as interactions; wait until some are on the topic
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    tps = [TopicPartition(settings.topic("interactions"), p) for p in range(settings.partitions)]
    try:
        wait_for(lambda: sum(consumer.end_offsets(tps).values()) > 0, 120, "interactions from the worker")
    finally:
        consumer.close()

    trained = privrec("train", "--once", "--force", "--json", env=env, timeout=300)
    assert trained.returncode == 0, trained.stderr
    report = json.loads(trained.stdout)
    assert {"version", "published", "users", "items", "interactions", "metrics", "counters"} <= set(report)
    assert report["published"] is True and report["users"] > 0 and report["interactions"] > 0

    text = privrec("train", "--once", env=env, timeout=300)  # same data, text summary
    assert text.returncode in (0, 3), text.stderr  # 3: the quality gate kept the live model
    assert text.stdout.startswith("model ")


def test_models_lists_every_training_round_newest_first(settings, env, worker):
    # after test_replay_windows_close_and_train_once: two rounds, the first published
    done = privrec("models", "--json", env=env)
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)
    assert len(runs) >= 2 and runs[0]["at_ms"] >= runs[1]["at_ms"]
    first = runs[-1]
    assert first["decision"] in ("published", "published_forced") and first["version"]
    assert 0 <= first["holdout_ndcg_at_10"] <= 1 and first["family"] == "als"
    assert first["setting"]["factors"] > 0 and first["at"].endswith("Z")  # the self-tuned setting
    assert first["tuning"]["trials"] >= 1 and first["validation_ndcg_at_10"] is not None
    assert runs[0]["decision"] in ("published", "kept_live") and runs[0]["live_ndcg_at_10"] is not None
    text = privrec("models", "--n", "1", env=env)
    assert text.returncode == 0, text.stderr
    assert "holdout ndcg@10" in text.stdout and len(text.stdout.strip().splitlines()) == 2
    assert privrec("models", "--n", "0", env=env).returncode == 2

    status = privrec("status", "--json", "--lag-samples", "0", env=env)  # the live model's tuning
    model = json.loads(status.stdout)["model"]
    assert model["validation_ndcg_at_10"] == model["tuning"]["validation_ndcg_at_10"] is not None
    assert model["tuning"]["family"] == "als" and model["tuning"]["trials"] >= 1
    text = privrec("status", "--lag-samples", "0", env=env)
    assert "self-tuned: als (" in text.stdout and "validation NDCG@10" in text.stdout


@pytest.mark.slow
def test_train_continuous_reports_and_stops_on_sigterm(settings, env, redis):
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "train"],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def reporting() -> str | None:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            urls = [r.to_dict().get("metrics") for r in process_reports(redis, settings.app_id, "trainer")]
            return next((u for u in urls if u), None)

        url = wait_for(reporting, 120, "the continuous trainer to report")
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert b"privrec_" in resp.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err


def test_bench_train_smallest_run_prints_the_comparison():
    done = privrec("bench", "train", "--interactions", "2000", "--repeats", "1", "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["bench"] == "train" and len(out["runs"]) == 1
    run = out["runs"][0]
    assert run["interactions"] == 2000 and run["repeats"] == 1
    assert {"privrec", "implicit", "ratio", "users", "items", "nnz"} <= set(run)
    assert "devices" not in run  # the GPU comparison only with --gpu
    assert run["tune_seconds"] == run["tune"]["seconds"] and run["tune_trials"] >= 1
    assert run["tune"]["within_budget"] and run["tune"]["budget_s"] == 60.0


def test_bench_train_gpu_without_a_gpu_is_a_one_line_error():
    from pipeline.recs.device import gpu_available

    if gpu_available():
        pytest.skip("this machine has a GPU: the refusal does not apply")
    done = privrec("bench", "train", "--interactions", "2000", "--repeats", "1", "--gpu", timeout=120)
    assert done.returncode == 2, done.stderr
    assert "trainer.device" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_bench_serve_on_the_configured_redis_cleans_up(env):
    done = privrec("bench", "serve", "--users", "50", "--reads", "200", "--n", "5", "--json", env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["users"] == 50 and out["reads"] == 200 and out["n"] == 5
    assert {"p50_ms", "p99_ms", "raw_get_p50_ms", "p50_ratio", "meets_target"} <= set(out)
    assert out["keys_left"] == 0  # the bench's versions are removed again


@pytest.mark.slow
def test_bench_stream_smallest_run_on_its_own_services():
    done = privrec("bench", "stream", "--events", "300", "--naive-events", "100", "--json", timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["events"] == 300 and out["naive_faust_events"] == 100
    assert {"privrec_events_per_s", "naive_faust_events_per_s", "raw_consume_events_per_s"} <= set(out)
    assert out["privrec_counters"]["received"] == 300


@pytest.mark.slow
def test_bench_erase_smallest_run_completes(env):
    done = privrec(
        "bench", "erase", "--requests", "1", "--users", "40", "--interval", "0.1", "--load-rate", "200",
        env=env,
        timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    out = json.loads(done.stdout)
    assert out["complete"] is True and out["requests"] == 1
    assert "seconds_total" in out


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "interactions"])
def test_eval_on_a_small_csv(env, tmp_path, fmt):
    from pipeline.sources import synthetic_ratings

    ratings = synthetic_ratings(users=40, items=30, events_target=1200, seed=5)
    path = tmp_path / "ratings.csv"
    if fmt == "csv":
        lines = [f"{r.user_id},{r.content_id},{r.weight},{int(r.timestamp_s)}" for r in ratings]
        header = "user_id,content_id,weight,timestamp"
    else:  # a play log: timestamp third, no weight
        lines = [f"{r.user_id},{r.content_id},{int(r.timestamp_s)}" for r in ratings]
        header = "user_id,content_id,timestamp"
    path.write_text("\n".join([header, *lines]) + "\n")
    done = privrec("eval", "--dataset", str(path), "--format", fmt, "--json", env=env, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert {"precision_at_10", "ndcg_at_10", "baseline_ndcg_at_10", "ratio"} <= set(out)
    assert out["users_evaluated"] > 0 and out["events"] > 0 and out["model"]["users"] > 0
    names = {"popularity", "itemknn_bm25", "ease", "als_textbook", "als_tuned"}
    assert set(out["baselines"]) == names and out["best_baseline"] in names
    assert all(0 <= b["ndcg_at_10"] <= 1 for b in out["baselines"].values())
    best = out["baselines"][out["best_baseline"]]["ndcg_at_10"]
    assert best == max(b["ndcg_at_10"] for b in out["baselines"].values())
    assert out["ratio_vs_best"] == pytest.approx(out["ndcg_at_10"] / best, abs=1e-3)
    assert out["baselines"]["als_textbook"]["ndcg_at_10"] == out["baseline_ndcg_at_10"]
    assert 0 < out["coverage_at_10"] <= 1 and 0 <= out["personalisation_at_10"] <= 1
    assert out["model"]["family"] == "als" and out["model"]["setting"]["factors"] > 0
    assert out["model"]["tuning"]["family"] == "als"  # trainer.families defaults to ALS alone


def test_worker_stops_cleanly_on_sigterm(worker):
    """Last in the module: ends the shared worker (Faust commits and leaves the group)."""
    assert worker.running, worker.log()[-3000:]
    worker.stop(timeout=60)
    assert worker.proc is not None and worker.proc.returncode == 0, worker.log()[-3000:]
    assert "Traceback" not in worker.log()


@pytest.mark.slow
def test_bench_gateway_smallest_run(env):
    done = privrec(
        "bench", "gateway", "--events", "400", "--clients", "2", "--users", "10", "--reads", "50", "--json",
        env=env,
        timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    keys = {"collector_events_per_s", "sdk_events_per_s", "recs_p50_ms", "recs_p99_ms", "reader_p99_ms"}
    assert keys <= set(out)
    assert out["collector_accepted"] == out["events"] == 400 and out["collector_statuses"] == {"202": 4}
    assert out["recs_statuses"] == {"200": 50 + 50}  # warm-up reads and timed reads, all answered
    assert out["collector_events_per_s"] > 0 and out["sdk_events_per_s"] > 0
