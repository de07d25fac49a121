"""Replay sources: ratings datasets and a synthetic audience, turned into playback events.

The flow a replayer follows::

    ratings = read_ratings(dataset_path("movielens-100k"), "movielens")
    sessions = ratings_to_sessions(ratings, seed=7)
    for user_id, events in batch_sessions(sessions):
        send({"schema": BATCH_SCHEMA, "events": events}, key=user_id)

Everything here is pure and deterministic for a seed; nothing talks to Kafka.
"""

from pipeline.sources.consent import (
    CONSENT_SCHEMA,
    DEFAULT_MIX,
    consent_mix,
    consent_record,
    parse_mix,
)
from pipeline.sources.ordering import BATCH_SCHEMA, MAX_BATCH_EVENTS, batch_sessions, order_by_time
from pipeline.sources.ratings import FORMATS, Rating, dataset_path, dataset_root, read_ratings, read_titles
from pipeline.sources.sessions import (
    EVENT_TYPES,
    HEARTBEAT_MS,
    PLAYBACK_SCHEMA,
    WATCH_BUDGET_MS,
    expected_events_per_session,
    ratings_to_sessions,
    title_duration_ms,
)
from pipeline.sources.synthetic import SyntheticWorld, synthetic_ratings, synthetic_titles, synthetic_world

__all__ = [
    "BATCH_SCHEMA",
    "CONSENT_SCHEMA",
    "DEFAULT_MIX",
    "EVENT_TYPES",
    "FORMATS",
    "HEARTBEAT_MS",
    "MAX_BATCH_EVENTS",
    "PLAYBACK_SCHEMA",
    "WATCH_BUDGET_MS",
    "Rating",
    "SyntheticWorld",
    "batch_sessions",
    "consent_mix",
    "consent_record",
    "dataset_path",
    "dataset_root",
    "expected_events_per_session",
    "order_by_time",
    "parse_mix",
    "ratings_to_sessions",
    "read_ratings",
    "read_titles",
    "synthetic_ratings",
    "synthetic_titles",
    "synthetic_world",
    "title_duration_ms",
]
