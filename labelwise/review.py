"""The review sheet: each label statement with the rules that encode it, their parameters, the
card a clinician sees and the cases that fire it or keep it silent, for committee sign-off.

`review_sheet` gathers it; `cds_hooks.pages` renders it (served at /review/, or written as static
HTML by `labelwise review`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from rdflib import RDF, RDFS, Graph

from cds_hooks.assess import assess
from engine import KnowledgeBase
from engine.graph import LW, read_graph
from engine.model import section_order

from .cases import case_files, hook_request


@dataclass(frozen=True)
class Parameter:
    key: str
    label: str
    value: str
    unit: str
    sections: tuple[str, ...]
    source: str
    unverified: bool


@dataclass(frozen=True)
class CaseLine:
    file: str
    description: str


@dataclass(frozen=True)
class RuleReview:
    id: str
    file: str
    condition: str
    parameters: tuple[Parameter, ...]
    card: dict[str, Any] | None
    card_case: str | None
    fires: tuple[CaseLine, ...]
    silent: tuple[CaseLine, ...]


@dataclass(frozen=True)
class StatementReview:
    id: str
    kind: str
    sections: tuple[str, ...]
    text: str
    rules: tuple[RuleReview, ...]

    @property
    def unconfirmed(self) -> bool:
        return "unconfirmed" in " ".join((self.text, *self.sections)).lower()


@dataclass(frozen=True)
class LabelReview:
    key: str
    name: str
    version: str
    effective: str
    url: str
    knowledge_version: str
    statements: tuple[StatementReview, ...]

    @property
    def not_encoded(self) -> tuple[StatementReview, ...]:
        return tuple(s for s in self.statements if not s.rules)


@dataclass(frozen=True)
class _CaseRun:
    line: CaseLine
    fires: frozenset[str]
    silent: frozenset[str]
    cards: dict[str, dict[str, Any]]


def condition_text(rule_yaml: dict[str, Any]) -> str:
    """A rule's `when` as written in its YAML file: text as is, a mapping pretty-printed."""
    when = rule_yaml.get("when")
    if isinstance(when, str):
        return when.strip()
    if isinstance(when, list) and all(isinstance(w, str) for w in when):
        return "\n".join(w.strip() for w in when)
    return yaml.safe_dump(when, sort_keys=False, allow_unicode=True).strip()


def review_sheet(kb: KnowledgeBase, cases_dir: Path | None) -> list[LabelReview]:
    """One review per label in the knowledge, statements in label-section order."""
    graph, _ = read_graph(kb.root)
    params = _parameters(graph)
    runs = _run_cases(kb, cases_dir) if cases_dir and cases_dir.is_dir() else []
    rules = {
        rule_id: _rule(rule_id, raw, params, runs)
        for rule_id, raw in _rule_yaml(kb.root).items()
        if rule_id in kb.rules
    }
    return [_label(kb, graph, node, rules) for node in graph.subjects(RDF.type, LW.Label)]


def _label(kb: KnowledgeBase, graph: Graph, node: Any, rules: dict) -> LabelReview:
    statements = [
        StatementReview(
            id=sid,
            kind=_local(graph.value(_node(graph, sid), RDF.type)),
            sections=s.sections,
            text=s.text or "",
            rules=tuple(r for rid, r in rules.items() if kb.rules[rid].cites == sid),
        )
        for sid, s in kb.statements.items()
        if graph.value(_node(graph, sid), LW.statedIn) == node
    ]
    return LabelReview(
        key=_local(node),
        name=str(graph.value(node, RDFS.label)),
        version=str(graph.value(node, LW.version)),
        effective=str(graph.value(node, LW.effective) or ""),
        url=str(graph.value(node, LW.url)),
        knowledge_version=kb.version,
        statements=tuple(sorted(statements, key=_label_order)),
    )


def _rule(rule_id: str, raw: dict, params: dict, runs: list[_CaseRun]) -> RuleReview:
    condition = condition_text(raw)
    firing = next((r for r in runs if rule_id in r.cards), None)
    return RuleReview(
        id=rule_id,
        file=raw["$file"],
        condition=condition,
        parameters=tuple(p for key, p in params.items() if _names(condition, key)),
        card=firing.cards[rule_id] if firing else None,
        card_case=firing.line.file if firing else None,
        fires=tuple(r.line for r in runs if rule_id in r.fires),
        silent=tuple(r.line for r in runs if rule_id in r.silent),
    )


def _names(text: str, key: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", text) is not None


def _rule_yaml(root: Path) -> dict[str, dict[str, Any]]:
    """Every rule as written, read straight from knowledge/rules/*.yaml."""
    found = {}
    for path in sorted((root / "rules").glob("*.yaml")):
        for raw in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("rules", []):
            found[raw["id"]] = {**raw, "$file": str(path.relative_to(root))}
    return found


def _parameters(graph: Graph) -> dict[str, Parameter]:
    found = {}
    for node in graph.subjects(RDF.type, LW.Parameter):
        source = str(graph.value(node, LW.source) or "label")
        label = str(graph.value(node, RDFS.label) or "")
        key = str(graph.value(node, LW.key))
        found[key] = Parameter(
            key=key,
            label=label,
            value=str(graph.value(node, LW.value)),
            unit=str(graph.value(node, LW.unit) or ""),
            sections=tuple(sorted(str(s) for s in graph.objects(node, LW.labelSection))),
            source=source,
            unverified=bool(graph.value(node, LW.unverified))
            or "site setting" in f"{source} {label}"
            or "unconfirmed" in source.lower(),
        )
    return dict(sorted(found.items()))


def _run_cases(kb: KnowledgeBase, cases_dir: Path) -> list[_CaseRun]:
    """Run every case once; keep the first card of each rule it fires."""
    runs = []
    for path in case_files(cases_dir):
        case = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(case, dict) or case.get("service") not in kb.services:
            continue
        service = kb.services[case["service"]]
        now = date.fromisoformat(str(case["now"]))
        cards = assess(kb, service.id, hook_request(case, service.hook), now).cards()
        expect = case.get("expect") or {}
        runs.append(
            _CaseRun(
                line=CaseLine(str(path.relative_to(cases_dir)), case.get("description", "")),
                fires=frozenset(expect.get("fires") or []),
                silent=frozenset(expect.get("silent") or []),
                cards={
                    c["extension"]["org.labelwise.explanation"]["ruleId"]: c
                    for c in reversed(cards)
                },
            )
        )
    return runs


def _node(graph: Graph, statement_id: str) -> Any:
    return next(s for s in graph.subjects(LW.statedIn, None) if _local(s) == statement_id)


def _local(node: Any) -> str:
    return re.split(r"[/#]", str(node))[-1]


def _label_order(statement: StatementReview) -> tuple:
    return (min(section_order(s) for s in statement.sections or ("99",)), statement.id)
