"""Medication resources -> which drug (see medication_identity) and what dose."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.vocabulary import Drug, Vocabulary

from .coding import codings
from .dose_steps import current_step
from .medication_identity import identify

MG_UNITS = {"mg", "milligram", "milligrams"}
UNIT_DOSE_UNITS = {"{capsule}", "{capsules}", "capsule", "capsules", "cap", "{cap}"}
PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1, "wk": 7, "mo": 30, "a": 365}
# HL7 v3 GTSAbbreviation timing codes (and the hourly ones EHRs send) -> administrations per day.
TIMING_CODES = {"QD": 1, "BID": 2, "TID": 3, "QID": 4, "AM": 1, "PM": 1, "QOD": 0.5}
TIMING_CODES |= {f"Q{hours}H": 24 / hours for hours in (1, 2, 3, 4, 6, 8, 12, 24)}


def drugs_named(resource: dict[str, Any], vocabulary: Vocabulary) -> list[str]:
    return list(identify(resource, vocabulary).drugs)


def drugs_named_safely(request: dict[str, Any], vocabulary: Vocabulary) -> list[str]:
    """drugs_named for a resource that may be malformed: [] when it cannot be read."""
    try:
        return drugs_named(request, vocabulary)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError):
        return []


def dose(request: dict[str, Any], drug: Drug, now: date | None = None) -> dict[str, Any]:
    """dose_mg (largest single dose), daily_mg and doses_per_day of the taper step covering
    `now` (see dose_steps), or dose_known false."""
    per_dose, daily, per_day = [], 0.0, 0.0
    instructions = request.get("dosageInstruction", request.get("dosage"))
    if not isinstance(instructions, list) or not instructions:
        return {"dose_known": False}
    step = current_step(request, instructions, now)
    if step is None:
        return {"dose_known": False}
    for instruction in step:
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
    quantity = first.get("doseQuantity", instruction.get("doseQuantity"))  # R4, or STU3/DSTU2
    dose_range = first.get("doseRange", instruction.get("doseRange"))
    if quantity is None and isinstance(dose_range, dict):
        quantity = _single_value(dose_range)
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
    concept = timing.get("code")
    text = concept.get("text") if isinstance(concept, dict) else None
    code = next((c.get("code") for c in codings(concept)), text)
    return TIMING_CODES.get(code.strip().upper()) if isinstance(code, str) else None


def _single_value(dose_range: dict[str, Any]) -> dict[str, Any] | None:
    """A doseRange whose low and high are the same quantity is that dose; a true range is not
    one dose (the dose stays unknown rather than guessed)."""
    low, high = dose_range.get("low"), dose_range.get("high")
    return low if isinstance(low, dict) and low == high else None
