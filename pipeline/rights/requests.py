"""Writing a viewer's erasure request: shared by ``privrec erase``, the gateway and the benches."""

from __future__ import annotations

import time
import uuid
from typing import Any

from pipeline.kafka.offsets import send_acked
from pipeline.kafka.topics import Topic
from pipeline.privacy.identity import user_key
from pipeline.settings import Settings
from pipeline.wire import encode
from pipeline.wire.rights import ErasureRequest

__all__ = ["send_erasure"]


def send_erasure(producer: Any, settings: Settings, user_id: str) -> tuple[str, int]:
    """Write one ``erasure.v1`` request (acknowledged); returns ``(request_id, requested_at)``.

    Keyed by the canonical user id: the request lands on the partition of the
    viewer's events and consent, so the worker holding their state sees it.

    Raises:
        ValidationFailed: ``invalid_user_id`` for a blank id.
    """
    key = user_key(user_id, casefold=settings.pseudonym.casefold_user_ids)
    request = ErasureRequest(request_id=uuid.uuid4().hex, requested_at=int(time.time() * 1000))
    send_acked(producer, settings.topic(Topic.ERASURE), [(key, encode(request))])
    return request.request_id, request.requested_at
