"""The gateway's Prometheus metrics, in its own registry (served at ``/metrics``).

Labels are route *templates* (``/v1/users/{id}/recommendations``), methods,
statuses and refusal reasons: never a user id, address or token.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, generate_latest

from pipeline.ops.metrics import process_registry

__all__ = ["GatewayMetrics"]

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class GatewayMetrics:
    """Requests by route and status, latency by route, refusals by reason, events accepted."""

    def __init__(self) -> None:
        self.registry = process_registry(auto_describe=True)
        self.requests = Counter(
            "privrec_gateway_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "privrec_gateway_request_seconds",
            "Time to answer, by route template",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.rejections = Counter(
            "privrec_gateway_rejections",
            "Requests or events refused, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.events = Counter(
            "privrec_gateway_events_accepted",
            "playback.v1 events accepted and acknowledged by Kafka",
            registry=self.registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejections.labels(reason).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
