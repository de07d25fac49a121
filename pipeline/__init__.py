"""privrec core library: privacy functions, wire formats, windows, clients.

Nothing in here imports :mod:`agents`; the Faust app wires these pieces to topics.
"""

from pipeline.errors import (
    ConfigError,
    DeliveryError,
    EmbeddedServiceError,
    PrivrecError,
    ServiceUnavailable,
    ValidationFailed,
)

__all__ = [
    "ConfigError",
    "DeliveryError",
    "EmbeddedServiceError",
    "PrivrecError",
    "ServiceUnavailable",
    "ValidationFailed",
]
