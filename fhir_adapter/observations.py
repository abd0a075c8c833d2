"""Observations read as a clinician reads them: which statuses count, when a result was taken,
units by meaning rather than spelling, bounds (">60") and values no body can have."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from engine.vocabulary import CodeSet, Vocabulary

from .coding import effective_instant, has_code, reference

FINAL = frozenset({"final", "amended", "corrected"})
REVISED = frozenset({"amended", "corrected"})
COMPARATORS = ("<=", ">=", "<", ">")
NUMBER_TEXT = re.compile(r"^\s*(<=|>=|<|>)?\s*(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
BP_FIELDS = (("systolic", "systolic-bp"), ("diastolic", "diastolic-bp"))


@dataclass(frozen=True)
class Policy:
    """Site choices for reading results, from knowledge parameters (see knowledge/policies.ttl)."""

    preliminary: bool = False
    pair_minutes: float = 10
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict, hash=False)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Policy:
        """`plausible-<code set>-min` and `-max` pairs give the ranges."""
        ranges = {
            key[len("plausible-") : -len("-min")]: (low, params[key[:-3] + "max"])
            for key, low in params.items()
            if key.startswith("plausible-") and key.endswith("-min") and key[:-3] + "max" in params
        }
        return cls(
            preliminary=bool(params.get("use-preliminary-results", 0)),
            pair_minutes=params.get("bp-pair-window-minutes", 10),
            ranges=ranges,
        )

    def counts(self, observation: dict[str, Any]) -> bool:
        """A result counts when final, amended or corrected (preliminary: by site policy)."""
        status = observation.get("status")
        if not isinstance(status, str):
            return False
        return status in FINAL or (self.preliminary and status == "preliminary")


@lru_cache(maxsize=512)
def unit_key(unit: str) -> str:
    """A unit spelling reduced to what tells units apart: "mL/min/{1.73_m2}", "ml/min/1.73m²"
    and "mL/min/1.73 m2" agree; so do "mm[Hg]", "mm Hg" and "mmHg"."""
    return re.sub(r"[\s_{}\[\]]", "", unit.replace("²", "2")).casefold()


def value_in(holder: dict[str, Any], code_set: CodeSet, policy: Policy) -> tuple[float, str] | str:
    """(value, comparator) of a valueQuantity or a numeric valueString (">60"), or why not."""
    quantity = holder.get("valueQuantity")
    if isinstance(quantity, dict):
        found = _quantity(quantity, code_set)
    elif isinstance(holder.get("valueString"), str):
        match = NUMBER_TEXT.match(holder["valueString"])
        found = (_number(match[2]), match[1] or "") if match else "no numeric value"
    else:
        found = "no numeric value"
    plausible = policy.ranges.get(code_set.key)
    if isinstance(found, str) or not plausible or plausible[0] <= found[0] <= plausible[1]:
        return found
    return f"value {found[0]:g} is outside the plausible range {plausible[0]:g} to {plausible[1]:g}"


def _quantity(quantity: dict[str, Any], code_set: CodeSet) -> tuple[float, str] | str:
    value = quantity.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        return "no numeric value"
    units = [u for u in (quantity.get("code"), quantity.get("unit")) if isinstance(u, str)]
    accepted = _accepted(code_set.units)
    if accepted and not any(unit_key(u) in accepted for u in units):
        found = ", ".join(sorted(set(map(str, units)))) or "missing"
        return f"unit {found} is not one of {', '.join(sorted(code_set.units))}"
    comparator = quantity.get("comparator")
    return value, comparator if comparator in COMPARATORS else ""


def _number(text: str) -> float:
    """A numeral as a number; whole ones as int, so cards print "60", not "60.0"."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


@cache
def _accepted(units: frozenset[str]) -> frozenset[str]:
    return frozenset(unit_key(u) for u in units)


def reading(obs: dict[str, Any], code_set: CodeSet, policy: Policy) -> dict[str, Any] | str | None:
    """value, comparator and instant of a counted result in the code set, the reason it cannot
    be used, or None when it is not such a result."""
    if obs.get("resourceType") != "Observation" or not policy.counts(obs):
        return None
    if not has_code(obs.get("code"), code_set.system, code_set.codes):
        return None
    when = effective_instant(obs)
    holder = obs
    if "valueQuantity" not in obs and "valueString" not in obs:
        holder = next((c for c in obs.get("component") or [] if _coded(c, code_set)), obs)
    found = value_in(holder, code_set, policy)
    if isinstance(found, str) or when is None:
        return found if isinstance(found, str) else "no effective date"
    return {"value": found[0], "comparator": found[1], "when": when}


def current_versions(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One version per resource: an amended or corrected copy replaces the original."""
    kept: dict[str, dict[str, Any]] = {}
    for index, obs in enumerate(observations):
        key = reference(obs) or f"#{index}"
        if key not in kept or _version(obs) > _version(kept[key]):
            kept[key] = obs
    return list(kept.values())


def _version(obs: dict[str, Any]) -> tuple[bool, str, str]:
    """Revised beats original, then the later lastUpdated; the content breaks a tie, so the
    order copies arrive in never decides."""
    meta = obs.get("meta")
    updated = meta.get("lastUpdated") if isinstance(meta, dict) else None
    content = json.dumps(obs, sort_keys=True, default=str)
    revised = isinstance(obs.get("status"), str) and obs["status"] in REVISED
    return revised, updated if isinstance(updated, str) else "", content


def newest_first(found: list[tuple[datetime, dict[str, Any], Any]]) -> list:
    """Sort (instant, resource, data) newest first; same instant: by reference, so input
    order never decides."""
    return sorted(found, key=lambda e: (e[0], reference(e[1])), reverse=True)


def blood_pressure(
    observations: list[dict[str, Any]], vocabulary: Vocabulary, policy: Policy
) -> tuple[dict, dict | str] | None:
    """The newest blood-pressure reading: (resource, {systolic?, diastolic?, date}) or
    (resource, reason it cannot be used). A loose systolic or diastolic result takes the nearest
    partner taken within the policy's window on the same day; without one it stands alone."""
    panel = vocabulary.code_sets["blood-pressure-panel"]
    dated = [
        (when, obs, has_code(obs.get("code"), panel.system, panel.codes))
        for obs in current_versions(observations)
        if policy.counts(obs) and (when := effective_instant(obs))
    ]
    dated = newest_first(dated)
    for when, obs, is_panel in dated:
        values = _pressures(obs, vocabulary, policy, is_panel)
        if isinstance(values, str):
            return obs, values
        if values and not is_panel:
            values = {**_partner(when, obs, values, dated, vocabulary, policy), **values}
        if values:
            return obs, {**values, "date": when.date().isoformat()}
    return None


def _partner(when: datetime, obs: dict, values: dict, dated: list, vocabulary, policy) -> dict:
    """The other pressure of a loose result: the nearest usable one within the window that day."""
    window = policy.pair_minutes * 60
    near = [
        (abs((w - when).total_seconds()), reference(o), o)
        for w, o, is_panel in dated
        if not is_panel and o is not obs and w.date() == when.date()
    ]
    for _, _, other in sorted((n for n in near if n[0] <= window), key=lambda n: n[:2]):
        found = _pressures(other, vocabulary, policy, False)
        if isinstance(found, dict) and found and not set(found) & set(values):
            return found
    return {}


def _pressures(obs, vocabulary: Vocabulary, policy: Policy, is_panel: bool) -> dict | str:
    """{systolic, diastolic} found in a panel's components or a loose result, or a reason."""
    values: dict[str, float] = {}
    for name, key in BP_FIELDS:
        code_set = vocabulary.code_sets[key]
        holders = [obs] if has_code(obs.get("code"), code_set.system, code_set.codes) else []
        if is_panel:
            holders = [c for c in obs.get("component") or [] if _coded(c, code_set)]
        for holder in holders:
            found = value_in(holder, code_set, policy)
            if isinstance(found, str):
                return f"{name}: {found}"
            values[name] = found[0]
    return values


def _coded(component: Any, code_set: CodeSet) -> bool:
    return isinstance(component, dict) and bool(
        has_code(component.get("code"), code_set.system, code_set.codes)
    )
