"""The condition language compiles to the durable-rules JSON the engine ran before it:
tests/snapshots/compiled-rules.json was written from the old rule files (durable-rules JSON as
YAML, parameters substituted) before they were migrated. Regenerate it only when a rule's
meaning or a parameter's value changes on purpose, and say so in the commit."""

from __future__ import annotations

import json
from typing import Any

from conftest import KNOWLEDGE, ROOT
from engine import load_knowledge

SNAPSHOT = ROOT / "tests" / "snapshots" / "compiled-rules.json"


def compiled(kb) -> dict[str, Any]:
    return json.loads(json.dumps({rid: {"all": list(r.condition)} for rid, r in kb.rules.items()}))


def flattened(test: Any) -> Any:
    """`a and (b and c)` is `a and b and c`. The old form nested `$and: [one item]` inside a
    pattern's implicit `$and` to dodge YAML's duplicate keys; the compiler writes the same
    conjunction as one flat list. Only that is undone here: same-operator lists are merged."""
    if isinstance(test, list):
        return [flattened(t) for t in test]
    if not isinstance(test, dict):
        return test
    out = {}
    for key, value in test.items():
        value = flattened(value)
        if key in ("$and", "$or"):
            value = [i for v in value for i in (v[key] if set(v) == {key} else [v])]
        out[key] = value
    return out


def test_every_rule_compiles_to_the_json_it_compiled_to_before_migration(kb):
    snapshot = json.loads(SNAPSHOT.read_text())
    assert set(compiled(kb)) == set(snapshot)
    assert compiled(kb) == {rid: flattened(rule) for rid, rule in snapshot.items()}


def test_only_the_rules_that_nested_and_lists_differ_from_the_snapshot_verbatim(kb):
    snapshot = json.loads(SNAPSHOT.read_text())
    differing = {rid for rid, rule in compiled(kb).items() if rule != snapshot[rid]}
    assert differing == {rid for rid, rule in snapshot.items() if flattened(rule) != rule}
    assert differing == {
        "course.benefit-review",
        "renal.baseline-egfr-not-recommended",
        "renal.egfr-fall-discontinue",
        "renal.severe-impairment-start-dose",
    }  # renal.egfr-fall-reduce too until its meaning changed (exact falls only): re-snapshotted


def test_compiling_twice_gives_byte_identical_json(kb):
    again = load_knowledge(KNOWLEDGE)
    assert json.dumps(compiled(again), sort_keys=False) == json.dumps(compiled(kb))


def test_no_rule_file_contains_a_dollar_operator():
    for path in (KNOWLEDGE / "rules").glob("*.yaml"):
        assert "$" not in path.read_text(), path.name
