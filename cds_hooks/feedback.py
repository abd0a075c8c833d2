"""The shape of a CDS Hooks feedback request, checked and parsed before anything is stored.
Every string is bounded by the column it goes to, so both databases get the same answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir_adapter import RequestError

from .store import feedback as table

OUTCOMES = ("accepted", "overridden")
SUGGESTION_ID_MAX = 64


@dataclass(frozen=True)
class Feedback:
    """One validated feedback item; `timestamp` is UTC in a fixed-width form, so it sorts."""

    card: str
    outcome: str
    accepted: tuple[str, ...]
    system: str | None
    code: str | None
    comment: str | None
    timestamp: str


def feedback_items(body: Any) -> list[Feedback]:
    items = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise RequestError("'feedback' must be a non-empty list")
    return [_parse(item, f"feedback[{i}]") for i, item in enumerate(items)]


def _parse(item: Any, where: str) -> Feedback:
    if not isinstance(item, dict):
        raise RequestError(f"{where} must be an object")
    card = _text(item.get("card"), f"{where}.card", table.c.card_uuid.type.length)
    if item.get("outcome") not in OUTCOMES:
        raise RequestError(f"{where}.outcome must be 'accepted' or 'overridden'")
    accepted = _accepted(item.get("acceptedSuggestions"), f"{where}.acceptedSuggestions")
    if item["outcome"] == "accepted" and not accepted:
        raise RequestError(f"{where}.acceptedSuggestions must list the accepted suggestions' ids")
    return Feedback(
        card,
        item["outcome"],
        accepted,
        *_override_reason(item.get("overrideReason"), f"{where}.overrideReason"),
        _timestamp(item.get("outcomeTimestamp"), f"{where}.outcomeTimestamp"),
    )


def _accepted(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(s, dict) for s in value):
        raise RequestError(f"{where} must be a list of suggestions, each with a string id")
    return tuple(
        _text(s.get("id"), f"{where}[{i}].id", SUGGESTION_ID_MAX) for i, s in enumerate(value)
    )


def _override_reason(reason: Any, where: str) -> tuple[str | None, str | None, str | None]:
    if reason is None:
        return None, None, None
    if not isinstance(reason, dict):
        raise RequestError(f"{where} must be an object with a reason Coding or a userComment")
    coding, comment = reason.get("reason"), reason.get("userComment")
    if coding is None and comment is None:
        raise RequestError(f"{where} needs a reason Coding or a userComment")
    if comment is not None:
        comment = _text(comment, f"{where}.userComment", table.c.override_comment.type.length)
    if coding is None:
        return None, None, comment
    if not isinstance(coding, dict):
        raise RequestError(f"{where}.reason must be a Coding with system and code")
    system = _text(
        coding.get("system"), f"{where}.reason.system", table.c.override_system.type.length
    )
    code = _text(coding.get("code"), f"{where}.reason.code", table.c.override_code.type.length)
    return system, code, comment


def _text(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str) or not value:
        raise RequestError(f"{where} must be a non-empty string")
    if len(value) > limit:
        raise RequestError(f"{where} is longer than {limit} characters")
    if "\x00" in value:
        raise RequestError(f"{where} must not contain NUL characters")
    return value


def _timestamp(value: Any, where: str) -> str:
    """ISO 8601 -> UTC; a time without an offset is taken as UTC, as CDS Hooks specifies."""
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        moment = moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)
    except (ValueError, OverflowError):
        raise RequestError(f"{where} must be an ISO 8601 timestamp") from None
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
