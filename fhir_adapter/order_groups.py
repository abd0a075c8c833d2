"""Several orders of one drug together: split doses (a morning and an evening order) add up
to one daily dose; orders at the same times of day are duplicates."""

from __future__ import annotations

from typing import Any

from engine import Fact

from .coding import codings

# Times of day an order names (timing.repeat.when, timeOfDay, HL7 timing codes AM/PM).
MORNING, EVENING = (
    {"MORN", "MORN.early", "MORN.late", "AM", "ACM"},
    {"EVE", "NIGHT", "PM", "HS", "ACV"},
)


def same_drug_orders(
    facts: list[Fact], resources: dict[str, dict], drug: str
) -> tuple[Fact, dict] | None:
    """The `same-drug-orders` data for the label drug's draft orders, or else its current
    ones, when there are two or more: names, whether they are split by time of day, and the
    combined daily dose (when every dose is known); with the order it is shown on (the first
    one being evaluated)."""
    mine = [f for f in facts if f.kind == "medication" and f.data["drug"] == drug and f.ref]
    drafts = [f for f in mine if f.data["status"] == "draft"]
    group = drafts if len(drafts) > 1 else [f for f in mine if f.data["status"] != "draft"]
    if len(group) < 2:
        return None
    times = [_times(resources[f.ref]) for f in group]
    split = all(times) and sum(len(t) for t in times) == len(set().union(*times))
    known = all(f.data["dose_known"] for f in group)
    data: dict[str, Any] = {
        "drug": drug,
        "orders": [_described(f) for f in group],
        "name": "; ".join(_described(f) for f in group),
        "count": len(group),
        "split": split,
        "dose_known": known,
    }
    daily = {"daily_mg": round(sum(f.data["daily_mg"] for f in group), 4)} if known else {}
    anchor = next((f for f in group if f.focus), group[0])
    return anchor, data | daily


def _described(fact: Fact) -> str:
    """An order as a clinician tells it apart: its text and dose."""
    data = fact.data
    if not data["dose_known"]:
        return f"{data['name']} (dose not readable)"
    return f"{data['name']} ({data['dose_mg']:g} mg, {data['daily_mg']:g} mg a day)"


def _times(resource: dict[str, Any]) -> set[str]:
    """ "morning"/"evening" for each time of day the order's dosage names; empty when none."""
    found: set[str] = set()
    for instruction in resource.get("dosageInstruction") or []:
        timing = instruction.get("timing") if isinstance(instruction, dict) else None
        if not isinstance(timing, dict):
            continue
        repeat = timing.get("repeat") if isinstance(timing.get("repeat"), dict) else {}
        words = list(repeat.get("when") or []) + [
            c.get("code") for c in codings(timing.get("code"))
        ]
        hours = [t for t in repeat.get("timeOfDay") or [] if isinstance(t, str)]
        found |= {"morning" for w in words if w in MORNING} | {
            "evening" for w in words if w in EVENING
        }
        found |= {"morning" if h < "12" else "evening" for h in hours}
    return found
