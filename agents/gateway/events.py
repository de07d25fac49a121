"""``POST /v1/events``: the collector's HTTP shell (body limits, gzip, Kafka), around the pure core.

The body is read with a byte cap, gunzipped (``Content-Encoding: gzip``) with a
cap on the *decompressed* size, so a zip bomb costs at most
``gateway.max_body_bytes`` of memory; :func:`pipeline.gateway.collector.collect`
does the rest. Accepted events go to ``playback.raw`` keyed by the viewer's
canonical id, one ``playback.batch.v1`` envelope per request, and the reply
waits for the broker's acknowledgement (idempotent producer, acks=all).
"""

from __future__ import annotations

import time
import zlib

from aiohttp import web

from agents.gateway.deps import DEPS, json_response, principal, requires
from pipeline.errors import RequestRefused
from pipeline.gateway.collector import collect, envelopes
from pipeline.gateway.principal import EVENTS_WRITE
from pipeline.kafka.topics import Topic
from pipeline.privacy.identity import user_key

__all__ = ["post_events", "read_body"]

_MEDIA_TYPES = frozenset({"application/json", "text/plain"})
_CHUNK = 64 * 1024


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The request body, decompressed when gzip, at most ``max_bytes`` either way (else 413)."""
    if request.content_type not in _MEDIA_TYPES:
        raise RequestRefused(415, "unsupported_media_type")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise RequestRefused(415, "unsupported_encoding")
    if request.content_length is not None and request.content_length > max_bytes:
        raise RequestRefused(413, "body_too_large")
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise RequestRefused(413, "body_too_large")
        parts.append(chunk)
    body = b"".join(parts)
    if encoding == "identity":
        return body
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        raise RequestRefused(400, "invalid_gzip") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise RequestRefused(413, "body_too_large")
    if not inflater.eof:
        raise RequestRefused(400, "invalid_gzip")
    return out


@requires(EVENTS_WRITE, limit="events")
async def post_events(request: web.Request) -> web.Response:
    """Validate a batch of the caller's playback events and produce the valid ones."""
    deps = request.app[DEPS]
    settings = deps.settings
    viewer = principal(request).subject
    body = await read_body(request, settings.gateway.max_body_bytes)
    stream = settings.stream
    result = collect(
        body,
        subject=viewer,
        casefold=settings.pseudonym.casefold_user_ids,
        max_events=settings.gateway.max_events,
        now_ms=int(time.time() * 1000),
        future_tolerance_ms=stream.future_tolerance_ms,
        content_id_pattern=deps.content_id_pattern,
    )
    errors = [{"index": e.index, "reason": e.reason, "path": e.path} for e in result.errors]
    if deps.metrics is not None:
        for e in result.errors:
            if e.index is not None:
                deps.metrics.reject(e.reason)
    if result.status in (400, 413):
        raise RequestRefused(result.status, result.errors[0].reason)
    if result.status == 422:
        return json_response({"error": "no_valid_event", "accepted": 0, "errors": errors}, 422)
    key = user_key(viewer, casefold=settings.pseudonym.casefold_user_ids)
    topic = deps.topic(Topic.RAW)
    for value in envelopes(result.events, stream.max_message_bytes):
        await deps.sink.send(topic, key, value)
    if deps.metrics is not None:
        deps.metrics.events.inc(result.accepted)
    return json_response({"accepted": result.accepted, "errors": errors}, 202)
