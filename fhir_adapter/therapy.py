"""The label drug's course: therapy start and phase, eGFR against baseline, what is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from engine.vocabulary import MonitoringItem

from .coding import parse_date, reference

NOT_ORDERS = {"entered-in-error", "draft", "cancelled"}


@dataclass(frozen=True)
class Order:
    """A label-drug order as the course sees it. `started` is the earliest date the order says
    therapy ran from (authoredOn or dispenseRequest.validityPeriod.start); `prior` names the
    order it renews (priorPrescription)."""

    resource: dict[str, Any]
    authored: date | None
    dose_mg: float | None
    status: str = ""
    started: date | None = None
    prior: str = ""
    ref: str = ""

    @property
    def current(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class Reading:
    """A dated lab value with the resource it came from."""

    resource: dict[str, Any]
    when: date
    value: float
    comparator: str = ""


def history(orders: list[Order]) -> list[Order]:
    """Orders that count as therapy (any status but draft/cancelled/error), oldest first."""
    kept = [o for o in orders if o.status not in NOT_ORDERS]
    return sorted(kept, key=lambda o: (o.authored or date.min, o.ref))


def therapy(past: list[Order], now: date) -> dict[str, Any]:
    """phase: initiation (never ordered, or the last course was completed), continuing (an
    active order), on-hold (only held orders) or restart (stopped). The start is the earliest
    date any order gives; it is unknown when an order renews one missing from the record."""
    held = any(o.status == "on-hold" for o in past)
    ongoing = held or any(o.current for o in past)
    if not past or (past[-1].status == "completed" and not ongoing):
        return {"phase": "initiation", "days": 0, "weeks": 0, "start_known": True}
    start = min((d for o in past for d in (o.authored, o.started) if d), default=now)
    days = (now - start).days
    phase = "continuing" if any(o.current for o in past) else "on-hold" if held else "restart"
    data = {"phase": phase, "start": start.isoformat(), "days": days, "weeks": days // 7}
    return {**data, "start_known": not start_unknown(past)}


def start_unknown(past: list[Order]) -> str:
    """Why the record cannot tell when therapy started, or "" when it can."""
    refs = {o.ref for o in past}
    if any(o.prior and o.prior not in refs for o in past):
        return "an order renews one (priorPrescription) that is not in the record"
    if not any(o.authored or o.started for o in past):
        return "no order on record gives a date"
    return ""


def percent(part: float, whole: float) -> float:
    """part/whole in %, computed exactly so 56/70 is 80 % (a 20 % fall), not 79.99…"""
    exact = Fraction(Decimal(str(part))) / Fraction(Decimal(str(whole))) * 100
    return round(float(exact), 6)


def baseline(readings: list[Reading], start: date) -> Reading | None:
    """The last eGFR on or before therapy start."""
    before = [r for r in readings if r.when <= start]
    return max(before, key=lambda r: r.when) if before else None


def course(current: Reading, base: Reading) -> dict[str, Any]:
    of_baseline = percent(current.value, base.value)
    return {
        "current": current.value,
        "current_date": current.when.isoformat(),
        "baseline": base.value,
        "baseline_date": base.when.isoformat(),
        "baseline_ref": f"Observation/{base.resource.get('id')}",
        "pct_of_baseline": of_baseline,
        "fall_pct": round(100 - of_baseline, 6),
        # a baseline known only as a lower bound (>90) or a latest value only as an upper bound
        # (<15) makes fall_pct the least the fall can be, not the fall
        "exact": not (base.comparator.startswith(">") or current.comparator.startswith("<")),
    }


def reduced_after_fall(
    past: list[Order], readings: list[Reading], base: Reading | None, fall: float
) -> bool:
    """An eGFR-driven reduction: the current dose is below an earlier one, ordered after an
    eGFR that had fallen more than `fall` % from baseline."""
    current = next((o for o in reversed(past) if o.current and o.dose_mg), None)
    if current is None or base is None or current.authored is None:
        return False
    earlier = [o.dose_mg for o in past if o is not current and o.dose_mg]
    fell = any(
        r.when <= current.authored and 100 - percent(r.value, base.value) > fall for r in readings
    )
    return bool(earlier) and current.dose_mg < max(earlier) and fell


def due(
    item: MonitoringItem,
    start: date,
    last: date | None,
    now: date,
    reassess: tuple[date, int] | None,
) -> dict | None:
    """When the next measurement of `item` falls due, or None when none is scheduled now.

    `reassess` is (date of an eGFR-driven change, days): with no measurement since that change,
    the next one is due within those days."""
    counted_from = max(last, start) if last else start
    interval = item.interval_on((counted_from - start).days)
    if interval is None or item.interval_on((now - start).days) is None:
        return None
    when = counted_from + timedelta(days=interval)
    if reassess and (last is None or last < reassess[0]):
        when = min(when, reassess[0] + timedelta(days=reassess[1]))
    return {
        "item": item.key,
        "name": item.name,
        "due": when.isoformat(),
        "last": last.isoformat() if last else "none since therapy start",
        "overdue_days": (now - when).days,
        "is_due": now >= when,
    }


def order(resource: dict[str, Any], dose_mg: float | None) -> Order:
    """The course signals of a MedicationRequest, read minimally."""
    status = resource.get("status")
    dispense = resource.get("dispenseRequest")
    period = dispense.get("validityPeriod") if isinstance(dispense, dict) else None
    prior = resource.get("priorPrescription")
    return Order(
        resource,
        parse_date(resource.get("authoredOn")),
        dose_mg,
        status if isinstance(status, str) else "unknown",
        parse_date(period.get("start")) if isinstance(period, dict) else None,
        _relative(prior.get("reference")) if isinstance(prior, dict) else "",
        reference(resource),
    )


def _relative(url: Any) -> str:
    """ "https://ehr/fhir/MedicationRequest/1" -> "MedicationRequest/1", to match references."""
    return "/".join(url.split("/")[-2:]) if isinstance(url, str) else ""
