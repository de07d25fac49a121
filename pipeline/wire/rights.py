"""Records of the viewer-rights flow: erasure requests, stage confirmations, receipts.

An erasure (GDPR Art. 17) travels as:

1. ``erasure.v1`` on ``erasure`` (key: raw user id, so it lands on the same
   partition as the user's events and consent) — written by ``privrec erase``;
2. ``erasure.stage.v1`` on ``erasure.stages`` (key: request id), one per stage
   that has finished its part: ``stream`` (the worker holding the user's
   partition), ``trainer`` (matrix row, factors, saved models) and ``cache``
   (Redis entries of every version, controls);
3. ``receipt.v1`` on ``receipts`` (key: pseudonym) once every stage has
   confirmed: when each finished and what remains by design, and until when.

Receipts and stage records carry the pseudonym, never the raw id.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from pipeline.wire.fields import EpochMs

__all__ = [
    "ERASURE",
    "ERASURE_STAGE",
    "RECEIPT",
    "STAGES",
    "ErasureRequest",
    "ErasureStage",
    "Receipt",
    "Remains",
    "Stage",
]

ERASURE = "erasure.v1"
ERASURE_STAGE = "erasure.stage.v1"
RECEIPT = "receipt.v1"

Stage = Literal["stream", "trainer", "cache"]
STAGES: tuple[str, ...] = ("stream", "trainer", "cache")
"""Every stage that must confirm before a receipt is issued."""

RequestId = Annotated[str, Meta(pattern="^[0-9a-f]{32}$", description="uuid4 hex of the request.")]
Pseudonym = Annotated[str, Meta(min_length=1, max_length=128, description="Keyed pseudonym, never a raw id.")]


class ErasureRequest(Struct, tag_field="schema", tag=ERASURE, frozen=True, kw_only=True):
    """A viewer's request to erase what privrec holds about them (key: raw user id)."""

    request_id: RequestId
    requested_at: EpochMs


class ErasureStage(Struct, tag_field="schema", tag=ERASURE_STAGE, frozen=True, kw_only=True):
    """One stage of an erasure has finished (key: request id)."""

    request_id: RequestId
    pseudonym: Pseudonym
    stage: Stage
    requested_at: EpochMs
    finished_at: EpochMs
    detail: Annotated[
        dict[str, int], Meta(description="What the stage removed, as counts (never identifiers).")
    ] = {}


class Remains(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Something derived from the user's data that stays, by design, after the erasure."""

    what: str
    until: Annotated[EpochMs | None, Meta(description="When it is gone; null: see `rule`.")] = None
    rule: Annotated[str, Meta(description="What decides when it is gone, when no time is known.")] = ""


class Receipt(Struct, tag_field="schema", tag=RECEIPT, frozen=True, kw_only=True):
    """Proof that every stage of an erasure finished (key: pseudonym)."""

    request_id: RequestId
    pseudonym: Pseudonym
    requested_at: EpochMs
    completed_at: EpochMs
    stages: Annotated[dict[str, int], Meta(description="Stage name -> epoch ms it finished.")]
    remains: list[Remains]
