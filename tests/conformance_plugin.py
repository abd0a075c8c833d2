"""pytest plugin: `@pytest.mark.req("cds-hooks_2.0@<id>")` ties a test to a CDS Hooks requirement.

A marker naming an unknown id stops the run at collection. A whole-suite run records which
requirements have a passing test (var/conformance.json, read by `labelwise conformance`) and
fails when a SHALL, SHALL NOT or SHOULD requirement has neither a passing test nor a reason."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from labelwise.conformance import RESULTS, gaps, reasons, requirements

_passed: dict[str, set[str]] = defaultdict(set)
_cited: dict[str, set[str]] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "req(*ids): the CDS Hooks requirements a test verifies")


def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    known = requirements()
    unknown = set(reasons()) - known.keys()
    for item in items:
        ids = {i for marker in item.iter_markers("req") for i in marker.args}
        unknown |= {f"{i} (in {item.nodeid})" for i in ids if i not in known}
        _cited[item.nodeid] = ids
    if unknown:
        raise pytest.UsageError(f"unknown CDS Hooks requirement ids: {', '.join(sorted(unknown))}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        for ref in _cited.get(report.nodeid, ()):
            _passed[ref].add(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _whole_suite(session.config) or not _cited:
        return
    RESULTS.parent.mkdir(exist_ok=True)
    passed = {ref: sorted(tests) for ref, tests in _passed.items()}
    RESULTS.write_text(json.dumps({"passed": passed}, indent=1), encoding="utf-8")
    open_ = gaps(requirements(), passed, reasons())
    if open_:
        listed = ", ".join(f"{r.ref} ({r.verb})" for r in open_)
        print(f"\nCDS Hooks requirements with neither a passing test nor a reason: {listed}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _whole_suite(config: pytest.Config) -> bool:
    """Only a run of every test can say a requirement has no passing test."""
    option = config.option
    selected = option.keyword or option.markexpr not in ("", "req") or getattr(option, "lf", 0)
    return not selected and set(config.args) <= {"tests", str(config.rootpath / "tests")}
