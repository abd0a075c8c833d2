"""Every CDS Hooks request written by others (tests/fixtures/external/cds-hooks) gets a
defined answer: 200 with valid cards, 400 for what is not a valid request, 412 where the data
cannot be had. Never a 500."""

from __future__ import annotations

import json

import pytest

from cds_hooks import create_app
from conftest import EXTERNAL
from invariants import assert_valid_cards

FIXTURES = sorted((EXTERNAL / "cds-hooks").rglob("*.json"))
SERVICE_BY_HOOK = {
    "order-select": "voclosporin-order-select",
    "order-sign": "voclosporin-order-sign",
    "patient-view": "voclosporin-patient-view",
}
EXPECTED = {
    # invalid JSON as published
    "request-example-rec-08-order-sign-mme-greater-than-fifty.json": 400,
    # no prefetch, and an allowed fhirServer that cannot be reached: cards say what did not run
    "noPrefetch.json": 200,
    # prefetch keys that are not ours and no fhirServer: the data cannot be had
    "healthchain-patient-view-request.json": 412,
}


@pytest.fixture(scope="module")
def offline_client():
    # The fixtures' fhirServer hosts do not exist here: fail fast. Only noPrefetch.json's is
    # allowed; requests naming the others, with nothing prefetched, get 412.
    config = {"FHIR_TIMEOUT": 0.3, "FHIR_BUDGET": 0.5, "FHIR_SERVERS": "http://localhost:8080/fhir"}
    return create_app({"TESTING": True, "RELOAD_SECONDS": 0, **config}).test_client()


def service_for(raw: bytes) -> str:
    try:
        hook = json.loads(raw).get("hook")
    except (ValueError, AttributeError):
        hook = None
    return SERVICE_BY_HOOK.get(hook, "voclosporin-patient-view")


@pytest.mark.parametrize("path", FIXTURES, ids=[f"{p.parent.name}/{p.name}" for p in FIXTURES])
def test_external_request_gets_a_defined_answer(offline_client, path):
    raw = path.read_bytes()
    response = offline_client.post(
        f"/cds-services/{service_for(raw)}", data=raw, content_type="application/json"
    )
    assert response.status_code in (200, 400, 412), response.json
    assert response.is_json
    if path.name in EXPECTED:
        assert response.status_code == EXPECTED[path.name]
    if response.status_code == 200:
        assert_valid_cards(response.json)
    else:
        assert response.json["resourceType"] == "OperationOutcome"
