"""Card templates: YAML per finding id, Jinja text checked and compiled at load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined
from jinja2.sandbox import SandboxedEnvironment

from .model import KnowledgeError
from .rulesets import Rule

INDICATORS = {"info", "warning", "critical"}
ACTION_TYPES = {"create", "update", "delete"}
SHARED = "_shared.yaml"
ENVIRONMENT = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
)


def clinical(value: float | Undefined | None, *limits: float) -> str:
    """A measured value as a clinician writes it: a whole number, with one decimal only where
    rounding would put it on one of `limits` (an eGFR of 59.9 is not shown as the cut-off 60).
    A value that was not taken (a systolic without its diastolic) shows as a dash."""
    if value is None or isinstance(value, Undefined):
        return "–"
    whole = round(value)
    return f"{value:.1f}" if value != whole and whole in limits else str(whole)


ENVIRONMENT.filters["clinical"] = clinical


@dataclass(frozen=True)
class Action:
    """delete `target`; update it to `regimen` (each dose `dose_mg` if given); or create an
    order for the monitoring item `service_request` names."""

    type: str
    target: str
    description: Any
    regimen: str | None = None
    dose_mg: Any = None
    service_request: Any = None


@dataclass(frozen=True)
class Suggestion:
    label: Any
    recommended: bool
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class CardTemplate:
    id: str
    indicator: str
    summary: Any
    detail: Any
    suggestions: tuple[Suggestion, ...]
    override_reasons: tuple[dict[str, str], ...]
    group: str | None = None  # findings alike but for this alias share one card naming them all


@dataclass(frozen=True)
class CardLayout:
    """What every card shares: how the source label and the detail footer read."""

    source_label: Any
    detail_footer: Any


def load_cards(
    documents: dict[str, Any], rules: dict[str, Rule], regimens: set[str]
) -> tuple[dict[str, CardTemplate], CardLayout]:
    shared = documents[f"cards/{SHARED}"]
    reason_sets = shared.get("override_reasons", {})
    layout = CardLayout(
        source_label=_compile(shared.get("source_label"), SHARED, "source_label"),
        detail_footer=_compile(shared.get("detail_footer"), SHARED, "detail_footer"),
    )
    cards: dict[str, CardTemplate] = {}
    for file in sorted(f for f in documents if f.startswith("cards/") and f != f"cards/{SHARED}"):
        for card_id, raw in documents[file].items():
            if card_id in cards:
                raise KnowledgeError(file, card_id, "card id defined twice")
            rule = rules.get(card_id)
            if rule is None:
                raise KnowledgeError(file, card_id, "card has no rule with the same id")
            cards[card_id] = _card(card_id, raw, file, rule, reason_sets, regimens)
    missing = sorted(set(rules) - set(cards))
    if missing:
        raise KnowledgeError("cards", missing[0], "rule has no card template")
    return cards, layout


def _card(card_id, raw, file, rule, reason_sets, regimens) -> CardTemplate:
    if not isinstance(raw, dict) or raw.get("indicator") not in INDICATORS:
        raise KnowledgeError(file, card_id, f"indicator must be one of {sorted(INDICATORS)}")
    reasons = reason_sets.get(raw.get("override_reasons", "standard"))
    if not reasons or any(set(r) != {"system", "code", "display"} for r in reasons):
        raise KnowledgeError(file, card_id, "override_reasons must name a complete Coding set")
    targets = {*rule.aliases, "focus"}
    if raw.get("group") is not None and raw["group"] not in rule.aliases:
        raise KnowledgeError(file, card_id, f"group must be one of {sorted(rule.aliases)}")
    suggestions = tuple(
        _suggestion(s, file, card_id, targets, regimens) for s in raw.get("suggestions", [])
    )
    return CardTemplate(
        id=card_id,
        indicator=raw["indicator"],
        summary=_compile(raw.get("summary"), file, card_id),
        detail=_compile(raw.get("detail"), file, card_id),
        suggestions=suggestions,
        override_reasons=tuple(reasons),
        group=raw.get("group"),
    )


def _suggestion(raw, file, card_id, targets, regimens) -> Suggestion:
    actions = tuple(_action(a, file, card_id, targets, regimens) for a in raw.get("actions", []))
    if not actions:
        raise KnowledgeError(file, card_id, "a suggestion needs at least one action")
    label = _compile(raw.get("label"), file, card_id)
    return Suggestion(label, bool(raw.get("recommended", False)), actions)


def _action(raw, file, card_id, targets, regimens) -> Action:
    if raw.get("type") not in ACTION_TYPES or raw.get("target") not in targets:
        raise KnowledgeError(file, card_id, f"action needs a type and a target in {targets}")
    if raw["type"] == "update" and raw.get("regimen") not in regimens:
        raise KnowledgeError(file, card_id, f"update names unknown regimen {raw.get('regimen')!r}")
    if raw["type"] == "create" and "service_request" not in raw:
        raise KnowledgeError(file, card_id, "a create action needs service_request")
    optional = {
        k: _compile(raw[k], file, card_id) for k in ("dose_mg", "service_request") if k in raw
    }
    return Action(
        type=raw["type"],
        target=raw["target"],
        description=_compile(raw.get("description"), file, card_id),
        regimen=raw.get("regimen"),
        **optional,
    )


def _compile(text: Any, file: str, node: str):
    if not isinstance(text, str) or not text.strip():
        raise KnowledgeError(file, node, "missing text")
    try:
        return ENVIRONMENT.from_string(text)
    except TemplateSyntaxError as error:
        raise KnowledgeError(
            file, node, f"template line {error.lineno}: {error.message}"
        ) from error
