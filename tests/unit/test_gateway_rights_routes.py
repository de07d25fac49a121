"""The rights routes over a fake store: every refusal, and identity only from the principal."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agents.gateway import GatewayDeps, make_app
from agents.gateway.rights import PAGE_HEADERS, RIGHTS_OPENAPI, RIGHTS_STORE
from pipeline.gateway.auth import TokenVerifier, issue_token
from pipeline.gateway.principal import EVENTS_WRITE, PRIVACY_SELF
from pipeline.gateway.rights import MAX_BODY_BYTES, MAX_HIDDEN
from pipeline.privacy.consent import Purposes
from pipeline.serving.controls import Controls
from pipeline.settings import Settings

ALICE_RID = "a" * 32
BOB_RID = "b" * 32


class FakeStore:
    """Per-viewer state in memory; records which viewer each call was made for."""

    def __init__(self) -> None:
        self.settings = Settings(pseudonym={"keys": "test1:base64:" + "A" * 43 + "="})
        self.consents: dict[str, tuple[Purposes, int]] = {}
        self.ctl: dict[str, Controls] = {}
        self.calls: list[tuple[str, str]] = []
        self.requests = {ALICE_RID: "alice", BOB_RID: "bob"}

    def consent(self, user):
        self.calls.append(("consent", user))
        return self.consents.get(user, (None, None))

    def set_consent(self, user, purposes):
        self.calls.append(("set_consent", user))
        self.consents[user] = (purposes, 1000)
        return 1000

    def controls(self, user):
        return self.ctl.get(user, Controls())

    def set_controls(self, user, mode, hide, unhide):
        self.calls.append(("set_controls", user))
        c = self.ctl.get(user, Controls())
        hidden = (set(c.hidden) | set(hide)) - set(unhide)
        self.ctl[user] = Controls(personalization=mode or c.personalization, hidden=frozenset(hidden))
        return self.ctl[user]

    def erase(self, user):
        self.calls.append(("erase", user))
        return "c" * 32, 5

    def erasure_status(self, user, rid):
        if self.requests.get(rid) != user:
            return None
        return {"stream": 7}, None

    def export(self, user, timeout_s):
        self.calls.append(("export", user))
        return {"schema": "export.v1", "user_id": user}

    def close(self):
        pass


class _Sink:
    ready = True

    async def send(self, topic: str, key: bytes, value: bytes | None) -> None:
        raise AssertionError("the rights routes write through their store")


def _gateway(store: FakeStore, tmp_path: Path) -> tuple[web.Application, Any]:
    """The real gateway app (token verification, scopes, error rendering) over a fake store."""
    settings = Settings(pseudonym={"keys": "test1:base64:" + "A" * 43 + "="}, state_dir=tmp_path / "state")
    store.settings = settings
    deps = GatewayDeps(
        settings=settings,
        verifier=TokenVerifier(settings, key=KEY),
        sink=_Sink(),
        redis=None,
        reader=None,
        pseudonymizer=None,
    )
    app = make_app(deps)
    app[RIGHTS_STORE] = store  # type: ignore[assignment]
    return app, settings


KEY = b"k" * 32


def token(settings: Settings, **kw: Any) -> dict[str, str]:
    kw.setdefault("scopes", [PRIVACY_SELF])
    return {"Authorization": "Bearer " + issue_token(settings, private_key=KEY, **kw)}


def run(
    check: Callable[[TestClient, FakeStore, Settings], Awaitable[None]],
    tmp_path: Path,
    store: FakeStore | None = None,
) -> FakeStore:
    store = store if store is not None else FakeStore()

    async def main() -> None:
        app, settings = _gateway(store, tmp_path)
        async with TestClient(TestServer(app)) as client:
            await check(client, store, settings)

    asyncio.run(main())
    return store


ROUTES = [
    ("GET", "/v1/me/consent"),
    ("PUT", "/v1/me/consent"),
    ("GET", "/v1/me/controls"),
    ("PUT", "/v1/me/controls"),
    ("POST", "/v1/me/export"),
    ("POST", "/v1/me/erasure"),
    ("GET", f"/v1/me/erasure/{ALICE_RID}"),
]


def test_every_route_refuses_no_token_bad_tokens_wrong_scope_and_services(tmp_path):
    async def check(client: TestClient, store: FakeStore, settings: Settings) -> None:
        wrong_scope = token(settings, user="alice", scopes=[EVENTS_WRITE, "recs:read:self"])
        service = token(settings, service="shop", scopes=["recs:read:any"])
        expired = token(settings, user="alice", ttl_s=1, now=time.time() - 3600)
        for method, path in ROUTES:
            r = await client.request(method, path, json={"analytics": True})
            assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), path
            r = await client.request(method, path, json={"analytics": True}, headers=expired)
            assert r.status == 401, path
            for who in (wrong_scope, service):
                r = await client.request(method, path, json={"analytics": True}, headers=who)
                assert r.status == 403 and (await r.json()) == {"error": "insufficient_scope"}, path
        assert store.calls == []  # nothing read or written for a refused caller

    run(check, tmp_path)


def test_consent_round_trip_uses_only_the_principal(tmp_path):
    async def check(client: TestClient, store: FakeStore, settings: Settings) -> None:
        ALICE = token(settings, user="Alice")
        r = await client.get("/v1/me/consent?user_id=bob", headers=ALICE)
        body = await r.json()
        assert r.status == 200 and body["recorded"] is False and r.headers["Cache-Control"] == "no-store"
        r = await client.put("/v1/me/consent", json={"analytics": True, "user_id": "bob"}, headers=ALICE)
        assert r.status == 422 and (await r.json()) == {"error": "unknown_field"}
        r = await client.put("/v1/me/consent", json={"analytics": True}, headers=ALICE)
        body = await r.json()
        assert body["purposes"]["analytics"]["granted"] is True and body["updated_at"] == 1000
        assert body["purposes"]["personalization"]["granted"] is False
        assert {user for _, user in store.calls} == {"alice"}

    run(check, tmp_path)


def test_bodies_are_bounded_and_typed(tmp_path):
    async def check(client: TestClient, store: FakeStore, settings: Settings) -> None:
        ALICE = token(settings, user="Alice")
        for path in ("/v1/me/consent", "/v1/me/controls"):
            big = b'{"hide": ["' + b"x" * MAX_BODY_BYTES + b'"]}'
            r = await client.put(path, data=big, headers=ALICE | {"Content-Type": "application/json"})
            assert r.status == 413 and (await r.json()) == {"error": "body_too_large"}
            r = await client.put(path, data=b"{}", headers=ALICE | {"Content-Type": "text/plain"})
            assert r.status == 415
            r = await client.put(path, data=b"{", headers=ALICE | {"Content-Type": "application/json"})
            assert r.status == 400 and (await r.json()) == {"error": "invalid_json"}
            r = await client.put(path, data=b'"x"', headers=ALICE | {"Content-Type": "application/json"})
            assert r.status == 400
        r = await client.put("/v1/me/controls", json={"hide": ["me@example.com"]}, headers=ALICE)
        assert r.status == 422 and (await r.json()) == {"error": "invalid_content_id"}
        r = await client.put("/v1/me/controls", json={"personalization": "max"}, headers=ALICE)
        assert r.status == 422
        assert not [c for c in store.calls if c[0].startswith("set_")]

    run(check, tmp_path)


def test_controls_and_the_hidden_title_bound(tmp_path):
    async def check(client: TestClient, store: FakeStore, settings: Settings) -> None:
        ALICE = token(settings, user="Alice")
        r = await client.put(
            "/v1/me/controls", json={"personalization": "off", "hide": ["t1"]}, headers=ALICE
        )
        assert (await r.json()) == {"personalization": "off", "hidden": ["t1"], "max_hidden": MAX_HIDDEN}
        store.ctl["alice"] = Controls(hidden=frozenset(f"t{i}" for i in range(MAX_HIDDEN)))
        r = await client.put("/v1/me/controls", json={"hide": ["extra"]}, headers=ALICE)
        assert r.status == 422 and (await r.json()) == {"error": "too_many_hidden"}
        r = await client.put("/v1/me/controls", json={"unhide": ["t1"]}, headers=ALICE)
        assert r.status == 200 and len((await r.json())["hidden"]) == MAX_HIDDEN - 1

    run(check, tmp_path)


def test_erasure_of_another_viewer_is_not_found_like_an_unknown_one(tmp_path):
    async def check(client: TestClient, store: FakeStore, settings: Settings) -> None:
        ALICE = token(settings, user="Alice")
        r = await client.post("/v1/me/erasure", headers=ALICE)
        assert r.status == 202 and (await r.json()) == {"request_id": "c" * 32, "requested_at": 5}
        r = await client.get(f"/v1/me/erasure/{ALICE_RID}", headers=ALICE)
        body = await r.json()
        assert body["stages"] == {"stream": 7, "trainer": None, "cache": None} and body["receipt"] is None
        bob = await client.get(f"/v1/me/erasure/{BOB_RID}", headers=ALICE)
        unknown = await client.get(f"/v1/me/erasure/{'d' * 32}", headers=ALICE)
        malformed = await client.get("/v1/me/erasure/not-an-id", headers=ALICE)
        for r in (bob, unknown, malformed):
            assert r.status == 404 and (await r.json()) == {"error": "not_found"}

    run(check, tmp_path)


def test_export_is_a_download_that_is_never_cached(tmp_path):
    async def check(client: TestClient, store: FakeStore, settings: Settings) -> None:
        ALICE = token(settings, user="Alice")
        r = await client.post("/v1/me/export", headers=ALICE)
        assert r.status == 200
        assert r.headers["Content-Disposition"] == 'attachment; filename="privrec-export.json"'
        assert r.headers["Cache-Control"] == "no-store"
        assert json.loads(await r.text()) == {"schema": "export.v1", "user_id": "alice"}

    run(check, tmp_path)


def test_the_page_needs_no_token_and_has_strict_headers(tmp_path):
    async def check(client: TestClient, store: FakeStore, settings: Settings) -> None:
        for path in ("/privacy", "/privacy/privacy.js", "/privacy/privacy.css"):
            r = await client.get(path)
            assert r.status == 200, path
            for name, value in PAGE_HEADERS.items():
                assert r.headers[name] == value
            text = await r.text()
            assert "http://" not in text and "https://" not in text  # nothing from elsewhere
        csp = PAGE_HEADERS["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        html = await (await client.get("/privacy")).text()
        assert "<script>" not in html and "<style" not in html and " style=" not in html  # no inline code

    run(check, tmp_path)


def test_openapi_paths_cover_every_route(tmp_path):
    for method, path in ROUTES:
        templ = "/v1/me/erasure/{request_id}" if path.startswith("/v1/me/erasure/") else path
        op = RIGHTS_OPENAPI[templ][method.lower()]
        assert {"401", "403", "429", "503"} <= set(op["responses"])


def test_a_backend_timeout_is_a_503_logged_by_route_template_not_path(tmp_path, caplog):
    """Regression: the log line carried ``request.path`` with the viewer's erasure request id."""

    class SlowStore(FakeStore):
        def erasure_status(self, user, rid):
            raise TimeoutError

    async def check(client: TestClient, store: FakeStore, settings: Settings) -> None:
        r = await client.get(f"/v1/me/erasure/{ALICE_RID}", headers=token(settings, user="Alice"))
        assert r.status == 503

    with caplog.at_level("WARNING"):
        run(check, tmp_path, store=SlowStore())
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "did not answer in time" in logged and "/v1/me/erasure/{" in logged
    assert ALICE_RID not in logged
