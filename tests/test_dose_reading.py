"""Doses from every way an order words them: taper steps, timing codes, ranges, older shapes."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from cds_hooks.assess import assess
from conftest import ROOT
from fhir_adapter.medications import dose
from labelwise.cases import hook_request

CASES = ROOT / "tests" / "cases"

NOW = date(2026, 11, 1)
MG = {"value": 7.9, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}


def mg(value: float) -> dict:
    return {**MG, "value": value}


def step(sequence: int, value: float, per_day: int, **bounds) -> dict:
    repeat = {"frequency": per_day, "period": 1, "periodUnit": "d", **bounds}
    return {
        "sequence": sequence,
        "timing": {"repeat": repeat},
        "doseAndRate": [{"doseQuantity": mg(value)}],
    }


def weeks(count: int) -> dict:
    return {"boundsDuration": {"value": count, "unit": "wk", "code": "wk"}}


@pytest.fixture(scope="module")
def voclosporin(kb):
    return kb.vocabulary.drugs["voclosporin"]


def order(instructions: list, **fields) -> dict:
    return {"resourceType": "MedicationRequest", "dosageInstruction": instructions, **fields}


@pytest.mark.parametrize(
    ("authored", "expected_daily"),
    [
        ("2026-10-30", 47.4),  # first step, two weeks from 30 October
        ("2026-10-12", 31.6),  # past two weeks: the second step
        ("2026-09-01", 15.8),  # past both bounded steps: the open last step
    ],
)
def test_a_taper_uses_the_step_covering_now_not_the_sum_of_steps(
    voclosporin, authored, expected_daily
):
    taper = [step(1, 23.7, 2, **weeks(2)), step(2, 15.8, 2, **weeks(4)), step(3, 7.9, 2)]
    found = dose(order(taper, authoredOn=authored), voclosporin, NOW)
    assert found["daily_mg"] == expected_daily


def test_a_taper_step_given_by_bounds_period_is_read_by_its_dates(voclosporin):
    first = step(1, 23.7, 2, boundsPeriod={"start": "2026-10-01", "end": "2026-10-20"})
    second = step(2, 15.8, 2, boundsPeriod={"start": "2026-10-21", "end": "2026-12-31"})
    assert dose(order([first, second]), voclosporin, NOW)["daily_mg"] == 31.6


def test_a_taper_without_dates_is_unknown_rather_than_summed(voclosporin):
    taper = [step(1, 23.7, 2), step(2, 15.8, 2)]
    assert dose(order(taper), voclosporin, NOW) == {"dose_known": False}


def test_instructions_sharing_a_sequence_are_taken_together(voclosporin):
    morning = step(1, 15.8, 1)
    evening = step(1, 7.9, 1)
    assert dose(order([morning, evening]), voclosporin, NOW)["daily_mg"] == 23.7


def coded_timing(code: str) -> dict:
    system = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
    return {"code": {"coding": [{"system": system, "code": code}]}}


@pytest.mark.parametrize(
    "timing",
    [
        coded_timing("BID"),
        coded_timing("Q12H"),
        {"code": {"text": "q12h"}},
        {"repeat": {"frequency": 1, "period": 12, "periodUnit": "h"}},
        {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
        {"repeat": {"when": ["MORN", "EVE"]}},
    ],
)
def test_every_way_of_saying_twice_daily_gives_the_same_daily_dose(voclosporin, timing):
    instruction = {"timing": timing, "doseAndRate": [{"doseQuantity": mg(23.7)}]}
    found = dose(order([instruction]), voclosporin, NOW)
    assert (found["daily_mg"], found["doses_per_day"]) == (47.4, 2)


def test_capsules_a_single_value_range_and_an_stu3_dose_give_the_same_dose(voclosporin):
    timing = coded_timing("BID")
    capsules = {"value": 3, "unit": "capsule", "code": "{capsule}"}
    shapes = [
        {"timing": timing, "doseAndRate": [{"doseQuantity": capsules}]},
        {"timing": timing, "doseAndRate": [{"doseRange": {"low": mg(23.7), "high": mg(23.7)}}]},
        {"timing": timing, "doseQuantity": mg(23.7)},
    ]
    assert {dose(order([s]), voclosporin, NOW)["daily_mg"] for s in shapes} == {47.4}


@pytest.mark.parametrize(
    "instruction",
    [
        {
            "timing": coded_timing("BID"),
            "doseAndRate": [{"doseRange": {"low": mg(7.9), "high": mg(23.7)}}],
        },
        {"text": "23.7 mg twice daily"},
        {"timing": coded_timing("PRN"), "doseAndRate": [{"doseQuantity": mg(23.7)}]},
    ],
)
def test_a_dose_that_is_a_range_or_only_words_is_unknown_never_guessed(voclosporin, instruction):
    assert dose(order([instruction]), voclosporin, NOW) == {"dose_known": False}


def test_a_medication_statement_dosage_is_read_like_an_order(voclosporin):
    statement = {
        "resourceType": "MedicationStatement",
        "dosage": [{"timing": coded_timing("BID"), "doseAndRate": [{"doseQuantity": mg(23.7)}]}],
    }
    assert dose(statement, voclosporin, NOW)["daily_mg"] == 47.4


def test_two_voclosporin_orders_for_the_same_times_give_one_card_listing_both(kb):
    case = yaml.safe_load((CASES / "dosing" / "duplicate-voclosporin-orders.yaml").read_text())
    body = hook_request(case, "order-sign")
    cards = assess(kb, "voclosporin-order-sign", body, NOW).cards()
    duplicate = [c for c in cards if c["summary"].startswith("2 voclosporin orders")]
    assert len(duplicate) == 1
    detail = duplicate[0]["detail"]
    assert "order 1: voclosporin 7.9 MG Oral Capsule (23.7 mg, 47.4 mg a day)" in detail
    assert "order 2: voclosporin 7.9 MG Oral Capsule (23.7 mg, 47.4 mg a day)" in detail
    assert "Together they give 94.8 mg a day" in detail
