"""Frozen records that travel through the engine: facts in, findings out, knowledge held."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fact:
    """One thing known about the patient, tied to the FHIR resource it came from.

    `kind` names the fact type the rules match on; `data` holds JSON-ready values;
    `focus` marks the orders under evaluation (the draft orders of an order hook).
    """

    kind: str
    ref: str
    data: dict[str, Any] = field(default_factory=dict, hash=False)
    focus: bool = False


@dataclass(frozen=True)
class Finding:
    """A rule that fired: which rule, which label sections, and the facts that made it fire."""

    rule_id: str
    sections: tuple[str, ...]
    statement: str
    facts: tuple[tuple[str, Fact], ...]

    def fact(self, alias: str) -> Fact | None:
        return next((f for a, f in self.facts if a == alias), None)

    @property
    def focus(self) -> Fact | None:
        return next((f for _, f in self.facts if f.focus), None)


class KnowledgeError(Exception):
    """Knowledge that cannot be loaded; names the file and the node at fault."""

    def __init__(self, file: str, node: str, message: str):
        super().__init__(f"{file}: {node}: {message}")
        self.file, self.node, self.message = file, node, message


def section_order(section: str) -> tuple[int, ...]:
    """Label order of a section: unnumbered parts (the Boxed Warning) first, then by number
    (2.1 < 5.2 < 5.10 < 7); a number followed by letters sorts by its number."""
    numbers = re.match(r"\d+(\.\d+)*", section)
    return tuple(int(n) for n in numbers.group().split(".")) if numbers else (0,)
