"""The fhirServer fallback is not an attack surface: only allowed servers are called, hostile
context values never leave the base path, every response is bounded in size and time, the
cards do not tell an open port from a closed one, and the logs carry no URL, id or token."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_prefetch_fallback import gaps, order_sign

from cds_hooks import ConfigError, create_app
from cds_hooks.config import load_config
from conftest import free_port
from fhir_adapter.fetch import NOT_ALLOWED, NOT_FETCHED, allowed

SERVICE = "/cds-services/voclosporin-order-sign"
PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1990-01-01"}
BUDGET, MARGIN = 1.5, 1.0  # seconds: the fetch deadline, and what a test allows on top of it


class Stub:
    """A loopback HTTP server whose GET handler is `behaviour(handler, stop)`; it records each
    request's path and Authorization header, and whether the client hung up mid-answer."""

    def __init__(self, behaviour: Callable[[BaseHTTPRequestHandler, threading.Event], None]):
        self.requests: list[tuple[str, str | None]] = []
        self.stop, self.hung_up = threading.Event(), threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                stub.requests.append((self.path, self.headers.get("Authorization")))
                try:
                    behaviour(self, stub.stop)
                except (BrokenPipeError, ConnectionResetError):
                    stub.hung_up.set()  # the service closed the connection, as it should

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/fhir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def stub() -> Iterator[Callable[..., Stub]]:
    started: list[Stub] = []

    def start(behaviour) -> Stub:
        started.append(Stub(behaviour))
        return started[-1]

    yield start
    for server in started:
        server.close()


def answer(status: int, body: dict | None = None, headers: dict | None = None):
    def behaviour(handler, stop):
        content = json.dumps(body or {}).encode()
        handler.send_response(status)
        for name, value in {"Content-Length": str(len(content)), **(headers or {})}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(content)

    return behaviour


def endless(handler, stop):
    """200, then a body that never ends (64 KiB at a time, never held in memory here)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/fhir+json")
    handler.end_headers()
    handler.wfile.write(b'{"resourceType": "Bundle", "type": "searchset", "entry": [')
    chunk = b'{"resource": {"resourceType": "Basic"}},' * 1600
    while not stop.is_set():
        handler.wfile.write(chunk)


def drip(handler, stop):
    """200, then one byte every 0.2 s: no single read ever times out."""
    handler.send_response(200)
    handler.end_headers()
    while not stop.wait(0.2):
        handler.wfile.write(b" ")
        handler.wfile.flush()


def silent(handler, stop):
    stop.wait(30)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    database = tmp_path_factory.mktemp("outbound") / "outbound.db"
    config = {
        "TESTING": True,
        "RELOAD_SECONDS": 0,
        "NOW": "2026-11-01",
        "DATABASE_URL": f"sqlite:///{database}",
        "FHIR_TIMEOUT": 1.0,
        "FHIR_BUDGET": BUDGET,
        "FHIR_MAX_BYTES": 1024 * 1024,
    }
    return create_app(config)


@pytest.fixture()
def allow(app) -> Iterator[Callable[..., None]]:
    """Set FHIR_SERVERS (and other fetch settings) for one test."""
    saved = dict(app.config)

    def set_servers(*servers: str, **settings) -> None:
        app.config.update(
            {"FHIR_SERVERS": list(servers), **{f"FHIR_{k.upper()}": v for k, v in settings.items()}}
        )

    yield set_servers
    app.config.update(saved)


def post(app, server: str, prefetch: dict | None = None, patient_id: str = "p1", token="tok"):
    body = order_sign(server, token=token, prefetch=prefetch)
    body["context"]["patientId"] = patient_id
    return app.test_client().post(SERVICE, json=body)


def timed(call: Callable[[], object]) -> tuple[object, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("https://ehr.example.org/fhir", True),
        ("https://ehr.example.org/fhir/", True),
        ("https://ehr.example.org/fhir/R4", True),
        ("https://EHR.example.org:443/fhir", True),
        ("https://ehr.example.org/fhirx", False),
        ("https://ehr.example.org/", False),
        ("https://ehr.example.org.evil.com/fhir", False),
        ("https://evil.com/ehr.example.org/fhir", False),
        ("https://evil.com\\@ehr.example.org/fhir", False),
        ("https://user:pw@ehr.example.org/fhir", False),
        ("https://ehr.example.org:8443/fhir", False),
        ("http://ehr.example.org/fhir", False),
        ("https://ehr.example.org/fhir?x=1", False),
        ("https://ehr.example.org/fhir#x", False),
        ("https://ehr.example.org/fhir/../admin", False),
        ("https://ehr.example.org/fhir/%2e%2e/admin", False),
        ("https://ehr.example.org/fhir%2F..%2Fadmin", False),
        ("http://[::1]:8080/fhir", True),
        ("http://[::1]:8081/fhir", False),
        ("not a url", False),
        ("file:///etc/passwd", False),
    ],
)
def test_a_fhir_server_is_allowed_only_at_or_below_an_allowed_base(server, expected):
    bases = ["https://ehr.example.org/fhir", "http://[::1]:8080/fhir"]
    assert allowed(server, bases) is expected


def test_no_fhir_server_is_called_unless_it_is_on_the_allowlist(app, stub):
    listener = stub(answer(200, PATIENT))
    response = post(app, listener.url, prefetch={"patient": PATIENT})
    assert response.status_code == 200
    assert listener.requests == []
    assert gaps(response)["medications"] == NOT_ALLOWED


def test_without_prefetch_a_server_not_allowed_is_a_412_that_names_no_address(app, stub):
    listener = stub(answer(200, PATIENT))
    response = post(app, listener.url)
    assert response.status_code == 412
    assert response.json["resourceType"] == "OperationOutcome"
    diagnostics = response.json["issue"][0]["diagnostics"]
    assert "not one this service is allowed" in diagnostics
    assert "127.0.0.1" not in diagnostics and str(listener.server.server_port) not in diagnostics
    assert listener.requests == []


def test_a_closed_port_and_an_open_one_read_the_same_in_the_cards(app, stub, allow):
    open_port = stub(answer(404, {"resourceType": "OperationOutcome"}))
    closed = f"http://127.0.0.1:{free_port()}/fhir"
    allow(open_port.url, closed)
    texts = []
    for server in (open_port.url, closed):
        response = post(app, server, prefetch={"patient": PATIENT})
        assert gaps(response)["medications"] == NOT_FETCHED
        # what a clinician reads; card uuids are random hex and may contain "404"
        texts.append(json.dumps([(c["summary"], c.get("detail")) for c in response.json["cards"]]))
    for text in texts:
        assert "404" not in text and "reached" not in text and "127.0.0.1" not in text
    assert open_port.requests  # the open one was called: the cards still cannot tell


@pytest.mark.parametrize(
    "patient_id",
    ["../../admin", "p1/../../x", "p1?_format=xml", "p1#x", "p1%2F..%2Fx", "..", "p 1", "pé"],
)
def test_hostile_context_values_never_leave_the_base_path(app, stub, allow, patient_id):
    listener = stub(answer(200, PATIENT))
    allow(listener.url)
    response = post(app, listener.url, prefetch={"patient": PATIENT}, patient_id=patient_id)
    assert response.status_code == 200
    assert listener.requests == []  # refused before any call, not encoded into one
    assert gaps(response)["medications"] == "a context value it needs is not a valid FHIR id"


def test_redirects_are_not_followed(app, stub, allow):
    elsewhere = stub(answer(200, PATIENT))
    redirecting = stub(answer(302, headers={"Location": elsewhere.url + "/Patient/p1"}))
    allow(redirecting.url, elsewhere.url)
    response = post(app, redirecting.url, prefetch={"patient": PATIENT})
    assert gaps(response)["medications"] == NOT_FETCHED
    assert elsewhere.requests == []


def test_a_next_link_to_another_server_is_not_followed_and_no_partial_list_is_kept(
    app, stub, allow
):
    elsewhere = stub(answer(200, {"resourceType": "Bundle", "type": "searchset"}))
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "next", "url": elsewhere.url + "/MedicationRequest?page=2"}],
    }
    first = stub(answer(200, page))
    allow(first.url)
    response = post(app, first.url, prefetch={"patient": PATIENT})
    assert gaps(response)["medications"] == NOT_FETCHED
    assert elsewhere.requests == []


def test_outbound_calls_per_hook_are_bounded_pages_included(app, stub, allow):
    def self_linking(handler, stop):
        page = {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": f"{server.url}/Observation?page=n"}],
        }
        answer(200, page)(handler, stop)

    server = stub(self_linking)
    allow(server.url, max_calls=6, max_pages=50)
    response = post(app, server.url, prefetch={"patient": PATIENT})
    assert response.status_code == 200
    assert len(server.requests) == 6
    assert gaps(response)["medications"] == NOT_FETCHED


def test_a_fetched_searchset_carrying_an_error_outcome_is_not_read_as_data(app, stub, allow):
    error = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "too-costly"}],
    }
    partial = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": error}]}
    server = stub(answer(200, partial))
    allow(server.url)
    response = post(app, server.url, prefetch={"patient": PATIENT})
    assert response.status_code == 200
    assert gaps(response)["medications"] == NOT_FETCHED


def test_an_endless_body_is_cut_at_the_size_limit(app, stub, allow, caplog):
    server = stub(endless)
    allow(server.url)
    with caplog.at_level(logging.WARNING, logger="fhir_adapter.fetch"):
        response, elapsed = timed(lambda: post(app, server.url, prefetch={"patient": PATIENT}))
    assert response.status_code == 200 and elapsed < BUDGET + MARGIN
    assert gaps(response)["medications"] == NOT_FETCHED
    assert "too-large" in caplog.text
    assert server.hung_up.wait(MARGIN)


def test_a_declared_length_above_the_limit_is_refused_without_reading_it(app, stub, allow, caplog):
    def huge_declared(handler, stop):
        handler.send_response(200)
        handler.send_header("Content-Length", str(1024**3))
        handler.end_headers()
        handler.wfile.write(b"{")
        stop.wait(30)

    server = stub(huge_declared)
    allow(server.url)
    with caplog.at_level(logging.WARNING, logger="fhir_adapter.fetch"):
        response = post(app, server.url, prefetch={"patient": PATIENT})
    assert gaps(response)["medications"] == NOT_FETCHED
    assert "too-large" in caplog.text and "timeout" not in caplog.text


def test_a_compressed_body_is_refused(app, stub, allow, caplog):
    server = stub(answer(200, PATIENT, headers={"Content-Encoding": "gzip"}))
    allow(server.url)
    with caplog.at_level(logging.WARNING, logger="fhir_adapter.fetch"):
        response = post(app, server.url, prefetch={"patient": PATIENT})
    assert gaps(response)["medications"] == NOT_FETCHED
    assert "encoded" in caplog.text


@pytest.mark.parametrize("behaviour", [drip, silent], ids=["drip", "never-answers"])
def test_a_slow_server_cannot_hold_the_request_past_the_deadline(app, stub, allow, behaviour):
    server = stub(behaviour)
    allow(server.url)
    response, elapsed = timed(lambda: post(app, server.url, prefetch={"patient": PATIENT}))
    assert response.status_code == 200 and elapsed < BUDGET + MARGIN
    assert gaps(response)["medications"] == NOT_FETCHED


def test_a_hanging_name_lookup_cannot_hold_the_request_past_the_deadline(app, allow, monkeypatch):
    released, lookup = threading.Event(), socket.getaddrinfo

    def hanging(host, *args, **kwargs):  # httpx's timeouts do not cover name resolution
        if host == "hanging-dns.test":
            released.wait(10)
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    allow("http://hanging-dns.test/fhir")
    try:
        response, elapsed = timed(
            lambda: post(app, "http://hanging-dns.test/fhir", prefetch={"patient": PATIENT})
        )
    finally:
        released.set()
    assert response.status_code == 200 and elapsed < BUDGET + MARGIN
    assert gaps(response)["medications"] == NOT_FETCHED


def test_a_dripping_server_is_hung_up_on_not_left_to_a_background_thread(app, stub, allow):
    server = stub(drip)
    allow(server.url)
    post(app, server.url, prefetch={"patient": PATIENT})
    assert server.hung_up.wait(MARGIN)


def test_a_bearer_token_that_cannot_be_a_header_is_a_400(app, stub, allow):
    server = stub(answer(200, PATIENT))
    allow(server.url)
    response = post(app, server.url, prefetch={"patient": PATIENT}, token="tok\r\nX-Evil: 1")
    assert response.status_code == 400
    assert "access_token" in response.json["issue"][0]["diagnostics"]
    assert server.requests == []


def test_fetch_failures_are_logged_by_class_without_url_ids_or_token(app, stub, allow, caplog):
    server = stub(answer(401, {"resourceType": "OperationOutcome"}))
    allow(server.url)
    with caplog.at_level(logging.DEBUG):
        post(app, server.url, prefetch={"patient": PATIENT}, patient_id="secret-id-42", token="S3")
    failures = [r.getMessage() for r in caplog.records if r.name == "fhir_adapter.fetch"]
    assert any("medications" in m and "4xx" in m and " ms" in m for m in failures)
    assert all(server.requests) and server.requests[0][1] == "Bearer S3"  # it was sent ...
    for record in caplog.records:  # ... but never logged, nor the id, URL or query
        message = record.getMessage()
        for secret in ("secret-id-42", "S3", "127.0.0.1", "_count", "patient="):
            assert secret not in message, (record.name, message)


def test_a_jwt_issuer_reaches_only_its_own_fhir_servers_and_the_global_list_is_refused(tmp_path):
    issuers = {"https://ehr.example.org": {"jwks_url": "https://ehr.example.org/jwks.json"}}
    config = {"JWT_ISSUERS": issuers, "JWT_AUDIENCE_BASE": "https://cds.example.org"}
    with pytest.raises(ConfigError, match="^LABELWISE_FHIR_SERVERS: not used when"):
        load_config({**config, "FHIR_SERVERS": "https://ehr.example.org/fhir"})
    issuers["https://ehr.example.org"]["fhir_servers"] = ["https://ehr.example.org/fhir/"]
    loaded = load_config(config)["JWT_ISSUERS"]["https://ehr.example.org"]
    assert loaded["fhir_servers"] == ["https://ehr.example.org/fhir"]
