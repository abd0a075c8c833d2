"""Small readers for FHIR datatypes shared by the resource extractors."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"


def codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict) or not isinstance(concept.get("coding", []), list):
        return []
    return [c for c in concept.get("coding", []) if isinstance(c, dict)]


def texts(concept: Any) -> list[str]:
    """Every human-readable string of a CodeableConcept: its text and each coding display."""
    if not isinstance(concept, dict):
        return []
    found = [concept.get("text")] + [c.get("display") for c in codings(concept)]
    return [t for t in found if isinstance(t, str) and t]


def has_code(concept: Any, system: str, codes: frozenset[str]) -> str | None:
    return next(
        (
            c["code"]
            for c in codings(concept)
            if c.get("system") == system and c.get("code") in codes
        ),
        None,
    )


def reference(resource: dict[str, Any]) -> str:
    rid = resource.get("id")
    return f"{resource['resourceType']}/{rid}" if isinstance(rid, str) and rid else ""


def parse_date(value: Any) -> date | None:
    """FHIR date or dateTime (any precision) -> date; None when absent or malformed."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    text = value + "-01-01"[len(value) - 4 :] if len(value) < 10 else value
    try:
        return (
            datetime.fromisoformat(text.replace("Z", "+00:00")).date()
            if "T" in text
            else date.fromisoformat(text[:10])
        )
    except ValueError:
        return None


def effective_date(resource: dict[str, Any]) -> date | None:
    period = resource.get("effectivePeriod")
    start = period.get("start") if isinstance(period, dict) else None
    return parse_date(resource.get("effectiveDateTime") or start or resource.get("issued"))
