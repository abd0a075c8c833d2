"""The label drug's course: therapy start and phase, eGFR against baseline, what is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from engine.vocabulary import MonitoringItem

from .coding import parse_date

CURRENT = {"active", "on-hold"}
NOT_ORDERS = {"entered-in-error", "draft", "cancelled"}


@dataclass(frozen=True)
class Order:
    resource: dict[str, Any]
    authored: date | None
    dose_mg: float | None
    status: str = ""

    @property
    def current(self) -> bool:
        return self.status in CURRENT


@dataclass(frozen=True)
class Reading:
    """A dated lab value with the resource it came from."""

    resource: dict[str, Any]
    when: date
    value: float


def history(orders: list[Order]) -> list[Order]:
    """Orders that count as therapy (any status but draft/cancelled/error), oldest first."""
    kept = [o for o in orders if o.status not in NOT_ORDERS]
    return sorted(kept, key=lambda o: o.authored or date.min)


def therapy(past: list[Order], now: date) -> dict[str, Any]:
    """phase: initiation (never ordered), continuing (a current order) or restart."""
    if not past:
        return {"phase": "initiation", "days": 0, "weeks": 0}
    start = next((o.authored for o in past if o.authored), now)
    days = (now - start).days
    phase = "continuing" if any(o.current for o in past) else "restart"
    return {"phase": phase, "start": start.isoformat(), "days": days, "weeks": days // 7}


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


def authored(resource: dict[str, Any]) -> date | None:
    return parse_date(resource.get("authoredOn"))
