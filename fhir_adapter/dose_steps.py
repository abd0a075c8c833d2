"""A taper's steps: dosage instructions with different `sequence` numbers follow each other,
those sharing one are taken together. The dose is the step that covers "now"."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from .coding import parse_date

DURATION_DAYS = {"h": 1 / 24, "d": 1, "wk": 7, "mo": 30, "a": 365}


def current_step(resource: dict[str, Any], instructions: list, now: date | None) -> list | None:
    """The instructions of the step covering `now`, all of them when there is one step, or
    None when the step cannot be told (no dates, or sequence numbers that are not integers)."""
    sequences = {i.get("sequence") if isinstance(i, dict) else None for i in instructions}
    if len(sequences) <= 1:
        return instructions
    if now is None or not all(isinstance(s, int) for s in sequences):
        return None
    start = _start(resource)
    for number in sorted(sequences):
        step = [i for i in instructions if i.get("sequence") == number]
        window = _window(step, start)
        if window is None:
            return step if number == max(sequences) else None
        begin, end = window
        if now < end or number == max(sequences):
            return step if now >= begin or number == min(sequences) else None
        start = end
    return None


def _start(resource: dict[str, Any]) -> date | None:
    dispense = resource.get("dispenseRequest")
    period = dispense.get("validityPeriod") if isinstance(dispense, dict) else None
    started = period.get("start") if isinstance(period, dict) else None
    return parse_date(resource.get("authoredOn")) or parse_date(started)


def _window(step: list[dict], start: date | None) -> tuple[date, date] | None:
    """[begin, end) of one step from timing.repeat.boundsPeriod, or boundsDuration counted
    from where the previous step ended."""
    repeat = next((_repeat(i) for i in step if _repeat(i)), {})
    period = repeat.get("boundsPeriod")
    if (
        isinstance(period, dict)
        and parse_date(period.get("start"))
        and parse_date(period.get("end"))
    ):
        return parse_date(period["start"]), parse_date(period["end"]) + timedelta(days=1)
    duration = repeat.get("boundsDuration")
    if start is None or not isinstance(duration, dict):
        return None
    value, unit = (
        duration.get("value"),
        DURATION_DAYS.get(duration.get("code") or duration.get("unit")),
    )
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0 or not unit:
        return None
    return start, start + timedelta(days=value * unit)


def _repeat(instruction: dict) -> dict:
    timing = instruction.get("timing")
    repeat = timing.get("repeat") if isinstance(timing, dict) else None
    return repeat if isinstance(repeat, dict) else {}
