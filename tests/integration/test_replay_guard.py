"""`privrec replay` as a user runs it: after the watermark, never over a newer choice, resumable.

A second synthetic replay used to be dropped whole as late (synthetic time
starts at the same instant every time) and re-granted consent to viewers who
had withdrawn or been erased; SIGINT exited 130 without a word. Real broker,
Redis and `privrec worker`.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from agents.procs import ChildProcess, settings_env
from pipeline.settings import Settings
from tests.cli import REPO, privrec
from tests.integration.harness import read_all, wait_assigned, wait_for, wait_processed, worker_stats
from tests.support.settings import isolated_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "test1:base64:" + base64.b64encode(b"r" * 32).decode()
REPLAY = (
    "replay",
    "--format",
    "synthetic",
    "--users",
    "30",
    "--items",
    "25",
    "--events",
    "900",
    "--consent",
    "all",
)


def make(kafka_bootstrap: str, redis_url: str, state: Path) -> Settings:
    return isolated_settings(
        kafka_bootstrap,
        redis_url,
        state,
        pseudonym={"keys": KEY},
        stream={"idle_close_ms": 600_000},
        partitions=2,
    )


@pytest.fixture(scope="module")
def settings(kafka_bootstrap, redis_url, tmp_path_factory) -> Settings:
    return make(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("replay") / "state")


@pytest.fixture(scope="module")
def env(settings) -> dict[str, str]:
    created = privrec("topics", "create", env=settings_env(settings))
    assert created.returncode == 0, created.stderr
    return settings_env(settings)


@pytest.fixture(scope="module")
def worker(settings, env) -> Iterator[ChildProcess]:
    child = ChildProcess(settings, Path(settings.state_dir) / "logs" / "worker.log", ["worker"]).start()
    try:
        wait_assigned(settings, 1, timeout=120)
        yield child
    finally:
        child.kill()


def ends(settings: Settings, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        tps = [TopicPartition(settings.topic(topic), p) for p in range(settings.partitions)]
        return {tp.partition: o for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def counters_after(settings: Settings, since_ms: int) -> Counter[str]:
    """The workers' summed counters, from stats published after ``since_ms`` (they come every 2 s)."""

    def fresh() -> Counter[str] | None:
        stats = worker_stats(settings)
        if not stats or any(w["at"] <= since_ms for w in stats):
            return None
        total: Counter[str] = Counter()
        for w in stats:
            total.update(w.get("counters") or {})
        return total

    return wait_for(fresh, 60, "worker stats published after the replay was processed")


def processed(settings: Settings) -> int:
    """Wait until the workers committed everything on playback.raw; the time (ms) they had."""
    wait_processed(settings, settings.topic("playback.raw"), ends(settings, "playback.raw"))
    return int(time.time() * 1000)


def replay(env, *extra: str) -> dict:
    done = privrec(*REPLAY, "--close-windows", "--json", *extra, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_second_replay_starts_after_the_watermark_and_loses_nothing(settings, env, worker):
    first = replay(env)
    before = counters_after(settings, processed(settings))
    assert before["windows_emitted"] > 0 and before["late"] == 0

    second = replay(env)
    assert second["shifted_s"] > 0 and second["start"].endswith("Z") and second["behind_watermark"] == 0
    assert second["events"] == first["events"]
    after = counters_after(settings, processed(settings))
    assert after["late"] == 0  # before the fix: every event of the second replay was late
    # shifted by whole windows, the second replay cuts exactly the first one's windows again
    assert after["windows_emitted"] == 2 * before["windows_emitted"]

    kept = privrec(*REPLAY, "--keep-times", "--json", env=env, timeout=300)  # the old behaviour, on request
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["behind_watermark"] > 0 and "dropped as late" in kept.stderr


def test_replay_never_overwrites_a_newer_choice_nor_returns_an_erased_viewer(settings, env, worker):
    keys = sorted({k for k, _v in read_all(settings, settings.topic("consent")) if k})
    withdrew, erased = keys[0].decode(), keys[1].decode()
    done = privrec("consent", withdrew, "--revoke", "personalization", env=env)
    assert done.returncode == 0, done.stderr
    done = privrec("erase", erased, env=env)
    assert done.returncode == 0, done.stderr

    out = replay(env, "--no-wait-consent")
    assert out["consent_refused"] == {"newer_consent": 1, "erased": 1}
    latest = {k: v for k, v in read_all(settings, settings.topic("consent")) if k}
    assert json.loads(latest[withdrew.encode()])["purposes"]["personalization"] is False
    assert json.loads(latest[withdrew.encode()])["source"] == "cli"
    text = privrec(*REPLAY, "--no-wait-consent", env=env, timeout=300)
    assert text.returncode == 0 and "1 erased, 1 newer_consent" in text.stdout, text.stdout


def test_sigint_says_what_was_sent_and_the_resume_command_sends_exactly_the_rest(
    kafka_bootstrap, redis_url, tmp_path
):
    a = make(kafka_bootstrap, redis_url, tmp_path / "a")
    b = make(kafka_bootstrap, redis_url, tmp_path / "b")
    args = ("--keep-times", "--no-wait-consent", "--events", "2400")
    for s in (a, b):
        assert privrec("topics", "create", env=settings_env(s)).returncode == 0
    whole = privrec(*REPLAY, *args, "--json", env=settings_env(b), timeout=300)
    assert whole.returncode == 0, whole.stderr

    base = {k: v for k, v in os.environ.items() if not k.startswith("PRIVREC_")}
    base["PYTHONPATH"] = str(REPO)
    child = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", *REPLAY, *args, "--rate", "150"],
        env={**base, **settings_env(a)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: sum(ends(a, "playback.raw").values()) >= 5, 60, "the replay's first messages")
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 130, (stdout, stderr)
    assert "replay interrupted: sent" in stderr and "Traceback" not in stderr
    (resume,) = [line for line in stderr.splitlines() if line.startswith("resume with: privrec ")]
    command = shlex.split(resume.removeprefix("resume with: privrec "))
    assert "--skip-messages" in command
    resumed = privrec(*command, "--json", env=settings_env(a), timeout=300)
    assert resumed.returncode == 0, resumed.stderr

    got = Counter(v for _k, v in read_all(a, a.topic("playback.raw")))
    want = Counter(v for _k, v in read_all(b, b.topic("playback.raw")))
    assert got == want  # nothing lost, nothing twice
