"""Seeded, order-independent randomness keyed by strings.

Per-user and per-title attributes (a user's devices, a title's duration, a
user's consent) must not depend on which other users or titles a run happens
to contain, so they are derived from a hash of ``(seed, kind, key)`` instead
of from a shared random stream. ``hash()`` is salted per process, so blake2b.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["keyed_random", "stable_unit"]

_SCALE = float(1 << 64)


def stable_unit(seed: int, kind: str, key: str) -> float:
    """A uniform float in ``[0, 1)`` fixed by ``(seed, kind, key)``."""
    digest = hashlib.blake2b(f"{seed}\x1f{kind}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def keyed_random(seed: int, kind: str, key: str) -> random.Random:
    """A private :class:`random.Random` stream fixed by ``(seed, kind, key)``."""
    digest = hashlib.blake2b(f"{seed}\x1f{kind}\x1f{key}".encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))
