"""The bounded stop: a process asked to stop exits by the deadline even when its stop hangs."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from pipeline.embedded.outage import start_service, stop_service
from pipeline.errors import EmbeddedServiceError

HANGS = """
import logging, threading
from agents.processes.watchdog import arm_stop_watchdog
logging.basicConfig(level=logging.INFO)
assert arm_stop_watchdog("worker", 0.5)
assert not arm_stop_watchdog("worker", 0.5)  # once per process
threading.Event().wait()  # a stop that never finishes
"""


def test_a_hanging_stop_ends_at_the_deadline_with_one_line():
    t = time.monotonic()
    done = subprocess.run([sys.executable, "-c", HANGS], capture_output=True, text=True, timeout=30)
    took = time.monotonic() - t
    assert done.returncode == 1
    assert "worker: stop did not finish within 0.5 s (broker unreachable?); exiting" in done.stderr
    assert "Traceback" not in done.stderr
    assert took < 10


def test_outage_helpers_refuse_what_they_cannot_do(tmp_path):
    with pytest.raises(EmbeddedServiceError, match="not running"):
        stop_service(tmp_path, "kafka")
    with pytest.raises(EmbeddedServiceError, match="unknown embedded service"):
        stop_service(tmp_path, "zookeeper")
    with pytest.raises(EmbeddedServiceError, match="unknown embedded service"):
        start_service(tmp_path, "zookeeper")
