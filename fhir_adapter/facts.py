"""A hook request + knowledge -> the facts the rules match on, each tied to its FHIR reference."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine import KnowledgeBase

from . import clinical, medications, observations, orders, therapy
from .build import DATA_NAMES, DRAFT_TYPES, Build, PatientFacts
from .coding import effective_instant, reference, texts
from .labs import lab_and_course_facts
from .request import HookRequest, bundle_resources
from .validation import DOSE, problem, unusable

__all__ = ["PatientFacts", "patient_facts"]


def patient_facts(kb: KnowledgeBase, request: HookRequest, now: date) -> PatientFacts:
    build = Build(kb, request, now)
    for key, value in request.prefetch.items():
        if value.state in ("absent", "failed") and key in DATA_NAMES:
            build.out.gap(DATA_NAMES[key], value.reason)
    drafts = _draft_orders(request)
    label_orders = _medications(build, drafts)
    lab_and_course_facts(build, label_orders)
    _background(build)
    for resource in build.prefetched("allergies", "AllergyIntolerance"):
        with build.reading(resource):
            _allergy(build, resource)
    for resource in build.prefetched("patient", "Patient")[:1]:
        with build.reading(resource):
            build.out.add("patient", resource, clinical.age_and_sex(resource, now))
            if "age" not in build.out.facts[-1].data:
                build.out.gap("age", "no readable birth date on record")
    _conditions(build)
    _status_observations(build)
    _vaccines(build, drafts)
    return build.out


def _draft_orders(request: HookRequest) -> list[tuple[dict[str, Any], bool]]:
    drafts = request.context.get("draftOrders")
    if not isinstance(drafts, dict):
        return []
    selections = request.context.get("selections")
    return [
        (r, request.hook != "order-select" or reference(r) in selections)
        for r in bundle_resources(drafts, "context.draftOrders")
        if r["resourceType"] in DRAFT_TYPES
    ]


def _medications(build: Build, drafts: list[tuple[dict, bool]]) -> list[therapy.Order]:
    """Medication facts for drafts and current orders; returns the label drug's orders."""
    draft_refs = {reference(r) for r, _ in drafts}
    history = [
        r
        for r in build.prefetched("medications", "MedicationRequest")
        if reference(r) not in draft_refs
    ]
    label_drug = build.kb.label.drug
    label_orders = []
    for resource in history:
        with build.reading(resource):
            keys = medications.drugs_named(resource, build.kb.vocabulary)
            if label_drug in keys:
                dose = medications.dose(resource, build.kb.vocabulary.drugs[label_drug])
                label_orders.append(therapy.order(resource, dose.get("dose_mg")))
            if keys and resource.get("status") in therapy.CURRENT:
                _medication(build, resource, keys, False)
    active_doses = [o.dose_mg for o in label_orders if o.current and o.dose_mg]
    for resource, focus in drafts:
        if resource["resourceType"] != "MedicationRequest":
            continue
        with build.reading(resource, focus):
            keys = medications.drugs_named(resource, build.kb.vocabulary)
            if keys:
                _medication(build, resource, keys, focus, max(active_doses, default=None))
    return label_orders


def _medication(
    build: Build, resource: dict, keys: list[str], focus: bool, active_dose: float | None = None
) -> None:
    issue = problem(resource)
    dose_readable = issue is None or not issue.element.startswith(DOSE)
    if issue and dose_readable:
        build.out.add("unusable", resource, {**unusable(resource, issue), "drug": keys[0]}, focus)
        return
    for key in keys:
        drug = build.kb.vocabulary.drugs[key]
        dose = medications.dose(resource, drug) if dose_readable else {"dose_known": False}
        data = {
            "drug": key,
            "name": medications.display_name(resource),
            "classes": list(drug.classes),
            "classified": bool(drug.classes),
            "status": resource.get("status", "unknown"),
            "below_active": bool(
                active_dose and dose.get("dose_mg") and dose["dose_mg"] < active_dose
            ),
            **dose,
        }
        build.out.add("medication", resource, data, focus)


def _allergy(build: Build, resource: dict) -> None:
    target = clinical.allergy_target(resource, build.kb.vocabulary)
    if target is None:
        return
    issue = problem(resource)
    if issue:
        build.out.add("unusable", resource, unusable(resource, issue))
        return
    substance, drug = target
    vocabulary = build.kb.vocabulary
    name = (vocabulary.substances.get(substance) or vocabulary.drugs[substance]).name
    data = {"substance": substance, "to": drug, "name": name}
    build.out.add("allergy", resource, {**data, **clinical.allergy_severity(resource)})


def _background(build: Build) -> None:
    """Which background therapies the label expects are missing from current and draft orders.
    Without the medication list nothing is known to be missing (its gap has its own card)."""
    if any(f.kind == "unavailable" and f.data["data"] == "medications" for f in build.out.facts):
        return
    present = {c for f in build.out.facts if f.kind == "medication" for c in f.data["classes"]}
    expected = [
        c for c in build.kb.vocabulary.classes.values() if c.expected_with == build.kb.label.drug
    ]
    missing = [c.name for c in expected if c.key not in present]
    build.out.add("background", None, {"complete": not missing, "missing": missing})


def _conditions(build: Build) -> None:
    for resource in build.prefetched("conditions", "Condition"):
        with build.reading(resource):
            _condition(build, resource)
    kinds = {(f.kind, f.data.get("topic")) for f in build.out.facts}
    if ("condition", "cirrhosis") in kinds and ("child-pugh", None) not in kinds:
        cirrhosis = min(
            (f for f in build.out.facts if f.data.get("topic") == "cirrhosis"), key=lambda f: f.ref
        )
        data = {"class": "not recorded", "name": cirrhosis.data["name"]}
        build.out.add("child-pugh", build.out.resources.get(cirrhosis.ref), data)


def _condition(build: Build, resource: dict) -> None:
    if not orders.is_current_condition(resource):
        return
    for topic in orders.condition_topics(resource, build.kb.vocabulary):
        name = next(iter(texts(resource.get("code"))), topic)
        build.out.add("condition", resource, {"topic": topic, "name": name})
    found = orders.child_pugh_class(resource, build.kb.vocabulary, build.kb.params)
    if found:
        build.out.add("child-pugh", resource, {"class": found, "name": "Child-Pugh class " + found})


def _status_observations(build: Build) -> None:
    """The newest pregnancy and breastfeeding status each; a "yes" is a condition fact."""
    policy = observations.Policy.from_params(build.kb.params)
    newest: dict[str, tuple] = {}
    for obs in build.prefetched("pregnancyStatus", "Observation"):
        with build.reading(obs):
            found = orders.status_answer(obs, build.kb.vocabulary)
            when = effective_instant(obs)
            if found and when and policy.counts(obs):
                rank = (when, reference(obs))
                if found[0] not in newest or rank > newest[found[0]][0]:
                    newest[found[0]] = (rank, obs, found[1])
    for _, obs, topic in newest.values():
        if topic:
            name = next(iter(texts(obs.get("valueCodeableConcept"))), topic)
            build.out.add("condition", obs, {"topic": topic, "name": name})


def _vaccines(build: Build, drafts: list[tuple[dict, bool]]) -> None:
    """A fact per live or ambiguous vaccine order; one for all inactivated ones (one advice
    card per encounter, not per dose), taken from an order being evaluated when there is one."""
    not_live = False
    for resource, focus in sorted(drafts, key=lambda d: (not d[1], reference(d[0]))):
        with build.reading(resource, focus):
            found = orders.vaccine(resource, build.kb.vocabulary)
            if found and not (not_live and found["liveness"] == "not-live"):
                not_live = not_live or found["liveness"] == "not-live"
                build.out.add("vaccine", resource, found, focus)
