"""The gateway against the real broker and Redis: every refusal, and the happy paths."""

from __future__ import annotations

import gzip
import json
import time
import uuid

import pytest
import requests

from pipeline.serving import Layout, publish
from pipeline.wire import RedactedBatch, decode_as
from tests.integration.gateway_harness import running_gateway
from tests.integration.harness import read_all
from tests.support.events import playback_event

pytestmark = pytest.mark.integration

ALL_VIEWER = ["events:write", "recs:read:self", "privacy:self"]


@pytest.fixture
def gw(make_settings):
    settings = make_settings(partitions=2)
    with running_gateway(settings) as running:
        yield running


def _event(i: int = 0, **overrides):
    event = playback_event(i, event_time=int(time.time() * 1000) - 60_000)
    del event["user_id"]  # the token says who
    event.update(overrides)
    return event


def _post(gw, token, body, **headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json", **headers}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    return requests.post(gw.url + "/v1/events", data=data, headers=hdrs, timeout=30)


def test_events_are_produced_keyed_by_the_canonical_viewer(gw):
    token = gw.token(user="  Alice@Example.COM", scopes=ALL_VIEWER)
    body = {
        "events": [_event(0), _event(1, user_id="alice@example.com"), _event(2, user_id="ALICE@example.com ")]
    }
    resp = _post(gw, token, body)
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": 3, "errors": []}
    assert resp.headers["Cache-Control"] == "no-store"
    records = read_all(gw.settings, gw.settings.topic("playback.raw"))
    assert len(records) == 1
    key, value = records[0]
    assert key == b"alice@example.com"
    envelope = json.loads(value)
    assert envelope["schema"] == "playback.batch.v1"
    assert [e["user_id"] for e in envelope["events"]] == ["alice@example.com"] * 3


def test_an_event_naming_another_viewer_is_refused_at_its_index(gw):
    token = gw.token(user="alice", scopes=["events:write"])
    body = {"events": [_event(0), _event(1, user_id="bob"), _event(2, content_id="bad id!")]}
    resp = _post(gw, token, body)
    assert resp.status_code == 202
    assert resp.json() == {
        "accepted": 1,
        "errors": [
            {"index": 1, "reason": "other_user", "path": "$.events[1].user_id"},
            {"index": 2, "reason": "invalid_content_id", "path": "$.events[2].content_id"},
        ],
    }
    records = read_all(gw.settings, gw.settings.topic("playback.raw"))
    assert [k for k, _ in records] == [b"alice"]
    assert b"bob" not in records[0][1]


def test_no_valid_event_is_422_and_nothing_is_produced(gw):
    token = gw.token(user="alice", scopes=["events:write"])
    resp = _post(gw, token, {"events": [_event(0, user_id="bob")]})
    assert resp.status_code == 422
    assert resp.json()["errors"] == [{"index": 0, "reason": "other_user", "path": "$.events[0].user_id"}]
    assert read_all(gw.settings, gw.settings.topic("playback.raw"), quiet_s=0.5) == []


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("none", 401, "missing"),
        ("basic", 401, "malformed"),
        ("garbage", 401, "malformed"),
        ("expired", 401, "expired"),
        ("issuer", 401, "wrong_issuer"),
        ("audience", 401, "wrong_audience"),
        ("signature", 401, "bad_signature"),
        ("scope", 403, "insufficient_scope"),
        ("service", 403, "insufficient_scope"),
    ],
)
def test_token_refusals(gw, case, status, reason):
    import jwt

    good = gw.token(user="alice", scopes=["events:write"])
    settings = gw.settings
    now = int(time.time())
    claims = {
        "iss": "privrec",
        "aud": "privrec-gateway",
        "sub": "alice",
        "scope": "events:write",
        "exp": now + 60,
    }
    key = (settings.state_dir / "gateway" / "hs256.key").read_text().strip()
    tokens = {
        "none": None,
        "garbage": "not.a.jwt",
        "expired": jwt.encode({**claims, "exp": now - 3600}, key, algorithm="HS256"),
        "issuer": jwt.encode({**claims, "iss": "evil"}, key, algorithm="HS256"),
        "audience": jwt.encode({**claims, "aud": "other"}, key, algorithm="HS256"),
        "signature": jwt.encode(claims, "x" * 64, algorithm="HS256"),
        "scope": gw.token(user="alice", scopes=["recs:read:self"]),
        "service": gw.token(service="recs-ui", scopes=["recs:read:any"]),
    }
    headers = {"Content-Type": "application/json"}
    if case == "basic":
        headers["Authorization"] = "Basic " + good
    elif tokens[case] is not None:
        headers["Authorization"] = "Bearer " + tokens[case]
    resp = requests.post(
        gw.url + "/v1/events", data=json.dumps({"events": [_event()]}), headers=headers, timeout=30
    )
    assert resp.status_code == status
    assert resp.json() == {"error": reason}
    assert "WWW-Authenticate" in resp.headers
    assert "alice" not in resp.text


def test_body_refusals(gw):
    token = gw.token(user="alice", scopes=["events:write"])
    max_bytes = gw.settings.gateway.max_body_bytes
    big = json.dumps({"events": [_event(0, search_query="x" * (max_bytes + 10))]}).encode()
    assert _post(gw, token, big).status_code == 413
    too_many = {"events": [_event(i) for i in range(501)]}
    resp = _post(gw, token, too_many)
    assert (resp.status_code, resp.json()) == (413, {"error": "too_many_events"})
    resp = _post(gw, token, b"<xml/>", **{"Content-Type": "application/xml"})
    assert (resp.status_code, resp.json()) == (415, {"error": "unsupported_media_type"})
    resp = _post(gw, token, b"{not json")
    assert (resp.status_code, resp.json()) == (400, {"error": "invalid_json"})
    bomb = gzip.compress(b" " * (50 * max_bytes))
    assert len(bomb) < max_bytes
    resp = _post(gw, token, bomb, **{"Content-Encoding": "gzip"})
    assert (resp.status_code, resp.json()) == (413, {"error": "body_too_large"})
    resp = _post(gw, token, b"\x1f\x8bnot gzip", **{"Content-Encoding": "gzip"})
    assert (resp.status_code, resp.json()) == (400, {"error": "invalid_gzip"})
    resp = _post(gw, token, b"{}", **{"Content-Encoding": "br"})
    assert resp.status_code == 415


def test_gzip_and_text_plain_bodies_are_accepted(gw):
    token = gw.token(user="alice", scopes=["events:write"])
    body = json.dumps({"events": [_event(0)]}).encode()
    resp = _post(gw, token, gzip.compress(body), **{"Content-Encoding": "gzip"})
    assert resp.status_code == 202 and resp.json()["accepted"] == 1
    resp = _post(gw, token, body, **{"Content-Type": "text/plain;charset=UTF-8"})
    assert resp.status_code == 202 and resp.json()["accepted"] == 1


def test_rate_limited_with_retry_after(make_settings):
    settings = make_settings(gateway={"limits": {"events": "3/minute"}})
    with running_gateway(settings) as gw:
        token = gw.token(user="alice", scopes=["events:write"])
        statuses = [_post(gw, token, {"events": [_event(i)]}) for i in range(4)]
        assert [r.status_code for r in statuses] == [202, 202, 202, 429]
        assert statuses[-1].json() == {"error": "rate_limited"}
        assert 1 <= int(statuses[-1].headers["Retry-After"]) <= 60
        # another viewer from the same address is limited by the address count too
        other = gw.token(user="bob", scopes=["events:write"])
        assert _post(gw, other, {"events": [_event(9)]}).status_code == 429
        keys = gw.call(gw.deps.redis.keys("*"))
        assert not any(b"alice" in k or b"127.0.0.1" in k for k in keys)


def _publish(gw, users):
    import redis

    from pipeline.recs.types import PopularItem, Recommendation, UserRecs

    client = redis.Redis.from_url(gw.settings.redis.url.get_secret_value())
    layout = Layout.from_settings(gw.settings)
    pz = gw.deps.pseudonymizer
    recs = {
        pz.pseudonym(u): UserRecs(
            full=[
                Recommendation(content_id=f"m{i}", score=1.0 - i / 100, because=(f"w{i}",)) for i in range(12)
            ],
            limited=[],
        )
        for u in users
    }
    popular = [PopularItem(content_id=f"p{i}", score=1.0) for i in range(20)]
    publish(client, layout, "v1", recs, popular, {"version": "v1"}, 3600)
    client.close()


def test_recommendations_without_pseudonym(gw):
    _publish(gw, ["alice"])
    token = gw.token(user="ALICE", scopes=["recs:read:self"])
    resp = requests.get(gw.url + "/v1/me/recommendations?n=3", headers=gw.headers(token), timeout=30)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.json()
    assert "user" not in body and gw.deps.pseudonymizer.pseudonym("alice") not in resp.text
    assert body["personalized"] is True and body["source"] == "full"
    assert body["items"][0] == {"content_id": "m0", "score": 1.0, "because": ["w0"]}
    assert len(body["items"]) == 3
    for bad in ("0", "101", "ten"):
        r = requests.get(gw.url + f"/v1/me/recommendations?n={bad}", headers=gw.headers(token), timeout=30)
        assert (r.status_code, r.json()) == (400, {"error": "invalid_n"})


def test_user_recommendations_need_the_service_scope_and_do_not_tell_known_from_unknown(gw):
    _publish(gw, ["alice"])
    viewer = gw.token(user="bob", scopes=ALL_VIEWER)
    answers = [
        requests.get(gw.url + f"/v1/users/{u}/recommendations", headers=gw.headers(viewer), timeout=30)
        for u in ("alice", "nobody-" + uuid.uuid4().hex)
    ]
    assert [(r.status_code, r.text) for r in answers] == [(403, '{"error":"insufficient_scope"}')] * 2
    service = gw.token(service="recs-ui", scopes=["recs:read:any"])
    resp = requests.get(
        gw.url + "/v1/users/Alice/recommendations?n=2", headers=gw.headers(service), timeout=30
    )
    assert resp.status_code == 200 and resp.json()["source"] == "full" and "user" not in resp.json()
    # a service token cannot send events or read "its own" recommendations
    resp = requests.get(gw.url + "/v1/me/recommendations", headers=gw.headers(service), timeout=30)
    assert resp.status_code == 403


def test_cors_preflight(make_settings):
    settings = make_settings(gateway={"cors_origins": ["https://app.example"]})
    with running_gateway(settings) as gw:
        pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        ok = requests.options(
            gw.url + "/v1/events", headers={"Origin": "https://app.example", **pre}, timeout=30
        )
        assert ok.status_code == 204
        assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
        bad = requests.options(
            gw.url + "/v1/events", headers={"Origin": "https://evil.example", **pre}, timeout=30
        )
        assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad.headers
        token = gw.token(user="alice", scopes=["events:write"])
        r = requests.post(
            gw.url + "/v1/events",
            data=json.dumps({"events": [_event()]}),
            headers={"Origin": "https://app.example", "Content-Type": "text/plain", **gw.headers(token)},
            timeout=30,
        )
        assert r.status_code == 202 and r.headers["Access-Control-Allow-Origin"] == "https://app.example"


def test_health_metrics_openapi(gw):
    assert requests.get(gw.url + "/healthz", timeout=30).json() == {"status": "ok"}
    token = gw.token(user="alice", scopes=["events:write"])
    _post(gw, None, {"events": [_event()]})
    _post(gw, token, {"events": [_event()]})
    text = requests.get(gw.url + "/metrics", timeout=30).text
    assert 'privrec_gateway_requests_total{method="POST",route="/v1/events",status="202"} 1.0' in text
    assert 'privrec_gateway_rejections_total{reason="missing"} 1.0' in text
    assert "alice" not in text
    spec = requests.get(gw.url + "/openapi.json", timeout=30).json()
    assert {"/v1/events", "/v1/me/recommendations", "/v1/users/{id}/recommendations"} <= set(spec["paths"])


def test_redacted_by_a_real_worker(make_settings, tmp_path):
    """Events sent through the gateway come out of a real worker as redacted records."""
    from tests.integration.harness import Worker, wait_for

    settings = make_settings(partitions=2, stream={"consent_default": "analytics"})
    with running_gateway(settings) as gw:
        token = gw.token(user="Carol", scopes=["events:write"])
        assert _post(gw, token, {"events": [_event(i) for i in range(5)]}).status_code == 202
        worker = Worker(settings, tmp_path).start()
        try:

            def redacted():
                got = read_all(settings, settings.topic("playback.redacted"), quiet_s=0.5)
                return got or None

            records = wait_for(redacted, 150, "redacted records", interval=1.0)
        finally:
            worker.stop()
        events = [e for _, v in records for e in decode_as(v, RedactedBatch).events]
        assert len(events) == 5
        assert b"carol" not in b"".join(v for _, v in records).lower()


def test_unknown_route_is_json_404(gw):
    resp = requests.get(gw.url + "/recommendations/alice", timeout=30)
    assert (resp.status_code, resp.json()) == (404, {"error": "not_found"})


def _cli_env(settings, tmp_path) -> dict[str, str]:
    return {
        "PRIVREC_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "PRIVREC_REDIS__URL": settings.redis.url.get_secret_value(),
        "PRIVREC_PSEUDONYM__KEYS": settings.pseudonym.keys.get_secret_value(),
        "PRIVREC_APP_ID": settings.app_id,
        "PRIVREC_TOPIC_PREFIX": settings.topic_prefix,
        "PRIVREC_STATE_DIR": str(settings.state_dir),
        "PRIVREC_GATEWAY__PUBLIC_URL": "https://privacy.example",
    }


def test_cli_token_issue_and_gateway(make_settings, tmp_path):
    """`privrec token issue` and `privrec gateway` as subprocesses; `privrec serve` is gone."""
    import os
    import subprocess
    import sys

    from tests.cli import REPO, privrec
    from tests.integration.gateway_harness import ensure_topics

    settings = make_settings(partitions=2)
    ensure_topics(settings)
    env = _cli_env(settings, tmp_path)
    out = privrec(
        "token", "issue", "--user", "Dora", "--scope", "events:write", "recs:read:self", "--json", env=env
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) == {"token", "url"}
    assert doc["url"] == "https://privacy.example/privacy#token=" + doc["token"]
    key = settings.state_dir / "gateway" / "hs256.key"
    assert key.stat().st_mode & 0o777 == 0o600
    svc = privrec("token", "issue", "--service", "ui", "--scope", "recs:read:any", "--ttl", "15m", env=env)
    assert svc.returncode == 0 and svc.stdout.count(".") == 2 and "url" not in svc.stdout
    wrong = privrec("token", "issue", "--user", "Dora", "--scope", "recs:read:any", env=env)
    assert wrong.returncode == 2 and "scope" in wrong.stderr and "Traceback" not in wrong.stderr
    assert privrec("serve", env=env).returncode == 2

    base = {k: v for k, v in os.environ.items() if not k.startswith("PRIVREC_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "gateway", "--port", "0"],
        env={**base, **env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("gateway: listening on http://127.0.0.1:"), line or proc.stderr.read()
        assert doc["token"] not in line and "redis" not in line
        url = line.split()[-1]
        headers = {"Authorization": "Bearer " + doc["token"]}
        resp = requests.get(url + "/v1/me/recommendations", headers=headers, timeout=30)
        assert resp.status_code == 200 and resp.json()["source"] == "none"
        assert requests.get(url + "/v1/me/recommendations", timeout=30).status_code == 401
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    stderr = proc.stderr.read()
    assert "dora" not in stderr.lower() and doc["token"] not in stderr
