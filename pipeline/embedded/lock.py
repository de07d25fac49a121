"""One ``up`` or ``down`` at a time per state dir: an exclusive ``flock`` on ``lifecycle.lock``.

Without it two simultaneous ``privrec up`` both saw nothing running and each
started a broker and a Redis; ``down`` then stopped one pair. The lock is the
kernel's (released when the holder exits, even by SIGKILL), so a crashed
``up`` never leaves the state dir locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import EmbeddedServiceError

__all__ = ["LOCK_FILE", "lifecycle_lock"]

LOCK_FILE = "lifecycle.lock"


@contextmanager
def lifecycle_lock(state_dir: Path, timeout_s: float = 120.0) -> Iterator[None]:
    """Hold the state dir's lifecycle lock; waits up to ``timeout_s`` for another holder."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise EmbeddedServiceError(
                        f"another `privrec up` or `down` holds {state_dir / LOCK_FILE} "
                        f"for more than {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
