"""Prometheus metrics every service exposes on its health port at `/metrics`.

Names follow Prometheus conventions (`_total` counters, `_seconds` histograms). Labels are bounded:
event types, command names, route templates, handler names; never a subject id or site data.
"""

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

EVENTS_APPENDED = Counter("trial_events_appended", "Facts appended to the trial's record", ["type"])
CONFLICTS_RETRIED = Counter(
    "trial_append_conflicts_retried", "Decisions taken again because another writer appended first"
)
# Per handler and with durations: FastStream's own `faststream_received_*` metrics, on the same registry.
COMMANDS = Counter(
    "trial_commands", "Commands answered: accepted, replayed (a retry), refused (a rule), unavailable", ["outcome"]
)
HTTP_REQUESTS = Counter("trial_http_requests", "Gateway requests, by route and status", ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "trial_http_request_duration_seconds",
    "Gateway request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CONSUMER_LAG = Gauge("trial_consumer_lag_events", "Events in the record a consumer has not processed yet", ["consumer"])
DEAD_LETTERS = Counter(
    "trial_dead_letters", "Messages a handler gave up on, sent to the dead-letter stream", ["handler"]
)
CONSUMER_DRIFT = Counter(
    "trial_consumer_drift",
    "Durable consumers found with another delivery than their owner made (filter, acknowledgement, deliveries)",
    ["consumer"],
)
SAE_ALERTS_RECONCILED = Counter(
    "trial_sae_alerts_reconciled", "SAE alerts the reaction missed, raised late by the safety service's reconciliation"
)
OPEN_SAE_ALERTS = Gauge("trial_open_sae_alerts", "SAE alerts raised and not yet acknowledged by the safety team")


def exposition() -> tuple[bytes, str]:
    """The text format a Prometheus scrape expects, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
