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
        self.sealed_values_unreadable = Counter(
            "shokai_sealed_values_unreadable",
            "Requests that met a sealed value failing its integrity check (a row altered or moved)",
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
        # Reconciliation with the center (RC-1): runs, and alerts by severity and stable code.
        self.reconciliation_runs = Counter(
            "shokai_reconciliation_runs",
            "Center reconciliation runs by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.reconciliation_alerts = Counter(
            "shokai_reconciliation_alerts",
            "Alerts raised by center reconciliation runs, by severity and code",
            ["severity", "code"],
            registry=self.registry,
        )
        self.reconciliation_bypassed_entries = Counter(
            "shokai_reconciliation_bypassed_entries",
            "Center inquiry-record entries with no gateway record (inquiries that bypassed the gateway)",
            registry=self.registry,
        )

        # LG-4 operating status. The gauges are read from the database at each scrape (refresh_gauges in
        # app/monitoring/gauges.py), so every worker reports the same figures.
        self.center_latency = Histogram(
            "shokai_center_call_seconds",
            "Latency of center calls by kind",
            ["kind"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=self.registry,
        )
        self.center_errors = Counter(
            "shokai_center_errors",
            "Center refusals and failures by code",
            ["kind", "code"],
            registry=self.registry,
        )
        self.inquiries_by_state = Gauge(
            "shokai_inquiries", "Inquiries by state", ["state"], registry=self.registry
        )
        self.approvals = Gauge(
            "shokai_approvals", "Inquiries approved (methods A1/A2)", registry=self.registry
        )
        self.releases = Gauge("shokai_releases", "Responses released (method B)", registry=self.registry)
        self.overdue_lists = Gauge(
            "shokai_overdue_lists", "Daily lists past their deadline and unconfirmed", registry=self.registry
        )
        # ER-3: what waits for the center. An inquiry the center keeps failing to answer stays queued
        # (it is never given up on: the center may have recorded it); its age is what to alert on.
        self.outbox_pending = Gauge(
            "shokai_outbox_pending",
            "Center messages not yet delivered, by kind (inquire, cancel, correct)",
            ["kind"],
            registry=self.registry,
        )
        self.outbox_oldest_pending = Gauge(
            "shokai_outbox_oldest_pending_seconds",
            "Age of the oldest undelivered center message, by kind (0 when none waits)",
            ["kind"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
