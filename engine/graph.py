"""Read the Turtle knowledge: parse, SHACL-validate, and lift it into vocabulary records."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pyshacl import validate
from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef

from .model import KnowledgeError
from .vocabulary import (
    CodeSet,
    Dose,
    Drug,
    DrugClass,
    LabelInfo,
    MonitoringItem,
    Phase,
    Product,
    Regimen,
    Statement,
    Substance,
    Vocabulary,
    ndc_product,
)

LW = Namespace("https://w3id.org/labelwise/vocab#")
KB = Namespace("https://w3id.org/labelwise/kb/")
SH = Namespace("http://www.w3.org/ns/shacl#")


def read_graph(root: Path) -> tuple[Graph, dict[URIRef, str]]:
    """Parse every Turtle file except the shapes; remember which file defines each subject."""
    graph, origin = Graph(), {}
    for path in sorted(root.rglob("*.ttl")):
        if "shapes" in path.relative_to(root).parts:
            continue
        part = _parse(path, root)
        for subject in set(part.subjects()):
            origin.setdefault(subject, str(path.relative_to(root)))
        graph += part
    return graph, origin


def check_shapes(graph: Graph, origin: dict[URIRef, str], root: Path) -> None:
    shapes = Graph()
    for path in sorted((root / "shapes").glob("*.ttl")):
        shapes += _parse(path, root)
    conforms, report, _ = validate(graph, shacl_graph=shapes, inference="none")
    if conforms:
        return
    result = next(report.subjects(RDF.type, SH.ValidationResult))
    node = report.value(result, SH.focusNode)
    path = report.value(result, SH.resultPath)
    message = report.value(result, SH.resultMessage)
    file = origin.get(node, "knowledge")
    raise KnowledgeError(file, _short(node), f"{_short(path)}: {message}")


def _parse(path: Path, root: Path) -> Graph:
    try:
        return Graph().parse(path, format="turtle")
    except Exception as error:  # rdflib raises several parser types
        raise KnowledgeError(str(path.relative_to(root)), "turtle", str(error)) from error


def _short(node: object) -> str:
    text = str(node)
    for ns, prefix in ((KB, "kb:"), (LW, "lw:")):
        if text.startswith(str(ns)):
            return prefix + text[len(str(ns)) :]
    return text


def _str(graph: Graph, node: object, prop: URIRef) -> str | None:
    value = graph.value(node, prop)
    return None if value is None else str(value)


def _all(graph: Graph, node: object, prop: URIRef) -> tuple[str, ...]:
    return tuple(sorted(str(v) for v in graph.objects(node, prop)))


def _number(literal: object) -> float:
    value = literal.toPython() if isinstance(literal, Literal) else literal
    return float(value) if isinstance(value, Decimal | int | float) else float(str(value))


def _key(graph: Graph, node: object) -> str:
    return str(graph.value(node, LW.key))


def vocabulary(graph: Graph) -> Vocabulary:
    return Vocabulary(
        drugs=_by_key(graph, LW.Drug, _drug),
        substances=_by_key(graph, LW.Substance, _substance),
        code_sets=_by_key(graph, LW.CodeSet, _code_set),
        classes=_by_key(graph, LW.DrugClass, _drug_class),
        products=_by_key(graph, LW.Product, _product),
    )


def _by_key(graph: Graph, rdf_class: URIRef, read) -> dict:
    return {_key(graph, node): read(graph, node) for node in graph.subjects(RDF.type, rdf_class)}


def _names(graph: Graph, node: object) -> tuple[str, ...]:
    """The label first, then every alternative name matched in free text."""
    return (str(graph.value(node, RDFS.label)), *_all(graph, node, LW.altName))


def _key_of(graph: Graph, node: object, prop: URIRef) -> str | None:
    target = graph.value(node, prop)
    return None if target is None else _key(graph, target)


def _drug(graph: Graph, node: object) -> Drug:
    strength = graph.value(node, LW.unitStrengthMg)
    return Drug(
        key=_key(graph, node),
        name=str(graph.value(node, RDFS.label)),
        rxnorm=frozenset(_all(graph, node, LW.rxnorm)),
        names=_names(graph, node),
        classes=tuple(sorted(_key(graph, c) for c in graph.objects(node, LW.memberOf))),
        strength_mg=None if strength is None else _number(strength),
        ndc_labelers=_all(graph, node, LW.ndcLabeler),
    )


def _product(graph: Graph, node: object) -> Product:
    ndcs = (p for code in _all(graph, node, LW.ndc) for p in ndc_product(code))
    return Product(
        key=_key(graph, node),
        name=str(graph.value(node, RDFS.label)),
        ingredients=tuple(sorted(_key(graph, d) for d in graph.objects(node, LW.ingredient))),
        exposure=str(graph.value(node, LW.exposure)),
        rxnorm=frozenset(_all(graph, node, LW.rxnorm)),
        ndc=frozenset(ndcs),
        names=_all(graph, node, LW.altName),
    )


def _substance(graph: Graph, node: object) -> Substance:
    return Substance(
        key=_key(graph, node),
        name=str(graph.value(node, RDFS.label)),
        names=_names(graph, node),
        excipient_of=_key_of(graph, node, LW.excipientOf),
    )


def _code_set(graph: Graph, node: object) -> CodeSet:
    return CodeSet(
        key=_key(graph, node),
        name=str(graph.value(node, RDFS.label)),
        system=str(graph.value(node, LW.system)),
        codes=frozenset(_all(graph, node, LW.code)),
        units=frozenset(_all(graph, node, LW.acceptedUnit)),
        names=_all(graph, node, LW.altName),
        liveness=_str(graph, node, LW.liveness),
        topic=_key_of(graph, node, LW.topic),
    )


def _drug_class(graph: Graph, node: object) -> DrugClass:
    return DrugClass(
        key=_key(graph, node),
        name=str(graph.value(node, RDFS.label)),
        expected_with=_key_of(graph, node, LW.expectedWith),
        systemic_only=bool(graph.value(node, LW.systemicOnly)),
    )


def monitoring(graph: Graph) -> dict[str, MonitoringItem]:
    found = {}
    for node in graph.subjects(RDF.type, LW.MonitoringItem):
        phases = sorted(
            (
                Phase(
                    from_day=int(graph.value(p, LW.fromDay)),
                    until_day=_int_or_none(graph.value(p, LW.untilDay)),
                    every_days=int(graph.value(p, LW.everyDays)),
                )
                for p in graph.objects(node, LW.phase)
            ),
            key=lambda p: p.from_day,
        )
        found[_key(graph, node)] = MonitoringItem(
            key=_key(graph, node),
            name=str(graph.value(node, RDFS.label)),
            code_set=_key(graph, graph.value(node, LW.measuredBy)),
            order_code=str(graph.value(node, LW.code)),
            phases=tuple(phases),
        )
    return found


def _int_or_none(literal: object) -> int | None:
    return None if literal is None else int(literal)


def parameters(graph: Graph) -> dict[str, float | int]:
    """Parameter values; whole numbers stay integers so cards print "45", not "45.0"."""
    found = {}
    for node in graph.subjects(RDF.type, LW.Parameter):
        value = _number(graph.value(node, LW.value))
        found[_key(graph, node)] = int(value) if value.is_integer() else value
    return found


def regimens(graph: Graph) -> dict[str, Regimen]:
    found = {}
    for node in graph.subjects(RDF.type, LW.Regimen):
        doses = sorted(graph.objects(node, LW.dose), key=lambda d: int(graph.value(d, LW.sequence)))
        found[_key(graph, node)] = Regimen(
            key=_key(graph, node),
            text=str(graph.value(node, RDFS.label)),
            sections=_all(graph, node, LW.labelSection),
            doses=tuple(
                Dose(
                    amount_mg=_number(graph.value(d, LW.amountMg)),
                    text=str(graph.value(d, RDFS.label)),
                )
                for d in doses
            ),
        )
    return found


def statements(graph: Graph) -> dict[str, Statement]:
    found = {}
    for node in set(graph.subjects(LW.statedIn, None)):
        local = _short(node).removeprefix("kb:")
        found[local] = Statement(
            id=local, sections=_all(graph, node, LW.labelSection), text=_str(graph, node, LW.text)
        )
    return found


def label_info(graph: Graph) -> LabelInfo:
    node = next(graph.subjects(RDF.type, LW.Label))
    return LabelInfo(
        name=str(graph.value(node, RDFS.label)),
        url=str(graph.value(node, LW.url)),
        version=str(graph.value(node, LW.version)),
        drug=_key(graph, graph.value(node, LW.about)),
    )
