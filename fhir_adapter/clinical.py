"""Patient, allergy and observation resources -> facts."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.vocabulary import CodeSet, Vocabulary

from .coding import RXNORM, codings, effective_date, has_code, parse_date, texts

USABLE_OBSERVATION = {"final", "amended", "corrected", "preliminary"}
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
    for text in texts(concept):
        keys += vocabulary.substances_named_in(text)
    for key in (k for k in keys if k):
        if key in vocabulary.drugs:
            return key, key
        parent = vocabulary.substances[key].excipient_of
        if parent:
            return key, parent
    return None


def allergy_severity(allergy: dict[str, Any]) -> dict[str, Any]:
    criticality = allergy.get("criticality")
    severe = any(
        isinstance(r, dict) and r.get("severity") == "severe" for r in allergy.get("reaction") or []
    )
    known = criticality in ("low", "high")
    return {
        "criticality": criticality if known else "not recorded",
        "serious": severe or criticality == "high" or not known,
    }


def _status(resource: dict[str, Any], field: str) -> str | None:
    return next((c.get("code") for c in codings(resource.get(field))), None)


def quantity_in(
    observation: dict[str, Any], code_set: CodeSet
) -> tuple[float, str] | tuple[None, str]:
    """(value, comparator) of the observation or its matching component, or (None, reason)."""
    holder = observation
    if "valueQuantity" not in observation:
        holder = next(
            (
                c
                for c in observation.get("component") or []
                if isinstance(c, dict) and has_code(c.get("code"), code_set.system, code_set.codes)
            ),
            observation,
        )
    quantity = holder.get("valueQuantity")
    value = quantity.get("value") if isinstance(quantity, dict) else None
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or value != value
        or abs(value) == float("inf")
    ):
        return None, "no numeric value"
    units = {quantity.get("code"), quantity.get("unit")} - {None}
    if code_set.units and not units & code_set.units:
        found = ", ".join(sorted(map(str, units))) or "missing"
        return None, f"unit {found} is not one of {', '.join(sorted(code_set.units))}"
    return quantity["value"], quantity.get("comparator", "")


def observation_fact(obs: dict[str, Any], code_set: CodeSet) -> dict[str, Any] | str | None:
    """The value and date of a usable observation in the code set, a reason it is unusable, or
    None when it is not such an observation at all."""
    if obs.get("status") not in USABLE_OBSERVATION or obs.get("resourceType") != "Observation":
        return None
    if not has_code(obs.get("code"), code_set.system, code_set.codes):
        return None
    when = effective_date(obs)
    value, comparator = quantity_in(obs, code_set)
    if value is None or when is None:
        return comparator if value is None else "no effective date"
    data = {"value": value, "date": when.isoformat()}
    if comparator:
        data["comparator"] = comparator
    return data


def latest_blood_pressure(
    observations: list[dict[str, Any]], vocabulary: Vocabulary
) -> tuple[dict, dict] | None:
    """The newest systolic/diastolic pair: from a panel, or loose readings taken together."""
    sets = vocabulary.code_sets
    panel, sys_set, dia_set = (
        sets["blood-pressure-panel"],
        sets["systolic-bp"],
        sets["diastolic-bp"],
    )
    usable = [
        o for o in observations if o.get("status") in USABLE_OBSERVATION and effective_date(o)
    ]
    usable.sort(key=lambda o: (effective_date(o), str(o.get("effectiveDateTime"))), reverse=True)
    readings: dict[Any, dict[str, Any]] = {}
    for obs in usable:
        is_panel = has_code(obs.get("code"), panel.system, panel.codes)
        key = obs.get("id") if is_panel else obs.get("effectiveDateTime")
        for field, code_set in (("systolic", sys_set), ("diastolic", dia_set)):
            if is_panel or has_code(obs.get("code"), code_set.system, code_set.codes):
                value, _ = quantity_in(obs, code_set)
                if value is not None:
                    entry = readings.setdefault(
                        key, {"obs": obs, "date": effective_date(obs).isoformat()}
                    )
                    entry[field] = value
                    if "systolic" in entry and "diastolic" in entry:
                        return entry.pop("obs"), entry
    return None


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
