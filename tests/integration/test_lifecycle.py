"""`privrec up`/`down` as one: a lock, stable ports, every process of the state dir stopped, data kept.

Each test runs the real command line against its own embedded broker and Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from pipeline.embedded.process import is_alive, wait_until
from pipeline.embedded.registry import live_processes
from pipeline.embedded.snapshot import snapshot_path
from pipeline.rights.ledger import Pending
from pipeline.rights.receipts import build_receipt
from pipeline.wire import encode
from tests.cli import REPO, privrec

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PRIVREC_STATE_DIR": str(tmp_path / "state"), "PRIVREC_PARTITIONS": "2"}


def _spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRIVREC_")}
    base["PYTHONPATH"] = str(REPO) + os.pathsep + base.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-m", "agents.cli", *args],
        env={**base, **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _servers_of(state_dir: Path) -> list[int]:
    """Pids of every process working in ``state_dir`` (privrec starts its servers there; Redis moves
    on to its data folder inside)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(state_dir.resolve()):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _records(state_dir: Path) -> dict[str, dict]:
    return json.loads((state_dir / "services.json").read_text())


def test_concurrent_up_starts_one_broker_and_one_redis(tmp_path):
    env = _env(tmp_path)
    state = tmp_path / "state"
    try:
        ups = [_spawn("up", "--json", env=env) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in ups]
        assert all(p.returncode == 0 for p in ups), [o[1] for o in outs]
        docs = [json.loads(o[0])["services"] for o in outs]
        states = sorted(d["kafka"]["state"] for d in docs)
        assert states == ["already running", "started"]
        assert docs[0]["kafka"]["pid"] == docs[1]["kafka"]["pid"]
        assert docs[0]["redis"]["pid"] == docs[1]["redis"]["pid"]
        records = _records(state)
        assert sorted(_servers_of(state)) == sorted(r["pid"] for r in records.values())
    finally:
        down = privrec("down", "--json", env=env)
    assert down.returncode == 0, down.stderr
    assert _servers_of(state) == []


def test_down_stops_the_state_dirs_processes_and_up_keeps_the_ports(tmp_path):
    env = _env(tmp_path)
    state = tmp_path / "state"
    assert privrec("up", env=env).returncode == 0
    first = _records(state)
    gateway = _spawn("gateway", "--port", "0", env=env)
    try:
        assert gateway.stdout is not None
        assert "listening on" in gateway.stdout.readline()
        assert [e.kind for e in live_processes(state)] == ["gateway"]
        down = privrec("down", "--json", env=env)
        assert down.returncode == 0, down.stderr
        doc = json.loads(down.stdout)
        assert doc["processes"] == [{"pid": gateway.pid, "kind": "gateway", "signal": "SIGTERM"}]
        assert gateway.wait(timeout=5) == 0  # already gone when `down` returned
        assert sorted(doc["stopped"]) == ["kafka", "redis"]
        assert live_processes(state) == []

        assert privrec("up", env=env).returncode == 0
        second = _records(state)
        assert {n: r["port"] for n, r in second.items()} == {n: r["port"] for n, r in first.items()}
        assert all(not is_alive(r["pid"], r["start_time"]) for r in first.values())
    finally:
        gateway.kill()
        privrec("down", env=env)


def test_data_survives_down_and_up(tmp_path):
    """Consent, an erasure receipt, a group's committed offsets and Redis keys outlive a restart."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    env = _env(tmp_path)
    state = tmp_path / "state"
    try:
        assert privrec("up", env=env).returncode == 0
        assert privrec("topics", "create", env=env).returncode == 0
        user = f"viewer-{uuid.uuid4().hex[:8]}"
        granted = privrec("consent", user, "--grant", "personalization", "--json", env=env)
        assert granted.returncode == 0, granted.stderr
        consent_before = json.loads(privrec("consent", user, "--show", "--json", env=env).stdout)
        rec = _records(state)["kafka"]
        bootstrap = f"{rec['host']}:{rec['port']}"
        # a receipt as the trainer writes it (worker and trainer are not what is tested here)
        request_id = uuid.uuid4().hex
        entry = Pending(request_id, ["ps-1"], 1_700_000_000_000, {"stream": 1, "trainer": 2, "cache": 3})
        receipt = build_receipt(entry, 1_700_000_001_000, 1_700_000_002_000)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        producer.send("privrec.receipts", key=b"ps-1", value=encode(receipt)).get(timeout=10)
        for i in range(5):
            producer.send("privrec.interactions", partition=0, key=b"k", value=b"%d" % i).get(timeout=10)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id="probe", enable_auto_commit=False)
        tp = TopicPartition("privrec.interactions", 0)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(3, "", -1)})
        consumer.close()
        rrec = _records(state)["redis"]
        password = Path(rrec["password_file"]).read_text().strip()
        r = redis.Redis(host="127.0.0.1", port=rrec["port"], password=password)
        r.set("privrec:test:kept", b"yes")
        r.close()

        erased = privrec("erase", "someone-else", "--json", env=env)  # no worker: it stays pending
        assert erased.returncode == 0, erased.stderr
        pending_id = json.loads(erased.stdout)["request_id"]

        down = privrec("down", "--json", env=env)
        assert down.returncode == 0, down.stderr
        saved = json.loads(down.stdout)["snapshot"]
        assert saved["records"] >= 7 and saved["groups"] >= 1
        assert oct(snapshot_path(state).stat().st_mode & 0o777) == "0o600"

        up = privrec("up", "--json", env=env)
        assert up.returncode == 0, up.stderr
        assert json.loads(up.stdout)["restored"]["records"] == saved["records"]
        rec = _records(state)["kafka"]
        bootstrap = f"{rec['host']}:{rec['port']}"
        shown = privrec("consent", user, "--show", "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout) == consent_before
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        offsets = admin.list_group_offsets("probe")["probe"]
        admin.close()
        assert offsets[tp].offset == 3
        reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        rtps = [TopicPartition("privrec.receipts", p) for p in range(2)]
        reader.assign(rtps)
        reader.seek_to_beginning()
        got: list[bytes] = []
        wait_until(
            lambda: got.extend(r.value for rs in reader.poll(500).values() for r in rs) or bool(got), 20
        )
        reader.close()
        assert got == [encode(receipt)]
        rrec = _records(state)["redis"]
        r = redis.Redis(host="127.0.0.1", port=rrec["port"], password=password)
        assert r.get("privrec:test:kept") == b"yes"
        r.close()

        # `privrec receipts`: the receipt (complete) and the request (pending), from the restored topics
        listed = privrec("receipts", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        rows = {row["request_id"]: row for row in json.loads(listed.stdout)}
        assert rows[request_id]["complete"] and rows[request_id]["pending"] == []
        assert rows[request_id]["receipt"]["completed_at"] == receipt.completed_at
        assert rows[pending_id]["pending"] == ["stream", "trainer", "cache", "receipt"]
        assert rows[pending_id]["sources"] == ["broker", "ledger"]
        assert "someone-else" not in listed.stdout  # the raw id never shows
        only = privrec("receipts", "--pending", "--json", env=env)
        assert [row["request_id"] for row in json.loads(only.stdout)] == [pending_id]
        text = privrec("receipts", "--since", "1h", env=env)
        assert text.returncode == 0 and "1 requests, 0 with a receipt, 1 pending" in text.stdout

        # the proof ledger outlives a broker that lost everything
        assert privrec("down", "--no-snapshot", env=env).returncode == 0
        snapshot_path(state).unlink()
        assert privrec("up", env=env).returncode == 0
        ledger_only = json.loads(privrec("receipts", "--json", env=env).stdout)
        assert [(row["request_id"], row["sources"]) for row in ledger_only] == [(pending_id, ["ledger"])]
    finally:
        privrec("down", "--no-snapshot", env=env)
