"""The medication identity step: codes, NDCs, names, bundled Medication resources, exposure."""

from __future__ import annotations

from datetime import date

import pytest

from cds_hooks.assess import assess
from engine.vocabulary import ndc_product, tokens
from fhir_adapter import parse_request, patient_facts
from fhir_adapter.medication_identity import identify
from labelwise.cases import hook_request
from labelwise.explain import explain

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
SNOMED = "http://snomed.info/sct"
NOW = date(2026, 11, 1)


def coded(system: str, code: str, text: str | None = None) -> dict:
    concept: dict = {"coding": [{"system": system, "code": code}]}
    return {**concept, "text": text} if text else concept


def order(concept: dict | None = None, **fields) -> dict:
    resource = {"resourceType": "MedicationRequest", "id": "m1", "status": "active", **fields}
    return {**resource, "medicationCodeableConcept": concept} if concept else resource


@pytest.fixture(scope="module")
def vocabulary(kb):
    return kb.vocabulary


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("KETOCONAZOLE200MG", "ketoconazole 200 mg"),
        ("VOCLOSPORIN7.9MG CAP", "voclosporin 7.9 mg cap"),
        ("lopinavir-ritonavir (Kaletra)", "lopinavir ritonavir kaletra"),
        ("sulfamethoxazole/trimethoprim", "sulfamethoxazole trimethoprim"),
    ],
)
def test_medication_text_is_split_into_whole_tokens(text, expected):
    assert tokens(text) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("75626-001-01", ("756260001",)),
        ("75626-0001-01", ("756260001",)),
        ("75626000101", ("756260001",)),
        ("0069-1085-06", ("000691085",)),
        ("12-34", ("000120034",)),
        ("ABC-001", ()),
        ("123", ()),
    ],
)
def test_an_ndc_is_read_as_its_11_digit_labeler_and_product(code, expected):
    assert ndc_product(code) == expected


def test_an_unhyphenated_10_digit_ndc_is_read_in_all_three_layouts():
    assert ndc_product("7562600101") == ("075626001", "756260001", "756260010")


@pytest.mark.parametrize(
    ("concept", "drugs"),
    [
        (coded(RXNORM, "6135"), ("ketoconazole",)),
        (coded(RXNORM, "197853"), ("ketoconazole",)),
        (coded(RXNORM, "597730"), ("lopinavir", "ritonavir")),
        (coded(RXNORM, "1721613"), ("cobicistat",)),
        (coded(NDC, "00069108506"), ("ritonavir",)),
        (coded(NDC, "00069-1085-06"), ("ritonavir",)),
        (coded(NDC, "75626-001-01"), ("voclosporin",)),
        (coded(NDC, "7562600101"), ("voclosporin",)),
        ({"text": "Genvoya tablet"}, ("cobicistat",)),
        ({"text": "lopinavir-ritonavir 200-50 mg"}, ("lopinavir", "ritonavir")),
        ({"text": "nirmatrelvir and ritonavir"}, ("ritonavir",)),
        ({"text": "sulfamethoxazole-trimethoprim DS"}, ("trimethoprim",)),
        ({"text": "KETOCONAZOLE200MG TAB"}, ("ketoconazole",)),
        ({"text": "VOCLOSPORIN7.9MG"}, ("voclosporin",)),
        ({"text": "ketoconazole hydrochloride 200 mg"}, ("ketoconazole",)),
    ],
)
def test_a_medication_is_recognised_from_every_way_an_ehr_names_it(vocabulary, concept, drugs):
    assert identify(order(concept), vocabulary).drugs == drugs


@pytest.mark.parametrize(
    "text", ["Ritonavirus vaccine", "Oxyketoconazolex", "the voclosporinate salt", "codeine"]
)
def test_a_name_inside_another_word_is_not_a_hit(vocabulary, text):
    assert identify(order({"text": text}), vocabulary).drugs == ()


def test_a_code_is_preferred_to_a_name_in_how_the_drug_was_identified(vocabulary):
    found = identify(order(coded(RXNORM, "197853", "ketoconazole 200 MG")), vocabulary)
    assert found.how == (
        ("ketoconazole", "RxNorm 197853 (product ketoconazole-oral-tablet, knowledge)"),
    )


def test_a_medication_delivered_elsewhere_in_the_request_is_resolved_by_reference(vocabulary):
    medication = {"resourceType": "Medication", "id": "123", "code": coded(RXNORM, "900575")}
    resource = order(medicationReference={"reference": "Medication/123"})
    assert identify(resource, vocabulary).drugs == ()
    bundled = {"Medication/123": medication}
    assert identify(resource, vocabulary, bundled).drugs == ("ritonavir",)
    absolute = order(medicationReference={"reference": "https://ehr.example/fhir/Medication/123"})
    assert identify(absolute, vocabulary, bundled).drugs == ("ritonavir",)


def test_a_contained_medication_gives_its_ingredients_and_form(vocabulary):
    contained = {
        "resourceType": "Medication",
        "id": "med",
        "code": {"text": "Ketoconazole 2 %"},
        "form": {"text": "Cream"},
    }
    resource = order(medicationReference={"reference": "#med"}, contained=[contained])
    found = identify(resource, vocabulary)
    assert (found.drugs, found.exposure) == (("ketoconazole",), "local")


@pytest.mark.parametrize(
    ("concept", "route", "exposure"),
    [
        (coded(RXNORM, "203088"), None, "local"),
        (coded(RXNORM, "106336"), None, "local"),
        ({"text": "Restasis 0.05 % emulsion"}, None, "local"),
        (coded(RXNORM, "402092"), None, "local"),
        (coded(RXNORM, "241834"), None, "systemic"),
        (coded(RXNORM, "6135"), coded(SNOMED, "6064005"), "local"),
        (coded(RXNORM, "6135"), {"text": "Ophthalmic"}, "local"),
        (coded(RXNORM, "6135"), coded(SNOMED, "26643006"), "systemic"),
        # the product's dose form outweighs a contradictory route
        (coded(RXNORM, "197853"), coded(SNOMED, "6064005"), "systemic"),
        ({"text": "ketoconazole 200 mg oral tablet"}, {"text": "topical"}, "systemic"),
        ({"text": "ketoconazole"}, None, "systemic"),
    ],
)
def test_exposure_comes_from_the_product_then_the_route_or_form(
    vocabulary, concept, route, exposure
):
    dosage = [{"route": route}] if route else []
    assert identify(order(concept, dosageInstruction=dosage), vocabulary).exposure == exposure


def test_a_medication_statement_and_a_dstu2_order_are_read_like_a_request(vocabulary):
    statement = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"text": "Nizoral 200 mg"},
        "dosage": [{"route": coded(SNOMED, "26643006")}],
    }
    dstu2 = {"resourceType": "MedicationOrder", "medicationCodeableConcept": coded(RXNORM, "6135")}
    assert identify(statement, vocabulary).drugs == ("ketoconazole",)
    assert identify(dstu2, vocabulary).drugs == ("ketoconazole",)


# One interaction, every way of naming the interacting drug: a strong CYP3A4 inhibitor ordered
# for a patient on voclosporin is contraindicated however the order names it.
RITONAVIR_ORDERS = {
    "ingredient code": {"medicationCodeableConcept": coded(RXNORM, "85762")},
    "product code": {"medicationCodeableConcept": coded(RXNORM, "900575")},
    "11-digit NDC": {"medicationCodeableConcept": coded(NDC, "00069108506")},
    "hyphenated NDC": {"medicationCodeableConcept": coded(NDC, "0069-1085-06")},
    "brand name": {"medicationCodeableConcept": {"text": "Norvir 100 mg tablet"}},
    "combination name": {"medicationCodeableConcept": {"text": "lopinavir-ritonavir"}},
    "text-only sig": {"medicationCodeableConcept": {"text": "RITONAVIR100MG 1 tab twice daily"}},
    "bundled Medication": {"medicationReference": {"reference": "Medication/rtv"}},
}


@pytest.mark.parametrize("way", sorted(RITONAVIR_ORDERS))
def test_the_same_interaction_is_recognised_however_the_drug_is_named(kb, way):
    draft = {"resourceType": "MedicationRequest", "id": "rtv-order", "status": "draft"}
    draft |= {"intent": "order", "subject": {"reference": "Patient/case"}}
    draft |= RITONAVIR_ORDERS[way]
    case = {
        "medications": [
            {"id": "voc", "text": "voclosporin 7.9 MG Oral Capsule", "dose": "23.7 mg"}
        ],
        "draftOrders": [{"resource": draft}],
    }
    body = hook_request(case, "order-sign")
    medication = {"resourceType": "Medication", "id": "rtv", "code": coded(RXNORM, "317150")}
    body["context"]["draftOrders"]["entry"].append({"resource": medication})
    fired = {f.rule_id for f in assess(kb, "voclosporin-order-sign", body, NOW).findings}
    assert "contraindication.strong-cyp3a4-inhibitor" in fired


def test_a_topical_azole_keeps_its_drug_but_not_its_interaction_classes(kb):
    case = {
        "medications": [
            {"id": "voc", "text": "voclosporin 7.9 MG Oral Capsule", "dose": "23.7 mg"}
        ],
        "draftOrders": [{"id": "keto", "text": "ketoconazole 2 % topical cream"}],
    }
    prefetch = tuple(kb.services["voclosporin-order-sign"].prefetch)
    request = parse_request(hook_request(case, "order-sign"), "order-sign", prefetch)
    facts = patient_facts(kb, request, NOW).facts
    keto = next(f for f in facts if f.kind == "medication" and f.data["drug"] == "ketoconazole")
    assert (keto.data["exposure"], keto.data["classes"]) == ("local", [])
    assert keto.data["identified_by"].startswith('name "ketoconazole 2 % topical cream"')


def test_explain_shows_how_each_medication_was_identified_or_that_it_was_not(kb):
    case = {
        "medications": [
            {"id": "voc", "text": "voclosporin 7.9 MG Oral Capsule"},
            {"id": "keto", "text": "ketoconazole cream", "rxnorm": "203088"},
            {"id": "odd", "text": "Xyzzy 5 mg"},
        ],
    }
    text = explain(kb, hook_request(case, "patient-view"), now=NOW)
    assert (
        'MedicationRequest/voc "voclosporin 7.9 MG Oral Capsule", systemic: voclosporin: name'
        in text
    )
    assert (
        'MedicationRequest/keto "ketoconazole cream", local: ketoconazole: RxNorm 203088 '
        "(product ketoconazole-cream, knowledge)"
    ) in text
    assert 'MedicationRequest/odd "Xyzzy 5 mg", systemic: not recognised' in text
