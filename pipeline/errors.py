"""The one exception tree of privrec.

Every error privrec raises on purpose derives from :class:`PrivrecError`.
A dropped or dead-lettered event is *not* an exception: it is an outcome with
a reason (see :mod:`pipeline.wire`). Exceptions are for callers who can act.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "EmbeddedServiceError",
    "PrivrecError",
    "ServiceUnavailable",
    "ValidationFailed",
]


class PrivrecError(Exception):
    """Root of every error privrec raises on purpose."""

    retryable: bool = False


class ConfigError(PrivrecError):
    """A setting is missing or malformed; the message names the setting."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class ServiceUnavailable(PrivrecError):
    """Kafka or Redis did not answer (retryable: the service may come back)."""

    retryable = True


class EmbeddedServiceError(PrivrecError):
    """An embedded broker or Redis process could not be started or stopped."""


class ValidationFailed(PrivrecError):
    """A record does not match its schema (raised by the emitter before sending)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class DeliveryError(PrivrecError):
    """The broker did not acknowledge records the emitter sent (retryable)."""

    retryable = True
