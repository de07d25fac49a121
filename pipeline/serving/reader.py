"""Read recommendations for user ids: one Redis round trip per read or per batch.

One Lua script reads, atomically, the live pointer, then for each user the
first candidate pseudonym (newest key first) that has an entry in the live
version, and the first that has controls. Atomic means a reader never mixes
two versions, even while :func:`~pipeline.serving.publish.publish` switches.
The popular list of a version never changes, so each reader caches it and the
script sends it only when the live version differs from the cached one; the
same holds for the latest DP trending list (by its day), which, once released,
replaces the popular list (see :mod:`pipeline.serving.response`).

Only the list the viewer's controls select is decoded, item by item, until
``n`` items survive the hidden-title filter.

The script names keys it builds itself (from the version it reads), so it
needs a single Redis server (or a replica set), not Redis Cluster.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import redis as redis_lib

from pipeline.dp.trending import decode_trending
from pipeline.errors import ServiceUnavailable
from pipeline.privacy.pseudonym import Pseudonymizer
from pipeline.recs.types import PopularItem, Recommendation
from pipeline.serving.controls import DEFAULT, Controls, parse_controls
from pipeline.serving.layout import Layout
from pipeline.serving.rerank import Rerank
from pipeline.serving.response import Fallback, RecsResponse, compose, popular_as_recs

if TYPE_CHECKING:
    import redis.asyncio as redis_async

__all__ = ["MAX_N", "AsyncReader", "Reader", "read_script"]

log = logging.getLogger(__name__)

MAX_N = 500
"""Largest ``n`` a reader accepts (the trainer publishes ``trainer.top_n`` per user)."""

BATCH_USERS = 250
"""Users per script call inside one pipelined batch (bounds how long one call blocks Redis)."""

# KEYS[1]: live pointer; KEYS[2]: trending releases. ARGV[1]: version whose popular list the caller
# has cached ("" for none); ARGV[2]: the trending release it has cached ("" for none); ARGV[3..]: K
# candidate pseudonyms per user, newest first. Prefixes and K are baked in per reader.
# Reply: version, popular (or nil), the served trending release (or nil), its list (or nil if cached),
# then one element per user: nil (nothing found); the entry
# prefixed with one byte, the index of the candidate that had it; or, when the user has controls,
# an array {that entry or nil, controls candidate index, HGETALL fields and values...}.
# One element per user keeps the reply as small as an MGET's, which is what redis-py parses slowest.
_READ_TEMPLATE = """
local version = redis.call('GET', KEYS[1])
local out = {version, false, false, false}
if version and version ~= ARGV[1] then
  out[2] = redis.call('GET', '%(recs)s' .. version .. ':popular')
end
local tday = redis.call('ZREVRANGE', KEYS[2], 0, 0)[1]
if tday then
  out[3] = tday
  if tday ~= ARGV[2] then out[4] = redis.call('GET', '%(trending)s' .. tday) or false end
end
local k = %(k)d
local upfx = version and ('%(recs)s' .. version .. ':u:')
local n = 4
for base = 2, #ARGV - 1, k do
  local entry = false
  if version then
    for i = 1, k do
      local v = redis.call('GET', upfx .. ARGV[base + i])
      if v then entry = string.char(i) .. v; break end
    end
  end
  for i = 1, k do
    local c = redis.call('HGETALL', '%(controls)s' .. ARGV[base + i])
    if #c > 0 then
      local both = {entry, i}
      for j = 1, #c do both[j + 2] = c[j] end
      entry = both
      break
    end
  end
  n = n + 1
  out[n] = entry
end
return out
"""


def read_script(layout: Layout, keys: int) -> str:
    """The read script for ``layout`` and ``keys`` pseudonym keys (its text is per reader).

    The namespace alphabet (``[A-Za-z0-9._:-]``) is safe inside a Lua string literal.
    """
    return _READ_TEMPLATE % {
        "recs": layout.recs_prefix,
        "controls": layout.controls_prefix,
        "trending": layout.trending_prefix,
        "k": keys,
    }


class _Stored(msgspec.Struct, gc=False):
    """``UserRecs`` with both lists left undecoded (only one of them is used)."""

    full: msgspec.Raw
    limited: msgspec.Raw = msgspec.Raw(b"\x90")  # msgpack []


_STORED = msgspec.msgpack.Decoder(_Stored)
_RAW_LIST = msgspec.msgpack.Decoder(list[msgspec.Raw])
_RECOMMENDATION = msgspec.msgpack.Decoder(Recommendation)
_POPULAR = msgspec.msgpack.Decoder(list[PopularItem])


def _lazy_items(blob: bytes, controls: Controls) -> Iterator[Recommendation]:
    stored = _STORED.decode(blob)
    raw = stored.full if controls.personalization == "full" else stored.limited
    return map(_RECOMMENDATION.decode, _RAW_LIST.decode(raw))


def _respond(
    version: str | None,
    pseudonym: str | None,
    entry: bytes | None,
    controls: Controls,
    popular: list[Recommendation],
    n: int,
    trending: Fallback | None = None,
    rerank: Rerank | None = None,
) -> RecsResponse:
    """:func:`compose` over a script entry (index byte + msgpack ``UserRecs``, or None)."""
    try:
        recs = _lazy_items(entry[1:], controls) if entry is not None else None
        return compose(
            version=version,
            pseudonym=pseudonym,
            recs=recs,
            controls=controls,
            popular=popular,
            n=n,
            trending=trending,
            rerank=rerank,
        )
    except msgspec.DecodeError:  # a corrupt entry must not break reads: serve as if absent
        log.warning("undecodable recommendations entry in version %s", version)
        return compose(
            version=version,
            pseudonym=pseudonym,
            recs=None,
            controls=controls,
            popular=popular,
            n=n,
            trending=trending,
        )


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise ValueError(f"n must be an integer between 1 and {MAX_N}")
    return n


class _Core:
    """What both readers share: script arguments, reply parsing, the popular cache."""

    def __init__(self, pseudonymizer: Pseudonymizer, layout: Layout, batch_users: int) -> None:
        self._pz = pseudonymizer
        self._layout = layout
        self._batch_users = max(1, batch_users)
        self.script = read_script(layout, len(pseudonymizer.key_ids))
        self._sha = hashlib.sha1(self.script.encode(), usedforsecurity=False).hexdigest()
        self._popular: tuple[str, list[Recommendation]] | None = None
        self._trending: tuple[str, Fallback] | None = None

    @property
    def layout(self) -> Layout:
        return self._layout

    def _args(self, candidates: Iterable[list[str]]) -> list[str | int]:
        cached = self._popular[0] if self._popular is not None else ""
        cached_day = self._trending[0] if self._trending is not None else ""
        args: list[str | int] = [self._layout.live, self._layout.trending_days, cached, cached_day]
        for cands in candidates:
            args.extend(cands)
        return args

    def _popular_for(self, version: str | None, blob: bytes | None) -> list[Recommendation]:
        if version is None:
            return []
        if blob is not None:
            try:
                popular = popular_as_recs(_POPULAR.decode(blob))
            except msgspec.DecodeError:
                log.warning("undecodable popular list in version %s", version)
                return []
            self._popular = (version, popular)
            return popular
        cached = self._popular
        return cached[1] if cached is not None and cached[0] == version else []

    def _trending_for(self, release: bytes | None, blob: bytes | None) -> Fallback | None:
        if release is None:
            return None
        if blob is not None:
            try:
                t = decode_trending(blob)
            except msgspec.DecodeError:
                log.warning("undecodable trending list")
                return None
            fallback = Fallback(day=t.day, epsilon=t.epsilon, items=popular_as_recs(t.items))
            self._trending = (release.decode(), fallback)
            return fallback
        cached = self._trending
        return cached[1] if cached is not None and cached[0] == release.decode() else None

    def _parse(self, reply: Sequence[Any], candidates: Sequence[list[str]], n: int) -> Iterator[RecsResponse]:
        version = reply[0].decode() if reply[0] is not None else None
        popular = self._popular_for(version, reply[1])
        trending = self._trending_for(reply[2], reply[3])
        for i, cands in enumerate(candidates):
            entry = reply[4 + i]
            controls = DEFAULT
            pseudonym = None
            if isinstance(entry, list):
                controls = parse_controls(entry[2:])
                pseudonym = cands[entry[1] - 1]
                entry = entry[0]
            if entry is not None:
                pseudonym = cands[entry[0] - 1]
            yield _respond(version, pseudonym, entry, controls, popular, n, trending, self._layout.rerank)

    def _chunks(self, users: list[str]) -> Iterator[tuple[list[str], list[list[str]]]]:
        step = self._batch_users
        for start in range(0, len(users), step):
            chunk = users[start : start + step]
            yield chunk, [self._pz.candidates(u) for u in chunk]


def _unavailable(exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(f"redis: no answer from the recommendation cache ({type(exc).__name__})")


class Reader:
    """Synchronous reader over a redis-py client.

    Args:
        redis: a ``redis.Redis`` returning bytes (``decode_responses=False``, the default).
        pseudonymizer: maps user ids to candidate pseudonyms (every configured key).
        layout: the key layout (``Layout.from_settings(settings)``).
        batch_users: users per script call inside a :meth:`get_many` pipeline.

    Raises (from every read):
        ServiceUnavailable: Redis did not answer (retryable).
    """

    def __init__(
        self,
        redis: redis_lib.Redis,
        pseudonymizer: Pseudonymizer,
        layout: Layout,
        *,
        batch_users: int = BATCH_USERS,
    ) -> None:
        if redis.get_connection_kwargs().get("decode_responses"):
            raise ValueError("the reader needs a Redis client with decode_responses=False")
        self._redis = redis
        self._core = _Core(pseudonymizer, layout, batch_users)

    @property
    def layout(self) -> Layout:
        return self._core.layout

    def get(self, user_id: str, n: int = 10) -> RecsResponse:
        """Recommendations for one user (one round trip)."""
        _check_n(n)
        core = self._core
        candidates = [core._pz.candidates(user_id)]
        args = core._args(candidates)
        try:
            try:
                reply = self._redis.evalsha(core._sha, 2, *args)
            except redis_lib.exceptions.NoScriptError:
                self._redis.script_load(core.script)
                reply = self._redis.evalsha(core._sha, 2, *args)
        except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
            raise _unavailable(exc) from None
        return next(core._parse(reply, candidates, n))

    def get_many(self, user_ids: Iterable[str], n: int = 10) -> dict[str, RecsResponse]:
        """Recommendations for many users: one pipelined round trip per call.

        Users are sent in script calls of ``batch_users`` each; every call reads
        the live pointer itself, so each response names the version it came from.
        """
        _check_n(n)
        users = list(dict.fromkeys(user_ids))
        if not users:
            return {}
        core = self._core
        chunks = list(core._chunks(users))

        def run() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for _, cands in chunks:
                pipe.evalsha(core._sha, 2, *core._args(cands))
            return pipe.execute()

        try:
            try:
                replies = run()
            except redis_lib.exceptions.NoScriptError:
                self._redis.script_load(core.script)
                replies = run()
        except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
            raise _unavailable(exc) from None
        out: dict[str, RecsResponse] = {}
        for (chunk, cands), reply in zip(chunks, replies, strict=True):
            out.update(zip(chunk, core._parse(reply, cands, n), strict=True))
        return out

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(self._redis.ping())
        except (redis_lib.ConnectionError, redis_lib.TimeoutError):
            return False


class AsyncReader:
    """The :class:`Reader` API on ``redis.asyncio`` (same script, same rules)."""

    def __init__(
        self,
        redis: redis_async.Redis,
        pseudonymizer: Pseudonymizer,
        layout: Layout,
        *,
        batch_users: int = BATCH_USERS,
    ) -> None:
        if redis.get_connection_kwargs().get("decode_responses"):  # type: ignore[no-untyped-call]
            raise ValueError("the reader needs a Redis client with decode_responses=False")
        self._redis = redis
        self._core = _Core(pseudonymizer, layout, batch_users)

    @property
    def layout(self) -> Layout:
        return self._core.layout

    async def get(self, user_id: str, n: int = 10) -> RecsResponse:
        """Recommendations for one user (one round trip)."""
        _check_n(n)
        core = self._core
        candidates = [core._pz.candidates(user_id)]
        args = core._args(candidates)
        try:
            try:
                reply = await self._redis.evalsha(core._sha, 2, *args)
            except redis_lib.exceptions.NoScriptError:
                await self._redis.script_load(core.script)
                reply = await self._redis.evalsha(core._sha, 2, *args)
        except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
            raise _unavailable(exc) from None
        return next(core._parse(reply, candidates, n))

    async def get_many(self, user_ids: Iterable[str], n: int = 10) -> dict[str, RecsResponse]:
        """Recommendations for many users: one pipelined round trip per call."""
        _check_n(n)
        users = list(dict.fromkeys(user_ids))
        if not users:
            return {}
        core = self._core
        chunks = list(core._chunks(users))

        async def run() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for _, cands in chunks:
                pipe.evalsha(core._sha, 2, *core._args(cands))
            return await pipe.execute()

        try:
            try:
                replies = await run()
            except redis_lib.exceptions.NoScriptError:
                await self._redis.script_load(core.script)
                replies = await run()
        except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
            raise _unavailable(exc) from None
        out: dict[str, RecsResponse] = {}
        for (chunk, cands), reply in zip(chunks, replies, strict=True):
            out.update(zip(chunk, core._parse(reply, cands, n), strict=True))
        return out

    async def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(await self._redis.ping())
        except (redis_lib.ConnectionError, redis_lib.TimeoutError):
            return False
