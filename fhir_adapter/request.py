"""The CDS Hooks request: shape checks that name the problem, and prefetch values by state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ORDER_HOOKS = ("order-select", "order-sign")


class RequestError(ValueError):
    """A request the service cannot evaluate; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class Prefetched:
    """One prefetch key: `state` is ok, null (known to be empty), absent or failed."""

    state: str
    resources: tuple[dict[str, Any], ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: dict[str, Any]
    prefetch: dict[str, Prefetched]
    fhir_server: str | None
    fhir_authorization: dict[str, Any] | None


def parse_request(body: Any, hook: str, prefetch_keys: tuple[str, ...]) -> HookRequest:
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    for field in ("hook", "hookInstance"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise RequestError(f"'{field}' is required and must be a non-empty string")
    if body["hook"] != hook:
        raise RequestError(f"this service answers the '{hook}' hook, not '{body['hook']}'")
    context = body.get("context")
    if not isinstance(context, dict):
        raise RequestError("'context' is required and must be a JSON object")
    _check_context(context, hook)
    raw_prefetch = body.get("prefetch") or {}
    if not isinstance(raw_prefetch, dict):
        raise RequestError("'prefetch' must be a JSON object")
    auth = body.get("fhirAuthorization")
    if auth is not None and not isinstance(auth, dict):
        raise RequestError("'fhirAuthorization' must be a JSON object")
    server = body.get("fhirServer")
    if server is not None and not isinstance(server, str):
        raise RequestError("'fhirServer' must be a URL string")
    return HookRequest(
        hook=hook,
        hook_instance=body["hookInstance"],
        context=context,
        prefetch={k: prefetched(raw_prefetch, k) for k in prefetch_keys},
        fhir_server=server,
        fhir_authorization=auth,
    )


def _check_context(context: dict[str, Any], hook: str) -> None:
    if not isinstance(context.get("patientId"), str) or not context["patientId"]:
        raise RequestError("'context.patientId' is required and must be a string")
    if hook not in ORDER_HOOKS:
        return
    drafts = context.get("draftOrders")
    if not isinstance(drafts, dict) or drafts.get("resourceType") != "Bundle":
        raise RequestError("'context.draftOrders' is required and must be a FHIR Bundle")
    if not isinstance(drafts.get("entry", []), list):
        raise RequestError("'context.draftOrders.entry' must be a list")
    selections = context.get("selections")
    if hook == "order-select" and (
        not isinstance(selections, list) or not all(isinstance(s, str) for s in selections)
    ):
        raise RequestError("'context.selections' is required and must be a list of references")


ERROR_SEVERITIES = ("error", "fatal")


def prefetched(prefetch: dict[str, Any], key: str) -> Prefetched:
    if key not in prefetch:
        return Prefetched("absent", reason="not provided by the EHR")
    value = prefetch[key]
    if value is None:
        return Prefetched("null")
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise RequestError(f"'prefetch.{key}' must be a FHIR resource, a Bundle or null")
    if value["resourceType"] == "OperationOutcome":
        return Prefetched("failed", reason="the EHR reported an error fetching it")
    if value["resourceType"] != "Bundle":
        return Prefetched("ok", (value,))
    if reports_an_error(value):
        return Prefetched("failed", reason="the EHR reported an error fetching it")
    return Prefetched("ok", tuple(bundle_resources(value, f"prefetch.{key}")))


def reports_an_error(bundle: dict[str, Any]) -> bool:
    """A searchset carrying an OperationOutcome with an error is incomplete: not data to trust."""
    entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    outcomes = [
        e["resource"]
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == "OperationOutcome"
    ]
    issues = [i for o in outcomes if isinstance(o.get("issue"), list) for i in o["issue"]]
    return any(isinstance(i, dict) and i.get("severity") in ERROR_SEVERITIES for i in issues)


def bundle_resources(bundle: dict[str, Any], where: str) -> list[dict[str, Any]]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise RequestError(f"'{where}.entry' must be a list")
    found = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise RequestError(f"every entry of '{where}' needs a FHIR resource")
        if resource["resourceType"] != "OperationOutcome":
            found.append(resource)
    return found
