"""Non-drug draft orders and findings in the chart: vaccines, conditions, Child-Pugh."""

from __future__ import annotations

from typing import Any

from engine.vocabulary import Vocabulary

from .coding import codings, texts

LIVENESS_ORDER = ("ambiguous", "live", "not-live")  # a name that could be either goes to review
CONDITION_TOPICS = ("pregnancy", "lactation", "hypertensive-emergency")
INACTIVE = {"inactive", "resolved", "remission"}
UNCONFIRMED = {"refuted", "entered-in-error"}
CHILD_PUGH_CLASSES = ("A", "B", "C")


def vaccine_concepts(resource: dict[str, Any]) -> list[Any]:
    field = {"Immunization": "vaccineCode", "ServiceRequest": "code"}.get(resource["resourceType"])
    return [resource.get(field or "medicationCodeableConcept")]


def vaccine(resource: dict[str, Any], vocabulary: Vocabulary) -> dict[str, Any] | None:
    """liveness of a vaccine order: by CVX code first, then by name (ambiguous names win)."""
    concepts = vaccine_concepts(resource)
    vaccine_sets = _vaccine_sets(vocabulary)
    for key in vaccine_sets:
        found = vocabulary.code_sets[key]
        for coding in (c for concept in concepts for c in codings(concept)):
            if coding.get("system") == found.system and coding.get("code") in found.codes:
                return _vaccine(found.liveness, concepts, coding["code"])
    for key in vaccine_sets:
        if any(vocabulary.code_set_named_in(key, t) for c in concepts for t in texts(c)):
            return _vaccine(vocabulary.code_sets[key].liveness, concepts, "not coded")
    return None


def _vaccine_sets(vocabulary: Vocabulary) -> list[str]:
    """The code sets knowledge marks with a liveness, ambiguous ones first."""
    sets = [s for s in vocabulary.code_sets.values() if s.liveness in LIVENESS_ORDER]
    return [s.key for s in sorted(sets, key=lambda s: LIVENESS_ORDER.index(s.liveness))]


def _vaccine(liveness: str | None, concepts: list[Any], cvx: str) -> dict[str, Any]:
    name = next((t for c in concepts for t in texts(c)), f"vaccine (CVX {cvx})")
    return {"liveness": liveness, "name": name, "cvx": cvx}


def is_current_condition(condition: dict[str, Any]) -> bool:
    clinical = next((c.get("code") for c in codings(condition.get("clinicalStatus"))), None)
    verified = next((c.get("code") for c in codings(condition.get("verificationStatus"))), None)
    return clinical not in INACTIVE and verified not in UNCONFIRMED


def condition_topics(condition: dict[str, Any], vocabulary: Vocabulary) -> list[str]:
    concept = condition.get("code")
    found = []
    for key in CONDITION_TOPICS:
        code_set = vocabulary.code_sets[key]
        coded = any(
            c.get("system") == code_set.system and c.get("code") in code_set.codes
            for c in codings(concept)
        )
        if coded or any(vocabulary.code_set_named_in(key, t) for t in texts(concept)):
            found.append(key)
    return found


def child_pugh_class(resource: dict[str, Any], vocabulary: Vocabulary, params: dict) -> str | None:
    """Class A/B/C from a Child-Pugh Observation (score or class) or a Condition naming it."""
    if not any(vocabulary.code_set_named_in("child-pugh", t) for t in texts(resource.get("code"))):
        return None
    score = _score(resource)
    if score is not None:
        if score >= params["child-pugh-c-min-score"]:
            return "C"
        return "B" if score >= params["child-pugh-b-min-score"] else "A"
    words = " ".join(texts(resource.get("code")) + texts(resource.get("valueCodeableConcept")))
    words += " " + str(resource.get("valueString") or "")
    return _class_named(words)


def _score(resource: dict[str, Any]) -> int | None:
    value = resource.get("valueInteger")
    if value is None and isinstance(resource.get("valueQuantity"), dict):
        value = resource["valueQuantity"].get("value")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _class_named(words: str) -> str | None:
    tokens = words.replace("-", " ").replace(":", " ").split()
    for i, token in enumerate(tokens):
        if (
            token.lower() == "class"
            and i + 1 < len(tokens)
            and tokens[i + 1].upper() in CHILD_PUGH_CLASSES
        ):
            return tokens[i + 1].upper()
    bare = [t.upper() for t in tokens if t.upper() in CHILD_PUGH_CLASSES]
    return bare[-1] if bare else None
