"""The service's Prometheus metrics (`GET /metrics`): requests by route and status, their latency, the titles of
each forward pass and the titles waiting. Each application has its own registry: the library never touches
prometheus-client's process-wide default one."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Latency buckets, in seconds, from a single-title answer (about a millisecond) to an overloaded queue.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    def __init__(self, queued_titles: Callable[[], float], ready: Callable[[], float]):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "meli_requests",
            "HTTP requests answered, by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "meli_request_seconds",
            "Time from a request's arrival to its answer, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_titles = Histogram(
            "meli_batch_titles", "Titles per forward pass.", buckets=BATCH_BUCKETS, registry=self.registry
        )
        queue = Gauge("meli_queue_titles", "Titles admitted and waiting for a forward pass.", registry=self.registry)
        queue.set_function(queued_titles)
        readiness = Gauge(
            "meli_ready", "1 once the model is loaded and warm, 0 while loading or draining.", registry=self.registry
        )
        readiness.set_function(ready)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
