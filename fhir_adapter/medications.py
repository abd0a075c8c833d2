"""MedicationRequest -> medication facts: which drug (by RxNorm, NDC or name) and what dose."""

from __future__ import annotations

from typing import Any

from engine.vocabulary import Drug, Vocabulary

from .coding import NDC, RXNORM, codings, texts

MG_UNITS = {"mg", "milligram", "milligrams"}
UNIT_DOSE_UNITS = {"{capsule}", "{capsules}", "capsule", "capsules", "cap", "{cap}"}
PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1, "wk": 7, "mo": 30, "a": 365}
# HL7 v3 GTSAbbreviation timing codes -> administrations per day.
TIMING_CODES = {"QD": 1, "BID": 2, "TID": 3, "QID": 4, "AM": 1, "PM": 1, "QOD": 0.5}


def medication_concepts(request: dict[str, Any]) -> list[Any]:
    """The CodeableConcepts that name the drug: inline, contained Medication, or reference."""
    concept = request.get("medicationCodeableConcept")
    if concept is not None:
        return [concept]
    ref = request.get("medicationReference")
    if not isinstance(ref, dict):
        return []
    found: list[Any] = [{"text": ref["display"]}] if isinstance(ref.get("display"), str) else []
    target = ref.get("reference")
    for med in request.get("contained") or []:
        if isinstance(med, dict) and isinstance(target, str) and target == f"#{med.get('id')}":
            found.append(med.get("code"))
            found += [
                i.get("itemCodeableConcept")
                for i in med.get("ingredient") or []
                if isinstance(i, dict)
            ]
    return found


def drugs_named(request: dict[str, Any], vocabulary: Vocabulary) -> list[str]:
    keys: list[str] = []
    for concept in medication_concepts(request):
        for coding in codings(concept):
            code = coding.get("code")
            if not isinstance(code, str):
                continue
            if coding.get("system") == RXNORM:
                keys.append(vocabulary.drug_by_rxnorm(code))
            elif coding.get("system") == NDC:
                keys.append(vocabulary.drug_by_ndc(code))
        for text in texts(concept):
            keys += vocabulary.drugs_named_in(text)
    return list(dict.fromkeys(k for k in keys if k))


def drugs_named_safely(request: dict[str, Any], vocabulary: Vocabulary) -> list[str]:
    """drugs_named for a resource that may be malformed: [] when it cannot be read."""
    try:
        return drugs_named(request, vocabulary)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError):
        return []


def display_name(request: dict[str, Any]) -> str:
    return next((t for c in medication_concepts(request) for t in texts(c)), "medication order")


def dose(request: dict[str, Any], drug: Drug) -> dict[str, Any]:
    """dose_mg (largest single dose), daily_mg and doses_per_day, or dose_known false."""
    per_dose, daily, per_day = [], 0.0, 0.0
    instructions = request.get("dosageInstruction")
    if not isinstance(instructions, list) or not instructions:
        return {"dose_known": False}
    for instruction in instructions:
        amount = _amount_mg(instruction, drug) if isinstance(instruction, dict) else None
        times = _per_day(instruction.get("timing")) if isinstance(instruction, dict) else None
        if amount is None or times is None:
            return {"dose_known": False}
        per_dose.append(amount)
        daily += amount * times
        per_day += times
    return {
        "dose_known": True,
        "dose_mg": round(max(per_dose), 4),
        "daily_mg": round(daily, 4),
        "doses_per_day": round(per_day, 4),
    }


def _amount_mg(instruction: dict[str, Any], drug: Drug) -> float | None:
    rates = instruction.get("doseAndRate")
    first = rates[0] if isinstance(rates, list) and rates and isinstance(rates[0], dict) else {}
    quantity = first.get("doseQuantity")
    if not isinstance(quantity, dict):
        return None
    value = quantity.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return None
    units = {str(quantity.get(k, "")).strip().lower() for k in ("code", "unit")} - {""}
    if units & MG_UNITS:
        return float(value)
    if units & UNIT_DOSE_UNITS and drug.strength_mg:
        return float(value) * drug.strength_mg
    return None


def _per_day(timing: Any) -> float | None:
    if not isinstance(timing, dict):
        return None
    repeat = timing.get("repeat")
    if isinstance(repeat, dict) and (repeat.get("frequency") or repeat.get("periodUnit")):
        frequency, period = repeat.get("frequency", 1), repeat.get("period", 1)
        days = PERIOD_DAYS.get(repeat.get("periodUnit", "d"))
        numbers = all(isinstance(x, int | float) and x > 0 for x in (frequency, period))
        return frequency / (period * days) if numbers and days else None
    if isinstance(repeat, dict) and isinstance(repeat.get("timeOfDay"), list):
        return float(len(repeat["timeOfDay"])) or None
    if isinstance(repeat, dict) and isinstance(repeat.get("when"), list):
        return float(len(repeat["when"])) or None
    code = next((c.get("code") for c in codings(timing.get("code"))), None)
    return TIMING_CODES.get(code)
