"""Recommendations: interactions → user×item matrix → implicit ALS → top-N with explanations.

The trainer's flow, all pure and Kafka-free::

    store = InteractionStore()
    store.add_many(interactions)          # a re-emitted window replaces its earlier copy
    train_part, heldout = store.temporal_split(settings.holdout_fraction)
    metrics = evaluate(train(train_part, settings), heldout)
    decision = quality_gate(metrics["ndcg_at_10"], live_ndcg, settings.gate_margin)
    model = train(store, settings)
    recs = model.recommend_all(settings.top_n, recent_days=serving.limited_recent_days)
"""

from pipeline.recs.als import TrainingError, train
from pipeline.recs.evaluate import Split, evaluate, ndcg_at_k, precision_at_k, temporal_split
from pipeline.recs.gate import GateDecision, quality_gate
from pipeline.recs.matrix import InteractionStore
from pipeline.recs.model import Model
from pipeline.recs.pairs import Pairs
from pipeline.recs.types import PopularItem, Recommendation, UserRecs

__all__ = [
    "GateDecision",
    "InteractionStore",
    "Model",
    "Pairs",
    "PopularItem",
    "Recommendation",
    "Split",
    "TrainingError",
    "UserRecs",
    "evaluate",
    "ndcg_at_k",
    "precision_at_k",
    "quality_gate",
    "temporal_split",
    "train",
]
