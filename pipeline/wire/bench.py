"""Measure :func:`decode_raw` on a 500-event envelope: ``python -m pipeline.wire.bench``.

Reports CPU time (``time.process_time``), best of several rounds, so a busy
machine skews the figure less than wall time would.
"""

from __future__ import annotations

import time

from pipeline.wire.decode import decode_raw
from pipeline.wire.examples import NOW_MS, batch_bytes

__all__ = ["measure"]


def measure(value: bytes, n_events: int, rounds: int = 7, loops: int = 100) -> float:
    """Return the best CPU microseconds per event over ``rounds`` x ``loops`` decodes."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(loops):
            decode_raw(value, max_bytes=1 << 20, now_ms=NOW_MS, future_tolerance_ms=60_000)
        best = min(best, (time.process_time() - start) / loops)
    return best * 1e6 / n_events


def main() -> None:
    """Print µs/event for the fast path (epoch ms, RFC 3339) and the slow path."""
    cases = {
        "fast path, epoch ms": batch_bytes(500),
        "fast path, RFC 3339": batch_bytes(500, event_time="2024-05-01T13:50:00.5+02:00"),
        "slow path, 1 of 500 bad": batch_bytes(500).replace(b'"position_ms":2500000', b'"position_ms":-1'),
    }
    for label, value in cases.items():
        cost = measure(value, 500)
        print(f"{label:26s} {cost:6.2f} us per record ({len(value)} bytes)")


if __name__ == "__main__":
    main()
