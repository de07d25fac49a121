"""Pure privacy functions: pseudonyms, consent decisions, redaction, scrubbing.

Everything here is a pure function over plain records or a small value
object, testable without Kafka or Redis; the agents wire these to topics.
"""

from pipeline.privacy.consent import (
    Decision,
    Purpose,
    Purposes,
    apply_update,
    decide,
)
from pipeline.privacy.consent_history import (
    Change,
    ConsentHistory,
    decide_at,
    decode_history,
    encode_history,
    granted_during,
    purposes_at,
    record_change,
)
from pipeline.privacy.identity import canonical_user_id, user_key
from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey, generate_key, parse_keys
from pipeline.privacy.redact import ALLOWED_FIELDS, REDACTED_SCHEMA, redact_event, removed_field_count
from pipeline.privacy.scrub import find_pii, scrub

__all__ = [
    "ALLOWED_FIELDS",
    "REDACTED_SCHEMA",
    "Change",
    "ConsentHistory",
    "Decision",
    "PseudonymKey",
    "Pseudonymizer",
    "Purpose",
    "Purposes",
    "apply_update",
    "canonical_user_id",
    "decide",
    "decide_at",
    "decode_history",
    "encode_history",
    "find_pii",
    "generate_key",
    "granted_during",
    "parse_keys",
    "purposes_at",
    "record_change",
    "redact_event",
    "removed_field_count",
    "scrub",
    "user_key",
]
