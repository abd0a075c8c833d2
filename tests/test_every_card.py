"""Every card the knowledge produces for the YAML cases, rendered over HTTP, is valid CDS Hooks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cds_hooks import create_app
from invariants import INTERNAL, UNROUNDED, assert_valid_cards, card_texts
from labelwise.cases import case_files, hook_request

CASES = Path(__file__).parent / "cases"
FILES = case_files(CASES)


@pytest.fixture(scope="module")
def case_app():
    return create_app({"TESTING": True, "RELOAD_SECONDS": 0})


def cards_for(case_app, kb, path: Path) -> list[dict]:
    case = yaml.safe_load(path.read_text())
    service = kb.services[case["service"]]
    case_app.config["NOW"] = str(case["now"])
    response = case_app.test_client().post(
        f"/cds-services/{service.id}", json=hook_request(case, service.hook)
    )
    assert response.status_code == 200
    return assert_valid_cards(response.json)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CASES)) for p in FILES])
def test_cards_for_each_case_are_valid_and_name_the_rules_that_fired(case_app, kb, path):
    case = yaml.safe_load(path.read_text())
    cards = cards_for(case_app, kb, path)
    fired = {c["extension"]["org.labelwise.explanation"]["ruleId"] for c in cards}
    assert set(case["expect"]["fires"]) <= fired
    assert not set(case["expect"]["silent"]) & fired


# Cards that must never show together: the second claims something the first says is unknown,
# or both describe the same problem.
CONTRADICTORY = [
    ("data.medications-unavailable", "combination.background-missing"),
    ("interaction.potassium-raising", "interaction.potassium-raising-unchecked"),
    ("data.baseline-egfr-missing", "data.baseline-egfr-stale"),
    ("data.baseline-bp-missing", "data.baseline-bp-stale"),
    ("renal.egfr-fall-reduce", "renal.egfr-fall-discontinue"),
]


@pytest.fixture(scope="module")
def every_response(case_app, kb) -> dict[str, list[dict]]:
    return {str(p.relative_to(CASES)): cards_for(case_app, kb, p) for p in FILES}


def test_every_card_template_is_rendered_by_some_case(every_response, kb):
    rendered = {rule_of(c) for cards in every_response.values() for c in cards}
    assert rendered == set(kb.rules)


def test_no_card_shows_internal_text_or_unrounded_numbers(every_response):
    found = [
        (case, rule_of(card), match.group())
        for case, cards in every_response.items()
        for card in cards
        for text in card_texts(card)
        for match in (*INTERNAL.finditer(text), *UNROUNDED.finditer(text))
    ]
    assert found == []


def test_no_response_holds_contradictory_or_repeated_cards(every_response):
    for case, cards in every_response.items():
        fired = [rule_of(c) for c in cards]
        assert not [pair for pair in CONTRADICTORY if set(pair) <= set(fired)], case
        assert len({c["summary"] for c in cards}) == len(cards), case


def test_several_nsaids_share_one_card_naming_each(every_response):
    (card,) = [
        c
        for c in every_response["interactions/two-nsaids-with-voclosporin.yaml"]
        if rule_of(c) == "interaction.nephrotoxic"
    ]
    assert "Naproxen" in card["detail"] and "Ibuprofen" in card["detail"]


def test_only_draft_orders_are_updated_and_no_administration_time_is_invented(every_response):
    actions = [
        a
        for cards in every_response.values()
        for c in cards
        for s in c.get("suggestions", [])
        for a in s["actions"]
    ]
    assert {a["type"] for a in actions} == {"create", "update", "delete"}
    for action in actions:
        resource = action.get("resource", {})
        assert action["type"] != "update" or resource["status"] == "draft"
        assert "timeOfDay" not in str(resource.get("dosageInstruction", ""))


def rule_of(card: dict) -> str:
    return card["extension"]["org.labelwise.explanation"]["ruleId"]
