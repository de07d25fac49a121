"""Event-time tumbling windows over redacted playback events, without Kafka.

One :class:`PartitionWindows` per Kafka partition of ``playback.redacted``
folds events into hourly per-(user, title) aggregates and closes them by a
per-partition watermark; closed windows become ``interaction.v1`` records.
The agent persists :class:`PartitionMeta` and :class:`WindowState` values and
rebuilds the engine with :meth:`PartitionWindows.restore`. The test oracle
lives in :mod:`tests.support.windows_reference` and is not re-exported here.
"""

from pipeline.windows.engine import AddResult, PartitionWindows, WindowEvent
from pipeline.windows.spec import DEFAULT_GRACE_MS, DEFAULT_SIZE_MS, WindowKey, WindowSpec
from pipeline.windows.state import (
    STATE_VERSION,
    Interaction,
    PartitionMeta,
    WindowState,
    WindowStateError,
)

__all__ = [
    "DEFAULT_GRACE_MS",
    "DEFAULT_SIZE_MS",
    "STATE_VERSION",
    "AddResult",
    "Interaction",
    "PartitionMeta",
    "PartitionWindows",
    "WindowEvent",
    "WindowKey",
    "WindowSpec",
    "WindowState",
    "WindowStateError",
]
