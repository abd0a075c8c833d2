"""FHIR R4 JSON -> facts: drugs by code or name, doses, labs with units, data gaps."""

from __future__ import annotations

import copy
from datetime import date

import pytest

from conftest import external
from fhir_adapter import RequestError, parse_request, patient_facts
from fhir_adapter.medication_identity import identify
from fhir_adapter.medications import dose, drugs_named
from fhir_adapter.observations import Policy, blood_pressure

NOW = date(2026, 11, 1)


@pytest.fixture(scope="module")
def vocabulary(kb):
    return kb.vocabulary


def order(**fields) -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        **fields,
    }


def test_drug_is_recognised_by_rxnorm_ingredient_code(vocabulary):
    concept = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "4450"}]
    }
    assert drugs_named(order(medicationCodeableConcept=concept), vocabulary) == ["fluconazole"]


def test_product_code_with_an_ingredient_display_is_recognised_by_name(vocabulary):
    concept = {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "308460",
                "display": "Clarithromycin 500 MG Oral Tablet",
            }
        ]
    }
    assert drugs_named(order(medicationCodeableConcept=concept), vocabulary) == ["clarithromycin"]


def test_voclosporin_is_recognised_by_the_lupkynis_ndc_labeler(vocabulary):
    concept = {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "75626-001-01"}]}
    assert drugs_named(order(medicationCodeableConcept=concept), vocabulary) == ["voclosporin"]


def test_names_match_whole_words_only(vocabulary):
    concept = {"text": "fosphenytoin 50 MG/ML Injectable Solution"}
    assert drugs_named(order(medicationCodeableConcept=concept), vocabulary) == []


def test_contained_medication_is_read(vocabulary):
    resource = order(
        contained=[
            {
                "resourceType": "Medication",
                "id": "med1",
                "code": {"text": "Lupkynis 7.9 mg capsule"},
            }
        ],
        medicationReference={"reference": "#med1"},
    )
    assert drugs_named(resource, vocabulary) == ["voclosporin"]
    assert identify(resource, vocabulary).name == "Lupkynis 7.9 mg capsule"


def test_referenced_medication_is_read_from_its_display(vocabulary):
    resource = order(
        medicationReference={"reference": "Medication/x", "display": "rifampin 300 mg"}
    )
    assert drugs_named(resource, vocabulary) == ["rifampin"]


def test_hl7_example_with_contained_medication_parses_without_a_match(vocabulary):
    resource = external("fhir-r4-examples", "medicationrequestexample1.json")
    assert drugs_named(resource, vocabulary) == []


def dosage(value, unit, **timing) -> list[dict]:
    return [{"timing": timing, "doseAndRate": [{"doseQuantity": {"value": value, "unit": unit}}]}]


@pytest.mark.parametrize(
    ("dosage_instruction", "expected"),
    [
        (dosage(23.7, "mg", repeat={"frequency": 2, "period": 1, "periodUnit": "d"}), (23.7, 47.4)),
        (
            dosage(3, "capsule", repeat={"frequency": 2, "period": 1, "periodUnit": "d"}),
            (23.7, 47.4),
        ),
        (
            dosage(23.7, "mg", repeat={"frequency": 1, "period": 12, "periodUnit": "h"}),
            (23.7, 47.4),
        ),
        (dosage(15.8, "mg", code={"coding": [{"code": "BID"}]}), (15.8, 31.6)),
        (dosage(7.9, "mg", repeat={"timeOfDay": ["08:00:00", "20:00:00"]}), (7.9, 15.8)),
        (
            dosage(15.8, "mg", repeat={"when": ["MORN"]})
            + dosage(7.9, "mg", repeat={"when": ["EVE"]}),
            (15.8, 23.7),
        ),
    ],
)
def test_dose_is_read_in_mg_per_dose_and_per_day(kb, dosage_instruction, expected):
    found = dose(order(dosageInstruction=dosage_instruction), kb.vocabulary.drugs["voclosporin"])
    assert (found["dose_mg"], found["daily_mg"]) == expected and found["dose_known"]


@pytest.mark.parametrize(
    "dosage_instruction",
    [
        [],
        dosage(2, "puff", repeat={"frequency": 2, "period": 1, "periodUnit": "d"}),
        dosage(23.7, "mg"),
        dosage("23.7", "mg", repeat={"frequency": 2}),
        dosage(-1, "mg", repeat={"frequency": 2}),
        [{"text": "as directed"}],
    ],
)
def test_unreadable_doses_are_marked_unknown(kb, dosage_instruction):
    found = dose(order(dosageInstruction=dosage_instruction), kb.vocabulary.drugs["voclosporin"])
    assert found == {"dose_known": False}


def request(prefetch: dict, hook: str = "patient-view") -> dict:
    return {"hook": hook, "hookInstance": "h", "context": {"patientId": "p"}, "prefetch": prefetch}


def facts_of(kb, body: dict, hook: str = "patient-view"):
    service = next(s for s in kb.services.values() if s.hook == hook)
    return patient_facts(kb, parse_request(body, hook, tuple(service.prefetch)), NOW).facts


def bundle(*resources) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def test_hl7_egfr_example_reads_the_component_value_and_comparator(kb):
    obs = external("fhir-r4-examples", "observation-example-f205-egfr.json")
    (fact,) = [f for f in facts_of(kb, request({"egfr": bundle(obs)})) if f.kind == "egfr"]
    assert fact.data["value"] == 60 and fact.ref == f"Observation/{obs['id']}"


def test_egfr_in_a_unit_not_per_body_surface_is_unusable(kb):
    obs = {
        "resourceType": "Observation",
        "id": "e1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]},
        "effectiveDateTime": "2026-10-01",
        "valueQuantity": {"value": 50, "unit": "mL/min"},
    }
    (fact,) = [f for f in facts_of(kb, request({"egfr": bundle(obs)})) if f.ref == "Observation/e1"]
    assert fact.kind == "unusable" and "mL/min" in fact.data["reason"]


def test_cancelled_observations_are_ignored(kb):
    obs = external("fhir-r4-examples", "observation-example-bloodpressure-cancel.json")
    assert [
        f
        for f in facts_of(kb, request({"bloodPressure": bundle(obs)}))
        if f.kind == "blood-pressure"
    ] == []


def test_blood_pressure_is_read_from_the_hl7_panel_and_the_synthea_panel(kb):
    hl7 = external("fhir-r4-examples", "observation-example-bloodpressure.json")
    synthea = copy.deepcopy(hl7)
    synthea["id"], synthea["code"] = (
        "s",
        {"coding": [{"system": "http://loinc.org", "code": "55284-4"}]},
    )
    for panel in (hl7, synthea):
        _, found = blood_pressure([panel], kb.vocabulary, Policy())
        assert (found["systolic"], found["diastolic"]) == (107, 60)


def test_only_the_latest_blood_pressure_becomes_a_fact(kb):
    older = external("fhir-r4-examples", "observation-example-bloodpressure.json")
    newer = copy.deepcopy(older)
    newer["id"], newer["effectiveDateTime"] = "newer", "2026-10-30"
    newer["component"][0]["valueQuantity"]["value"] = 170
    (fact,) = [
        f
        for f in facts_of(kb, request({"bloodPressure": bundle(older, newer)}))
        if f.kind == "blood-pressure"
    ]
    assert (
        fact.ref == "Observation/newer"
        and fact.data["systolic"] == 170
        and fact.data["age_days"] == 2
    )


def test_loose_systolic_and_diastolic_readings_taken_together_pair_up(kb):
    def reading(code, value):
        return {
            "resourceType": "Observation",
            "id": code,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "effectiveDateTime": "2026-10-01T09:00:00Z",
            "valueQuantity": {"value": value, "unit": "mm[Hg]"},
        }

    found = [
        f.data
        for f in facts_of(
            kb, request({"bloodPressure": bundle(reading("8480-6", 166), reading("8462-4", 90))})
        )
        if f.kind == "blood-pressure"
    ]
    assert found == [
        {
            "date": "2026-10-01",
            "systolic": 166,
            "diastolic": 90,
            "age_days": 31,
        }
    ]


def test_absent_prefetch_keys_become_unavailable_facts_and_null_keys_do_not(kb):
    facts = facts_of(kb, request({"medications": None}))
    gaps = {f.data["data"] for f in facts if f.kind == "unavailable"}
    assert "medications" not in gaps and {"allergies", "egfr", "blood-pressure"} <= gaps


def test_operation_outcome_prefetch_is_reported_as_a_failed_fetch(kb):
    failed = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception"}],
    }
    facts = facts_of(kb, request({"medications": failed}))
    (gap,) = [f for f in facts if f.kind == "unavailable" and f.data["data"] == "medications"]
    assert "error" in gap.data["reason"]


def test_patient_age_is_counted_in_whole_years_at_the_evaluation_date(kb):
    patient = {"resourceType": "Patient", "id": "p", "birthDate": "2008-11-02", "gender": "female"}
    (fact,) = [f for f in facts_of(kb, request({"patient": patient})) if f.kind == "patient"]
    assert fact.data == {"age": 17, "sex": "female"}


def test_hl7_allergy_example_is_not_a_voclosporin_allergy(kb):
    allergy = external("fhir-r4-examples", "allergyintolerance-example.json")
    assert [
        f for f in facts_of(kb, request({"allergies": bundle(allergy)})) if f.kind == "allergy"
    ] == []


def test_the_sandbox_draft_with_an_object_category_is_read_because_no_check_reads_category(kb):
    sandbox = external("cds-hooks", "sandbox-captured", "sandbox-order-sign-request.json")
    draft = sandbox["context"]["draftOrders"]
    assert "type" not in draft and isinstance(draft["entry"][0]["resource"]["category"], dict)
    facts = facts_of(kb, sandbox, hook="order-sign")
    (medication,) = [f for f in facts if f.kind == "medication"]
    assert medication.focus and medication.data["drug"] == "cyclosporine"
    assert [f for f in facts if f.kind == "unusable"] == []


def test_an_invalid_element_a_check_reads_makes_the_order_unusable_naming_it(kb):
    concept = {"text": "ketoconazole 200 MG Oral Tablet", "coding": {"code": "6135"}}
    body = request({"medications": bundle(order(medicationCodeableConcept=concept))})
    (fact,) = [f for f in facts_of(kb, body) if f.kind == "unusable"]
    assert fact.data == {
        "resource": "MedicationRequest",
        "field": "medication",
        "element": "medicationCodeableConcept.coding",
        "reason": "its medication is not in a form FHIR R4 allows",
        "drug": "ketoconazole",
    }


def test_invalid_dose_instructions_leave_the_order_read_with_its_dose_unknown(kb):
    instructions = dosage(23.7, "mg", repeat={"frequency": "twice", "period": 1})
    concept = {"text": "voclosporin 7.9 MG Oral Capsule"}
    resource = order(medicationCodeableConcept=concept, dosageInstruction=instructions)
    (fact,) = [
        f
        for f in facts_of(kb, request({"medications": bundle(resource)}))
        if f.ref == "MedicationRequest/m1"
    ]
    assert fact.kind == "medication" and fact.data["dose_known"] is False


def test_an_invalid_allergy_criticality_makes_the_allergy_unusable_naming_it(kb):
    allergy = {
        "resourceType": "AllergyIntolerance",
        "id": "a1",
        "patient": {"reference": "Patient/p"},
        "code": {"text": "voclosporin"},
        "criticality": ["high"],
    }
    (fact,) = [
        f for f in facts_of(kb, request({"allergies": bundle(allergy)})) if f.kind == "unusable"
    ]
    assert (fact.data["field"], fact.data["element"]) == ("criticality", "criticality")


def test_a_bundle_entry_without_a_resource_is_a_request_error(kb):
    with pytest.raises(RequestError, match="prefetch.medications"):
        facts_of(
            kb, request({"medications": {"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]}})
        )
