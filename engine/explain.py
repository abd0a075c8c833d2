"""Why a rule did not fire: which of its fact patterns matched no fact."""

from __future__ import annotations

from .evaluate import as_rule_fact
from .knowledge import KnowledgeBase
from .model import Fact
from .rules_host import RuleHost

SEPARATOR = "|"


def unmatched_patterns(
    kb: KnowledgeBase, service_id: str, facts: list[Fact]
) -> dict[str, list[str]]:
    """rule id -> aliases of its patterns that no fact matched on its own.

    Each pattern runs as a one-pattern rule of its own, on the same durable-rules engine."""
    service = kb.services[service_id]
    patterns = {
        f"{rule_id}{SEPARATOR}{alias}": {"all": [{alias: condition}]}
        for rule_id in service.rule_ids
        for alias, condition in (next(iter(c.items())) for c in kb.rules[rule_id].condition)
    }
    host = RuleHost({"explain": patterns})
    rule_facts = (as_rule_fact(i, f) for i, f in enumerate(facts))
    matched = {name for name, _ in host.run("explain", rule_facts)}
    missing: dict[str, list[str]] = {}
    for name in patterns:
        if name not in matched:
            rule_id, alias = name.split(SEPARATOR)
            missing.setdefault(rule_id, []).append(alias)
    return missing
