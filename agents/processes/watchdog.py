"""A bounded stop: once asked to stop, a process exits within a deadline, clean or not.

Faust's graceful stop waits for its consumer thread, and aiokafka's consumer
retries its fetches without end while the broker is away, so SIGTERM and SIGINT
used to hang a worker in ``AIOKafkaConsumerThread: Stopping...`` until
SIGKILL. The watchdog lets the graceful stop run (it flushes and commits what
it can) and ends the process when that takes longer than the deadline.
Nothing is lost by that: offsets not committed are read again after the
restart, and the stream's per-user offsets make that replay idempotent.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

__all__ = ["FORCED_EXIT_CODE", "STOP_DEADLINE_S", "arm_stop_watchdog"]

log = logging.getLogger(__name__)

STOP_DEADLINE_S = 7.0
"""Under the 10 s an operator (or a supervisor's stop timeout) may wait before SIGKILL."""
FORCED_EXIT_CODE = 1

_armed = threading.Lock()


def arm_stop_watchdog(what: str, deadline_s: float = STOP_DEADLINE_S) -> bool:
    """Exit the process ``deadline_s`` from now unless it has exited by then; False if already armed."""
    if not _armed.acquire(blocking=False):
        return False

    def force() -> None:
        log.error("%s: stop did not finish within %g s (broker unreachable?); exiting", what, deadline_s)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(FORCED_EXIT_CODE)

    timer = threading.Timer(deadline_s, force)
    timer.daemon = True
    timer.start()
    return True
