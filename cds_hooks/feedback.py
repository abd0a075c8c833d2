"""The shape of a CDS Hooks feedback request, checked before anything is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_adapter import RequestError

OUTCOMES = ("accepted", "overridden")


def feedback_items(body: Any) -> list[dict[str, Any]]:
    items = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise RequestError("'feedback' must be a non-empty list")
    for i, item in enumerate(items):
        _check(item, f"feedback[{i}]")
    return items


def _check(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise RequestError(f"{where} must be an object")
    if not isinstance(item.get("card"), str) or not item["card"]:
        raise RequestError(f"{where}.card must be the card's uuid")
    if item.get("outcome") not in OUTCOMES:
        raise RequestError(f"{where}.outcome must be 'accepted' or 'overridden'")
    _timestamp(item.get("outcomeTimestamp"), f"{where}.outcomeTimestamp")
    accepted = item.get("acceptedSuggestions")
    if item["outcome"] == "accepted" and (
        not isinstance(accepted, list)
        or not accepted
        or not all(isinstance(s, dict) and isinstance(s.get("id"), str) for s in accepted)
    ):
        raise RequestError(f"{where}.acceptedSuggestions must list the accepted suggestions' ids")
    reason = item.get("overrideReason")
    if reason is not None:
        _override_reason(reason, f"{where}.overrideReason")


def _override_reason(reason: Any, where: str) -> None:
    if not isinstance(reason, dict) or not (reason.get("reason") or reason.get("userComment")):
        raise RequestError(f"{where} needs a reason Coding or a userComment")
    coding = reason.get("reason")
    if coding is not None and not (
        isinstance(coding, dict)
        and isinstance(coding.get("code"), str)
        and isinstance(coding.get("system"), str)
    ):
        raise RequestError(f"{where}.reason must be a Coding with system and code")
    if reason.get("userComment") is not None and not isinstance(reason["userComment"], str):
        raise RequestError(f"{where}.userComment must be a string")


def _timestamp(value: Any, where: str) -> None:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise RequestError(f"{where} must be an ISO 8601 timestamp") from None
