"""Non-drug draft orders and findings in the chart: vaccines, conditions, Child-Pugh."""

from __future__ import annotations

import re
from typing import Any

from engine.vocabulary import CodeSet, Vocabulary

from .coding import codings, has_code, texts

LIVENESS_ORDER = ("ambiguous", "live", "not-live")  # a name that could be either goes to review
CONDITION_TOPICS = ("pregnancy", "lactation", "hypertensive-emergency", "cirrhosis")
INACTIVE = {"inactive", "resolved", "remission"}
UNCONFIRMED = {"refuted", "entered-in-error"}
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CVX_SYSTEMS = {"http://hl7.org/fhir/sid/cvx", "urn:oid:2.16.840.1.113883.12.292"}
NOT_A_VACCINE = "not-a-vaccine"
STATUS_TOPICS = {"pregnancy-status": "pregnancy", "breastfeeding-status": "lactation"}
NEGATED = re.compile(r"\b(not|no|never|negative|denies)\b", re.IGNORECASE)
HISTORY_OF = re.compile(r"\b(history of|h/o|hx of)\b", re.IGNORECASE)
CHILD_PUGH = r"(?:child[\s-]*(?:turcotte[\s-]*)?pugh|ctp)"
CLASS_TEXT = re.compile(
    rf"\b{CHILD_PUGH}(?:\s+(?:class|grade))?\s*[:=]?\s*([abc])\b|\bclass\s*[:=]?\s*([abc])\b",
    re.IGNORECASE,
)
SCORE_TEXT = re.compile(rf"\b(?:{CHILD_PUGH}\s+)?score\s*[:=]?\s*(\d{{1,2}})\b", re.IGNORECASE)


def vaccine_concepts(resource: dict[str, Any]) -> list[Any]:
    field = {"Immunization": "vaccineCode", "ServiceRequest": "code"}.get(resource["resourceType"])
    return [resource.get(field or "medicationCodeableConcept")]


def vaccine(resource: dict[str, Any], vocabulary: Vocabulary) -> dict[str, Any] | None:
    """liveness of a vaccine order: by CVX code first, then by name (ambiguous names win).
    Immune globulins and antibody tests are not vaccines, whatever they name."""
    concepts = vaccine_concepts(resource)
    if resource.get("status") == "entered-in-error" or _not_a_vaccine(concepts, vocabulary):
        return None
    vaccine_sets = _vaccine_sets(vocabulary)
    for key in vaccine_sets:
        found = vocabulary.code_sets[key]
        for coding in (c for concept in concepts for c in codings(concept)):
            code = cvx_code(coding)
            if code in {c.lstrip("0") for c in found.codes}:
                return _vaccine(found.liveness, concepts, code.zfill(2))
    for key in vaccine_sets:
        if any(vocabulary.code_set_named_in(key, t) for c in concepts for t in texts(c)):
            return _vaccine(vocabulary.code_sets[key].liveness, concepts, "not coded")
    return None


def cvx_code(coding: dict[str, Any]) -> str | None:
    """A CVX code without leading zeros ("03" and "3" agree), under either CVX system URI."""
    code = coding.get("code")
    if coding.get("system") not in CVX_SYSTEMS or not isinstance(code, str):
        return None
    return code.strip().lstrip("0") or "0"


def _not_a_vaccine(concepts: list[Any], vocabulary: Vocabulary) -> bool:
    codes = {c.lstrip("0") for c in vocabulary.code_sets[NOT_A_VACCINE].codes}
    coded = any(cvx_code(c) in codes for concept in concepts for c in codings(concept))
    named = (vocabulary.code_set_named_in(NOT_A_VACCINE, t) for c in concepts for t in texts(c))
    return coded or any(named)


def _vaccine_sets(vocabulary: Vocabulary) -> list[str]:
    """The code sets knowledge marks with a liveness, ambiguous ones first."""
    sets = [s for s in vocabulary.code_sets.values() if s.liveness in LIVENESS_ORDER]
    return [s.key for s in sorted(sets, key=lambda s: LIVENESS_ORDER.index(s.liveness))]


def _vaccine(liveness: str | None, concepts: list[Any], cvx: str) -> dict[str, Any]:
    name = next((t for c in concepts for t in texts(c)), f"vaccine (CVX {cvx})")
    return {"liveness": liveness, "name": name, "cvx": cvx}


def is_current_condition(condition: dict[str, Any]) -> bool:
    clinical = _status(condition, "clinicalStatus")
    return clinical not in INACTIVE and _status(condition, "verificationStatus") not in UNCONFIRMED


def _status(resource: dict[str, Any], field: str) -> str | None:
    """A status as a CodeableConcept (R4) or a plain code (STU3)."""
    value = resource.get(field)
    if isinstance(value, str):
        return value
    return next((c.get("code") for c in codings(value)), None)


def condition_topics(condition: dict[str, Any], vocabulary: Vocabulary) -> list[str]:
    """The topics a current problem belongs to, by code (any system knowledge lists for the
    topic) or by name; a "history of" problem belongs to none."""
    concept = condition.get("code")
    if any(HISTORY_OF.search(t) for t in texts(concept)):
        return []
    found = []
    for key in CONDITION_TOPICS:
        sets = vocabulary.topic_sets(key)
        coded = any(_coded_in(c, s) for s in sets for c in codings(concept))
        if coded or any(vocabulary.code_set_named_in(key, t) for t in texts(concept)):
            found.append(key)
    return found


def _coded_in(coding: dict[str, Any], code_set: CodeSet) -> bool:
    code = coding.get("code")
    if coding.get("system") != code_set.system or not isinstance(code, str):
        return False
    if code_set.system == ICD10CM:  # ICD-10-CM nests by prefix: "O2" covers O20-O29
        bare = code.upper().replace(".", "")
        return any(bare.startswith(p.replace(".", "")) for p in code_set.codes)
    return code in code_set.codes


def status_answer(observation: dict[str, Any], vocabulary: Vocabulary) -> tuple[str, str] | None:
    """(status code set, topic) of a pregnancy or breastfeeding status observation, and whether
    its answer is yes: the topic, or "" when the answer is no or not recognised."""
    for key, topic in STATUS_TOPICS.items():
        code_set = vocabulary.code_sets[key]
        if not has_code(observation.get("code"), code_set.system, code_set.codes):
            continue
        answer = observation.get("valueCodeableConcept")
        words = texts(answer) + [t for t in [observation.get("valueString")] if isinstance(t, str)]
        sets = vocabulary.topic_sets(topic)
        coded = any(_coded_in(c, s) for s in sets for c in codings(answer))
        named = any(vocabulary.code_set_named_in(topic, t) and not NEGATED.search(t) for t in words)
        return key, topic if coded or named else ""
    return None


def child_pugh_class(resource: dict[str, Any], vocabulary: Vocabulary, params: dict) -> str | None:
    """Class A/B/C from a Child-Pugh Observation (score or class) or a Condition naming it.
    Only a class written next to "Child-Pugh", "CTP" or "class" counts, never a stray letter."""
    if not any(vocabulary.code_set_named_in("child-pugh", t) for t in texts(resource.get("code"))):
        return None
    words = " ".join(
        texts(resource.get("code"))
        + texts(resource.get("valueCodeableConcept"))
        + [str(resource.get("valueString") or "")]
    )
    named = CLASS_TEXT.search(words)
    score = _score(resource)
    if score is None and not named and SCORE_TEXT.search(words):
        score = int(SCORE_TEXT.search(words)[1])
    if score is not None:
        if score >= params["child-pugh-c-min-score"]:
            return "C"
        return "B" if score >= params["child-pugh-b-min-score"] else "A"
    return (named[1] or named[2]).upper() if named else None


def _score(resource: dict[str, Any]) -> int | None:
    value = resource.get("valueInteger")
    if value is None and isinstance(resource.get("valueQuantity"), dict):
        value = resource["valueQuantity"].get("value")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
