"""CDS Hooks 2.0 response invariants, asserted over every card a test sees."""

from __future__ import annotations

import uuid
from typing import Any

INDICATORS = {"info", "warning", "critical"}


def assert_no_empty_values(value: Any, path: str = "$") -> None:
    assert value is not None, f"null at {path}"
    if isinstance(value, dict):
        assert value, f"empty object at {path}"
        for key, item in value.items():
            assert_no_empty_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        assert value, f"empty list at {path}"
        for i, item in enumerate(value):
            assert_no_empty_values(item, f"{path}[{i}]")
    elif isinstance(value, str):
        assert value.strip(), f"empty string at {path}"


def assert_valid_cards(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert isinstance(body.get("cards"), list)
    for card in body["cards"]:
        assert_valid_card(card)
    return body["cards"]


def assert_valid_card(card: dict[str, Any]) -> None:
    assert_no_empty_values(card)
    uuid.UUID(card["uuid"])
    assert len(card["summary"]) < 140
    assert card["indicator"] in INDICATORS
    assert card["source"]["label"].startswith("LUPKYNIS")
    assert "section" in card["source"]["label"]
    for reason in card.get("overrideReasons", []):
        assert set(reason) == {"system", "code", "display"}
    if "suggestions" in card:
        assert card["selectionBehavior"] in ("at-most-one", "any")
        recommended = [s for s in card["suggestions"] if s.get("isRecommended")]
        assert len(recommended) <= 1 or card["selectionBehavior"] == "any"
    for suggestion in card.get("suggestions", []):
        uuid.UUID(suggestion["uuid"])
        assert suggestion["label"]
        for action in suggestion["actions"]:
            assert action["type"] in ("create", "update", "delete") and action["description"]
            if action["type"] == "delete":
                assert "/" in action["resourceId"] and "resource" not in action
            else:
                assert action["resource"]["resourceType"]
