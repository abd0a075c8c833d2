"""`labelwise explain`: evaluate a hook request offline and show why each card fired."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from cds_hooks.assess import assess
from cds_hooks.cards import grouped
from engine import KnowledgeBase
from engine.explain import unmatched_patterns
from engine.rulesets import Rule
from fhir_adapter import parse_request
from fhir_adapter.coding import reference
from fhir_adapter.medication_identity import (
    SOURCES,
    bundled_medications,
    identify,
    request_resources,
)


def service_for(kb: KnowledgeBase, body: dict[str, Any], service_id: str | None) -> str:
    if service_id:
        return service_id
    hook = body.get("hook") if isinstance(body, dict) else None
    return next(s.id for s in kb.services.values() if s.hook == hook)


def explain(
    kb: KnowledgeBase, body: Any, service_id: str | None = None, now: date | None = None
) -> str:
    service = kb.services[service_for(kb, body, service_id)]
    now = now or datetime.now(UTC).date()
    result = assess(kb, service.id, body, now)
    findings, facts, cards = result.findings, result.facts, result.cards()
    lines = [f"service {service.id} ({service.hook}), knowledge {kb.version}, as of {now}", ""]
    for card, finding in zip(cards, grouped(kb, findings), strict=True):
        lines.append(f"[{card['indicator']}] {card['summary']}")
        lines.append(f"  rule {finding.rule_id}, label section {', '.join(finding.sections)}")
        for alias, fact in finding.facts:
            lines.append(
                f"  {alias}: {fact.kind} {fact.ref or '(no resource)'} {_values(fact.data)}"
            )
        lines.append("")
    lines += _identities(kb, body, service.hook, tuple(service.prefetch))
    fired = {f.rule_id for f in findings}
    unmatched = unmatched_patterns(kb, service.id, facts.facts)
    lines.append("rules that did not fire:")
    for rule_id in service.rule_ids:
        if rule_id not in fired:
            lines.append(f"  {rule_id}: {_why(unmatched.get(rule_id), service.evaluates_orders)}")
    return "\n".join(lines)


def _identities(kb: KnowledgeBase, body: Any, hook: str, keys: tuple[str, ...]) -> list[str]:
    """Per medication resource, which drugs it was identified as and how (code or name, and
    from what source), or that nothing in it is known to the knowledge."""
    resources = request_resources(parse_request(body, hook, keys))
    bundled = bundled_medications(resources)
    lines = ["medications, as identified:"]
    for resource in (r for r in resources if r["resourceType"] in SOURCES):
        found = identify(resource, kb.vocabulary, bundled)
        how = found.explained() or "not recognised (no code or name the knowledge knows)"
        where = reference(resource) or resource["resourceType"]
        lines.append(f'  {where} "{found.name}", {found.exposure}: {how}')
    return [*lines, ""]


def _why(aliases: list[str] | None, orders: bool) -> str:
    if aliases:
        return "no fact matched " + ", ".join(f"'{a}'" for a in aliases)
    if orders:
        return "its facts matched, but none is an order being evaluated"
    return "each pattern matched some fact, but no combination satisfied the rule together"


def _values(data: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items() if v not in (None, "", [], {}))


def compiled(rule: Rule) -> str:
    """A rule as written (named conditions, patterns) and the durable-rules JSON it runs as."""
    lines = [f"{rule.id} ({rule.file}, cites {rule.cites})", "  when:"]
    lines += [f"    - {item}" for item in rule.when]
    patterns = [json.dumps(pattern, ensure_ascii=False) for pattern in rule.condition]
    lines += ["  compiled (durable-rules JSON):", '    {"all": [']
    lines += [f"      {p}," for p in patterns[:-1]] + [f"      {patterns[-1]}", "    ]}"]
    return "\n".join(lines)
