"""Hot reload: a valid knowledge edit takes effect without restart; an invalid one is rejected
and the previous knowledge keeps serving."""

from __future__ import annotations

import json
import time

from cds_hooks import create_app
from conftest import ROOT

REQUEST = json.loads(
    (ROOT / "examples" / "requests" / "order-sign-voclosporin-with-ketoconazole.json").read_text()
)


def summary(client) -> str:
    return client.post("/cds-services/voclosporin-order-sign", json=REQUEST).json["cards"][0][
        "summary"
    ]


def wait_for(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_card_text_edit_is_served_without_restart(knowledge_copy):
    app = create_app(
        {"KNOWLEDGE_DIR": str(knowledge_copy), "RELOAD_SECONDS": 0.1, "NOW": "2026-11-01"}
    )
    client = app.test_client()
    before = client.get("/healthz").json["knowledgeVersion"]
    assert summary(client).startswith("Contraindicated:")
    cards = knowledge_copy / "cards" / "interactions.yaml"
    cards.write_text(
        cards.read_text().replace(
            'summary: "Contraindicated: voclosporin', 'summary: "Do not combine: voclosporin', 1
        )
    )
    assert wait_for(lambda: client.get("/healthz").json["knowledgeVersion"] != before)
    assert summary(client).startswith("Do not combine:")
    assert client.get("/healthz").json["lastReloadError"] == "none"


def test_an_invalid_edit_is_rejected_and_the_old_knowledge_keeps_serving(knowledge_copy):
    app = create_app(
        {"KNOWLEDGE_DIR": str(knowledge_copy), "RELOAD_SECONDS": 0.1, "NOW": "2026-11-01"}
    )
    client = app.test_client()
    before = client.get("/healthz").json
    rules = knowledge_copy / "rules" / "interactions.yaml"
    rules.write_text(
        rules.read_text().replace("cites: ci-strong-cyp3a4-inhibitor", "cites: no-such-statement")
    )
    assert wait_for(lambda: client.get("/healthz").json["status"] == "degraded")
    health = client.get("/healthz").json
    assert health["knowledgeVersion"] == before["knowledgeVersion"]
    assert (
        "rules/interactions.yaml: contraindication.strong-cyp3a4-inhibitor"
        in health["lastReloadError"]
    )
    assert summary(client).startswith("Contraindicated:")


def test_healthz_reports_status_and_version(client, kb):
    body = client.get("/healthz").json
    assert body["status"] == "ok" and body["knowledgeVersion"] == kb.version
