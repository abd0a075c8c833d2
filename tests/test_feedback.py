"""Feedback: validated, stored after commit, idempotent, linked to the rule that made the card."""

from __future__ import annotations

import json
import sqlite3

import pytest

from cds_hooks import create_app
from conftest import EXTERNAL, ROOT

SERVICE = "voclosporin-order-sign"
KETOCONAZOLE = json.loads(
    (ROOT / "examples" / "requests" / "order-sign-voclosporin-with-ketoconazole.json").read_text()
)


@pytest.fixture()
def db_path(tmp_path):
    return tmp_path / "feedback.db"


@pytest.fixture()
def client(db_path):
    app = create_app(
        {
            "TESTING": True,
            "RELOAD_SECONDS": 0,
            "NOW": "2026-11-01",
            "DATABASE_URL": f"sqlite:///{db_path}",
        }
    )
    return app.test_client()


def overridden(card: str, when: str = "2026-11-01T10:00:00Z") -> dict:
    reason = {
        "reason": {
            "system": "https://w3id.org/labelwise/CodeSystem/override-reason",
            "code": "benefit-outweighs-risk",
        }
    }
    return {
        "card": card,
        "outcome": "overridden",
        "overrideReason": reason,
        "outcomeTimestamp": when,
    }


def rows(db_path) -> int:
    with sqlite3.connect(db_path) as db:
        return db.execute("select count(*) from feedback").fetchone()[0]


def test_feedback_on_a_card_is_stored_and_counted_against_its_rule(client, db_path):
    card = client.post(f"/cds-services/{SERVICE}", json=KETOCONAZOLE).json["cards"][0]
    response = client.post(
        f"/cds-services/{SERVICE}/feedback", json={"feedback": [overridden(card["uuid"])]}
    )
    assert response.status_code == 200 and rows(db_path) == 1
    rates = {r["ruleId"]: r for r in client.get("/analytics/override-rates").json["rules"]}
    rule = rates["contraindication.strong-cyp3a4-inhibitor"]
    assert (rule["cardsIssued"], rule["feedback"], rule["overridden"], rule["overrideRate"]) == (
        1,
        1,
        1,
        1.0,
    )


def test_repeated_feedback_is_stored_once(client, db_path):
    body = {"feedback": [overridden("card-1")]}
    assert client.post(f"/cds-services/{SERVICE}/feedback", json=body).status_code == 200
    assert client.post(f"/cds-services/{SERVICE}/feedback", json=body).status_code == 200
    assert rows(db_path) == 1


def test_the_spec_feedback_examples_are_accepted(client, db_path):
    for name in ("feedback-accepted.json", "feedback-overridden.json"):
        body = json.loads((EXTERNAL / "cds-hooks" / "spec-hl7-cds-hooks" / name).read_text())
        assert client.post(f"/cds-services/{SERVICE}/feedback", json=body).status_code == 200
    assert rows(db_path) == 2


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ({"outcome": "overridden", "outcomeTimestamp": "2026-11-01T10:00:00Z"}, "card"),
        (
            {"card": "c", "outcome": "ignored", "outcomeTimestamp": "2026-11-01T10:00:00Z"},
            "outcome",
        ),
        (
            {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-01T10:00:00Z"},
            "acceptedSuggestions",
        ),
        (
            {"card": "c", "outcome": "overridden", "outcomeTimestamp": "yesterday"},
            "outcomeTimestamp",
        ),
        (
            {
                "card": "c",
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-01T10:00:00Z",
                "overrideReason": {},
            },
            "overrideReason",
        ),
    ],
)
def test_malformed_feedback_is_a_400_naming_the_field_and_stores_nothing(
    client, db_path, item, words
):
    response = client.post(
        f"/cds-services/{SERVICE}/feedback", json={"feedback": [overridden("ok"), item]}
    )
    assert response.status_code == 400 and words in response.json["issue"][0]["diagnostics"]
    assert rows(db_path) == 0


def test_feedback_for_an_unknown_service_is_a_404(client):
    assert (
        client.post("/cds-services/nope/feedback", json={"feedback": [overridden("c")]}).status_code
        == 404
    )


def test_a_locked_database_gives_503_and_nothing_half_written(client, db_path):
    assert (
        client.post(
            f"/cds-services/{SERVICE}/feedback", json={"feedback": [overridden("first")]}
        ).status_code
        == 200
    )
    locker = sqlite3.connect(db_path, timeout=0)
    locker.execute("begin exclusive")
    try:
        body = {"feedback": [overridden("a"), overridden("b")]}
        response = client.post(f"/cds-services/{SERVICE}/feedback", json=body)
    finally:
        locker.rollback()
        locker.close()
    assert response.status_code == 503
    assert "nothing was recorded" in response.json["issue"][0]["diagnostics"]
    assert rows(db_path) == 1


def test_cards_are_still_returned_and_audited_later_when_the_store_is_locked(client, db_path):
    locker = sqlite3.connect(db_path, timeout=0)
    locker.execute("begin exclusive")
    try:
        response = client.post(f"/cds-services/{SERVICE}", json=KETOCONAZOLE)
    finally:
        locker.rollback()
        locker.close()
    assert response.status_code == 200 and response.json["cards"][0]["indicator"] == "critical"
    rates = client.get("/analytics/override-rates").json["rules"]
    assert [r["cardsIssued"] for r in rates] == [1]
