"""CDS Hooks 2.0 Service requirements, each verified and cited with its Inferno number.

Card requirements are checked over every card of every YAML case and every example request, so
a new card template is held to them the day it is written."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from cds_hooks import create_app
from invariants import assert_no_empty_values
from labelwise.cases import case_files, hook_request

CASES = Path(__file__).parent / "cases"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "requests"
SERVICE_BY_HOOK = {
    "order-sign": "voclosporin-order-sign",
    "order-select": "voclosporin-order-select",
    "patient-view": "voclosporin-patient-view",
}


def req(*ids: int) -> pytest.MarkDecorator:
    return pytest.mark.req(*(f"cds-hooks_2.0@{i}" for i in ids))


@pytest.fixture(scope="module")
def served():
    return create_app({"TESTING": True, "RELOAD_SECONDS": 0, "NOW": "2026-11-01"}).test_client()


@pytest.fixture(scope="module")
def responses(served, kb) -> list[dict]:
    """The JSON answer to every case and every example request."""
    found = []
    for path in case_files(CASES):
        case = yaml.safe_load(path.read_text())
        service = kb.services[case["service"]]
        served.application.config["NOW"] = str(case["now"])
        found.append(_post(served, service.id, hook_request(case, service.hook)).json)
    served.application.config["NOW"] = "2026-11-01"
    for path in sorted(EXAMPLES.glob("*.json")):
        body = json.loads(path.read_text())
        found.append(_post(served, SERVICE_BY_HOOK[body["hook"]], body).json)
    return found


@pytest.fixture(scope="module")
def cards(responses) -> list[dict]:
    every = [c for r in responses for c in r["cards"]]
    assert len(every) > 100  # the checks below are only as good as the cards they see
    return every


def _post(client, service: str, body) -> object:
    return client.post(f"/cds-services/{service}", json=body)


def _actions(cards: list[dict]) -> list[dict]:
    return [a for c in cards for s in c.get("suggestions", []) for a in s.get("actions", [])]


def _absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# Discovery


@req(4, 5, 6, 13, 16)
def test_discovery_is_a_get_on_cds_services_listing_services_that_answer_at_their_id(served):
    response = served.get("/cds-services")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    services = response.json["services"]
    assert isinstance(services, list) and services
    for service in services:
        answer = _post(served, service["id"], {"hook": service["hook"]})
        assert answer.status_code != 404


@req(7, 8, 9, 10, 11, 12)
def test_each_service_has_hook_title_description_id_and_may_have_prefetch_and_usage(served):
    for service in served.get("/cds-services").json["services"]:
        for field in ("hook", "title", "description", "id", "usageRequirements"):
            assert isinstance(service[field], str) and service[field].strip()
        assert isinstance(service["prefetch"], dict)
        assert "/" not in service["id"]


@req(29, 35, 36, 55, 56, 57, 59, 58)
def test_prefetch_templates_are_keyed_and_use_only_root_context_tokens_in_braces(served):
    for service in served.get("/cds-services").json["services"]:
        for key, template in service["prefetch"].items():
            assert key.isidentifier()
            assert template.count("{{") == template.count("}}")
            tokens = [t.split("}}")[0].strip() for t in template.split("{{")[1:]]
            assert set(tokens) <= {"context.patientId", "context.encounterId", "context.userId"}
            resource_type = template.split("?")[0].split("/")[0]
            assert resource_type[0].isupper() and "_include" not in template
            assert "_revinclude" not in template and "$" not in template


# Requests and responses


@req(1, 74, 75, 77, 28)
def test_an_order_with_nothing_to_say_gets_200_and_an_empty_cards_list(served):
    body = json.loads((EXAMPLES / "order-sign-unrelated-order.json").read_text())
    response = _post(served, "voclosporin-order-sign", body)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.json == {"cards": []}


@req(1, 14, 76)
def test_a_request_that_is_not_json_gets_a_json_4xx(served):
    response = served.post(
        "/cds-services/voclosporin-order-sign", data="<xml/>", content_type="application/xml"
    )
    assert response.status_code == 400
    assert response.json["resourceType"] == "OperationOutcome"


@req(54)
def test_no_prefetch_and_no_fhir_server_is_412(served):
    body = json.loads((EXAMPLES / "order-sign-voclosporin-with-ketoconazole.json").read_text())
    body.pop("prefetch")
    body.pop("fhirServer", None)
    assert _post(served, "voclosporin-order-sign", body).status_code == 412


def _ketoconazole_with_medications(value) -> dict:
    body = json.loads((EXAMPLES / "order-sign-voclosporin-with-ketoconazole.json").read_text())
    body.pop("fhirServer", None)
    body["prefetch"]["medications"] = value
    return body


ERROR_OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "timeout", "diagnostics": "search timed out"}],
}


@req(52)
@pytest.mark.parametrize(
    "answer",
    [
        ERROR_OUTCOME,
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": ERROR_OUTCOME}]},
    ],
    ids=["operation-outcome", "bundle-carrying-an-error"],
)
def test_prefetch_answered_with_an_error_outcome_is_not_read_as_data(served, answer):
    cards = _post(served, "voclosporin-order-sign", _ketoconazole_with_medications(answer)).json
    rules = {c["extension"]["org.labelwise.explanation"]["ruleId"] for c in cards["cards"]}
    assert "data.medications-unavailable" in rules


def test_a_bundle_carrying_only_an_informational_outcome_is_still_data(served):
    body = json.loads((EXAMPLES / "order-sign-voclosporin-with-ketoconazole.json").read_text())
    medications = copy.deepcopy(body["prefetch"]["medications"])
    info = {"resourceType": "OperationOutcome", "issue": [{"severity": "information"}]}
    medications.setdefault("entry", []).append({"resource": info})
    cards = _post(served, "voclosporin-order-sign", _ketoconazole_with_medications(medications))
    rules = {c["extension"]["org.labelwise.explanation"]["ruleId"] for c in cards.json["cards"]}
    assert "data.medications-unavailable" not in rules


# Cards, over every card of every case


@req(3)
def test_no_response_carries_null_or_empty_members(responses):
    for response in responses:
        for card in response["cards"]:
            assert_no_empty_values(card)


@req(80, 81, 82)
def test_every_card_has_a_unique_string_uuid(cards):
    uuids = [c["uuid"] for c in cards]
    assert all(isinstance(u, str) for u in uuids) and len(set(uuids)) == len(uuids)


@req(83, 84, 85)
def test_every_summary_is_a_string_under_140_characters_and_detail_is_markdown_text(cards):
    for card in cards:
        assert isinstance(card["summary"], str) and len(card["summary"]) < 140
        assert isinstance(card.get("detail", ""), str)
        assert "<script" not in card.get("detail", "").lower()


@req(87, 88)
def test_every_card_has_an_indicator_of_info_warning_or_critical(cards):
    assert {c["indicator"] for c in cards} == {"info", "warning", "critical"}


@req(90, 105, 106, 107, 108, 111, 113)
def test_every_card_has_a_source_with_a_label_and_an_absolute_url(cards):
    for card in cards:
        assert isinstance(card["source"]["label"], str) and card["source"]["label"]
        assert _absolute(card["source"]["url"])
        assert _absolute(card["source"].get("icon", "https://icon.example/"))


@req(109)
def test_source_url_is_the_label_itself_never_a_patient_specific_drill_down(cards):
    assert len({c["source"]["url"] for c in cards}) <= 2  # one prescribing information per label


@req(92, 93, 94, 95, 96, 117, 118, 119, 120, 121, 122, 123, 124)
def test_suggestions_are_labelled_with_uuids_and_a_selection_behaviour(cards):
    with_suggestions = [c for c in cards if "suggestions" in c]
    assert with_suggestions
    for card in with_suggestions:
        assert card["selectionBehavior"] in ("at-most-one", "any")
        for suggestion in card["suggestions"]:
            assert isinstance(suggestion["label"], str) and suggestion["label"]
            assert isinstance(suggestion["uuid"], str)
            assert isinstance(suggestion.get("isRecommended", False), bool)
            assert isinstance(suggestion.get("actions", []), list)


@req(127, 128, 129, 130, 131)
def test_every_action_has_a_type_and_description_and_creates_a_whole_resource(cards):
    actions = _actions(cards)
    assert {a["type"] for a in actions} >= {"create", "delete"}
    for action in actions:
        assert action["type"] in ("create", "update", "delete")
        assert isinstance(action["description"], str) and action["description"]
        if action["type"] == "create":
            assert action["resource"]["resourceType"] and "status" in action["resource"]


@req(132)
def test_an_update_action_carries_the_whole_updated_resource(cards):
    for action in (a for a in _actions(cards) if a["type"] == "update"):
        resource = action["resource"]
        for field in ("resourceType", "id", "status", "intent", "subject"):
            assert field in resource, field


@req(133, 134, 135)
def test_a_delete_action_names_the_resource_by_resource_id_only(cards):
    deletes = [a for a in _actions(cards) if a["type"] == "delete"]
    assert deletes
    for action in deletes:
        assert isinstance(action["resourceId"], str) and "resource" not in action


@req(98, 99, 100, 136, 216, 217, 218, 219)
def test_override_reasons_are_codings_with_system_code_and_display(cards):
    reasons = [r for c in cards for r in c.get("overrideReasons", [])]
    assert reasons
    for reason in reasons:
        for field in ("system", "code", "display"):
            assert isinstance(reason[field], str) and reason[field].strip()


@req(103, 104, 138, 139, 140, 141, 142, 144, 145, 146, 147)
def test_links_are_labelled_absolute_urls_without_app_context(cards):
    for link in (link for c in cards for link in c.get("links", [])):
        assert isinstance(link["label"], str) and link["label"]
        assert link["type"] in ("absolute", "smart")
        assert _absolute(link["url"])
        if link["type"] == "absolute":
            assert "appContext" not in link


@req(115, 116, 220)
def test_a_source_topic_when_present_is_a_coding(cards):
    for topic in (c["source"]["topic"] for c in cards if "topic" in c["source"]):
        assert isinstance(topic["code"], str) and isinstance(topic["system"], str)


@req(214, 215)
def test_extensions_are_objects_under_reverse_domain_names(cards):
    for card in cards:
        for name, value in card.get("extension", {}).items():
            assert isinstance(value, dict)
            assert name.startswith("org.labelwise.")


def test_a_marker_naming_an_unknown_requirement_stops_the_run(tmp_path):
    (tmp_path / "test_cites.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.req('cds-hooks_2.0@9999')\n"
        "def test_cites_nothing_real():\n    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "conformance_plugin", str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "unknown CDS Hooks requirement ids: cds-hooks_2.0@9999" in done.stderr + done.stdout


def test_the_matrix_lists_every_service_requirement_with_its_evidence(tmp_path):
    from labelwise import conformance

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"passed": {"cds-hooks_2.0@83": ["tests/x.py::test_y"]}}))
    conformance.write_matrix(tmp_path / "conformance.md", results)
    text = (tmp_path / "conformance.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| [")]
    assert len(rows) == len(conformance.requirements()) == 120
    assert "`tests/x.py::test_y`" in next(r for r in rows if r.startswith("| [83]"))
    assert "n/a: Binds the client" in next(r for r in rows if r.startswith("| [78]"))
    assert "**open**" in next(r for r in rows if r.startswith("| [2]"))
