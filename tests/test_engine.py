"""Engine mechanics on a toy ruleset (not the drug): loading, validation, chaining, sessions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import KNOWLEDGE
from engine import Fact, KnowledgeError, evaluate, load_knowledge

TOY_TTL = """
@prefix kb: <https://w3id.org/labelwise/kb/> .
@prefix lw: <https://w3id.org/labelwise/vocab#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
kb:toy-label a lw:Label ; rdfs:label "TOY prescribing information" ; lw:version "1" ;
    lw:about kb:alpha ;
    lw:effective "2026-01-01"^^xsd:date ; lw:url "https://example.org/toy"^^xsd:anyURI .
kb:blockers a lw:DrugClass ; lw:key "blocker" ; rdfs:label "blockers" ; lw:labelSection "7" .
kb:alpha a lw:Drug ; lw:key "alpha" ; rdfs:label "alpha" ; lw:memberOf kb:blockers .
kb:limit a lw:Parameter ; lw:key "limit" ; rdfs:label "limit" ; lw:value 10.0 ; lw:unit "mg" ;
    lw:labelSection "2" .
kb:st-limit a lw:Precaution ; lw:statedIn kb:toy-label ; lw:labelSection "2" ;
    lw:text "Stay at or under the limit." .
kb:st-pair a lw:Interaction ; lw:statedIn kb:toy-label ; lw:labelSection "7" ;
    lw:text "Alpha with a larger thing." .
"""
TOY_RULES = """
rules:
  - id: toy.over-limit
    cites: st-limit
    when:
      - x: thing where value > limit
  - id: toy.pair
    cites: st-pair
    when:
      - a: thing where drug == alpha
      - b: thing where drug == beta and value > limit
"""
TOY_FACTS = "thing: {value: {type: number, about: a number}, drug: {type: text, about: a key}}\n"
TOY_CARDS = """
toy.over-limit:
  indicator: warning
  summary: "Over {{ params.limit }}: {{ x.value }}"
  detail: "Value {{ x.value }}"
toy.pair:
  indicator: info
  summary: "Pair {{ a.ref }} {{ b.ref }}"
  detail: "Pair"
"""
TOY_SERVICES = """
services:
  - {id: toy-sign, hook: order-sign, title: Toy sign, description: Toy, rule_files: [toy]}
  - {id: toy-view, hook: patient-view, title: Toy view, description: Toy, rule_files: [toy]}
"""


@pytest.fixture()
def toy(tmp_path: Path) -> Path:
    root = tmp_path / "toy"
    (root / "drugs").mkdir(parents=True)
    (root / "rules").mkdir()
    (root / "cards").mkdir()
    shutil.copytree(KNOWLEDGE / "shapes", root / "shapes")
    shutil.copy(KNOWLEDGE / "vocab.ttl", root / "vocab.ttl")
    shutil.copy(KNOWLEDGE / "cards" / "_shared.yaml", root / "cards" / "_shared.yaml")
    (root / "drugs" / "toy.ttl").write_text(TOY_TTL)
    (root / "facts.yaml").write_text(TOY_FACTS)
    (root / "rules" / "toy.yaml").write_text(TOY_RULES)
    (root / "cards" / "toy.yaml").write_text(TOY_CARDS)
    (root / "services.yaml").write_text(TOY_SERVICES)
    return root


def thing(ref: str, value: float, drug: str = "beta", focus: bool = False) -> Fact:
    return Fact("thing", ref, {"value": value, "drug": drug}, focus)


def fired(kb, service: str, facts) -> list[tuple[str, tuple[str, ...]]]:
    return [(f.rule_id, tuple(x.ref for _, x in f.facts)) for f in evaluate(kb, service, facts)]


def test_threshold_from_a_parameter_fires_above_and_stays_silent_at_the_limit(toy):
    kb = load_knowledge(toy)
    assert fired(kb, "toy-view", [thing("T/1", 10.0)]) == []
    assert fired(kb, "toy-view", [thing("T/1", 10.5)]) == [("toy.over-limit", ("T/1",))]


def test_rules_join_two_facts(toy):
    kb = load_knowledge(toy)
    facts = [thing("T/a", 5, drug="alpha"), thing("T/b", 10.5), thing("T/c", 4)]
    assert ("toy.pair", ("T/a", "T/b")) in fired(kb, "toy-view", facts)
    assert [x for x in fired(kb, "toy-view", facts) if x[0] == "toy.pair"] == [
        ("toy.pair", ("T/a", "T/b"))
    ]


def test_findings_carry_rule_section_statement_and_facts(toy):
    kb = load_knowledge(toy)
    (finding,) = evaluate(kb, "toy-view", [thing("T/1", 11)])
    assert finding.sections == ("2",) and finding.statement == "Stay at or under the limit."
    assert finding.fact("x").ref == "T/1" and finding.fact("x").data["value"] == 11


def test_two_equal_values_stay_two_facts(toy):
    kb = load_knowledge(toy)
    assert len(evaluate(kb, "toy-view", [thing("T/1", 11), thing("T/2", 11)])) == 2


def test_order_services_keep_only_findings_that_involve_a_focus_fact(toy):
    kb = load_knowledge(toy)
    assert fired(kb, "toy-sign", [thing("T/1", 11)]) == []
    assert fired(kb, "toy-sign", [thing("T/1", 11, focus=True)]) == [("toy.over-limit", ("T/1",))]


def test_each_evaluation_starts_from_an_empty_session(toy):
    kb = load_knowledge(toy)
    first = fired(kb, "toy-view", [thing("T/a", 5, drug="alpha")])
    second = fired(kb, "toy-view", [thing("T/b", 10.5)])
    assert second == [("toy.over-limit", ("T/b",))]
    assert first == []


def test_loaded_knowledge_has_a_content_version(toy):
    before = load_knowledge(toy).version
    (toy / "facts.yaml").write_text(TOY_FACTS.replace("}}", "}, other: {type: text, about: x}}"))
    assert load_knowledge(toy).version != before


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


BROKEN = [
    ("drugs/toy.ttl", 'lw:unit "mg" ;', 'lw:unit "mg" ', "drugs/toy.ttl", "turtle"),
    (
        "drugs/toy.ttl",
        ' ;\n    lw:labelSection "2" .\nkb:st-limit',
        " .\nkb:st-limit",
        "drugs/toy.ttl",
        "kb:limit",
    ),
    ("rules/toy.yaml", "value > limit\n", "value > nolimit\n", "rules/toy.yaml", "toy.over-limit"),
    ("rules/toy.yaml", "value > limit\n", "value > 10\n", "rules/toy.yaml", "toy.over-limit"),
    ("rules/toy.yaml", "drug == alpha", "colour == alpha", "rules/toy.yaml", "toy.pair"),
    ("rules/toy.yaml", "cites: st-pair", "cites: st-nothing", "rules/toy.yaml", "toy.pair"),
    ("rules/toy.yaml", "x: thing where", "x: thing were", "rules/toy.yaml", "toy.over-limit"),
    ("rules/toy.yaml", "a: thing where", "a: gadget where", "rules/toy.yaml", "toy.pair"),
    ("rules/toy.yaml", "id: toy.pair", "id: toy.over-limit", "rules/toy.yaml", "toy.over-limit"),
    ("cards/toy.yaml", "indicator: info", "indicator: urgent", "cards/toy.yaml", "toy.pair"),
    ("cards/toy.yaml", "Pair {{ a.ref", "Pair {{ a.ref }", "cards/toy.yaml", "toy.pair"),
    ("cards/toy.yaml", "toy.pair:", "toy.unpaired:", "cards/toy.yaml", "toy.unpaired"),
    ("services.yaml", "hook: order-sign", "hook: order-dispatch", "services.yaml", "toy-sign"),
    (
        "services.yaml",
        "rule_files: [toy]}\n  - {id: toy-view",
        "rule_files: [nope]}\n  - {id: toy-view",
        "services.yaml",
        "toy-sign",
    ),
]


@pytest.mark.parametrize(("file", "old", "new", "named_file", "node"), BROKEN)
def test_broken_knowledge_stops_loading_naming_file_and_node(toy, file, old, new, named_file, node):
    edit(toy / file, old, new)
    with pytest.raises(KnowledgeError) as error:
        load_knowledge(toy)
    assert error.value.file == named_file and error.value.node == node


def test_a_rule_without_a_card_stops_loading(toy):
    cards = toy / "cards" / "toy.yaml"
    cards.write_text(cards.read_text().split("toy.pair:")[0])
    with pytest.raises(KnowledgeError, match="toy.pair: rule has no card template"):
        load_knowledge(toy)


def test_thousands_of_sessions_with_partial_and_no_matches_are_cleaned_up(toy):
    # Deleting a session in which no rule action ran used to segfault the C engine.
    kb = load_knowledge(toy)
    values = [0, 5, 10.0, 11]
    for n in range(2000):
        facts = [
            thing(f"T/{n}-{i}", values[(n + i) % 4], drug=("alpha", "beta")[i % 2])
            for i in range(n % 4)
        ]
        expected = {("toy.over-limit", (f.ref,)) for f in facts if f.data["value"] > 10}
        assert {x for x in fired(kb, "toy-view", facts) if x[0] == "toy.over-limit"} == expected
