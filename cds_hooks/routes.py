"""The one blueprint: discovery and the service endpoints. Views stay a few lines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Blueprint, abort, current_app, request

from engine import KnowledgeBase
from fhir_adapter import FetchSettings, RequestError

from .assess import assess
from .auth import Unauthorized
from .feedback import feedback_items
from .store import Store

bp = Blueprint("cds_hooks", __name__)


@bp.before_request
def authenticate():
    """When trusted issuers are configured, every CDS Hooks call needs a valid client JWT."""
    verifier = current_app.extensions.get("labelwise.jwt")
    if (
        verifier is None
        or request.method == "OPTIONS"
        or not request.path.startswith("/cds-services")
    ):
        return None
    base = current_app.config["JWT_AUDIENCE_BASE"]
    audience = base.rstrip("/") + request.path if base else request.base_url
    try:
        verifier.verify(request.headers.get("Authorization"), audience)
    except Unauthorized as error:
        current_app.logger.info("client JWT rejected: %s", error)
        abort(401, "unauthorized")
    return None


def knowledge() -> KnowledgeBase:
    return current_app.extensions["labelwise.kb"].kb


@bp.get("/healthz")
def health():
    holder = current_app.extensions["labelwise.kb"]
    return {
        "status": "ok" if holder.last_error is None else "degraded",
        "knowledgeVersion": holder.kb.version,
        "loadedAt": datetime.fromtimestamp(holder.loaded_at, UTC).isoformat(),
        "lastReloadError": holder.last_error or "none",
    }


@bp.get("/cds-services")
def discovery():
    return {"services": [_describe(s) for s in knowledge().services.values()]}


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str):
    kb = knowledge()
    if service_id not in kb.services:
        abort(404, f"no CDS service with id '{service_id}'")
    cards = assess(kb, service_id, json_body(), evaluation_date(), fetch_settings()).cards()
    _audit(service_id, cards, kb.version)
    return {"cards": cards}


@bp.post("/cds-services/<service_id>/feedback")
def receive_feedback(service_id: str):
    """Stored only for cards this service issued; 503 (StoreUnavailable) writes nothing."""
    if service_id not in knowledge().services:
        abort(404, f"no CDS service with id '{service_id}'")
    items = feedback_items(json_body())
    unknown = set(store().unissued(service_id, [item.card for item in items]))
    for i, item in enumerate(items):
        if item.card in unknown:
            abort(404, f"feedback[{i}].card: '{service_id}' issued no card '{item.card}'")
    store().record_feedback(service_id, items)
    return {"stored": len(items)}


@bp.get("/analytics/override-rates")
def override_rates():
    return {"rules": store().override_rates()}


def store() -> Store:
    return current_app.extensions["labelwise.store"]


def _audit(service_id: str, cards: list[dict], version: str) -> None:
    """Queue the cards returned for the audit trail; it never holds up or withholds cards."""
    store().record_cards(service_id, cards, version)


def fetch_settings() -> FetchSettings:
    config = current_app.config
    return FetchSettings(
        float(config["FHIR_TIMEOUT"]), float(config["FHIR_BUDGET"]), int(config["FHIR_MAX_PAGES"])
    )


def json_body() -> Any:
    try:
        return orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError as error:
        if "depth limit" in str(error):
            raise RequestError("request body is nested too deeply") from error
        raise RequestError(f"request body is not valid JSON: {error}") from error


def evaluation_date():
    pinned = current_app.config.get("NOW")
    return datetime.fromisoformat(pinned).date() if pinned else datetime.now(UTC).date()


def _describe(service) -> dict[str, Any]:
    described = {
        "id": service.id,
        "hook": service.hook,
        "title": service.title,
        "description": service.description,
        "prefetch": service.prefetch,
    }
    if service.usage_requirements:
        described["usageRequirements"] = service.usage_requirements
    return described
