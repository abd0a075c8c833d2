"""Lab and vital-sign facts, and the course of the label drug: therapy phase, eGFR against
baseline, and which monitoring is due."""

from __future__ import annotations

from datetime import UTC, date, datetime

from . import clinical, observations, orders, therapy
from .build import Build
from .coding import effective_instant
from .validation import problem, unusable

MIN_INSTANT = datetime.min.replace(tzinfo=UTC)


def _readings(
    build: Build, key: str, code_set: str, policy: observations.Policy
) -> tuple[list[therapy.Reading], bool]:
    """Counted results of one code set, newest first, and whether the newest one could not be
    used (it becomes an `unusable` fact, and no older result stands in for it)."""
    found = []
    for obs in observations.current_versions(build.prefetched(key, "Observation")):
        with build.reading(obs):
            data = observations.reading(obs, build.kb.vocabulary.code_sets[code_set], policy)
            if data is not None:
                when = data["when"] if isinstance(data, dict) else effective_instant(obs)
                found.append((when or MIN_INSTANT, obs, data))
    found = observations.newest_first(found)
    blocked = bool(found) and isinstance(found[0][2], str)
    if blocked:
        unreadable = {"resource": "Observation", "field": "result value", "reason": found[0][2]}
        build.out.add("unusable", found[0][1], unreadable)
    readings = [
        therapy.Reading(obs, when.date(), data["value"], data["comparator"])
        for when, obs, data in found
        if isinstance(data, dict)
    ]
    return readings, blocked


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
    if reading.comparator:
        data["comparator"] = reading.comparator
    build.out.add(kind, reading.resource, {**data, **(extra or {})})


def lab_and_course_facts(build: Build, label_orders: list[therapy.Order]) -> None:
    policy = observations.Policy.from_params(build.kb.params)
    egfr, egfr_blocked = _readings(build, "egfr", "egfr", policy)
    if egfr and not egfr_blocked:
        _latest(build, "egfr", egfr[0])
    elif _provided(build, "egfr") and not egfr_blocked:
        build.out.gap("egfr", "no usable eGFR result on record")
    potassium, potassium_blocked = _readings(build, "potassium", "potassium", policy)
    if potassium and not potassium_blocked:
        above = {"above_range": clinical.above_range(potassium[0].resource)}
        _latest(build, "potassium", potassium[0], above)
    elif not potassium_blocked and _provided(build, "potassium"):
        build.out.gap("potassium", "no usable potassium result on record")
    pressure = _blood_pressure(build, policy)
    for obs in observations.current_versions(build.prefetched("childPugh", "Observation")):
        with build.reading(obs):
            found = policy.counts(obs) and orders.child_pugh_class(
                obs, build.kb.vocabulary, build.kb.params
            )
            if found:
                data = {"class": found, "name": "Child-Pugh class " + found}
                build.out.add("child-pugh", obs, data)
    with build.reading(None):
        current = None if egfr_blocked else egfr[:1]
        _course(build, therapy.history(label_orders), egfr, current, potassium, pressure)


def _blood_pressure(build: Build, policy: observations.Policy) -> date | None:
    """The newest blood pressure as a fact (or why it cannot be used); returns its date."""
    found = None
    with build.reading(None):
        resources = build.prefetched("bloodPressure", "Observation")
        found = observations.blood_pressure(resources, build.kb.vocabulary, policy)
    if found is None:
        if _provided(build, "bloodPressure"):
            build.out.gap("blood-pressure", "no blood pressure on record")
        return None
    obs, data = found
    if isinstance(data, str):
        unreadable = {"resource": "Observation", "field": "blood pressure", "reason": data}
        build.out.add("unusable", obs, unreadable)
        return None  # an unusable reading does not count as monitored
    taken = date.fromisoformat(data["date"])
    build.out.add("blood-pressure", obs, {**data, "age_days": (build.now - taken).days})
    return taken


def _course(build: Build, past: list[therapy.Order], egfr, current, potassium, pressure) -> None:
    state = therapy.therapy(past, build.now)
    if state["phase"] == "initiation":
        build.out.add("therapy", None, {**state, "reduced_after_fall": False})
        return
    start = date.fromisoformat(state["start"])
    base = therapy.baseline(egfr, start) if state["start_known"] else None
    reduced = therapy.reduced_after_fall(past, egfr, base, build.kb.params["egfr-fall-reduce-pct"])
    build.out.add("therapy", None, {**state, "reduced_after_fall": reduced})
    if not state["start_known"]:
        build.out.gap("therapy-start", therapy.start_unknown(past))
    elif base is None:
        build.out.gap("egfr-baseline", "no eGFR on or before the first order of the drug")
    elif current:
        _latest_course(build, current[0], base)
    dead = any(clinical.deceased(p) for p in build.prefetched("patient", "Patient"))
    if state["phase"] == "continuing" and not dead:
        lasts = {
            "egfr": egfr[0].when if egfr else None,
            "potassium": potassium[0].when if potassium else None,
            "blood-pressure": pressure,
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
