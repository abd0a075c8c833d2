"""The HTTP surface, through the Flask test client built by create_app."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from cds_hooks import create_app
from invariants import assert_no_empty_values, assert_valid_cards
from labelwise.examples import write_examples

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "requests"
EXPECTED = {
    "order-sign-voclosporin-with-ketoconazole.json": {"contraindication.strong-cyp3a4-inhibitor"},
    "order-select-fluconazole-for-patient-on-voclosporin.json": {"dose.moderate-cyp3a4-inhibitor"},
    "order-sign-voclosporin-above-starting-dose.json": {"dose.above-starting-dose"},
    "order-sign-voclosporin-start.json": {"course.initiation-counselling"},
    "order-sign-live-vaccine-for-patient-on-voclosporin.json": {"vaccine.live"},
    "patient-view-egfr-fall.json": {"renal.egfr-fall-reduce"},
    "order-sign-unrelated-order.json": set(),
}
SERVICE_BY_HOOK = {
    "order-sign": "voclosporin-order-sign",
    "order-select": "voclosporin-order-select",
    "patient-view": "voclosporin-patient-view",
}


def post(client, service: str, body) -> object:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/cds-services/{service}", data=data, content_type="application/json")


def rule_ids(cards) -> set[str]:
    return {c["extension"]["org.labelwise.explanation"]["ruleId"] for c in cards}


def test_discovery_lists_the_three_services_with_their_hooks(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json["services"]}
    assert {s["hook"] for s in services.values()} == {"order-select", "order-sign", "patient-view"}
    assert_no_empty_values(response.json)
    for service in services.values():
        assert service["description"] and service["title"]
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"


def test_prefetch_templates_use_only_root_context_tokens_and_expanded_codes(client):
    for service in client.get("/cds-services").json["services"]:
        for template in service["prefetch"].values():
            assert "${" not in template
            tokens = [t.split("}}")[0] for t in template.split("{{")[1:]]
            assert set(tokens) <= {"context.patientId"}
    egfr = service["prefetch"]["egfr"]
    assert "http://loinc.org|33914-3" in egfr and "http://loinc.org|98979-8" in egfr


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_example_request_gets_its_expected_cards(client, name):
    body = json.loads((EXAMPLES / name).read_text())
    response = post(client, SERVICE_BY_HOOK[body["hook"]], body)
    assert response.status_code == 200
    cards = assert_valid_cards(response.json)
    assert rule_ids(cards) == EXPECTED[name]


def test_every_example_file_has_an_expectation():
    assert {p.name for p in EXAMPLES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("day", ["2028-02-29", "2031-07-15"])
def test_every_example_moved_to_another_day_gets_the_same_cards(tmp_path, day):
    app = create_app({"TESTING": True, "RELOAD_SECONDS": 0, "NOW": day})
    for path in write_examples(date.fromisoformat(day), tmp_path):
        body = json.loads(path.read_text())
        response = post(app.test_client(), SERVICE_BY_HOOK[body["hook"]], body)
        assert rule_ids(assert_valid_cards(response.json)) == EXPECTED[path.name], path.name


def test_ketoconazole_example_returns_a_critical_card_suggesting_to_remove_the_draft(client):
    body = json.loads((EXAMPLES / "order-sign-voclosporin-with-ketoconazole.json").read_text())
    (card,) = post(client, "voclosporin-order-sign", body).json["cards"]
    assert card["indicator"] == "critical"
    assert "Contraindicated" in card["summary"] and "ketoconazole" in card["summary"]
    assert card["source"]["label"] == "LUPKYNIS prescribing information §4"
    (action,) = card["suggestions"][0]["actions"]
    assert action == {**action, "type": "delete", "resourceId": "MedicationRequest/keto"}
    explanation = card["extension"]["org.labelwise.explanation"]
    refs = {f["reference"] for f in explanation["facts"]}
    assert refs == {"MedicationRequest/voc-active", "MedicationRequest/keto"}


def test_moderate_inhibitor_card_suggests_a_new_order_replacing_the_active_voclosporin(client):
    body = json.loads(
        (EXAMPLES / "order-select-fluconazole-for-patient-on-voclosporin.json").read_text()
    )
    (card,) = post(client, "voclosporin-order-select", body).json["cards"]
    assert card["indicator"] == "warning"
    (action,) = card["suggestions"][0]["actions"]
    assert action["type"] == "create"  # an active order is replaced, never edited in place
    resource = action["resource"]
    assert "id" not in resource and resource["status"] == "draft"
    assert resource["priorPrescription"] == {"reference": "MedicationRequest/voc-active"}
    doses = [d["doseAndRate"][0]["doseQuantity"] for d in resource["dosageInstruction"]]
    assert [(d["value"], d["code"]) for d in doses] == [(15.8, "mg"), (7.9, "mg")]
    texts = [d["text"] for d in resource["dosageInstruction"]]
    assert "morning" in texts[0] and "evening" in texts[1]
    assert not any("timeOfDay" in d["timing"]["repeat"] for d in resource["dosageInstruction"])


def test_egfr_fall_card_names_the_new_dose_and_the_values_used(client):
    body = json.loads((EXAMPLES / "patient-view-egfr-fall.json").read_text())
    (card,) = post(client, "voclosporin-patient-view", body).json["cards"]
    assert card["summary"] == (
        "Reduce voclosporin to 15.8 mg twice daily: eGFR 54 is 23% below baseline 70"
    )
    assert "2026-10-20" in card["detail"]
    explanation = card["extension"]["org.labelwise.explanation"]
    assert any(
        f["values"].get("baseline_ref") == "Observation/egfr-base" for f in explanation["facts"]
    )
    (action,) = card["suggestions"][0]["actions"]
    (dosage,) = action["resource"]["dosageInstruction"]
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 15.8
    assert dosage["timing"]["repeat"]["frequency"] == 2 and dosage["text"] == "15.8 mg twice daily"
    assert action["type"] == "create" and action["resource"]["status"] == "draft"


def test_above_starting_dose_card_names_23_7_mg(client):
    body = json.loads((EXAMPLES / "order-sign-voclosporin-above-starting-dose.json").read_text())
    (card,) = post(client, "voclosporin-order-sign", body).json["cards"]
    assert "23.7 mg" in card["summary"] and "63.2 mg" in card["summary"]


def assert_operation_outcome(response, status: int, words: str) -> None:
    assert response.status_code == status
    assert response.is_json and response.json["resourceType"] == "OperationOutcome"
    assert words in response.json["issue"][0]["diagnostics"]


def test_malformed_json_is_a_400_naming_the_problem(client):
    assert_operation_outcome(
        post(client, "voclosporin-order-sign", "{not json"), 400, "not valid JSON"
    )


def test_missing_hook_is_a_400(client):
    body = {"hookInstance": "x", "context": {"patientId": "p"}}
    assert_operation_outcome(post(client, "voclosporin-patient-view", body), 400, "'hook'")


def test_missing_context_is_a_400(client):
    body = {"hook": "patient-view", "hookInstance": "x"}
    assert_operation_outcome(post(client, "voclosporin-patient-view", body), 400, "'context'")


def test_order_sign_without_draft_orders_is_a_400(client):
    body = {"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "p"}}
    assert_operation_outcome(post(client, "voclosporin-order-sign", body), 400, "draftOrders")


def test_hook_that_does_not_match_the_service_is_a_400(client):
    body = {"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "p"}}
    assert_operation_outcome(post(client, "voclosporin-patient-view", body), 400, "patient-view")


def test_prefetch_value_that_is_not_a_resource_is_a_400(client):
    body = {
        "hook": "patient-view",
        "hookInstance": "x",
        "context": {"patientId": "p"},
        "prefetch": {"medications": [1]},
    }
    assert_operation_outcome(
        post(client, "voclosporin-patient-view", body), 400, "prefetch.medications"
    )


def test_body_that_is_not_an_object_is_a_400(client):
    assert_operation_outcome(post(client, "voclosporin-patient-view", "[1, 2]"), 400, "JSON object")


def test_deeply_nested_json_is_a_400_not_a_500(client):
    body = '{"hook": ' + "[" * 100000 + "]" * 100000 + "}"
    assert_operation_outcome(
        post(client, "voclosporin-patient-view", body), 400, "nested too deeply"
    )


def test_unknown_service_is_a_404_json_error(client):
    response = post(client, "no-such-service", {"hook": "patient-view"})
    assert_operation_outcome(response, 404, "no-such-service")


def test_get_on_a_service_is_a_405_json_error(client):
    response = client.get("/cds-services/voclosporin-order-sign")
    assert response.status_code == 405 and response.json["resourceType"] == "OperationOutcome"


def test_request_over_the_size_limit_is_a_413_json_error(client):
    response = post(client, "voclosporin-patient-view", "x" * (6 * 1024 * 1024))
    assert response.status_code == 413 and response.json["resourceType"] == "OperationOutcome"


@pytest.mark.req("cds-hooks_2.0@208")
def test_cors_preflight_allows_authorization_and_content_type(client):
    response = client.options(
        "/cds-services/voclosporin-order-sign",
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")
