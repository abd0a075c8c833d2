"""evaluate: facts + knowledge -> findings, by forward chaining in durable-rules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .knowledge import KnowledgeBase
from .model import Fact, Finding


def evaluate(kb: KnowledgeBase, service_id: str, facts: Iterable[Fact]) -> list[Finding]:
    """Run the service's rules over the facts.

    At order hooks only findings that involve an order being evaluated (a focus fact) are kept,
    so an unrelated order gets no cards. Findings are unique per rule and set of facts, a fact
    being known by its kind, reference and data (derived facts have no reference), and come in
    an order that does not depend on the engine's.
    """
    service = kb.services[service_id]
    facts = list(facts)
    matches = kb.host.run(service_id, (as_rule_fact(i, f) for i, f in enumerate(facts)))
    findings: dict[tuple, Finding] = {}
    for rule_id, matched in matches:
        bound = tuple((alias, facts[m["i"]]) for alias, m in matched.items())
        if service.evaluates_orders and not any(f.focus for _, f in bound):
            continue
        key = (rule_id, frozenset(f for _, f in bound))  # Fact equality includes its data
        findings.setdefault(key, _finding(kb, rule_id, bound))
    return sorted(
        findings.values(),
        key=lambda f: (f.rule_id, [(x.kind, x.ref, repr(x.data)) for _, x in f.facts]),
    )


def as_rule_fact(index: int, fact: Fact) -> dict[str, Any]:
    """A fact as durable-rules sees it; `i` leads a match back to the Fact."""
    return {**fact.data, "kind": fact.kind, "ref": fact.ref, "focus": fact.focus, "i": index}


def _finding(kb: KnowledgeBase, rule_id: str, bound: tuple[tuple[str, Fact], ...]) -> Finding:
    statement = kb.statements[kb.rules[rule_id].cites]
    return Finding(rule_id, statement.sections, statement.text, bound)
