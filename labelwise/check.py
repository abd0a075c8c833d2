"""`labelwise check`: everything load_knowledge validates, plus canonical Turtle, known
vocabulary terms, and the list of codes and values still marked unverified."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rdflib import RDF, Graph, URIRef

from engine import KnowledgeError, load_knowledge
from engine.graph import LW, read_graph
from engine.rulesets import Rule

from .canonical import not_canonical


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def check(root: Path) -> CheckReport:
    report = CheckReport()
    try:
        report.rules = load_knowledge(root).rules
    except KnowledgeError as error:
        report.errors.append(f"{error.file}: {error.node}: {error.message}")
        return report
    for path in not_canonical(root):
        rel = path.relative_to(root)
        report.errors.append(f"{rel}: turtle: not in canonical form (run `labelwise format`)")
    graph, origin = read_graph(root)
    report.errors += unknown_terms(graph, origin, root)
    report.unverified = unverified(graph)
    return report


def unknown_terms(graph: Graph, origin: dict, root: Path) -> list[str]:
    declared = set(Graph().parse(root / "vocab.ttl").subjects())
    problems = []
    for s, p, o in graph:
        for term in (p, o if p == RDF.type else None):
            if isinstance(term, URIRef) and str(term).startswith(str(LW)) and term not in declared:
                problems.append(f"{origin.get(s, '?')}: {s}: unknown vocabulary term {term}")
    return sorted(set(problems))


def unverified(graph: Graph) -> list[str]:
    found = []
    for node in graph.subjects(LW.unverified, None):
        source = graph.value(node, LW.source)
        found.append(f"{graph.value(node, LW.key) or node}: {source or 'no source'}")
    return sorted(found)
