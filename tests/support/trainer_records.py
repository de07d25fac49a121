"""Input records of the trainer's core (``pipeline.trainer.Admission``), built without a broker."""

from __future__ import annotations

import json
from collections.abc import Mapping

from pipeline.privacy.pseudonym import Pseudonymizer
from pipeline.sources import consent_record
from pipeline.wire import encode
from pipeline.wire.outbound import Interaction
from pipeline.wire.rights import ErasureRequest, ErasureStage
from tests.support.records import Rec

__all__ = ["TrainerRecords"]

HOUR = 3_600_000
RID = "0123456789abcdef0123456789abcdef"


class TrainerRecords:
    """Builds the trainer's input records with increasing offsets per topic.

    ``topics`` maps the trainer's roles (consent, interactions, erasure, stages,
    receipts) to topic names; ``at`` is a record's time on its topic.
    """

    def __init__(self, topics: Mapping[str, str], pz: Pseudonymizer, request_id: str = RID) -> None:
        self.topics, self.pz, self.request_id = topics, pz, request_id
        self.offsets: dict[str, int] = {}

    def rec(self, kind: str, key: bytes | None, value: bytes | None, at: int, partition: int = 0) -> Rec:
        topic = self.topics[kind]
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return Rec(topic, partition, offset, at, key, value)

    def consent(self, user: str, purposes: dict[str, bool] | None, updated: int, at: int) -> Rec:
        value = None
        if purposes is not None:
            value = json.dumps(consent_record(user, purposes, updated_at_ms=updated)).encode()
        return self.rec("consent", user.encode(), value, at)

    def window(self, user: str, start: int, at: int, content: str = "c1") -> Rec:
        p = self.pz.pseudonym(user)
        row = Interaction(
            user=p,
            content_id=content,
            window_start=start,
            window_end=start + HOUR,
            watched_ms=60_000,
            plays=1,
            completed=False,
            events=2,
        )
        return self.rec("interactions", p.encode(), encode(row), at)

    def erasure(self, user: str, at: int) -> Rec:
        return self.rec(
            "erasure", user.encode(), encode(ErasureRequest(request_id=self.request_id, requested_at=at)), at
        )

    def stage(self, user: str, stage: str, finished: int, requested: int) -> Rec:
        record = ErasureStage(
            request_id=self.request_id,
            pseudonym=self.pz.pseudonym(user),
            stage=stage,  # type: ignore[arg-type]
            requested_at=requested,
            finished_at=finished,
        )
        return self.rec("stages", self.request_id.encode(), encode(record), finished)
