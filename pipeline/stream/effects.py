"""The stream's configuration and what one message asks the agent to do (:class:`Effects`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.kafka.topics import Topic
from pipeline.privacy.consent import Purposes
from pipeline.settings import Settings
from pipeline.stream.partition import StateWrite
from pipeline.windows import WindowSpec
from pipeline.wire import DEFAULT_CONTENT_ID_PATTERN

__all__ = ["Effects", "StreamConfig"]


@dataclass(frozen=True)
class StreamConfig:
    """The knobs of the stream (from :class:`pipeline.settings.StreamSettings`)."""

    window: WindowSpec
    max_message_bytes: int = 1_048_576
    future_tolerance_ms: int = 86_400_000
    idle_close_ms: int = 60_000
    consent_default: Purposes | None = None
    dlq_include_raw: bool = False
    raw_topic: str = Topic.RAW
    consent_topic: str = Topic.CONSENT
    erasure_topic: str = Topic.ERASURE
    content_id_pattern: re.Pattern[str] = DEFAULT_CONTENT_ID_PATTERN

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamConfig:
        s = settings.stream
        default = {
            "deny": None,
            "analytics": Purposes(analytics=True),
            "personalization": Purposes(analytics=True, personalization=True),
        }[s.consent_default]
        return cls(
            window=WindowSpec(size_ms=s.window_size_ms, grace_ms=s.window_grace_ms),
            max_message_bytes=s.max_message_bytes,
            future_tolerance_ms=s.future_tolerance_ms,
            idle_close_ms=s.idle_close_ms,
            consent_default=default,
            dlq_include_raw=s.dlq_include_raw,
            raw_topic=settings.topic(Topic.RAW),
            consent_topic=settings.topic(Topic.CONSENT),
            erasure_topic=settings.topic(Topic.ERASURE),
            content_id_pattern=re.compile(s.content_id_pattern),
        )


@dataclass
class Effects:
    """What to do after one message, in this order: produce, await interactions, write state."""

    redacted: list[tuple[bytes, bytes]] = field(default_factory=list)
    dlq: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    #: raw values of dead messages for the quarantine topic (only with ``dlq_include_raw``): (key, raw)
    quarantine: list[tuple[bytes, bytes]] = field(default_factory=list)
    interactions: list[tuple[bytes, bytes]] = field(default_factory=list)
    state: list[StateWrite] = field(default_factory=list)
    consent: list[tuple[str, bytes | None]] = field(default_factory=list)
    #: produced last, after the state writes, and acknowledged: (``"consent"`` | ``"stages"``, key, value)
    after: list[tuple[str, bytes, bytes | None]] = field(default_factory=list)
