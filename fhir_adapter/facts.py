"""A hook request + knowledge -> the facts the rules match on, each tied to its FHIR reference."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine import Fact, KnowledgeBase

from . import clinical, medications, orders, therapy
from .coding import effective_date, reference, texts
from .request import HookRequest, Prefetched, bundle_resources
from .validation import problem

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
class _Build:
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
        except UNREADABLE as error:
            kind = resource.get("resourceType", "resource") if resource else "Observation"
            reason = f"unexpected structure ({type(error).__name__})"
            data = {"resource": kind, "reason": reason}
            if resource and resource.get("resourceType") == "MedicationRequest":
                keys = medications.drugs_named_safely(resource, self.kb.vocabulary)
                data.update({"drug": keys[0]} if keys else {})
            self.out.add("unusable", resource, data, focus)

    def prefetched(self, key: str, resource_type: str) -> list[dict[str, Any]]:
        value: Prefetched | None = self.request.prefetch.get(key)
        return [r for r in (value.resources if value else ()) if r["resourceType"] == resource_type]


def patient_facts(kb: KnowledgeBase, request: HookRequest, now: date) -> PatientFacts:
    build = _Build(kb, request, now)
    for key, value in request.prefetch.items():
        if value.state in ("absent", "failed") and key in DATA_NAMES:
            build.out.gap(DATA_NAMES[key], value.reason)
    drafts = _draft_orders(request)
    label_orders = _medications(build, drafts)
    _therapy(build, label_orders, drafts)
    for resource in build.prefetched("allergies", "AllergyIntolerance"):
        with build.reading(resource):
            _allergy(build, resource)
    for resource in build.prefetched("patient", "Patient")[:1]:
        with build.reading(resource):
            build.out.add("patient", resource, clinical.age_and_sex(resource, now))
    _conditions(build)
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


def _medications(build: _Build, drafts: list[tuple[dict, bool]]) -> list[therapy.Order]:
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
                status = resource.get("status")
                status = status if isinstance(status, str) else "unknown"
                order = therapy.Order(
                    resource, therapy.authored(resource), dose.get("dose_mg"), status
                )
                label_orders.append(order)
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
    build: _Build, resource: dict, keys: list[str], focus: bool, active_dose: float | None = None
) -> None:
    issue = problem(resource)
    if issue:
        data = {"resource": "MedicationRequest", "reason": issue, "drug": keys[0]}
        build.out.add("unusable", resource, data, focus)
        return
    for key in keys:
        drug = build.kb.vocabulary.drugs[key]
        dose = medications.dose(resource, drug)
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


def _allergy(build: _Build, resource: dict) -> None:
    target = clinical.allergy_target(resource, build.kb.vocabulary)
    if target is None:
        return
    issue = problem(resource)
    if issue:
        build.out.add("unusable", resource, {"resource": "AllergyIntolerance", "reason": issue})
        return
    substance, drug = target
    vocabulary = build.kb.vocabulary
    name = (vocabulary.substances.get(substance) or vocabulary.drugs[substance]).name
    data = {"substance": substance, "to": drug, "name": name}
    build.out.add("allergy", resource, {**data, **clinical.allergy_severity(resource)})


def _readings(build: _Build, key: str, code_set: str) -> list[therapy.Reading]:
    """Usable readings of one code set, newest first; unusable newest ones become facts."""
    found = []
    for obs in build.prefetched(key, "Observation"):
        with build.reading(obs):
            data = clinical.observation_fact(obs, build.kb.vocabulary.code_sets[code_set])
            if data is not None:
                found.append((obs, data, effective_date(obs) or date.min))
    found.sort(key=lambda entry: entry[2], reverse=True)
    readings = []
    for obs, data, _ in found:
        if isinstance(data, str):
            if not readings:
                build.out.add("unusable", obs, {"resource": "Observation", "reason": data})
            continue
        readings.append(therapy.Reading(obs, date.fromisoformat(data["date"]), data["value"]))
    return readings


def _provided(build: _Build, key: str) -> bool:
    """True when the EHR answered for this key (data or known-empty), so a gap is in the chart."""
    value = build.request.prefetch.get(key)
    return value is not None and value.state in ("ok", "null")


def _latest(build: _Build, kind: str, reading: therapy.Reading, extra: dict | None = None) -> None:
    issue = problem(reading.resource)
    if issue:
        build.out.add("unusable", reading.resource, {"resource": "Observation", "reason": issue})
        return
    data = {
        "value": reading.value,
        "date": reading.when.isoformat(),
        "age_days": (build.now - reading.when).days,
    }
    build.out.add(kind, reading.resource, {**data, **(extra or {})})


def _therapy(build: _Build, label_orders: list[therapy.Order], drafts: list) -> None:
    egfr = _readings(build, "egfr", "egfr")
    if egfr:
        _latest(build, "egfr", egfr[0])
    elif _provided(build, "egfr"):
        build.out.gap("egfr", "no usable eGFR result on record")
    potassium = _readings(build, "potassium", "potassium")
    if potassium:
        _latest(
            build,
            "potassium",
            potassium[0],
            {"above_range": clinical.above_range(potassium[0].resource)},
        )
    pressure = None
    with build.reading(None):
        observations = build.prefetched("bloodPressure", "Observation")
        pressure = clinical.latest_blood_pressure(observations, build.kb.vocabulary)
    if pressure:
        obs, data = pressure
        data = {**data, "age_days": (build.now - date.fromisoformat(data["date"])).days}
        build.out.add("blood-pressure", obs, data)
    elif _provided(build, "bloodPressure"):
        build.out.gap("blood-pressure", "no blood pressure on record")
    for obs in build.prefetched("childPugh", "Observation"):
        with build.reading(obs):
            found = orders.child_pugh_class(obs, build.kb.vocabulary, build.kb.params)
            if found:
                data = {"class": found, "name": "Child-Pugh class " + found}
                build.out.add("child-pugh", obs, data)
    with build.reading(None):
        _course(build, therapy.history(label_orders), egfr, potassium, pressure)


def _course(build: _Build, past: list[therapy.Order], egfr, potassium, pressure) -> None:
    state = therapy.therapy(past, build.now)
    _background(build)
    if state["phase"] == "initiation":
        build.out.add("therapy", None, {**state, "reduced_after_fall": False})
        return
    start = date.fromisoformat(state["start"])
    base = therapy.baseline(egfr, start)
    reduced = therapy.reduced_after_fall(past, egfr, base, build.kb.params["egfr-fall-reduce-pct"])
    build.out.add("therapy", None, {**state, "reduced_after_fall": reduced})
    if base is None:
        build.out.gap("egfr-baseline", "no eGFR on or before the first voclosporin order")
    elif egfr:
        _latest_course(build, egfr[0], base)
    if state["phase"] == "continuing":
        lasts = {
            "egfr": egfr[0].when if egfr else None,
            "potassium": potassium[0].when if potassium else None,
            "blood-pressure": date.fromisoformat(pressure[1]["date"]) if pressure else None,
        }
        _monitoring(build, past, start, reduced, lasts)


def _monitoring(build: _Build, past, start: date, reduced: bool, lasts: dict) -> None:
    current = next((o for o in reversed(past) if o.current), None)
    reassess = None
    if reduced and current and current.authored:
        reassess = (current.authored, build.kb.params["egfr-reassess-days"])
    for item in build.kb.monitoring.values():
        window = reassess if item.key == "egfr" else None
        found = therapy.due(item, start, lasts.get(item.key), build.now, window)
        if found:
            build.out.add("monitoring", None, found)


def _latest_course(build: _Build, current: therapy.Reading, base: therapy.Reading) -> None:
    issue = problem(base.resource)
    if issue:
        build.out.add("unusable", base.resource, {"resource": "Observation", "reason": issue})
        return
    build.out.add("egfr-course", current.resource, therapy.course(current, base))


def _background(build: _Build) -> None:
    """Which background therapies the label expects are missing from current and draft orders."""
    present = {c for f in build.out.facts if f.kind == "medication" for c in f.data["classes"]}
    expected = [
        c for c in build.kb.vocabulary.classes.values() if c.expected_with == build.kb.label.drug
    ]
    missing = [c.name for c in expected if c.key not in present]
    build.out.add("background", None, {"complete": not missing, "missing": missing})


def _conditions(build: _Build) -> None:
    for resource in build.prefetched("conditions", "Condition"):
        with build.reading(resource):
            _condition(build, resource)


def _condition(build: _Build, resource: dict) -> None:
    if not orders.is_current_condition(resource):
        return
    for topic in orders.condition_topics(resource, build.kb.vocabulary):
        name = next(iter(texts(resource.get("code"))), topic)
        build.out.add("condition", resource, {"topic": topic, "name": name})
    found = orders.child_pugh_class(resource, build.kb.vocabulary, build.kb.params)
    if found:
        build.out.add("child-pugh", resource, {"class": found, "name": "Child-Pugh class " + found})


def _vaccines(build: _Build, drafts: list[tuple[dict, bool]]) -> None:
    for resource, focus in drafts:
        with build.reading(resource, focus):
            found = orders.vaccine(resource, build.kb.vocabulary)
            if found:
                build.out.add("vaccine", resource, found, focus)
