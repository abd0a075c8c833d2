"""The worked examples of docs/knowledge-authoring.md, run: knowledge edits change behaviour
with no Python change; the labelwise command checks, tests and explains them."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import yaml

from conftest import ROOT
from engine import load_knowledge
from labelwise.__main__ import main
from labelwise.canonical import format_all
from labelwise.cases import hook_request, run_case

ISAVUCONAZONIUM = """
kb:isavuconazonium
    a lw:Drug ;
    rdfs:label "isavuconazonium" ;
    lw:altName "Cresemba" ;
    lw:key "isavuconazonium" ;
    lw:memberOf kb:moderate-cyp3a4-inhibitors ;
    lw:source "FDA CYP3A example list; RxCUI not yet confirmed" ;
    lw:unverified true ;
.
"""
VOC = {
    "id": "voc-active",
    "text": "voclosporin 7.9 MG Oral Capsule",
    "dose": "23.7 mg",
    "per_day": 2,
}


NEW_RULE = """
  - id: interaction.potassium-raising-at-start
    cites: hyperkalemia
    when:
      - starting-voclosporin
      - other: medication where classes contains potassium-raising
"""
NEW_CARD = """
interaction.potassium-raising-at-start:
  indicator: warning
  summary: "Check potassium before starting voclosporin with {{ other.name | truncate(60) }}"
  detail: |-
    Voclosporin may cause hyperkalemia, more so with **{{ other.name }}**. Measure serum
    potassium before the first dose.
"""
GUIDE = ROOT / "docs" / "knowledge-authoring.md"


def write_case(tmp_path: Path, name: str, **case) -> Path:
    path = tmp_path / f"{name}.yaml"
    doc = {"description": name, "now": "2026-11-01", "patient": {"birthDate": "1980-01-01"}, **case}
    path.write_text(yaml.safe_dump(doc))
    return path


def fired(knowledge: Path, case: Path) -> frozenset[str]:
    return run_case(load_knowledge(knowledge), case).fired


def test_a_new_rule_in_the_condition_language_fires_with_no_python(knowledge_copy, tmp_path):
    assert NEW_RULE.strip() in GUIDE.read_text() and NEW_CARD.strip() in GUIDE.read_text()
    spironolactone = {"id": "spiro", "text": "spironolactone 25 MG Oral Tablet", "rxnorm": "9997"}
    starting = write_case(
        tmp_path,
        "starting",
        service="voclosporin-order-sign",
        draftOrders=[{**VOC, "id": "voc"}],
        medications=[spironolactone],
    )
    continuing = write_case(
        tmp_path,
        "continuing",
        service="voclosporin-order-sign",
        medications=[VOC],
        draftOrders=[{**spironolactone, "id": "spiro-new"}],
    )
    assert "interaction.potassium-raising-at-start" not in fired(knowledge_copy, starting)
    for folder, text in (("rules", NEW_RULE), ("cards", NEW_CARD)):
        path = knowledge_copy / folder / "interactions.yaml"
        path.write_text(path.read_text() + text)
    assert main(["check", str(knowledge_copy)]) == 0
    also = "interaction.potassium-raising-unchecked"  # the case has no potassium on record
    assert {"interaction.potassium-raising-at-start", also} <= fired(knowledge_copy, starting)
    assert "interaction.potassium-raising-at-start" not in fired(knowledge_copy, continuing)


def test_a_typo_gives_the_error_shown_in_the_guide_and_explain_shows_the_compiled_form(
    knowledge_copy, capsys
):
    shared = knowledge_copy / "rules" / "_shared.yaml"
    shared.write_text(shared.read_text().replace("status == draft", "status == drafted", 1))
    assert main(["check", str(knowledge_copy)]) == 1
    error = capsys.readouterr().out.split("\n0 entries")[0]
    assert error.count("\n") == 2 and error in GUIDE.read_text()
    assert main(["explain", "--compiled", "bp.do-not-initiate"]) == 0
    out = capsys.readouterr().out
    assert "- starting-voclosporin" in out
    assert '{"bp": {"$and": [{"kind": "blood-pressure"}, {"$lte": {"age_days": 30}}' in out


def test_adding_a_drug_to_the_moderate_inhibitor_class_needs_no_python(knowledge_copy, tmp_path):
    case = write_case(
        tmp_path,
        "cresemba",
        service="voclosporin-order-sign",
        medications=[VOC],
        draftOrders=[{"id": "isa", "text": "Cresemba 186 MG Oral Capsule"}],
    )
    assert "dose.moderate-cyp3a4-inhibitor" not in fired(knowledge_copy, case)
    drugs = knowledge_copy / "codes" / "drugs.ttl"
    drugs.write_text(drugs.read_text() + ISAVUCONAZONIUM)
    format_all(knowledge_copy)
    assert main(["check", str(knowledge_copy)]) == 0
    assert "dose.moderate-cyp3a4-inhibitor" in fired(knowledge_copy, case)


def test_changing_a_threshold_moves_the_boundary(knowledge_copy, tmp_path):
    case = write_case(
        tmp_path,
        "egfr-48",
        service="voclosporin-order-sign",
        draftOrders=[
            {
                "id": "voc",
                "text": "voclosporin 7.9 MG Oral Capsule",
                "dose": "23.7 mg",
                "per_day": 2,
            }
        ],
        egfr=[{"id": "e", "value": 48, "date": "2026-10-25"}],
    )
    assert "renal.baseline-egfr-not-recommended" not in fired(knowledge_copy, case)
    ttl = knowledge_copy / "drugs" / "voclosporin.ttl"
    text = ttl.read_text()
    block = text.index("kb:egfr-not-recommended-max")
    value = text.index("lw:value 45", block)
    ttl.write_text(text[:value] + "lw:value 50" + text[value + len("lw:value 45") :])
    assert "renal.baseline-egfr-not-recommended" in fired(knowledge_copy, case)


def test_adding_a_live_vaccine_code(knowledge_copy, tmp_path):
    case = write_case(
        tmp_path,
        "new-live",
        service="voclosporin-order-sign",
        medications=[VOC],
        draftOrders=[
            {"id": "v", "type": "Immunization", "cvx": "999", "text": "Investigational vaccine"}
        ],
    )
    assert "vaccine.live" not in fired(knowledge_copy, case)
    vaccines = knowledge_copy / "codes" / "vaccines.ttl"
    vaccines.write_text(vaccines.read_text().replace('"02" ,', '"02" ,\n        "999" ,', 1))
    assert "vaccine.live" in fired(knowledge_copy, case)


def test_check_passes_on_the_shipped_knowledge_and_lists_unverified_entries(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "knowledge OK" in out and "voclosporin: RxCUIs not confirmed" in out


def test_check_names_file_and_node_of_a_broken_edit(knowledge_copy, capsys):
    ttl = knowledge_copy / "drugs" / "voclosporin.ttl"
    ttl.write_text(ttl.read_text().replace('lw:unit "mmHg" ;', "", 1))
    assert main(["check", str(knowledge_copy)]) == 1
    out = capsys.readouterr().out
    assert "drugs/voclosporin.ttl: kb:bp-" in out and "lw:unit" in out


def test_check_rejects_unknown_vocabulary_and_non_canonical_turtle(knowledge_copy, capsys):
    obs = knowledge_copy / "codes" / "observations.ttl"
    obs.write_text(
        obs.read_text().replace(
            'lw:key "potassium" ;', 'lw:key "potassium" ;\n    lw:colour "blue" ;'
        )
    )
    assert main(["check", str(knowledge_copy)]) == 1
    out = capsys.readouterr().out
    assert "unknown vocabulary term https://w3id.org/labelwise/vocab#colour" in out
    assert "codes/observations.ttl: turtle: not in canonical form" in out


def test_test_command_prints_coverage_and_fails_when_cases_drop(tmp_path, capsys):
    assert main(["test", "--coverage"]) == 0
    out = capsys.readouterr().out
    assert "contraindication.strong-cyp3a4-inhibitor" in out and " 0 failed" in out
    cases = tmp_path / "cases"
    shutil.copytree(ROOT / "tests" / "cases", cases)
    next(cases.rglob("*.yaml")).unlink()
    assert main(["test", "--cases", str(cases)]) == 1
    assert "fewer than the recorded minimum" in capsys.readouterr().out


def test_explain_shows_the_trace_and_why_other_rules_did_not_fire(capsys, tmp_path):
    request = ROOT / "examples" / "requests" / "order-sign-voclosporin-with-ketoconazole.json"
    assert main(["explain", str(request), "--now", "2026-11-01"]) == 0
    out = capsys.readouterr().out
    assert "rule contraindication.strong-cyp3a4-inhibitor, label section 4" in out
    assert "inhibitor: medication MedicationRequest/keto" in out
    assert "dose.moderate-cyp3a4-inhibitor: no fact matched 'inhibitor'" in out


def test_explain_evaluates_as_of_labelwise_now_like_the_service(monkeypatch, capsys):
    request = ROOT / "examples" / "requests" / "patient-view-egfr-fall.json"
    monkeypatch.setenv("LABELWISE_NOW", "2026-11-01")
    assert main(["explain", str(request)]) == 0
    out = capsys.readouterr().out
    assert "as of 2026-11-01" in out.splitlines()[0]
    assert "rule renal.egfr-fall-reduce" in out


def test_examples_command_writes_every_example_dated_for_the_day_asked(tmp_path, capsys):
    assert main(["examples", "--now", "2026-11-11", "--out", str(tmp_path)]) == 0
    written = sorted(tmp_path.glob("*.json"))
    assert [p.name for p in written] == sorted(
        p.name for p in (ROOT / "examples" / "requests").glob("*.json")
    )
    body = json.loads((tmp_path / "order-sign-voclosporin-with-ketoconazole.json").read_text())
    assert body["prefetch"]["patient"]["birthDate"] == "1985-04-22"  # 10 days after 1985-04-12
    assert str(tmp_path) in capsys.readouterr().out


def test_explain_refuses_a_labelwise_now_that_is_not_a_date(monkeypatch, capsys):
    monkeypatch.setenv("LABELWISE_NOW", "yesterday")
    request = ROOT / "examples" / "requests" / "patient-view-egfr-fall.json"
    assert main(["explain", str(request)]) == 2
    assert "LABELWISE_NOW" in capsys.readouterr().err


def test_explain_reads_stdin_and_says_when_no_evaluated_order_was_involved(monkeypatch, capsys):
    cases = ROOT / "tests" / "cases" / "interactions"
    case = cases / "unrelated-order-for-patient-on-voclosporin-and-ketoconazole.yaml"
    body = hook_request(yaml.safe_load(case.read_text()), "order-sign")
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(body)))
    assert main(["explain", "-", "--now", "2026-11-01"]) == 0
    out = capsys.readouterr().out
    assert (
        "contraindication.strong-cyp3a4-inhibitor: its facts matched, but none is an order" in out
    )


def test_explain_shows_one_entry_per_card_when_a_card_groups_several_drugs(tmp_path, capsys):
    case = yaml.safe_load(
        (ROOT / "tests/cases/interactions/two-nsaids-with-voclosporin.yaml").read_text()
    )
    kb = load_knowledge(ROOT / "knowledge")
    request = tmp_path / "request.json"
    request.write_text(json.dumps(hook_request(case, kb.services[case["service"]].hook)))
    assert main(["explain", str(request), "--now", str(case["now"])]) == 0
    out = capsys.readouterr().out
    assert out.count("rule interaction.nephrotoxic,") == 1
