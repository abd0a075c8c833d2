"""The facts of one request as they are built, and the guard that keeps one malformed
resource from failing the whole request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine import Fact, KnowledgeBase

from . import medications
from .coding import reference
from .request import HookRequest, Prefetched

DATA_NAMES = {
    "medications": "medications",
    "allergies": "allergies",
    "egfr": "egfr",
    "bloodPressure": "blood-pressure",
    "potassium": "potassium",
    "conditions": "conditions",
    "patient": "patient",
}
DRAFT_TYPES = {"MedicationRequest", "Immunization", "ServiceRequest"}
UNREADABLE = (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError)


@dataclass
class PatientFacts:
    """The facts of one request, plus the resources they came from (for card suggestions)."""

    facts: list[Fact] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, kind: str, resource: dict | None, data: dict, focus: bool = False) -> None:
        ref = reference(resource) if resource else ""
        if resource and ref:
            self.resources[ref] = resource
        self.facts.append(Fact(kind, ref, data, focus))

    def gap(self, data: str, reason: str) -> None:
        self.add("unavailable", None, {"data": data, "reason": reason})


@dataclass
class Build:
    """Everything one request's facts are built from."""

    kb: KnowledgeBase
    request: HookRequest
    now: date
    out: PatientFacts = field(default_factory=PatientFacts)

    @contextmanager
    def reading(self, resource: dict[str, Any] | None, focus: bool = False) -> Iterator[None]:
        """Read one resource; if its structure is not what FHIR R4 allows, it becomes an
        `unusable` fact (a card says so) instead of failing the whole request."""
        try:
            yield
        except UNREADABLE:
            kind = resource.get("resourceType", "resource") if resource else "Observation"
            reason = "its structure could not be read"
            data = {"resource": kind, "field": "structure", "reason": reason}
            if resource and resource.get("resourceType") == "MedicationRequest":
                keys = medications.drugs_named_safely(resource, self.kb.vocabulary)
                data.update({"drug": keys[0]} if keys else {})
            self.out.add("unusable", resource, data, focus)

    def prefetched(self, key: str, resource_type: str) -> list[dict[str, Any]]:
        value: Prefetched | None = self.request.prefetch.get(key)
        return [r for r in (value.resources if value else ()) if r["resourceType"] == resource_type]
