"""Compile parsed fact patterns to the durable-rules JSON the engine runs, checking every
kind, field, value and parameter against the fact contract (knowledge/facts.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

from .conditions import (
    And,
    Compare,
    ConditionError,
    Contains,
    Defined,
    Flag,
    Not,
    Or,
    Pattern,
    Test,
    Word,
)

OPERATORS = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
NEGATED = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
PLAIN_TYPES = {"number", "boolean", "text", "date"}
KEY_TYPES = {"drug", "drug-class", "code-set", "substance", "monitoring-item"}


@dataclass(frozen=True)
class FieldType:
    """number, boolean, text, date, enum (with `values`) or a vocabulary key type."""

    base: str
    values: tuple[str, ...] = ()
    is_list: bool = False

    @classmethod
    def parse(cls, declared: str | list[str]) -> FieldType:
        """`number`, `list of drug-class`, or a list of allowed values (an enum)."""
        if isinstance(declared, list):
            return cls("enum", tuple(declared))
        base = declared.removeprefix("list of ")
        if base not in PLAIN_TYPES | KEY_TYPES:
            raise ValueError(f"unknown field type {declared!r}")
        return cls(base, is_list=base != declared)


BUILTIN_FIELDS = {"ref": FieldType("text"), "focus": FieldType("boolean")}


@dataclass(frozen=True)
class Contract:
    """What a condition may name: fact kinds and their typed fields, parameters, and the keys
    the vocabulary knows for each key type."""

    kinds: dict[str, dict[str, FieldType]]
    params: dict[str, float]
    keys: dict[str, frozenset[str]]


def compile_pattern(pattern: Pattern, contract: Contract) -> dict[str, Any]:
    """The durable-rules test for one fact: its kind first, then the `where` conjuncts."""
    fields = contract.kinds.get(pattern.kind.text)
    if fields is None:
        raise _unknown(pattern.kind, "fact kind", contract.kinds, "(see knowledge/facts.yaml)")
    test: dict[str, Any] = {"kind": pattern.kind.text}
    if pattern.test is not None:
        where = _Compiler(pattern.kind.text, fields, contract).test(pattern.test)
        test = _join("$and", [test, where])
    return test


class _Compiler:
    def __init__(self, kind: str, fields: dict[str, FieldType], contract: Contract):
        self.kind, self.fields, self.contract = kind, {**BUILTIN_FIELDS, **fields}, contract

    def test(self, node: Test, negated: bool = False) -> dict[str, Any]:
        """durable-rules has no `not`: negation is pushed down to the comparisons."""
        match node:
            case Not(test=inner):
                return self.test(inner, not negated)
            case And(tests=tests) | Or(tests=tests):
                op = "$and" if isinstance(node, And) != negated else "$or"
                return _join(op, [self.test(t, negated) for t in tests])
            case Compare(field=field, op=op, value=value):
                op = NEGATED[op] if negated else op
                compared = self.value(self.type_of(field), field, op, value)
                return (
                    {field.text: compared}
                    if op == "=="
                    else {OPERATORS[op]: {field.text: compared}}
                )
            case Contains(field=field, value=value):
                return self.contains(field, value, negated)
            case Defined(field=field, present=present):
                self.type_of(field)
                return {"$ex" if present != negated else "$nex": {field.text: 1}}
            case Flag(field=field):
                if self.type_of(field).base != "boolean" or self.type_of(field).is_list:
                    raise _error(field, f"{self.kind}.{field.text} is not yes/no: compare it")
                return {field.text: not negated}
        raise TypeError(node)

    def type_of(self, field: Word) -> FieldType:
        if field.text not in self.fields:
            where = "(see knowledge/facts.yaml)"
            raise _unknown(field, f"{self.kind} field", self.fields, where)
        return self.fields[field.text]

    def contains(self, field: Word, value: Word, negated: bool) -> dict[str, Any]:
        kind = self.type_of(field)
        if not kind.is_list:
            raise _error(field, f"{self.kind}.{field.text} is not a list: use == instead")
        if negated:
            # The engine's all-items test is false on an empty list, so `not` would be wrong.
            raise _error(field, "`not … contains` cannot be checked: name what must be present")
        item = FieldType(kind.base, kind.values)
        return {"$iany": {field.text: {"$i": self.value(item, field, "==", value)}}}

    def value(self, kind: FieldType, field: Word, op: str, value: Word) -> Any:
        name = f"{self.kind}.{field.text}"
        if kind.is_list:
            raise _error(field, f"{name} is a list: use `contains`")
        if value.type == "NUMBER":
            raise _error(value, f"number {value.text} written in a rule: name a parameter")
        if kind.base == "number":
            if value.type != "NAME":
                raise _error(value, f"compare {name} with a parameter's name")
            if value.text not in self.contract.params:
                raise _unknown(value, "parameter", self.contract.params, "(an lw:Parameter key)")
            return self.contract.params[value.text]
        if op not in ("==", "!="):
            raise _error(value, f"{name} is {kind.base}: compare it with == or != only")
        return self.literal(kind, name, value)

    def literal(self, kind: FieldType, name: str, value: Word) -> Any:
        if kind.base == "boolean":
            if value.text not in ("true", "false") or value.type != "NAME":
                raise _error(value, f"{name} is true or false, not {value.text!r}")
            return value.text == "true"
        if kind.base == "enum" and value.text not in kind.values:
            allowed = ", ".join(kind.values)
            raise _error(value, f"unknown value {value.text!r} of {name}: one of {allowed}")
        if kind.base in KEY_TYPES and value.text not in self.contract.keys.get(kind.base, ()):
            raise _unknown(value, kind.base, self.contract.keys.get(kind.base, ()), "")
        return value.text


def _join(op: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """`a and (b and c)` is `a and b and c`: nested lists of the same operator are flattened."""
    items = [i for p in parts for i in (p[op] if set(p) == {op} else [p])]
    return items[0] if len(items) == 1 else {op: items}


def _error(word: Word, message: str) -> ConditionError:
    return ConditionError(message, word.line, word.column)


def _unknown(word: Word, what: str, known: Any, where: str) -> ConditionError:
    close = get_close_matches(word.text, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return _error(word, f"unknown {what} {word.text!r}{hint} {where}".rstrip())
