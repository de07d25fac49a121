"""The one exception tree of privrec.

Every error privrec raises on purpose derives from :class:`PrivrecError`.
A dropped or dead-lettered event is *not* an exception: it is an outcome with
a reason (see :mod:`pipeline.wire`). Exceptions are for callers who can act.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigError",
    "DeliveryError",
    "EmbeddedServiceError",
    "PrivrecError",
    "RequestRefused",
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


class AuthError(PrivrecError):
    """A request's bearer token was refused; ``reason`` says why (never the token).

    Reasons: ``missing``, ``malformed``, ``expired``, ``bad_signature``,
    ``wrong_issuer``, ``wrong_audience`` (HTTP 401) and ``insufficient_scope`` (403).
    """

    REASONS = frozenset(
        {
            "missing",
            "malformed",
            "expired",
            "bad_signature",
            "wrong_issuer",
            "wrong_audience",
            "insufficient_scope",
        }
    )

    def __init__(self, reason: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown auth reason {reason!r}")
        self.reason = reason
        super().__init__(reason)

    @property
    def status(self) -> int:
        """The HTTP status: 403 when the token is valid but lacks the scope, else 401."""
        return 403 if self.reason == "insufficient_scope" else 401


class RequestRefused(PrivrecError):
    """An HTTP request the gateway refuses: ``status`` and a value-free ``reason``."""

    def __init__(self, status: int, reason: str, retry_after: int | None = None) -> None:
        self.status = status
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(f"{status} {reason}")


class ReplayInterrupted(PrivrecError):
    """A replay stopped by the user (SIGINT): ``report`` says what was sent before it stopped."""

    def __init__(self, report: object) -> None:
        super().__init__("replay interrupted")
        self.report = report
