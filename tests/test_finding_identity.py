"""Findings are kept apart by rule and fact identity: derived facts have no FHIR reference."""

from __future__ import annotations

from engine import Fact, evaluate


def test_two_monitoring_items_due_together_give_two_findings(kb):
    voclosporin = Fact(
        "medication", "MedicationRequest/v", {"drug": "voclosporin", "status": "active"}
    )
    course = Fact("therapy", "", {"phase": "continuing", "weeks": 3, "reduced_after_fall": False})
    due = [
        Fact("monitoring", "", {"item": item, "is_due": True, "due": "2026-10-30"})
        for item in ("egfr", "blood-pressure")
    ]
    found = evaluate(kb, "voclosporin-patient-view", [voclosporin, course, *due])
    items = sorted(
        f.fact("due").data["item"] for f in found if f.rule_id == "monitoring.measurement-due"
    )
    assert items == ["blood-pressure", "egfr"]


def test_the_same_fact_given_twice_gives_one_finding(kb):
    voclosporin = Fact(
        "medication", "MedicationRequest/v", {"drug": "voclosporin", "status": "active"}
    )
    course = Fact("therapy", "", {"phase": "continuing", "weeks": 3, "reduced_after_fall": False})
    due = Fact("monitoring", "", {"item": "egfr", "is_due": True, "due": "2026-10-30"})
    found = evaluate(kb, "voclosporin-patient-view", [voclosporin, course, due, due])
    assert [f.rule_id for f in found].count("monitoring.measurement-due") == 1
