"""Prometheus metrics for one app instance (its own registry: no module-level state).

Labels never carry personal data: routes are path templates, outcomes are fixed words.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "shokai_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "shokai_http_request_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.logins = Counter(
            "shokai_logins", "Login attempts by outcome", ["outcome"], registry=self.registry
        )
        self.denied_requests = Counter(
            "shokai_denied_requests",
            "Requests refused with 401/403 by code",
            ["code"],
            registry=self.registry,
        )
        self.ledger_head_seq = Gauge(
            "shokai_audit_ledger_head_seq", "Sequence number of the ledger head", registry=self.registry
        )
        self.checkpoint_age = Gauge(
            "shokai_audit_checkpoint_age_seconds",
            "Age of the newest signed checkpoint",
            registry=self.registry,
        )

        self.center_calls = Counter(
            "shokai_center_calls",
            "Center deliveries by kind and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
