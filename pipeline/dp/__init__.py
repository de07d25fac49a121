"""Differentially private trending: bounded counts, OpenDP release, budget ledger.

Pure parts (:mod:`~pipeline.dp.bounding`, :mod:`~pipeline.dp.release`,
:mod:`~pipeline.dp.ledger`) are re-exported here; the Kafka and Redis shells
are imported from their modules: :mod:`pipeline.dp.store` (the ledger topic),
:mod:`pipeline.dp.source` (``playback.redacted``), :mod:`pipeline.dp.trending`
(the served list) and :mod:`pipeline.dp.service` (one release, the continuous job).
"""

from pipeline.dp.bounding import Bounder, bounded_counts, day_of, keep_rank
from pipeline.dp.ledger import (
    BudgetExceeded,
    LedgerItem,
    LedgerRecord,
    check,
    latest_release,
    releases,
    spent_by_day,
)
from pipeline.dp.release import Plan, plan, release_counts, threshold_formula

__all__ = [
    "Bounder",
    "BudgetExceeded",
    "LedgerItem",
    "LedgerRecord",
    "Plan",
    "bounded_counts",
    "check",
    "day_of",
    "keep_rank",
    "latest_release",
    "plan",
    "release_counts",
    "releases",
    "spent_by_day",
    "threshold_formula",
]
