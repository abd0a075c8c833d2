"""Patient, allergy and observation resources -> facts."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.vocabulary import Vocabulary

from .coding import RXNORM, codings, parse_date, texts

INACTIVE_ALLERGY = {"inactive", "resolved"}
UNCONFIRMED_ALLERGY = {"refuted", "entered-in-error"}


def age_and_sex(patient: dict[str, Any], now: date) -> dict[str, Any]:
    data: dict[str, Any] = {}
    born = parse_date(patient.get("birthDate"))
    if born:
        data["age"] = now.year - born.year - ((now.month, now.day) < (born.month, born.day))
    if isinstance(patient.get("gender"), str):
        data["sex"] = patient["gender"]
    return data


def deceased(patient: dict[str, Any]) -> bool:
    return patient.get("deceasedBoolean") is True or bool(patient.get("deceasedDateTime"))


def allergy_target(allergy: dict[str, Any], vocabulary: Vocabulary) -> tuple[str, str] | None:
    """(substance key, drug it counts against) for a current allergy to a known substance."""
    if _status(allergy, "clinicalStatus") in INACTIVE_ALLERGY:
        return None
    if _status(allergy, "verificationStatus") in UNCONFIRMED_ALLERGY:
        return None
    concept = allergy.get("code")
    keys = [
        vocabulary.drug_by_rxnorm(c.get("code", ""))
        for c in codings(concept)
        if c.get("system") == RXNORM
    ]
    for text in texts(concept):  # a drug named anywhere; an excipient only as the allergen itself
        keys += [*vocabulary.drugs_named_in(text), vocabulary.substance_headed(text)]
    for key in (k for k in keys if k):
        if key in vocabulary.drugs:
            return key, key
        parent = vocabulary.substances[key].excipient_of
        if parent:
            return key, parent
    return None


def allergy_severity(allergy: dict[str, Any]) -> dict[str, Any]:
    """Serious when criticality is high or a reaction was severe; with no criticality, also
    when no reaction severity was recorded (a recorded mild or moderate one is not serious)."""
    criticality = allergy.get("criticality")
    severities = {
        r.get("severity") for r in allergy.get("reaction") or [] if isinstance(r, dict)
    } & {"mild", "moderate", "severe"}
    known = criticality in ("low", "high")
    return {
        "criticality": criticality if known else "not recorded",
        "serious": "severe" in severities or criticality == "high" or not (known or severities),
    }


def _status(resource: dict[str, Any], field: str) -> str | None:
    return next((c.get("code") for c in codings(resource.get(field))), None)


def above_range(observation: dict[str, Any]) -> str:
    """Is the value above normal? From the interpretation or reference range; else "unknown".

    An interpretation or reference range of an unreadable shape is simply not used."""
    flags = {c.get("code") for i in _items(observation, "interpretation") for c in codings(i)}
    if flags & {"H", "HH", "HU", ">"}:
        return "true"
    quantity = observation.get("valueQuantity")
    value = quantity.get("value") if isinstance(quantity, dict) else None
    highs = [
        r["high"]["value"]
        for r in _items(observation, "referenceRange")
        if isinstance(r, dict)
        and isinstance(r.get("high"), dict)
        and isinstance(r["high"].get("value"), int | float)
    ]
    if highs and isinstance(value, int | float):
        return "true" if value > min(highs) else "false"
    return "false" if flags else "unknown"


def _items(resource: dict[str, Any], field: str) -> list[Any]:
    """A repeating element's items; anything but a list reads as none."""
    value = resource.get(field)
    return value if isinstance(value, list) else []
