"""Rule files: named conditions and rules written in the condition language, checked against
the fact contract and compiled to durable-rules JSON. Errors name file, rule, line and column."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from .compile_rules import Contract, FieldType, compile_pattern
from .conditions import ConditionError, parse
from .model import KnowledgeError

RULE_ID = re.compile(r"^[a-z]+(\.[a-z0-9]+(-[a-z0-9]+)*)+$")
SHARED = "_shared.yaml"  # named conditions every rule file may use
SCHEMAS = Path(__file__).with_name("schemas")
RULE_FILE = Draft202012Validator(json.loads((SCHEMAS / "rules.schema.json").read_text()))
FACTS_FILE = Draft202012Validator(json.loads((SCHEMAS / "facts.schema.json").read_text()))


@dataclass(frozen=True)
class Rule:
    id: str
    cites: str
    file: str
    aliases: tuple[str, ...]
    condition: tuple[dict[str, Any], ...]
    when: tuple[str, ...] = ()  # as authored: condition names and `alias: pattern` lines


def load_yaml(path: Path, root: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise KnowledgeError(str(path.relative_to(root)), "yaml", str(error)) from error


def fact_kinds(root: Path) -> dict[str, dict[str, FieldType]]:
    """knowledge/facts.yaml: kind -> field -> its declared type."""
    raw = load_yaml(root / "facts.yaml", root)
    error = best_match(FACTS_FILE.iter_errors(raw))
    if error is not None:
        raise KnowledgeError("facts.yaml", _path(error.absolute_path), error.message)
    kinds: dict[str, dict[str, FieldType]] = {}
    for kind, fields in raw.items():
        kinds[kind] = {}
        for name, spec in fields.items():
            try:
                kinds[kind][name] = FieldType.parse(spec["type"])
            except ValueError as bad:
                raise KnowledgeError("facts.yaml", f"{kind}.{name}", str(bad)) from bad
    return kinds


def load_rules(root: Path, contract: Contract, statements: set[str]) -> dict[str, Rule]:
    sources = [_Source(path, root, contract) for path in sorted((root / "rules").glob("*.yaml"))]
    shared = next((s.conditions({}) for s in sources if s.path.name == SHARED), {})
    rules: dict[str, Rule] = {}
    for source in sources:
        conditions = shared if source.path.name == SHARED else source.conditions(shared)
        for raw in source.doc.get("rules", []):
            rule = source.rule(raw, conditions, statements)
            if rule.id in rules:
                raise KnowledgeError(
                    source.file, rule.id, f"rule id already used in {rules[rule.id].file}"
                )
            rules[rule.id] = rule
    return rules


Compiled = tuple[tuple[str, dict[str, Any], str], ...]  # (alias, durable-rules test, as written)


class _Source:
    """One rule file, read with the position of every string, so errors can point into it."""

    def __init__(self, path: Path, root: Path, contract: Contract):
        self.path, self.file, self.contract = path, str(path.relative_to(root)), contract
        self.text = path.read_text(encoding="utf-8")
        try:
            self.doc = yaml.load(self.text, Loader=_Loader) or {}
        except yaml.YAMLError as error:
            raise KnowledgeError(self.file, "yaml", str(error)) from error
        error = best_match(RULE_FILE.iter_errors(self.doc))
        if error is not None:
            raise self.fail(_node(self.doc, error.absolute_path), error.instance, error.message)

    def conditions(self, shared: dict[str, Compiled]) -> dict[str, Compiled]:
        """Shared conditions plus this file's own; a name may be defined once."""
        named = dict(shared)
        for name, patterns in self.doc.get("conditions", {}).items():
            if name in named:
                raise self.fail(name, name, f"condition {name!r} is already defined")
            named[name] = tuple(self.pattern(name, p) for p in patterns)
        return named

    def rule(self, raw: dict, conditions: dict[str, Compiled], statements: set[str]) -> Rule:
        rule_id, cites = raw["id"], raw["cites"]
        if not RULE_ID.match(rule_id):
            raise self.fail(rule_id, rule_id, "rule id must be area-prefixed kebab-case")
        if cites not in statements:
            raise self.fail(rule_id, cites, f"cites unknown label statement {cites!r}")
        patterns = self.expand(rule_id, raw["when"], conditions)
        return Rule(
            id=str(rule_id),
            cites=str(cites),
            file=self.file,
            aliases=tuple(a for a, _, _ in patterns),
            condition=tuple({a: test} for a, test, _ in patterns),
            when=tuple(item if isinstance(item, str) else _written(item) for item in raw["when"]),
        )

    def expand(self, rule_id: str, when: list, conditions: dict[str, Compiled]) -> Compiled:
        """The rule's patterns in order, each named condition replaced by its patterns."""
        patterns: list[tuple[str, dict[str, Any], str]] = []
        for item in when:
            if isinstance(item, str) and item not in conditions:
                close = get_close_matches(item, list(conditions), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise self.fail(rule_id, item, f"unknown condition {item!r}{hint}")
            found = conditions[item] if isinstance(item, str) else (self.pattern(rule_id, item),)
            for alias, test, written in found:
                if alias in (a for a, _, _ in patterns):
                    at = item if isinstance(item, str) else next(iter(item))
                    raise self.fail(rule_id, at, f"alias {alias!r} is bound twice in this rule")
                patterns.append((alias, test, written))
        return tuple(patterns)

    def pattern(self, node: str, item: dict) -> tuple[str, dict[str, Any], str]:
        ((alias, text),) = item.items()
        start, body = _body(text, self.text)
        try:
            test = compile_pattern(parse(body), self.contract)
        except ConditionError as error:
            lines = body.split("\n")
            offset = sum(len(line) + 1 for line in lines[: error.line - 1]) + error.column - 1
            raise self.fail_at(node, start + offset, error.message) from None
        return str(alias), test, _written(item)

    def fail(self, node: str, at: Any, message: str) -> KnowledgeError:
        if isinstance(at, Located):
            return self.fail_at(node, at.start.index, message)
        return KnowledgeError(self.file, str(node), message)

    def fail_at(self, node: str, index: int, message: str) -> KnowledgeError:
        """file: rule: line L, column C: message, then the source line and a caret under C."""
        line_start = self.text.rfind("\n", 0, index) + 1
        line_end = self.text.find("\n", index)
        source = self.text[line_start : None if line_end < 0 else line_end]
        line, column = self.text.count("\n", 0, index) + 1, index - line_start + 1
        caret = f"\n    {source}\n    {' ' * (column - 1)}^"
        where = f"line {line}, column {column}"
        return KnowledgeError(self.file, str(node), f"{where}: {message}{caret}")


class Located(str):
    """A YAML string that remembers where it was written (start and end marks, style)."""

    start: yaml.Mark
    end: yaml.Mark
    style: str | None


class _Loader(yaml.SafeLoader):
    def construct_located(self, node: yaml.ScalarNode) -> Located:
        value = Located(self.construct_scalar(node))
        value.start, value.end, value.style = node.start_mark, node.end_mark, node.style
        return value


_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_located)


def _body(value: Located, text: str) -> tuple[int, str]:
    """The condition as it stands in the file, and where it starts: parsing the file's own
    text (not YAML's folded value) keeps every line and column true."""
    start, end = value.start.index, value.end.index
    if value.style in ("'", '"'):
        start, end = start + 1, end - 1
    elif value.style in ("|", ">"):
        start = text.index("\n", start) + 1
    return start, text[start:end]


def _written(item: dict) -> str:
    ((alias, text),) = item.items()
    return f"{alias}: {' '.join(text.split())}"


def _path(path: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "/"


def _node(doc: dict, path: Any) -> str:
    """The rule id (or condition name) a schema error is inside of, else its path."""
    parts = list(path)
    if parts[:1] == ["rules"] and len(parts) > 1 and isinstance(doc["rules"][parts[1]], dict):
        return str(doc["rules"][parts[1]].get("id", _path(parts)))
    if parts[:1] == ["conditions"] and len(parts) > 1:
        return str(parts[1])
    return _path(parts)
