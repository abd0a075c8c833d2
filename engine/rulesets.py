"""Rule files: YAML durable-rules conditions, checked against the fact contract and compiled."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .model import KnowledgeError

RULE_ID = re.compile(r"^[a-z]+(\.[a-z0-9]+(-[a-z0-9]+)*)+$")
COMPARISONS = {"$gt", "$gte", "$lt", "$lte", "$neq", "$mt", "$imt"}
ITEM_TESTS = {"$iany", "$iall"}
BUILTIN_FIELDS = {"kind", "ref", "focus"}


@dataclass(frozen=True)
class Rule:
    id: str
    cites: str
    file: str
    aliases: tuple[str, ...]
    condition: tuple[dict[str, Any], ...]


def load_rules(
    documents: dict[str, Any],
    fact_kinds: dict[str, dict],
    params: dict[str, float],
    statements: set[str],
) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for file in sorted(f for f in documents if f.startswith("rules/")):
        for raw in documents[file].get("rules", []):
            rule = _rule(raw, file, fact_kinds, params, statements)
            if rule.id in rules:
                raise KnowledgeError(
                    file, rule.id, f"rule id already used in {rules[rule.id].file}"
                )
            rules[rule.id] = rule
    return rules


def _rule(raw: Any, file: str, kinds: dict, params: dict, statements: set[str]) -> Rule:
    rule_id = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
        raise KnowledgeError(file, str(rule_id), "rule id must be area-prefixed kebab-case")
    if raw.get("cites") not in statements:
        raise KnowledgeError(file, rule_id, f"cites unknown label statement {raw.get('cites')!r}")
    patterns = (raw.get("when") or {}).get("all")
    if not isinstance(patterns, list) or not patterns:
        raise KnowledgeError(file, rule_id, "when.all must list one or more fact patterns")
    aliases, condition = [], []
    for pattern in patterns:
        if not isinstance(pattern, dict) or len(pattern) != 1:
            raise KnowledgeError(file, rule_id, "each pattern is one `alias: {fields}` mapping")
        ((alias, expr),) = pattern.items()
        check = _Checker(file, rule_id, kinds, params)
        condition.append({alias: check.compile(expr)})
        aliases.append(alias)
    return Rule(rule_id, raw["cites"], file, tuple(aliases), tuple(condition))


class _Checker:
    """Normalises one fact pattern and checks every field and parameter it names."""

    def __init__(self, file: str, rule_id: str, kinds: dict, params: dict):
        self.file, self.rule_id, self.kinds, self.params = file, rule_id, kinds, params

    def fail(self, message: str) -> KnowledgeError:
        return KnowledgeError(self.file, self.rule_id, message)

    def compile(self, expr: Any) -> dict[str, Any]:
        if not isinstance(expr, dict) or not isinstance(expr.get("kind"), str):
            raise self.fail("a fact pattern needs `kind`")
        self.fields = self.kinds.get(expr["kind"])
        if self.fields is None:
            raise self.fail(f"unknown fact kind {expr['kind']!r} (see knowledge/facts.yaml)")
        return self.term(expr)

    def term(self, expr: Any) -> dict[str, Any]:
        if not isinstance(expr, dict) or not expr:
            raise self.fail(f"condition must be a mapping, got {expr!r}")
        parts = [self.one(key, value) for key, value in expr.items()]
        return parts[0] if len(parts) == 1 else {"$and": parts}

    def one(self, key: str, value: Any) -> dict[str, Any]:
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise self.fail(f"{key} takes a list")
            return {key: [self.term(v) for v in value]}
        if key in COMPARISONS:
            ((name, operand),) = self.pair(key, value)
            return {key: {self.field(name): self.operand(operand)}}
        if key in ITEM_TESTS:
            ((name, test),) = self.pair(key, value)
            return {key: {self.field(name): self.item_test(test)}}
        if key in ("$ex", "$nex"):
            ((name, _),) = self.pair(key, value)
            return {key: {self.field(name): 1}}
        if key.startswith("$"):
            raise self.fail(f"unsupported operator {key}")
        return {self.field(key): self.operand(value)}

    def pair(self, key: str, value: Any) -> list[tuple[str, Any]]:
        if not isinstance(value, dict) or len(value) != 1:
            raise self.fail(f"{key} takes one `field: value` mapping")
        return list(value.items())

    def item_test(self, test: Any) -> dict[str, Any]:
        """What each list item must be: {$i: value}, or a comparison such as {$gt: {$i: value}}."""
        if isinstance(test, dict) and len(test) == 1:
            ((key, value),) = test.items()
            if key == "$i":
                return {key: self.operand(value)}
            if key in COMPARISONS and isinstance(value, dict) and set(value) == {"$i"}:
                return {key: {"$i": self.operand(value["$i"])}}
        raise self.fail(f"an item test is {{$i: value}} or {{$gt: {{$i: value}}}}, not {test!r}")

    def field(self, name: str) -> str:
        if name not in self.fields and name not in BUILTIN_FIELDS:
            raise self.fail(f"unknown field {name!r} (see knowledge/facts.yaml)")
        return name

    def operand(self, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"$param"}:
            if not isinstance(value["$param"], str) or value["$param"] not in self.params:
                raise self.fail(f"unknown parameter {value['$param']!r}")
            return self.params[value["$param"]]
        if isinstance(value, dict | list):
            # durable-rules' C engine segfaults on cross-fact references (measured): derive the
            # compared value in fhir_adapter instead.
            raise self.fail(f"compare with a literal or {{$param: key}}, not {value!r}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise self.fail(f"number {value} written in a rule: use {{$param: key}}")
        return value
