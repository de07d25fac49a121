"""A deterministic synthetic catalogue and audience with structure a model can learn.

Every user and title gets a taste cluster and a k-dimensional taste vector
(its cluster's axis plus noise). A user picks a title from their own cluster
with probability :data:`IN_CLUSTER_SHARE`, else from the whole catalogue, in
both cases in proportion to a Zipf-like popularity; the rating grows with the
dot product of the two taste vectors. So popular titles dominate the counts,
users of one cluster share titles, and the weights carry the latent factors an
ALS model should recover. Ids are ``u00042`` and ``c0007``.

Everything is vectorised numpy on one ``numpy.random.Generator``: 50k events'
worth of ratings take milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.sources.ratings import Rating
from pipeline.sources.sessions import expected_events_per_session

__all__ = [
    "IN_CLUSTER_SHARE",
    "MAX_WEIGHT",
    "SyntheticWorld",
    "content_id",
    "synthetic_ratings",
    "synthetic_titles",
    "synthetic_world",
    "user_id",
]

IN_CLUSTER_SHARE = 0.75
MAX_WEIGHT = 5.0
"""Ratings are 0.5 to 5 stars in half steps, like MovieLens."""
START_S = 1_704_067_200
"""2024-01-01T00:00:00Z: where synthetic time starts."""
_ZIPF_EXPONENT = 1.0
_TASTE_NOISE = 0.35
_MIN_GAP_S = 3_600  # a user's sessions never overlap
_HOUR_WEIGHTS = np.array([2, 1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 6, 8, 10, 12, 12, 10, 7, 4], float)


def user_id(index: int) -> str:
    """The synthetic id of user ``index``: ``u00042``."""
    return f"u{index:05d}"


def content_id(index: int) -> str:
    """The synthetic id of title ``index``: ``c0007``."""
    return f"c{index:04d}"


@dataclass(frozen=True)
class SyntheticWorld:
    """The hidden structure behind the synthetic ratings, for tests and model checks."""

    user_cluster: np.ndarray
    item_cluster: np.ndarray
    user_taste: np.ndarray
    item_taste: np.ndarray
    popularity: np.ndarray
    activity: np.ndarray


def synthetic_world(*, users: int, items: int, seed: int, clusters: int = 8) -> SyntheticWorld:
    """Draw the clusters, taste vectors, item popularity and user activity for ``seed``."""
    if users < 1 or items < 1 or clusters < 1:
        raise ValueError("users, items and clusters must be >= 1")
    rng = np.random.default_rng([seed, 1])
    k = min(clusters, items)
    item_cluster = rng.permutation(np.arange(items) % k)  # no cluster left empty
    user_cluster = rng.integers(0, k, size=users)
    eye = np.eye(k)
    user_taste = eye[user_cluster] + _TASTE_NOISE * rng.standard_normal((users, k))
    item_taste = eye[item_cluster] + _TASTE_NOISE * rng.standard_normal((items, k))
    popularity = 1.0 / (1.0 + rng.permutation(items)) ** _ZIPF_EXPONENT
    activity = rng.lognormal(0.0, 1.0, size=users)
    return SyntheticWorld(
        user_cluster=user_cluster,
        item_cluster=item_cluster,
        user_taste=user_taste,
        item_taste=item_taste,
        popularity=popularity / popularity.sum(),
        activity=activity / activity.sum(),
    )


def synthetic_ratings(
    *, users: int, items: int, events_target: int, seed: int, days: int = 30, start_s: int = START_S
) -> list[Rating]:
    """Ratings whose sessions make about ``events_target`` playback events.

    Each (user, title) pair is rated at most once. Ratings come sorted by time;
    a user's ratings lie at least an hour apart, spread over about ``days``
    days with an evening peak (heavy users may run past the end). Fewer events
    than asked come back only when the user x title grid runs out of pairs.
    """
    world = synthetic_world(users=users, items=items, seed=seed)
    rng = np.random.default_rng([seed, 2])
    n = events_target // 2 + 64  # a session has at least 2 events: enough candidates
    u = rng.choice(users, size=n, p=world.activity)
    i = _pick_items(rng, world, u)
    first = np.sort(np.unique(u.astype(np.int64) * items + i, return_index=True)[1])
    u, i = u[first], i[first]
    affinity = np.einsum("nk,nk->n", world.user_taste[u], world.item_taste[i])
    stars = 2.0 + 2.0 * affinity + rng.normal(0.0, 0.6, size=len(u))
    weight = np.clip(np.rint(stars * 2.0) / 2.0, 0.5, MAX_WEIGHT)
    keep = (
        int(np.searchsorted(np.cumsum(expected_events_per_session(weight / MAX_WEIGHT)), events_target)) + 1
    )
    u, i, weight = u[:keep], i[:keep], weight[:keep]
    ts = _timestamps(rng, u, days, start_s)
    order = np.lexsort((u, ts))
    uids = [user_id(x) for x in range(users)]
    cids = [content_id(x) for x in range(items)]
    return [
        Rating(uids[a], cids[b], w, t)
        for a, b, w, t in zip(
            u[order].tolist(), i[order].tolist(), weight[order].tolist(), ts[order].tolist(), strict=True
        )
    ]


def _pick_items(rng: np.random.Generator, world: SyntheticWorld, users: np.ndarray) -> np.ndarray:
    """Popularity-weighted picks, from the user's cluster with probability :data:`IN_CLUSTER_SHARE`."""
    pop, cluster = world.popularity, world.item_cluster
    picks = np.searchsorted(np.cumsum(pop), rng.random(len(users)) * 0.999999999, side="right")
    by_cluster = np.argsort(cluster, kind="stable")
    sorted_cluster = cluster[by_cluster]
    cum = np.cumsum(pop[by_cluster])
    starts = np.searchsorted(sorted_cluster, sorted_cluster, side="left")
    ends = np.searchsorted(sorted_cluster, sorted_cluster, side="right") - 1
    base = np.where(starts > 0, cum[starts - 1], 0.0)
    within = (cum - base) / (cum[ends] - base)
    within[ends] = 1.0
    keyed = sorted_cluster + within  # cluster c's titles occupy (c, c + 1]
    mine = world.user_cluster[users]
    local = np.searchsorted(keyed, mine + rng.random(len(users)) * 0.999999999, side="right")
    in_cluster = rng.random(len(users)) < IN_CLUSTER_SHARE
    return np.where(
        in_cluster, by_cluster[np.minimum(local, len(keyed) - 1)], np.minimum(picks, len(pop) - 1)
    )


def _timestamps(rng: np.random.Generator, users: np.ndarray, days: int, start_s: int) -> np.ndarray:
    """Evening-heavy times, then pushed apart so each user's ratings are an hour apart or more."""
    n = len(users)
    hours = rng.choice(24, size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    ts = (
        start_s
        + rng.integers(0, max(days, 1), size=n) * 86_400
        + hours * 3_600
        + rng.integers(0, 3_600, size=n)
    )
    order = np.lexsort((ts, users))
    su, st = users[order], ts[order]
    rank = np.arange(n) - np.searchsorted(su, su, side="left")
    span = int(st.max() - start_s) + _MIN_GAP_S * (n + 1) if n else 0
    shifted = st - rank * _MIN_GAP_S + su.astype(np.int64) * span  # groups stay apart under cummax
    spaced = np.maximum.accumulate(shifted) - su.astype(np.int64) * span + rank * _MIN_GAP_S
    out = np.empty(n, dtype=np.int64)
    out[order] = spaced
    return out


# fmt: off
_ADJECTIVES = (
    "Silent", "Crimson", "Hidden", "Broken", "Golden", "Last", "Distant", "Burning", "Frozen", "Secret",
    "Wild", "Hollow", "Midnight", "Electric", "Quiet", "Restless", "Shattered", "Endless", "Velvet",
    "Iron", "Little", "Lost", "Northern", "Paper", "Savage", "Scarlet", "Sleeping", "Stolen", "Wandering",
    "Bitter",
)
_NOUNS = (
    "Harbor", "Garden", "Empire", "Horizon", "River", "Kingdom", "Signal", "Orchard", "Frontier",
    "Lighthouse", "Mirror", "Station", "Summer", "Winter", "Island", "Circus", "Forest", "Engine",
    "Promise", "Shadow", "Canyon", "Letter", "Voyage", "Crown", "Witness", "Tide", "Alibi", "Comet",
    "Cathedral", "Harvest",
)
# fmt: on
_PLACES = (
    "Paris",
    "Lisbon",
    "the Desert",
    "Tokyo",
    "the North",
    "Brooklyn",
    "Marrakesh",
    "the Valley",
    "Oslo",
)
_SEQUELS = ("II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")


def synthetic_titles(items: int, seed: int) -> dict[str, str]:
    """Readable, unique fake titles (``"The Silent Harbor"``) for ``c0000`` .. ``c{items-1}``."""
    rng = np.random.default_rng([seed, 3])
    seen: set[str] = set()
    titles: dict[str, str] = {}
    for index in range(items):
        title = _title(rng)
        for _ in range(5):
            if title not in seen:
                break
            title = _title(rng)
        base, sequel = title, 0
        while title in seen:
            title = f"{base} {_SEQUELS[sequel]}" if sequel < len(_SEQUELS) else f"{base} {sequel + 2}"
            sequel += 1
        seen.add(title)
        titles[content_id(index)] = title
    return titles


def _title(rng: np.random.Generator) -> str:
    adj = _ADJECTIVES[int(rng.integers(len(_ADJECTIVES)))]
    noun = _NOUNS[int(rng.integers(len(_NOUNS)))]
    other = _NOUNS[int(rng.integers(len(_NOUNS)))]
    pattern = int(rng.integers(6))
    if pattern == 0:
        return f"{adj} {noun}"
    if pattern == 1:
        return f"The {noun} of {other}s" if noun != other else f"The {noun}"
    if pattern == 2:
        return f"A {adj} {noun} in {_PLACES[int(rng.integers(len(_PLACES)))]}"
    if pattern == 3:
        return f"{noun} and {other}" if noun != other else f"The {adj} {noun}"
    return f"The {adj} {noun}"
