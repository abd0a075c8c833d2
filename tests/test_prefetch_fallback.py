"""Prefetch semantics against a real FHIR server (Medplum's router with Synthea data loaded):
absent keys are fetched with the bearer token from an allowed server, null keys are not,
failures become cards that say the data could not be fetched (never why, on the network)."""

from __future__ import annotations

import time

import pytest

from cds_hooks import create_app
from conftest import ASA, FHIR_TOKEN, free_port, start_fhir_server
from fhir_adapter.fetch import NOT_FETCHED
from invariants import assert_valid_cards

VOCLOSPORIN_DRAFT = {
    "resourceType": "MedicationRequest",
    "id": "voc-draft",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": f"Patient/{ASA}"},
    "medicationCodeableConcept": {"text": "voclosporin 7.9 MG Oral Capsule"},
}


def client_with(timeout: float, budget: float, servers: list[str]):
    config = {"FHIR_TIMEOUT": timeout, "FHIR_BUDGET": budget, "FHIR_SERVERS": servers}
    return create_app(
        {"TESTING": True, "RELOAD_SECONDS": 0, "NOW": "2026-11-01", **config}
    ).test_client()


@pytest.fixture(scope="module")
def fetching_client(fhir_server):
    # The in-memory server answers each Observation search in about half a second.
    return client_with(timeout=4.0, budget=6.0, servers=[fhir_server])


def impatient_client(server: str):
    return client_with(timeout=0.5, budget=1.0, servers=[server])


def order_sign(
    server: str | None, token: str | None = FHIR_TOKEN, prefetch: dict | None = None
) -> dict:
    body = {
        "hook": "order-sign",
        "hookInstance": "f1",
        "context": {
            "patientId": ASA,
            "userId": "Practitioner/1",
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": VOCLOSPORIN_DRAFT}]},
        },
    }
    if server:
        body["fhirServer"] = server
    if token:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "labelwise",
        }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def gaps(response) -> dict[str, str]:
    cards = assert_valid_cards(response.json)
    found = {}
    for card in cards:
        for fact in card["extension"]["org.labelwise.explanation"]["facts"]:
            if fact["kind"] == "unavailable":
                found[fact["values"]["data"]] = fact["values"]["reason"]
    return found


def rule_ids(response) -> set[str]:
    return {c["extension"]["org.labelwise.explanation"]["ruleId"] for c in response.json["cards"]}


@pytest.mark.req("cds-hooks_2.0@34", "cds-hooks_2.0@60", "cds-hooks_2.0@61")
def test_absent_prefetch_is_fetched_from_the_fhir_server_with_the_bearer_token(
    fetching_client, fhir_server
):
    response = fetching_client.post(
        "/cds-services/voclosporin-order-sign", json=order_sign(fhir_server)
    )
    assert response.status_code == 200
    # Asa has blood pressures but no eGFR on record: only that gap remains, and it is real
    assert gaps(response) == {"egfr": "no usable eGFR result on record"}
    assert "data.baseline-egfr-missing" in rule_ids(response)
    assert "data.baseline-bp-missing" not in rule_ids(response)


def test_a_wrong_token_means_the_checks_say_they_could_not_run(fetching_client, fhir_server):
    response = fetching_client.post(
        "/cds-services/voclosporin-order-sign", json=order_sign(fhir_server, token="wrong")
    )
    assert response.status_code == 200
    found = gaps(response)
    assert found["medications"] == found["allergies"] == NOT_FETCHED


def test_null_prefetch_keys_are_not_fetched(fetching_client, fhir_server):
    prefetch = {"medications": None, "allergies": None}
    response = fetching_client.post(
        "/cds-services/voclosporin-order-sign",
        json=order_sign(fhir_server, token="wrong", prefetch=prefetch),
    )
    found = gaps(response)
    assert "medications" not in found and "allergies" not in found


@pytest.mark.req("cds-hooks_2.0@52")
def test_an_operation_outcome_prefetch_value_is_fetched_again(fetching_client, fhir_server):
    failed = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    response = fetching_client.post(
        "/cds-services/voclosporin-order-sign",
        json=order_sign(fhir_server, prefetch={"allergies": failed}),
    )
    assert "allergies" not in gaps(response)


def test_a_server_that_is_down_is_reported_within_the_budget():
    down = f"http://127.0.0.1:{free_port()}/fhir/R4"
    client = impatient_client(down)
    start = time.monotonic()
    response = client.post("/cds-services/voclosporin-order-sign", json=order_sign(down))
    assert response.status_code == 200 and time.monotonic() - start < 1.5
    assert gaps(response)["medications"] == NOT_FETCHED


def test_a_slow_server_is_cut_off_by_the_timeout_and_the_budget():
    proc, slow = start_fhir_server({"FHIR_TOKEN": FHIR_TOKEN, "FHIR_DELAY_MS": "3000"})
    try:
        client = impatient_client(slow)
        start = time.monotonic()
        response = client.post("/cds-services/voclosporin-order-sign", json=order_sign(slow))
        elapsed = time.monotonic() - start
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert response.status_code == 200 and elapsed < 1.5
    assert gaps(response)["medications"] == NOT_FETCHED


@pytest.mark.req("cds-hooks_2.0@54")
def test_no_prefetch_and_no_fhir_server_is_a_412(fetching_client):
    response = fetching_client.post(
        "/cds-services/voclosporin-order-sign", json=order_sign(None, token=None)
    )
    assert response.status_code == 412
    assert response.json["resourceType"] == "OperationOutcome"


@pytest.fixture()
def garbage_server():
    """A server that answers every request with something that is not FHIR JSON."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Garbage(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.end_headers()
            self.wfile.write(b"<html>not fhir</html>")

        def log_message(self, *args):
            return None

    server = HTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/fhir"
    server.shutdown()


def test_a_server_returning_garbage_is_reported_as_not_fetched(garbage_server):
    response = impatient_client(garbage_server).post(
        "/cds-services/voclosporin-order-sign", json=order_sign(garbage_server)
    )
    assert response.status_code == 200
    assert gaps(response)["medications"] == NOT_FETCHED
