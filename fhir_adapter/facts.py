"""A hook request + knowledge -> the facts the rules match on, each tied to its FHIR reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine import Fact, KnowledgeBase

from . import clinical, medications
from .coding import effective_date, reference
from .request import HookRequest, Prefetched, bundle_resources
from .validation import problem

CURRENT_MEDICATION = {"active", "on-hold"}
EGFR_KEPT = 24
DATA_NAMES = {
    "medications": "medications",
    "allergies": "allergies",
    "egfr": "egfr",
    "bloodPressure": "blood-pressure",
    "patient": "patient",
}
REASONS = {"absent": "not provided by the EHR", "failed": "the EHR reported an error fetching it"}


@dataclass
class PatientFacts:
    """The facts of one request, plus the resources they came from (for card suggestions)."""

    facts: list[Fact] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(
        self, kind: str, resource: dict[str, Any] | None, data: dict, focus: bool = False
    ) -> None:
        ref = reference(resource) if resource else ""
        if resource and ref:
            self.resources[ref] = resource
        self.facts.append(Fact(kind, ref, data, focus))


def patient_facts(kb: KnowledgeBase, request: HookRequest, now: date) -> PatientFacts:
    out = PatientFacts()
    for key, value in request.prefetch.items():
        if value.state in REASONS and key in DATA_NAMES:
            out.add("unavailable", None, {"data": DATA_NAMES[key], "reason": REASONS[value.state]})
    drafts = _draft_orders(request)
    draft_refs = {reference(r) for r, _ in drafts}
    for resource, focus in drafts:
        _medication(out, kb, resource, focus)
    for resource in _of(request.prefetch.get("medications"), "MedicationRequest"):
        if resource.get("status") in CURRENT_MEDICATION and reference(resource) not in draft_refs:
            _medication(out, kb, resource, False)
    for resource in _of(request.prefetch.get("allergies"), "AllergyIntolerance"):
        _allergy(out, kb, resource)
    for resource in _of(request.prefetch.get("patient"), "Patient")[:1]:
        out.add("patient", resource, clinical.age_and_sex(resource, now))
    _observations(out, kb, request)
    return out


def _of(value: Prefetched | None, resource_type: str) -> list[dict[str, Any]]:
    return [r for r in (value.resources if value else ()) if r["resourceType"] == resource_type]


def _draft_orders(request: HookRequest) -> list[tuple[dict[str, Any], bool]]:
    drafts = request.context.get("draftOrders")
    if not isinstance(drafts, dict):
        return []
    resources = bundle_resources(drafts, "context.draftOrders")
    selections = request.context.get("selections")
    return [
        (r, request.hook != "order-select" or reference(r) in selections)
        for r in resources
        if r["resourceType"] == "MedicationRequest"
    ]


def _medication(out: PatientFacts, kb: KnowledgeBase, resource: dict, focus: bool) -> None:
    keys = medications.drugs_named(resource, kb.vocabulary)
    if not keys:
        return
    issue = problem(resource)
    if issue:
        data = {"resource": "MedicationRequest", "reason": issue, "drug": keys[0]}
        out.add("unusable", resource, data, focus)
        return
    for key in keys:
        drug = kb.vocabulary.drugs[key]
        data = {
            "drug": key,
            "name": medications.display_name(resource),
            "classes": list(drug.classes),
            "classified": bool(drug.classes),
            "status": resource.get("status", "unknown"),
            **medications.dose(resource, drug),
        }
        out.add("medication", resource, data, focus)


def _allergy(out: PatientFacts, kb: KnowledgeBase, resource: dict) -> None:
    target = clinical.allergy_target(resource, kb.vocabulary)
    if target is None:
        return
    issue = problem(resource)
    if issue:
        out.add("unusable", resource, {"resource": "AllergyIntolerance", "reason": issue})
        return
    substance, drug = target
    name = kb.vocabulary.substances.get(substance) or kb.vocabulary.drugs[substance]
    data = {"substance": substance, "to": drug, "name": name.name}
    out.add("allergy", resource, {**data, **clinical.allergy_severity(resource)})


def _observations(out: PatientFacts, kb: KnowledgeBase, request: HookRequest) -> None:
    egfr = clinical.observation_facts(
        _of(request.prefetch.get("egfr"), "Observation"), kb.vocabulary.code_sets["egfr"]
    )
    newest = sorted(egfr, key=lambda pair: effective_date(pair[0]) or date.min, reverse=True)
    for obs, data in newest[:EGFR_KEPT]:
        issue = data if isinstance(data, str) else problem(obs)
        if issue:
            out.add("unusable", obs, {"resource": "Observation", "reason": issue})
        else:
            out.add("egfr", obs, data)
    pressures = _of(request.prefetch.get("bloodPressure"), "Observation")
    for obs, data in clinical.blood_pressures(pressures, kb.vocabulary):
        out.add("blood-pressure", obs, data)
