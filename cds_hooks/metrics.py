"""Prometheus metrics at GET /metrics: requests, latency, cards, FHIR fetches, knowledge reloads
and the card audit queue. No label ever holds patient data or a caller-chosen string.

Under gunicorn the workers share their counts through files in PROMETHEUS_MULTIPROC_DIR (set by
cds_hooks/gunicorn_conf.py). prometheus_client picks per-process or shared storage when it is
first imported, so it is imported only when a process first counts: in a gunicorn worker, after
the configuration has set that folder."""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, request

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class _Instruments:
    requests: Any
    latency: Any
    cards: Any
    fetches: Any
    reload_ok: Any
    loaded_at: Any
    audit_pending: Any
    audit_dropped: Any


@functools.cache
def _instruments() -> _Instruments:
    from prometheus_client import Counter, Gauge, Histogram  # see the module docstring

    return _Instruments(
        requests=Counter(
            "labelwise_requests", "HTTP requests by service and status", ["service", "status"]
        ),
        latency=Histogram(
            "labelwise_request_seconds", "request duration", ["service"], buckets=LATENCY_BUCKETS
        ),
        cards=Counter("labelwise_cards", "cards returned", ["rule", "indicator"]),
        fetches=Counter("labelwise_fhir_fetches", "FHIR fetches by outcome", ["outcome"]),
        reload_ok=Gauge(
            "labelwise_knowledge_reload_ok",
            "1 when the last knowledge load succeeded, 0 when it was rejected",
            multiprocess_mode="livemin",
        ),
        loaded_at=Gauge(
            "labelwise_knowledge_loaded_timestamp_seconds",
            "when the knowledge in service was loaded (oldest across workers)",
            multiprocess_mode="livemin",
        ),
        audit_pending=Gauge(
            "labelwise_card_audit_pending",
            "card audit records waiting to be written",
            multiprocess_mode="livesum",
        ),
        audit_dropped=Gauge(
            "labelwise_card_audit_dropped",
            "card audit records dropped since the worker started",
            multiprocess_mode="livesum",
        ),
    )


def register(app: Flask) -> None:
    """Count every request; serve GET /metrics when the METRICS setting is on."""
    app.before_request(_start_timer)
    app.after_request(_count_request)
    if app.config["METRICS"]:
        app.add_url_rule("/metrics", "metrics", _exposition, methods=["GET"])


def fetch_outcome(outcome: str) -> None:
    """Count one FHIR fetch by its outcome (a fixed word such as ok, timeout, error)."""
    _instruments().fetches.labels(outcome).inc()


def knowledge_state(ok: bool, loaded_at: float) -> None:
    """Record the outcome of the last knowledge load and when the serving knowledge was loaded."""
    _instruments().reload_ok.set(1 if ok else 0)
    _instruments().loaded_at.set(loaded_at)


def hook_answered(cards: list[dict[str, Any]], store: Any) -> None:
    """Count the cards of one hook answer by rule and indicator; refresh the audit gauges."""
    for card in cards:
        rule = card.get("extension", {}).get("org.labelwise.explanation", {}).get("ruleId", "?")
        _instruments().cards.labels(rule, card.get("indicator", "?")).inc()
    _audit_state(store)


def _audit_state(store: Any) -> None:
    """The store's audit queue, when it reports one (`audit_pending`, `audit_dropped`)."""
    for name in ("audit_pending", "audit_dropped"):
        value = getattr(store, name, None)
        value = value() if callable(value) else value
        if isinstance(value, int):
            getattr(_instruments(), name).set(value)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    service = _service_label()
    _instruments().requests.labels(service, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        _instruments().latency.labels(service).observe(time.perf_counter() - started)
    return response


def _service_label() -> str:
    """The CDS service id for a known service, else the endpoint's name: bounded label values."""
    service_id = (request.view_args or {}).get("service_id")
    if service_id is not None:
        known = current_app.extensions["labelwise.kb"].kb.services
        return service_id if service_id in known else "unknown-service"
    return request.endpoint.rsplit(".", 1)[-1] if request.endpoint else "no-route"


def _exposition() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    _audit_state(current_app.extensions["labelwise.store"])
    registry = REGISTRY
    if os.environ.get(MULTIPROC_DIR):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
