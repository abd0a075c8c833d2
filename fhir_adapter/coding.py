"""Small readers for FHIR datatypes shared by the resource extractors."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
MIDNIGHT_UTC = time(tzinfo=UTC)


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
    """FHIR date, dateTime or instant (any precision) -> its calendar date as written."""
    moment = parse_instant(value)
    return moment.date() if moment else None


def parse_instant(value: Any) -> datetime | None:
    """FHIR date, dateTime or instant -> an aware datetime (keeping its offset; a date, or a
    time without offset, is read as UTC); None when absent or malformed."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    text = value + "-01-01"[len(value) - 4 :] if len(value) < 10 else value
    try:
        if "T" not in text:
            return datetime.combine(date.fromisoformat(text[:10]), MIDNIGHT_UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def effective_instant(resource: dict[str, Any]) -> datetime | None:
    """When an observation was taken: effective[x] (dateTime, instant, period start), else
    when it was issued."""
    period = resource.get("effectivePeriod")
    start = period.get("start") if isinstance(period, dict) else None
    for value in (
        resource.get("effectiveDateTime"),
        resource.get("effectiveInstant"),
        start,
        resource.get("issued"),
    ):
        moment = parse_instant(value)
        if moment:
            return moment
    return None
