"""Lab and vital-sign facts, and the course of the label drug: therapy phase, eGFR against
baseline, and which monitoring is due."""

from __future__ import annotations

from datetime import date

from . import clinical, orders, therapy
from .build import Build
from .coding import effective_date
from .validation import problem, unusable


def _readings(build: Build, key: str, code_set: str) -> list[therapy.Reading]:
    """Usable readings of one code set, newest first; unusable newest ones become facts."""
    found = []
    for obs in build.prefetched(key, "Observation"):
        with build.reading(obs):
            data = clinical.observation_fact(obs, build.kb.vocabulary.code_sets[code_set])
            if data is not None:
                found.append((obs, data, effective_date(obs) or date.min))
    found.sort(key=lambda entry: entry[2], reverse=True)
    readings = []
    for obs, data, _ in found:
        if isinstance(data, str):
            if not readings:
                data = {"resource": "Observation", "field": "result value", "reason": data}
                build.out.add("unusable", obs, data)
            continue
        readings.append(therapy.Reading(obs, date.fromisoformat(data["date"]), data["value"]))
    return readings


def _provided(build: Build, key: str) -> bool:
    """True when the EHR answered for this key (data or known-empty), so a gap is in the chart."""
    value = build.request.prefetch.get(key)
    return value is not None and value.state in ("ok", "null")


def _latest(build: Build, kind: str, reading: therapy.Reading, extra: dict | None = None) -> None:
    issue = problem(reading.resource)
    if issue:
        build.out.add("unusable", reading.resource, unusable(reading.resource, issue))
        return
    data = {
        "value": reading.value,
        "date": reading.when.isoformat(),
        "age_days": (build.now - reading.when).days,
    }
    build.out.add(kind, reading.resource, {**data, **(extra or {})})


def lab_and_course_facts(build: Build, label_orders: list[therapy.Order]) -> None:
    egfr = _readings(build, "egfr", "egfr")
    if egfr:
        _latest(build, "egfr", egfr[0])
    elif _provided(build, "egfr"):
        build.out.gap("egfr", "no usable eGFR result on record")
    potassium = _readings(build, "potassium", "potassium")
    if potassium:
        _latest(
            build,
            "potassium",
            potassium[0],
            {"above_range": clinical.above_range(potassium[0].resource)},
        )
    elif _provided(build, "potassium"):
        build.out.gap("potassium", "no usable potassium result on record")
    pressure = None
    with build.reading(None):
        observations = build.prefetched("bloodPressure", "Observation")
        pressure = clinical.latest_blood_pressure(observations, build.kb.vocabulary)
    if pressure:
        obs, data = pressure
        data = {**data, "age_days": (build.now - date.fromisoformat(data["date"])).days}
        build.out.add("blood-pressure", obs, data)
    elif _provided(build, "bloodPressure"):
        build.out.gap("blood-pressure", "no blood pressure on record")
    for obs in build.prefetched("childPugh", "Observation"):
        with build.reading(obs):
            found = orders.child_pugh_class(obs, build.kb.vocabulary, build.kb.params)
            if found:
                data = {"class": found, "name": "Child-Pugh class " + found}
                build.out.add("child-pugh", obs, data)
    with build.reading(None):
        _course(build, therapy.history(label_orders), egfr, potassium, pressure)


def _course(build: Build, past: list[therapy.Order], egfr, potassium, pressure) -> None:
    state = therapy.therapy(past, build.now)
    if state["phase"] == "initiation":
        build.out.add("therapy", None, {**state, "reduced_after_fall": False})
        return
    start = date.fromisoformat(state["start"])
    base = therapy.baseline(egfr, start)
    reduced = therapy.reduced_after_fall(past, egfr, base, build.kb.params["egfr-fall-reduce-pct"])
    build.out.add("therapy", None, {**state, "reduced_after_fall": reduced})
    if base is None:
        build.out.gap("egfr-baseline", "no eGFR on or before the first voclosporin order")
    elif egfr:
        _latest_course(build, egfr[0], base)
    if state["phase"] == "continuing":
        lasts = {
            "egfr": egfr[0].when if egfr else None,
            "potassium": potassium[0].when if potassium else None,
            "blood-pressure": date.fromisoformat(pressure[1]["date"]) if pressure else None,
        }
        _monitoring(build, past, start, reduced, lasts)


def _monitoring(build: Build, past, start: date, reduced: bool, lasts: dict) -> None:
    current = next((o for o in reversed(past) if o.current), None)
    reassess = None
    if reduced and current and current.authored:
        reassess = (current.authored, build.kb.params["egfr-reassess-days"])
    for item in build.kb.monitoring.values():
        window = reassess if item.key == "egfr" else None
        found = therapy.due(item, start, lasts.get(item.key), build.now, window)
        if found:
            build.out.add("monitoring", None, found)


def _latest_course(build: Build, current: therapy.Reading, base: therapy.Reading) -> None:
    issue = problem(base.resource)
    if issue:
        build.out.add("unusable", base.resource, unusable(base.resource, issue))
        return
    build.out.add("egfr-course", current.resource, therapy.course(current, base))
