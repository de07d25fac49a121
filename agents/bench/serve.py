"""``privrec bench serve``: the reader against raw redis-py GETs of the same keys, one run.

Publishes synthetic recommendations for ``users`` users (``trainer.top_n``
full items with three "because" titles each, a 20-item limited list, one in
ten users with viewer controls) under a throwaway namespace of the configured
Redis (else the running embedded one, else a fresh embedded one), then
measures, interleaved so both see the same machine load:

* **reader**: ``Reader.get(user_id, n)`` — pseudonymise, one script call
  (live pointer + candidate keys + controls), decode, apply controls;
* **raw GET**: ``redis.get(key)`` of that user's key, same client, nothing else;
* **batch**: ``Reader.get_many`` of 1000 users vs a raw pipelined MGET of
  their 1000 keys.

Every key of the namespace is deleted afterwards.
"""

from __future__ import annotations

import base64
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.embedded import EmbeddedServices
from pipeline.privacy.pseudonym import Pseudonymizer, parse_keys
from pipeline.recs.types import PopularItem, Recommendation, UserRecs
from pipeline.settings import Settings

__all__ = ["bench_serve"]

TARGET_P99_MS = 1.0
TARGET_RATIO = 3.0


@contextmanager
def _redis_url(settings: Settings) -> Iterator[tuple[str, str]]:
    """(url, where): configured, else the running embedded Redis, else a temporary one."""
    if settings.redis.url is not None:
        yield settings.redis.url.get_secret_value(), "external"
        return
    rec = EmbeddedServices(settings.state_dir).running("redis")
    if rec is not None:
        yield rec.url, "embedded (running)"
        return
    with tempfile.TemporaryDirectory(prefix="privrec-bench-serve-") as tmp:
        services = EmbeddedServices(Path(tmp))
        try:
            yield services.up(kafka=False, redis=True)["redis"].url, "embedded (started for the bench)"
        finally:
            services.down()


def synthetic_recs(
    pz: Pseudonymizer, users: int, *, top_n: int, items: int = 5000, seed: int = 7
) -> tuple[list[str], dict[str, UserRecs], list[PopularItem]]:
    """(user ids, recs per pseudonym, popular list), deterministic for a seed."""
    rng = random.Random(seed)
    titles = [f"title-{i:05d}" for i in range(items)]
    user_ids = [f"bench-user-{i}" for i in range(users)]
    recs: dict[str, UserRecs] = {}
    for user in user_ids:
        picks = rng.sample(titles, top_n + 20 + 3)
        scores = sorted((rng.random() for _ in range(top_n)), reverse=True)
        because = tuple(picks[-3:])
        full = [
            Recommendation(content_id=c, score=s, because=because)
            for c, s in zip(picks[:top_n], scores, strict=True)
        ]
        limited = [
            Recommendation(content_id=c, score=1.0 - k / 20, because=because[:1])
            for k, c in enumerate(picks[top_n : top_n + 20])
        ]
        recs[pz.pseudonym(user)] = UserRecs(full=full, limited=limited)
    popular = [PopularItem(content_id=t, score=float(items - k)) for k, t in enumerate(titles[:100])]
    return user_ids, recs, popular


def _pct(samples_ns: list[int], q: float) -> float:
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1e6


def bench_serve(
    settings: Settings,
    *,
    users: int = 10_000,
    reads: int = 20_000,
    n: int = 10,
    batches: int = 20,
    seed: int = 7,
) -> dict[str, Any]:
    """Run the benchmark; returns the JSON report (milliseconds, ratios reader/raw)."""
    import redis

    from pipeline.serving import Layout, Reader

    secret = base64.b64encode(os.urandom(32)).decode()
    pz = Pseudonymizer(parse_keys(f"bench:base64:{secret}"))
    layout = Layout(f"privrec-bench:{uuid.uuid4().hex[:12]}")
    user_ids, recs, popular = synthetic_recs(pz, users, top_n=settings.trainer.top_n, seed=seed)
    rng = random.Random(seed + 1)
    with _redis_url(settings) as (url, where):
        client = redis.Redis.from_url(url)
        try:
            published = _publish(client, layout, pz, user_ids, recs, popular)
            reader = Reader(client, pz, layout)
            keys = {u: layout.user("bench-v1", pz.pseudonym(u)) for u in user_ids}
            sample = [rng.choice(user_ids) for _ in range(reads)]
            single = _time_reads(reader, client, keys, sample, n)
            chunks = [rng.sample(user_ids, min(1000, users)) for _ in range(batches)]
            batch = _time_batches(reader, client, keys, chunks, n)
            value_bytes = sum(client.strlen(keys[u]) for u in user_ids[:100]) / min(100, users)
        finally:
            left = _cleanup(client, layout)
            client.close()
    return {
        "redis": where,
        "users": users,
        "reads": reads,
        "n": n,
        "pseudonym_keys": 1,
        "users_with_controls": len(user_ids[::10]),
        "value_bytes_mean": round(value_bytes),
        "publish_s": round(published.seconds, 3),
        "publish_users_per_s": round(users / published.seconds),
        **_latencies(single, batch),
        "removed_versions": list(published.removed_versions),
        "keys_left": left,
    }


class _Published(NamedTuple):
    seconds: float
    removed_versions: tuple[str, ...]


def _publish(
    client: Any,
    layout: Any,
    pz: Pseudonymizer,
    user_ids: list[str],
    recs: dict[str, UserRecs],
    popular: list[PopularItem],
) -> _Published:
    """Publish the synthetic model as version ``bench-v1`` (timed), then controls for one user in ten."""
    from pipeline.serving import publish, set_controls

    t0 = time.perf_counter()
    result = publish(client, layout, "bench-v1", recs, popular, {"bench": True}, 3600)
    seconds = time.perf_counter() - t0
    for user in user_ids[::10]:
        cands = pz.candidates(user)
        top = recs[cands[0]].full
        set_controls(client, layout, cands, hide=[top[0].content_id, top[3].content_id])
    return _Published(seconds, tuple(result.removed_versions))


class _Samples(NamedTuple):
    ours: list[int]  # nanoseconds per call
    raw: list[int]


def _time_reads(reader: Any, client: Any, keys: dict[str, str], sample: list[str], n: int) -> _Samples:
    """``Reader.get`` and a raw GET of the same key, interleaved per user so both see the same load."""
    for user in sample[: min(2000, len(sample))]:  # warm-up: connections, script cache, pseudonym cache
        reader.get(user, n)
        client.get(keys[user])
    clock = time.perf_counter_ns
    out = _Samples([], [])
    for user in sample:
        key = keys[user]
        t0 = clock()
        reader.get(user, n)
        t1 = clock()
        client.get(key)
        t2 = clock()
        out.ours.append(t1 - t0)
        out.raw.append(t2 - t1)
    return out


def _time_batches(
    reader: Any, client: Any, keys: dict[str, str], chunks: list[list[str]], n: int
) -> _Samples:
    """``Reader.get_many`` and a raw MGET of the same keys, interleaved per chunk."""
    clock = time.perf_counter_ns
    out = _Samples([], [])
    for chunk in chunks:
        chunk_keys = [keys[u] for u in chunk]
        t0 = clock()
        reader.get_many(chunk, n)
        t1 = clock()
        client.mget(chunk_keys)
        t2 = clock()
        out.ours.append(t1 - t0)
        out.raw.append(t2 - t1)
    return out


def _latencies(single: _Samples, batch: _Samples) -> dict[str, Any]:
    """The report's latency fields (milliseconds), ratios to raw Redis, and the verdict."""
    p50, p99 = _pct(single.ours, 0.5), _pct(single.ours, 0.99)
    raw50, raw99 = _pct(single.raw, 0.5), _pct(single.raw, 0.99)
    b50, rb50 = _pct(batch.ours, 0.5), _pct(batch.raw, 0.5)
    return {
        "p50_ms": round(p50, 4),
        "p99_ms": round(p99, 4),
        "raw_get_p50_ms": round(raw50, 4),
        "raw_get_p99_ms": round(raw99, 4),
        "p50_ratio": round(p50 / raw50, 2),
        "p99_ratio": round(p99 / raw99, 2),
        "batch_1000_ms": round(b50, 3),
        "batch_1000_p99_ms": round(_pct(batch.ours, 0.99), 3),
        "raw_mget_1000_ms": round(rb50, 3),
        "batch_ratio": round(b50 / rb50, 2),
        "target": {"p99_ms_max": TARGET_P99_MS, "ratio_max": TARGET_RATIO},
        "meets_target": p99 <= TARGET_P99_MS and p99 / raw99 <= TARGET_RATIO,
    }


def _cleanup(client: Any, layout: Any) -> int:
    """Delete every key of the bench namespace; returns how many are left (0)."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=layout.all_pattern(), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)
    return sum(1 for _ in client.scan_iter(match=layout.all_pattern(), count=1000))
