"""A hook request + knowledge -> the facts the rules match on, each tied to its FHIR reference."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine import KnowledgeBase

from . import clinical, medications, observations, orders, therapy
from .build import DATA_NAMES, DRAFT_TYPES, Build, PatientFacts
from .coding import effective_instant, reference, texts
from .labs import lab_and_course_facts
from .medication_identity import Identity, bundled_medications, identify, request_resources
from .order_groups import same_drug_orders
from .request import HookRequest, bundle_resources
from .validation import DOSE, problem, unusable

# Medication list entries read as the patient's medicines (MedicationOrder: DSTU2/STU3 orders).
HISTORY_TYPES = ("MedicationRequest", "MedicationStatement", "MedicationOrder")
STATUSES = {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft"}

__all__ = ["PatientFacts", "patient_facts"]


def patient_facts(kb: KnowledgeBase, request: HookRequest, now: date) -> PatientFacts:
    build = Build(kb, request, now)
    for key, value in request.prefetch.items():
        if value.state in ("absent", "failed") and key in DATA_NAMES:
            build.out.gap(DATA_NAMES[key], value.reason)
    drafts = _draft_orders(request)
    label_orders = _medications(build, drafts)
    grouped = same_drug_orders(build.out.facts, build.out.resources, build.kb.label.drug)
    if grouped:
        anchor, data = grouped
        build.out.add("same-drug-orders", build.out.resources[anchor.ref], data, anchor.focus)
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
    """Medication facts for drafts and current medicines (orders and statements); returns the
    label drug's orders."""
    draft_refs = {reference(r) for r, _ in drafts}
    bundled = bundled_medications(request_resources(build.request))
    history = [
        r
        for kind in HISTORY_TYPES
        for r in build.prefetched("medications", kind)
        if reference(r) not in draft_refs
    ]
    label_drug = build.kb.label.drug
    label_orders = []
    for resource in history:
        with build.reading(resource):
            found = identify(resource, build.kb.vocabulary, bundled)
            if label_drug in found.drugs and resource["resourceType"] == "MedicationRequest":
                drug = build.kb.vocabulary.drugs[label_drug]
                dose = medications.dose(resource, drug, build.now)
                label_orders.append(therapy.order(resource, dose.get("dose_mg")))
            if found.drugs and _current(build, resource):
                _medication(build, resource, found, False)
    active_doses = [o.dose_mg for o in label_orders if o.current and o.dose_mg]
    for resource, focus in drafts:
        if resource["resourceType"] != "MedicationRequest":
            continue
        with build.reading(resource, focus):
            found = identify(resource, build.kb.vocabulary, bundled)
            if found.drugs:
                _medication(build, resource, found, focus, max(active_doses, default=None))
    return label_orders


def _current(build: Build, resource: dict) -> bool:
    """A current medicine by the status and intent policy in knowledge (policies.ttl)."""
    sets = build.kb.vocabulary.code_sets
    intent = resource.get("intent")
    counted = intent is None or intent in sets["counted-medication-intents"].codes
    return counted and resource.get("status") in sets["current-medication-statuses"].codes


def _medication(
    build: Build, resource: dict, found: Identity, focus: bool, active_dose: float | None = None
) -> None:
    issue = problem(resource)
    dose_readable = issue is None or issue.words != DOSE
    if issue and dose_readable:
        data = {**unusable(resource, issue), "drug": found.drugs[0]}
        build.out.add("unusable", resource, data, focus)
        return
    claimed: set[str] = set()  # a combination's class counts once (one card per order)
    for key in found.drugs:
        drug = build.kb.vocabulary.drugs[key]
        unread = {"dose_known": False}
        dose = medications.dose(resource, drug, build.now) if dose_readable else unread
        classes = [c for c in _classes(build, drug.classes, found.exposure) if c not in claimed]
        claimed.update(classes)
        status = resource.get("status")
        data = {
            "drug": key,
            "name": found.name,
            "classes": classes,
            "classified": bool(drug.classes),
            "status": status if status in STATUSES else "unknown",
            "exposure": found.exposure,
            "identified_by": dict(found.how)[key],
            "below_active": bool(
                active_dose and dose.get("dose_mg") and dose["dose_mg"] < active_dose
            ),
            **dose,
        }
        build.out.add("medication", resource, data, focus)


def _classes(build: Build, classes: tuple[str, ...], exposure: str) -> list[str]:
    """The drug's classes; a local product (cream, eye drops) leaves out the classes whose
    interactions need systemic exposure (knowledge: lw:systemicOnly)."""
    known = build.kb.vocabulary.classes
    return [c for c in classes if exposure == "systemic" or not known[c].systemic_only]


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
