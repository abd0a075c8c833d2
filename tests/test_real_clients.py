"""Requests real clients sent (the HL7 CDS Hooks sandbox, captured) get the right cards, and the
interoperability checks every card passes (the CDS Hooks schema, HealthChain's models) do refuse
what those clients refuse."""

from __future__ import annotations

import copy
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from pydantic import ValidationError

from cds_hooks import create_app
from conftest import external
from invariants import assert_interoperable, assert_valid_cards

CAPTURED = ("cds-hooks", "sandbox-captured")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SANDBOX = "https://sandbox.cds-hooks.org"


@pytest.fixture(scope="module")
def sandbox_client():
    # The captured fhirServer (a loopback port) is allowed but gone: fetches of absent keys fail
    # fast, as they would for an EHR whose server is down.
    allowed = {"FHIR_SERVERS": ["http://127.0.0.1:8103/fhir/R4"]}
    config = {"TESTING": True, "RELOAD_SECONDS": 0, "NOW": "2026-11-22", **allowed}
    return create_app({**config, "FHIR_TIMEOUT": 0.3, "FHIR_BUDGET": 0.5}).test_client()


def captured(name: str) -> dict:
    return external(*CAPTURED, f"sandbox-{name}-request.json")


def ketoconazole_order_sign() -> dict:
    """The issue's scenario, derived from the captured sandbox order-sign (same shape: `category`
    an object, draftOrders Bundle without `type`). Only the drafted medication is swapped to
    ketoconazole (RxNorm 6135) and a current voclosporin order added to the prefetch."""
    body = captured("order-sign")
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    name = "Ketoconazole 200 MG Oral Tablet"
    draft["medicationCodeableConcept"] = {
        "text": name,
        "coding": [{"display": name, "system": RXNORM, "code": "6135"}],
    }
    voclosporin = {
        **copy.deepcopy(draft),
        "id": "voclosporin-current",
        "status": "active",
        "authoredOn": "2026-09-01",
        "medicationCodeableConcept": {"text": "voclosporin 7.9 MG Oral Capsule"},
    }
    voclosporin["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {
        "value": 23.7,
        "unit": "mg",
    }
    entry = [{"resource": voclosporin}]
    body["prefetch"]["medications"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": entry,
    }
    return body


def cards(client, body: dict) -> list[dict]:
    response = client.post(f"/cds-services/voclosporin-{body['hook']}", json=body)
    assert response.status_code == 200, response.json
    return assert_valid_cards(response.json)


def rule(card: dict) -> str:
    return card["extension"]["org.labelwise.explanation"]["ruleId"]


def test_the_sandbox_ketoconazole_order_gives_one_critical_contraindication_card(sandbox_client):
    body = ketoconazole_order_sign()
    assert isinstance(body["context"]["draftOrders"]["entry"][0]["resource"]["category"], dict)
    (card,) = cards(sandbox_client, body)
    assert card["indicator"] == "critical"
    assert rule(card) == "contraindication.strong-cyp3a4-inhibitor"
    assert "Ketoconazole" in card["summary"]


def test_the_captured_cyclosporine_order_says_the_medication_list_could_not_be_had(
    sandbox_client,
):
    # The sandbox sent only the patient; its FHIR server is not reachable from here.
    (card,) = cards(sandbox_client, captured("order-sign"))
    assert rule(card) == "data.medications-unavailable"
    assert "Cyclosporine 25 MG Oral Capsule" in card["detail"]


def test_the_captured_order_select_with_no_medication_chosen_yet_gives_no_cards(sandbox_client):
    assert cards(sandbox_client, captured("order-select")) == []


def test_the_captured_patient_view_of_a_patient_not_on_voclosporin_gives_no_cards(
    sandbox_client,
):
    assert cards(sandbox_client, captured("patient-view")) == []


def test_healthchain_refuses_a_suggestion_without_is_recommended(sandbox_client):
    (card,) = cards(sandbox_client, ketoconazole_order_sign())
    for suggestion in card["suggestions"]:
        del suggestion["isRecommended"]
    with pytest.raises(ValidationError, match="isRecommended"):
        assert_interoperable({"cards": [card]})


def test_the_cds_hooks_schema_refuses_a_card_without_a_source(sandbox_client):
    (card,) = cards(sandbox_client, ketoconazole_order_sign())
    del card["source"]
    with pytest.raises(AssertionError, match="source"):
        assert_interoperable({"cards": [card]})


def sandbox_token(key, url: str) -> str:
    """A JWT shaped like the sandbox's: ES384, a `kid` and a `jku` naming its own JWKS."""
    now = int(time.time())
    claims = {"iss": SANDBOX, "aud": url, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    headers = {"kid": "sandbox-1", "typ": "JWT", "jku": f"{SANDBOX}/.well-known/jwks.json"}
    return jwt.encode(claims, key, algorithm="ES384", headers=headers)


@pytest.mark.req("cds-hooks_2.0@195", "cds-hooks_2.0@199")
def test_a_sandbox_jwt_is_checked_against_the_configured_keys_never_its_jku(tmp_path):
    trusted, stranger = (
        ec.generate_private_key(ec.SECP384R1()),
        ec.generate_private_key(ec.SECP384R1()),
    )
    public = json.loads(ECAlgorithm.to_jwk(trusted.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "sandbox-1"}]}))
    config = {
        "TESTING": True,
        "RELOAD_SECONDS": 0,
        "NOW": "2026-11-22",
        "JWT_ISSUERS": {SANDBOX: {"jwks_file": str(tmp_path / "jwks.json")}},
        "JWT_AUDIENCE_BASE": "http://localhost",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'jwt.db'}",
    }
    client = create_app(config).test_client()
    path = "/cds-services/voclosporin-patient-view"
    body = captured("patient-view")
    for key, status in ((trusted, 200), (stranger, 401)):
        bearer = sandbox_token(key, f"http://localhost{path}")
        response = client.post(path, json=body, headers={"Authorization": f"Bearer {bearer}"})
        assert response.status_code == status
