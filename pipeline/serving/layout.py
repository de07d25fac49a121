"""Redis key names of the recommendation cache: one place, pseudonyms only.

Every key lives under a namespace derived from the settings
(``privrec:<app_id>``), so two deployments (or two tests) sharing one Redis
never see each other's keys::

    <ns>:recs:live                      the live version (a string)
    <ns>:recs:versions                  switched versions, sorted set scored by switch time (ms)
    <ns>:recs:pending                   versions being written, sorted set scored by start time (ms)
    <ns>:recs:<version>:u:<pseudonym>   msgpack of UserRecs, with a TTL
    <ns>:recs:<version>:popular         msgpack of list[PopularItem]
    <ns>:recs:<version>:meta            model metadata (JSON)
    <ns>:controls:<pseudonym>           viewer controls (a hash, see pipeline.serving.controls)
    <ns>:trending:days                  served DP trending releases (ids), sorted set scored by day, time
    <ns>:trending:<release id>          msgpack of one DP trending release (pipeline.dp.trending)

A user appears in key names only as a pseudonym; :func:`check_pseudonym`
refuses anything that does not look like one, so a raw user id passed by
mistake fails loudly instead of landing in Redis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.serving.rerank import Rerank
from pipeline.settings import Settings

__all__ = ["Layout", "check_pseudonym", "check_version"]

_PSEUDONYM = re.compile(r"[A-Za-z0-9_-]{1,32}\.[0-9a-f]{32}")
_VERSION = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NAMESPACE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def check_pseudonym(pseudonym: str) -> str:
    """Return ``pseudonym`` if it has the shape ``<key_id>.<32 hex>``, else raise ValueError.

    The message does not repeat the value: it may be a raw user id.
    """
    if not isinstance(pseudonym, str) or not _PSEUDONYM.fullmatch(pseudonym):
        raise ValueError("not a pseudonym (expected <key_id>.<32 hex digits>); raw ids never become keys")
    return pseudonym


def check_version(version: str) -> str:
    """Return ``version`` if it matches ``[A-Za-z0-9._-]{1,64}``, else raise ValueError."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ValueError(f"model version must match [A-Za-z0-9._-]{{1,64}}, got {version!r}")
    return version


@dataclass(frozen=True, slots=True)
class Layout:
    """Key names under one namespace (no trailing colon), e.g. ``privrec:privrec``.

    The methods only format strings; they do not validate their arguments
    (they sit on the read path). Writers validate with :func:`check_pseudonym`.
    """

    namespace: str
    rerank: Rerank = field(default_factory=Rerank, compare=False)
    """The read-time re-rank policy (``serving.rerank``): carried here so every reader built
    from ``Layout.from_settings`` applies it without a new constructor argument."""

    def __post_init__(self) -> None:
        if not _NAMESPACE.fullmatch(self.namespace) or self.namespace.endswith(":"):
            raise ValueError("namespace must match [A-Za-z0-9._:-]{1,128} and not end with ':'")

    @classmethod
    def from_settings(cls, settings: Settings) -> Layout:
        """``privrec:<app_id>``: one cache per application id, with the configured re-rank."""
        serving = settings.serving
        return cls(f"privrec:{settings.app_id}", Rerank(serving.rerank, serving.rerank_lambda))

    @property
    def recs_prefix(self) -> str:
        """``<ns>:recs:``, the prefix of every versioned key."""
        return f"{self.namespace}:recs:"

    @property
    def controls_prefix(self) -> str:
        """``<ns>:controls:``, followed by a pseudonym."""
        return f"{self.namespace}:controls:"

    @property
    def live(self) -> str:
        return f"{self.namespace}:recs:live"

    @property
    def versions(self) -> str:
        return f"{self.namespace}:recs:versions"

    @property
    def pending(self) -> str:
        return f"{self.namespace}:recs:pending"

    def user(self, version: str, pseudonym: str) -> str:
        return f"{self.namespace}:recs:{version}:u:{pseudonym}"

    def popular(self, version: str) -> str:
        return f"{self.namespace}:recs:{version}:popular"

    def meta(self, version: str) -> str:
        return f"{self.namespace}:recs:{version}:meta"

    def version_pattern(self, version: str) -> str:
        """SCAN pattern of every key of ``version`` (versions hold no glob characters)."""
        return f"{self.namespace}:recs:{version}:*"

    @property
    def model_runs(self) -> str:
        """The model quality history (:mod:`pipeline.recs.history`), newest first."""
        return f"{self.namespace}:models:runs"

    @property
    def trending_prefix(self) -> str:
        """``<ns>:trending:``, followed by a release id or ``days``."""
        return f"{self.namespace}:trending:"

    @property
    def trending_days(self) -> str:
        return f"{self.namespace}:trending:days"

    def trending(self, release_id: str) -> str:
        return f"{self.namespace}:trending:{release_id}"

    def controls(self, pseudonym: str) -> str:
        return f"{self.namespace}:controls:{pseudonym}"

    def all_pattern(self) -> str:
        """SCAN pattern of every key of this namespace (for clean-up)."""
        return f"{self.namespace}:*"
