"""What a replay must respect: the stream's watermark and the viewers' newer choices.

A replay is history sent again. Two things already on the topics decide what
it may do:

* **the watermark.** Each partition's windows close at ``max(event time) -
  grace`` (or at the end of the newest window after a ``close_windows`` or idle
  flush), and anything older is late and dropped. Synthetic time always starts
  at the same instant, so a second replay would be dropped whole. Unless told
  to keep its times, a replay is shifted so its first event lands at
  :func:`replay_start_ms`: the end of the window holding the newest event
  already on ``playback.raw``, which no partition's watermark passes.
* **viewers' choices.** A replay dates each viewer's consent a minute before
  their first replayed event. It must never overwrite a newer choice (a
  withdrawal through the gateway, a CLI change) nor grant consent again to a
  viewer who was erased: :func:`consent_decision` refuses both, and the replay
  reports how many it refused and why.

The pure rules are here; :func:`read_replay_state` reads what they need from
Kafka (the tail of each ``playback.raw`` partition, the whole ``consent`` and
``erasure`` topics), through clients passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.sources import Rating
from pipeline.stream.effects import StreamConfig
from pipeline.windows.spec import WindowSpec
from pipeline.wire.decode import decode_consent, decode_raw

__all__ = [
    "ConsentDecision",
    "ReplayState",
    "consent_decision",
    "newest_event_time",
    "read_replay_state",
    "replay_start_ms",
    "shift_ratings",
]

ConsentDecision = Literal["send", "unchanged", "newer_consent", "erased"]
"""What happens to one replayed consent record (``send``: it goes out)."""

TAIL_RECORDS = 500
"""How many of each ``playback.raw`` partition's newest records are read for its newest event time."""


@dataclass
class ReplayState:
    """What the topics already hold, by canonical user key (the record key).

    ``consent``: the time of each key's latest consent record (its
    ``updated_at``; for a tombstone, ``None``). ``erased``: the time of each
    key's latest erasure request (the record timestamp, ms).
    """

    newest_event_ms: int | None = None
    consent: dict[bytes, int | None] = field(default_factory=dict)
    erased: dict[bytes, int] = field(default_factory=dict)


def replay_start_ms(newest_event_ms: int | None, spec: WindowSpec) -> int | None:
    """The first event time a replay can use without any of its events being late.

    The end of the window holding the newest event seen: no watermark goes past it,
    flushed or not. ``None`` when nothing was ever sent (the replay keeps its times).
    """
    if newest_event_ms is None:
        return None
    return spec.window_end(newest_event_ms)


def shift_ratings(
    ratings: Sequence[Rating], start_ms: int | None, step_s: int = 1
) -> tuple[list[Rating], int]:
    """Ratings moved forward by a whole number of ``step_s`` so the first is at or after ``start_ms``.

    Returns the ratings and the shift in seconds (0: unchanged; never backwards).
    Relative times, order and gaps are kept; with ``step_s`` the window size,
    every event keeps its place within its window, so the replay makes the same
    windows as the source would.
    """
    if start_ms is None or not ratings:
        return list(ratings), 0
    step_s = max(1, step_s)
    first_ms = min(r.timestamp_s for r in ratings) * 1000
    shift_s = max(0, math.ceil((start_ms - first_ms) / (1000 * step_s))) * step_s
    if shift_s == 0:
        return list(ratings), 0
    return [r._replace(timestamp_s=r.timestamp_s + shift_s) for r in ratings], shift_s


def consent_decision(key: bytes, dated_ms: int, state: ReplayState) -> ConsentDecision:
    """Whether a replayed consent record for ``key`` dated ``dated_ms`` may be sent.

    * ``erased``: the viewer asked for erasure and made no choice since (a tombstone
      on ``consent`` counts as no choice): a replay never brings them back;
    * ``newer_consent``: their latest record is newer than the replayed one;
    * ``unchanged``: the same time as the replayed one (this replay, sent before);
    * otherwise ``send``.
    """
    has_record = key in state.consent
    current = state.consent.get(key)
    erased_at = state.erased.get(key)
    if erased_at is not None and (current is None or current < erased_at):
        return "erased"
    if has_record and current is None:  # tombstoned without an erasure request we can see
        return "erased"
    if current is not None and current > dated_ms:
        return "newer_consent"
    if current is not None and current == dated_ms:
        return "unchanged"
    return "send"


def newest_event_time(values: Iterable[bytes | None], config: StreamConfig, now_ms: int) -> int | None:
    """The newest ``event_time`` among ``playback.raw`` values the stream accepts.

    Decoded exactly as the workers decode them (size, content id, future
    tolerance at ``now_ms``): what they dead-lettered never moved a watermark,
    so a hostile event dated in 2200 cannot push every later replay there.
    Markers and bad values are skipped.
    """
    newest: int | None = None
    for value in values:
        if not value:
            continue
        decoded = decode_raw(
            value,
            max_bytes=config.max_message_bytes,
            now_ms=now_ms,
            future_tolerance_ms=config.future_tolerance_ms,
            content_id_pattern=config.content_id_pattern,
        )
        for event in decoded.events:
            t = event.event_time_ms
            newest = t if newest is None or t > newest else newest
    return newest


def read_replay_state(
    consumer: Any,
    *,
    raw_topic: str,
    consent_topic: str,
    erasure_topic: str,
    partitions: int,
    end_offsets: Any,
    config: StreamConfig,
    now_ms: int,
    tail_records: int = TAIL_RECORDS,
    timeout_s: float = 60.0,
) -> ReplayState:
    """Read the newest event time and every consent and erasure key's latest time.

    ``consumer`` is a group-less kafka-python consumer (passed in, closed by the
    caller); ``config`` and ``now_ms`` decode ``playback.raw`` as the workers do
    (:func:`newest_event_time`); ``end_offsets(tps)`` returns the true log end per partition (e.g.
    :func:`pipeline.kafka.end_offsets.probe_end_offsets` over the consumer's).
    """
    import time

    from kafka import TopicPartition

    raw = [TopicPartition(raw_topic, p) for p in range(partitions)]
    whole = [TopicPartition(t, p) for t in (consent_topic, erasure_topic) for p in range(partitions)]
    ends: dict[Any, int] = dict(end_offsets(raw + whole))
    wanted = {tp: end for tp, end in ends.items() if end > 0}
    state = ReplayState()
    if not wanted:
        return state
    consumer.assign(list(wanted))
    for tp in wanted:
        consumer.seek(tp, max(0, wanted[tp] - tail_records) if tp.topic == raw_topic else 0)
    raw_values: list[bytes | None] = []
    deadline = time.monotonic() + timeout_s
    while any(consumer.position(tp) < end for tp, end in wanted.items()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading what the topics hold took over {timeout_s:.0f} s")
        for tp, records in consumer.poll(timeout_ms=200).items():
            for r in records:
                if r.offset >= wanted[tp]:
                    continue
                if tp.topic == raw_topic:
                    raw_values.append(r.value)
                elif r.key is None:
                    continue
                elif tp.topic == consent_topic:
                    _note_consent(state, r.key, r.value)
                else:
                    state.erased[r.key] = int(r.timestamp)
    state.newest_event_ms = newest_event_time(raw_values, config, now_ms)
    return state


def _note_consent(state: ReplayState, key: bytes, value: bytes | None) -> None:
    try:
        record = decode_consent(value)
    except Exception:  # an invalid record changed nothing; the workers dead-letter it
        return
    state.consent[key] = None if record is None else record.updated_at  # type: ignore[assignment]
