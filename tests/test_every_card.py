"""Every card the knowledge produces for the YAML cases, rendered over HTTP, is valid CDS Hooks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cds_hooks import create_app
from invariants import assert_valid_cards
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


def test_every_rule_renders_a_card_in_some_case(case_app, kb):
    rendered = {
        c["extension"]["org.labelwise.explanation"]["ruleId"]
        for path in FILES
        for c in cards_for(case_app, kb, path)
    }
    assert rendered == set(kb.rules)
