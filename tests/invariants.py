"""CDS Hooks 2.0 response invariants, asserted over every card a test sees: the spec's own
response schema (the vendored CDS Hooks OpenAPI), HealthChain's response models (a real Python
client), and the project's own rules."""

from __future__ import annotations

import re
import uuid
from typing import Any

import yaml
from healthchain.models.responses.cdsresponse import CDSResponse
from jsonschema import Draft7Validator, FormatChecker

from conftest import EXTERNAL

INDICATORS = {"info", "warning", "critical"}
# Short: "LUPKYNIS prescribing information §2.3", at most three parts then "and N more".
SOURCE_LABEL = re.compile(
    r"LUPKYNIS prescribing information (Boxed Warning|§[\d.]+)(, §[\d.]+){0,2}( and \d+ more)?"
)
# Text a clinician must never see on a card: internal notes, empty placeholders, references
# and UUIDs of derived facts, Python or pydantic messages.
INTERNAL = re.compile(
    r"numbering unconfirmed|UNCONFIRMED|not recorded`|— `|`[A-Z][a-zA-Z]+/[^`]+`"
    r"|\bNone\b|\bTrue\b|\bFalse\b"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-|Input should|pydantic|Traceback|Error\b|\{'|\['"
)
# A value not rounded as a clinician writes it: 76.923077 or 128.0 (section numbers, the
# 1.73 m² of eGFR units and product strengths as the EHR names them, "0.125 MG", excepted).
UNROUNDED = re.compile(r"(?<![§\d.])(?!1\.73\b)\d+\.(\d{2,}|0)\b(?! ?MG\b)")
_OPENAPI = yaml.safe_load((EXTERNAL / "cds-hooks-api" / "openapi.yaml").read_text("utf-8"))
RESPONSE_SCHEMA = Draft7Validator(
    {"$ref": "#/components/schemas/CdsResponse", "components": _OPENAPI["components"]},
    format_checker=FormatChecker(),
)


def assert_interoperable(body: dict[str, Any]) -> None:
    """The response validates against the CDS Hooks schema and HealthChain's CDSResponse."""
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in RESPONSE_SCHEMA.iter_errors(body)]
    assert not errors, errors
    CDSResponse.model_validate(body)


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
    assert_interoperable(body)
    for card in body["cards"]:
        assert_valid_card(card)
    return body["cards"]


def card_texts(card: dict[str, Any]) -> list[str]:
    """Every text of a card a clinician reads."""
    suggestions = card.get("suggestions", [])
    actions = [a["description"] for s in suggestions for a in s["actions"]]
    labels = [s["label"] for s in suggestions]
    return [card["summary"], card["detail"], card["source"]["label"], *labels, *actions]


def assert_valid_card(card: dict[str, Any]) -> None:
    assert_no_empty_values(card)
    for text in card_texts(card):
        assert not INTERNAL.search(text) and not UNROUNDED.search(text), text
    uuid.UUID(card["uuid"])
    assert len(card["summary"]) < 140
    assert card["indicator"] in INDICATORS
    assert SOURCE_LABEL.fullmatch(card["source"]["label"]), card["source"]["label"]
    assert card["source"]["url"].startswith("https://")
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
