"""The one blueprint: discovery and the service endpoints. Views stay a few lines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Blueprint, abort, current_app, g, request

from engine import KnowledgeBase
from fhir_adapter import FetchSettings, RequestError

from . import metrics
from .assess import assess
from .auth import Unauthorized
from .errors import outcome
from .feedback import feedback_items
from .store import Store

bp = Blueprint("cds_hooks", __name__)


PROTECTED = ("/cds-services", "/analytics/")


@bp.before_request
def authenticate():
    """When trusted issuers are configured, every CDS Hooks and analytics call needs a valid
    client JWT whose `aud` is JWT_AUDIENCE_BASE + the path (never the Host header)."""
    verifier = current_app.extensions.get("labelwise.jwt")
    if verifier is None or request.method == "OPTIONS" or not request.path.startswith(PROTECTED):
        return None
    audience = current_app.config["JWT_AUDIENCE_BASE"] + request.path
    try:
        g.jwt_issuer = verifier.verify(request.headers.get("Authorization"), audience)["iss"]
    except Unauthorized as error:
        current_app.logger.info("client JWT rejected: %s", error)
        return (*outcome("unauthorized", 401), {"WWW-Authenticate": "Bearer"})
    return None


def knowledge() -> KnowledgeBase:
    return current_app.extensions["labelwise.kb"].kb


@bp.get("/healthz")
def health():
    """Status and knowledge version only: reload errors name files and go to the log."""
    holder = current_app.extensions["labelwise.kb"]
    status = "ok" if holder.last_error is None else "degraded"
    return {"status": status, "knowledgeVersion": holder.kb.version}


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
    metrics.hook_answered(cards, store())
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
    """Fetch bounds, and the servers this caller may have fetched from: its JWT issuer's
    `fhir_servers` when JWT is on, otherwise FHIR_SERVERS."""
    config = current_app.config
    if "labelwise.jwt" in current_app.extensions:
        servers = config["JWT_ISSUERS"][g.jwt_issuer]["fhir_servers"]
    else:
        servers = config["FHIR_SERVERS"]
    return FetchSettings(
        timeout=float(config["FHIR_TIMEOUT"]),
        budget=float(config["FHIR_BUDGET"]),
        max_pages=int(config["FHIR_MAX_PAGES"]),
        max_calls=int(config["FHIR_MAX_CALLS"]),
        max_bytes=int(config["FHIR_MAX_BYTES"]),
        servers=tuple(servers),
        count=metrics.fetch_outcome,
    )


def json_body() -> Any:
    try:
        return orjson.loads(_body())
    except orjson.JSONDecodeError as error:
        if "depth limit" in str(error):
            raise RequestError("request body is nested too deeply") from error
        raise RequestError(f"request body is not valid JSON: {error}") from error


def _body() -> bytes:
    """The request body, refused with 413 past MAX_CONTENT_LENGTH. werkzeug refuses a declared
    Content-Length over the limit but cuts a chunked body at it without a word, so a chunked body
    is read to one byte past the limit from the server's terminated stream."""
    if request.content_length is not None or "wsgi.input_terminated" not in request.environ:
        return request.get_data(cache=False)
    limit, stream = current_app.config["MAX_CONTENT_LENGTH"], request.environ["wsgi.input"]
    chunks, size = [], 0
    while size <= limit and (chunk := stream.read(min(1 << 16, limit + 1 - size))):
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        abort(413, f"request body is larger than {limit} bytes")
    return b"".join(chunks)


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
