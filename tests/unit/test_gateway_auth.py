"""Token verification and issuing: every refusal has its reason; nothing leaks the subject."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.errors import AuthError, ConfigError
from pipeline.gateway.auth import TokenVerifier, hs256_key_path, issue_token
from pipeline.settings import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(state_dir=tmp_path)


def _claims(**overrides):
    now = int(time.time())
    base = {
        "iss": "privrec",
        "aud": "privrec-gateway",
        "sub": "alice",
        "scope": "events:write",
        "exp": now + 60,
    }
    return base | overrides


def _refusal(verifier, token) -> str:
    with pytest.raises(AuthError) as info:
        verifier.verify(token)
    assert "alice" not in str(info.value) and "alice" not in repr(info.value)
    return info.value.reason


def test_issued_token_round_trips_with_a_canonical_subject(settings):
    token = issue_token(settings, user=" Alice@Example.COM ", scopes=["events:write", "recs:read:self"])
    p = TokenVerifier(settings).verify(token)
    assert (p.kind, p.subject, p.scopes) == (
        "viewer",
        "alice@example.com",
        {"events:write", "recs:read:self"},
    )
    assert "alice" not in repr(p)
    assert hs256_key_path(settings).stat().st_mode & 0o777 == 0o600


def test_every_refusal_has_its_reason(settings):
    issue_token(settings, user="x", scopes=["events:write"])
    key = hs256_key_path(settings).read_text().strip()
    v = TokenVerifier(settings)
    enc = lambda c, k=key, alg="HS256": jwt.encode(c, k, algorithm=alg)  # noqa: E731
    assert _refusal(v, "") == "malformed"
    assert _refusal(v, "a.b.c") == "malformed"
    assert _refusal(v, enc(_claims(exp=int(time.time()) - 3600))) == "expired"
    assert _refusal(v, enc(_claims(iss="evil"))) == "wrong_issuer"
    assert _refusal(v, enc(_claims(aud="elsewhere"))) == "wrong_audience"
    assert _refusal(v, enc(_claims(), k="y" * 64)) == "bad_signature"
    no_exp = _claims()
    del no_exp["exp"]
    assert _refusal(v, enc(no_exp)) == "malformed"
    unsigned = jwt.encode(_claims(), None, algorithm="none")
    assert _refusal(v, unsigned) in {"bad_signature", "malformed"}
    assert _refusal(v, enc(_claims(kind="robot"))) == "malformed"
    assert _refusal(v, enc(_claims(sub="   "))) == "malformed"


def test_a_viewer_token_never_carries_service_scopes(settings):
    issue_token(settings, user="x", scopes=["events:write"])
    key = hs256_key_path(settings).read_text().strip()
    token = jwt.encode(_claims(scope="recs:read:any events:write admin"), key, algorithm="HS256")
    assert TokenVerifier(settings).verify(token).scopes == {"events:write"}


def test_issue_refuses_wrong_combinations(settings):
    with pytest.raises(ConfigError):
        issue_token(settings, user="a", service="b", scopes=["events:write"])
    with pytest.raises(ConfigError):
        issue_token(settings, user="a", scopes=["recs:read:any"])
    with pytest.raises(ConfigError):
        issue_token(settings, service="ui", scopes=["events:write"])
    eddsa = Settings(
        state_dir=settings.state_dir, gateway={"algorithms": ["EdDSA"], "jwks_file": "/nonexistent"}
    )
    with pytest.raises(ConfigError):
        issue_token(eddsa, user="a", scopes=["events:write"])


def test_a_key_file_readable_by_others_is_refused(settings):
    issue_token(settings, user="x", scopes=["events:write"])
    hs256_key_path(settings).chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        TokenVerifier(settings)


def test_eddsa_with_a_jwks_file(tmp_path):
    private = Ed25519PrivateKey.generate()
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "EdDSA", "use": "sig"}]}))
    s = Settings(state_dir=tmp_path, gateway={"algorithms": ["EdDSA"], "jwks_file": str(jwks)})
    token = issue_token(s, service="ui", scopes=["recs:read:any"], private_key=private, kid="k1")
    p = TokenVerifier(s).verify(token)
    assert (p.kind, p.subject, p.scopes) == ("service", "ui", {"recs:read:any"})
    other = issue_token(
        s, service="ui", scopes=["recs:read:any"], private_key=Ed25519PrivateKey.generate(), kid="k1"
    )
    assert _refusal(TokenVerifier(s), other) == "bad_signature"
    unknown_kid = issue_token(s, service="ui", scopes=["recs:read:any"], private_key=private, kid="k9")
    assert _refusal(TokenVerifier(s), unknown_kid) == "bad_signature"
    # an HS256 token signed with the public key as secret (key confusion) is refused
    hs = jwt.encode(_claims(), "x" * 64, algorithm="HS256")
    assert _refusal(TokenVerifier(s), hs) in {"bad_signature", "malformed"}


def test_settings_refuse_mixed_algorithms_and_wildcard_origins():
    from pipeline.errors import ConfigError as CE
    from pipeline.settings import load_settings

    with pytest.raises(CE):
        load_settings(gateway={"algorithms": ["HS256", "RS256"]})
    with pytest.raises(CE):
        load_settings(gateway={"cors_origins": ["*"]})
    with pytest.raises(CE):
        load_settings(gateway={"limits": {"events": "lots"}})


def test_child_processes_see_the_gateway_settings(monkeypatch):
    """Lists and nested models travel to `privrec worker` children as JSON (they crashed before)."""
    from agents.procs import settings_env

    s = Settings(gateway={"cors_origins": ["https://a.example"], "limits": {"events": "3/minute"}})
    for name, value in settings_env(s).items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.gateway.cors_origins == ["https://a.example"] and child.gateway.limits.events == "3/minute"
