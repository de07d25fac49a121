"""Contribution bounding: distinct analytics viewers per window and title, each viewer bounded.

A differentially private count is only as private as the most any one viewer
can move it. Here a viewer counts at most **once per title** (distinct
viewers, not plays) and for at most ``max_titles`` titles per window (the L0
bound). When a viewer watched more titles than that, which ones are kept is
decided by a keyed hash of (pseudonym, title): the ``max_titles`` titles with
the smallest HMAC-SHA256 under a secret key. That choice is deterministic (a
replay, a restart or another worker keeps the same titles) and independent of
arrival order (a viewer cannot pick which titles count by when they watch), and
without the key nobody can predict it. Only records whose ``purposes.analytics``
is true are counted: the ``analytics`` purpose is the viewer's permission to
appear in aggregate statistics.

Everything here is pure; :mod:`pipeline.dp.source` feeds it from Kafka.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["DAY_MS", "Bounder", "bounded_counts", "day_of", "day_start_ms", "keep_rank"]

DAY_MS = 86_400_000


def day_of(epoch_ms: int) -> str:
    """The UTC day (``YYYY-MM-DD``) of an epoch-milliseconds time."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def day_start_ms(day: str) -> int:
    """Epoch milliseconds of 00:00 UTC of ``day`` (``YYYY-MM-DD``); ValueError when malformed."""
    parsed = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def keep_rank(key: bytes, pseudonym: str, content_id: str) -> bytes:
    """The keyed hash that orders a viewer's titles; the smallest ``max_titles`` are kept.

    The two strings are length-prefixed so ("ab", "c") and ("a", "bc") differ.
    """
    p, c = pseudonym.encode(), content_id.encode()
    msg = len(p).to_bytes(4, "big") + p + c
    return hmac.new(key, msg, hashlib.sha256).digest()


@dataclass(slots=True)
class Bounder:
    """Collects (window, viewer, title) observations and yields bounded distinct-viewer counts.

    Holds, per window and viewer, the set of titles seen (a set: a thousand
    plays of one title are one element). Bounding happens in :meth:`counts`,
    over the complete set, so the kept titles do not depend on arrival order.

    Args:
        key: the secret of the keyed hash (at least 16 bytes).
        max_titles: titles a viewer counts for per window.
    """

    key: bytes
    max_titles: int
    _seen: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError("the bounding key must be at least 16 bytes")
        if self.max_titles < 1:
            raise ValueError("max_titles must be >= 1")

    def add(self, window: str, pseudonym: str, content_id: str) -> None:
        """One play of ``content_id`` by ``pseudonym`` in ``window`` (analytics consent already checked)."""
        self._seen[window][pseudonym].add(content_id)

    def windows(self) -> list[str]:
        """Windows with at least one observation, sorted."""
        return sorted(self._seen)

    def viewers(self, window: str) -> int:
        """Distinct viewers seen in ``window``."""
        return len(self._seen.get(window, {}))

    def kept(self, window: str, pseudonym: str) -> frozenset[str]:
        """The titles ``pseudonym`` counts for in ``window`` after bounding."""
        titles = self._seen.get(window, {}).get(pseudonym, set())
        return frozenset(self._bound(pseudonym, titles))

    def _bound(self, pseudonym: str, titles: set[str]) -> Iterable[str]:
        if len(titles) <= self.max_titles:
            return titles
        return sorted(titles, key=lambda t: keep_rank(self.key, pseudonym, t))[: self.max_titles]

    def counts(self, window: str) -> dict[str, int]:
        """Distinct bounded viewers per title in ``window`` (titles with no viewer are absent)."""
        out: Counter[str] = Counter()
        for pseudonym, titles in self._seen.get(window, {}).items():
            out.update(self._bound(pseudonym, titles))
        return dict(out)

    def drop(self, window: str) -> None:
        """Forget a window (after its release)."""
        self._seen.pop(window, None)


def bounded_counts(plays: Iterable[tuple[str, str]], *, key: bytes, max_titles: int) -> Mapping[str, int]:
    """Bounded distinct-viewer counts of one window's (pseudonym, title) plays."""
    b = Bounder(key, max_titles)
    for pseudonym, content_id in plays:
        b.add("w", pseudonym, content_id)
    return b.counts("w")
