"""Bearer tokens: verify them into a :class:`~pipeline.gateway.principal.Principal`, mint dev ones.

Verification is PyJWT's, configured from ``gateway`` settings: the algorithms
are an allow-list (so ``alg: none`` and HS/RS key confusion are refused), and
``exp``, ``iss``, ``aud`` and ``sub`` are required. Production configures a
public-key algorithm (EdDSA, ES256, RS256) with the issuer's keys in a JWKS file
or URL; the embedded default is HS256 with a secret generated in
``<state_dir>/gateway/hs256.key`` (mode 0600), which :func:`issue_token` also
signs with.

Claims privrec reads: ``sub`` (the viewer id, or a service name), ``kind``
(``viewer`` or ``service``), ``scope`` (space-separated) and ``jti``. A viewer
token only carries viewer scopes and a service token only service scopes:
anything else in ``scope`` is ignored, so a viewer token that claims
``recs:read:any`` still cannot read another viewer. Refusals are
:class:`~pipeline.errors.AuthError` with a reason; neither the token nor the
subject appears in any message.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jwt

from pipeline.errors import AuthError, ConfigError, ServiceUnavailable, ValidationFailed
from pipeline.gateway.principal import SERVICE_SCOPES, VIEWER_SCOPES, Principal
from pipeline.privacy.identity import canonical_user_id
from pipeline.settings import Settings

__all__ = [
    "KIND_CLAIM",
    "TokenVerifier",
    "ensure_hs256_key",
    "hs256_key_path",
    "issue_token",
    "load_hs256_key",
]

KIND_CLAIM = "kind"
"""The claim that says whether ``sub`` is a viewer or a service."""
_REQUIRED = ["exp", "iss", "aud", "sub"]
_KEY_BYTES = 32


def hs256_key_path(settings: Settings) -> Path:
    """Where the HS256 secret lives: ``gateway.hs256_key_file`` or the state dir's."""
    return settings.gateway.hs256_key_file or settings.state_dir / "gateway" / "hs256.key"


def ensure_hs256_key(settings: Settings) -> Path:
    """Create the HS256 secret (mode 0600, never overwritten) if it does not exist yet."""
    path = hs256_key_path(settings)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(_KEY_BYTES) + "\n")
    return path


def load_hs256_key(settings: Settings) -> bytes:
    """The HS256 secret; refuses a file others can read (the key forges any token)."""
    path = hs256_key_path(settings)
    setting = "gateway.hs256_key_file (PRIVREC_GATEWAY__HS256_KEY_FILE)"
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError:
        raise ConfigError(
            setting, f"cannot read {path}: run `privrec gateway` or `privrec up` once"
        ) from None
    if mode & 0o077:
        raise ConfigError(setting, f"{path} is readable by others: run chmod 600 {path}")
    if len(text) < _KEY_BYTES:
        raise ConfigError(setting, f"{path} holds fewer than {_KEY_BYTES} characters")
    return text.encode()


class TokenVerifier:
    """Turn a bearer token into a :class:`Principal`, or raise :class:`AuthError`.

    Args:
        settings: ``gateway`` (issuer, audience, algorithms, keys) and
            ``pseudonym.casefold_user_ids`` (viewer subjects are canonicalised).
        key: the HS256 secret, or a public key; by default it is read from the
            settings (the HS256 key file, ``jwks_file`` or ``jwks_url``).
    """

    def __init__(self, settings: Settings, key: Any = None) -> None:
        gw = settings.gateway
        self._issuer = gw.issuer
        self._audience = gw.audience
        self._algorithms = list(gw.algorithms)
        self._leeway = gw.leeway_s
        self._casefold = settings.pseudonym.casefold_user_ids
        self._key: Any = key
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_client: jwt.PyJWKClient | None = None
        if key is not None:
            return
        if gw.symmetric:
            self._key = load_hs256_key(settings)
        elif gw.jwks_file is not None:
            try:
                self._jwks = jwt.PyJWKSet.from_json(gw.jwks_file.read_text())
            except (OSError, jwt.PyJWKSetError, ValueError) as exc:
                raise ConfigError(
                    "gateway.jwks_file (PRIVREC_GATEWAY__JWKS_FILE)", type(exc).__name__
                ) from None
        elif gw.jwks_url is not None:
            self._jwks_client = jwt.PyJWKClient(gw.jwks_url, cache_keys=True, lifespan=300, timeout=5)
        else:
            raise ConfigError(
                "gateway.jwks_file (PRIVREC_GATEWAY__JWKS_FILE)",
                "public-key algorithms need jwks_file or jwks_url",
            )

    @property
    def fetches_keys(self) -> bool:
        """Whether verifying may block on an HTTP fetch (JWKS URL): run it in a thread."""
        return self._jwks_client is not None

    def _key_for(self, token: str) -> Any:
        if self._key is not None:
            return self._key
        if self._jwks_client is not None:
            try:
                return self._jwks_client.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError:
                raise ServiceUnavailable("gateway.jwks_url: the key set could not be fetched") from None
            except jwt.DecodeError:
                raise AuthError("malformed") from None
            except jwt.PyJWKClientError:
                raise AuthError("bad_signature") from None
        assert self._jwks is not None
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.DecodeError:
            raise AuthError("malformed") from None
        keys = self._jwks.keys
        if kid is None and len(keys) == 1:
            return keys[0].key
        for jwk in keys:
            if jwk.key_id == kid:
                return jwk.key
        raise AuthError("bad_signature")

    def verify(self, token: str) -> Principal:
        """Check signature, algorithm, issuer, audience and expiry; return the caller."""
        if not token or len(token) > 8192:
            raise AuthError("malformed")
        key = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("expired") from None
        except jwt.InvalidIssuerError:
            raise AuthError("wrong_issuer") from None
        except jwt.InvalidAudienceError:
            raise AuthError("wrong_audience") from None
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
            raise AuthError("bad_signature") from None
        except jwt.InvalidTokenError:  # DecodeError, missing claims, nbf/iat in the future
            raise AuthError("malformed") from None
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        kind = claims.get(KIND_CLAIM, "viewer")
        sub = claims.get("sub")
        scope = claims.get("scope", "")
        if kind not in ("viewer", "service") or not isinstance(sub, str) or not isinstance(scope, str):
            raise AuthError("malformed")
        jti = claims.get("jti")
        if kind == "viewer":
            try:
                sub = canonical_user_id(sub, casefold=self._casefold)
            except ValidationFailed:
                raise AuthError("malformed") from None
            allowed = VIEWER_SCOPES
        else:
            allowed = SERVICE_SCOPES
        scopes = frozenset(scope.split()) & allowed
        return Principal(
            kind=kind, subject=sub, scopes=scopes, token_id=jti if isinstance(jti, str) else None
        )


def issue_token(
    settings: Settings,
    *,
    user: str | None = None,
    service: str | None = None,
    scopes: Iterable[str],
    ttl_s: float = 3600,
    private_key: Any = None,
    kid: str | None = None,
    now: float | None = None,
) -> str:
    """Mint a token the gateway accepts (development and tests; production has an IdP).

    Exactly one of ``user`` and ``service``. Scopes must fit the kind (viewer
    scopes for a user, service scopes for a service). With the HS256 default
    the state dir's secret signs (created when missing); with a public-key
    configuration a ``private_key`` for ``gateway.algorithms[0]`` is needed.

    Raises:
        ConfigError: a wrong combination of arguments, or no key to sign with.
    """
    if (user is None) == (service is None):
        raise ConfigError("token", "give exactly one of user or service")
    scope_set = set(scopes)
    allowed = VIEWER_SCOPES if user is not None else SERVICE_SCOPES
    if not scope_set or not scope_set <= allowed:
        kind = "viewer" if user is not None else "service"
        raise ConfigError("scope", f"a {kind} token takes scopes from {sorted(allowed)}")
    if ttl_s <= 0:
        raise ConfigError("ttl", "must be positive")
    gw = settings.gateway
    if user is not None:
        try:
            subject = canonical_user_id(user, casefold=settings.pseudonym.casefold_user_ids)
        except ValidationFailed:
            raise ConfigError("user", "empty after canonicalisation") from None
    else:
        subject = str(service).strip()
        if not subject:
            raise ConfigError("service", "must not be empty")
    algorithm = gw.algorithms[0]
    if private_key is None:
        if not gw.symmetric:
            raise ConfigError(
                "gateway.algorithms (PRIVREC_GATEWAY__ALGORITHMS)",
                f"{algorithm} tokens come from the identity provider; give a private key to mint one",
            )
        ensure_hs256_key(settings)
        private_key = load_hs256_key(settings)
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": gw.issuer,
        "aud": gw.audience,
        "sub": subject,
        KIND_CLAIM: "viewer" if user is not None else "service",
        "scope": " ".join(sorted(scope_set)),
        "iat": issued,
        "exp": issued + int(ttl_s),
        "jti": uuid.uuid4().hex,
    }
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, private_key, algorithm=algorithm, headers=headers)
