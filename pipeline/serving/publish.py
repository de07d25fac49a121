"""Publish a model's recommendations to Redis: write a version, switch atomically, clean up.

A publish writes every key of the new version first (pipelined, unordered,
every per-user key with a TTL) while readers keep reading the live one, then
switches the live pointer in one script that also records the version. A
reader therefore sees the old version or the new one, never a mix and never a
half-written version. The previous version is kept as a grace period (for
clients that still hold its name) until the next publish; older versions are
deleted with SCAN + UNLINK in chunks.

Keys are written in chunks, each one MULTI/EXEC transaction that also records
its chunk number in ``<ns>:recs:<version>:written``; the switch refuses
(:class:`PublishIncomplete`) unless every chunk is recorded there. A Redis
restarted without persistence midway (the client reconnects and goes on
writing into an empty server) therefore never makes a half-written version
live: the trainer retries with a new version.

Versions being written are listed in ``<ns>:recs:pending`` (by every chunk), so
:func:`delete_user` (erasure) also reaches a version that is not live yet. A
publish that crashed before its switch leaves keys that expire with their TTL.

Published versions are immutable: publishing a version name twice raises
:class:`VersionExists`; fold-in updates of single users go through
:func:`publish_user`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.exceptions import ResponseError

from pipeline.errors import PrivrecError
from pipeline.recs.types import PopularItem, UserRecs
from pipeline.serving.layout import Layout, check_pseudonym, check_version

__all__ = [
    "PublishIncomplete",
    "PublishResult",
    "VersionExists",
    "delete_user",
    "live_meta",
    "live_version",
    "publish",
    "publish_user",
    "read_meta",
    "remove_versions",
]

log = logging.getLogger(__name__)

CHUNK = 1000
"""Commands per pipeline round trip (writes) and keys per UNLINK (deletes)."""

_ENCODER = msgspec.msgpack.Encoder()

# KEYS: live, versions, pending, popular, meta, written. ARGV: version, switch time (ms), chunks.
_SWITCH_SCRIPT = """
if redis.call('SCARD', KEYS[6]) ~= tonumber(ARGV[3]) then
  return redis.error_reply('PRIVREC_INCOMPLETE')
end
redis.call('UNLINK', KEYS[6])
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PERSIST', KEYS[4])
redis.call('PERSIST', KEYS[5])
return previous
"""

# KEYS: versions, the user's key. ARGV: version, value, ttl.
_PUBLISH_USER_SCRIPT = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
"""


class VersionExists(PrivrecError):
    """This version was already published; versions are immutable (pick a new name)."""


class PublishIncomplete(PrivrecError):
    """Keys of the version were lost before its switch (Redis restarted): nothing went live (retryable)."""

    retryable = True


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What :func:`publish` did."""

    version: str
    users: int
    previous: str | None
    removed_versions: tuple[str, ...]
    removed_keys: int
    write_s: float
    total_s: float


def _now_ms() -> int:
    return int(time.time() * 1000)


def publish(
    redis: Any,
    layout: Layout,
    version: str,
    recs: Mapping[str, UserRecs],
    popular: list[PopularItem],
    meta: dict[str, Any],
    ttl_s: int,
    *,
    keep: int = 2,
) -> PublishResult:
    """Write ``version``, make it live atomically, delete versions beyond the newest ``keep``.

    Args:
        redis: a redis-py client.
        layout: the key layout.
        version: the new version's name, ``[A-Za-z0-9._-]{1,64}``.
        recs: per pseudonym (never a raw user id), what to serve.
        popular: the non-personalised list, best first.
        meta: model metadata, stored as JSON (must be JSON-serialisable).
        ttl_s: lifetime of each per-user key (``serving.ttl_s``); a user who is
            in no later model falls back to the popular list after it.
        keep: versions kept after the switch, the live one included (at least 2,
            so the previous version survives until the next publish).

    Raises:
        VersionExists: ``version`` was published before.
        ValueError: a malformed version or pseudonym, ``ttl_s`` < 1 or ``keep`` < 2.
    """
    check_version(version)
    if ttl_s < 1:
        raise ValueError("ttl_s must be >= 1")
    if keep < 2:
        raise ValueError("keep must be >= 2 (the previous version is the readers' grace period)")
    for pseudonym in recs:
        check_pseudonym(pseudonym)
    meta_json = json.dumps(meta, sort_keys=True, default=str)
    if redis.zscore(layout.versions, version) is not None:
        raise VersionExists(f"recommendations version {version!r} is already published")

    started = time.perf_counter()
    written_key = layout.recs_prefix + version + ":written"
    items = [
        (layout.popular(version), _ENCODER.encode(popular)),
        (layout.meta(version), meta_json.encode()),
    ]
    items += [(layout.user(version, p), _ENCODER.encode(r)) for p, r in recs.items()]
    chunks = range(0, len(items), CHUNK)
    for number, at in enumerate(chunks):
        # one transaction per chunk: its keys and its number in `written` land together or not at all
        pipe = redis.pipeline(transaction=True)
        pipe.zadd(layout.pending, {version: _now_ms()}, nx=True)
        for key, value in items[at : at + CHUNK]:
            pipe.set(key, value, ex=ttl_s)
        pipe.sadd(written_key, number)
        pipe.expire(written_key, ttl_s)
        pipe.execute()
    written = time.perf_counter()

    keys = [layout.live, layout.versions, layout.pending, layout.popular(version), layout.meta(version)]
    try:
        previous = redis.eval(
            _SWITCH_SCRIPT, len(keys) + 1, *keys, written_key, version, _now_ms(), len(chunks)
        )
    except ResponseError as exc:
        if "PRIVREC_INCOMPLETE" not in str(exc):
            raise
        log.warning("recommendations version %s not switched: keys lost while writing", version)
        raise PublishIncomplete(
            f"recommendations version {version!r} lost keys before its switch (Redis restarted?)"
        ) from None
    previous = previous.decode() if isinstance(previous, bytes) else previous
    log.info("recommendations version %s live: %d users (previous %s)", version, len(recs), previous)

    removed, removed_keys = remove_versions(redis, layout, keep=keep)
    redis.zremrangebyscore(layout.pending, "-inf", _now_ms() - ttl_s * 1000)
    return PublishResult(
        version=version,
        users=len(recs),
        previous=previous,
        removed_versions=removed,
        removed_keys=removed_keys,
        write_s=written - started,
        total_s=time.perf_counter() - started,
    )


def _decode_all(values: Iterable[bytes | str]) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else v for v in values]


def live_version(redis: Any, layout: Layout) -> str | None:
    """The live version, or None when nothing is published."""
    value = redis.get(layout.live)
    return value.decode() if isinstance(value, bytes) else value


def read_meta(redis: Any, layout: Layout, version: str | None = None) -> dict[str, Any] | None:
    """The metadata of ``version`` (default: the live one), or None."""
    version = version or live_version(redis, layout)
    if version is None:
        return None
    raw = redis.get(layout.meta(version))
    return json.loads(raw) if raw is not None else None


def live_meta(redis: Any, layout: Layout) -> dict[str, Any] | None:
    """The metadata of the live version, or None when nothing is published."""
    return read_meta(redis, layout)


def remove_versions(redis: Any, layout: Layout, *, keep: int = 2) -> tuple[tuple[str, ...], int]:
    """Delete every version but the newest ``keep`` (never the live one).

    One SCAN over ``<ns>:recs:*`` finds their keys, UNLINKed in chunks; a
    version leaves the versions set only once its keys are gone, so a crash
    midway is finished by the next call. Returns (versions, keys) removed.
    """
    live = live_version(redis, layout)
    ordered = _decode_all(redis.zrevrange(layout.versions, 0, -1))
    doomed = {v for v in ordered[keep:] if v != live}
    if not doomed:
        return (), 0
    prefix = layout.recs_prefix.encode()
    wanted = {v.encode() for v in doomed}
    batch: list[bytes] = []
    removed = 0
    (only,) = doomed if len(doomed) == 1 else (None,)
    match = layout.version_pattern(only) if only else layout.recs_prefix + "*"
    for key in redis.scan_iter(match=match, count=CHUNK):
        raw = key if isinstance(key, bytes) else key.encode()
        if raw[len(prefix) :].split(b":", 1)[0] in wanted:
            batch.append(raw)
            if len(batch) >= CHUNK:
                removed += redis.unlink(*batch)
                batch.clear()
    if batch:
        removed += redis.unlink(*batch)
    redis.zrem(layout.versions, *doomed)
    log.info("removed %d old recommendations versions (%d keys)", len(doomed), removed)
    return tuple(sorted(doomed)), removed


def publish_user(
    redis: Any, layout: Layout, version: str, pseudonym: str, recs: UserRecs, ttl_s: int
) -> bool:
    """Replace one user's entry in ``version`` (a fold-in refresh), with a fresh TTL.

    Returns False, writing nothing, when ``version`` is not (or no longer) a
    published version, so a refresh computed against a removed model cannot
    resurrect it.
    """
    check_version(version)
    check_pseudonym(pseudonym)
    if ttl_s < 1:
        raise ValueError("ttl_s must be >= 1")
    keys = [layout.versions, layout.user(version, pseudonym)]
    return bool(redis.eval(_PUBLISH_USER_SCRIPT, len(keys), *keys, version, _ENCODER.encode(recs), ttl_s))


def delete_user(redis: Any, layout: Layout, pseudonyms: Iterable[str]) -> int:
    """Erase users: their entries in every version present (live, kept, being written) and controls.

    Args:
        pseudonyms: every pseudonym of the users (``Pseudonymizer.candidates``
            for each user id, so entries under older keys go too).

    Returns:
        The number of keys deleted.
    """
    names = [check_pseudonym(p) for p in pseudonyms]
    if not names:
        return 0
    pipe = redis.pipeline(transaction=False)
    pipe.get(layout.live)
    pipe.zrange(layout.versions, 0, -1)
    pipe.zrange(layout.pending, 0, -1)
    live, published, pending = pipe.execute()
    versions = set(_decode_all(published)) | set(_decode_all(pending))
    if live is not None:
        versions.add(live.decode() if isinstance(live, bytes) else live)
    keys = [layout.user(v, p) for v in sorted(versions) for p in names]
    keys += [layout.controls(p) for p in names]
    deleted = 0
    for start in range(0, len(keys), CHUNK):
        deleted += redis.unlink(*keys[start : start + CHUNK])
    log.info("erased %d recommendation keys of %d pseudonyms", deleted, len(names))
    return deleted
