"""Knowledge-engineer test cases: one YAML scenario per file, compact FHIR, a pinned "now".

A case names a service, the patient's data in compact form, and which rules must fire and which
must stay silent. It runs the same path as the HTTP service: request -> facts -> rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from cds_hooks.assess import assess
from engine import KnowledgeBase

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
PATIENT_ID = "case-patient"
PREFETCH_KEYS = (
    "medications",
    "allergies",
    "egfr",
    "bloodPressure",
    "potassium",
    "conditions",
    "childPugh",
    "immunizations",
    "pregnancyStatus",
)


@dataclass(frozen=True)
class CaseResult:
    file: str
    description: str
    fired: frozenset[str]
    fires: frozenset[str]
    silent: frozenset[str]

    @property
    def problems(self) -> list[str]:
        missing = sorted(self.fires - self.fired)
        unexpected = sorted(self.silent & self.fired)
        return [f"expected to fire: {r}" for r in missing] + [
            f"expected silent: {r}" for r in unexpected
        ]


def case_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.yaml"))


def run_case(kb: KnowledgeBase, path: Path) -> CaseResult:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    service = kb.services[case["service"]]
    findings = assess(kb, service.id, hook_request(case, service.hook), _date(case["now"])).findings
    fired = frozenset(f.rule_id for f in findings)
    expect = case.get("expect") or {}
    return CaseResult(
        file=str(path),
        description=case.get("description", ""),
        fired=fired,
        fires=frozenset(expect.get("fires") or []),
        silent=frozenset(expect.get("silent") or []),
    )


def hook_request(case: dict[str, Any], hook: str) -> dict[str, Any]:
    """Expand a compact case into a CDS Hooks request with prefetch."""
    context: dict[str, Any] = {"patientId": PATIENT_ID, "userId": "Practitioner/case"}
    if hook != "patient-view":
        drafts = [draft_order(m) for m in case.get("draftOrders") or []]
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "entry": [{"resource": r} for r in drafts],
        }
    if hook == "order-select":
        context["selections"] = case.get("selections") or [
            f"MedicationRequest/{r['id']}" for r in drafts
        ]
    prefetch: dict[str, Any] = {"patient": patient(case.get("patient") or {})}
    builders = {
        "medications": lambda m: medication_request(m, "active"),
        "allergies": allergy,
        "egfr": egfr,
        "bloodPressure": blood_pressure,
        "potassium": potassium,
        "conditions": condition,
        "childPugh": child_pugh,
        "immunizations": lambda spec: spec,
        "pregnancyStatus": pregnancy_status,
    }
    for key in PREFETCH_KEYS:
        value = case.get(key, [])
        if value == "absent":
            continue
        prefetch[key] = (
            None if value is None else searchset([_built(builders[key], v) for v in value])
        )
    return {"hook": hook, "hookInstance": f"case-{hook}", "context": context, "prefetch": prefetch}


def _built(builder, spec: Any) -> dict[str, Any]:
    """A compact spec through its builder; `{resource: ...}` gives a raw FHIR resource."""
    return spec["resource"] if isinstance(spec, dict) and "resource" in spec else builder(spec)


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def patient(spec: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": PATIENT_ID, **_dates(spec)}


def draft_order(spec: dict[str, Any]) -> dict[str, Any]:
    """A draft MedicationRequest, or a vaccine as Immunization/ServiceRequest (`type`, `cvx`)."""
    kind = spec.get("type", "MedicationRequest")
    if kind == "MedicationRequest" or "resource" in spec:
        return medication_request(spec, "draft")
    concept: dict[str, Any] = {"text": spec["text"]}
    if "cvx" in spec:
        concept["coding"] = [{"system": CVX, "code": str(spec["cvx"]), "display": spec["text"]}]
    subject = {"reference": f"Patient/{PATIENT_ID}"}
    if kind == "Immunization":
        return {
            "resourceType": kind,
            "id": spec["id"],
            "status": "not-done",
            "vaccineCode": concept,
            "patient": subject,
            "occurrenceDateTime": "2026-11-01",
        }
    return {
        "resourceType": kind,
        "id": spec["id"],
        "status": "draft",
        "intent": "order",
        "code": concept,
        "subject": subject,
    }


def medication_request(spec: dict[str, Any], status: str) -> dict[str, Any]:
    if "resource" in spec:
        return spec["resource"]
    concept: dict[str, Any] = {"text": spec["text"]}
    if "rxnorm" in spec:
        concept["coding"] = [
            {"system": RXNORM, "code": str(spec["rxnorm"]), "display": spec["text"]}
        ]
    resource = {
        "resourceType": "MedicationRequest",
        "id": spec["id"],
        "status": spec.get("status", status),
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "medicationCodeableConcept": concept,
    }
    if "dose" in spec:
        resource["dosageInstruction"] = [_dosage(d, spec) for d in _as_list(spec["dose"])]
    if "authored" in spec:
        resource["authoredOn"] = str(spec["authored"])
    return resource


def _dosage(dose: str, spec: dict[str, Any]) -> dict[str, Any]:
    value, unit = str(dose).split(maxsplit=1)
    code = {"capsule": "{capsule}", "capsules": "{capsule}"}.get(unit, unit)
    quantity = {"value": float(value), "unit": unit, "system": UCUM, "code": code}
    repeat = {"frequency": spec.get("per_day", 1), "period": 1, "periodUnit": "d"}
    if isinstance(spec["dose"], list):
        repeat["frequency"] = 1
    return {"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": quantity}]}


def allergy(spec: dict[str, Any]) -> dict[str, Any]:
    resource = {
        "resourceType": "AllergyIntolerance",
        "id": spec["id"],
        "patient": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {"text": spec["text"]},
    }
    if "criticality" in spec:
        resource["criticality"] = spec["criticality"]
    if "severity" in spec:
        resource["reaction"] = [
            {"manifestation": [{"text": "reaction"}], "severity": spec["severity"]}
        ]
    if "status" in spec:
        system = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
        resource["clinicalStatus"] = {"coding": [{"system": system, "code": spec["status"]}]}
    return resource


def egfr(spec: dict[str, Any]) -> dict[str, Any]:
    """An eGFR result: a number (with `unit`, `comparator`) or a text value such as ">60"."""
    if isinstance(spec["value"], str):
        return {**_observation(spec, "33914-3", None), "valueString": spec["value"]}
    quantity = {"value": spec["value"], "unit": spec.get("unit", "mL/min/{1.73_m2}")}
    if "comparator" in spec:
        quantity["comparator"] = spec["comparator"]
    return _observation(spec, "33914-3", quantity)


def blood_pressure(spec: dict[str, Any]) -> dict[str, Any]:
    resource = _observation(spec, "85354-9", None)
    unit = spec.get("unit", "mm[Hg]")
    resource["component"] = [
        {"code": _loinc(code), "valueQuantity": {"value": spec[field], "unit": unit}}
        for code, field in (("8480-6", "systolic"), ("8462-4", "diastolic"))
    ]
    return resource


def potassium(spec: dict[str, Any]) -> dict[str, Any]:
    quantity = {"value": spec["value"], "unit": spec.get("unit", "mmol/L")}
    resource = _observation(spec, "2823-3", quantity)
    if "high" in spec:
        resource["referenceRange"] = [{"high": {"value": spec["high"], "unit": "mmol/L"}}]
    if "interpretation" in spec:
        system = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
        resource["interpretation"] = [
            {"coding": [{"system": system, "code": spec["interpretation"]}]}
        ]
    return resource


def condition(spec: dict[str, Any]) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": spec["text"]}
    for field, code_system in (("snomed", SNOMED), ("icd10cm", ICD10CM)):
        if field in spec:
            coding = {"system": code_system, "code": str(spec[field]), "display": spec["text"]}
            concept["coding"] = [coding]
    system = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    return {
        "resourceType": "Condition",
        "id": spec["id"],
        "clinicalStatus": {"coding": [{"system": system, "code": spec.get("status", "active")}]},
        "code": concept,
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }


def child_pugh(spec: dict[str, Any]) -> dict[str, Any]:
    resource = _observation(spec, None, None)
    resource["code"] = {"text": spec.get("code_text", "Child-Pugh score")}
    if "score" in spec:
        resource["valueInteger"] = spec["score"]
    else:
        resource["valueString"] = spec.get("text", f"Class {spec.get('class')}")
    return resource


def pregnancy_status(spec: dict[str, Any]) -> dict[str, Any]:
    """A pregnancy (LOINC 82810-3) or breastfeeding (63895-7) status with a text answer."""
    code = {"pregnancy": "82810-3", "breastfeeding": "63895-7"}[spec.get("of", "pregnancy")]
    return {**_observation(spec, code, None), "valueCodeableConcept": {"text": spec["value"]}}


def _observation(spec: dict[str, Any], code: str | None, quantity: dict | None) -> dict[str, Any]:
    resource = {
        "resourceType": "Observation",
        "id": spec["id"],
        "status": spec.get("status", "final"),
        "code": _loinc(code),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": str(spec["date"]),
    }
    if quantity:
        resource["valueQuantity"] = quantity
    return resource


def _loinc(code: str) -> dict[str, Any]:
    return {"coding": [{"system": "http://loinc.org", "code": code}]}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _dates(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in spec.items()}


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass(frozen=True)
class CaseReport:
    results: list[CaseResult]
    counts: dict[str, tuple[int, int]]
    minimum: int

    @property
    def problems(self) -> list[str]:
        found = [f"{r.file}: {p}" for r in self.results for p in r.problems]
        found += [
            f"rule {rule}: no case makes it fire" for rule, (f, _) in self.counts.items() if not f
        ]
        found += [
            f"rule {rule}: no case keeps it silent" for rule, (_, s) in self.counts.items() if not s
        ]
        if len(self.results) < self.minimum:
            found.append(
                f"{len(self.results)} cases, fewer than the recorded minimum {self.minimum}"
            )
        return found


def run_cases(kb: KnowledgeBase, root: Path) -> CaseReport:
    """Run every case under `root`; count per rule the cases that fire it and keep it silent.
    `root/MINIMUM` records the case count that may not drop."""
    results = [run_case(kb, path) for path in case_files(root)]
    counts = {
        rule: (sum(rule in r.fires for r in results), sum(rule in r.silent for r in results))
        for rule in sorted(kb.rules)
    }
    minimum_file = root / "MINIMUM"
    minimum = int(minimum_file.read_text().strip()) if minimum_file.is_file() else 0
    return CaseReport(results, counts, minimum)
