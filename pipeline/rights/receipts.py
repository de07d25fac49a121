"""The ``receipt.v1`` of a finished erasure: stage times and what remains by design."""

from __future__ import annotations

from pipeline.kafka.topics import Topic
from pipeline.rights.ledger import Pending
from pipeline.wire.rights import STAGES, Receipt, Remains

__all__ = ["build_receipt", "remains"]

_LOG_TOPICS = (
    f"{Topic.RAW}, {Topic.REDACTED}, {Topic.INTERACTIONS}, the dead-letter topics {Topic.DLQ} and "
    f"{Topic.TRAINER_DLQ} (pseudonyms, never values) and {Topic.QUARANTINE} (raw values, only if enabled)"
)


def remains(model_until: int) -> list[Remains]:
    """What stays after an erasure, and until when.

    Args:
        model_until: epoch ms by which a full retrain without the user's data
            has replaced the live model (item factors and the popular list).
    """
    return [
        Remains(
            what="item factors of the live model and the popular list, computed with this user's past "
            "interactions among everyone's (no user factors, no per-user rows)",
            until=model_until,
        ),
        Remains(
            what=f"records in the Kafka topics {_LOG_TOPICS}, written before the erasure; "
            "never read into state again: the trainer refuses this user's interactions "
            "created up to the erasure",
            rule="each topic's retention (retention.ms), then deleted by the broker",
        ),
        Remains(
            what="older records of the window-state changelog (superseded by tombstones)",
            rule="log compaction of the changelog topic",
        ),
        Remains(
            what="this request (key: user id) in the erasure topic, its stage records and this receipt",
            rule="kept as long as the topics above, as proof of erasure and so that no rebuild "
            "re-admits the erased data",
        ),
    ]


def build_receipt(entry: Pending, completed_at: int, model_until: int) -> Receipt:
    """The receipt of a request whose every stage has confirmed."""
    missing = [s for s in STAGES if s not in entry.stages]
    if missing:
        raise ValueError(f"stages not confirmed yet: {', '.join(missing)}")
    return Receipt(
        request_id=entry.request_id,
        pseudonym=entry.pseudonym,
        requested_at=entry.requested_at,
        completed_at=completed_at,
        stages={s: entry.stages[s] for s in STAGES},
        remains=remains(model_until),
    )
