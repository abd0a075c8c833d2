"""load_knowledge: read, validate and cross-check knowledge/, then hold it in memory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import graph as rdf
from . import schemas
from .cards import CardLayout, CardTemplate, load_cards
from .compile_rules import Contract, FieldType
from .model import KnowledgeError
from .rules_host import RuleHost
from .rulesets import Rule, fact_kinds, load_rules
from .services import Service, load_services
from .vocabulary import LabelInfo, MonitoringItem, Regimen, Statement, Vocabulary


@dataclass(frozen=True)
class KnowledgeBase:
    version: str
    root: Path
    label: LabelInfo
    vocabulary: Vocabulary
    params: dict[str, float]
    regimens: dict[str, Regimen]
    monitoring: dict[str, MonitoringItem]
    statements: dict[str, Statement]
    fact_kinds: dict[str, dict[str, FieldType]]
    rules: dict[str, Rule]
    cards: dict[str, CardTemplate]
    layout: CardLayout
    services: dict[str, Service]
    host: RuleHost


def load_knowledge(root: Path | str) -> KnowledgeBase:
    """Load every knowledge file; raise KnowledgeError naming the file and node at fault."""
    root = Path(root)
    if not (root / "services.yaml").is_file():
        raise KnowledgeError(str(root), "services.yaml", "not a knowledge directory")
    documents = schemas.read_documents(root)  # cheap shape checks before Turtle and SHACL
    graph, origin = rdf.read_graph(root)
    rdf.check_shapes(graph, origin, root)
    vocabulary, params = rdf.vocabulary(graph), rdf.parameters(graph)
    regimens, statements = rdf.regimens(graph), rdf.statements(graph)
    monitoring = rdf.monitoring(graph)
    contract = Contract(fact_kinds(root), params, vocabulary_keys(vocabulary, monitoring))
    rules = load_rules(root, contract, set(statements))
    cards, layout = load_cards(documents, rules, set(regimens))
    services = load_services(documents, rules, vocabulary.code_sets)
    try:
        host = RuleHost({sid: _ruleset(s, rules) for sid, s in services.items()})
    except ValueError as error:
        raise KnowledgeError("rules", "ruleset", str(error)) from error
    return KnowledgeBase(
        version=content_hash(root),
        root=root,
        label=rdf.label_info(graph),
        vocabulary=vocabulary,
        params=params,
        regimens=regimens,
        monitoring=monitoring,
        statements=statements,
        fact_kinds=contract.kinds,
        rules=rules,
        cards=cards,
        layout=layout,
        services=services,
        host=host,
    )


def content_hash(root: Path) -> str:
    """A version id: the hash of every knowledge file's path and bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def vocabulary_keys(vocabulary: Vocabulary, monitoring: dict[str, MonitoringItem]) -> dict:
    """The keys a condition may name, per vocabulary key type of facts.yaml."""
    return {
        "drug": frozenset(vocabulary.drugs),
        "drug-class": frozenset(vocabulary.classes),
        "code-set": frozenset(vocabulary.code_sets),
        "substance": frozenset(vocabulary.substances) | frozenset(vocabulary.drugs),
        "monitoring-item": frozenset(monitoring),
    }


def _ruleset(service: Service, rules: dict[str, Rule]) -> dict[str, dict]:
    return {rid: {"all": list(rules[rid].condition)} for rid in service.rule_ids}
