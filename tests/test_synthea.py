"""Real Synthea patients (tests/fixtures/external/synthea) sent as prefetch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import EXTERNAL
from invariants import assert_valid_cards

BUNDLES = sorted((EXTERNAL / "synthea").glob("*.json"))
VOCLOSPORIN_DRAFT = {
    "resourceType": "MedicationRequest",
    "id": "voc-draft",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": "Patient/x"},
    "medicationCodeableConcept": {"text": "voclosporin 7.9 MG Oral Capsule [Lupkynis]"},
    "dosageInstruction": [
        {
            "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": 23.7, "unit": "mg", "code": "mg"}}],
        }
    ],
}


def synthea_prefetch(path: Path) -> tuple[str, dict]:
    resources = [e["resource"] for e in json.loads(path.read_text())["entry"]]
    by_type: dict[str, list] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)

    def bundle(kind: str) -> dict:
        entries = [{"resource": r} for r in by_type.get(kind, [])]
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(entries),
            "entry": entries,
        }

    patient = by_type["Patient"][0]
    return patient["id"], {
        "patient": patient,
        "medications": bundle("MedicationRequest"),
        "egfr": bundle("Observation"),
        "bloodPressure": bundle("Observation"),
        "potassium": bundle("Observation"),
        "conditions": bundle("Condition"),
        "allergies": bundle("AllergyIntolerance"),
        "immunizations": bundle("Immunization"),
    }


@pytest.mark.parametrize("path", BUNDLES, ids=[p.name.split("_")[0] for p in BUNDLES])
def test_synthea_patient_not_on_voclosporin_gets_no_cards_at_chart_open(client, path):
    patient_id, prefetch = synthea_prefetch(path)
    body = {
        "hook": "patient-view",
        "hookInstance": "s1",
        "context": {"patientId": patient_id, "userId": "Practitioner/1"},
        "prefetch": prefetch,
    }
    response = client.post("/cds-services/voclosporin-patient-view", json=body)
    assert response.status_code == 200
    assert assert_valid_cards(response.json) == []


@pytest.mark.parametrize("path", BUNDLES, ids=[p.name.split("_")[0] for p in BUNDLES])
def test_ordering_voclosporin_for_a_synthea_patient_gives_a_valid_response(client, path):
    patient_id, prefetch = synthea_prefetch(path)
    context = {
        "patientId": patient_id,
        "userId": "Practitioner/1",
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": VOCLOSPORIN_DRAFT}]},
    }
    body = {"hook": "order-sign", "hookInstance": "s2", "context": context, "prefetch": prefetch}
    response = client.post("/cds-services/voclosporin-order-sign", json=body)
    assert response.status_code == 200
    cards = assert_valid_cards(response.json)
    # None of these patients takes a label-named interacting drug or has a voclosporin allergy.
    assert [c["indicator"] for c in cards if c["indicator"] == "critical"] == []


def test_synthea_patient_with_an_active_interacting_drug_is_flagged(client):
    path = next(p for p in BUNDLES if p.name.startswith("Asa_Hermiston"))
    patient_id, prefetch = synthea_prefetch(path)
    for entry in prefetch["medications"]["entry"]:
        if "cycloSPORINE" in json.dumps(entry["resource"]):
            entry["resource"]["status"] = "active"  # Asa's cyclosporine order, made current
    context = {
        "patientId": patient_id,
        "userId": "Practitioner/1",
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": VOCLOSPORIN_DRAFT}]},
    }
    body = {"hook": "order-sign", "hookInstance": "s3", "context": context, "prefetch": prefetch}
    cards = client.post("/cds-services/voclosporin-order-sign", json=body).json["cards"]
    summaries = [c["summary"] for c in cards]
    assert any("cycloSPORINE" in s and "Reduce voclosporin" in s for s in summaries), summaries
