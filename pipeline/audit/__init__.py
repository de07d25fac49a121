"""The ethics audit: what the recommender does to viewers and to the catalogue, as figures.

Pure functions over plain mappings (no Kafka, no Redis): :mod:`.exposure`
(coverage, Gini, ARP, lift, novelty, personalisation), :mod:`.groups`
(activity and popularity tiers), :mod:`.data` (consent, drops, dead letters,
erasure times), :mod:`.budget` (the DP ledger's view), :mod:`.attention`
(thresholds), :mod:`.report` (one ``audit.v1`` document) and :mod:`.html`
(the self-contained page). ``agents/audit.py`` reads the live stores.
"""

from pipeline.audit.attention import attention
from pipeline.audit.budget import BudgetSource, BudgetView, no_ledger
from pipeline.audit.html import render_html
from pipeline.audit.report import AUDIT_SCHEMA, assemble, recommender_figures

__all__ = [
    "AUDIT_SCHEMA",
    "BudgetSource",
    "BudgetView",
    "assemble",
    "attention",
    "no_ledger",
    "recommender_figures",
    "render_html",
]
