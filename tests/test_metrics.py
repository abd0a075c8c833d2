"""GET /metrics in Prometheus text format: counts move with hook calls, in one process and
summed across gunicorn workers; label values stay bounded; the setting turns it off."""

from __future__ import annotations

import http.client
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import gunicorn

from cds_hooks import ConfigError, create_app
from conftest import ROOT, free_port

KETOCONAZOLE = ROOT / "examples" / "requests" / "order-sign-voclosporin-with-ketoconazole.json"
SIGN = "/cds-services/voclosporin-order-sign"
JSON_TYPE = {"Content-Type": "application/json"}
CRITICAL = {"rule": "contraindication.strong-cyp3a4-inhibitor", "indicator": "critical"}


def value(text: str, name: str, **labels: str) -> float:
    """The sample's value in a Prometheus exposition, 0 when absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def sign(client):
    return client.post(SIGN, data=KETOCONAZOLE.read_bytes(), content_type="application/json")


def test_hook_calls_move_the_request_card_and_latency_metrics(client):
    before = scrape(client)
    for _ in range(3):
        assert sign(client).status_code == 200
    after = scrape(client)
    ok = {"service": "voclosporin-order-sign", "status": "200"}
    assert value(after, "labelwise_requests_total", **ok) - value(
        before, "labelwise_requests_total", **ok
    ) == pytest.approx(3)
    assert value(after, "labelwise_cards_total", **CRITICAL) - value(
        before, "labelwise_cards_total", **CRITICAL
    ) == pytest.approx(3)
    count = "labelwise_request_seconds_count"
    assert value(after, count, service="voclosporin-order-sign") >= 3
    assert value(after, "labelwise_knowledge_reload_ok") == 1


def test_an_unknown_service_id_is_counted_under_one_label_not_its_own(client):
    for name in ("no-such-service", "another-made-up-one"):
        assert client.post(f"/cds-services/{name}", json={}).status_code == 404
    text = scrape(client)
    assert "no-such-service" not in text and "another-made-up-one" not in text
    labels = {"service": "unknown-service", "status": "404"}
    assert value(text, "labelwise_requests_total", **labels) >= 2


def test_each_fhir_fetch_is_counted_by_its_outcome(tmp_path):
    server = f"http://127.0.0.1:{free_port()}/fhir"  # allowed, but nothing listens there
    database = f"sqlite:///{tmp_path / 'm.db'}"
    config = {"RELOAD_SECONDS": 0, "FHIR_SERVERS": [server], "DATABASE_URL": database}
    client = create_app(config).test_client()
    body = json.loads(KETOCONAZOLE.read_text())
    body["fhirServer"] = server
    del body["prefetch"]["medications"]
    declared = next(s for s in client.get("/cds-services").json["services"] if s["id"] in SIGN)
    missing = set(declared["prefetch"]) - set(body["prefetch"])  # each is fetched, and fails
    before = sum_of(scrape(client), "labelwise_fhir_fetches_total")
    assert client.post(SIGN, json=body).status_code == 200
    assert sum_of(scrape(client), "labelwise_fhir_fetches_total") == before + len(missing)


def sum_of(text: str, name: str) -> float:
    return sum(
        s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name
    )


def test_metrics_are_not_served_when_the_setting_is_off(tmp_path):
    app = create_app(
        {"METRICS": "off", "RELOAD_SECONDS": 0, "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"}
    )
    assert app.test_client().get("/metrics").status_code == 404


def test_a_metrics_setting_other_than_on_or_off_refuses_to_start(monkeypatch):
    monkeypatch.setenv("LABELWISE_METRICS", "maybe")
    with pytest.raises(ConfigError, match="^LABELWISE_METRICS"):
        create_app({"RELOAD_SECONDS": 0})


def test_gunicorn_workers_report_one_sum_of_their_counts(tmp_path):
    with gunicorn(tmp_path, workers=2) as port:
        calls = 12
        for _ in range(calls):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(
                "POST", SIGN, KETOCONAZOLE.read_bytes(), {"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["cards"]
            conn.close()  # a new connection each time, so both workers take calls
        for _ in range(4):  # whichever worker answers the scrape, it reports both
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
            ok = {"service": "voclosporin-order-sign", "status": "200"}
            assert value(text, "labelwise_requests_total", **ok) == calls
            assert value(text, "labelwise_cards_total", **CRITICAL) == calls
