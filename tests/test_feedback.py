"""Feedback: validated, stored after commit, idempotent, only for cards the service issued,
counted once per card (latest outcome wins), linked to the rule that made the card. Every test
runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json

import pytest
from postgres import count_rows, locked, new_database_url

from cds_hooks import create_app
from cds_hooks.store import upgrade
from conftest import EXTERNAL, ROOT

SERVICE = "voclosporin-order-sign"
RULE = "contraindication.strong-cyp3a4-inhibitor"
KETOCONAZOLE = json.loads(
    (ROOT / "examples" / "requests" / "order-sign-voclosporin-with-ketoconazole.json").read_text()
)
SPEC = EXTERNAL / "cds-hooks" / "spec-hl7-cds-hooks"


def make_app(database_url: str):
    config = {"TESTING": True, "RELOAD_SECONDS": 0, "NOW": "2026-11-01", "DB_TIMEOUT": 0.5}
    app = create_app(config | {"DATABASE_URL": database_url})
    yield app
    app.extensions["labelwise.store"].close()


@pytest.fixture()
def app(database_url):
    yield from make_app(database_url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared(request, tmp_path_factory):
    """One app and database per engine for the tests that must store nothing."""
    url = new_database_url(request, tmp_path_factory.mktemp("shared"))
    upgrade(url)
    for app in make_app(url):
        yield app.test_client(), url


@pytest.fixture()
def client(app):
    return app.test_client()


def issue(client) -> str:
    """A card from the service: its uuid."""
    return client.post(f"/cds-services/{SERVICE}", json=KETOCONAZOLE).json["cards"][0]["uuid"]


def issued_as(app, uuid: str, service: str = SERVICE) -> None:
    """Record a card with a given uuid as issued, as the service does for every card."""
    card = {"uuid": uuid, "extension": {"org.labelwise.explanation": {"ruleId": RULE}}}
    app.extensions["labelwise.store"].record_cards(service, [card], "test")


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


def accepted(card: str, when: str) -> dict:
    return {
        "card": card,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "s1"}],
        "outcomeTimestamp": when,
    }


def send(client, *items: dict, service: str = SERVICE):
    return client.post(f"/cds-services/{service}/feedback", json={"feedback": list(items)})


def rate(client) -> tuple:
    rules = {r["ruleId"]: r for r in client.get("/analytics/override-rates").json["rules"]}
    rule = rules[RULE]
    return rule["cardsIssued"], rule["feedback"], rule["overridden"], rule["overrideRate"]


@pytest.mark.req("cds-hooks_2.0@148")
def test_feedback_on_a_card_is_stored_and_counted_against_its_rule(client, database_url):
    response = send(client, overridden(issue(client)))
    assert response.status_code == 200 and count_rows(database_url, "feedback") == 1
    assert rate(client) == (1, 1, 1, 1.0)


def test_repeated_feedback_is_stored_once(client, database_url):
    card = issue(client)
    assert send(client, overridden(card)).status_code == 200
    assert send(client, overridden(card)).status_code == 200
    assert count_rows(database_url, "feedback") == 1


def test_a_card_counts_once_with_its_latest_outcome_whatever_the_arrival_order(client):
    first, second = issue(client), issue(client)
    assert send(client, overridden(first, "2026-11-01T10:05:00+01:00")).status_code == 200
    assert send(client, accepted(first, "2026-11-01T09:00:00Z")).status_code == 200
    assert send(client, accepted(second, "2026-11-01T10:00:00Z")).status_code == 200
    assert send(client, overridden(second, "2026-11-01T09:00:00Z")).status_code == 200
    # first: overridden at 09:05Z beats accepted at 09:00Z; second: accepted at 10:00Z is latest
    assert rate(client) == (2, 2, 1, 0.5)


def test_feedback_for_a_card_the_service_never_issued_is_a_404_naming_it(client, database_url):
    card = issue(client)
    response = send(client, overridden(card), overridden("never-issued"))
    assert response.status_code == 404
    assert "feedback[1].card" in response.json["issue"][0]["diagnostics"]
    assert "never-issued" in response.json["issue"][0]["diagnostics"]
    assert count_rows(database_url, "feedback") == 0


def test_feedback_through_another_service_than_the_issuer_is_a_404(client, database_url):
    response = send(client, overridden(issue(client)), service="voclosporin-order-select")
    assert response.status_code == 404 and count_rows(database_url, "feedback") == 0


def test_feedback_sent_right_after_the_card_waits_for_the_audit_writer(app, database_url):
    """The card is still in this worker's audit queue when its feedback arrives."""
    issued_as(app, "just-issued")
    assert (
        app.test_client()
        .post(f"/cds-services/{SERVICE}/feedback", json={"feedback": [overridden("just-issued")]})
        .status_code
        == 200
    )
    assert count_rows(database_url, "issued_cards") == 1


def test_the_spec_feedback_examples_are_accepted(app, client, database_url):
    for name in ("feedback-accepted.json", "feedback-overridden.json"):
        body = json.loads((SPEC / name).read_text())
        for item in body["feedback"]:
            issued_as(app, item["card"])
        assert client.post(f"/cds-services/{SERVICE}/feedback", json=body).status_code == 200
    assert count_rows(database_url, "feedback") == 2


WHEN = "2026-11-01T10:00:00Z"
CODING = {"system": "https://w3id.org/labelwise/CodeSystem/override-reason", "code": "other"}


def item(**fields) -> dict:
    return {"card": "c", "outcome": "overridden", "outcomeTimestamp": WHEN} | fields


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"outcome": "overridden", "outcomeTimestamp": WHEN}, "card"),
        (item(card=7), "card"),
        (item(card="c" * 65), "card is longer than 64"),
        (item(card="c\x00"), "card must not contain NUL"),
        (item(outcome="ignored"), "outcome"),
        (item(outcome="accepted"), "acceptedSuggestions"),
        (item(outcome="accepted", acceptedSuggestions="s1"), "acceptedSuggestions"),
        (item(outcome="accepted", acceptedSuggestions=[None, None]), "acceptedSuggestions"),
        (item(outcome="accepted", acceptedSuggestions=[{"id": 1}]), "acceptedSuggestions[0].id"),
        (item(outcome="accepted", acceptedSuggestions=[{}]), "acceptedSuggestions[0].id"),
        (item(acceptedSuggestions="s1"), "acceptedSuggestions"),
        (item(outcomeTimestamp="yesterday"), "outcomeTimestamp"),
        (item(outcomeTimestamp=20261101), "outcomeTimestamp"),
        (item(outcomeTimestamp="0001-01-01T00:00:00+01:00"), "outcomeTimestamp"),
        (item(overrideReason={}), "overrideReason"),
        (item(overrideReason="too risky"), "overrideReason must be an object"),
        (item(overrideReason=["x"]), "overrideReason must be an object"),
        (item(overrideReason={"reason": "other"}), "overrideReason.reason"),
        (item(overrideReason={"reason": {"code": "other"}}), "overrideReason.reason.system"),
        (item(overrideReason={"reason": CODING | {"code": 3}}), "overrideReason.reason.code"),
        (item(overrideReason={"reason": CODING | {"code": "c" * 129}}), "longer than 128"),
        (item(overrideReason={"reason": CODING | {"system": "s" * 257}}), "longer than 256"),
        (item(overrideReason={"userComment": "x" * 2001}), "userComment is longer than 2000"),
        (item(overrideReason={"userComment": 5}), "userComment"),
        (item(overrideReason={"userComment": "a\x00b"}), "userComment must not contain NUL"),
    ],
)
def test_malformed_feedback_is_a_400_naming_the_field_and_stores_nothing(shared, bad, words):
    client, database_url = shared
    response = send(client, overridden(issue(client)), bad)
    assert response.status_code == 400, response.json
    diagnostics = response.json["issue"][0]["diagnostics"]
    assert diagnostics.startswith("feedback[1]") and words in diagnostics
    assert count_rows(database_url, "feedback") == 0


def test_the_longest_allowed_fields_are_stored(client, database_url):
    reason = {"reason": CODING | {"code": "c" * 128}, "userComment": "é" * 2000}
    response = send(client, overridden(issue(client)) | {"overrideReason": reason})
    assert response.status_code == 200 and count_rows(database_url, "feedback") == 1


def test_feedback_for_an_unknown_service_is_a_404(client):
    assert send(client, overridden("c"), service="nope").status_code == 404


def test_a_locked_database_gives_503_and_nothing_half_written(app, client, database_url):
    assert send(client, overridden(issue(client))).status_code == 200
    cards = [issue(client), issue(client)]
    app.extensions["labelwise.store"].flush()  # the cards are issued before the lock
    with locked(database_url, "feedback"):
        response = send(client, *(overridden(card) for card in cards))
    assert response.status_code == 503
    assert "nothing was recorded" in response.json["issue"][0]["diagnostics"]
    assert count_rows(database_url, "feedback") == 1


def test_cards_are_still_returned_and_audited_later_when_the_store_is_locked(client, database_url):
    with locked(database_url, "issued_cards"):
        response = client.post(f"/cds-services/{SERVICE}", json=KETOCONAZOLE)
    assert response.status_code == 200 and response.json["cards"][0]["indicator"] == "critical"
    rates = client.get("/analytics/override-rates").json["rules"]
    assert [r["cardsIssued"] for r in rates] == [1]
