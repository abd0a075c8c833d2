"""The knowledge engineers' YAML cases: every case passes, every rule fires and stays silent."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelwise.cases import case_files, run_case

CASES = Path(__file__).parent / "cases"
FILES = case_files(CASES)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CASES)) for p in FILES])
def test_case_expectations_hold(kb, path):
    result = run_case(kb, path)
    assert not result.problems, (
        f"{result.description}: {result.problems} (fired {sorted(result.fired)})"
    )


def test_every_rule_has_cases_that_fire_it_and_cases_that_keep_it_silent(kb):
    results = [run_case(kb, p) for p in FILES]
    fired = {r for res in results for r in res.fires}
    silent = {r for res in results for r in res.silent}
    assert sorted(set(kb.rules) - fired) == []
    assert sorted(set(kb.rules) - silent) == []


def test_cases_name_only_known_rules(kb):
    named = {r for p in FILES for res in [run_case(kb, p)] for r in res.fires | res.silent}
    assert named <= set(kb.rules)
