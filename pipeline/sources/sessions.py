"""Turn ratings into ``playback.v1`` sessions: one rating, one viewing session.

A session is ``play``, a ``heartbeat`` every :data:`HEARTBEAT_MS` of playback,
maybe one ``pause`` and one forward ``seek``, and a final ``stop`` or
``complete``. Its **total** ``watched_ms`` is
``round(weight / max_weight * WATCH_BUDGET_MS)``: a function of the rating
alone, not of the title, so any confidence the pipeline later derives from
watched time (sum or fraction of the budget) is monotone in the rating, which
is what an implicit-feedback ALS needs to recover the ratings' signal. Higher
ratings are also more likely to end in ``complete``; a session then starts at a
resume position so that it ends at the title's end.

Time: the ``play`` event is at the rating's timestamp and every later event
is strictly later. Wall-clock span is the played time plus at most one pause,
at most 50 minutes, so most sessions fall in one 1-hour window; sessions that
start late in an hour straddle two windows, as real ones do. MovieLens users
often rated many titles within seconds, so one user's sessions may overlap.

``watched_ms`` of an event is the playback time since the session's previous
event (0 for ``play``); ``position_ms`` is the playhead after the event.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.sources._profiles import UserProfile, error_message, search_query, user_profile
from pipeline.sources._stable import keyed_random, stable_unit
from pipeline.sources.ratings import Rating

__all__ = [
    "EVENT_TYPES",
    "HEARTBEAT_MS",
    "PLAYBACK_SCHEMA",
    "WATCH_BUDGET_MS",
    "expected_events_per_session",
    "ratings_to_sessions",
    "title_duration_ms",
]

PLAYBACK_SCHEMA = "playback.v1"
EVENT_TYPES = ("play", "heartbeat", "pause", "seek", "stop", "complete")
WATCH_BUDGET_MS = 45 * 60_000
"""Playback time of a session whose rating is the maximum weight."""
HEARTBEAT_MS = 5 * 60_000
"""Playback time between heartbeats."""
DURATION_RANGE_MIN = (45, 150)
"""Title durations in minutes; at least the budget, so a full-weight session fits in any title."""

_P_PAUSE, _P_SEEK, _P_SEARCH, _P_ERROR = 0.2, 0.1, 0.12, 0.02
_PAUSE_MS = (30_000, 300_000)
_SEEK_MS = (30_000, 300_000)


def title_duration_ms(seed: int, content_id: str) -> int:
    """The title's duration, fixed by ``(seed, content_id)``, whole minutes in :data:`DURATION_RANGE_MIN`."""
    low, high = DURATION_RANGE_MIN
    return (low + int(stable_unit(seed, "duration", content_id) * (high - low + 1))) * 60_000


def expected_events_per_session(fractions: np.ndarray) -> np.ndarray:
    """Mean event count of sessions whose weights are ``fractions`` of the maximum.

    Lets the synthetic source pick how many ratings make a target number of events.
    """
    watched = np.rint(np.clip(fractions, 0.0, 1.0) * WATCH_BUDGET_MS)
    heartbeats = np.where(watched > 0, (watched - 1) // HEARTBEAT_MS, 0)
    events: np.ndarray = 2.0 + heartbeats + _P_PAUSE * (heartbeats >= 1) + _P_SEEK * (watched > 0)
    return events


def ratings_to_sessions(
    ratings: Sequence[Rating],
    *,
    seed: int,
    titles: Mapping[str, str] | None = None,
    max_weight: float | None = None,
    heartbeat_ms: int = HEARTBEAT_MS,
) -> Iterator[list[dict[str, Any]]]:
    """Yield one session (a list of ``playback.v1`` event dicts of one user) per rating.

    Sessions come in start-time order (ratings sorted by timestamp, ties in input
    order), which is what :func:`pipeline.sources.order_by_time` expects. The same
    ratings and seed always give the same events, ids included.

    Args:
        ratings: the ratings to replay.
        seed: fixes every random choice; user profiles and title durations depend
            only on the seed and their own id.
        titles: ``content_id -> title``, used to make search queries look typed.
        max_weight: the weight of a full session; defaults to the largest weight.
        heartbeat_ms: playback time between heartbeats (players typically send one
            every 10-30 s; the default keeps replays of rating data small).
    """
    if max_weight is None:
        max_weight = max((r.weight for r in ratings), default=1.0)
    scale = 1.0 / max_weight if max_weight > 0 else 0.0
    rng = keyed_random(seed, "sessions", "")
    profiles: dict[str, UserProfile] = {}
    durations: dict[str, int] = {}
    for rating in sorted(ratings, key=_start):
        profile = profiles.get(rating.user_id)
        if profile is None:
            profile = profiles[rating.user_id] = user_profile(seed, rating.user_id)
        duration = durations.get(rating.content_id)
        if duration is None:
            duration = durations[rating.content_id] = title_duration_ms(seed, rating.content_id)
        title = titles.get(rating.content_id) if titles else None
        yield _session(rng, rating, min(1.0, rating.weight * scale), duration, profile, title, heartbeat_ms)


def _start(rating: Rating) -> int:
    return rating.timestamp_s


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID string from the seeded stream (``uuid.UUID`` is 4x slower)."""
    h = f"{rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _session(
    rng: random.Random,
    rating: Rating,
    fraction: float,
    duration: int,
    profile: UserProfile,
    title: str | None,
    heartbeat_ms: int = HEARTBEAT_MS,
) -> list[dict[str, Any]]:
    watched = round(fraction * WATCH_BUDGET_MS)
    complete = watched > 0 and rng.random() < 0.9 * fraction**3
    n_beats = (watched - 1) // heartbeat_ms if watched > 0 else 0
    segments = [heartbeat_ms] * n_beats + [watched - n_beats * heartbeat_ms]
    slack = duration - watched
    seek = 0
    inserts: dict[int, list[tuple[int, str]]] = {}
    if watched > 1 and slack > 1 and rng.random() < _P_SEEK and _insert(rng, inserts, segments, "seek"):
        seek = min(slack - 1, rng.randint(*_SEEK_MS))
    if slack - seek < 1:
        complete = watched > 0
    # A complete session ends exactly at the title's end; otherwise it starts at 0 or resumes.
    position = (
        duration - watched - seek if complete else 0 if rng.random() < 0.6 else rng.randrange(0, slack - seek)
    )
    if n_beats and rng.random() < _P_PAUSE:
        _insert(rng, inserts, segments, "pause")

    device = profile.devices[0] if rng.random() < 0.7 else rng.choice(profile.devices)
    user, content, session_id = rating.user_id, rating.content_id, _uuid(rng)
    device_id, client, gpc = device.device_id, device.client, profile.gpc
    now = rating.timestamp_s * 1000
    events: list[dict[str, Any]] = []

    def emit(kind: str, watched_ms: int) -> dict[str, Any]:
        event = {
            "schema": PLAYBACK_SCHEMA,
            "event_id": _uuid(rng),
            "user_id": user,
            "session_id": session_id,
            "device_id": device_id,
            "content_id": content,
            "event_type": kind,
            "position_ms": position,
            "duration_ms": duration,
            "watched_ms": watched_ms,
            "event_time": now,
            "client": client.copy(),
            "gpc": gpc,
        }
        events.append(event)
        return event

    play = emit("play", 0)
    if rng.random() < _P_SEARCH:
        play["search_query"] = search_query(rng, title)
    if watched == 0:
        now += rng.randint(2_000, 20_000)  # pressed play, gave up while it buffered
    last = len(segments) - 1
    for index, length in enumerate(segments):
        done = 0
        for offset, kind in sorted(inserts.get(index, ())):
            now += offset - done
            position += offset - done
            if kind == "seek":
                position += seek
            emit(kind, offset - done)
            if kind == "pause":
                now += rng.randint(*_PAUSE_MS)
            done = offset
        now += length - done
        position += length - done
        if index < last:
            emit("heartbeat", length - done)
        else:
            end = emit("complete" if complete else "stop", length - done)
            if not complete and rng.random() < _P_ERROR:
                end["error_message"] = error_message(rng)
    return events


def _insert(
    rng: random.Random, inserts: dict[int, list[tuple[int, str]]], segments: list[int], kind: str
) -> bool:
    """Put a ``kind`` event strictly inside a segment, at an offset no other insert uses."""
    index = rng.randrange(len(segments))
    if segments[index] < 3:
        index = 0 if segments[0] >= 3 else -1
    if index < 0:
        return False
    taken = {offset for offset, _ in inserts.get(index, ())}
    offset = rng.randrange(1, segments[index])
    while offset in taken:
        offset = offset % (segments[index] - 1) + 1
    inserts.setdefault(index, []).append((offset, kind))
    return True
