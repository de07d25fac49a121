"""One settings model, read once at the edge (CLI, worker) and passed inward.

Sources, highest precedence first: init arguments, ``PRIVREC_*`` environment
variables (nested with ``__``, e.g. ``PRIVREC_KAFKA__BOOTSTRAP_SERVERS``), a
``.env`` file, ``privrec.toml`` in the working directory (or the file named by
``PRIVREC_CONFIG_FILE``), then defaults. Secrets are ``SecretStr`` and never
appear in ``repr`` or in :func:`Settings.masked`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pipeline.errors import ConfigError
from pipeline.wire.fields import CONTENT_ID_PATTERN

__all__ = [
    "AuditSettings",
    "DpSettings",
    "GatewaySettings",
    "KafkaSettings",
    "MetricsSettings",
    "PseudonymSettings",
    "RedisSettings",
    "Settings",
    "StreamSettings",
    "TopicSettings",
    "load_settings",
    "unknown_env_names",
]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


class KafkaSettings(BaseModel):
    """Where the broker is. ``bootstrap_servers`` unset means the embedded broker."""

    bootstrap_servers: str | None = Field(
        default=None, description="host:port[,host:port]; unset = embedded Tansu broker"
    )
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: str | None = Field(default=None, description="PLAIN, SCRAM-SHA-256, ...")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    request_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"expected host:port[,host:port], got {server.strip()!r}")
        return value.strip()

    @property
    def embedded(self) -> bool:
        return self.bootstrap_servers is None

    def client_options(self) -> dict[str, Any]:
        """Security options in kafka-python/aiokafka spelling (shared names)."""
        opts: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            opts["sasl_mechanism"] = self.sasl_mechanism
            opts["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                opts["sasl_plain_password"] = self.sasl_password.get_secret_value()
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None:
                opts[name] = str(path)
        return opts


class RedisSettings(BaseModel):
    """Where Redis is. ``url`` unset means the embedded Redis server."""

    url: SecretStr | None = Field(
        default=None,
        description="redis://[:password@]host:port/db or rediss:// for TLS; unset = embedded",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        raw = value.get_secret_value().strip()
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError as exc:
            raise ValueError("malformed URL (bad port?)") from exc
        if parts.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("scheme must be redis://, rediss:// or unix://")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("URL has no host")
        del port
        return SecretStr(raw)

    @property
    def embedded(self) -> bool:
        return self.url is None


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PseudonymSettings(BaseModel):
    """HMAC keys for pseudonyms. Oldest first; the newest signs, all are accepted.

    ``keys`` holds ``key_id:secret`` items (comma or newline separated);
    ``key_file`` names a file of such lines. With neither, ``privrec up`` writes
    a development key to ``<state_dir>/pseudonym.keys`` (mode 0600).

    ``casefold_user_ids``: user ids are brought to one canonical form (NFC,
    trimmed, and case-folded when this is on) before they are pseudonymised or
    used as Kafka keys (:mod:`pipeline.privacy.identity`). Changing it changes
    every pseudonym of a mixed-case id: set it once, before the first event.
    """

    keys: SecretStr | None = None
    key_file: Path | None = None
    casefold_user_ids: bool = True


class StreamSettings(BaseModel):
    """Stream processing knobs (windows, consent default, dead letters)."""

    window_size_ms: int = Field(default=3_600_000, gt=0)
    window_grace_ms: int = Field(default=600_000, ge=0)
    idle_close_ms: int = Field(
        default=60_000, gt=0, description="close windows of a partition idle this long"
    )
    future_tolerance_ms: int = Field(default=86_400_000, ge=0)
    max_message_bytes: int = Field(default=1_048_576, gt=0)
    consent_default: Literal["deny", "analytics", "personalization"] = "deny"
    dlq_include_raw: bool = Field(
        default=False,
        description="also copy each dead message's raw bytes to playback.quarantine (personal data)",
    )
    content_id_pattern: str = Field(
        default=CONTENT_ID_PATTERN,
        description="regex a content_id must match as a whole; others are dead-lettered (invalid_content_id)",
    )

    @field_validator("content_id_pattern")
    @classmethod
    def _check_content_id_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


_DAY_MS = 86_400_000


def _retention(default_days: int, what: str) -> Any:
    return Field(default=default_days * _DAY_MS, ge=-1, description=f"retention.ms of {what} (-1: forever)")


class TopicSettings(BaseModel):
    """Retention of each topic, set as ``retention.ms`` when ``privrec topics create`` makes it.

    Every topic that holds events or dead letters forgets them after a bounded
    time, so what an erasure cannot reach in the logs has a known end. The
    ``history`` topics (interactions and the erasure requests, stages and
    receipts) share one setting: an erasure request must outlive the erased
    viewer's interactions, or a trainer rebuilding from the log would re-admit
    them. ``consent`` is compacted (its latest record per viewer stays) and has
    no time limit. Changing a setting does not alter existing topics.
    """

    raw_retention_ms: int = _retention(7, "playback.raw")
    redacted_retention_ms: int = _retention(30, "playback.redacted")
    dlq_retention_ms: int = _retention(7, "the dead-letter topics (playback.dlq, trainer.dlq)")
    quarantine_retention_ms: int = _retention(1, "playback.quarantine (raw bytes: personal data)")
    history_retention_ms: int = _retention(
        90, "interactions, erasure, erasure.stages and receipts (the trainer's history)"
    )

    @field_validator("*")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("retention must be positive, or -1 for forever")
        return value


class TrainerSettings(BaseModel):
    """ALS training, confidence weighting and the quality gate (see README: Recommendations)."""

    factors: int = Field(default=64, ge=1)
    regularization: float = Field(
        default=20.0, ge=0, description="L2 penalty (how the default was chosen: README, Evaluation)"
    )
    iterations: int = Field(default=15, ge=1)
    alpha: float = Field(default=0.5, gt=0, description="confidence scale applied after weighting")
    weighting: Literal["log", "linear", "bm25", "binary"] = "log"
    watched_unit_ms: int = Field(default=540_000, gt=0, description="watch time unit of the log scale")
    completion_bonus: float = Field(default=1.0, ge=0)
    recency_half_life_titles: float | None = Field(
        default=None,
        gt=0,
        description="confidence halves per this many titles the viewer started since (None: off)",
    )
    bm25_k1: float = Field(default=1.2, gt=0)
    bm25_b: float = Field(default=0.75, ge=0, le=1)
    top_n: int = Field(default=50, ge=1, description="recommendations published per user")
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    gate_margin: float = Field(
        default=0.05, ge=0, description="refuse a model whose NDCG@10 is this much (relative) worse"
    )
    gate_popularity: bool = Field(
        default=True,
        description="refuse a model that does not beat popularity on the holdout (off: toy data in tests)",
    )
    retrain_every_s: float = Field(default=600.0, gt=0)
    retrain_after: int = Field(default=10_000, ge=1, description="new interactions that trigger a retrain")
    threads: int = Field(default=0, ge=0, description="ALS threads (0 = all cores)")
    device: Literal["auto", "cpu", "gpu"] = Field(
        default="auto", description="ALS fit device: auto = a GPU when implicit's CUDA build finds one"
    )
    keep_models: int = Field(
        default=3, ge=1, description="saved model artefacts kept (only the newest after an erasure)"
    )
    seed: int = 42
    ease_lambda: float = Field(
        default=200.0, gt=0, description="EASE family: L2 penalty of the item regression"
    )
    ease_max_items: int = Field(
        default=20_000, ge=1, description="EASE family refused above this many titles (dense items×items)"
    )
    knn_k: int = Field(default=100, ge=1, description="ItemKNN family: neighbours kept per title")
    families: list[Literal["als", "ease", "itemknn"]] = Field(
        default=["als"],
        min_length=1,
        description="model families the tuner may choose from; untuned, the first (README: Families)",
    )
    tune_budget_s: float = Field(
        default=60.0, ge=0, description="self-tuning time per full retrain (0 = keep the fixed setting)"
    )
    tune_trials: int = Field(default=60, ge=1, description="self-tuning: at most this many settings tried")
    tune_max_users: int = Field(default=50_000, ge=1, description="self-tuning runs on a sample above this")
    tune_min_gain: float = Field(
        default=0.02, ge=0, description="self-tuning replaces the setting in force only when this much better"
    )
    retune_every: int = Field(default=6, ge=1, description="tune at most every N full retrains")


class ServingSettings(BaseModel):
    """The Redis recommendation cache and its reader."""

    ttl_s: int = Field(default=7 * 86_400, gt=0, description="inactive users' entries expire after this")
    popular_n: int = Field(default=100, ge=1)
    limited_recent_days: int = Field(
        default=30, ge=1, description="personalization=limited: only titles related to this recent history"
    )
    rerank: Literal["none", "xquad"] = Field(
        default="none",
        description="popularity-bias re-ranking at read time (pipeline.serving.rerank): none or xquad",
    )
    rerank_lambda: float = Field(
        default=0.5, ge=0, le=1, description="xquad: weight of tail exposure against the model's score"
    )


class DpSettings(BaseModel):
    """Differentially private trending (see README: Trending (differential privacy)).

    Each UTC day's distinct-viewer counts per title (analytics consent only,
    each viewer bounded to ``max_titles_per_viewer_day`` titles) are released
    once with Laplace noise and a threshold, spending at most ``epsilon_per_day``
    and ``delta`` of that day's budget, as recorded in the ``dp.ledger`` topic.
    """

    epsilon_per_day: float = Field(default=1.0, gt=0, le=10, description="privacy budget of one UTC day")
    delta: float = Field(default=1e-6, gt=0, lt=1e-3, description="delta budget of one UTC day")
    max_titles_per_viewer_day: int = Field(
        default=10, ge=1, le=1000, description="titles a viewer counts for per day (the L0 bound)"
    )
    release_grace_s: float = Field(
        default=3600.0, ge=0, description="a day is released this long after it ends (late events)"
    )
    top_n: int = Field(default=100, ge=1, description="titles kept in the released trending list")
    fallback_min_viewers: int = Field(
        default=10,
        ge=1,
        description="until a first release: the raw popular list keeps only titles with this many viewers",
    )
    check_every_s: float = Field(default=300.0, gt=0, description="how often the trainer looks for a due day")


class AuditSettings(BaseModel):
    """Thresholds of the ethics audit's attention list (``privrec audit``; README: Ethics audit).

    A figure outside its threshold is flagged; none of them stops anything.
    """

    after_retrain: bool = Field(
        default=True, description="the continuous trainer audits after each full retrain"
    )
    min_coverage_at_10: float = Field(default=0.10, ge=0, le=1)
    max_gini_exposure: float = Field(default=0.90, ge=0, le=1)
    max_popularity_lift: float = Field(default=2.0, gt=0)
    min_personalisation_at_10: float = Field(default=0.50, ge=0, le=1)
    min_tail_exposure_share: float = Field(
        default=0.02, ge=0, le=1, description="share of recommendation slots going to tail titles"
    )
    max_ndcg_tier_gap: float = Field(
        default=0.5, ge=0, description="(best − worst activity tier NDCG@10) / best"
    )
    min_ndcg_vs_baseline: float = Field(
        default=0.95, ge=0, description="holdout NDCG@10 over the popularity baseline's"
    )
    max_erasure_receipt_p95_s: float = Field(default=60.0, gt=0)
    max_dlq_share: float = Field(default=0.01, ge=0, le=1, description="dead letters over events received")
    personalisation_pairs: int = Field(
        default=20_000, ge=1, description="user pairs sampled for personalisation@10 (all pairs when fewer)"
    )


class MetricsSettings(BaseModel):
    """Prometheus ``/metrics`` of the long-running processes (worker, trainer).

    Port 0 binds a free port, which each process advertises in Redis for
    ``privrec status`` (several workers on one host need distinct ports).
    """

    enabled: bool = True
    host: str = Field(default="127.0.0.1", description="bind address; 0.0.0.0 to be scraped from elsewhere")
    worker_port: int = Field(default=0, ge=0, le=65535, description="0 = a free port, advertised")
    trainer_port: int = Field(default=0, ge=0, le=65535, description="0 = a free port, advertised")
    lag_interval_s: float = Field(
        default=10.0, ge=0, description="how often a worker samples consumer lag (0 = never)"
    )


_RATE = re.compile(r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*$")


class GatewayLimits(BaseModel):
    """Rate limits of the gateway per route class, in the ``limits`` library's notation.

    Each applies twice, per token subject and per client address, so one viewer cannot
    exhaust a shared address and one address cannot rotate through many tokens.
    """

    events: str = Field(default="600/minute", description="POST /v1/events")
    recs: str = Field(default="300/minute", description="GET recommendations routes")
    privacy: str = Field(default="60/minute", description="/v1/me/consent, controls, export, erasure")

    @field_validator("*")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        if not _RATE.match(value):
            raise ValueError("expected e.g. '600/minute' or '10 per second'")
        return value.strip()


class GatewaySettings(BaseModel):
    """``privrec gateway``: the authenticated HTTP edge (see README: Gateway).

    Production verifies tokens from an identity provider: set ``algorithms`` to
    e.g. ``["EdDSA"]`` and ``jwks_file`` or ``jwks_url``. The embedded default is
    HS256 with a key generated in ``<state_dir>/gateway/hs256.key`` (mode 0600),
    which ``privrec token issue`` also uses to mint development tokens.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535, description="0 = a free port")
    issuer: str = Field(default="privrec", min_length=1)
    audience: str = Field(default="privrec-gateway", min_length=1)
    algorithms: list[Literal["HS256", "EdDSA", "ES256", "RS256"]] = Field(
        default_factory=lambda: ["HS256"],  # type: ignore[arg-type]  # a list of one literal
        min_length=1,
    )
    jwks_file: Path | None = Field(default=None, description="JWKS of the token issuer's public keys")
    jwks_url: str | None = Field(default=None, description="JWKS URL (fetched and cached)")
    hs256_key_file: Path | None = Field(
        default=None, description="HS256 secret; unset = <state_dir>/gateway/hs256.key"
    )
    leeway_s: float = Field(default=30.0, ge=0, le=300, description="clock skew allowed on exp/nbf")
    max_body_bytes: int = Field(default=1_048_576, gt=0, description="request body cap (after gunzip too)")
    max_events: int = Field(default=500, ge=1, le=500, description="events per POST /v1/events")
    cors_origins: list[str] = Field(default_factory=list, description="browser origins allowed (exact)")
    limits: GatewayLimits = GatewayLimits()
    public_url: str = Field(
        default="http://127.0.0.1:8080", description="where viewers reach the gateway (privacy-centre links)"
    )

    @field_validator("algorithms")
    @classmethod
    def _one_family(cls, value: list[str]) -> list[str]:
        if "HS256" in value and len(value) > 1:
            raise ValueError("HS256 cannot be mixed with public-key algorithms (key confusion)")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*" or not origin.startswith(("http://", "https://")):
                raise ValueError("origins must be exact http(s)://host[:port] values, no '*'")
        return [o.rstrip("/") for o in value]

    @property
    def symmetric(self) -> bool:
        """Whether tokens are HS256 (the embedded development default)."""
        return self.algorithms == ["HS256"]


class Settings(BaseSettings):
    """Everything privrec can be told. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="PRIVREC_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        toml_file="privrec.toml",
    )

    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    pseudonym: PseudonymSettings = PseudonymSettings()
    stream: StreamSettings = StreamSettings()
    topics: TopicSettings = TopicSettings()
    trainer: TrainerSettings = TrainerSettings()
    serving: ServingSettings = ServingSettings()
    metrics: MetricsSettings = MetricsSettings()
    gateway: GatewaySettings = GatewaySettings()
    dp: DpSettings = DpSettings()
    audit: AuditSettings = AuditSettings()
    topic_prefix: str = Field(default="privrec.", pattern=r"^[A-Za-z0-9._-]*$")
    partitions: int = Field(default=8, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)
    state_dir: Path = Path(".privrec")
    app_id: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    """Faust's application id: the worker's consumer group (the trainer's is ``<app_id>-trainer``)
    and the prefix of Faust's own topics (``<app_id>-<table>-changelog``, the assignor's). Unset:
    ``<topic_prefix>stream``, so every topic privrec owns shares the one prefix ACLs name."""

    @model_validator(mode="after")
    def _app_id_under_topic_prefix(self) -> Settings:
        if not self.app_id:
            self.app_id = f"{self.topic_prefix}stream"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("PRIVREC_CONFIG_FILE", "privrec.toml"))
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
        return (init_settings, env_settings, dotenv_settings, toml, file_secret_settings)

    def topic(self, name: str) -> str:
        """Full topic name for a logical name such as ``playback.raw``."""
        return f"{self.topic_prefix}{name}"

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data with every secret masked."""
        data = self.model_dump(mode="json")
        if self.redis.url is not None:
            data["redis"]["url"] = mask_url(self.redis.url.get_secret_value())
        return data


def load_settings(**overrides: Any) -> Settings:
    """Read settings once; turn validation errors into one :class:`ConfigError` line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        setting = ".".join(str(p) for p in err["loc"]) or "settings"
        env = "PRIVREC_" + setting.upper().replace(".", "__")
        raise ConfigError(f"{setting} ({env})", err["msg"]) from None
    except (OSError, ValueError) as exc:  # malformed privrec.toml
        raise ConfigError("privrec.toml", str(exc)) from None


_ENV_PREFIX = "PRIVREC_"
_ENV_NOT_SETTINGS = frozenset({"CONFIG_FILE", "DATASETS"})
"""``PRIVREC_*`` names read elsewhere (the TOML file's path, the datasets' folder)."""


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The settings model behind a field's type (``X`` or ``X | None``), else ``None``."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _known(model: type[BaseModel], parts: list[str]) -> bool:
    field = model.model_fields.get(parts[0].lower())
    if field is None:
        return False
    if len(parts) == 1:
        return True
    nested = _nested_model(field.annotation)
    if nested is None:  # a dict or list setting: what it holds is its own business
        return field.annotation not in (str, int, float, bool, Path, SecretStr)
    return _known(nested, parts[1:])


def unknown_env_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """``PRIVREC_*`` names that match no setting (a typo is otherwise silently ignored).

    Checked against the model's fields, nested with ``__``; names only, never values.
    ``PRIVREC_TEST_*`` belong to the test suite and are not settings either.
    """
    env = os.environ if environ is None else environ
    out = []
    for name in sorted(env):
        if not name.upper().startswith(_ENV_PREFIX):
            continue
        rest = name[len(_ENV_PREFIX) :].upper()
        if rest in _ENV_NOT_SETTINGS or rest.startswith("TEST_"):
            continue
        parts = rest.split("__")
        if not all(parts) or not _known(Settings, parts):
            out.append(name)
    return out
