"""Recommendations: interactions → user×item matrix → implicit ALS → top-N with explanations."""

from pipeline.recs.types import PopularItem, Recommendation, UserRecs

__all__ = ["PopularItem", "Recommendation", "UserRecs"]
