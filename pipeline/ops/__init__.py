"""Operations: consumer lag with a Burrow-style status, and Prometheus metrics.

:mod:`~pipeline.ops.lag` evaluates samples without Kafka;
:mod:`~pipeline.ops.collect` reads them from Kafka with clients passed in;
:mod:`~pipeline.ops.metrics` defines the metrics on a registry the caller owns;
:mod:`~pipeline.ops.exporter` keeps them fresh from background threads and
:mod:`~pipeline.ops.summary` reads what ``privrec status`` shows (both import
the serving layer, so they are not re-exported here).
"""

from pipeline.ops.collect import GroupInfo, LagCollector, Member, pipeline_groups
from pipeline.ops.lag import GroupLag, LagWindow, PartitionLag, PartitionSample, Status
from pipeline.ops.metrics import (
    PipelineMetrics,
    serve_metrics,
    update_from_lag,
    update_from_trainer_counters,
    update_from_worker_counters,
    update_model,
)

__all__ = [
    "GroupInfo",
    "GroupLag",
    "LagCollector",
    "LagWindow",
    "Member",
    "PartitionLag",
    "PartitionSample",
    "PipelineMetrics",
    "Status",
    "pipeline_groups",
    "serve_metrics",
    "update_from_lag",
    "update_from_trainer_counters",
    "update_from_worker_counters",
    "update_model",
]
